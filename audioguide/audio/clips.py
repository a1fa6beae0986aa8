"""Engine output -> clean mono float clips at the session's sample rate.

pydub reads whatever the engine wrote (WAV from espeak-ng and SAPI5, AIFF from
macOS whatever the extension says); a windowed-sinc polyphase filter
resamples it (no linear interpolation); the silence the engine adds around a
phrase is trimmed, so the timeline alone decides every pause; short
raised-cosine fades stop clicks.
"""

from __future__ import annotations

import functools
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
    raw, rate = _read(data)
    samples = resample(raw, rate, sample_rate)
    return fade(trim(samples, sample_rate), sample_rate)


def spoken_seconds(data: bytes) -> float:
    """How long one engine file sounds, trimmed as :func:`decode` trims it (at the file's
    own rate, without resampling it)."""
    raw, rate = _read(data)
    return trim(raw, rate).size / rate


def _read(data: bytes) -> tuple[Samples, int]:
    """(float32 mono samples, sample rate) of one engine file."""
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
    return raw, segment.frame_rate


#: Half-length of the resampling filter, in zero crossings of its sinc.
_TAPS_PER_SIDE = 32
#: Kaiser window beta: about 80 dB of stop-band rejection.
_KAISER_BETA = 8.0


def resample(samples: Samples, source_rate: int, target_rate: int) -> Samples:
    """Polyphase resampling from ``source_rate`` to ``target_rate`` (ratio of small integers).

    A Kaiser-windowed sinc low-pass at the lower of the two Nyquist limits,
    applied phase by phase so that only the output samples are computed; no
    linear interpolation, no aliasing above about -80 dB.
    """
    if source_rate == target_rate:
        return samples
    g = gcd(source_rate, target_rate)
    up, down = target_rate // g, source_rate // g
    if up > 1024 or down > 1024:
        raise ValueError(f"cannot resample {source_rate} Hz to {target_rate} Hz")
    taps = _filter(up, down)
    # With x zero-stuffed by ``up`` and filtered by taps centred on D, output n is
    #   sum_k taps[r + k*up] * x[q - k],  q, r = divmod(n*down + D, up):
    # a convolution of x with every up-th tap (phase r), read at q.
    delay = taps.size // 2
    n_out = samples.size * up // down
    source = samples.astype(np.float64)
    if down == 1 and up <= _CONVOLVE_PHASES:
        # Whole-number upsampling (22,050 Hz -> 44,100 Hz): the outputs of each phase are
        # every up-th one, and read consecutive samples of its convolution.
        out = np.zeros(n_out)
        for phase in range(up):
            first = (phase - delay) % up
            count = len(range(first, n_out, up))
            if count:
                filtered = np.convolve(source, taps[phase::up])
                q0 = (first + delay) // up
                part = filtered[q0:q0 + count]
                out[first:first + part.size * up:up] = part
        return np.asarray(out, dtype=np.float32)
    q, r = np.divmod(np.arange(n_out) * down + delay, up)
    if up <= _CONVOLVE_PHASES:
        out = np.zeros(n_out)
        for phase in range(up):
            chosen = np.flatnonzero(r == phase)
            if chosen.size:
                filtered = np.convolve(source, taps[phase::up])
                inside = q[chosen] < filtered.size
                out[chosen[inside]] = filtered[q[chosen[inside]]]
        return np.asarray(out, dtype=np.float32)
    # Many phases (24 kHz -> 44.1 kHz has 147): convolving x whole with each phase would
    # compute every output 147 times. The pattern of phases repeats every ``up`` outputs,
    # which read a window sliding by ``down`` inputs: each block of ``up`` outputs is its
    # window (L inputs) times one fixed L x up matrix of taps, a matrix product.
    k = -(-taps.size // up)
    bank = np.zeros((up, k))
    for phase in range(up):
        bank[phase, : taps[phase::up].size] = taps[phase::up]
    # Output up*m + j reads padded[m*down + offset[j] + k - 1 - kk] with phase[j]'s taps
    # (x[i] = padded[i + k - 1]).
    offset, phase_of = np.divmod(np.arange(up) * down + delay, up)
    lo = int(offset.min())
    width = int(offset.max()) - lo + k
    matrix = np.zeros((width, up))
    rows = offset[None, :] + (k - 1 - np.arange(k))[:, None] - lo  # k x up
    matrix[rows, np.arange(up)[None, :]] = bank[phase_of].T
    blocks = -(-n_out // up)
    if blocks == 0:
        return np.zeros(0, dtype=np.float32)
    need = (blocks - 1) * down + lo + width
    padded = np.zeros(max(need, source.size + 2 * k))
    padded[k - 1:k - 1 + source.size] = source
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)[lo::down][:blocks]
    out = np.empty(blocks * up)
    for first in range(0, blocks, _MATRIX_BLOCKS):
        chunk = windows[first:first + _MATRIX_BLOCKS]
        out[first * up:(first + chunk.shape[0]) * up] = (chunk @ matrix).ravel()
    return np.asarray(out[:n_out], dtype=np.float32)


#: Up to this many phases, whole-signal convolution per phase is the faster way.
_CONVOLVE_PHASES = 8
#: Windows multiplied at once (4096 x about 145 float64 for 24 kHz: under 5 MB).
_MATRIX_BLOCKS = 4096


@functools.cache
def _filter(up: int, down: int) -> npt.NDArray[np.float64]:
    """The low-pass filter of the zero-stuffed signal at ``up`` times the source rate."""
    factor = max(up, down)
    length = 2 * _TAPS_PER_SIDE * factor + 1
    t = (np.arange(length) - length // 2) / factor
    taps = np.sinc(t) * np.kaiser(length, _KAISER_BETA)
    return np.asarray(taps * up / taps.sum(), dtype=np.float64)


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
