"""What a listener hears, measured on ``preview`` over a grid of kinds, lengths and options:
no loops, correct speech, every accepted option used, room to practise, silences that
deepen, a closing that fits the sit, walking reminders, honest announced times."""

from __future__ import annotations

import functools
import re

import pytest

from audioguide.script.review import Stats, lint, measure, rows_from_preview
from audioguide.script.templates import get_kind, shipped_dir
from audioguide.script.vocabulary import feeling
from tests.conftest import assert_refused, run

KINDS = sorted(p.stem for p in shipped_dir().glob("*.j2"))
#: The grid of the script-statistics table (test_pace adds 60 minutes for the pace targets).
LENGTHS = ("min", 10, 20, 45, 90)

#: Options a listener may give, chosen to catch grammar slips: adjectives and nouns as
#: feelings, every focus region, a long intention, a two-word name.
OPTIONS = {
    "feelings": "hopeful,tired,anger,frazzled,sadness",
    "focus": "feet,legs,hips,belly,lower back,chest,upper back,hands,arms,shoulders,neck,"
             "throat,jaw,face,head",
    "intention": "I want to meet the people I love this week with patience, honesty and a "
                 "little more warmth than last week.",
    "safe_person": "Sam Rivera",
}


def minutes_of(kind: str, length: str | float) -> float:
    return get_kind(kind).min_minutes if length == "min" else float(length)


@functools.cache
def preview(kind: str, minutes: float, *args: str) -> tuple[tuple[tuple[float, str], ...], float]:
    result = run("preview", kind, "--minutes", f"{minutes:g}", *args)
    assert result.exit_code == 0, result.output
    rows, total = rows_from_preview(result.output)
    assert abs(total - minutes * 60) < 0.01
    return tuple(rows), total


def option_args(kind: str) -> tuple[str, ...]:
    uses = get_kind(kind).uses
    args: list[str] = []
    for key, value in OPTIONS.items():
        if key in uses:
            args += ["--" + key.replace("_", "-"), value]
    return tuple(args)


def stats(kind: str, length: str | float, *args: str) -> Stats:
    rows, total = preview(kind, minutes_of(kind, length), *args)
    return measure(rows, total, walking="--walking" in args or kind == "walking",
                   own_words="--feelings" in args)


def spoken(kind: str, minutes: float, *args: str) -> list[str]:
    rows, _ = preview(kind, minutes, *args)
    return [t for _, t in rows if not t.startswith(("[", "# "))]


def grid() -> list[tuple[str, str | int, bool]]:
    cases = []
    for kind in KINDS:
        k = get_kind(kind)
        for length in LENGTHS:
            if length == "min" or k.min_minutes < float(length) <= k.max_minutes:
                for walking in (False, True) if k.walking_safe and kind != "walking" else (False,):
                    cases.append((kind, length, walking))
    return cases


def walk(walking: bool) -> tuple[str, ...]:
    return ("--walking",) if walking else ()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "length", "walking"), grid())
def test_no_loops_and_correct_speech(kind: str, length: str | int, walking: bool) -> None:
    plain = stats(kind, length, *walk(walking))
    assert plain.repeated <= 0.15, f"{plain.repeated:.0%} of lines repeat an earlier one"
    assert plain.lint == []
    # Every option at once (five feelings, all fifteen regions, a long intention) needs a
    # little more than a kind's minimum, which is set for default options; the error says how
    # much (tested in test_library). Just above it, everything must hold.
    personal_length = minutes_of(kind, length) + 1.5 if length == "min" else length
    personal = stats(kind, personal_length, *walk(walking), *option_args(kind))
    assert personal.repeated <= 0.15, f"{personal.repeated:.0%} repeat (with options)"
    assert personal.lint == []


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "length", "walking"), grid())
def test_room_to_practise(kind: str, length: str | int, walking: bool) -> None:
    s = stats(kind, length, *walk(walking))
    minutes = minutes_of(kind, length)
    assert s.shortest_line_gap >= 1.5 - 1e-3, "two lines closer than 1.5 s"
    if minutes >= 20 and kind not in TIMED:
        assert s.deepening >= 1.25, f"silences deepen only {s.deepening:.2f}x"
    if minutes <= 6:
        assert 25 <= s.closing_s <= 75, f"closing of {s.closing_s:.0f} s"
    if minutes >= 45:
        assert s.closing_s >= 90, f"closing of {s.closing_s:.0f} s"
    if walking or kind == "walking":
        assert s.reminder_gap <= 300, f"{s.reminder_gap:.0f} s without a surroundings reminder"
    for text, gap in s.after_recall:
        assert gap >= 20, f"{gap:.1f} s after {text!r}"


#: Kinds whose long silences are announced, fixed writing or making times.
TIMED = {"journal", "create", "review"}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "length"), [
    (kind, length) for kind in KINDS if kind not in TIMED for length in (20, 45, 90)
    if length <= get_kind(kind).max_minutes and length * 0.8 >= get_kind(kind).min_minutes])
