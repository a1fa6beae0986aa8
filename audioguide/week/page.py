"""``index.html``: one self-contained, phone-friendly page for the week.

Inline styles and a few lines of script, no external assets: it works opened
from the folder (file://) and served over HTTP alike. Each session has its
player, chapters and transcript; a tap on a chapter or on a line's time plays
from there. Text keeps the WCAG AA contrast (4.5:1) in light and dark mode.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from audioguide.week import care_text
from audioguide.week.feed import COVER, Episode, clock

STYLE = """
:root { color-scheme: light dark; --accent: #1d766b; --muted: #595959; }
@media (prefers-color-scheme: dark) { :root { --accent: #4fc3b4; --muted: #b3b3b3; } }
body { font: 17px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: Canvas; color: CanvasText; }
header, main, footer.care { max-width: 40rem; margin: 0 auto; padding: 0 1rem; }
header { display: flex; gap: 1rem; align-items: center; padding-top: 1rem; }
header img { width: 72px; height: 72px; border-radius: 12px; }
h1 { font-size: 1.3rem; margin: 0; }
main { padding-bottom: 3rem; }
footer.care { padding-bottom: 3rem; font-size: 0.95rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; color: var(--accent); }
article { border: 1px solid color-mix(in srgb, CanvasText 15%, transparent);
          border-radius: 12px; padding: .8rem 1rem; margin: .6rem 0; }
h3 { font-size: 1rem; margin: 0 0 .3rem; }
.length { color: var(--muted); font-size: .9rem; }
audio { width: 100%; margin: .5rem 0; }
ol.chapters { padding-left: 1.2rem; margin: .3rem 0; }
button[data-at] { font: inherit; background: none; border: 0; padding: .2rem 0;
                  color: var(--accent); text-align: left; cursor: pointer; }
details p { margin: .3rem 0; }
details button[data-at] { font-size: .85rem; margin-right: .4rem; padding: 0;
                          font-variant-numeric: tabular-nums; }
"""

SCRIPT = """
document.querySelectorAll('button[data-at]').forEach(function (b) {
  b.addEventListener('click', function () {
    var audio = b.closest('article').querySelector('audio');
    audio.currentTime = parseFloat(b.dataset.at);
    audio.play();
  });
});
"""


def render(title: str, episodes: list[Episode], help_line: str | None = None) -> str:
    """The page as HTML text."""
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f'<header><img src="{quote(COVER)}" alt=""><div><h1>{escape(title)}</h1>'
        f'<div class="length">{len(episodes)} sessions · '
        f"{clock(sum(e.duration_s for e in episodes))}</div></div></header>", "<main>",
    ]
    day = None
    for episode in episodes:
        if episode.date != day:
            day = episode.date
            parts.append(f"<h2>{episode.date:%A %d %B}</h2>")
        parts.append(_article(episode))
    parts += ["</main>", f'<footer class="care"><p>{escape(care_text(help_line))}</p></footer>',
              f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _article(episode: Episode) -> str:
    chapters = "".join(
        f'<li><button type="button" data-at="{start:.3f}">{clock(start)} {escape(name)}'
        "</button></li>" for start, _, name in episode.chapters)
    transcript = "".join(
        f'<p><button type="button" data-at="{start:.3f}" aria-label="Play from {clock(start)}">'
        f"{clock(start)}</button>{escape(text)}</p>" for start, _, text in episode.transcript)
    # The length is in the title ("— 3 min") and in the player; not a third time.
    return (
        f'<article id="s{episode.track}"><h3>{escape(episode.title)}</h3>'
        f'<audio controls preload="metadata" src="{quote(episode.path.name)}"></audio>'
        f'<ol class="chapters">{chapters}</ol>'
        f"<details><summary>Transcript</summary>{transcript}</details></article>"
    )


def page_files(folder: Path, title: str, files: list[Path],
               help_line: str | None = None) -> dict[Path, bytes]:
    """``index.html`` for the finished sessions in ``files``."""
    return {folder / "index.html":
            render(title, [Episode.read(f) for f in files], help_line).encode()}
