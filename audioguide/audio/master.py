"""Mastering: one static gain to the loudness target, and a limiter only where peaks need it.

Loudness is measured as ITU-R BS.1770 and EBU R128 define it (the meter in
:mod:`~audioguide.audio.loudness`, checked against ffmpeg's ``ebur128``
filter, which the tests use). Integrated loudness is gated, so long silences
do not pull the figure down, and a static gain never lifts them. MP3 encoding
can raise peaks a little, so the limiter aims below the published ceiling.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from audioguide import memory
from audioguide.audio import ffmpeg
from audioguide.audio.clips import Samples
from audioguide.audio.loudness import FILTER_LENGTH, Meter, joined

log = logging.getLogger(__name__)

#: -19 LUFS for mono sounds as loud as the usual -16 LUFS stereo podcast target.
TARGET_LUFS = -19.0
#: Published true-peak ceiling, measured on the decoded MP3.
CEILING_DBTP = -1.5
#: Headroom kept for the encoder's overshoot.
ENCODER_MARGIN_DB = 1.0
#: Most encodes again, each limiting lower, when the file's true peak is over the ceiling.
OVERSHOOT_RETRIES = 3
#: Most measure-and-correct rounds after limiting or adding a bed.
CORRECTIONS = 3
#: The limiter's look-ahead and release window.
LIMITER_WINDOW_S = 0.010


class Renderer(Protocol):
    """Anything that renders a range of samples (an ambience bed)."""

    total: int

    def render(self, a: int, b: int) -> Samples:
        """Samples ``a`` to ``b``."""
        ...


class Layer(Renderer, Protocol):
    """A bed under the voice, whose loudness is known without rendering it."""

    def energies(self, step: int) -> npt.NDArray[np.float64]:
        """Its K-weighted energy in each ``step``-sample bin of the session."""
        ...

    def close(self) -> None:
        """Let go of what rendering it holds."""
        ...


class Source(Renderer, Protocol):
    """A renderer that knows where it sounds (a :class:`~audioguide.audio.mix.Mixer`)."""

    def sounding(self) -> list[tuple[int, int]]:
        """The stretches that hold any sound, in order, not overlapping."""
        ...


#: How far from the target the finished file may measure before it is encoded again.
ENCODE_TOLERANCE_LU = 0.5
#: Most encodes of one session while closing in on the target.
ENCODES = 4
#: What MP3 encoding typically takes off integrated loudness (measured on decoded
#: files at 48-128 kbit/s); aimed for in advance, checked on the file afterwards.
MP3_LOSS_LU = 0.4


def master(voice: Source, sample_rate: int,
           encode: Callable[[Iterator[Samples]], ffmpeg.Loudness],
           target_lufs: float = TARGET_LUFS, ceiling_dbtp: float = CEILING_DBTP,
           bed: Callable[[float], Layer] | None = None) -> ffmpeg.Loudness:
    """Bring the session to ``target_lufs`` and hand it, block by block, to ``encode``.

    Silence does not count towards integrated loudness (it is gated out), so
    the voice is measured over only the stretches that sound (a fraction of
    the session), each rendered once (:class:`_Voice`). One static gain brings
    it to the target; where the limiter will engage, only the limited stretches
    are measured again and the gain corrected. Then ``encode`` receives the
    whole session (with the bed, if any, made for a voice at the target),
    writes the file and returns its loudness as decoded; if that misses the
    target or the true-peak ceiling, the session is encoded again with the
    difference corrected. With a bed, the mix's loudness is found from the voice's
    measurement and the bed's own estimate of its energy. The session never exists
    whole.
    """
    window = max(1, int(LIMITER_WINDOW_S * sample_rate))
    limit_at = ceiling_dbtp - ENCODER_MARGIN_DB
    measured = _Voice(voice, sample_rate, (limit_at, sample_rate, window))
    memory.release()  # the stretches rendered to be measured
    gain_db = target_lufs - measured.loudness(0.0)
    log.info("voice %.1f LUFS, peak %.1f dBFS; gain %+.1f dB", target_lufs - gain_db,
             measured.peak_db, gain_db)
    if measured.peak_db + gain_db > limit_at:
        for _ in range(CORRECTIONS):
            step = target_lufs - measured.loudness(gain_db)
            log.info("limited voice %.2f LUFS; correcting %+.2f dB", target_lufs - step, step)
            if abs(step) < 0.1:
                break
            gain_db += step
    # From here a correction moves voice and bed together, like one gain on all,
    # and aims MP3_LOSS_LU high for what encoding takes off.
    def blocks(correction_db: float, ceiling: float) -> Iterator[Samples]:
        layer = bed(target_lufs + correction_db) if bed else None
        return _stream(voice, 10 ** ((gain_db + correction_db) / 20), layer,
                       (ceiling, sample_rate, window))

    correction_db = MP3_LOSS_LU
    if bed is not None:
        # A bed in long pauses passes the loudness gate, and the limiter flattens what
        # is pushed into it: close in on the target for the mix first. The voice's and
        # the bed's energies add (the two are unrelated), bin by bin.
        def mix_loudness(correction: float) -> float:
            bins = measured.bins(gain_db + correction)
            bins += bed(target_lufs + correction).energies(measured.meter.step)
            return measured.meter.integrated(bins)

        correction_db = _converge(mix_loudness, target_lufs + MP3_LOSS_LU, correction_db,
                                  "mix")
    encoded: list[ffmpeg.Loudness] = []

    def encode_at(correction: float) -> float:
        encoded.append(encode(blocks(correction, limit_at)))
        return encoded[-1].integrated_lufs

    correction_db = _converge(encode_at, target_lufs, correction_db, "file")
    result = encoded[-1]
    lower = limit_at
    for _ in range(OVERSHOOT_RETRIES):
        if result.true_peak_dbtp <= ceiling_dbtp:
            break
        # The codec overshot the ceiling: limit lower by the overshoot, and again if the
        # peak was a transient below the limit (a plosive's burst of high frequencies
        # grows by 2-3 dB in the encoder, wherever the limit is above it).
        lower -= result.true_peak_dbtp - ceiling_dbtp + 0.2
        log.info("true peak %.2f dBTP over the ceiling; limiting at %.2f dBFS",
                 result.true_peak_dbtp, lower)
        result = encode(blocks(correction_db, lower))
    return result


class _Stretch(NamedTuple):
    """A sounding stretch of the voice, measured at unit gain."""

    start: int
    stop: int
    peak: float
    #: The first 100 ms bin its filtered sound reaches, and the energy of each from it.
    first: int
    energies: npt.NDArray[np.float64]


class _Voice:
    """The voice layer's loudness at any gain, through the limiter.

    Each sounding stretch is rendered and K-weighted once, at unit gain; at
    another gain its energy scales, unless the limiter would touch it, and only
    those stretches are rendered again. Nothing but the stretches' 100 ms
    energies is kept.
    """

    def __init__(self, voice: Source, sample_rate: int,
                 limiter: tuple[float, int, int]) -> None:
        self.voice = voice
        self.limiter = limiter
        self.meter = Meter(sample_rate, voice.total)
        self.stretches: list[_Stretch] = []

        def measure(a: int, b: int, samples: Samples) -> _Stretch:
            first, energies = self.meter.energies(a, samples)
            return _Stretch(a, b, float(np.abs(samples).max(initial=0.0)), first, energies)

        # The mixer renders in order, here; the filtering (numpy's FFT, which lets go of
        # the interpreter) runs on every core beside it, a few stretches at a time.
        cores = os.cpu_count() or 1
        with cf.ThreadPoolExecutor(cores) as helpers:
            jobs: collections.deque[cf.Future[_Stretch]] = collections.deque()
            for a, b in joined(voice.sounding(), FILTER_LENGTH):
                if len(jobs) > cores:
                    self.stretches.append(jobs.popleft().result())
                jobs.append(helpers.submit(measure, a, b, voice.render(a, b)))
            self.stretches += [job.result() for job in jobs]
        peak = max((s[2] for s in self.stretches), default=0.0)
        self.peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf

    def loudness(self, gain_db: float) -> float:
        """Integrated loudness of the voice at ``gain_db``, limited."""
        return self.meter.integrated(self.bins(gain_db))

    def bins(self, gain_db: float) -> npt.NDArray[np.float64]:
        """The K-weighted energy of each 100 ms bin of the voice at ``gain_db``, limited."""
        gain = 10 ** (gain_db / 20)
        threshold = 10 ** (self.limiter[0] / 20)
        bins = np.zeros_like(self.meter.bins)
        for a, b, peak, first, energies in self.stretches:
            energies = energies * gain ** 2
            if peak * gain > threshold:
                self._limited(a, b, gain, first, energies)
            bins[first:first + energies.size] += energies
        return bins

    def _limited(self, a: int, b: int, gain: float, first: int,
                 energies: npt.NDArray[np.float64]) -> None:
        """Replace, in the energies of stretch ``a``-``b`` at ``gain``, those of the bins
        that limiting changes: only they are K-weighted again, each run of them from the
        filters' memory's length before it (or from the stretch's start, silence before)."""
        # Limited with the silence around it (at least FILTER_LENGTH samples, more than the
        # limiter's reach), as the stream limits it: a peak near the edge is smoothed into
        # the silence there, not cut off at the array's end.
        margin = 2 * self.limiter[2] + 1
        padded = np.zeros(b - a + 2 * margin, dtype=np.float32)
        padded[margin:margin + b - a] = self.voice.render(a, b)
        padded *= np.float32(gain)
        touched = limit(padded, self.limiter[1], self.limiter[0])
        samples = padded[margin:margin + b - a]
        step = self.meter.step
        runs: list[tuple[int, int]] = []
        for lo, hi in touched:
            lo, hi = max(0, lo - margin), min(b - a, hi - margin)
            if hi <= lo:
                continue
            b0, b1 = (a + lo) // step, (a + hi + FILTER_LENGTH - 2) // step + 1
            if runs and b0 <= runs[-1][1]:
                runs[-1] = (runs[-1][0], b1)
            else:
                runs.append((b0, b1))
        for b0, b1 in runs:
            start = max(a, b0 * step - FILTER_LENGTH)
            stop = min(b, b1 * step)
            fb, redone = self.meter.energies(start, samples[start - a:stop - a],
                                             b0 * step, b1 * step)
            energies[fb - first:fb - first + redone.size] = redone


def _converge(measure: Callable[[float], float], target: float, start: float,
              what: str) -> float:
    """The correction (dB) at which ``measure`` is within tolerance of ``target``.

    The response is not one for one (gating, limiting), so after the first try
    each step is scaled by how the last one moved the measurement (a secant).
    """
    tried: list[tuple[float, float]] = []
    correction = start
    for _ in range(ENCODES):
        measured = measure(correction)
        log.info("%s at %.2f LUFS (correction %+.2f dB)", what, measured, correction)
        step = target - measured
        if abs(step) <= ENCODE_TOLERANCE_LU / 2 or (what == "file"
                                                      and abs(step) <= ENCODE_TOLERANCE_LU):
            break
        tried.append((correction, measured))
        slope = 1.0
        if len(tried) >= 2 and tried[-1][1] != tried[-2][1]:
            slope = (tried[-1][0] - tried[-2][0]) / (tried[-1][1] - tried[-2][1])
        correction += step * min(max(slope, 1.0), 4.0)
    return correction


def _stream(voice: Source, gain: float, bed: Layer | None,
            limiter: tuple[float, int, int]) -> Iterator[Samples]:
    """The whole session in blocks: voice times gain, plus the bed, limited with
    look-ahead."""
    from audioguide.audio.mix import ranges

    margin = 2 * limiter[2] + 1
    try:
        for a, b in ranges(voice.total):
            lo, hi = max(0, a - margin), min(voice.total, b + margin)
            block = voice.render(lo, hi)
            block *= np.float32(gain)
            if bed is not None:
                block += bed.render(lo, hi)
            limit(block, limiter[1], limiter[0])
            yield block[a - lo:b - lo]
    finally:
        if bed is not None:
            bed.close()


def limit(samples: Samples, sample_rate: int, ceiling_db: float) -> list[tuple[int, int]]:
    """Smoothly pull every sample above ``ceiling_db`` down to it; return the ranges of
    samples it may have changed (none: nothing was over).

    The gain needed at each sample is spread by a minimum filter and then a
    moving average over the same window, so the smoothed gain is never above
    what any sample needs. Only the regions around the peaks are touched.
    """
    threshold = np.float32(10 ** (ceiling_db / 20))
    over = _over(samples, threshold)
    if over.size == 0:
        return []
    w = max(1, int(LIMITER_WINDOW_S * sample_rate))
    breaks = np.flatnonzero(np.diff(over) > 4 * w)
    starts = np.concatenate(([over[0]], over[breaks + 1]))
    ends = np.concatenate((over[breaks], [over[-1]]))
    touched = []
    for a, b in zip(starts, ends, strict=True):
        lo, hi = max(0, int(a) - 2 * w), min(samples.size, int(b) + 2 * w + 1)
        region = samples[lo:hi]
        need = np.minimum(1.0, threshold / np.maximum(np.abs(region), 1e-12))
        gain = _moving_mean(_moving_min(need, w), w)
        region *= np.minimum(gain, need).astype(np.float32)
        touched.append((lo, hi))
    return touched


def _moving_min(x: npt.NDArray[np.floating[Any]], w: int) -> npt.NDArray[np.float64]:
    """Minimum over the 2w+1 samples centred on each sample (edges padded with 1), in
    linear time (van Herk and Gil-Werman: running minima within blocks of the window's
    length, forwards and backwards; any window spans the end of one block and the
    start of the next)."""
    k = 2 * w + 1
    n = x.size
    blocks = -(-(n + 2 * w) // k)
    padded = np.ones(blocks * k)
    padded[w:w + n] = x
    shaped = padded.reshape(blocks, k)
    forward = np.minimum.accumulate(shaped, axis=1).ravel()
    backward = np.minimum.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].ravel()
    result: npt.NDArray[np.float64] = np.minimum(backward[:n], forward[k - 1:k - 1 + n])
    return result


def _moving_mean(x: npt.NDArray[np.float64], w: int) -> npt.NDArray[np.float64]:
    """Mean over the 2w+1 samples centred on each sample (edges padded with 1)."""
    padded = np.pad(x, w + 1, constant_values=1.0)
    sums = np.cumsum(padded)
    result: npt.NDArray[np.float64] = (sums[2 * w + 1:-1] - sums[:-2 * w - 2]) / (2 * w + 1)
    return result


def _over(samples: Samples, threshold: np.float32, block: int = 1 << 20) -> npt.NDArray[np.intp]:
    """Indexes of samples above ``threshold``, found block by block (no full-size copy)."""
    found = [np.flatnonzero(np.abs(samples[i:i + block]) > threshold) + i
             for i in range(0, samples.size, block)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)
