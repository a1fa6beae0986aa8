"""The week's own files, written last over its finished sessions: ``week.json`` (what
marks the folder as a week, and what the practice log needs of it), the playlist, the
feed and the page, all of them or (the disk full half-way) none."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from audioguide.builder import output_name
from audioguide.request import Request
from audioguide.week import MANIFEST
from audioguide.week.planfile import WeekPlan


def album_title(plan: WeekPlan) -> str:
    """``Practice week of 23 Nov 2026``."""
    return f"{plan.title} of {plan.start.day} {plan.start:%b %Y}"


def finish_week(folder: Path, plan: WeekPlan, requests: list[Request], base_url: str) -> None:
    """Write the week's manifest, playlist, feed and page over its finished sessions (and
    the sessions made for the listener from the page, kept from before), all of them or
    (the disk full half-way) none."""
    from audioguide.script.context import LEVELS

    publish(folder, {
        "title": album_title(plan),
        "start": plan.start.isoformat(),
        # The plan's name, not its path: the folder is served to a network.
        "plan": Path(plan.source).name,
        "sessions": [output_name(r) for r in requests],
        "kinds": [r.kind for r in requests],
        "levels": [r.level or min(r.week_number, LEVELS) for r in requests],
        "changes": list(plan.changes),
        "base_url": base_url,
        "help_line": plan.help_line,
        "email": plan.email,
        "made": made_sessions(folder),
    })


def made_sessions(folder: Path) -> list[str]:
    """The sessions made from the page that the folder's manifest lists and still holds."""
    try:
        made = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("made", [])
        return [name for name in made if isinstance(name, str) and "/" not in name
                and not name.startswith(".") and (folder / name).is_file()]
    except (OSError, ValueError, AttributeError, RecursionError):
        return []


def publish(folder: Path, week: dict[str, Any]) -> None:
    """Write ``week`` as the folder's manifest, and the playlist, feed and page of its
    sessions and (under "Made for you") of the ones made from the page."""
    from audioguide.publish import write_together
    from audioguide.week.feed import feed_files, playlist_files
    from audioguide.week.page import page_files

    title = str(week["title"])
    sessions = [folder / name for name in week["sessions"]]
    made = [folder / name for name in week.get("made", [])]
    owner = SimpleNamespace(help_line=week.get("help_line"), email=week.get("email"))
    write_together({folder / MANIFEST: json.dumps(week, indent=2).encode(),
                    **playlist_files(folder, title, sessions + made),
                    **feed_files(folder, title, owner, sessions + made,
                                 str(week.get("base_url") or "http://127.0.0.1:8000/")),
                    **page_files(folder, title, sessions, week.get("help_line"),
                                 dt.date.fromisoformat(week["start"]),
                                 tuple(week.get("changes", ())), made)},
                   "the week's playlist, feed and page")


def add_made(folder: Path, name: str) -> None:
    """Add the session ``name`` (built in ``folder`` from the page) to the week's manifest,
    page ("Made for you"), feed and playlist."""
    week = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    week["made"] = [*(n for n in made_sessions(folder) if n != name), name]
    publish(folder, week)
