"""Phone-ready output: loudness, chapters, transcript, cover art, ambience, format options."""

from __future__ import annotations

import itertools
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audioguide.audio import ambience
from audioguide.cli import cli
from tests.conftest import (
    SAMPLE_RATE,
    assert_refused,
    built_path,
    decode,
    loudness,
    probe,
    silences,
)

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow


def build(out: Path, *args: str) -> Path:
    result = CliRunner().invoke(cli, ["build", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return built_path(result)


@pytest.mark.parametrize(
    "args",
    [
        ["breath", "--minutes", "5"],
        ["body-scan", "--minutes", "10", "--ambience", "rain"],
        ["walking", "--minutes", "6", "--ambience", "ocean", "--chime", "bell"],
        ["check-in", "--minutes", "3", "--ambience", "brown", "--ambience-level", "-12"],
        ["journal", "--minutes", "6"],
        ["congruence", "--minutes", "8", "--loudness", "-16"],
    ],
)
def test_loudness_and_true_peak(tmp_path: Path, args: list[str]) -> None:
    path = build(tmp_path, *args)
    integrated, true_peak = loudness(path)
    target = -16.0 if "--loudness" in args else -19.0
    assert abs(integrated - target) <= 1.0, integrated
    assert true_peak <= -1.5, true_peak


def section_titles(kind: str, minutes: str) -> list[str]:
    result = CliRunner().invoke(cli, ["preview", kind, "--minutes", minutes])
    return [line.split("# ", 1)[1] for line in result.output.splitlines() if "  # " in line]


def test_chapters_in_time_order_with_titles_and_bounds(tmp_path: Path) -> None:
    path = build(tmp_path, "body-scan", "--minutes", "30")
    chapters = probe(path)["chapters"]
    assert len(chapters) >= 4
    starts = [float(c["start_time"]) for c in chapters]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert float(chapters[-1]["end_time"]) == pytest.approx(1800.0, abs=0.001)
    for before, after in itertools.pairwise(chapters):
        assert before["end_time"] == after["start_time"]
    assert [c["tags"]["title"] for c in chapters] == section_titles("body-scan", "30")


def vtt_cues(path: Path) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)\n(.+)",
                      path.read_text())
    return [(seconds(a), seconds(b), text) for a, b, text in cues]


def assert_webvtt_blocks(text: str) -> None:
    """The file's shape as the W3C WebVTT syntax has it: "WEBVTT" alone on the first line,
    then a blank line; then blocks separated by blank lines, each a NOTE (without "-->")
    or a cue (an optional identifier, a timing line, at least one line of text)."""
    assert text.endswith("\n") and "\r" not in text
    header, *blocks = text.rstrip("\n").split("\n\n")
    assert header == "WEBVTT"
    assert blocks and blocks[0].startswith("NOTE ") and "-->" not in blocks[0]
    timing = re.compile(r"\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d")
    for number, block in enumerate(blocks[1:], 1):
        lines = block.split("\n")
        assert lines[0] == str(number) and timing.fullmatch(lines[1]), block
        assert lines[2:] and all(line.strip() and "-->" not in line for line in lines[2:])


