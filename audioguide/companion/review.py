"""The week's review made again by ``serve`` when the practice log changes: the review's
own recipe (stored in its tag) with what the log now holds, queued as any build is."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from audioguide.companion.adapt import practised
from audioguide.companion.practised import Practised
from audioguide.companion.store import PracticeLog
from audioguide.request import Pace, Request


def from_recipe(recipe: dict[str, Any], folder: Path) -> Request:
    """The request a session's stored recipe describes, to be written in ``folder``."""
    fields = {f.name for f in dataclasses.fields(Request)} - {"out_dir", "use_cache"}
    values = {k: v for k, v in recipe.items() if k in fields}
    values.update(
        pace=Pace(values["pace"]), date=dt.date.fromisoformat(values["date"]),
        focus=tuple(values.get("focus") or ()), feelings=tuple(values.get("feelings") or ()),
        track=tuple(values["track"]) if values.get("track") else None,
        templates_dir=Path(values["templates_dir"]) if values.get("templates_dir") else None,
        template_file=Path(values["template_file"]) if values.get("template_file") else None)
    if isinstance(values.get("practised"), dict):
        stored: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in values["practised"].items()}
        values["practised"] = Practised(**stored)
    return Request(out_dir=folder, **values)


def reviews_to_make(folder: Path, log: PracticeLog) -> list[Request]:
    """The week's review sessions told what its log holds now; none when they already say
    it (or the week has no review)."""
    from audioguide import tags
    from audioguide.week import MANIFEST

    week = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    sessions, kinds = week["sessions"], week.get("kinds") or []
    summary = practised(log.entries(week_start=dt.date.fromisoformat(week["start"])),
                        sum(kind != "review" for kind in kinds) if kinds else len(sessions))
    found = []
    for name, kind in zip(sessions, kinds, strict=False):
        if kind != "review" or not (folder / name).is_file():
            continue
        request = from_recipe(tags.read_recipe(folder / name), folder)
        if request.practised != summary:
            found.append(dataclasses.replace(request, practised=summary))
    return found
