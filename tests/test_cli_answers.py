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
    (["--engine", "festival"], ["--engine", "auto, hibari, pyttsx3, piper, kokoro"]),
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
                   "--engine [auto|hibari|pyttsx3|piper|kokoro]",
                   "--sample-rate [32000|44100|48000]",
                   "--rate INTEGER", "--minutes NUMBER"):
        assert listed in " ".join(shown.split()), listed
    completion = ShellComplete(cli, {}, "audioguide", "_AUDIOGUIDE_COMPLETE")
    offered = completion.get_completions(["build", "breath", "--ambience"], "")
    assert [c.value for c in offered] == ["none", "rain", "ocean", "brown"]
    offered = completion.get_completions(["preview", "breath", "--pace"], "s")
    assert [c.value for c in offered] == ["slow"]


@pytest.mark.parametrize("name", ["a\x1b[31mb", "a\nb", "a\x7fb", "a\x00b"[:1] + "\x01",
                                  "caf\udce9"])
@pytest.mark.parametrize("command", ["build", "week"])
def test_an_output_folder_that_cannot_be_printed_as_it_is_is_refused(
        tmp_path: Path, name: str, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of stdout is the path made: with control characters dropped to print
    it, a script would get another path (and a terminal would act on them)."""
    monkeypatch.chdir(tmp_path)
    args = ["breath", "-m", "5"] if command == "build" else []
    result = run(command, *args, "--out", name)
    assert_refused(result, "--out", "control characters", "plain text", out=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("line", ["...", "— … ¡!", "‽", "🙂 🙂", "* * *"])
@pytest.mark.parametrize("command", ["build", "preview"])
def test_a_line_with_nothing_to_say_is_named_as_the_templates_problem(
        tmp_path: Path, line: str, command: str) -> None:
    template = tmp_path / "dots.j2"
    template.write_text(f"Hello there, and welcome.\n\n{line}\n\nGoodbye for now.\n",
                        encoding="utf-8")
    out = tmp_path / "out"
    extra = ["--out", str(out)] if command == "build" else []
    result = run(command, "--template", str(template), "-m", "1", "--engine", "pyttsx3",
                 *extra)
    assert_refused(result, "dots.j2 line 3", "needs a letter or a digit", repr(line))
    assert result.exit_code == 2  # the template's problem, not the engine's (4)
    assert not out.exists()
    assert "no audible sound" not in result.output


def test_an_unknown_top_level_table_is_named_as_a_table(tmp_path: Path) -> None:
    plan = tmp_path / "week.toml"
    plan.write_text("[weird]\na = 1\n[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\n")
    result = run("week", str(plan), "--preview")
    assert_refused(result, "[weird]: unknown key", "a plan has [week] and [[session]]")
    assert "session 0" not in result.output


@pytest.mark.parametrize("voice, shares", [
    ("af_heart:1e308,af_bella:1e308", [0.5, 0.5]),
    ("af_heart:1.7e308,af_bella:0.85e308", [2 / 3, 1 / 3]),
    ("af_heart:60,af_bella:40", [0.6, 0.4]),
    ("af_heart:1e-300,af_bella:3e-300", [0.25, 0.75]),
])
def test_blend_weights_are_shares_whatever_their_size(voice: str,
                                                      shares: list[float]) -> None:
    from audioguide.tts.kokoro_engine import parse_blend

    parts = parse_blend(voice)  # the weights as given, refused only when truly far apart
    assert [n for n, _ in parts] == ["af_heart", "af_bella"]
    relative = [w / max(w for _, w in parts) for _, w in parts]
    assert [r / sum(relative) for r in relative] == pytest.approx(shares)


def test_blend_weights_truly_far_apart_are_refused() -> None:
    from audioguide.errors import RequestError
    from audioguide.tts.kokoro_engine import parse_blend

    with pytest.raises(RequestError, match="too far apart"):
        parse_blend("af_heart:1e308,af_bella:1")


@pytest.mark.parametrize("args", [
    ["build", "breath", "-m", "1"],  # too short for the kind
    ["build", "breath", "-m", "5", "--voice", "no-such-voice", "--engine", "pyttsx3"],
    ["build", "breath", "-m", "5", "--intention", "\x1b[2J"],
    ["build", "--template", "missing.j2", "-m", "5"],
    ["week", "missing.toml"],
    ["batch", "missing.toml"],
])
def test_a_refused_command_leaves_no_empty_output_folder(
        tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The output folder (the default ./output, or a new --out) is made only when the first
    file is published into it."""
    monkeypatch.chdir(tmp_path)
    assert_refused(run(*args))
    assert_refused(run(*args, "--out", str(tmp_path / "new" / "folder")))
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(
        tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    for out in (tmp_path / "file" / "sub", Path("/proc/audioguide-test")):
        result = run("build", "breath", "-m", "5", "--out", str(out))
        assert_refused(result, "--out", str(out), "choose a folder you can write to")


@pytest.mark.parametrize("folder", ["/tmp/audioguide-no-such-folder", "/etc/passwd"])
def test_a_templates_folder_that_is_not_there_is_refused(folder: str) -> None:
    for args in (["preview", "breath", "-m", "5"], ["kinds"]):
        result = run(*args, "--templates", folder)
        assert_refused(result, "--templates", folder)


@pytest.mark.parametrize("args", [["kinds"], ["preview", "check-in", "-m", "2"],
                                  ["--help"]])
def test_a_result_that_cannot_be_written_is_one_line_not_a_traceback(args: list[str]) -> None:
    import subprocess
    import sys

    with Path("/dev/full").open("w") as full:
        done = subprocess.run([sys.executable, "-m", "audioguide.cli", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: could not write the output: No space left on device.")
