"""Weekly plan files (TOML): defaults for the week, then one ``[[session]]`` table per session.

Every problem is collected before any audio is made and reported together,
each naming its key and the line it is on.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audioguide.errors import AudioguideError, RequestError
from audioguide.options import BY_KEY, Text
from audioguide.request import Pace, Request, validate
from audioguide.script.templates import get_kind, shipped_dir
from audioguide.tomlfile import parse_toml, read_toml_text

#: Options a plan may set, for the whole week or per session (the schema's keys).
OPTIONS = {key: option for key, option in BY_KEY.items() if key != "minutes"}
#: Keys only a week has: its place in the programme, and a helpline spoken in the review.
PROGRAMME_KEYS = {"number", "help_line"}
WEEK_KEYS = {"title", "email", *PROGRAMME_KEYS, *OPTIONS}
SESSION_KEYS = {"day", "kind", "minutes", *OPTIONS}
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class PlannedSession:
    """One session of the week: which day, and the request that builds it."""

    day: int
    date: dt.date
    request: Request
    #: Where it is in the plan file ("week.toml line 12"), for problems found later.
    where: str = ""


@dataclass(frozen=True)
class WeekPlan:
    """A validated week."""

    title: str
    start: dt.date
    sessions: tuple[PlannedSession, ...]
    source: str
    #: The week's place in the programme of weeks (1 up).
    number: int = 1
    #: A local helpline, spoken in the review and shown on the page.
    help_line: str | None = None
    #: Whom the feed names as its owner's email (some podcast apps ask for one).
    email: str | None = None
    #: Why the week differs from the programme as written, a sentence per change.
    changes: tuple[str, ...] = ()


#: Weeks of the shipped programme; later weeks keep varying at the last one's level.
PROGRAMME_WEEKS = 4
#: The highest week number accepted (about two hundred years of weekly practice).
MAX_WEEK_NUMBER = 9999
HELP_LINE_MAX = 120
#: The first day a week may start (feeds and tags date sessions as clock times).
EARLIEST_START = dt.date(1900, 1, 1)
#: The longest week title (an album title in players, a feed's and a page's title).
TITLE_MAX = 120


def default_plan_path(number: int = 1) -> Path:
    """The shipped plan of week ``number`` of the programme: the default week first, then
    ``programme/week-N.toml`` (the last written week for any later one)."""
    if number <= 1:
        return shipped_dir() / "default-week.toml"
    return shipped_dir() / "programme" / f"week-{min(number, PROGRAMME_WEEKS)}.toml"


def check_week_number(value: Any, label: str = "--week-number") -> int:
    """A week number, or a clear error naming ``label``."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= MAX_WEEK_NUMBER):
        raise AudioguideError(f"{label}: {value!r} is not a week of the programme; give a whole "
                              f"number from 1 to {MAX_WEEK_NUMBER} (1 is the first week).")
    return value


def coming_monday(today: dt.date | None = None) -> dt.date:
    """The default first day: today if it is a Monday, else the next Monday."""
    today = today or dt.date.today()
    return today + dt.timedelta(days=(7 - today.weekday()) % 7)


