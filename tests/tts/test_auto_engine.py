"""``--engine auto``: the best-sounding engine installed here, the faster among equals.

By the measured scores (audioguide.tts.auto.MEASURED): hibari, Kokoro and Piper count as
equal (within 0.1 DNSMOS of each other), so the fastest that is ready speaks: hibari,
then Piper, then Kokoro; pyttsx3 (espeak-ng) last. Each case runs ``audioguide voices``
in a child process, with engines hidden the way a machine without them would be: a
folder first on ``PYTHONPATH`` whose ``hibari``, ``piper`` or ``kokoro_onnx`` package
fails to import. Kokoro's English voices are those ``scripts/setup --dev`` installs
from npm's kokoro-js.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from audioguide.errors import RequestError
from audioguide.request import Request, validate
from audioguide.tagging import expected_recipe
from audioguide.tts import kokoro_files
from audioguide.tts.auto import choose_engine, ranked
from tests.conftest import built_path, probe

ROOT = Path(__file__).resolve().parents[2]


def _hide(folder: Path, *modules: str) -> str:
    for module in modules:
        (folder / module).mkdir(parents=True, exist_ok=True)
        (folder / module / "__init__.py").write_text(
            f"raise ImportError('{module} is hidden for this test')\n")
    return str(folder)


def _english_kokoro_voice(voices: Path, english: Path) -> None:
    (voices / "kokoro").mkdir(parents=True, exist_ok=True)
    if not (voices / "kokoro" / english.name).exists():
        (voices / "kokoro" / english.name).symlink_to(english.resolve())


def _broken_hibari(folder: Path) -> str:
    """A hibari that imports, whose bundled voice model is damaged."""
    package = folder / "hibari"
    (package / "assets").mkdir(parents=True, exist_ok=True)
    (package / "assets" / "hibari.onnx").write_bytes(b"not a model" * 100)
    (package / "__init__.py").write_text("")
    (package / "voices.py").write_text(
        "import os\nASSETS = os.path.join(os.path.dirname(__file__), 'assets')\n"
        "VOICES = {'heart': {'file': 'hibari.onnx', 'bundled': True}}\n"
        "def cache_dir():\n    return ASSETS\n")
    return str(folder)


def _choice(tmp_path: Path, hide: tuple[str, ...] = (), english: Path | None = None,
            engine: str | None = None,
            broken_hibari: bool = False) -> subprocess.CompletedProcess[str]:
    voices = tmp_path / "voices"
    voices.mkdir(exist_ok=True)
    if english is not None:
        _english_kokoro_voice(voices, english)
    model = kokoro_files.model_path()  # reassembled once for the run: share it, not copy it
    assert model is not None
    (voices / "kokoro").mkdir(exist_ok=True)
    if not (voices / "kokoro" / model.name).exists():
        (voices / "kokoro" / model.name).symlink_to(model)
    env = {k: v for k, v in os.environ.items() if k != "AUDIOGUIDE_ENGINE"}
    env["AUDIOGUIDE_VOICES"] = str(voices)
    if engine is not None:
        env["AUDIOGUIDE_ENGINE"] = engine
    first = ([_hide(tmp_path / "hidden", *hide)] if hide else []) + (
        [_broken_hibari(tmp_path / "broken")] if broken_hibari else [])
    if first:
        env["PYTHONPATH"] = os.pathsep.join([*first, str(ROOT)])
    return subprocess.run([sys.executable, "-m", "audioguide.cli", "voices"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def _first_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def test_hibari_speaks_by_default(tmp_path: Path, english_kokoro: Path) -> None:
    line = _first_line(_choice(tmp_path, english=english_kokoro))
    assert line.startswith("engine: hibari ") and "the hibari voice heart sounds best" in line


def test_without_hibari_the_faster_of_equals_piper_speaks(tmp_path: Path,
                                                          english_kokoro: Path) -> None:
    line = _first_line(_choice(tmp_path, hide=("hibari",), english=english_kokoro))
    assert line.startswith("engine: piper ") and "en_US-joe-medium" in line
    assert "hibari is not installed" in line


def test_kokoro_with_an_english_voice_speaks_when_hibari_and_piper_are_hidden(
        tmp_path: Path, english_kokoro: Path) -> None:
    line = _first_line(_choice(tmp_path, hide=("hibari", "piper"), english=english_kokoro))
    assert line.startswith("engine: kokoro ") and "English voice af_heart" in line


def test_kokoro_without_an_english_voice_gives_way_to_piper(tmp_path: Path) -> None:
    line = _first_line(_choice(tmp_path, hide=("hibari",)))
    assert line.startswith("engine: piper ") and "en_US-joe-medium" in line
    assert "Kokoro has no English voice" in line


def test_without_natural_voices_pyttsx3_speaks(tmp_path: Path, english_kokoro: Path) -> None:
    done = _choice(tmp_path, hide=("hibari", "kokoro_onnx", "piper"), english=english_kokoro)
    line = _first_line(done)
    assert line.startswith("engine: pyttsx3 ")
    assert all(f"{name} is not installed" in line for name in ("hibari", "Kokoro", "Piper"))
    assert "gmw/en-us" in done.stdout  # and its voices are listed


def test_a_hibari_that_cannot_load_is_passed_over_with_one_warning(tmp_path: Path) -> None:
    done = _choice(tmp_path, broken_hibari=True)
    line = _first_line(done)
    assert line.startswith("engine: piper ") and "hibari is installed but cannot load" in line
    assert done.stderr.count("hibari is installed but cannot load its voice") == 1
    assert "Traceback" not in done.stderr


def test_the_environment_names_the_default_engine(tmp_path: Path) -> None:
    line = _first_line(_choice(tmp_path, engine="pyttsx3"))
    assert line.startswith("engine: pyttsx3 ") and "AUDIOGUIDE_ENGINE" in line
    done = _choice(tmp_path, engine="espeak")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "AUDIOGUIDE_ENGINE is 'espeak'" in done.stderr and "kokoro" in done.stderr


def test_a_named_voice_picks_the_engine_that_has_it(monkeypatch: pytest.MonkeyPatch,
                                                    english_kokoro: Path) -> None:
    monkeypatch.delenv("AUDIOGUIDE_ENGINE")
    assert choose_engine("heart")[0] == "hibari"
    assert choose_engine("jm_kumo")[0] == "kokoro"
    assert choose_engine("bf_emma")[0] == "kokoro"
    assert choose_engine("en_US-joe-medium")[0] == "piper"
    assert choose_engine("gmw/en-us")[0] == "pyttsx3"
    with pytest.raises(RequestError, match="no installed engine has the voice 'af_nobody'"):
        choose_engine("af_nobody")


def test_ranking_is_by_score_and_the_faster_among_equals() -> None:
    assert ranked(["pyttsx3", "kokoro", "piper", "hibari"]) == [
        "hibari", "piper", "kokoro", "pyttsx3"]
    assert ranked(["pyttsx3", "kokoro"]) == ["kokoro", "pyttsx3"]


@pytest.mark.slow
def test_the_recipe_stores_the_engine_auto_chose(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOGUIDE_ENGINE")
    request = validate(Request("check-in", 3))
    assert request.engine == "hibari"
    assert expected_recipe(request)["engine"] == "hibari"
    result = CliRunner().invoke(cli, ["build", "check-in", "--minutes", "3", "--out",
                                      str(tmp_path), "-v"])
    path = built_path(result)
    assert "chosen by --engine auto" in result.output
    recipe = json.loads(probe(path)["format"]["tags"]["audioguide-recipe"])
    assert recipe["engine"] == "hibari" and recipe["voice"] == "heart"
