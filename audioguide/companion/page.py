"""What the week's page carries for the practice log: its script and the feeling words
it offers (the check-in's emotion wheel, so the page and the sessions share a vocabulary)."""

from __future__ import annotations

from importlib.resources import files

#: The page's log script: it shows the log's forms only where ``/api/state`` answers.
LOG_SCRIPT = files("audioguide.companion").joinpath("log.js").read_text(encoding="utf-8")


def vocabulary() -> list[str]:
    """Feeling words the page suggests, core words first, each once."""
    from audioguide.script.vocabulary import EMOTION_WHEEL

    words = [core for core, _ in EMOTION_WHEEL]
    words += [w for _, finer in EMOTION_WHEEL for w in finer if w not in words]
    return words
