"""``--engine auto``: Kokoro, then Piper, then pyttsx3, as installed here.

Each case runs ``audioguide voices`` in a child process, with engines hidden the way a
machine without them would be: a folder first on ``PYTHONPATH`` whose ``piper`` or
``kokoro_onnx`` package fails to import. The test environment has Kokoro's packaged
model with Japanese voices only, so an English Kokoro voice is "installed" by writing
a voices file with an American-English name into the voices folder (its style
vectors are the packaged jf_alpha's: no English voice pack is available offline).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from audioguide.errors import RequestError
from audioguide.request import Request, validate
from audioguide.tagging import expected_recipe
from audioguide.tts import kokoro_files
from audioguide.tts.auto import choose_engine
from tests.conftest import built_path, probe

ROOT = Path(__file__).resolve().parents[2]


def _hide(folder: Path, *modules: str) -> str:
    for module in modules:
        (folder / module).mkdir(parents=True, exist_ok=True)
        (folder / module / "__init__.py").write_text(
            f"raise ImportError('{module} is hidden for this test')\n")
    return str(folder)


def _english_kokoro_voice(voices: Path) -> None:
    files = kokoro_files.voice_files()
    with np.load(files["jf_alpha"]) as archive:
        style = archive["jf_alpha"]
    (voices / "kokoro").mkdir(parents=True, exist_ok=True)
    np.savez(voices / "kokoro" / "voices-test.npz", af_test=style)


def _choice(tmp_path: Path, hide: tuple[str, ...] = (), english_kokoro: bool = False,
            engine: str | None = None) -> subprocess.CompletedProcess[str]:
    voices = tmp_path / "voices"
    voices.mkdir(exist_ok=True)
    if english_kokoro:
        _english_kokoro_voice(voices)
    model = kokoro_files.model_path()  # reassembled once for the run: share it, not copy it
    assert model is not None
    (voices / "kokoro").mkdir(exist_ok=True)
    if not (voices / "kokoro" / model.name).exists():
        (voices / "kokoro" / model.name).symlink_to(model)
    env = {k: v for k, v in os.environ.items() if k != "AUDIOGUIDE_ENGINE"}
    env["AUDIOGUIDE_VOICES"] = str(voices)
    if engine is not None:
        env["AUDIOGUIDE_ENGINE"] = engine
    if hide:
        env["PYTHONPATH"] = os.pathsep.join([_hide(tmp_path / "hidden", *hide), str(ROOT)])
    return subprocess.run([sys.executable, "-m", "audioguide.cli", "voices"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def _first_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def test_kokoro_with_an_english_voice_comes_first(tmp_path: Path) -> None:
    line = _first_line(_choice(tmp_path, english_kokoro=True))
    assert line.startswith("engine: kokoro ") and "English voice af_test" in line


def test_kokoro_without_an_english_voice_gives_way_to_piper(tmp_path: Path) -> None:
    line = _first_line(_choice(tmp_path))
    assert line.startswith("engine: piper ") and "en_US-joe-medium" in line
    assert "Kokoro has no English voice" in line


def test_hidden_kokoro_gives_way_to_piper(tmp_path: Path) -> None:
    line = _first_line(_choice(tmp_path, hide=("kokoro_onnx",), english_kokoro=True))
    assert line.startswith("engine: piper ") and "Kokoro is not installed" in line


def test_without_natural_voices_pyttsx3_speaks(tmp_path: Path) -> None:
    done = _choice(tmp_path, hide=("kokoro_onnx", "piper"), english_kokoro=True)
    line = _first_line(done)
    assert line.startswith("engine: pyttsx3 ")
    assert "Kokoro is not installed" in line and "Piper is not installed" in line
    assert "gmw/en-us" in done.stdout  # and its voices are listed


def test_the_environment_names_the_default_engine(tmp_path: Path) -> None:
    line = _first_line(_choice(tmp_path, english_kokoro=True, engine="pyttsx3"))
    assert line.startswith("engine: pyttsx3 ") and "AUDIOGUIDE_ENGINE" in line
    done = _choice(tmp_path, engine="espeak")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "AUDIOGUIDE_ENGINE is 'espeak'" in done.stderr and "kokoro" in done.stderr


def test_a_named_voice_picks_the_engine_that_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOGUIDE_ENGINE")
    assert choose_engine("jm_kumo")[0] == "kokoro"
    assert choose_engine("en_US-joe-medium")[0] == "piper"
    assert choose_engine("gmw/en-us")[0] == "pyttsx3"
    with pytest.raises(RequestError, match="no installed engine has the voice 'af_nobody'"):
        choose_engine("af_nobody")


@pytest.mark.slow
def test_the_recipe_stores_the_engine_auto_chose(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOGUIDE_ENGINE")
    request = validate(Request("check-in", 3))
    assert request.engine == "piper"
    assert expected_recipe(request)["engine"] == "piper"
    result = CliRunner().invoke(cli, ["build", "check-in", "--minutes", "3", "--out",
                                      str(tmp_path), "-v"])
    path = built_path(result)
    assert "chosen by --engine auto" in result.output
    recipe = json.loads(probe(path)["format"]["tags"]["audioguide-recipe"])
    assert recipe["engine"] == "piper" and recipe["voice"] == "en_US-joe-medium"
