"""Engine output -> clean mono float clips at the session's sample rate.

pydub reads whatever the engine wrote (WAV from espeak-ng and SAPI5, AIFF from
macOS whatever the extension says); scipy resamples polyphase (no linear
interpolation); the silence the engine adds around a phrase is trimmed, so the
timeline alone decides every pause; short raised-cosine fades stop clicks.
"""

from __future__ import annotations

import io
from math import gcd

import numpy as np
import numpy.typing as npt

from audioguide.errors import EngineError

Samples = npt.NDArray[np.float32]

#: Anything quieter than this (dBFS) at either end of a phrase counts as silence.
TRIM_THRESHOLD_DB = -50.0
#: Kept before the first and after the last audible sample.
LEAD_S = 0.015
TAIL_S = 0.040
FADE_IN_S = 0.008
FADE_OUT_S = 0.030


def decode(data: bytes, sample_rate: int) -> Samples:
    """Decode one engine file to float32 mono at ``sample_rate``, trimmed and faded."""
    from pydub import AudioSegment

    try:
        # WAV (espeak-ng, SAPI5) has pydub's pure-Python reader; other formats go
        # through ffmpeg.
        fmt = "wav" if data[:4] == b"RIFF" else None
        segment = AudioSegment.from_file(io.BytesIO(data), format=fmt)
    except Exception as exc:
        raise EngineError(f"The speech engine wrote audio that cannot be read: {exc}") from exc
    segment = segment.set_channels(1).set_sample_width(2)
    raw = np.frombuffer(segment.raw_data, dtype="<i2").astype(np.float32) / 32768.0
    samples = resample(raw, segment.frame_rate, sample_rate)
    return fade(trim(samples, sample_rate), sample_rate)


def resample(samples: Samples, source_rate: int, target_rate: int) -> Samples:
    """Polyphase resampling (Kaiser-windowed FIR) from ``source_rate`` to ``target_rate``."""
    if source_rate == target_rate:
        return samples
    from scipy.signal import resample_poly

    g = gcd(source_rate, target_rate)
    out = resample_poly(samples, target_rate // g, source_rate // g)
    return np.asarray(out, dtype=np.float32)


def trim(samples: Samples, sample_rate: int) -> Samples:
    """Cut the silence before the first and after the last audible sample."""
    threshold = 10 ** (TRIM_THRESHOLD_DB / 20)
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        raise EngineError("The speech engine returned a phrase with no audible sound.")
    start = max(0, int(loud[0]) - int(LEAD_S * sample_rate))
    end = min(samples.size, int(loud[-1]) + 1 + int(TAIL_S * sample_rate))
    return samples[start:end].copy()


def fade(samples: Samples, sample_rate: int,
         fade_in_s: float = FADE_IN_S, fade_out_s: float = FADE_OUT_S) -> Samples:
    """Raised-cosine fade in and out, in place; returns ``samples``."""
    n_in = min(samples.size // 2, int(fade_in_s * sample_rate))
    n_out = min(samples.size // 2, int(fade_out_s * sample_rate))
    if n_in:
        samples[:n_in] *= _ramp(n_in)
    if n_out:
        samples[-n_out:] *= _ramp(n_out)[::-1]
    return samples


def _ramp(n: int) -> Samples:
    return np.asarray(0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n)), dtype=np.float32)
