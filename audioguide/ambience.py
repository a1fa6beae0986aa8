"""Procedural ambience beds: brown noise, rain and ocean, seamless at any length.

A bed is generated block by block from a fixed seed with its filter state
carried across blocks, so it never loops audibly and needs no sound files. It
is added straight into the session buffer (no second full-length array),
faded in and out, and ducked while speech plays so the voice stays clear.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from audioguide.clips import Samples

AMBIENCES = ("none", "rain", "ocean", "brown")
#: Default level of the bed, in LU relative to the voice.
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
    """Integrated loudness (LUFS) of the bed at unit gain, measured once by ffmpeg."""
    from audioguide import ffmpeg

    sample = np.concatenate(list(_blocks(kind, 30 * rate, rate)))
    return ffmpeg.measure(sample, rate).integrated_lufs


def add_bed(samples: Samples, rate: int, kind: str, level_lufs: float,
            speech: Sequence[tuple[int, int]]) -> None:
    """Add the ``kind`` bed into ``samples`` at ``level_lufs``, ducked under ``speech`` spans."""
    if kind == "none":
        return
    gain = np.float32(10 ** ((level_lufs - unit_loudness(kind, rate)) / 20))
    total = samples.size
    fade = min(int(FADE_S * rate), total // 2)
    ramp = int(DUCK_RAMP_S * rate)
    duck = 10 ** (DUCK_DB / 20)
    spans = sorted(speech)
    position = 0
    for block in _blocks(kind, total, rate):
        n = block.size
        index = np.arange(position, position + n)
        envelope = np.ones(n, dtype=np.float32)
        if position < fade:
            envelope = np.minimum(envelope, index / fade)
        if position + n > total - fade:
            envelope = np.minimum(envelope, (total - index) / fade)
        for a, b in spans:
            if b + ramp < position or a - ramp > position + n:
                continue
            # 1 far from speech, ``duck`` inside it, straight ramps either side.
            distance = np.maximum(np.maximum(a - index, index - b), 0) / ramp
            envelope = np.minimum(envelope, duck + (1 - duck) * np.minimum(distance, 1.0))
        samples[position:position + n] += block * envelope * gain
        position += n
