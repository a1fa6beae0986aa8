"""Resampling and limiting, measured against ideal signals."""

from __future__ import annotations

import numpy as np
import pytest

from audioguide.audio.clips import resample
from audioguide.audio.master import limit


@pytest.mark.parametrize("source", [22_050, 16_000, 48_000, 24_000])
@pytest.mark.parametrize("freq", [440.0, 3_000.0, 7_000.0])
def test_resampled_sine_matches_the_ideal(source: int, freq: float) -> None:
    x = np.sin(2 * np.pi * freq * np.arange(source) / source).astype(np.float32)
    y = resample(x, source, 44_100)
    assert y.size == 44_100
    ideal = np.sin(2 * np.pi * freq * np.arange(y.size) / 44_100)
    error = np.max(np.abs(y[2000:-2000] - ideal[2000:-2000]))
    assert error < 10 ** (-70 / 20)


def test_both_ways_of_filtering_give_the_same_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    # 24 kHz (Kokoro) has 147 phases: filtered by gathering; the same filter applied by
    # whole-signal convolution per phase must give the same output.
    x = np.random.default_rng(7).standard_normal(24_000 * 2).astype(np.float32) * 0.3
    gathered = resample(x, 24_000, 44_100)
    monkeypatch.setattr("audioguide.audio.clips._CONVOLVE_PHASES", 1_000)
    convolved = resample(x, 24_000, 44_100)
    assert gathered.size == convolved.size == 88_200
    assert np.max(np.abs(gathered - convolved)) < 1e-6


def test_no_image_above_the_source_band() -> None:
    # A 10 kHz tone at 22,050 Hz has its image at 12,050 Hz after naive upsampling.
    x = np.sin(2 * np.pi * 10_000 * np.arange(22_050) / 22_050).astype(np.float32)
    y = resample(x, 22_050, 44_100)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    freqs = np.fft.rfftfreq(y.size, 1 / 44_100)
    image = spectrum[np.argmin(np.abs(freqs - 12_050))]
    assert 20 * np.log10(image / spectrum.max()) < -80


def test_limiter_holds_the_ceiling_and_leaves_the_rest() -> None:
    rate = 44_100
    x = (np.sin(np.arange(rate) / 5) * 0.3).astype(np.float32)
    x[20_000:20_200] *= 5  # a burst at 1.5 full scale
    before = x.copy()
    touched = limit(x, rate, -3.0)
    assert len(touched) == 1 and touched[0][0] < 20_000 and touched[0][1] > 20_200
    assert 20 * np.log10(np.abs(x).max()) <= -3.0 + 1e-4
    assert np.array_equal(x[:touched[0][0]], before[:touched[0][0]])  # only there
    assert np.array_equal(x[touched[0][1]:], before[touched[0][1]:])
