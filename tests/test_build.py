"""End to end: the CLI builds real sessions; the MP3s are decoded and measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from tests.conftest import SAMPLE_RATE, built_path, decode, loudness, probe

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow

TOLERANCE_SAMPLES = int(0.020 * SAMPLE_RATE)


def build(out: Path, *args: str) -> Path:
    result = CliRunner().invoke(cli, ["build", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    path = built_path(result)
    assert path.parent == out and path.exists()
    return path


@pytest.mark.parametrize("minutes", [5, 6.25, 7.5, 12.34])
def test_length_is_exact(tmp_path: Path, minutes: float) -> None:
    path = build(tmp_path, "breath", "--minutes", str(minutes))
    samples = decode(path)
    assert abs(samples.size - round(minutes * 60 * SAMPLE_RATE)) <= TOLERANCE_SAMPLES
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, path.with_suffix(".vtt").name, path.with_suffix(".png").name])


@pytest.mark.slow
def test_ninety_minutes_is_exact(tmp_path: Path) -> None:
    path = build(tmp_path, "breath", "--minutes", "90")
    assert abs(decode(path).size - 90 * 60 * SAMPLE_RATE) <= TOLERANCE_SAMPLES


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("session")
    return build(out, "breath", "--minutes", "5", "--name", "Alex")


def test_loudness_and_true_peak(session: Path) -> None:
    integrated, true_peak = loudness(session)
    assert -20.0 <= integrated <= -18.0
    assert true_peak <= -1.5


def test_speech_is_audible_and_not_clipped(session: Path) -> None:
    samples = decode(session)
    assert float(np.max(np.abs(samples))) < 0.95
    one_second = SAMPLE_RATE
    rms = [float((samples[i:i + one_second] ** 2).mean()) ** 0.5
           for i in range(0, samples.size - one_second, one_second)]
    assert sum(r > 0.01 for r in rms) > 0.2 * len(rms)  # a fifth of the seconds have sound


def test_constant_bitrate_mono_44k_with_info_header(session: Path) -> None:
    info = probe(session)
    stream = info["streams"][0]
    assert stream["codec_name"] == "mp3"
    assert int(stream["sample_rate"]) == SAMPLE_RATE
    assert stream["channels"] == 1
    assert int(stream["bit_rate"]) == 64_000
    data = session.read_bytes()
    assert data[:4] == b"ID3\x04"  # ID3v2.4
    tag_size = 10 + sum(b << (7 * (3 - i)) for i, b in enumerate(data[6:10]))  # syncsafe
    first_frame = data[tag_size:tag_size + 1000]
    assert first_frame[:2] == b"\xff\xfb"  # MPEG-1 layer III right after the tag
    assert b"Info" in first_frame and b"LAME" in first_frame  # CBR header, gapless fields


def test_tags_read_by_ffprobe(session: Path) -> None:
    tags = probe(session)["format"]["tags"]
    assert tags["title"] == "Breath awareness — 5 min"
    assert tags["artist"] == "audioguide"
    assert tags["album"] == "audioguide practice sessions"
    assert tags["genre"] == "Meditation"
    assert len(tags["date"]) == 10
    assert "pause or stop" in tags["comment"]
    recipe = json.loads(tags["audioguide-recipe"])
    assert recipe["kind"] == "breath"
    assert recipe["minutes"] == 5
    assert recipe["voice"] == "gmw/en-us"
    assert recipe["rate"] == 120
    assert recipe["name"] == "Alex"
    assert recipe["audioguide"]
    assert "Hello, Alex." in tags["lyrics-eng"]