def test_longest_silence_grows_with_length(kind: str, length: int) -> None:
    # The writing kinds' longest silences are their announced writing times.
    shorter = length * 0.8
    rows, total = preview(kind, shorter)
    # Within 5 %: content steps up with length, and breath at 20 minutes measures 31.1 s
    # against 32.5 s at 16 (the closing note of the pace issue says so).
    assert stats(kind, length).longest_silence >= measure(rows, total).longest_silence * 0.95


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("length", ["min", 20, 90])
def test_every_accepted_option_is_spoken(kind: str, length: str | int) -> None:
    k = get_kind(kind)
    minutes = min(minutes_of(kind, length), k.max_minutes)
    base = spoken(kind, minutes)
    for key in sorted(k.uses):
        value = {"focus": "jaw", "feelings": "hopeful", "intention": "Rest is allowed today.",
                 "safe_person": "Sam Rivera"}[key]
        flag = "--" + key.replace("_", "-")
        result = run("preview", kind, "--minutes", f"{minutes:g}", flag, value)
        if result.exit_code != 0 and length == "min":
            # At the very minimum an option may need a little more time: then it is refused
            # clearly, with the length it needs (the "used at every length, or refused").
            assert_refused(result, "--minutes", "need at least")
            continue
        with_option = spoken(kind, minutes, flag, value)
        assert with_option != base, f"{flag} changes nothing in {kind} at {minutes:g} min"
        text = " ".join(with_option)
        if key == "feelings":
            assert feeling(value).noun in text or feeling(value).adjective in text
        elif key in ("intention", "safe_person"):
            assert (value.split()[0] if key != "intention" else "Rest is allowed") in text


@pytest.mark.parametrize("kind", KINDS)
def test_unused_options_are_refused(kind: str) -> None:
    k = get_kind(kind)
    for key in sorted({"focus", "feelings", "intention", "safe_person"} - k.uses):
        flag = "--" + key.replace("_", "-")
        result = run("preview", kind, "--minutes", "10", flag, "jaw")
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert flag in result.output and "does not use it" in result.output


@pytest.mark.parametrize("length", [3, 10, 45])
def test_check_in_speaks_every_word_given(length: str | int) -> None:
    # Eight words need a little more than the two-minute minimum (the error says how much).
    words = ["hopeful", "tired", "anger", "frazzled", "sadness", "lonely", "proud", "calm"]
    text = " ".join(spoken("check-in", minutes_of("check-in", length), "--feelings",
                           ",".join(words))).lower()
    for word in words:
        forms = feeling(word)
        assert forms.noun in text or forms.adjective in text, word


@pytest.mark.parametrize("length", ["min", 10])
def test_check_in_offers_the_words_of_detachment(length: str | int) -> None:
    text = " ".join(spoken("check-in", minutes_of("check-in", length))).lower()
    for word in ("anger", "tired", "numb", "flat"):
        assert word in text


def test_the_core_of_each_practice_at_its_minimum() -> None:
    def text(kind: str, *args: str) -> str:
        return " ".join(spoken(kind, get_kind(kind).min_minutes, *args))

    assert "tight chest" in text("body-scan") and "anxiety" in text("body-scan")
    assert re.search(r"justif", text("boundaries"))
    assert re.search(r"\bI feel\b", text("congruence"))
    assert "Sam Rivera" in text("congruence", "--safe-person", "Sam Rivera")
    assert re.search(r"their (point of view|side|shoes|perspective)|where they stand",
                     text("empathy"))
    for kind in ("review", "journal", "check-in"):
        assert re.search(r"therapist", text(kind)), kind


ANNOUNCED = re.compile(
    r"\babout (?P<n>[a-z -]+?) (?P<unit>minutes?|seconds)(?P<half> and a half)?\b")
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve "
                 "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty")
_WORDS = {w: i for i, w in enumerate(_NUMBER_WORDS.split())}
_WORDS |= {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "a": 1, "a minute and a": 1}


def words_to_number(text: str) -> float:
    half = 0.5 if text.endswith(" and a half") or text == "a minute and a half" else 0.0
    text = text.removesuffix(" and a half").removesuffix(" and a")
    total = sum(_WORDS[part] for part in re.split(r"[ -]", text) if part in _WORDS)
    return total + half


@pytest.mark.parametrize("kind", sorted(TIMED))
@pytest.mark.parametrize("length", ["min", 10, 20, 45])
def test_announced_times_are_honest(kind: str, length: str | int) -> None:
    rows, total = preview(kind, minutes_of(kind, length))
    ordered = list(rows)
    found = 0
    for i, (_, text) in enumerate(ordered):
        match = ANNOUNCED.search(text) if not text.startswith("[") else None
        if match is None:
            continue
        number = words_to_number(match["n"]) + (0.5 if match["half"] else 0)
        seconds = number * (60 if match["unit"].startswith("minute") else 1)
        end = ordered[i + 1][0] if i + 1 < len(ordered) else total
        chime = next(s for s, t in ordered[i + 1:] if t.startswith("[chime"))
        assert abs((chime - end) - seconds) <= 0.1 * seconds, (text, chime - end)
        found += 1
    assert found >= 1


@pytest.mark.parametrize("kind", ["journal", "create", "review"])
def test_writing_sessions_never_close_the_eyes(kind: str) -> None:
    text = " ".join(spoken(kind, 20)).lower()
    assert not re.search(r"close (your|the) eyes|eyes clos|lie down|lying down", text)


def test_lint_catches_what_it_should() -> None:
    assert lint(["Noticing tired."]) != []
    assert lint(["Let it soften soften."]) != []
    assert lint(["Breathe in {{ name }}."]) != []
    assert lint(["Watch the traffic."]) != [] and lint(["Watch the traffic."], walking=True) == []
    assert lint(["Or one of your own words: calm."], own_words=False) != []
    assert lint(["A line without an end"]) != []
    assert lint(["Noticing tiredness, and noticing a frazzled feeling."]) == []


def test_slower_voices_say_no_more() -> None:
    for kind in ("breath", "body-scan", "congruence"):
        normal = sum(len(t.split()) for t in spoken(kind, 10))
        assert sum(len(t.split()) for t in spoken(kind, 10, "--rate", "100")) <= normal
        assert sum(len(t.split()) for t in spoken(kind, 10, "--pace", "slow")) <= normal
