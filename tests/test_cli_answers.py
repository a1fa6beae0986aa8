"""The command line answers every input: a missing or empty value, or one outside the
schema, gets one clear message naming the option and what it accepts, never a traceback,
and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_refused, run


@pytest.mark.parametrize("command", ["build", "preview"])
@pytest.mark.parametrize("extra", [[], ["--walking"], ["--name", "Ana"]])
def test_minutes_left_out_is_asked_for(command: str, extra: list[str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(command, "breath", *extra)
    assert_refused(result, "--minutes is needed", "--minutes 10", "'audioguide kinds'",
                   out=tmp_path)
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, option, accepted", [
    (["build", "breath", "-m", "5", "--out", ""], "--out", "give a folder"),
    (["build", "breath", "-m", "5", "--out", "  "], "--out", "give a folder"),
    (["preview", "breath", "-m", "5", "--templates", ""], "--templates", "give a folder"),
    (["preview", "-m", "5", "--template", ""], "--template", "give a file"),
    (["week", "--out", ""], "--out", "give a folder"),
    (["week", ""], "PLAN", "give a file"),
    (["week", "--base-url", ""], "--base-url", "http://127.0.0.1:8000/"),
    (["week", "--start", ""], "--start", "give a value"),
    (["batch", "roster.toml", "--scheduler", ""], "--scheduler", "give a value"),
    (["batch", "roster.toml", "--out", ""], "--out", "give a folder"),
    (["batch", "", "--out", "x"], "ROSTER", "give a file"),
    (["voices", "--download", ""], "--download", "give a value"),
    (["serve", "", "--port", "0"], "FOLDER", "give a folder"),
    (["serve", ".", "--host", "", "--port", "0"], "--host", "(127.0.0.1)"),
    (["check", ""], "FILES", "give a file"),
])
def test_an_empty_value_is_refused_not_taken_for_a_default(
        args: list[str], option: str, accepted: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty value meant, silently, the current folder, a local build, a list of voices
    or every network interface."""
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert_refused(result, option, "it is empty", accepted, out=tmp_path)
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, words", [
    (["--pace", "fast"], ["--pace", "'fast' is not offered", "normal, slow"]),
    (["--pace", "Slow"], ["--pace", "'Slow' is not offered"]),
    (["--chime", "gong"], ["--chime", "bowl, bell, soft"]),
    (["--ambience", ""], ["--ambience", "none, rain, ocean, brown"]),
    (["--engine", "festival"], ["--engine", "auto, pyttsx3, piper, kokoro"]),
    (["--loudness-check", "maybe"], ["--loudness-check", "fail, warn"]),
    (["--sample-rate", "22050"], ["--sample-rate", "32000, 44100, 48000"]),
    (["--rate", "fast"], ["--rate", "'fast' is not a number", "80 to 260 words per minute"]),
    (["--rate", "120.5"], ["--rate", "not a whole number"]),
    (["--rate", "nan"], ["--rate", "80 to 260"]),
    (["--bitrate", "1e9"], ["--bitrate", "48 to 128 kbit/s"]),
    (["--settle", "-1"], ["--settle", "0 to 60 seconds"]),
    (["--loudness", "inf"], ["--loudness", "-30 to -10 LUFS"]),
])
def test_a_value_outside_the_schema_gets_the_schemas_message(
        args: list[str], words: list[str], tmp_path: Path) -> None:
    result = run("build", "breath", "-m", "5", "--out", str(tmp_path / "out"), *args)
    assert_refused(result, *words)
    assert result.output.count("Error:") == 1 and "Invalid value" not in result.output
    assert not (tmp_path / "out").exists()


def test_every_bad_value_of_a_command_is_reported_at_once(tmp_path: Path) -> None:
    result = run("build", "breath", "-m", "0", "--pace", "fast", "--rate", "x", "--chime",
                 "gong", "--out", str(tmp_path / "out"))
    assert_refused(result, "4 options", "--minutes: 0 minutes", "--pace: 'fast'",
                   "--rate: 'x' is not a number", "--chime: 'gong' is not offered")
    assert not (tmp_path / "out").exists()


def test_minutes_outside_the_schema_name_the_range(tmp_path: Path) -> None:
    for value in ("abc", "0", "-3", "91", "nan"):
        assert_refused(run("preview", "breath", "-m", value), "--minutes",
                       "above 0 and at most 90 minutes")


def test_help_lists_every_choice_and_completion_offers_them() -> None:
    from click.shell_completion import ShellComplete

    from audioguide.cli import cli

    shown = run("build", "--help").output
    for listed in ("--pace [normal|slow]", "--chime [bowl|bell|soft]",
                   "--ambience [none|rain|ocean|brown]", "--loudness-check [fail|warn]",
                   "--engine [auto|pyttsx3|piper|kokoro]", "--sample-rate [32000|44100|48000]",
                   "--rate INTEGER", "--minutes NUMBER"):
        assert listed in " ".join(shown.split()), listed
    completion = ShellComplete(cli, {}, "audioguide", "_AUDIOGUIDE_COMPLETE")
    offered = completion.get_completions(["build", "breath", "--ambience"], "")
    assert [c.value for c in offered] == ["none", "rain", "ocean", "brown"]
    offered = completion.get_completions(["preview", "breath", "--pace"], "s")
    assert [c.value for c in offered] == ["slow"]
