"""The build's own loudness meter and true-peak meter, checked against ffmpeg's ebur128
filter (the reference the other tests measure finished files with), and the check of
the encoded file made while it is written."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from audioguide.audio import ffmpeg
from audioguide.audio.clips import Samples
from audioguide.audio.loudness import FILTER_LENGTH, Meter, TruePeak
from audioguide.audio.master import _Voice, limit
from audioguide.errors import EncodeError
from tests.conftest import loudness


def ebur128(samples: Samples, rate: int) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of raw samples, by ffmpeg's ebur128 filter."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-f", "f32le", "-ar", str(rate), "-ac", "1",
         "-i", "pipe:0", "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
        input=samples.astype("<f4").tobytes(), check=True, capture_output=True).stderr.decode()
    summary = err[err.rfind("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+) dBFS", summary)
    assert integrated and peak, err[-500:]
    return float(integrated[1]), float(peak[1])


def speech_like(rate: int, seconds: float, seed: int = 1) -> Samples:
    """Bursts of shaped noise at several levels, parted by silences from a few samples
    (shorter than the filters' memory) to seconds long, and a quiet stretch that the
    relative gate leaves out."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(rate * seconds), dtype=np.float32)
    at = rate // 3
    while at < out.size - rate:
        length = int(rng.uniform(0.3, 3.0) * rate)
        burst = rng.standard_normal(length) * rng.uniform(0.02, 0.25)
        burst *= np.sin(np.linspace(0, np.pi * rng.integers(1, 6), length)) ** 2
        out[at:at + length] = burst[:max(0, min(length, out.size - at))]
        at += length + int(rng.choice([3, 500, FILTER_LENGTH - 1, rate // 2, 2 * rate]))
    out[rate * 4:rate * 6] *= 0.01
    return out


def stream(samples: Samples, rate: int, block: int) -> Meter:
    meter = Meter(rate)
    for start in range(0, samples.size, block):
        meter.add(start, samples[start:start + block])
    return meter


@pytest.mark.parametrize("rate", [32_000, 44_100, 48_000])
def test_integrated_loudness_agrees_with_ffmpeg(rate: int) -> None:
    x = speech_like(rate, 40)
    reference, _ = ebur128(x, rate)
    # ffmpeg prints one decimal: agreeing to 0.05 LU shows as at most 0.1 apart.
    assert stream(x, rate, 1 << 16).integrated() == pytest.approx(reference, abs=0.1)
    sine = (0.1 * np.sin(2 * np.pi * 997 * np.arange(rate * 10) / rate)).astype(np.float32)
    assert stream(sine, rate, 1 << 16).integrated() == pytest.approx(ebur128(sine, rate)[0],
                                                                     abs=0.1)


def test_blocks_of_any_size_and_pieces_at_their_places_measure_the_same() -> None:
    rate = 44_100
    x = speech_like(rate, 30, seed=7)
    whole = stream(x, rate, x.size).integrated()
    for block in (1, 4_410, 65_536, 1_000_003):
        if block > 1:
            assert stream(x, rate, block).integrated() == pytest.approx(whole, abs=1e-6)
    # Only the pieces that sound, each at its position, parted by at least the filters'
    # memory (as the master gives them): the same figure.
    loud = np.flatnonzero(x)
    breaks = np.flatnonzero(np.diff(loud) > FILTER_LENGTH)
    starts = np.concatenate(([loud[0]], loud[breaks + 1]))
    stops = np.concatenate((loud[breaks], [loud[-1]])) + 1
    pieces = Meter(rate, x.size)
    for a, b in reversed(list(zip(starts, stops, strict=True))):  # any order
        pieces.add(int(a), x[a:b])
    pieces.flush()
    assert len(starts) > 5
    assert pieces.integrated() == pytest.approx(whole, abs=1e-6)
    assert Meter(rate, x.size).integrated() == -np.inf  # nothing added: silence
    # Pieces whose filtered sound would overlap cannot be measured apart: refused.
    close = Meter(rate, x.size)
    close.add(0, x[:1000])
    with pytest.raises(ValueError, match="less than 4096 samples"):
        close.add(1500, x[1500:3000])


def test_true_peak_agrees_with_ffmpeg_and_sees_between_samples() -> None:
    rate = 44_100
    t = np.arange(rate * 2)
    # A quarter-rate tone sampled 45 degrees off its crests: every sample is 3 dB below
    # the peak that a player's reconstruction reaches.
    tone = (0.9 * np.sin(np.pi / 2 * t + np.pi / 4)).astype(np.float32)
    x = np.concatenate((speech_like(rate, 5), tone, speech_like(rate, 5, seed=3)))
    meter = TruePeak()
    for start in range(0, x.size, 10_000):
        meter.add(x[start:start + 10_000])
    _, reference = ebur128(x, rate)
    sample_peak = 20 * np.log10(np.abs(x).max())
    assert meter.dbtp() > sample_peak + 2.5
    assert meter.dbtp() == pytest.approx(reference, abs=0.2)


class Layer:
    """A voice layer made of fixed samples (what the master reads through a Mixer)."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples
        self.total = samples.size

    def render(self, a: int, b: int) -> Samples:
        return self.samples[a:b].copy()

    def sounding(self) -> list[tuple[int, int]]:
        loud = np.flatnonzero(self.samples)
        breaks = np.flatnonzero(np.diff(loud) > 1)
        starts = np.concatenate(([loud[0]], loud[breaks + 1]))
        stops = np.concatenate((loud[breaks], [loud[-1]])) + 1
        return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


@pytest.mark.parametrize("abrupt", [False, True])
@pytest.mark.parametrize("gain_db", [0.0, 6.0, 12.0])
def test_voice_loudness_through_the_limiter_is_that_of_the_limited_voice(
        gain_db: float, abrupt: bool) -> None:
    rate = 44_100
    x = speech_like(rate, 30, seed=5) * np.float32(3)  # peaks well over the ceiling
    if abrupt:  # sounds that start and end at full level, as a chime starts
        noise = np.random.default_rng(2).standard_normal(x.size).astype(np.float32)
        x = np.where(x != 0, noise * np.float32(0.4), x).astype(np.float32)
    voice = _Voice(Layer(x), rate, (-2.5, rate, int(0.01 * rate)))
    limited = x * np.float32(10 ** (gain_db / 20))
    assert limit(limited, rate, -2.5)
    expected = stream(limited, rate, 1 << 16).integrated()
    assert voice.loudness(gain_db) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("decoder", ["mpg123", "ffmpeg"])
def test_the_encoded_file_is_measured_while_it_is_written(
        decoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rate = 44_100
    x = speech_like(rate, 60, seed=11)
    if decoder == "ffmpeg":  # a machine without mpg123
        which = shutil.which
        monkeypatch.setattr(shutil, "which",
                            lambda name: None if name == "mpg123" else which(name))
    else:
        assert shutil.which("mpg123"), "mpg123 is part of the set-up (scripts/setup)"
    path = tmp_path / "session.mp3"
    reported = ffmpeg.encode_mp3(iter([x[:100_000], x[100_000:]]), rate, path, 64)
    lufs, peak = loudness(path)
    assert reported.integrated_lufs == pytest.approx(lufs, abs=0.1)
    assert reported.true_peak_dbtp == pytest.approx(peak, abs=0.2)
    # The file is what ffmpeg alone writes with the same settings: the copy handed to
    # the decoder changes nothing in it.
    alone = tmp_path / "alone.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(rate), "-ac", "1",
                    "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", "64k", "-ar", str(rate),
                    "-write_xing", "1", "-id3v2_version", "0", "-write_id3v1", "0",
                    "-map_metadata", "-1", str(alone)], input=x.astype("<f4").tobytes(),
                   check=True)
    assert path.read_bytes() == alone.read_bytes()


def test_a_decoder_that_loses_audio_fails_the_build_of_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ffmpeg, "_decoder", lambda rate: [
        "sh", "-c", "cat >/dev/null; head -c 4000 /dev/zero"])
    with pytest.raises(EncodeError, match=re.escape("decodes to 0.02 s of the 10.00 s encoded")):
        ffmpeg.encode_mp3(speech_like(44_100, 10), 44_100, tmp_path / "x.mp3", 64)


def test_a_decoder_that_fails_is_named_with_its_own_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The encoder then fails too (its copy has nowhere to go): the decoder's message is the
    # one that says what happened.
    monkeypatch.setattr(ffmpeg, "_decoder", lambda rate: [
        "sh", "-c", "echo 'no float output in this build' >&2; exit 3"])
    with pytest.raises(EncodeError, match="sh could not decode x.mp3 to check it "
                                          r"\(exit 3\): no float output in this build"):
        ffmpeg.encode_mp3(speech_like(44_100, 600), 44_100, tmp_path / "x.mp3", 64)
