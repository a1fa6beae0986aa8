"""Ambience beds: their filters, their loudness known in advance, and builds that use it."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audioguide.audio import ambience
from audioguide.audio.loudness import Meter, impulse_response
from audioguide.cli import cli
from tests.conftest import SAMPLE_RATE, built_path, loudness

KINDS = [kind for kind in ambience.AMBIENCES if kind != "none"]


def response_db(section: tuple[float, ...], hz: float) -> float:
    """The magnitude response of one second-order section at ``hz``, in dB."""
    b0, b1, b2, a1, a2 = section
    z = np.exp(-2j * math.pi * hz / SAMPLE_RATE)
    h = (b0 + b1 * z + b2 * z * z) / (1 + a1 * z + a2 * z * z)
    return 20 * math.log10(abs(h))


@pytest.mark.parametrize("cutoff", [30.0, 500.0, 7000.0])
def test_butterworth_sections_have_their_cutoff_and_slope(cutoff: float) -> None:
    high = ambience._butterworth(cutoff, SAMPLE_RATE, high=True)
    low = ambience._butterworth(cutoff, SAMPLE_RATE, high=False)
    for section in (high, low):
        assert response_db(section, cutoff) == pytest.approx(-3.01, abs=0.01)
    # Flat in the pass band, 12 dB per octave (second order) far into the stop band.
    assert abs(response_db(high, min(20 * cutoff, 20_000))) < 0.1
    assert abs(response_db(low, cutoff / 20)) < 0.1
    assert response_db(high, cutoff / 8) < -35.8
    assert response_db(low, cutoff * 4) < -23.5


@pytest.mark.parametrize("kind", KINDS)
def test_the_kept_impulse_response_holds_all_but_a_trace(kind: str) -> None:
    longer = impulse_response(ambience.sections(kind, SAMPLE_RATE), 4 * ambience.FILTER)
    energy = np.square(longer)
    assert energy[ambience.FILTER:].sum() < 1e-10 * energy.sum()


@pytest.mark.parametrize("kind", KINDS)
def test_the_beds_estimated_energy_is_what_it_measures(kind: str) -> None:
    rate, total = SAMPLE_RATE, 95 * SAMPLE_RATE
    speech = [(s * rate, (s + 4) * rate) for s in range(10, 90, 9)]
    bed = ambience.Bed(kind, rate, total, -30.0, speech)
    meter = Meter(rate, total)
    for a in range(0, total, 100_000):
        meter.append(bed.render(a, min(total, a + 100_000)))
    meter.flush()
    estimate = bed.energies(meter.step)
    assert estimate.size == meter.bins.size
    assert meter.integrated(estimate) == pytest.approx(meter.integrated(), abs=0.1)
    # Second by second too: through the fades, the ducking and an ocean's swell.
    seconds = slice(0, total // meter.step // 10 * 10)
    measured_s = meter.bins[seconds].reshape(-1, 10).sum(axis=1)
    estimated_s = estimate[seconds].reshape(-1, 10).sum(axis=1)
    ratio_db = 10 * np.log10(estimated_s[1:] / measured_s[1:])
    assert np.percentile(np.abs(ratio_db), 95) < 1.0


def test_a_bed_never_sounds_over_the_session_edges() -> None:
    rate = SAMPLE_RATE
    bed = ambience.Bed("rain", rate, 20 * rate, -20.0, [])
    first, middle = bed.render(0, 64), bed.render(10 * rate, 10 * rate + 4410)
    last = bed.render(20 * rate - 64, 20 * rate)
    assert np.abs(first).max() < 1e-3 * np.abs(middle).max()
    assert np.abs(last).max() < 1e-3 * np.abs(middle).max()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_loud_bed_reaches_the_target_in_one_encode(
        kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The mix's loudness is set from the voice's measurement and the bed's estimate; the
    file then measures on target without being encoded again, even with the bed at its
    loudest (its pauses pass the gate)."""
    caplog.set_level(logging.INFO, logger="audioguide.audio.master")
    result = CliRunner().invoke(cli, ["build", "breath", "--minutes", "5", "--ambience",
                                      kind, "--ambience-level", "-6", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    encodes = [r for r in caplog.records if r.getMessage().startswith("file at")]
    assert len(encodes) == 1, [r.getMessage() for r in caplog.records]
    integrated, true_peak = loudness(built_path(result))
    assert integrated == pytest.approx(-19.0, abs=0.5)
    assert true_peak <= -1.5


def test_a_bed_rendered_from_far_in_matches_and_refuses_ranges_outside_it() -> None:
    rate = SAMPLE_RATE
    whole = ambience.Bed("brown", rate, 40 * rate, -20.0, [(5 * rate, 9 * rate)])
    late = ambience.Bed("brown", rate, 40 * rate, -20.0, [(5 * rate, 9 * rate)])
    expected = np.concatenate([whole.render(a, min(40 * rate, a + 100_000))
                               for a in range(0, 40 * rate, 100_000)])
    start = 30 * rate + 17
    assert np.array_equal(late.render(start, start + 5000), expected[start:start + 5000])
    assert late._kept.size < 2 * ambience._BLOCK + 5000  # what came before was not kept
    with pytest.raises(ValueError, match="not within"):
        late.render(40 * rate - 10, 40 * rate + 10)