def parse_start(text: str) -> dt.date:
    """``--start`` as a date, or a clear error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise AudioguideError(f"--start: {text!r} is not a date; give it as YYYY-MM-DD, "
                              "such as 2026-11-23.") from None


def key_lines(text: str, array: str = "session") -> dict[tuple[str, int, str], int]:
    """(table, index, key) -> line number of each table and key; ``array`` is the table
    written many times (``[[session]]``), whose entries are told apart by index."""
    lines: dict[tuple[str, int, str], int] = {}
    table, index, count = "", -1, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[["):
            table = line.strip("[] ")
            index = count if table == array else 0
            count += table == array
            lines[(table, index, "")] = number
        elif line.startswith("["):
            table, index = line.strip("[] "), 0
            lines[(table, index, "")] = number
        else:
            match = re.match(r"([A-Za-z0-9_-]+)\s*=", line)
            if match:
                lines.setdefault((table, index, match[1]), number)
    return lines


#: More sessions than a week can hold is a mistake, not a plan.
MAX_SESSIONS = 70
def load(path: Path | None, start: dt.date, out_dir: Path,
         number: int | None = None) -> WeekPlan:
    """Read and validate the plan at ``path`` (the programme's week when None) as week
    ``number`` of the programme (else the plan's own ``[week] number``, else 1)."""
    overrides = {} if number is None else {"number": number}
    plan, problems = check(path, start, out_dir, overrides,
                           lambda key: "--week-number")
    if problems or plan is None:
        raise AudioguideError(f"The plan has {len(problems)} problem"
                              f"{'s' if len(problems) > 1 else ''}; nothing was built. "
                              + " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)))
    return plan


def check(path: Path | None, start: dt.date, out_dir: Path,
          overrides: dict[str, Any] | None = None,
          overrides_where: Callable[[str], str] | None = None,
          ) -> tuple[WeekPlan | None, list[str]]:
    """Read and validate the plan at ``path``: the plan, or every problem found.

    ``overrides`` (already checked one by one) take the place of the plan's ``[week]``
    values, as a roster's do; a problem one of them causes is placed where
    ``overrides_where(key)`` says. A file that cannot be read or parsed raises
    :class:`AudioguideError`.
    """
    overrides = overrides or {}
    given_number = overrides.get("number", 1)
    source = path or default_plan_path(given_number if isinstance(given_number, int) else 1)
    if start > dt.date.max - dt.timedelta(days=7) or start < EARLIEST_START:
        when = "in the future" if start > EARLIEST_START else "in the past"
        raise AudioguideError(f"--start: {start.isoformat()} is too far {when} for a week "
                              f"(from {EARLIEST_START.year}); give a date such as 2026-11-23.")
    text = read_toml_text(source)
    data = parse_toml(text, source, "PLAN", "plan")
    lines = key_lines(text)
    problems: list[str] = []

    def where(table: str, index: int, key: str) -> str:
        if table == "week" and key in overrides and overrides_where:
            return overrides_where(key)
        line = lines.get((table, index, key)) or lines.get((table, index, ""))
        label = (f"[week] {key}" if table == "week" else f"[{key}]" if not table
                 else f"session {index + 1} {key}".strip())
        return f"{source.name} line {line}, {label}" if line else f"{source.name}, {label}"

    for key in set(data) - {"week", "session"}:
        problems.append(f"{where('', -1, key)}: unknown key; a plan has [week] and "
                        "[[session]] tables.")
    week = data.get("week", {})
    if not isinstance(week, dict):
        week = {}
        problems.append(f"{source.name}: 'week' must be a table, [week].")
    for key in sorted(set(week) - WEEK_KEYS):
        problems.append(f"{where('week', 0, key)}: unknown key; known keys: "
                        f"{', '.join(sorted(WEEK_KEYS))}.")
    week_problems = value_problems(week)
    problems += [f"{where('week', 0, key)}: {text}" for key, text in week_problems]
    # A bad [week] value is reported once, at its own line, not again for every session.
    week = {k: v for k, v in week.items() if k not in {key for key, _ in week_problems}}
    week |= overrides
    if "title" in week:
        try:
            week["title"] = Text(TITLE_MAX, spoken=False).check(text_value(week["title"]))
        except ValueError as exc:
            problems.append(f"{where('week', 0, 'title')}: {exc}.")
            del week["title"]
    number = 1
    if "number" in week:
        try:
            number = check_week_number(week["number"], "number")
        except AudioguideError as exc:
            problems.append(f"{where('week', 0, 'number')}: "
                            f"{exc.message.removeprefix('number: ')}")
    help_line = None
    if "help_line" in week:
        try:
            help_line = Text(HELP_LINE_MAX).check(text_value(week["help_line"]))
        except ValueError as exc:
            problems.append(f"{where('week', 0, 'help_line')}: {exc}.")
    email = None
    if "email" in week:
        try:
            email = check_email(week["email"])
        except ValueError as exc:
            problems.append(f"{where('week', 0, 'email')}: {exc}.")
    sessions_data = data.get("session", [])
    if not isinstance(sessions_data, list) or not sessions_data:
        problems.append(f"{source.name}: the plan has no [[session]] tables.")
        sessions_data = []
    if len(sessions_data) > MAX_SESSIONS:
        problems.append(f"{source.name}: {len(sessions_data)} sessions is more than a week "
                        f"holds; at most {MAX_SESSIONS}.")
        sessions_data = sessions_data[:MAX_SESSIONS]
    sessions: list[PlannedSession] = []
    for index, entry in enumerate(sessions_data):
        if not isinstance(entry, dict):
            problems.append(f"{where('session', index, '')}: {entry!r} is not a session; write "
                            "each as a [[session]] table.")
            continue
        session_problems = _check_session(entry, index, where)
        problems += session_problems
        if any(f" {key}:" in p or p.endswith(f"missing '{key}'.") for p in session_problems
               for key in ("kind", "minutes")):
            continue  # nothing more can be said of a session without its kind and length
        day = entry.get("day")
        day = day if isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7 else 1
        bad = {key for key in OPTIONS if any(f" {key}:" in p for p in session_problems)}
        merged = _week_options(week, entry) | {k: v for k, v in entry.items() if k not in bad}
        try:
            request = validate(_request(merged, start, day, out_dir))
        except RequestError as exc:
            key = _key_of(exc.field)
            table = "session" if key in entry or key in ("kind", "minutes") else "week"
            problems.append(f"{where(table, index if table == 'session' else 0, key)}: "
                            f"{exc.message}")
            continue
        except AudioguideError as exc:
            problems.append(f"{where('session', index, 'kind')}: {exc.message}")
            continue
        except (TypeError, ValueError) as exc:
            problems.append(f"{where('session', index, '')}: {exc}")
            continue
        line = lines.get(("session", index, ""), 0)
        if not session_problems:
            sessions.append(PlannedSession(day, start + dt.timedelta(days=day - 1), request,
                                           f"{source.name} line {line}"))
    if problems:
        return None, problems
    title = str(week.get("title", "Practice week"))
    ordered = sorted(sessions, key=lambda s: s.day)
    placed = in_programme(ordered, number, help_line, source if path is None else None)
    return WeekPlan(title, start, tuple(placed), str(source), number, help_line, email), []


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


def check_email(value: Any) -> str:
    """The feed owner's email address as a plan gives it (else ValueError)."""
    text = text_value(value).strip()
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise ValueError(f"{text[:60]!r} is not an email address; give one such as "
                         "\"me@example.org\", or leave the key out")
    return text


def text_value(value: Any) -> str:
    """A plan's TOML value that must be text (else ValueError)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} should be text")
    return value


def in_programme(sessions: list[PlannedSession], number: int, help_line: str | None,
                 shipped: Path | None) -> list[PlannedSession]:
    """The sessions with their place in the programme: week ``number``, their day, how
    many sessions came before (``seq``) and how many of their own kind (``turn``).

    Earlier weeks are the shipped programme's when the plan is the shipped one (``shipped``
    is its path), else this plan again, as a listener repeating their own week would.
    """
    before: dict[str, int] = {}
    seq = 0
    for earlier in range(1, number):
        written = shipped is not None and earlier < PROGRAMME_WEEKS
        kinds = (_kinds_of(default_plan_path(earlier)) if shipped is not None
                 else [s.request.kind for s in sessions])
        # This plan (or the last written week) is every week from here on: count them all.
        times = 1 if written else number - earlier
        for kind in kinds:
            before[kind] = before.get(kind, 0) + times
        seq += len(kinds) * times
        if not written:
            break
    placed = []
    for session in sessions:
        kind = session.request.kind
        request = replace(session.request, week_number=number, day=session.day, seq=seq,
                          turn=before.get(kind, 0), help_line=help_line)
        before[kind] = before.get(kind, 0) + 1
        seq += 1
        placed.append(replace(session, request=request))
    return placed


def _kinds_of(path: Path) -> list[str]:
    """The kinds of a shipped plan's sessions, in order of day (they are our own files)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = sorted(data.get("session", []), key=lambda e: e.get("day", 1))
    return [str(e["kind"]) for e in entries]


def _check_session(entry: dict[str, Any], index: int, where: Any) -> list[str]:
    problems = []
    for key in sorted(set(entry) - SESSION_KEYS):
        if key in PROGRAMME_KEYS:
            problems.append(f"{where('session', index, key)}: '{key}' belongs to the whole "
                            "week; set it in [week].")
            continue
        problems.append(f"{where('session', index, key)}: unknown key; known keys: "
                        f"{', '.join(sorted(SESSION_KEYS))}.")
    for key in ("day", "kind", "minutes"):
        if key not in entry:
            problems.append(f"{where('session', index, '')}: missing '{key}'.")
    day = entry.get("day")
    if "day" in entry and (not isinstance(day, int) or isinstance(day, bool)
                           or not 1 <= day <= 7):
        problems.append(f"{where('session', index, 'day')}: {day!r} is not a day of the week; "
                        "use a whole number from 1 to 7.")
    minutes = entry.get("minutes")
    if "minutes" in entry and (not isinstance(minutes, int | float) or isinstance(minutes, bool)
                               or minutes <= 0):
        problems.append(f"{where('session', index, 'minutes')}: {minutes!r} is not a length; "
                        "give a number of minutes above 0, such as 10 or 7.5.")
    problems += [f"{where('session', index, key)}: {text}" for key, text in value_problems(entry)]
    return problems


def value_problems(table: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each option value of the wrong type or out of range: the same
    checks for a ``[week]`` value as for a session's."""
    found = []
    for key, option in OPTIONS.items():
        if key not in table:
            continue
        try:
            value = option.value.from_plan(table[key])
            if key != "pace":
                option.value.check(value)
            elif value not in {pace.value for pace in Pace}:
                raise ValueError(f"{value!r} is not a pace; choose "
                                 + " or ".join(pace.value for pace in Pace))
        except ValueError as exc:
            text = str(exc) if str(exc) else f"{table[key]!r} is not accepted"
            found.append((key, text.rstrip(".") + "."))
    return found


def _key_of(flag: str) -> str:
    """The plan key of a command-line flag ("--safe-person" -> "safe_person")."""
    for option in BY_KEY.values():
        if option.flag == flag:
            return option.key
    return "kind" if flag in ("KIND", "--template") else flag.lstrip("-").replace("-", "_")


def _week_options(week: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The ``[week]`` options that apply to this session: personal options reach only the
    kinds that use them (a week's intention is for the kinds that speak one)."""
    try:
        uses = get_kind(str(entry.get("kind", ""))).uses
    except AudioguideError:
        uses = frozenset()
    return {k: v for k, v in week.items() if k in OPTIONS
            and (not OPTIONS[k].personal or OPTIONS[k].field in uses)}


def _request(options: dict[str, Any], start: dt.date, day: int, out_dir: Path) -> Request:
    request = Request(kind=str(options["kind"]), minutes=float(options["minutes"]),
                      out_dir=out_dir, date=start + dt.timedelta(days=day - 1))
    changes: dict[str, Any] = {}
    for key, value in options.items():
        if key in OPTIONS:
            option = OPTIONS[key]
            changes[option.field] = Pace(value) if key == "pace" else option.value.check(
                option.value.from_plan(value))
    return replace(request, **changes)
