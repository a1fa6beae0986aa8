"""``audioguide voices``: samples to choose a voice by ear, Kokoro's English voices from npm,
and the listing with measured figures."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from audioguide.errors import EngineError
from audioguide.tts import kokoro_js
from audioguide.tts.kokoro_engine import KokoroEngine
from tests.conftest import SAMPLE_RATE, assert_refused, decode, loudness, run

ROOT = Path(__file__).resolve().parents[2]


def test_a_sample_is_twenty_seconds_of_the_voice_at_the_session_loudness(tmp_path: Path) -> None:
    result = run("voices", "--sample", "heart", "--engine", "hibari", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip().splitlines()[-1])
    assert path == tmp_path / "sample-hibari-heart.mp3"
    samples = decode(path)
    assert 15 <= samples.size / SAMPLE_RATE <= 25
    integrated, true_peak = loudness(path)
    assert abs(integrated + 19) <= 1.5 and true_peak <= -1.0
    # Speech, with the pauses between its lines: a third to two thirds of it sounds.
    frames = samples[: samples.size // 441 * 441].reshape(-1, 441)
    sounding = np.mean(20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9) > -45)
    assert 0.4 <= sounding <= 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["sample-hibari-heart.mp3"]


def test_a_sample_of_a_voice_no_engine_has_is_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOGUIDE_ENGINE")
    result = run("voices", "--sample", "af_nobody", "--out", str(tmp_path / "out"))
    assert_refused(result, "no installed engine has the voice 'af_nobody'", out=tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["af_heart", "bf_emma"])
def test_english_kokoro_voices_from_npm_speak_for_real(voice: str, english_kokoro: Path) -> None:
    from audioguide.audio.clips import decode as decode_clip

    engine = KokoroEngine()
    assert engine.resolve(voice) == voice
    clip = engine.synthesize(["Notice your breath, just as it is."], voice, 62)[0]
    samples = decode_clip(clip, SAMPLE_RATE)
    assert 1.2 <= samples.size / SAMPLE_RATE <= 5
    assert np.sqrt((samples ** 2).mean()) > 0.01


def test_the_npm_voices_file_holds_the_english_voices(english_kokoro: Path) -> None:
    with np.load(english_kokoro) as archive:
        names = sorted(archive.files)
        assert len(names) == 28 and all(n[:1] in "ab" for n in names)
        assert {"af_heart", "bf_emma", "am_michael", "bm_george"} <= set(names)
        assert archive["af_heart"].shape == (510, 1, 256)
        assert archive["af_heart"].dtype == np.float32
    voices = {v.id: v for v in KokoroEngine().voices()}
    assert voices["bf_emma"].languages == ("British English",)


def _tarball(folder: Path, voices: dict[str, bytes]) -> Path:
    path = folder / "kokoro-js-1.2.1.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in voices.items():
            info = tarfile.TarInfo(f"package/voices/{name}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_tarball_that_is_not_the_published_one_is_refused(tmp_path: Path) -> None:
    fake = _tarball(tmp_path, {"af_heart": bytes(kokoro_js.VOICE_BYTES)})
    with pytest.raises(EngineError, match="is not the published one"):
        kokoro_js._english_voices(fake)


def test_without_npm_the_download_says_how_to_get_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "AUDIOGUIDE_VOICES": str(tmp_path / "v")}
    done = subprocess.run([sys.executable, "-m", "audioguide.cli", "voices", "--download",
                           "kokoro-js"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "npm is not installed" in done.stderr and "apt-get install npm" in done.stderr
    assert not (tmp_path / "v" / "kokoro" / kokoro_js.VOICES_FILE).exists()


def test_the_listing_shows_measured_figures_for_the_default_voice() -> None:
    result = run("voices", "--engine", "hibari")
    assert result.exit_code == 0, result.output
    heart = next(line for line in result.output.splitlines() if line.startswith("heart "))
    assert "DNSMOS" in heart and "CPU-s per s" in heart and "(default)" in heart
