"""The session library: every kind, at several lengths and options, built and measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from audioguide.request import Pace, Request
from audioguide.script.checks import EYES_CLOSED
from audioguide.script.context import script_cues
from audioguide.script.markup import Speech
from audioguide.script.templates import get_kind, kinds, shipped_dir
from audioguide.script.vocabulary import SURROUNDINGS
from tests.conftest import SAMPLE_RATE, assert_refused, built_path, decode, silences

KINDS = sorted(p.stem for p in shipped_dir().glob("*.j2"))


def test_kinds_lists_every_practice_with_its_minimum() -> None:
    result = CliRunner().invoke(cli, ["kinds"])
    assert result.exit_code == 0
    for name in KINDS:
        line = next(line for line in result.output.splitlines() if line.startswith(name + " "))
        assert f"from {get_kind(name).min_minutes:g} min" in line
    assert len(kinds()) >= 14


def script(kind: str, minutes: float, **options: object) -> list[str]:
    request = Request(kind, minutes, **options)  # type: ignore[arg-type]
    return [c.text for c in script_cues(request, get_kind(kind)) if isinstance(c, Speech)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("minutes", [5, 15, 45, 90])
def test_walking_mode_never_asks_to_close_the_eyes(kind: str, minutes: float) -> None:
    lines = script(kind, max(minutes, get_kind(kind).min_minutes), walking=True)
    unsafe = [line for line in lines if EYES_CLOSED.search(line)]
    assert unsafe == []
    if get_kind(kind).walking_safe:
        assert any(SURROUNDINGS.search(line) for line in lines)


@pytest.mark.parametrize("minutes", [4, 15, 45])
def test_walking_kind_is_eyes_open_even_without_the_flag(minutes: float) -> None:
    lines = script("walking", minutes)
    assert not [line for line in lines if EYES_CLOSED.search(line)]
    assert any(SURROUNDINGS.search(line) for line in lines)


@pytest.mark.parametrize("kind", KINDS)
def test_seated_sessions_may_invite_closed_eyes_gently(kind: str) -> None:
    # Without --walking the invitation is optional ("if it feels right"), never a command.
    for line in script(kind, 10):
        if "eyes close" in line:
            assert re.search(r"if it feels right|whenever you like|if you like|if they want"
                             r"|if that feels|when it feels right", line.lower())


@pytest.mark.parametrize("kind", KINDS)
def test_speech_grows_with_length(kind: str) -> None:
    words = [sum(len(t.split()) for t in script(kind, m))
             for m in (get_kind(kind).min_minutes, 15, 45)]
    assert words[0] < words[1] < words[2]


def test_personalisation_reaches_the_script() -> None:
    options = {"name": "Robin", "feelings": ("hopeful", "restless"),
               "intention": "I can go gently.", "safe_person": "Maya"}
    congruence = " ".join(script("congruence", 15, **options))
    assert "Robin" in congruence and "hopeful" in congruence and "restless" in congruence
    assert "I can go gently." in congruence and "Maya" in congruence
    assert "Maya" in " ".join(script("boundaries", 10, **options))
    assert "Maya" in " ".join(script("empathy", 10, **options))
    plain = " ".join(script("body-scan", 8)).lower().count("jaw")
    focused = " ".join(script("body-scan", 8, focus=("jaw",))).lower().count("jaw")
    assert focused > plain  # a focus region is dwelt on longer


@pytest.mark.parametrize("kind", KINDS)
def test_name_is_used_sparingly(kind: str) -> None:
    lines = script(kind, 45, name="Robin")
    assert 1 <= sum("Robin" in line for line in lines) <= 3


def test_typed_text_cannot_become_markup() -> None:
    lines = script("breath", 5, name="Sam [pause 99]\n# Evil")
    assert any("Sam (pause 99) Evil" in line for line in lines)
    assert not any(line.startswith("#") for line in lines)


def test_slow_pace_lowers_the_rate() -> None:
    assert Request("breath", 10, pace=Pace.SLOW).speech_rate < Request("breath", 10).speech_rate


def longest_silence(path: Path) -> float:
    return max((end - start for start, end in silences(path, noise_db=-55, min_s=1.0)),
               default=0.0)


#: Kinds also built at 45 minutes, one of each family (breath and body, the week's review,
#: movement, writing); every kind's script is measured at 45 and 90 in test_sessions.
AT_45 = {"breath", "review", "stretch", "journal"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_exactly_with_speech_throughout(kind: str, tmp_path: Path) -> None:
    # Every kind's script is measured at 45 and 90 minutes in test_sessions; building the
    # audio of all of them at 45 would take most of the suite's time for little more.
    low = get_kind(kind).min_minutes
    lengths = [low, 10 if low < 10 else 15, *([45] if kind in AT_45 else [])]
    speech_seconds = []
    for minutes in lengths:
        result = CliRunner().invoke(
            cli, ["build", kind, "--minutes", str(minutes), "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        path = built_path(result)
        samples = decode(path)
        assert abs(samples.size - round(minutes * 60 * SAMPLE_RATE)) <= 0.02 * SAMPLE_RATE
        # The longest silence (including the decay of a chime) stays within the kind's cap.
        assert longest_silence(path) <= get_kind(kind).max_silence_s + 2.0, (kind, minutes)
        silent = sum(min(e, minutes * 60) - s for s, e in silences(path, -55, 0.5))
        speech_seconds.append(minutes * 60 - silent)
        path.unlink()
    assert speech_seconds == sorted(speech_seconds) and speech_seconds[0] < speech_seconds[-1]


def test_options_build_together(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [
        "build", "body-scan", "--minutes", "12.5", "--focus", "shoulders, jaw",
        "--feelings", "tired,hopeful", "--intention", "Rest is allowed.", "--pace", "slow",
        "--walking", "--name", "Robin", "--settle", "6", "--bell-every", "3",
        "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = built_path(result)
    assert abs(decode(path).size - 12.5 * 60 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE
    first_sound = silences(path, -55, 0.5)[0]
    assert first_sound[0] == 0 and first_sound[1] >= 5.9  # the settle time


def test_interval_bells_sound_in_pauses() -> None:
    result = CliRunner().invoke(cli, ["preview", "breath", "--minutes", "12", "--bell-every",
                                      "4"])
    assert result.exit_code == 0, result.output
    bells = [line for line in result.output.splitlines() if "[interval bell]" in line]
    assert len(bells) == 2
    starts = [int(b[:2]) * 60 + float(b[3:9]) for b in bells]
    assert 240 <= starts[0] < 330 and 480 <= starts[1] < 600


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--focus", "elbow"], ["--focus", "elbow", "shoulders"]),
        (["--name", "   "], ["--name", "empty"]),
        (["--intention", "x" * 200], ["--intention", "at most 120"]),
        (["--feelings", "ok,<b>"], ["--feelings", "letters only"]),
        (["--bell-every", "0"], ["--bell-every", "1 to 30"]),
    ],
)
def test_bad_personal_options(args: list[str], words: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["build", "body-scan", "--minutes", "10", *args,
                                      "--out", str(tmp_path)])
    assert_refused(result)
    for word in words:
        assert word in result.output
    assert list(tmp_path.iterdir()) == []


def test_below_a_kinds_minimum_states_it() -> None:
    shortest = get_kind("congruence").min_minutes
    result = CliRunner().invoke(cli, ["build", "congruence", "--minutes", f"{shortest - 1:g}"])
    assert result.exit_code != 0
    assert f"at least {shortest:g} minutes" in result.output


def test_walking_is_refused_for_a_writing_session() -> None:
    result = CliRunner().invoke(cli, ["build", "journal", "--minutes", "10", "--walking"])
    assert result.exit_code != 0
    assert "--walking" in result.output and "walking-safe kinds" in result.output
