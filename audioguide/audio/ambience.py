"""Procedural ambience beds: brown noise, rain and ocean, seamless at any length.

A bed is white noise from a fixed seed through the bed's filters, made block by
block with the filters' ring-out carried across blocks, so it never loops
audibly and needs no sound files, and only a block or two of it exists at a
time. The filters (Butterworth sections and leaky integrators) are applied as
their impulse response by FFT convolution, in numpy. A bed is faded in and out,
and ducked while speech plays so the voice stays clear.

Its loudness is known without rendering it: the noise's K-weighted power is
measured once, and the envelope (fades, ducking, an ocean's swell) is known in
advance, so the mastering can set the mix's level from the voice's measurement
and the bed's estimate (the encoded file is then measured, as always).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from collections.abc import Callable, Iterator, Sequence
from functools import cache

import numpy as np
import numpy.typing as npt

from audioguide.audio.clips import Samples
from audioguide.audio.loudness import Meter, Section, impulse_response, joined

AMBIENCES = ("none", "rain", "ocean", "brown")
#: Default level of the bed's loudest moments, in LU relative to the voice.
DEFAULT_LEVEL_DB = -20.0
LEVEL_RANGE = (-40.0, -6.0)
#: How much further the bed drops while speech plays.
DUCK_DB = -8.0
DUCK_RAMP_S = 0.4
FADE_S = 6.0
_SEED = 20261122
#: Samples of a bed's filters' impulse response kept (186 ms at 44.1 kHz; the slowest,
#: brown noise's, has fallen below 1e-10 of its peak by then).
FILTER = 8192
#: The FFT's size; each block of noise is as long as fits with the response's ring-out.
_FFT = 1 << 16
_BLOCK = _FFT - FILTER + 1
#: The slow gains (fades, ducking, an ocean's swell: tenths of a second and more) are
#: computed once per this many samples and held between.
_STRIDE = 32
#: Points per 100 ms bin at which the envelope is read for the loudness estimate.
_POINTS = 10


def _butterworth(cutoff: float, rate: int, high: bool) -> Section:
    """A second-order Butterworth high or low pass at ``cutoff`` Hz (bilinear transform,
    prewarped, as scipy's ``butter(2, ...)`` designs it)."""
    k = math.tan(math.pi * cutoff / rate)
    q = math.sqrt(0.5)
    a0 = 1 + k / q + k * k
    a1, a2 = 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0
    if high:
        return (1 / a0, -2 / a0, 1 / a0, a1, a2)
    return (k * k / a0, 2 * k * k / a0, k * k / a0, a1, a2)


def _leaky(pole: float) -> Section:
    """A leaky integrator: ``y[n] = x[n] + pole * y[n - 1]``."""
    return (1.0, 0.0, 0.0, -pole, 0.0)


def sections(kind: str, rate: int) -> tuple[Section, ...]:
    """The filters that make white noise into the bed ``kind``."""
    if kind == "brown":
        # Integrated white noise, with the rumble below 30 Hz removed.
        return (_leaky(0.995), _butterworth(30.0, rate, high=True))
    if kind == "rain":
        return (_butterworth(500.0, rate, high=True), _butterworth(7000.0, rate, high=False))
    # ocean: deep surf, brown-ish and dark
    return (_leaky(0.99), _butterworth(40.0, rate, high=True),
            _butterworth(900.0, rate, high=False))


@cache
def _spectrum(kind: str, rate: int) -> npt.NDArray[np.complex64]:
    response = impulse_response(sections(kind, rate), FILTER).astype(np.float32)
    return np.fft.rfft(response, _FFT).astype(np.complex64, copy=False)


def _noise(kind: str, total: int, rate: int) -> Iterator[Samples]:
    """The bed before its swell, in consecutive blocks of :data:`_BLOCK` samples."""
    rng = np.random.default_rng(_SEED)
    drops_rng = np.random.default_rng(_SEED + 1)
    spectrum = _spectrum(kind, rate)
    carry: Samples = np.zeros(0, dtype=np.float32)
    for start in range(0, total, _BLOCK):
        n = min(_BLOCK, total - start)
        noise = np.fft.rfft(rng.standard_normal(n, dtype=np.float32), _FFT)
        x = np.fft.irfft(noise * spectrum, _FFT)[:n + FILTER - 1].astype(np.float32,
                                                                        copy=False)
        x[:carry.size] += carry
        carry = x[n:]
        block = x[:n]
        if kind == "rain":
            block += _droplets(drops_rng, n, rate)
        yield block


def _swell(index: npt.NDArray[np.int64], rate: int) -> npt.NDArray[np.float64]:
    """An ocean's gain at the samples ``index``: slow swells, never quite silent."""
    t = index / rate
    return 0.55 + 0.45 * np.sin(2 * np.pi * t / 9.7) * np.sin(2 * np.pi * t / 23.3 + 1)


def _held(gain: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]], a: int,
          b: int) -> Samples:
    """``gain`` for samples ``a`` to ``b``, read every :data:`_STRIDE` samples on a grid
    fixed to the session (so the ranges' edges make no steps of their own) and held."""
    first = a - a % _STRIDE
    points = np.arange(first, b, _STRIDE) + _STRIDE // 2
    return np.repeat(gain(points).astype(np.float32), _STRIDE)[a - first:b - first]


