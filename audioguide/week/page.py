"""``index.html``: one self-contained page for the week, made for a phone.

Today's day comes first and open, the other days folded; each session has a
one-line description, one player (``preload="none"``: opening the page costs
kilobytes, not megabytes), and its chapters and transcript folded. Only one
session plays at a time; where each was left is kept in the browser and
resumed; the lock screen shows the session (the Media Session API) and skips
by chapter. Styles and script are inline, no external assets: it works opened
from the folder (file://) and served over HTTP alike. Served by ``audioguide
serve --allow-writes`` to the holder of its key, the page also keeps the
practice log (see :mod:`audioguide.companion`). Text keeps the WCAG AA
contrast (4.5:1) in light and dark mode.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from importlib.resources import files
from itertools import groupby
from pathlib import Path
from urllib.parse import quote

from audioguide.week import care_text
from audioguide.week.feed import COVER, ICON, Episode, clock


def _asset(name: str) -> str:
    return files("audioguide.week").joinpath(name).read_text(encoding="utf-8")


def _inline_script(text: str) -> str:
    """Script text that cannot end its own element early."""
    return text.replace("</", "<\\/")


def render(title: str, episodes: list[Episode], help_line: str | None = None,
           start: dt.date | None = None, changes: tuple[str, ...] = (),
           made: list[Episode] | None = None) -> str:
    """The page as HTML text; ``start`` is the week's first day (its log's key);
    ``changes``: why the week differs from the programme as written; ``made``: sessions
    made for the listener from the page."""
    from audioguide.companion.page import LOG_SCRIPT, vocabulary

    week = (start or (episodes[0].date if episodes else dt.date.today())).isoformat()
    made = made or []
    total = sum(e.duration_s for e in episodes)
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title>", f"<style>{_asset('page.css')}</style>", "</head>",
        f'<body data-week="{escape(week)}" data-title="{escape(title)}" '
        f'data-cover="{quote(COVER)}">',
        f'<header><img src="{quote(ICON)}" alt=""><div><h1>{escape(title)}</h1>'
        f'<div class="length">{len(episodes)} sessions · {clock(total)}</div></div></header>',
        "<main>",
    ]
    if made:
        parts.append('<section class="made"><h2>Made for you</h2>'
                     + "".join(_article(e) for e in made) + "</section>")
    if changes:
        parts.append('<details class="why" open><summary>Why this week looks as it does'
                     "</summary><ul>" + "".join(f"<li>{escape(c)}</li>" for c in changes)
                     + "</ul></details>")
    for index, (day, group) in enumerate(groupby(episodes, key=lambda e: e.date)):
        sessions = list(group)
        minutes = round(sum(e.duration_s for e in sessions) / 60)
        count = f"{len(sessions)} session{'s' * (len(sessions) != 1)} · {minutes} min"
        parts.append(f'<details class="day" data-date="{day.isoformat()}"'
                     f'{" open" if index == 0 else ""}><summary>'
                     f"<h2>{day:%A} {day.day} {day:%B}</h2>"
                     f'<span class="muted">{count}</span></summary>')
        parts += [_article(e) for e in sessions]
        parts.append("</details>")
    parts += [
        "</main>", f'<footer class="care"><p>{escape(care_text(help_line))}</p></footer>',
        '<datalist id="feelings">'
        + "".join(f'<option value="{escape(w)}">' for w in vocabulary()) + "</datalist>",
        f"<script>{_inline_script(_asset('page.js'))}</script>",
        f"<script>{_inline_script(LOG_SCRIPT)}</script>", "</body>", "</html>",
    ]
    return "\n".join(parts) + "\n"


def about(description: str) -> str:
    """The description's first sentence: what the session does, in one line."""
    first, dot, _ = description.partition(". ")
    return first + "." if dot else description


def _article(episode: Episode) -> str:
    chapters = "".join(
        f'<li><button type="button" data-at="{start:.3f}">{clock(start)} {escape(name)}'
        "</button></li>" for start, _, name in episode.chapters)
    transcript = "".join(
        f'<p><button type="button" data-at="{start:.3f}" aria-label="Play from {clock(start)}">'
        f"{clock(start)}</button>{escape(text)}</p>" for start, _, text in episode.transcript)
    # The length is in the title ("— 3 min") and in the player; not a third time.
    return (
        f'<article id="{_anchor(episode)}" data-session="{escape(episode.path.name)}" '
        f'data-title="{escape(episode.title)}" data-date="{episode.date.isoformat()}">'
        f"<h3>{escape(episode.title)}</h3>"
        f'<p class="about">{escape(about(episode.description))}</p>'
        f'<audio controls preload="none" src="{quote(episode.path.name)}"></audio>'
        '<p class="resume" hidden></p><p class="done" hidden>Heard to the end</p>'
        f'<details class="chapters"><summary>Chapters</summary><ol class="chapters">{chapters}'
        "</ol></details>"
        f'<details class="transcript"><summary>Transcript</summary>{transcript}</details>'
        "</article>"
    )


def _anchor(episode: Episode) -> str:
    """The card's id: ``s3`` for the week's third session, the file's name for one made
    from the page (it has no place in the week's order)."""
    return f"s{episode.track}" if episode.track else escape(episode.path.stem)


def page_files(folder: Path, title: str, files: list[Path], help_line: str | None = None,
               start: dt.date | None = None, changes: tuple[str, ...] = (),
               made: list[Path] | None = None) -> dict[Path, bytes]:
    """``index.html`` for the finished sessions in ``files`` (and those ``made`` from the
    page)."""
    episodes = [Episode.read(f) for f in files]
    extra = [Episode.read(f) for f in made or []]
    return {folder / "index.html":
            render(title, episodes, help_line, start, changes, extra).encode()}
