"""The week's own files, written last over its finished sessions: ``week.json`` (what
marks the folder as a week, and what the practice log needs of it), the playlist, the
feed and the page, all of them or (the disk full half-way) none."""

from __future__ import annotations

import json
from pathlib import Path

from audioguide.builder import output_name
from audioguide.request import Request
from audioguide.week import MANIFEST
from audioguide.week.planfile import WeekPlan


def album_title(plan: WeekPlan) -> str:
    """``Practice week of 23 Nov 2026``."""
    return f"{plan.title} of {plan.start.day} {plan.start:%b %Y}"


def finish_week(folder: Path, plan: WeekPlan, requests: list[Request], base_url: str) -> None:
    """Write the week's manifest, playlist, feed and page over its finished sessions, all
    of them or (the disk full half-way) none."""
    from audioguide.publish import write_together
    from audioguide.week.feed import feed_files, playlist_files
    from audioguide.week.page import page_files

    episodes = [request.out_dir / output_name(request) for request in requests]
    title = album_title(plan)
    write_together({**_manifest(folder, plan, requests),
                    **playlist_files(folder, title, episodes),
                    **feed_files(folder, title, plan, episodes, base_url),
                    **page_files(folder, title, episodes, plan.help_line, plan.start,
                                 plan.changes)},
                   "the week's playlist, feed and page")


def _manifest(folder: Path, plan: WeekPlan, requests: list[Request]) -> dict[Path, bytes]:
    from audioguide.script.context import LEVELS

    data = {
        "title": album_title(plan),
        "start": plan.start.isoformat(),
        # The plan's name, not its path: the folder is served to a network.
        "plan": Path(plan.source).name,
        "sessions": [output_name(r) for r in requests],
        "kinds": [r.kind for r in requests],
        "levels": [r.level or min(r.week_number, LEVELS) for r in requests],
        "changes": list(plan.changes),
    }
    return {folder / MANIFEST: json.dumps(data, indent=2).encode()}