def test_transcript_cues_start_where_speech_starts(tmp_path: Path) -> None:
    path = build(tmp_path, "breath", "--minutes", "6", "--name", "Kim")
    vtt = path.with_suffix(".vtt")
    assert_webvtt_blocks(vtt.read_text(encoding="utf-8"))
    cues = vtt_cues(vtt)
    lyrics = probe(path)["format"]["tags"]["lyrics-eng"].splitlines()
    assert [text for _, _, text in cues] == lyrics
    onsets = [end for _, end in silences(path, noise_db=-45, min_s=0.1)]
    for start, end, text in cues:
        nearest = min(onsets, key=lambda t: abs(t - start))
        assert abs(nearest - start) <= 0.150, (text, start, nearest)
        assert end > start


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_cover_embedded_and_beside_the_mp3(tmp_path: Path) -> None:
    path = build(tmp_path, "grounding", "--minutes", "5")
    picture = [s for s in probe(path)["streams"] if s["codec_type"] == "video"]
    assert picture and picture[0]["codec_name"] == "png"
    assert picture[0]["disposition"]["attached_pic"] == 1
    assert picture[0]["width"] == picture[0]["height"] >= 1400
    embedded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-an", "-c:v", "copy", "-f", "image2pipe",
         "-"], check=True, capture_output=True).stdout
    assert embedded == path.with_suffix(".png").read_bytes()
    width, height = png_size(embedded)
    assert width == height >= 1400


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def test_ambience_fills_pauses_below_the_voice_with_fades(tmp_path: Path) -> None:
    path = build(tmp_path, "breath", "--minutes", "5", "--ambience", "rain")
    quiet = build(tmp_path / "none", "breath", "--minutes", "5")
    samples, plain = decode(path), decode(quiet)
    cues = vtt_cues(path.with_suffix(".vtt"))
    voice = np.concatenate([samples[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]
                            for a, b, _ in cues])
    def span(x: np.ndarray, a: float, b: float) -> np.ndarray:
        return x[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]

    # Pauses between lines that hold no chime: silent without ambience...
    gaps = [(b1 + 1.0, a2 - 1.0) for (_, b1, _), (a2, _, _) in itertools.pairwise(cues)
            if a2 - b1 > 6 and rms_db(span(plain, b1 + 1.0, a2 - 1.0)) < -80]
    assert len(gaps) >= 3
    bed = np.concatenate([span(samples, a, b) for a, b in gaps])
    # ...and with it, a bed well below the voice.
    assert -60 < rms_db(bed) < rms_db(voice) - 15
    start, end = samples[: SAMPLE_RATE // 4], samples[int(2.5 * SAMPLE_RATE):3 * SAMPLE_RATE]
    assert rms_db(start) < rms_db(end) - 10  # fading in during the settle time
    assert rms_db(samples[-SAMPLE_RATE // 50:]) < rms_db(bed) - 20  # faded out at the end


def test_bed_ducks_under_speech_and_has_no_seams() -> None:
    rate = SAMPLE_RATE
    bed = ambience.Bed("brown", rate, 70 * rate, -40.0, [(30 * rate, 40 * rate)])
    # Rendered in uneven, forward-moving ranges, as the master streams it.
    edges = [0, 1000, 77_777, *range(100_000, 70 * rate, 123_457), 70 * rate]
    buffer = np.concatenate([bed.render(a, b) for a, b in itertools.pairwise(edges)])
    assert buffer.size == 70 * rate
    outside = rms_db(buffer[20 * rate:25 * rate])
    inside = rms_db(buffer[33 * rate:38 * rate])
    assert inside == pytest.approx(outside + ambience.DUCK_DB, abs=1.5)
    steps = np.abs(np.diff(buffer[10 * rate:60 * rate]))
    boundaries = [b - 10 * rate for b in range(0, 70 * rate, ambience._BLOCK)
                  if 10 * rate < b < 60 * rate]
    assert boundaries
    assert max(steps[b - 1] for b in boundaries) < np.percentile(steps, 99.99)


def test_sample_rate_and_bitrate_options(tmp_path: Path) -> None:
    path = build(tmp_path, "check-in", "--minutes", "2.5", "--sample-rate", "48000",
                 "--bitrate", "96")
    stream = probe(path)["streams"][0]
    assert int(stream["sample_rate"]) == 48000 and int(stream["bit_rate"]) == 96000
    assert abs(decode(path).size - 2.5 * 60 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--ambience", "forest"], ["--ambience", "rain, ocean, brown"]),
        (["--chime", "gong"], ["--chime", "bowl, bell, soft"]),
        (["--loudness", "-5"], ["--loudness", "-30 to -10"]),
        (["--bitrate", "320"], ["--bitrate", "48 to 128"]),
        (["--ambience-level", "0"], ["--ambience-level", "-40 to -6"]),
        (["--sample-rate", "22050"], ["--sample-rate", "32000, 44100, 48000"]),
    ],
)
def test_bad_audio_options(tmp_path: Path, args: list[str], words: list[str]) -> None:
    result = CliRunner().invoke(cli, ["build", "breath", "--minutes", "5", *args,
                                      "--out", str(tmp_path)])
    assert_refused(result)
    for word in words:
        assert word in result.output
    assert list(tmp_path.iterdir()) == []
