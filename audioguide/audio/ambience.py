"""Procedural ambience beds: brown noise, rain and ocean, seamless at any length.

A bed is generated block by block from a fixed seed with its filter state
carried across blocks, so it never loops audibly and needs no sound files,
and only a block or two of it exists at a time. It is faded in and out, and
ducked while speech plays so the voice stays clear.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from audioguide.audio.clips import Samples

AMBIENCES = ("none", "rain", "ocean", "brown")
#: Default level of the bed's loudest moments, in LU relative to the voice.
DEFAULT_LEVEL_DB = -20.0
LEVEL_RANGE = (-40.0, -6.0)
#: How much further the bed drops while speech plays.
DUCK_DB = -8.0
DUCK_RAMP_S = 0.4
FADE_S = 6.0
_BLOCK = 1 << 18
_SEED = 20261122


@dataclass(frozen=True)
class _Filters:
    b: npt.NDArray[np.float64]
    a: npt.NDArray[np.float64]


def _design(kind: str, rate: int) -> list[_Filters]:
    from scipy.signal import butter

    def bw(order: int, cutoff: float | list[float], btype: str) -> _Filters:
        b, a = butter(order, cutoff, btype=btype, fs=rate)
        return _Filters(np.asarray(b, np.float64), np.asarray(a, np.float64))

    if kind == "brown":
        # Integrated white noise (a leaky integrator), with the rumble below 30 Hz removed.
        return [_Filters(np.array([1.0]), np.array([1.0, -0.995])), bw(2, 30.0, "highpass")]
    if kind == "rain":
        return [bw(2, [500.0, 7000.0], "bandpass")]
    # ocean: deep surf, brown-ish and dark
    return [_Filters(np.array([1.0]), np.array([1.0, -0.99])), bw(2, [40.0, 900.0], "bandpass")]


def _blocks(kind: str, total: int, rate: int) -> Iterator[Samples]:
    """The raw bed in consecutive blocks, unit-ish level, filter state continuous."""
    from scipy.signal import lfilter, lfilter_zi

    rng = np.random.default_rng(_SEED)
    filters = _design(kind, rate)
    states = [lfilter_zi(f.b, f.a) * 0.0 for f in filters]
    drops_rng = np.random.default_rng(_SEED + 1)
    for start in range(0, total, _BLOCK):
        n = min(_BLOCK, total - start)
        x = rng.standard_normal(n)
        for i, f in enumerate(filters):
            x, states[i] = lfilter(f.b, f.a, x, zi=states[i])
        if kind == "rain":
            x = x + _droplets(drops_rng, n, rate)
        elif kind == "ocean":
            t = (start + np.arange(n)) / rate
            swell = 0.55 + 0.45 * np.sin(2 * np.pi * t / 9.7) * np.sin(2 * np.pi * t / 23.3 + 1)
            x = x * swell ** 2
        yield np.asarray(x, dtype=np.float32)


def _droplets(rng: np.random.Generator, n: int, rate: int) -> npt.NDArray[np.float64]:
    """Sparse soft taps: short decaying bursts of noise at random moments."""
    out = np.zeros(n)
    length = int(0.012 * rate)
    shape = np.exp(-np.arange(length) / (0.002 * rate)) * rng.standard_normal(length)
    for at in rng.integers(0, max(1, n - length), size=int(n / rate * 12)):
        out[at:at + length] += shape * rng.uniform(0.5, 2.5)
    return out


@cache
def unit_loudness(kind: str, rate: int) -> float:
    """The bed's loudest short-term loudness (LUFS) at unit gain, measured once by ffmpeg.

    A bed's level is set by its loudest moments (an ocean's swells), not its
    average, so that even they stay the chosen amount under the voice, and in
    long pauses the bed stays below the loudness gate instead of dragging the
    session's measured loudness down.
    """
    from audioguide.audio import ffmpeg

    sample = np.concatenate(list(_blocks(kind, 60 * rate, rate)))
    return ffmpeg.short_term_max(sample, rate)


class Bed:
    """An ambience bed for one session, renderable by forward-moving ranges.

    ``level_lufs`` sets the loudness of its loudest moments; it fades in and out over
    :data:`FADE_S` and drops by :data:`DUCK_DB` over ``speech`` spans.
    """

    def __init__(self, kind: str, rate: int, total: int, level_lufs: float,
                 speech: Sequence[tuple[int, int]]) -> None:
        self.gain = np.float32(10 ** ((level_lufs - unit_loudness(kind, rate)) / 20))
        self.total = total
        self._fade = min(int(FADE_S * rate), total // 2)
        self._ramp = int(DUCK_RAMP_S * rate)
        self._duck = 10 ** (DUCK_DB / 20)
        self._spans = sorted(speech)
        self._source = _blocks(kind, total, rate)
        #: Generated raw bed kept from ``_kept_from`` on (ranges only move forward).
        self._kept = np.zeros(0, dtype=np.float32)
        self._kept_from = 0

    def _raw(self, a: int, b: int) -> Samples:
        if a < self._kept_from:
            raise ValueError("bed ranges must move forward")
        while self._kept_from + self._kept.size < b:
            self._kept = np.concatenate((self._kept, next(self._source)))
        drop = a - self._kept_from
        if drop > _BLOCK:  # keep at most about one block behind
            self._kept = self._kept[drop:]
            self._kept_from = a
        return self._kept[a - self._kept_from:b - self._kept_from]

    def render(self, a: int, b: int) -> Samples:
        """Samples ``a`` to ``b`` of the bed, faded, ducked and at its level."""
        index = np.arange(a, b)
        envelope = np.ones(b - a, dtype=np.float32)
        if a < self._fade:
            envelope = np.minimum(envelope, index / self._fade)
        if b > self.total - self._fade:
            envelope = np.minimum(envelope, (self.total - index) / self._fade)
        for start, end in self._spans:
            if end + self._ramp < a or start - self._ramp > b:
                continue
            # 1 far from speech, the duck level inside it, straight ramps either side.
            distance = np.maximum(np.maximum(start - index, index - end), 0) / self._ramp
            envelope = np.minimum(envelope,
                                  self._duck + (1 - self._duck) * np.minimum(distance, 1.0))
        return np.asarray(self._raw(a, b) * envelope * self.gain, dtype=np.float32)
