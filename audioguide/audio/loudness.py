"""Integrated loudness (ITU-R BS.1770-4, EBU R128) in numpy, fed a session in pieces.

A session is mostly silence, and the mix knows where every sound is; so the
meter is given only the pieces that sound, each at its sample position, and
never the whole session. Each piece is K-weighted (the standard's two filters,
applied as their impulse response by FFT convolution; it decays to nothing
within :data:`FILTER_LENGTH` samples, so a piece that follows silence longer
than that starts from rest), its energy is summed into 100 ms bins, and the
400 ms gating blocks (75 % overlap) are built from the bins: absolute gate at
-70 LUFS, relative gate 10 LU below. The figures agree with ffmpeg's
``ebur128`` filter to about 0.05 LU (tested).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from audioguide.audio.clips import Samples

#: Samples of the K-weighting filters' impulse response kept (93 ms at 44.1 kHz; the
#: rest is below 1e-6 of its start).
FILTER_LENGTH = 4096
#: FFT size of the overlap-add convolution (small blocks keep memory flat).
_FFT = 1 << 15
#: A stretch of samples all quieter than this is taken as silence and not filtered
#: (-100 dBFS: its energy is far below the absolute gate).
_QUIET = 1e-5
#: Samples looked at together when finding silent stretches.
_STRIDE = 1024
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


@functools.cache
def _response(sample_rate: int) -> npt.NDArray[np.float64]:
    """The first :data:`FILTER_LENGTH` samples of the K-weighting filters' impulse response:
    the high shelf and the high pass of BS.1770, designed for ``sample_rate`` as libebur128
    and ffmpeg do."""
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh ** 0.4996667741545416
    q = 0.7071752369554196
    a0 = 1 + k / q + k * k
    shelf = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0,
             (vh - vb * k / q + k * k) / a0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = (1.0, -2.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    return impulse_response((shelf, high_pass), FILTER_LENGTH)


#: A second-order section: b0, b1, b2, a1, a2 (a0 is 1).
Section = tuple[float, float, float, float, float]


def impulse_response(sections: tuple[Section, ...], length: int) -> npt.NDArray[np.float64]:
    """The first ``length`` samples of the impulse response of ``sections`` in series."""
    signal = [0.0] * length
    signal[0] = 1.0
    for b0, b1, b2, a1, a2 in sections:
        out = []
        x1 = x2 = y1 = y2 = 0.0
        for x in signal:
            y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
            x2, x1, y2, y1 = x1, x, y1, y
            out.append(y)
        signal = out
    return np.array(signal)


@functools.cache
def _spectrum(sample_rate: int) -> npt.NDArray[np.complex128]:
    return np.fft.rfft(_response(sample_rate), _FFT)


def k_weighted(samples: Samples,
               sample_rate: int) -> Iterator[tuple[int, npt.NDArray[np.float64]]]:
    """``samples`` through the K-weighting filters from rest, as consecutive pieces of the
    output ``(position, filtered)``, a few thousand samples each; the output runs
    ``FILTER_LENGTH - 1`` samples past the input (the filters' ring-out). Silent stretches
    are skipped: no piece covers them, their output is zero."""
    step = _FFT - FILTER_LENGTH + 1
    spectrum = _spectrum(sample_rate)
    for a, b in _sounding(samples):
        carry = np.zeros(0)
        for start in range(a, b, step):
            stop = min(b, start + step)
            piece = np.fft.irfft(np.fft.rfft(samples[start:stop], _FFT) * spectrum,
                                 _FFT)[:stop - start + FILTER_LENGTH - 1]
            piece[:carry.size] += carry
            yield start, piece[:stop - start]
            carry = piece[stop - start:]
        yield b, carry


def _sounding(samples: Samples) -> list[tuple[int, int]]:
    """Runs of :data:`_STRIDE`-sample stretches that hold anything above :data:`_QUIET`,
    joined where less than :data:`FILTER_LENGTH` samples part them (so that one run's
    ring-out never overlaps the next)."""
    n = samples.size // _STRIDE * _STRIDE
    loud = np.abs(samples[:n].reshape(-1, _STRIDE)).max(axis=1) > _QUIET
    if n < samples.size:
        loud = np.append(loud, np.abs(samples[n:]).max() > _QUIET)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8), [0]))))
    return joined([(int(a) * _STRIDE, min(samples.size, int(b) * _STRIDE))
                   for a, b in zip(edges[::2], edges[1::2], strict=True)], FILTER_LENGTH)


def joined(spans: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """``spans`` (in order) joined where less than ``gap`` samples part them."""
    runs: list[tuple[int, int]] = []
    for a, b in spans:
        if runs and a - runs[-1][1] < gap:
            runs[-1] = (runs[-1][0], max(runs[-1][1], b))
        else:
            runs.append((a, b))
    return runs


class Meter:
    """Gated integrated loudness of a session of ``total`` samples, given its sounding
    pieces at their positions; with ``total`` None, of a stream that ends where its last
    piece ends (its filters' ring-out past the end is not counted).

    Pieces are added in any order; each must start at least :data:`FILTER_LENGTH`
    samples after the end of any earlier piece it follows, or exactly where the last
    piece ended (the stream of a whole file, in consecutive blocks: the filters' memory
    carries over).
    """

    def __init__(self, sample_rate: int, total: int | None = None) -> None:
        if sample_rate % 10:
            raise ValueError(f"{sample_rate} Hz has no whole 100 ms block")
        self.sample_rate = sample_rate
        self.step = sample_rate // 10
        self.total = total
        #: K-weighted energy of each 100 ms bin.
        self.bins = np.zeros((total or 0) // self.step + 1)
        #: The last samples added (as many as the filters remember), and where they end.
        self._tail = np.zeros(0, dtype=np.float32)
        #: Where the samples added last (a run of consecutive blocks) start and end.
        self._start = self._end = 0

    def add(self, start: int, samples: Samples) -> None:
        """Add ``samples``, which sit at sample ``start`` of the session."""
        if start == self._end and self._tail.size:
            # Filter the remembered samples again in front of these, and count only the
            # output from here on: the same as filtering the whole stream in one go.
            skip = self._tail.size
            x = np.concatenate((self._tail, samples))
        else:
            if self._tail.size and (start < self._end + FILTER_LENGTH
                                    and start + samples.size + FILTER_LENGTH > self._start):
                raise ValueError(f"samples at {start} are less than {FILTER_LENGTH} samples "
                                 f"from those at {self._start}-{self._end}")
            self.flush()
            skip, x = 0, samples
        origin = start - skip
        for at, piece in k_weighted(x, self.sample_rate):
            lo, hi = max(at, skip), min(at + piece.size, x.size)
            if hi > lo:
                self._add_energy(origin + lo, piece[lo - at:hi - at])
        self._tail = x[-(FILTER_LENGTH - 1):].copy()
        if not skip:
            self._start = start
        self._end = start + samples.size

    @property
    def end(self) -> int:
        """Where the samples added last end (of a stream: how many it has had)."""
        return self._end

    def append(self, samples: Samples) -> None:
        """Add ``samples`` where the last ones ended: the next block of a stream."""
        self.add(self._end, samples)

    def energies(self, start: int, samples: Samples, lo: int | None = None,
                 hi: int | None = None) -> tuple[int, npt.NDArray[np.float64]]:
        """(first bin, energy of each bin from it) of ``samples`` at ``start`` alone,
        ring-out included, counting only the output from ``lo`` to ``hi`` (positions in
        the session; default all of it); the meter's own bins are left as they are."""
        lo = start if lo is None else max(lo, start)
        stop = start + samples.size + FILTER_LENGTH - 1
        stop = stop if hi is None else min(stop, hi)
        if self.total is not None:
            stop = min(stop, self.total)
        first = lo // self.step
        energies = np.zeros(max(1, -(-stop // self.step) - first))
        for at, piece in k_weighted(samples, self.sample_rate):
            a, b = max(start + at, lo), min(start + at + piece.size, stop)
            if b > a:
                fb, more = binned(a, piece[a - start - at:b - start - at], self.step)
                energies[fb - first:fb - first + more.size] += more
        return first, energies

    def flush(self) -> None:
        """Count the ring-out of the last piece (of a stream: leave it, past its end)."""
        if self._tail.size and self.total is not None:
            for at, piece in k_weighted(self._tail, self.sample_rate):
                ring = piece[max(0, self._tail.size - at):]
                if ring.size and at + piece.size > self._tail.size:
                    self._add_energy(self._end + max(0, at - self._tail.size), ring)
        self._tail = np.zeros(0, dtype=np.float32)

    def _add_energy(self, start: int, filtered: npt.NDArray[np.float64]) -> None:
        if self.total is not None:
            filtered = filtered[:max(0, self.total - start)]
        if not filtered.size:
            return
        first, energies = binned(start, filtered, self.step)
        end = first + energies.size
        if end > self.bins.size:
            self.bins = np.concatenate((self.bins, np.zeros(max(end, 2 * self.bins.size)
                                                            - self.bins.size)))
        self.bins[first:end] += energies

    def integrated(self, bins: npt.NDArray[np.float64] | None = None) -> float:
        """Integrated loudness (LUFS) of the bins added so far (or of ``bins``)."""
        total = self._end if self.total is None else self.total
        return integrated(self.bins if bins is None else bins, total // self.step, self.step)


def binned(start: int, filtered: npt.NDArray[np.float64],
           step: int) -> tuple[int, npt.NDArray[np.float64]]:
    """(first bin, energy of each bin from it) of K-weighted samples that sit at ``start``."""
    first = start // step
    squares = filtered ** 2
    head = min(squares.size, (first + 1) * step - start)
    whole = (squares.size - head) // step
    tail = squares[head + whole * step:]
    energies = np.empty(1 + whole + (tail.size > 0))
    energies[0] = squares[:head].sum()
    energies[1:1 + whole] = squares[head:head + whole * step].reshape(whole, step).sum(axis=1)
    if tail.size:
        energies[-1] = tail.sum()
    return first, energies


def integrated(bins: npt.NDArray[np.float64], complete: int, step: int) -> float:
    """Gated loudness from the energies of 100 ms bins, of which the first ``complete``
    are whole: blocks of four consecutive bins, every bin."""
    if complete < 4:
        return -math.inf
    whole = bins[:complete]
    blocks = (whole[:-3] + whole[1:-2] + whole[2:-1] + whole[3:]) / (4 * step)
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10 * np.log10(blocks)
    passed = blocks[lufs > ABSOLUTE_GATE_LUFS]
    if passed.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(passed.mean()) + RELATIVE_GATE_LU
    kept = blocks[lufs > max(relative, ABSOLUTE_GATE_LUFS)]
    if kept.size == 0:
        return -math.inf
    return -0.691 + 10 * math.log10(float(kept.mean()))


#: Samples quieter than this (dBFS) cannot hide a true peak near the ceiling.
_TRUE_PEAK_FLOOR_DB = -6.0
_OVERSAMPLE = 4
#: Samples each side of a loud stretch that its oversampling reads (the resampling
#: filter's reach is 32).
_CONTEXT = 64


class TruePeak:
    """The true peak (4x oversampled, as BS.1770's meter) of a signal fed in consecutive
    blocks. Only the stretches with a sample within 6 dB of full scale are oversampled;
    the rest cannot come near the ceiling."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._tail = np.zeros(0, dtype=np.float32)

    def add(self, samples: Samples) -> None:
        """Take the next block."""
        from audioguide.audio.clips import resample

        x = np.concatenate((self._tail, samples))
        self.peak = max(self.peak, float(np.abs(samples).max(initial=0.0)))
        floor = 10 ** (_TRUE_PEAK_FLOOR_DB / 20)
        near = np.flatnonzero(np.abs(x[:max(0, x.size - _CONTEXT)]) > floor)
        if near.size:
            # Loud stretches with their context, joined where they touch, and set apart
            # by silence so that each is oversampled on its own, all in one call.
            breaks = np.flatnonzero(np.diff(near) > 2 * _CONTEXT)
            starts = np.maximum(0, np.concatenate(([near[0]], near[breaks + 1])) - _CONTEXT)
            stops = np.concatenate((near[breaks], [near[-1]])) + _CONTEXT + 1
            gap = np.zeros(2 * _CONTEXT, dtype=np.float32)
            joined = np.concatenate([part for a, b in zip(starts, stops, strict=True)
                                     for part in (x[a:b], gap)])
            self.peak = max(self.peak, float(np.abs(resample(joined, 1, _OVERSAMPLE)).max()))
        self._tail = x[-2 * _CONTEXT:]

    def dbtp(self) -> float:
        """The true peak so far, in dBTP."""
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf
