"""``--engine auto``: the best-sounding engine installed here, by measurement, and why.

Each engine's default English voice was scored by ``scripts/voice-check --all``
(DNSMOS overall over the calibration lines, and CPU-seconds per second of audio
on a 2-core machine). ``auto`` takes the best score among the engines ready
here; engines within :data:`TIE` of it count as equal (DNSMOS is not finer than
that), and among those the fastest is chosen. pyttsx3 (espeak-ng) is always
there as the last resort. A neural engine that is installed but cannot load
(a broken onnxruntime, a damaged model) is passed over with one warning.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import NamedTuple

from audioguide.errors import AudioguideError, RequestError
from audioguide.tts import (
    AUTO,
    ENGINES,
    get_engine,
    hibari_engine,
    kokoro_engine,
    piper_engine,
    resolve_voice,
)

log = logging.getLogger(__name__)


class Measured(NamedTuple):
    """What scripts/voice-check measured of a voice (at 120 words per minute)."""

    voice: str
    dnsmos: float
    wer: float
    cpu_per_s: float


#: Each engine's default English voice, measured (scripts/voice-check --all, 4 Dec 2026;
#: the README's voice table has every voice).
MEASURED: dict[str, Measured] = {
    "hibari": Measured("heart", 3.38, 0.005, 0.009),
    "kokoro": Measured("af_heart", 3.37, 0.024, 0.749),
    "piper": Measured("en_US-joe-medium", 3.38, 0.056, 0.12),
    "pyttsx3": Measured("gmw/en-us", 2.94, 0.241, 0.002),
}
#: Scores this close count as equal; the faster engine is chosen among them.
TIE = 0.1


def measured(engine: str, voice: str) -> str:
    """The measured figures of ``voice``, in words, or "" when it was not measured."""
    found = MEASURED.get(engine)
    if found is None or found.voice != voice:
        return ""
    return (f"DNSMOS {found.dnsmos:.2f}, word errors {100 * found.wer:.1f} %, "
            f"{found.cpu_per_s:.3f} CPU-s per s")


#: The neural engines: module, how its ready voice is said, and what is missing without one.
NEURAL = {
    "hibari": (hibari_engine, "the hibari voice {}", "hibari",
               "hibari's bundled voice is missing (reinstall hibari-tts)"),
    "kokoro": (kokoro_engine, "the Kokoro model and the English voice {}", "Kokoro",
               "Kokoro has no English voice ('audioguide voices --download kokoro-js')"),
    "piper": (piper_engine, "the English Piper voice {}", "Piper",
              "Piper has no English voice"),
}


def _ready() -> tuple[dict[str, str], list[str]]:
    """Engines ready to speak English here, each with its voice in words, and why each
    other engine is not."""
    ready: dict[str, str] = {}
    missing: list[str] = []
    for name, (module, voice_said, title, without) in NEURAL.items():
        if not module.available():
            missing.append(f"{title} is not installed")
        elif (found := module.english_voice_installed()) is not None:
            ready[name] = voice_said.format(found)
        else:
            missing.append(without)
    return ready, missing


def ranked(engines: list[str]) -> list[str]:
    """``engines`` best first: by measured score, the faster first among equals."""
    order = sorted(engines, key=lambda e: -MEASURED[e].dnsmos)
    out: list[str] = []
    while order:
        best = MEASURED[order[0]].dnsmos
        equal = [e for e in order if best - MEASURED[e].dnsmos <= TIE + 1e-9]
        fastest = min(equal, key=lambda e: MEASURED[e].cpu_per_s)
        out.append(fastest)
        order.remove(fastest)
    return out


def choose_engine(voice: str | None = None) -> tuple[str, str]:
    """The engine ``--engine auto`` stands for on this machine, and why, in words.

    ``$AUDIOGUIDE_ENGINE``, when set, names it. With a ``voice`` asked for: the best
    ranked engine that has it. Without: the best ranked engine ready here that loads.
    """
    forced = os.environ.get("AUDIOGUIDE_ENGINE")
    if forced and forced != AUTO:
        if forced not in ENGINES:
            raise AudioguideError(f"AUDIOGUIDE_ENGINE is {forced!r}, which is not an engine; "
                                  f"set it to one of {', '.join([AUTO, *ENGINES])}, or unset it.")
        return forced, "AUDIOGUIDE_ENGINE names it"
    if voice is not None:
        return _with_voice(voice)
    ready, missing = _ready()
    for name in ranked(list(ready)):
        problem = _load_problem(name)
        if problem is None:
            why = f"{ready[name]} sounds best of what is installed ({_score(name)})"
            return name, why + (f"; {'; '.join(missing)}" if missing else "")
        missing.append(f"{name} is installed but cannot load")
    return "pyttsx3", f"no natural voice is ready ({'; '.join(missing)})"


def _score(name: str) -> str:
    found = MEASURED[name]
    return f"DNSMOS {found.dnsmos:.2f}, {found.cpu_per_s:.3f} CPU-s per s"


def _with_voice(voice: str) -> tuple[str, str]:
    neural = [e for e in ranked(list(NEURAL)) if NEURAL[e][0].available()]
    for name in neural:
        try:
            get_engine(name).resolve(voice)  # type: ignore[attr-defined]
        except RequestError:  # not this engine's voice; a failed download is said as such
            continue
        return name, f"it has the voice {voice!r}"
    try:
        resolve_voice(get_engine("pyttsx3"), voice)
    except AudioguideError:
        raise RequestError("--voice", f"no installed engine has the voice {voice!r}, "
                           "neither hibari, Kokoro, Piper nor pyttsx3 (espeak-ng). 'audioguide "
                           "voices --engine hibari' (or kokoro, piper, pyttsx3) lists each "
                           "engine's voices.") from None
    return "pyttsx3", f"no neural engine has the voice {voice!r}"


@cache
def _load_problem(name: str) -> str | None:
    """Why the neural engine ``name`` cannot load here (warned of once), or None."""
    if name != "hibari":
        return None  # Kokoro and Piper load their models only when speaking
    try:
        import onnxruntime as ort

        path = hibari_engine.voice_file(hibari_engine.DEFAULT)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # a broken runtime or model: any error onnxruntime raises
        log.warning("hibari is installed but cannot load its voice (%s); speaking with the "
                    "next engine instead. Reinstall it: pip install --force-reinstall "
                    "hibari-tts", " ".join(str(exc).split())[:200])
        return str(exc)
    return None


def resolve_engine(name: str, voice: str | None = None) -> str:
    """``name``, or for ``auto`` the engine it stands for here (logged, with the reason)."""
    if name != AUTO:
        return name
    chosen, why = choose_engine(voice)
    log.info("engine: %s, chosen by --engine auto because %s", chosen, why)
    return chosen
