"""Speaking rate, measured: the engine setting that gives a voice its asked-for words per minute.

An engine's own "rate" is not what a listener hears: espeak-ng at its rate 150
speaks about 180 words per minute in guided-practice lines, and a Piper voice
at its natural length scale about 220. So each voice is measured once: the
calibration lines below are spoken at a few engine settings, the words are
counted over the clips' length (as the session's own rate is measured: words
over speech time), and a line through the two nearest measurements gives the setting
for any rate (refined until it is within 2 %). The measurements are kept beside
the speech cache.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from audioguide.audio.clips import decode
from audioguide.tts import Engine, voice_key

log = logging.getLogger(__name__)

SAMPLE_RATE = 44_100

#: Lines like a session's own: several sentences, commas and colons (where a voice pauses
#: inside a clip), questions, short and long; about 150 words.
LINES = (
    "Let your attention rest on the breath, just as it is. There is nothing to change.",
    "Notice where you feel the breath most clearly: at the nostrils, in the chest, or in "
    "the belly.",
    "If your mind has wandered, that is what minds do. Notice where it went, and come back.",
    "Where does it live in the body?",
    "If a feeling is here, you might name it softly: noticing tension, or noticing calm.",
    "Feel the weight of your hands, the contact of your feet with the floor, and the air on "
    "your skin.",
    "When you are ready, bring to mind a recent moment when you felt a little tense. Choose "
    "something small.",
    "Take your time. If nothing comes, that is fine too.",
    "Let the out-breath be a little longer than the in-breath, and let the shoulders soften.",
    "You can stop at any time.",
)
WORDS = sum(len(line.split()) for line in LINES)

#: The engine setting measured first.
FIRST_SETTING = 150
#: Settings an engine is never asked for, whatever the line says.
SETTING_RANGE = (40, 500)

_measured: dict[str, list[tuple[int, float]]] = {}


def _store(folder: Path | None) -> Path | None:
    return folder / "calibration.json" if folder is not None else None


def _load(path: Path | None) -> dict[str, list[list[float]]]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path | None, key: str, points: list[tuple[int, float]]) -> None:
    if path is None:
        return
    data = _load(path)
    data[key] = [list(p) for p in points]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        Path(tmp).replace(path)
    except OSError as exc:
        log.warning("cannot keep the voice calibration in %s (%s)", path, exc)


def measure(engine: Engine, voice: str, setting: int) -> float:
    """Words per minute of ``voice`` at the engine ``setting``, over the calibration lines."""
    clips = engine.synthesize(list(LINES), voice, setting)
    seconds = sum(decode(clip, SAMPLE_RATE).size for clip in clips) / SAMPLE_RATE
    return WORDS / seconds * 60


def setting_for(engine: Engine, voice: str, wpm: float, folder: Path | None,
                version: str) -> int:
    """The engine setting at which ``voice`` speaks ``wpm`` words per minute (measured).

    Settings are measured until one speaks within :data:`TOLERANCE` of ``wpm`` (a secant
    search: each new setting lies on the line through the two nearest measurements); every
    measurement is kept, so a voice is measured once for each rate it is asked for.
    """
    key = f"{engine.name}|{version}|{voice_key(engine, voice)}"
    path = _store(folder)
    points = _measured.get(key) or [(int(s), float(w)) for s, w in _load(path).get(key, [])]
    changed = False
    for _ in range(MAX_MEASUREMENTS):
        if not points:
            setting = FIRST_SETTING
        else:
            best = min(points, key=lambda p: abs(p[1] - wpm))
            if abs(best[1] - wpm) <= TOLERANCE * wpm:
                break
            setting = _predict(points, wpm)
            if setting in {s for s, _ in points}:
                break
        points.append((setting, measure(engine, voice, setting)))
        changed = True
        log.info("voice %s at setting %d speaks %.0f words per minute", voice, *points[-1])
    _measured[key] = points
    if changed:
        _save(path, key, points)
    best = min(points, key=lambda p: abs(p[1] - wpm))
    return best[0] if abs(best[1] - wpm) <= TOLERANCE * wpm else _predict(points, wpm)


#: How close a measured rate must come to the asked-for one.
TOLERANCE = 0.02
MAX_MEASUREMENTS = 5


def _predict(points: list[tuple[int, float]], wpm: float) -> int:
    """The setting on the line through the two measurements nearest ``wpm`` (through the
    origin when there is only one: words per minute grow with the setting)."""
    near = sorted(points, key=lambda p: abs(p[1] - wpm))[:2]
    if len(near) < 2 or abs(near[1][1] - near[0][1]) < 1e-6:
        s0, w0 = near[0]
        return _clamp(s0 * wpm / w0)
    (s0, w0), (s1, w1) = near
    return _clamp(s0 + (wpm - w0) * (s1 - s0) / (w1 - w0))


def _clamp(setting: float) -> int:
    return round(min(max(setting, SETTING_RANGE[0]), SETTING_RANGE[1]))
