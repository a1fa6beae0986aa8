"""The programme of weeks, heard as a daily listener hears it: ``audioguide week --preview``
of the default week (both paces) and of weeks 2-4, measured for lines heard again, sessions
that replay earlier ones, professional help, the eyes, and the review's reading time."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from pathlib import Path

import pytest

from audioguide.script.repetition import Heard, figures, key, sessions_of
from audioguide.week import planfile
from tests.conftest import assert_refused, run

START = dt.date(2026, 11, 23)
INTENTIONS = [
    "This week I want to notice what I feel, gently, one small step at a time.",
    "This week I want to stay a little longer with what I feel, and share a little more.",
    "This week I want to let what I feel show a little more, with people I trust.",
    "This week I want to keep what has helped, and be kind to myself when it is hard.",
]


@functools.cache
def week_text(number: int, *extra: str) -> str:
    start = START + dt.timedelta(weeks=number - 1)
    result = run("week", "--preview", "--start", start.isoformat(), "--week-number",
                 str(number), *extra)
    assert result.exit_code == 0, result.output
    return result.stdout


def weeks(upto: int, *extra: str) -> list[list[Heard]]:
    return [sessions_of(week_text(n, *extra)) for n in range(1, upto + 1)]


def test_week_preview_is_each_session_preview_in_order(tmp_path: Path) -> None:
    text = week_text(1)
    headers = [line for line in text.splitlines() if line.startswith("== ")]
    assert len(headers) == 17
    assert headers[0] == "== week 1, day 1 (Mon 2026-11-23), breath, 5 min"
    assert headers[-1] == "== week 1, day 7 (Sun 2026-11-29), review, 15 min"
    # The first session of the programme is what a single preview of it prints.
    first = text.split("== ")[1].split("\n", 1)[1]
    alone = run("preview", "breath", "--minutes", "5", "--intention", INTENTIONS[0])
    assert alone.exit_code == 0, alone.output
    assert first == alone.stdout
    # A rebuild hears the same words.
    assert run("week", "--preview", "--start", "2026-11-23").stdout == text


def test_sessions_know_their_place_in_the_programme() -> None:
    def place(number: int, path: Path | None = None) -> list[tuple[str, int, int, int]]:
        plan = planfile.load(path, START, Path("output"), number)
        assert plan.number == number
        return [(s.request.kind, s.request.day, s.request.seq, s.request.turn)
                for s in plan.sessions]

    one = place(1)
    assert one[:4] == [("breath", 1, 0, 0), ("journal", 1, 1, 0), ("share", 1, 2, 0),
                       ("breath", 2, 3, 1)]
    two = place(2)
    assert two[0] == ("check-in", 1, 17, 0)
    assert [t for k, _, _, t in two if k == "breath"] == [2, 3]
    # Past the written weeks the practice stays at week 4's plan and keeps counting.
    assert [t for k, _, _, t in place(6) if k == "congruence"] == [10, 11]
    assert planfile.default_plan_path(6) == planfile.default_plan_path(4)
    # A plan of one's own counts itself as every earlier week.
    own = [t for k, _, _, t in place(3, planfile.default_plan_path(1)) if k == "empathy"]
    assert own == [4, 5]


@pytest.mark.parametrize("value", ["0", "-2", "x", "1.5", "10000", ""])
def test_a_week_number_that_is_not_one_is_refused(value: str, tmp_path: Path) -> None:
    result = run("week", "--preview", "--week-number", value, "--out", str(tmp_path / "o"))
    assert_refused(result, "--week-number")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("line", "words"), [
    ("number = 0", ["[week] number", "1 to 9999"]),
    ('number = "two"', ["[week] number", "whole number"]),
    ('help_line = "a\\u001bb"', ["[week] help_line", "control characters"]),
    ("help_line = 5", ["[week] help_line", "text"]),
])
def test_plan_programme_keys_are_checked(line: str, words: list[str], tmp_path: Path) -> None:
    plan = tmp_path / "week.toml"
    plan.write_text(f"[week]\n{line}\n\n[[session]]\nday = 1\nkind = \"breath\"\nminutes = 5\n")
    assert_refused(run("week", str(plan), "--preview"), *words)


def test_a_session_cannot_set_the_week_number(tmp_path: Path) -> None:
    plan = tmp_path / "week.toml"
    plan.write_text("[[session]]\nday = 1\nkind = \"breath\"\nminutes = 5\nnumber = 2\n")
    assert_refused(run("week", str(plan), "--preview"), "session 1 number", "[week]")


@pytest.mark.slow
@pytest.mark.parametrize("pace", ["normal", "slow"])
def test_the_default_week_rarely_repeats_itself(pace: str, tmp_path: Path) -> None:
    if pace == "normal":
        week = sessions_of(week_text(1))
    else:
        plan = tmp_path / "slow.toml"
        plan.write_text(planfile.default_plan_path(1).read_text().replace(
            'pace = "normal"', 'pace = "slow"'))
        result = run("week", str(plan), "--preview", "--start", "2026-11-23")
        assert result.exit_code == 0, result.output
        week = sessions_of(result.stdout)
    assert len(week) == 17
    f = figures([week], INTENTIONS)[0]
    assert f.within_week <= 0.20, f
    assert f.most_shared <= 0.5, f


@pytest.mark.slow
@pytest.mark.parametrize("number", [2, 3, 4, 5, 6])
def test_every_programme_week_builds_at_slow_pace(number: int, tmp_path: Path) -> None:
    """A listener who sets pace = "slow" can follow the programme past its written weeks:
    no session of the week is refused as too short."""
    plan = tmp_path / "slow.toml"
    text = planfile.default_plan_path(number).read_text()
    assert 'pace = "normal"' in text
    plan.write_text(text.replace('pace = "normal"', 'pace = "slow"'))
    result = run("week", str(plan), "--preview", "--week-number", str(number))
    assert result.exit_code == 0, result.output
    assert len(sessions_of(result.stdout)) == len(re.findall(r"^\[\[session\]\]", text, re.M))


@pytest.mark.slow
def test_weeks_two_to_four_are_new() -> None:
    results = figures(weeks(4), INTENTIONS)
    for number, f in enumerate(results, start=1):
        assert f.within_week <= 0.20, (number, f)
        assert f.most_shared <= 0.5, (number, f)
        if number > 1:
            assert f.earlier_weeks <= 0.35, (number, f)


@pytest.mark.slow
@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_the_second_day_of_a_pair_is_a_new_session(number: int) -> None:
    week = sessions_of(week_text(number))
    by_kind: dict[str, list[Heard]] = {}
    for session in week:
        by_kind.setdefault(session.header.split(", ")[-2], []).append(session)
    for kind, sessions in by_kind.items():
        for a, b in itertools.pairwise(sessions):
            first = {key(x) for x in a.lines}
            shared = sum(key(x) in first for x in b.lines) / len(b.lines)
            assert shared <= 0.5, (kind, b.header, shared)


@pytest.mark.slow
def test_professional_help_is_said_several_times_in_different_words() -> None:
    pattern = re.compile(r"\b(therapist|professional|counsellor|doctor)\b", re.IGNORECASE)
    for number in (1, 3):
        said = [[x for x in s.lines if pattern.search(x)] for s in sessions_of(week_text(number))]
        sessions = [lines for lines in said if lines]
        assert len(sessions) >= 3, number
        passages = {" ".join(key(x) for x in lines) for lines in sessions}
        assert len(passages) == len(sessions), sessions
        text = " ".join(" ".join(lines) for lines in sessions).lower()
        # Together they name the signs the practice notes give.
        for sign in (r"distress", r"relationships|work|days|daily", r"anxiety",
                     r"depress|low mood", r"dissociat|unreal|spaced out|cut off"):
            assert re.search(sign, text), (number, sign)
        assert "emergency" in " ".join(" ".join(s.lines) for s in
                                       sessions_of(week_text(number))).lower()


@pytest.mark.slow
def test_help_line_is_spoken_in_the_review(tmp_path: Path) -> None:
    plan = tmp_path / "week.toml"
    plan.write_text('[week]\nhelp_line = "Samaritans on 116 123"\n\n'
                    '[[session]]\nday = 7\nkind = "review"\nminutes = 15\n')
    result = run("week", str(plan), "--preview", "--start", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "Samaritans on 116 123" in result.stdout


def test_the_default_feelings_change_from_day_to_day() -> None:
    lists = []
    for session in sessions_of(week_text(1)):
        if "breath" in session.header:
            said = " ".join(session.lines)
            lists.append(tuple(w for w in ("calm", "joy", "tenderness", "contentment", "relief",
                                           "curiosity", "ease", "tension", "sadness", "worry",
                                           "tiredness", "frustration", "restlessness",
                                           "loneliness", "irritation", "nervousness",
                                           "disappointment", "boredom") if w in said))
    assert len(lists) >= 2
    assert len(set(lists)) == len(lists), lists


def test_stretch_speaks_to_the_posture_of_the_day() -> None:
    postures = set()
    for number in (1, 2):
        for session in sessions_of(week_text(number)):
            if "stretch" not in session.header:
                continue
            said = " ".join(session.lines)
            postures.add("flow is a seated one" in said)
            assert "If you are sitting" not in said, session.header
            assert "If you are standing" not in said, session.header
    assert postures == {True, False}


def raw_sessions(number: int) -> list[tuple[str, list[str]]]:
    """Each session of a programme week: its header and its preview lines (times cut)."""
    found: list[tuple[str, list[str]]] = []
    for line in week_text(number).splitlines():
        if line.startswith("== "):
            found.append((line[3:], []))
        elif found:
            found[-1][1].append(line.split("  ", 1)[-1])
    return found


@pytest.mark.slow
@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_a_programme_week_reads_as_one_guide(number: int) -> None:
    """What a daily listener found broken, as properties of every session of weeks 1-4."""
    for header, lines in raw_sessions(number):
        where = f"week {number}: {header}"
        text = "\n".join(lines)
        day = int(re.search(r"day (\d)", header)[1])  # type: ignore[index]
        # No two silences in a row where a line was left out.
        for a, b in itertools.pairwise(lines):
            if a.startswith("[pause") and b.startswith("[pause"):
                assert float(a.split()[1]) < 3.5 or float(b.split()[1]) < 3.5, (where, a, b)
        # A numbered chapter only where there is more than one.
        if "# Feeling 1:" in text:
            assert "# Feeling 2:" in text, where
        # What to do in danger is said once in a session, not twice.
        assert text.lower().count("emergency number") <= 1, where
        # Early in the week there is no "this week" to look back on in the journal.
        if "journal" in header and day <= 2:
            assert not re.search(r"from this week|this week's (moments|days)", text), where
        # A check-in's example is one of the words it offered.
        if "check-in" in header:
            example = re.compile(r"\b(?:noticing|I notice) (\w+)[.,]", re.IGNORECASE)
            rest = example.sub("", text)
            for said in example.findall(text):
                assert re.search(rf"\b{said}\b", rest, re.IGNORECASE), (where, said)
