"""Roster files (TOML): defaults for the batch, then one ``[[listener]]`` table per person.

A roster gives each listener a personalised week: their plan (the batch's by
default) with their own values in place of the plan's ``[week]`` values. The
whole roster, every listener's plan included, is validated before any audio is
made, and every problem is reported at once with its file and line.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioguide.errors import AudioguideError
from audioguide.options import Text
from audioguide.publish import safe_filename
from audioguide.tomlfile import parse_toml, read_toml_text
from audioguide.week import planfile
from audioguide.week.build import week_folder
from audioguide.week.planfile import OPTIONS, WeekPlan

#: The batch's record, in the output folder beside the listeners' folders.
RECORD = "batch.json"
#: Keys of ``[batch]``: where the weeks come from, and any option for every listener.
BATCH_KEYS = {"start", "plan", "title", "email", *planfile.PROGRAMME_KEYS, *OPTIONS}
#: Keys of a ``[[listener]]``: who, and anything of ``[batch]`` for them alone.
LISTENER_KEYS = {"id", *BATCH_KEYS}
#: More listeners than this in one roster is a mistake, not a course.
MAX_LISTENERS = 10_000
#: A roster file larger than this is not a roster.
MAX_ROSTER_BYTES = 8 << 20


@dataclass(frozen=True)
class Listener:
    """One person of the roster, with their validated week."""

    id: str
    plan: WeekPlan
    #: ``DIR/<id>/<ISO week>``, where their week is built.
    folder: Path
    #: Where they are in the roster ("course.toml line 12"), for problems found later.
    where: str


@dataclass(frozen=True)
class Roster:
    """A validated roster."""

    source: Path
    listeners: tuple[Listener, ...]


def load(path: Path, out: Path, start: dt.date | None = None,
         week_number: int | None = None) -> Roster:
    """Read and validate the roster at ``path``; weeks go under ``out``.

    ``start`` (the command line's ``--start``) replaces every start date the roster gives.
    """
    text = read_toml_text(path, "ROSTER", "roster", MAX_ROSTER_BYTES)
    data = parse_toml(text, path, "ROSTER", "roster")
    lines = planfile.key_lines(text, "listener")
    problems: list[str] = []

    def where(table: str, index: int, key: str = "") -> str:
        line = lines.get((table, index, key)) or lines.get((table, index, ""))
        label = "[batch]" if table == "batch" else f"listener {index + 1}"
        label = f"{label} {key}".strip()
        return f"{path.name} line {line}, {label}" if line else f"{path.name}, {label}"

    for key in sorted(set(data) - {"batch", "listener"}):
        problems.append(f"{where('', -1, key)}: unknown key; a roster has a [batch] table "
                        "and [[listener]] tables.")
    batch = data.get("batch", {})
    if not isinstance(batch, dict):
        problems.append(f"{path.name}: 'batch' must be a table, [batch].")
        batch = {}
    problems += _check_table(batch, BATCH_KEYS, lambda key: where("batch", 0, key))
    entries = data.get("listener", [])
    if not isinstance(entries, list) or not entries:
        problems.append(f"{path.name}: the roster has no [[listener]] tables; add one per "
                        "person, each with an 'id'.")
        entries = []
    if len(entries) > MAX_LISTENERS:
        problems.append(f"{path.name}: {len(entries)} listeners is more than one roster "
                        f"holds; at most {MAX_LISTENERS}. Split it into several rosters.")
        entries = entries[:MAX_LISTENERS]

    listeners: list[Listener] = []
    seen: dict[str, int] = {}
    #: A plan's problem, once, with the listeners whose week has it.
    plan_problem_listeners: dict[str, list[str]] = {}
    plans: dict[tuple[Path | None, dt.date], tuple[WeekPlan | None, list[str]]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"{where('listener', index)}: {entry!r} is not a listener; write "
                            "each as a [[listener]] table.")
            continue
        own = _check_table(entry, LISTENER_KEYS, lambda key, i=index: where("listener", i, key))
        problems += own
        raw_id = entry.get("id")
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or not str(raw_id):
            problems.append(f"{where('listener', index, 'id')}: "
                            + ("missing 'id'" if raw_id is None else f"{raw_id!r} is not an id")
                            + "; give each listener a short unique text, such as \"ana\" or "
                            "\"p-017\", which names their folder.")
            continue
        ident = _folder_name(str(raw_id))
        if ident is None or ident == RECORD:
            problems.append(f"{where('listener', index, 'id')}: {raw_id!r} cannot name a "
                            "folder" + (f" (it is the batch's record, {RECORD})" if ident else
                                        " (it has no Latin letter or digit)")
                            + "; give each listener a short unique text, such as \"ana\" or "
                            "\"p-017\", which names their folder.")
            continue
        if ident in seen:
            problems.append(f"{where('listener', index, 'id')}: {raw_id!r} names the same "
                            f"folder ({ident!r}) as listener {seen[ident] + 1}; every listener "
                            "needs an id of their own.")
            continue
        seen[ident] = index
        if own:
            continue
        # A bad [batch] value is reported once, at its own line, not for every listener.
        merged = {k: v for k, v in batch.items() if k in BATCH_KEYS
                  and not _check_table({k: v}, BATCH_KEYS, str)} | entry
        first = start or _start(merged.get("start"))
        plan_path = _plan_path(merged.get("plan"), path)
        overrides = {k: v for k, v in merged.items() if k in planfile.WEEK_KEYS}
        if week_number is not None:
            overrides["number"] = week_number

        def at(key: str, i: int = index, own: dict[str, Any] = entry) -> str:
            return where("listener", i, key) if key in own else where("batch", 0, key)

        try:
            if overrides:
                plan, plan_problems = planfile.check(plan_path, first, Path(), overrides, at)
            else:  # the same plan and start for many listeners: checked once
                shared = (plan_path, first)
                if shared not in plans:
                    plans[shared] = planfile.check(plan_path, first, Path())
                plan, plan_problems = plans[shared]
        except AudioguideError as exc:
            plan, plan_problems = None, [exc.message]
        for problem in plan_problems:
            plan_problem_listeners.setdefault(problem, []).append(ident)
        if plan is None or plan_problems:
            continue
        folder = week_folder(out / ident, first)
        line = lines.get(("listener", index, ""), 0)
        listeners.append(Listener(ident, plan, folder, f"{path.name} line {line}"))
    for problem, idents in plan_problem_listeners.items():
        who = ", ".join(idents[:3]) + (f" and {len(idents) - 3} more" if len(idents) > 3 else "")
        problems.append(f"for listener{'s' if len(idents) > 1 else ''} {who}: {problem}")
    if problems:
        shown = problems[:50]
        more = f" … and {len(problems) - 50} more." if len(problems) > 50 else ""
        raise AudioguideError(f"The roster has {len(problems)} problem"
                              f"{'s' if len(problems) > 1 else ''}; nothing was built. "
                              + " ".join(f"({i}) {p}" for i, p in enumerate(shown, 1)) + more)
    return Roster(path, tuple(listeners))


def _folder_name(ident: str) -> str | None:
    """The folder an id names, made safe; None when nothing of it would be left."""
    ascii_text = unicodedata.normalize("NFKD", ident).encode("ascii", "ignore").decode()
    return safe_filename(ident) if re.search("[A-Za-z0-9]", ascii_text) else None


def _check_table(table: dict[str, Any], known: set[str], where: Any) -> list[str]:
    problems = [f"{where(key)}: unknown key; known keys: {', '.join(sorted(known))}."
                for key in sorted(set(table) - known)]
    problems += [f"{where(key)}: {text}" for key, text in planfile.value_problems(table)]
    if "start" in table:
        try:
            _start(table["start"])
        except AudioguideError as exc:
            problems.append(f"{where('start')}: {exc.message}")
    if "plan" in table and (not isinstance(table["plan"], str) or not table["plan"].strip()):
        problems.append(f"{where('plan')}: {table['plan']!r} is not a plan file; give its "
                        "path as text, relative to the roster, such as \"gentle.toml\".")
    if "title" in table:
        try:
            Text(planfile.TITLE_MAX, spoken=False).check(planfile.text_value(table["title"]))
        except ValueError as exc:
            problems.append(f"{where('title')}: {exc}.")
    return problems


def _start(value: object) -> dt.date:
    if value is None:
        return planfile.coming_monday()
    if isinstance(value, dt.datetime):
        value = value.date()
    day: dt.date | None = None
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            day = None
    if day is None:
        raise AudioguideError(f"{value!r} is not a date; write it as 2026-11-23 (a TOML date) "
                              "or \"2026-11-23\".")
    if day > dt.date.max - dt.timedelta(days=7):
        raise AudioguideError(f"{day.isoformat()} is too far in the future for a week.")
    if day < planfile.EARLIEST_START:
        raise AudioguideError(f"{day.isoformat()} is too far in the past for a week (from "
                              f"{planfile.EARLIEST_START.year}).")
    return day


def _plan_path(value: object, roster: Path) -> Path | None:
    """A plan named in the roster, relative to the roster's folder; None for the default."""
    if not isinstance(value, str):
        return None
    plan = Path(value).expanduser()
    return plan if plan.is_absolute() else roster.parent / plan


def with_logs(roster: Roster, logs: Path | None, as_written: bool = False) -> Roster:
    """Each listener's week as their practice log (``logs/<id>.sqlite``, where ``serve
    --allow-writes`` keeps a batch's logs) shapes it: see :func:`audioguide.companion.adapt.
    with_log`."""
    from dataclasses import replace

    from audioguide.companion.adapt import with_log
    from audioguide.companion.store import default_log_path

    where = logs or default_log_path().parent / "listeners"
    return replace(roster, listeners=tuple(
        replace(listener, plan=with_log(listener.plan, where / f"{listener.folder.parent.name}"
                                        ".sqlite", listener.folder.parent, as_written))
        for listener in roster.listeners))
