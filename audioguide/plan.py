"""Weekly plan files (TOML): defaults for the week, then one ``[[session]]`` table per session.

Every problem is collected before any audio is made and reported together,
each naming its key and the line it is on.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audioguide.errors import AudioguideError
from audioguide.session import Pace, Request, validate
from audioguide.templates import shipped_dir

#: Options a plan may set, for the whole week or per session -> how to read them.
OPTIONS: dict[str, type] = {
    "name": str, "voice": str, "rate": int, "pace": str, "walking": bool, "chime": str,
    "settle": float, "ambience": str, "ambience_level": float, "focus": list,
    "feelings": list, "intention": str, "safe_person": str, "bell_every": float,
    "bitrate": int, "loudness": float, "engine": str,
}
WEEK_KEYS = {"title", *OPTIONS}
SESSION_KEYS = {"day", "kind", "minutes", *OPTIONS}
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class PlannedSession:
    """One session of the week: which day, and the request that builds it."""

    day: int
    date: dt.date
    request: Request


@dataclass(frozen=True)
class WeekPlan:
    """A validated week."""

    title: str
    start: dt.date
    sessions: tuple[PlannedSession, ...]
    source: str


def default_plan_path() -> Path:
    """The shipped default week."""
    return shipped_dir() / "default-week.toml"


def parse_start(text: str) -> dt.date:
    """``--start`` as a date, or a clear error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise AudioguideError(f"--start: {text!r} is not a date; give it as YYYY-MM-DD, "
                              "such as 2026-11-23.") from None


def _key_lines(text: str) -> dict[tuple[str, int, str], int]:
    """(table, index, key) -> line number, for ``[week]`` and each ``[[session]]``."""
    lines: dict[tuple[str, int, str], int] = {}
    table, index, sessions = "", -1, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[["):
            table = line.strip("[] ")
            index = sessions if table == "session" else 0
            sessions += table == "session"
            lines[(table, index, "")] = number
        elif line.startswith("["):
            table, index = line.strip("[] "), 0
            lines[(table, index, "")] = number
        else:
            match = re.match(r"([A-Za-z0-9_-]+)\s*=", line)
            if match:
                lines[(table, index, match[1])] = number
    return lines


def load(path: Path | None, start: dt.date, out_dir: Path) -> WeekPlan:
    """Read and validate the plan at ``path`` (the default week when None)."""
    source = path or default_plan_path()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise AudioguideError(f"PLAN: cannot read {source}: {exc.strerror or exc}.") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AudioguideError(f"{source}: the plan is not valid TOML: {exc}.") from exc
    lines = _key_lines(text)
    problems: list[str] = []

    def where(table: str, index: int, key: str) -> str:
        line = lines.get((table, index, key)) or lines.get((table, index, ""))
        label = f"[week] {key}" if table == "week" else f"session {index + 1} {key}".strip()
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
    sessions_data = data.get("session", [])
    if not isinstance(sessions_data, list) or not sessions_data:
        problems.append(f"{source.name}: the plan has no [[session]] tables.")
        sessions_data = []
    sessions: list[PlannedSession] = []
    for index, entry in enumerate(sessions_data):
        merged = {k: v for k, v in week.items() if k in OPTIONS} | entry
        session_problems = _check_session(entry, index, where)
        if session_problems:
            problems += session_problems
            continue
        try:
            request = validate(_request(merged, start, int(entry["day"]), out_dir))
        except AudioguideError as exc:
            problems.append(f"{where('session', index, 'kind')}: {exc.message}")
            continue
        except (TypeError, ValueError) as exc:
            problems.append(f"{where('session', index, '')}: {exc}")
            continue
        day = int(entry["day"])
        sessions.append(PlannedSession(day, start + dt.timedelta(days=day - 1), request))
    if problems:
        raise AudioguideError(f"The plan has {len(problems)} problem"
                              f"{'s' if len(problems) > 1 else ''}; nothing was built. "
                              + " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)))
    title = str(week.get("title", "Practice week"))
    return WeekPlan(title, start, tuple(sorted(sessions, key=lambda s: s.day)), str(source))


def _check_session(entry: dict[str, Any], index: int, where: Any) -> list[str]:
    problems = []
    for key in sorted(set(entry) - SESSION_KEYS):
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
    for key, kind in OPTIONS.items():
        if key in entry and not _is(entry[key], kind):
            problems.append(f"{where('session', index, key)}: {entry[key]!r} should be "
                            f"{_describe(kind)}.")
    return problems


def _is(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _describe(kind: type) -> str:
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list of words, such as [\"calm\", \"worry\"]"}[kind]


def _request(options: dict[str, Any], start: dt.date, day: int, out_dir: Path) -> Request:
    request = Request(kind=str(options["kind"]), minutes=float(options["minutes"]),
                      out_dir=out_dir, date=start + dt.timedelta(days=day - 1))
    fields = {
        "name": "name", "voice": "voice", "rate": "rate", "walking": "walking",
        "chime": "chime", "settle": "settle_s", "ambience": "ambience",
        "ambience_level": "ambience_level_db", "intention": "intention",
        "safe_person": "safe_person", "bell_every": "bell_every", "bitrate": "bitrate_kbps",
        "loudness": "loudness_lufs", "engine": "engine",
    }
    changes: dict[str, Any] = {fields[k]: v for k, v in options.items() if k in fields}
    if "pace" in options:
        try:
            changes["pace"] = Pace(options["pace"])
        except ValueError:
            raise ValueError(f"pace {options['pace']!r} is not normal or slow") from None
    for key in ("focus", "feelings"):
        if key in options:
            changes[key] = tuple(str(v).lower() for v in options[key])
    return replace(request, **changes)
