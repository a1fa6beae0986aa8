"""Mastering: one static gain to the loudness target, and a limiter only where peaks need it.

Loudness is measured by ffmpeg's ``ebur128`` filter, the same meter the tests
and podcast apps' guidance use. Integrated loudness is gated, so long silences
do not pull the figure down, and a static gain never lifts them. MP3 encoding
can raise peaks a little, so the limiter aims below the published ceiling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from audioguide import ffmpeg
from audioguide.clips import Samples

log = logging.getLogger(__name__)

#: -19 LUFS for mono sounds as loud as the usual -16 LUFS stereo podcast target.
TARGET_LUFS = -19.0
#: Published true-peak ceiling, measured on the decoded MP3.
CEILING_DBTP = -1.5
#: Headroom kept for the encoder's overshoot.
ENCODER_MARGIN_DB = 1.0
#: Most measure-and-correct rounds after limiting or adding a bed.
CORRECTIONS = 3
#: The limiter's look-ahead and release window.
LIMITER_WINDOW_S = 0.010


class Source(Protocol):
    """Anything that renders a range of samples (a :class:`~audioguide.mix.Mixer`)."""

    total: int

    def render(self, a: int, b: int) -> Samples:
        """Samples ``a`` to ``b``."""
        ...


def master(voice: Source, sample_rate: int, target_lufs: float = TARGET_LUFS,
           ceiling_dbtp: float = CEILING_DBTP,
           bed: Callable[[float], Source] | None = None) -> Callable[[], Iterator[Samples]]:
    """Measure, then return a function that streams the mastered session block by block.

    The voice is measured once; one static gain brings it to ``target_lufs``.
    ``bed``, when given, makes the ambience for a voice at a given loudness and
    is added after that gain. The limiter works on each block with enough of
    its neighbours around it to look ahead. When the limiter engages or a bed
    is added, the result is measured again and corrected, a few times at most.
    Every pass regenerates the blocks; the session never exists whole.
    """
    before = ffmpeg.measure(_stream(voice, 1.0, None, None), sample_rate)
    gain_db = target_lufs - before.integrated_lufs
    limit_at = ceiling_dbtp - ENCODER_MARGIN_DB
    log.info("loudness %.1f LUFS, true peak %.1f dBTP; gain %+.1f dB",
             before.integrated_lufs, before.true_peak_dbtp, gain_db)
    window = max(1, int(LIMITER_WINDOW_S * sample_rate))
    limiter = (limit_at, sample_rate, window)
    # A correction moves voice and bed together: one static gain over everything.
    correction_db = 0.0

    def blocks() -> Iterator[Samples]:
        layer = bed(target_lufs + correction_db) if bed else None
        return _stream(voice, 10 ** ((gain_db + correction_db) / 20), layer, limiter)

    if bed is None and before.true_peak_dbtp + gain_db <= limit_at:
        return blocks
    for _ in range(CORRECTIONS):
        after = ffmpeg.measure(blocks(), sample_rate, true_peak=False)
        step = target_lufs - after.integrated_lufs
        log.info("now %.2f LUFS; correcting %+.2f dB", after.integrated_lufs, step)
        if abs(step) <= 0.2:
            break
        correction_db += step
    return blocks


def _stream(voice: Source, gain: float, bed: Source | None,
            limiter: tuple[float, int, int] | None) -> Iterator[Samples]:
    """The session in blocks: voice times gain, plus the bed, limited with look-ahead."""
    from audioguide.mix import ranges

    margin = 2 * limiter[2] + 1 if limiter else 0
    for a, b in ranges(voice.total):
        lo, hi = max(0, a - margin), min(voice.total, b + margin)
        block = voice.render(lo, hi)
        block *= np.float32(gain)
        if bed is not None:
            block += bed.render(lo, hi)
        if limiter:
            limit(block, limiter[1], limiter[0])
        yield block[a - lo:b - lo]


def limit(samples: Samples, sample_rate: int, ceiling_db: float) -> int:
    """Smoothly pull every sample above ``ceiling_db`` down to it; return how many were over.

    The gain needed at each sample is spread by a minimum filter and then a
    moving average over the same window, so the smoothed gain is never above
    what any sample needs. Only the regions around the peaks are touched.
    """
    threshold = np.float32(10 ** (ceiling_db / 20))
    over = _over(samples, threshold)
    if over.size == 0:
        return 0
    w = max(1, int(LIMITER_WINDOW_S * sample_rate))
    breaks = np.flatnonzero(np.diff(over) > 4 * w)
    starts = np.concatenate(([over[0]], over[breaks + 1]))
    ends = np.concatenate((over[breaks], [over[-1]]))
    for a, b in zip(starts, ends, strict=True):
        lo, hi = max(0, int(a) - 2 * w), min(samples.size, int(b) + 2 * w + 1)
        region = samples[lo:hi]
        need = np.minimum(1.0, threshold / np.maximum(np.abs(region), 1e-12))
        gain = _moving_mean(_moving_min(need, w), w)
        region *= np.minimum(gain, need).astype(np.float32)
    return int(over.size)


def _moving_min(x: npt.NDArray[np.floating[Any]], w: int) -> npt.NDArray[np.float64]:
    """Minimum over the 2w+1 samples centred on each sample (edges padded with 1)."""
    padded = np.pad(x.astype(np.float64), w, constant_values=1.0)
    result: npt.NDArray[np.float64] = np.lib.stride_tricks.sliding_window_view(
        padded, 2 * w + 1).min(axis=1)
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
