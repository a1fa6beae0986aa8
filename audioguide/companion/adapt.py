"""Weeks that listen back: the practice log read into a week before it is built.

Two things are read. The log of the week itself gives its review (day 7) what
was practised, the feelings named most often, how the 0-10 answers moved, and
the notes the listener let it read aloud. The log of the week before (the one
that started seven days earlier) shapes the programme: a kind of session marked
as too much steps back (one level gentler and shorter), a kind only skipped
keeps its level and its length, and a kind done and manageable steps forward as
the programme describes. Without a log the programme is followed as written.
Each change comes with one sentence saying why, shown on the week's page.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from audioguide.companion.practised import Practised, note_lines, plain
from audioguide.script.context import LEVELS

if TYPE_CHECKING:
    from audioguide.companion.store import Entry
    from audioguide.request import Request
    from audioguide.week.planfile import PlannedSession, WeekPlan

#: Notes the review reads aloud at most (the latest).
NOTES_SPOKEN = 2
#: The start of a file name of a session made from the page (not one of the week's own).
MADE = "made-"
#: A step back shortens a session to this share of last week's length.
STEP_BACK = 0.8


def latest(entries: list[Entry]) -> dict[str, Entry]:
    """The latest entry of each session (a listener may log a session twice)."""
    found: dict[str, Entry] = {}
    for entry in entries:  # oldest first
        found[entry.session] = entry
    return found


def practised(entries: list[Entry], planned: int) -> Practised | None:
    """What ``entries`` (one week's) say, or None when there are none."""
    from audioguide.script.templates import get_kind

    if not entries:
        return None
    # The week's own sessions, the review (being spoken) and any made from the page aside.
    sessions = sorted((e for e in latest(entries).values()
                       if not e.session.startswith(MADE) and e.kind != "review"),
                      key=lambda e: (e.day, e.session))
    if not sessions:
        return None
    planned = max(planned, len(sessions))  # a log can hold sessions of an earlier plan
    done = [e for e in sessions if e.done]
    kinds = Counter(e.kind for e in done)
    titles = []
    for kind, _ in kinds.most_common():
        try:
            titles.append(get_kind(kind).title.lower())
        except Exception:  # a kind of the listener's own templates, no longer there
            titles.append(kind.replace("-", " "))
    named = Counter(e.feeling for e in sessions if e.feeling)
    return Practised(
        planned=planned, done=len(done), skipped=sum(not e.done for e in sessions),
        too_much=sum(e.too_much for e in sessions), practices=tuple(titles),
        feelings=tuple(word for word, _ in named.most_common(3)),
        ratings=tuple(e.rating for e in sessions if e.rating is not None),
        notes=tuple(e.note for e in sessions if e.note and e.speak_note
                    and note_lines(plain(e.note)))[-NOTES_SPOKEN:],
        repeated=any(count > 1 for count in named.values()))


def read_log(path: Path | None, week_start: dt.date) -> list[Entry]:
    """The entries of the week starting ``week_start``; none when there is no log (the log
    is not made by reading it)."""
    from audioguide.companion.store import PracticeLog, default_log_path

    path = path or default_log_path()
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return []  # nothing logged there yet (and reading makes no file)
    return PracticeLog(path).entries(week_start=week_start)


def programme_level(week_number: int) -> int:
    """The level the programme as written gives a week."""
    return min(week_number, LEVELS)


def levels_built(folder: Path) -> dict[str, int]:
    """Kind -> the lowest level it was built at, from a built week's ``week.json``."""
    from audioguide.week import MANIFEST

    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        pairs = zip(data["kinds"], data["levels"], strict=True)
        found: dict[str, int] = {}
        for kind, level in pairs:
            if isinstance(kind, str) and isinstance(level, int) and 1 <= level <= LEVELS:
                found[kind] = min(found.get(kind, level), level)
        return found
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def adapt(plan: WeekPlan, before: list[Entry], levels: dict[str, int]) -> WeekPlan:
    """``plan`` shaped by the log of the week before it (``before``); ``levels``: the
    levels that week's kinds were built at, where known. One sentence per kind and change
    says why ("Body scan (Wednesday, Thursday): it felt like too much last week
    (Thursday), so these are gentler: 7 minutes rather than 10, at week 1's level rather
    than week 2's.")."""
    if plan.number < 2 or not before:
        return plan
    by_kind: dict[str, list[Entry]] = {}
    for entry in latest(before).values():
        if not entry.session.startswith(MADE):  # a session made from the page is extra
            by_kind.setdefault(entry.kind, []).append(entry)
    written = programme_level(plan.number)
    sessions: list[PlannedSession] = []
    said: dict[tuple[str, str, str], list[str]] = {}  # (kind, reason, details) -> weekdays
    for session in plan.sessions:
        request = session.request
        logged = by_kind.get(request.kind)
        changed = _changed(request, logged, levels, plan.number) if logged else None
        if changed is None:
            sessions.append(session)
            continue
        sessions.append(replace(session, request=changed))
        assert logged is not None
        said.setdefault(_why(request, changed, logged, written), []).append(
            f"{session.date:%A}")
    changes = []
    for (kind, why, details), days in said.items():
        alone = len(days) == 1
        words = {"one": "this one" if alone else "these", "is_": "is" if alone else "are",
                 "stays": "stays" if alone else "stay", "goes": "goes" if alone else "go"}
        changes.append(f"{kind} ({', '.join(days)}): {why.format(**words)}: {details}.")
    return replace(plan, sessions=tuple(sessions), changes=tuple(changes))


def _changed(request: Request, logged: list[Entry], levels: dict[str, int],
             number: int) -> Request | None:
    """The session as its kind's entries of the week before shape it; None when it stays
    as written."""
    written = programme_level(number)
    was = levels.get(request.kind, programme_level(number - 1))
    shortest = min(e.minutes for e in logged)
    if any(e.too_much for e in logged):
        level = max(1, was - 1)
        least = math.ceil(request.kind_info().min_minutes * 2) / 2
        minutes = min(request.minutes, max(math.floor(shortest * STEP_BACK * 2) / 2, least))
    elif not any(e.done for e in logged):
        level, minutes = was, min(request.minutes, shortest)
    else:
        level, minutes = min(was + 1, written), request.minutes
    if (level, minutes) == (written, request.minutes):
        return None
    changed = fitted(replace(request, level=level, minutes=minutes), request.minutes)
    if changed is None or (level, changed.minutes) == (written, request.minutes):
        return None  # no gentler length fits these settings: as written
    return changed


def _why(request: Request, changed: Request, logged: list[Entry],
         written: int) -> tuple[str, str, str]:
    """(the kind, its reason, the change in numbers) for one changed session; the reason
    leaves ``one``, ``is_``, ``stays`` and ``goes`` to be filled for one session or more."""
    title = request.kind_info().title
    heavy = sorted({e.day for e in logged if e.too_much})
    if heavy:
        days = ", ".join(f"{day:%A}" for day in heavy)
        why = f"it felt like too much last week ({days}), so {{one}} {{is_}} gentler"
    elif not any(e.done for e in logged):
        why = "you did not get to it last week, so {one} {stays} as it was"
    else:
        why = "it went well last week, so {one} {goes} one step further"
    details = []
    if changed.minutes != request.minutes:
        details.append(f"{changed.minutes:g} minutes rather than {request.minutes:g}")
    level = changed.level or written
    if level != written:
        details.append(f"at week {level}'s level rather than week {written}'s")
    return title, why, ", ".join(details)


def fitted(request: Request, planned: float) -> Request | None:
    """``request`` at a length its script fits (planned, so spoken: only for the few
    sessions the log changes): its own, else the shortest its settings allow, else the
    ``planned`` one; None when none of them fits."""
    from audioguide.errors import AudioguideError, TooShortError
    from audioguide.planning import plan

    tries = [request.minutes]
    for minutes in tries:
        candidate = replace(request, minutes=minutes)
        try:
            plan(candidate)
            return candidate
        except TooShortError as short:
            least = math.ceil(short.minimum_s / 30) / 2
            # The shortest length that holds the script, or (a length the fitter cannot
            # place exactly) a little more; the planned one last.
            for more in (least, least + 0.5, least + 1, planned):
                if minutes < more <= planned and more not in tries:
                    tries.append(more)
        except AudioguideError:
            if planned not in tries:
                tries.append(planned)
    return None


def as_built(plan: WeekPlan, out: Path) -> WeekPlan:
    """``plan`` with the lengths, levels and reasons its week was built with (from its
    ``week.json``), so making its review again changes nothing else, whatever the log of
    the week before says now."""
    from audioguide.week import MANIFEST
    from audioguide.week.build import week_folder

    try:
        week = json.loads((week_folder(out, plan.start) / MANIFEST).read_text("utf-8"))
        built = list(zip(week["sessions"], week["kinds"], week["levels"], strict=True))
        changes = tuple(str(c) for c in week.get("changes", ()))
    except (OSError, ValueError, KeyError, TypeError):
        return plan
    if len(built) != len(plan.sessions):
        return plan
    placed = []
    for session, (name, kind, level) in zip(plan.sessions, built, strict=True):
        length = re.search(r"-(\d+(?:\.\d+)?)min\.mp3$", str(name))
        if (kind != session.request.kind or length is None or isinstance(level, bool)
                or not isinstance(level, int) or not 1 <= level <= LEVELS):
            return plan  # not this plan's week, or its record was edited: as planned
        placed.append(replace(session, request=replace(
            session.request, minutes=float(length[1]),
            level=None if level == programme_level(plan.number) else level)))
    return replace(plan, sessions=tuple(placed), changes=changes)


def with_log(plan: WeekPlan, log_path: Path | None, out: Path,
             as_written: bool = False) -> WeekPlan:
    """``plan`` as the log shapes it: adapted to the week before (unless ``as_written``),
    and its review told what this week's own log holds."""
    from audioguide.week.build import week_folder

    if not as_written:
        before = plan.start - dt.timedelta(days=7)
        plan = adapt(plan, read_log(log_path, before), levels_built(week_folder(out, before)))
    summary = practised(read_log(log_path, plan.start),
                        sum(s.request.kind != "review" for s in plan.sessions))
    if summary is None:
        return plan
    return replace(plan, sessions=tuple(
        replace(s, request=replace(s.request, practised=summary))
        if s.request.kind == "review" else s for s in plan.sessions))
