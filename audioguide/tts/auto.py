"""``--engine auto``: the most natural engine installed here, and why it was chosen."""

from __future__ import annotations

import logging
import os

from audioguide.errors import AudioguideError, RequestError
from audioguide.tts import AUTO, ENGINES, get_engine, kokoro_engine, piper_engine, resolve_voice

log = logging.getLogger(__name__)


def choose_engine(voice: str | None = None) -> tuple[str, str]:
    """The engine ``--engine auto`` stands for on this machine, and why, in words.

    ``$AUDIOGUIDE_ENGINE``, when set, names it. Otherwise: with a ``voice`` asked for, the
    first of Kokoro, Piper and pyttsx3 that has it; without, Kokoro if its model and an
    English voice are installed, else Piper if an English Piper voice is, else pyttsx3
    (espeak-ng), which every installation has.
    """
    forced = os.environ.get("AUDIOGUIDE_ENGINE")
    if forced and forced != AUTO:
        if forced not in ENGINES:
            raise AudioguideError(f"AUDIOGUIDE_ENGINE is {forced!r}, which is not an engine; "
                                  f"set it to one of {', '.join([AUTO, *ENGINES])}, or unset it.")
        return forced, "AUDIOGUIDE_ENGINE names it"
    if voice is not None:
        for name, module in (("kokoro", kokoro_engine), ("piper", piper_engine)):
            if module.available():
                try:
                    get_engine(name).resolve(voice)  # type: ignore[attr-defined]
                except AudioguideError:
                    continue
                return name, f"it has the voice {voice!r}"
        try:
            resolve_voice(get_engine("pyttsx3"), voice)
        except AudioguideError:
            raise RequestError("--voice", f"no installed engine has the voice {voice!r}, "
                               "neither Kokoro, Piper nor pyttsx3 (espeak-ng). 'audioguide "
                               "voices --engine kokoro' (or piper, or pyttsx3) lists each "
                               "engine's voices.") from None
        return "pyttsx3", f"neither Kokoro nor Piper has the voice {voice!r}"
    missing = []
    if not kokoro_engine.available():
        missing.append("Kokoro is not installed")
    elif (found := kokoro_engine.english_voice_installed()) is not None:
        return "kokoro", f"the Kokoro model and the English voice {found} are installed"
    else:
        missing.append("Kokoro has no English voice ('audioguide voices --download kokoro')")
    if not piper_engine.available():
        missing.append("Piper is not installed")
    elif (found := piper_engine.english_voice_installed()) is not None:
        return "piper", f"the English Piper voice {found} is installed ({'; '.join(missing)})"
    else:
        missing.append("Piper has no English voice")
    return "pyttsx3", f"no natural voice is installed ({'; '.join(missing)})"


def resolve_engine(name: str, voice: str | None = None) -> str:
    """``name``, or for ``auto`` the engine it stands for here (logged, with the reason)."""
    if name != AUTO:
        return name
    chosen, why = choose_engine(voice)
    log.info("engine: %s, chosen by --engine auto because %s", chosen, why)
    return chosen


