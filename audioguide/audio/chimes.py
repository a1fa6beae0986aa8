"""Chimes synthesised in code: inharmonic partials with slow, unequal decays.

A singing bowl's partials sit at non-integer ratios of its fundamental, and
each is a slightly detuned pair, which gives the slow shimmer ("beating") of a
real bowl; higher partials die away sooner. A bell is brighter and shorter.
Every chime starts on a few-millisecond attack and ends faded to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from audioguide.audio.clips import Samples, fade


@dataclass(frozen=True)
class ChimeSpec:
    """How one chime sounds."""

    description: str
    fundamental_hz: float
    #: (frequency ratio, relative amplitude, seconds to fall by 60 dB)
    partials: tuple[tuple[float, float, float], ...]
    seconds: float
    #: Peak level, as a fraction of full scale, before mastering.
    peak: float
    #: Hz between the two halves of each partial's detuned pair.
    beat_hz: float = 0.7


CHIMES: dict[str, ChimeSpec] = {
    "bowl": ChimeSpec(
        "a warm singing bowl",
        fundamental_hz=196.0,
        partials=((1.0, 1.0, 9.0), (2.71, 0.55, 6.0), (5.05, 0.25, 3.5), (8.0, 0.1, 2.0)),
        seconds=6.0,
        peak=0.42,
    ),
    "bell": ChimeSpec(
        "a clear, bright bell",
        fundamental_hz=523.25,
        partials=(
            (0.5, 0.35, 5.0), (1.0, 1.0, 4.0), (1.19, 0.45, 3.0),
            (1.5, 0.35, 2.5), (2.0, 0.4, 2.0), (2.51, 0.18, 1.4), (3.01, 0.12, 1.0),
        ),
        seconds=4.0,
        peak=0.36,
        beat_hz=1.1,
    ),
    "soft": ChimeSpec(
        "a quiet bowl, to mark the end of a long silence gently",
        fundamental_hz=261.6,
        partials=((1.0, 1.0, 6.0), (2.71, 0.4, 4.0), (5.05, 0.15, 2.5)),
        seconds=4.5,
        peak=0.2,
    ),
}

DEFAULT_CHIME = "bowl"
ATTACK_S = 0.004
RELEASE_S = 0.6


@cache
def render(name: str, sample_rate: int) -> Samples:
    """The chime called ``name`` as float32 mono samples (cached; do not modify)."""
    spec = CHIMES[name]
    n = int(spec.seconds * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    out = np.zeros(n, dtype=np.float64)
    for ratio, amplitude, t60 in spec.partials:
        freq = spec.fundamental_hz * ratio
        decay = np.exp(-t * (np.log(1000.0) / t60))
        pair = np.sin(2 * np.pi * (freq - spec.beat_hz / 2) * t) + np.sin(
            2 * np.pi * (freq + spec.beat_hz / 2) * t + 0.6
        )
        out += amplitude * decay * pair
    samples = np.asarray(out / np.max(np.abs(out)) * spec.peak, dtype=np.float32)
    samples = fade(samples, sample_rate, ATTACK_S, RELEASE_S)
    samples.setflags(write=False)
    return samples


def length(name: str, sample_rate: int) -> int:
    """Length in samples of the chime called ``name``."""
    return int(CHIMES[name].seconds * sample_rate)