def _swelled(block: Samples, start: int, rate: int) -> Samples:
    """``block``, which starts at sample ``start``, in place times an ocean's swell (its
    amplitude goes as the swell squared)."""
    block *= _held(lambda index: _swell(index, rate) ** 2, start, start + block.size)
    return block


def _blocks(kind: str, total: int, rate: int) -> Iterator[Samples]:
    """The raw bed in consecutive blocks, unit-ish level."""
    start = 0
    for block in _noise(kind, total, rate):
        yield _swelled(block, start, rate) if kind == "ocean" else block
        start += block.size


def _droplets(rng: np.random.Generator, n: int, rate: int) -> npt.NDArray[np.float32]:
    """Sparse soft taps: short decaying bursts of noise at random moments."""
    out = np.zeros(n, dtype=np.float32)
    length = int(0.012 * rate)
    shape = np.exp(-np.arange(length) / (0.002 * rate)) * rng.standard_normal(length)
    for at in rng.integers(0, max(1, n - length), size=int(n / rate * 12)):
        out[at:at + length] += shape * rng.uniform(0.5, 2.5)
    return out


class _Ahead:
    """The blocks of ``blocks``, each made while the one before is used, on a thread of
    its own (numpy lets go of the interpreter while it draws and filters the noise)."""

    def __init__(self, blocks: Iterator[Samples]) -> None:
        self._blocks = blocks
        self._maker = cf.ThreadPoolExecutor(1, thread_name_prefix="ambience")
        self._next = self._maker.submit(next, blocks)

    def take(self) -> Samples:
        """The next block."""
        block = self._next.result()
        self._next = self._maker.submit(next, self._blocks)
        return block

    def close(self) -> None:
        """Stop making blocks."""
        self._maker.shutdown(cancel_futures=True)


@cache
def unit_loudness(kind: str, rate: int) -> tuple[float, float]:
    """The bed's loudest short-term loudness (LUFS) at unit gain, measured once by ffmpeg,
    and the K-weighted power (mean square) of its noise before any swell.

    A bed's level is set by its loudest moments (an ocean's swells), not its
    average, so that even they stay the chosen amount under the voice, and in
    long pauses the bed stays below the loudness gate instead of dragging the
    session's measured loudness down.
    """
    from audioguide.audio import ffmpeg

    n = 60 * rate
    noise = np.concatenate(list(_noise(kind, n, rate)))
    meter = Meter(rate, n)
    meter.add(0, noise)
    power = float(meter.bins.sum()) / n
    if kind == "ocean":
        noise = _swelled(noise, 0, rate)
    return ffmpeg.short_term_max(noise, rate), power


