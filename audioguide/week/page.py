"""``index.html``: one self-contained, phone-friendly page for the week.

Inline styles and a few lines of script, no external assets: it works opened
from the folder (file://) and served over HTTP alike. Each session has its
player, length, chapters (tap to jump) and transcript.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from audioguide.week import CARE_NOTE
from audioguide.week.feed import COVER, Episode, clock

STYLE = """
:root { color-scheme: light dark; --accent: #2a9d8f; }
body { font: 17px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: Canvas; color: CanvasText; }
header { display: flex; gap: 1rem; align-items: center; padding: 1rem; }
header img { width: 72px; height: 72px; border-radius: 12px; }
h1 { font-size: 1.3rem; margin: 0; }
main { max-width: 40rem; margin: 0 auto; padding: 0 1rem 3rem; }
footer.care { max-width: 40rem; margin: 0 auto; padding: 0 1rem 3rem; font-size: 0.95rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; color: var(--accent); }
article { border: 1px solid color-mix(in srgb, CanvasText 15%, transparent);
          border-radius: 12px; padding: .8rem 1rem; margin: .6rem 0; }
h3 { font-size: 1rem; margin: 0 0 .3rem; }
.length { opacity: .75; font-size: .9rem; }
audio { width: 100%; margin: .5rem 0; }
ol.chapters { padding-left: 1.2rem; margin: .3rem 0; }
ol.chapters button { font: inherit; background: none; border: 0; padding: .2rem 0;
                     color: var(--accent); text-align: left; cursor: pointer; }
details p { margin: .3rem 0; }
details time { opacity: .6; font-size: .85rem; margin-right: .4rem; }
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


def render(title: str, episodes: list[Episode]) -> str:
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
    parts += ["</main>", f'<footer class="care"><p>{escape(CARE_NOTE)}</p></footer>',
              f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _article(episode: Episode) -> str:
    chapters = "".join(
        f'<li><button type="button" data-at="{start:.3f}">{clock(start)} {escape(name)}'
        "</button></li>" for start, _, name in episode.chapters)
    transcript = "".join(f"<p><time>{clock(start)}</time>{escape(text)}</p>"
                         for start, _, text in episode.transcript)
    return (
        f'<article id="s{episode.track}"><h3>{escape(episode.title)}</h3>'
        f'<div class="length" data-seconds="{episode.duration_s:.3f}">'
        f"{clock(episode.duration_s)}</div>"
        f'<audio controls preload="metadata" src="{quote(episode.path.name)}"></audio>'
        f'<ol class="chapters">{chapters}</ol>'
        f"<details><summary>Transcript</summary>{transcript}</details></article>"
    )


def write_page(folder: Path, title: str, files: list[Path]) -> None:
    """Write ``index.html`` for the finished sessions in ``files``."""
    from audioguide.publish import atomic_write

    atomic_write(folder / "index.html", render(title, [Episode.read(f) for f in files]).encode())
