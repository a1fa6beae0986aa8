"""Bad input: one clear paragraph naming the field, a non-zero exit, no traceback, no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioguide.script import templates
from audioguide.tts import pyttsx3_engine
from tests.conftest import assert_refused, run


@pytest.mark.parametrize(("flag", "value"), [("--bitrate", "0"), ("--sample-rate", "0"),
                                             ("--bitrate", "64.5"), ("--settle", "-1")])
def test_zero_and_odd_values_are_refused_not_defaulted(flag: str, value: str,
                                                       tmp_path: Path) -> None:
    result = run("build", "breath", "--minutes", "5", flag, value, "--out", str(tmp_path))
    assert_refused(result, flag, out=tmp_path)


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        ("0", ["--minutes", "above 0"]),
        ("-3", ["--minutes", "above 0"]),
        ("10000", ["--minutes", "at most 90 minutes"]),
        ("nan", ["--minutes", "above 0"]),
        ("inf", ["--minutes"]),
        ("ten", ["--minutes", "'ten' is not a number", "above 0 and at most 90 minutes"]),
        ("1", ["--minutes", f"at least {templates.get_kind('breath').min_minutes:g} minutes"]),
    ],
)
def test_bad_minutes(tmp_path: Path, minutes: str, words: list[str]) -> None:
    assert_refused(run("build", "breath", "--minutes", minutes, "--out", str(tmp_path)),
                   *words, out=tmp_path)


def test_unknown_kind_lists_the_known_ones(tmp_path: Path) -> None:
    result = run("build", "yoga-nidra", "--minutes", "10", "--out", str(tmp_path))
    assert_refused(result, "KIND", "yoga-nidra", "breath", out=tmp_path)


def test_unknown_voice_says_how_to_list_voices(tmp_path: Path) -> None:
    result = run("build", "breath", "--minutes", "5", "--voice", "nobody", "--out", str(tmp_path))
    assert_refused(result, "--voice", "audioguide voices", out=tmp_path)


def test_output_folder_that_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("build", "breath", "--minutes", "5", "--out", str(blocker / "sessions"))
    assert_refused(result, "--out", "cannot write")


def test_several_bad_options_reported_together(tmp_path: Path) -> None:
    result = run("build", "breath", "--minutes", "0", "--rate", "900", "--chime", "gong",
                 "--out", str(tmp_path))
    assert_refused(result, "3 options", "--minutes", "--rate", "--chime", out=tmp_path)


def test_over_long_name(tmp_path: Path) -> None:
    result = run("build", "breath", "--minutes", "5", "--name", "x" * 80, "--out", str(tmp_path))
    assert_refused(result, "--name", "at most 40", out=tmp_path)


def test_ffmpeg_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    result = run("build", "breath", "--minutes", "5", "--out", str(out))
    assert_refused(result, "ffmpeg is not installed", "apt-get install ffmpeg", out=out)


def test_espeak_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyttsx3_engine, "find_espeak_library", lambda: None)
    # The engine's version is found once per process: neither take this test's missing
    # library into it, nor let it leave "espeak-ng missing" behind for later tests (a
    # week built after it was taken for out of date).
    pyttsx3_engine._backend_version.cache_clear()
    try:
        result = run("build", "breath", "--minutes", "5", "--out", str(tmp_path), "--no-cache")
    finally:
        pyttsx3_engine._backend_version.cache_clear()
    assert_refused(result, "espeak-ng is not installed", "apt-get install espeak-ng",
                   out=tmp_path)


def test_template_syntax_error_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "broken.j2").write_text(
        "{#\ntitle: Broken\ndescription: d\nmin_minutes: 1\nmax_silence: 30\n#}\n"
        "Hello.\n{% if minutes %}\nunclosed\n"
    )
    monkeypatch.setattr(templates, "shipped_dir", lambda: folder)
    templates._scan.cache_clear()
    try:
        out = tmp_path / "out"
        result = run("build", "broken", "--minutes", "2", "--out", str(out))
    finally:
        templates._scan.cache_clear()
    assert_refused(result, "broken.j2", "line", out=out)


def test_version_and_help() -> None:
    assert run("--version").output.startswith("audioguide, version")
    for command in ("build", "preview", "kinds", "voices"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "-v, --verbose" in result.output


def test_kinds_lists_breath_with_its_minimum() -> None:
    result = run("kinds")
    assert result.exit_code == 0
    shortest = templates.get_kind("breath").min_minutes
    assert "breath" in result.output and f"from {shortest:g} min" in result.output


def test_voices_lists_the_default() -> None:
    result = run("voices")
    assert result.exit_code == 0
    assert "gmw/en-us" in result.output and "(default)" in result.output


def test_preview_shows_times_pauses_and_chimes(tmp_path: Path) -> None:
    result = run("preview", "breath", "--minutes", "6.5", "--name", "Sam")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("00:00.000")
    assert any("[chime bowl]" in line for line in lines)
    assert any("[pause" in line for line in lines)
    assert any("Hello, Sam." in line for line in lines)
    assert lines[-1] == "06:30.000  (end)"
