"""Mastering: one static gain to the loudness target, and a limiter only where peaks need it.

Loudness is measured by ffmpeg's ``ebur128`` filter, the same meter the tests
and podcast apps' guidance use. Integrated loudness is gated, so long silences
do not pull the figure down, and a static gain never lifts them. MP3 encoding
can raise peaks a little, so the limiter aims below the published ceiling.
"""

from __future__ import annotations

import logging

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
#: The limiter's look-ahead and release window.
LIMITER_WINDOW_S = 0.010


def master(samples: Samples, sample_rate: int, target_lufs: float = TARGET_LUFS,
           ceiling_dbtp: float = CEILING_DBTP) -> ffmpeg.Loudness:
    """Bring ``samples`` (modified in place) to ``target_lufs``; return the measurement before."""
    before = ffmpeg.measure(samples, sample_rate)
    gain_db = target_lufs - before.integrated_lufs
    samples *= np.float32(10 ** (gain_db / 20))
    limit_at = ceiling_dbtp - ENCODER_MARGIN_DB
    log.info("loudness %.1f LUFS, true peak %.1f dBTP; gain %+.1f dB",
             before.integrated_lufs, before.true_peak_dbtp, gain_db)
    if before.true_peak_dbtp + gain_db > limit_at:
        limited = limit(samples, sample_rate, limit_at)
        log.info("limiter engaged on %d samples", limited)
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
