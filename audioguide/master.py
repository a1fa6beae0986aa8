"""Mastering: one static gain to the loudness target, and a limiter only where peaks need it.

Loudness is measured by ffmpeg's ``ebur128`` filter, the same meter the tests
and podcast apps' guidance use. Integrated loudness is gated, so long silences
do not pull the figure down, and a static gain never lifts them. MP3 encoding
can raise peaks a little, so the limiter aims below the published ceiling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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


def master(samples: Samples, sample_rate: int, target_lufs: float = TARGET_LUFS,
           ceiling_dbtp: float = CEILING_DBTP,
           bed: Callable[[Samples, float], None] | None = None) -> ffmpeg.Loudness:
    """Bring ``samples`` (modified in place) to ``target_lufs`` under the true-peak ceiling.

    ``bed``, when given, is called with the samples and the target after the
    voice is at its level, to add ambience relative to it. Returns the
    measurement of the voice before any gain.
    """
    before = ffmpeg.measure(samples, sample_rate)
    gain_db = target_lufs - before.integrated_lufs
    samples *= np.float32(10 ** (gain_db / 20))
    log.info("loudness %.1f LUFS, true peak %.1f dBTP; gain %+.1f dB",
             before.integrated_lufs, before.true_peak_dbtp, gain_db)
    if bed is not None:
        bed(samples, target_lufs)
    limit_at = ceiling_dbtp - ENCODER_MARGIN_DB
    changed = limit(samples, sample_rate, limit_at) > 0 or bed is not None
    # Limiting lowers the loudness a little, and a bed can pass the loudness gate;
    # measure again and correct, a few times at most, until on target.
    for _ in range(CORRECTIONS if changed else 0):
        after = ffmpeg.measure(samples, sample_rate)
        correction = target_lufs - after.integrated_lufs
        log.info("now %.2f LUFS; correcting %+.2f dB", after.integrated_lufs, correction)
        if abs(correction) <= 0.2:
            break
        samples *= np.float32(10 ** (correction / 20))
        limit(samples, sample_rate, limit_at)
    return before


def limit(samples: Samples, sample_rate: int, ceiling_db: float) -> int:
    """Smoothly pull every sample above ``ceiling_db`` down to it; return how many were over.

    The gain needed at each sample is spread by a minimum filter and then a
    moving average over the same window, so the smoothed gain is never above
    what any sample needs. Only the regions around the peaks are touched.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

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
        gain = uniform_filter1d(minimum_filter1d(need, size=2 * w + 1), size=2 * w + 1)
        region *= np.minimum(gain, need).astype(np.float32)
    return int(over.size)


def _over(samples: Samples, threshold: np.float32, block: int = 1 << 20) -> npt.NDArray[np.intp]:
    """Indexes of samples above ``threshold``, found block by block (no full-size copy)."""
    found = [np.flatnonzero(np.abs(samples[i:i + block]) > threshold) + i
             for i in range(0, samples.size, block)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)
