"""What the week's page carries for its key's holder: the scripts of the log and of the
form that makes a session, and the feeling words the log offers (the check-in's emotion
wheel, so the page and the sessions share a vocabulary)."""

from __future__ import annotations

from importlib.resources import files

#: The page's scripts for the key's holder: the form that makes a session, then the log's
#: forms (shown only where ``api/state`` says the log is open, which starts the first).
LOG_SCRIPT = "\n".join(files("audioguide.companion").joinpath(name).read_text(encoding="utf-8")
                       for name in ("make.js", "log.js"))


def vocabulary() -> list[str]:
    """Feeling words the page suggests, core words first, each once."""
    from audioguide.script.vocabulary import EMOTION_WHEEL

    words = [core for core, _ in EMOTION_WHEEL]
    words += [w for _, finer in EMOTION_WHEEL for w in finer if w not in words]
    return words