class Bed:
    """An ambience bed for one session, renderable by forward-moving ranges.

    ``level_lufs`` sets the loudness of its loudest moments; it fades in and out over
    :data:`FADE_S` and drops by :data:`DUCK_DB` over ``speech`` spans.
    """

    def __init__(self, kind: str, rate: int, total: int, level_lufs: float,
                 speech: Sequence[tuple[int, int]]) -> None:
        loudest, self._power = unit_loudness(kind, rate)
        self.gain = np.float32(10 ** ((level_lufs - loudest) / 20))
        self.kind = kind
        self.rate = rate
        self.total = total
        self._fade = max(1, min(int(FADE_S * rate), total // 2))
        self._ramp = int(DUCK_RAMP_S * rate)
        self._duck = 10 ** (DUCK_DB / 20)
        spans = joined(sorted(speech), 1)
        self._starts = np.array([a for a, _ in spans], dtype=np.int64)
        self._ends = np.array([b for _, b in spans], dtype=np.int64)
        self._source: _Ahead | None = None
        #: Generated raw bed kept from ``_kept_from`` on (ranges only move forward).
        self._kept = np.zeros(0, dtype=np.float32)
        self._kept_from = 0

    def _raw(self, a: int, b: int) -> Samples:
        if a < self._kept_from:
            raise ValueError("bed ranges must move forward")
        if self._source is None:
            self._source = _Ahead(_blocks(self.kind, self.total, self.rate))
        while self._kept_from + self._kept.size < b:
            block = self._source.take()
            end = self._kept_from + self._kept.size + block.size
            if end <= a:  # wholly before the range (a first render far in): not kept
                self._kept, self._kept_from = self._kept[:0], end
            else:
                self._kept = np.concatenate((self._kept, block))
        drop = a - self._kept_from
        if drop > _BLOCK:  # keep at most about one block behind
            self._kept = self._kept[drop:]
            self._kept_from = a
        return self._kept[a - self._kept_from:b - self._kept_from]

    def close(self) -> None:
        """Stop making the bed ahead of its use (rendering again starts it over)."""
        if self._source is not None:
            self._source.close()
            self._source = None
            self._kept = np.zeros(0, dtype=np.float32)
            self._kept_from = 0

    def _envelope(self, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The bed's gain (before its level) at the samples ``index``: the fades, and
        the duck level over speech with straight ramps either side."""
        envelope = np.minimum(1.0, np.minimum(index, self.total - index) / self._fade)
        if self._starts.size:
            # The distance to the nearest speech span (0 inside one).
            after = np.searchsorted(self._ends, index)  # the first span not ended
            nearest = np.full(index.size, float(self._ramp))
            ahead = after < self._starts.size
            nearest[ahead] = np.maximum(self._starts[after[ahead]] - index[ahead], 0)
            behind = after > 0
            nearest[behind] = np.minimum(nearest[behind],
                                         index[behind] - self._ends[after[behind] - 1])
            envelope = np.minimum(envelope, self._duck + (1 - self._duck)
                                  * np.minimum(nearest / self._ramp, 1.0))
        return envelope

    def render(self, a: int, b: int) -> Samples:
        """Samples ``a`` to ``b`` (within the session) of the bed, faded, ducked and at
        its level."""
        if not 0 <= a <= b <= self.total:
            raise ValueError(f"samples {a}-{b} are not within the bed's {self.total}")
        envelope = _held(lambda index: self._envelope(np.minimum(index, self.total - 1)),
                         a, b)
        envelope *= self.gain
        return self._raw(a, b) * envelope

    def energies(self, step: int) -> npt.NDArray[np.float64]:
        """The bed's K-weighted energy in each ``step``-sample bin of the session (as
        :class:`~audioguide.audio.loudness.Meter` bins it), estimated from its noise's
        power and its envelope read :data:`_POINTS` times per bin, without rendering it."""
        bins = self.total // step + 1
        index = np.arange(bins * _POINTS) * step // _POINTS + step // (2 * _POINTS)
        inside = index < self.total
        weight = np.zeros(index.size)
        weight[inside] = self._envelope(index[inside]) ** 2
        if self.kind == "ocean":
            weight[inside] *= _swell(index[inside], self.rate) ** 4
        power = self._power * float(self.gain) ** 2 * step
        result: npt.NDArray[np.float64] = weight.reshape(bins, _POINTS).mean(axis=1) * power
        return result
