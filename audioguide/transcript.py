"""WebVTT sidecar: one cue per spoken line, timed from the fitted timeline."""

from __future__ import annotations

from audioguide.script.markup import Speech
from audioguide.timing import Timeline


def stamp(seconds: float) -> str:
    """A time as WebVTT (and Podlove Simple Chapters) write it: ``HH:MM:SS.mmm``."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def webvtt(timeline: Timeline, title: str) -> str:
    """The transcript as WebVTT text: the header, a blank line, a note with the title
    (which may not hold "-->"), then the cues, each block ended by a blank line."""
    note = " ".join(title.replace("-->", "->").split())
    lines = ["WEBVTT", "", f"NOTE {note}", ""]
    number = 0
    for placed in timeline.events:
        if not isinstance(placed.cue, Speech):
            continue
        number += 1
        start = timeline.seconds(placed.start)
        end = timeline.seconds(placed.start + placed.length)
        # Cue text is markup in WebVTT: a typed "<" or "&" is written as its escape.
        text = escape_cue(placed.cue.text.replace("-->", "->"))
        lines += [str(number), f"{stamp(start)} --> {stamp(end)}", text, ""]
    return "\n".join(lines)


def escape_cue(text: str) -> str:
    """Text as a WebVTT cue holds it: ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_cue(text: str) -> str:
    """A cue's text as it was spoken (:func:`escape_cue` undone)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
