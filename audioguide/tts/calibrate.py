"""Speaking rate, measured: the engine setting that gives a voice its asked-for words per minute.

An engine's own "rate" is not what a listener hears: espeak-ng at its rate 150
speaks about 180 words per minute in guided-practice lines, and a Piper voice
at its natural length scale about 220. So each voice is measured once: the
calibration lines below are spoken at a few engine settings, the words are
counted over the clips' length (as the session's own rate is measured: words
over speech time), and a line through the two nearest measurements gives the setting
for any rate (refined until it is within 2 %). An engine whose setting scales every
duration it predicts (Kokoro's speed) is not read again for a rate within a quarter
of one already read: its words per minute are near enough proportional to the
setting there (within 2.5 %), and a reading of Kokoro takes minutes. The
measurements are kept beside
the speech cache and trusted no more than it: a file that is not a regular file,
too large, or holds anything but plausible measurements is warned of once, the
voices concerned are measured again, and the file is written anew atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import reprlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from audioguide.audio.clips import spoken_seconds
from audioguide.tts import Engine, voice_key
from audioguide.tts.safe_files import Unusable, open_regular, read_most

log = logging.getLogger(__name__)


#: Lines of the shipped sessions (a sample across kinds: short questions, lists, long
#: sentences with commas and colons, where a voice pauses inside a clip), so that a voice
#: measured on them speaks a session at the asked-for rate.
LINES = (
    "Feel the weight of your body, held by whatever is beneath you.",
    "Calm. Perhaps settled, content, or peaceful.",
    "Fear. Perhaps anxious, worried, or unsafe.",
    "Distance. Perhaps detached, blank, or far away.",
    "If no word fits, or you feel nothing much, that is an answer too. Numb and flat are "
    "feelings worth noticing.",
    "If you cannot find a place, that is fine. A faint sense of somewhere is enough.",
    "If it feels right, let your eyes close, or rest them softly on one spot.",
    "Let your body settle. Feel its weight, and the places where it is supported.",
    "Choose one of these places, and let your attention rest there.",
    "Notice the small pause after each out-breath. You do not need to do anything with it.",
    "When you notice it has gone, you might name where it went, with a quiet label: thinking, "
    "or planning, or remembering. Then come back to the breath.",
    "The label is short and kind, just a word or two, like a hand on a shoulder. Then the "
    "breath again.",
    "Wherever it lands, you are only noticing. There is nothing to fix.",
    "Now your belly, rising and falling with the breath.",
    "Now your hands. Are they warm or cool, open or closed?",
    "Now hold the whole body in your attention for a moment.",
    "Now widen your attention to hold the whole body at once, breathing.",
    "Today we will practise it with one small feeling.",
    "If nothing comes, that is fine too. You can simply imagine what it might be like to feel "
    "calm.",
    "Notice its size, and whether it has edges.",
    "Now imagine telling someone you trust, in an I statement, one that speaks for you "
    "without blame.",
    "Feel your feet on the floor, and the weight of your body, held by what is under you.",
    "Keep your eyes open for this practice. Let your gaze move easily around the room.",
    "Let your head turn slowly, left and right, and let your eyes take in where you are.",
    "Three. Listen for three sounds. Near or far, loud or quiet, they all count.",
    "Press both feet into the floor for a few seconds. Then let the pressure go.",
    "Four. Find four textures, smooth, rough, soft or hard, under your hands or against your skin.",
    "Notice your breath, and let the out-breath be a little longer.",
    "This is your time. There is nothing to achieve, and nothing to get right.",
    "Write what happened. Just the facts, as if you were telling someone who was not there: "
    "where you were, who was there, what was said and done.",
    "If part of you feels numb or far away about it, write that down too. Numb and flat are "
    "feelings worth naming.",
    "You can put your pen down now, and notice how you are.",
    "Thank you for giving yourself this time.",
    "Walk at an easy pace. Whenever something needs your full attention, like a busy street, "
    "let the practice wait. Your safety comes first.",
    "Notice that you are moving. The body knows how to do this.",
    "Notice your breath as you walk. There is no need to control it.",
    "Open your attention to sounds: near sounds, and far sounds.",
    "This practice is coming to an end. You can keep walking.",
    "It can take time and practice. If it does not come naturally at first, that is normal.",
    "Now choose one feeling to share. It might be worry, tiredness, hope, or something else "
    "entirely.",
    "Perhaps: I've been feeling worried this week, and I wanted to tell you.",
    "Perhaps: Can we talk for ten minutes? If it gets to be too much, I'll say pause, and "
    "we'll stop there.",
    "Imagine the person you chose listening. Perhaps they nod, and say: Thank you for telling me.",
)
WORDS = sum(len(line.split()) for line in LINES)
#: Changes when the lines do, so a voice is measured again.
TEXT_KEY = hashlib.sha256("\n".join(LINES).encode()).hexdigest()[:12]

#: The engine setting measured first, unless the engine names its own (``first_setting``),
#: or two typical measurements of its default voice to predict it from (``typical``).
FIRST_SETTING = 150
#: Settings an engine is never asked for, whatever the line says (unless the engine names
#: its own ``setting_range``).
SETTING_RANGE = (40, 500)

_measured: dict[str, list[tuple[int, float]]] = {}


def _store(folder: Path | None) -> Path | None:
    return folder / "calibration.json" if folder is not None else None


#: Measurements are a few numbers per voice: a larger calibration file is not one.
STORE_MOST = 1 << 20
#: Words per minute a measurement can give: no voice speaks its lines slower or faster.
WPM_RANGE = (20.0, 1200.0)
#: Settings a measurement of any engine can have been made at.
ANY_SETTING = (1, 10_000)

Points = list[tuple[int, float]]


def _load(path: Path | None) -> tuple[dict[str, Points], str | None]:
    """The measurements kept at ``path`` that are valid, and what was wrong with the rest
    (None when nothing was): the file is a cache, so nothing in it is trusted."""
    if path is None:
        return {}, None
    try:
        with open_regular(path, STORE_MOST) as fh:
            text = read_most(fh, STORE_MOST).decode()
        data = json.loads(text, parse_constant=_no_constant)
    except FileNotFoundError:
        return {}, None
    except (OSError, Unusable, ValueError) as exc:
        return {}, f"it is {exc}" if isinstance(exc, Unusable) else f"it cannot be read: {exc}"
    except RecursionError:
        return {}, "it nests lists or tables too deeply to be measurements"
    if not isinstance(data, dict):
        return {}, f"it holds {type(data).__name__}, not measurements by voice"
    valid: dict[str, Points] = {}
    problems = []
    for key, value in data.items():
        points = _points(value, ANY_SETTING)
        if isinstance(points, str):
            problems.append(f"{reprlib.repr(key)}: {points}")
        else:
            valid[key] = points
    if len(problems) > 2:
        problems[2:] = [f"and {len(problems) - 2} more"]
    return valid, "; ".join(problems) or None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a measurement")


def _points(value: object, limits: tuple[int, int]) -> Points | str:
    """``value`` as measurements ([setting, words per minute] pairs, settings within
    ``limits``), or what is wrong with it."""
    if not isinstance(value, list) or not value:
        return "not a list of [setting, words per minute] pairs"
    points = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in pair)):
            return f"{reprlib.repr(pair)} is not a [setting, words per minute] pair of numbers"
        setting, wpm = (float(x) if abs(x) < 1e300 else math.inf for x in pair)
        if not (setting.is_integer() and limits[0] <= setting <= limits[1]):
            return (f"setting {reprlib.repr(pair[0])} is not a whole number from {limits[0]} "
                    f"to {limits[1]}")
        if not (math.isfinite(wpm) and WPM_RANGE[0] <= wpm <= WPM_RANGE[1]):
            return (f"{reprlib.repr(pair[1])} words per minute is not a rate a voice speaks at "
                    f"({WPM_RANGE[0]:g} to {WPM_RANGE[1]:g})")
        points.append((int(setting), wpm))
    if len({s for s, _ in points}) < len(points):
        return "a setting is measured twice"
    return points


def _save(path: Path | None, key: str, points: Points) -> None:
    """Keep ``points`` for ``key`` with the other valid measurements at ``path``, written to
    a temporary file and renamed over it (over a link or FIFO itself, never into it)."""
    if path is None:
        return
    data = {k: [list(p) for p in v] for k, v in _load(path)[0].items()}
    data[key] = [list(p) for p in points]
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        Path(tmp).replace(path)
    except OSError as exc:
        log.warning("cannot keep the voice calibration in %s (%s)", path, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def measure(engine: Engine, voice: str, setting: int,
            progress: Callable[[int], None] | None = None) -> float:
    """Words per minute of ``voice`` at the engine ``setting``, over the calibration lines
    (``progress`` is told how many are spoken)."""
    clips = engine.synthesize(list(LINES), voice, setting, progress)
    return WORDS / sum(spoken_seconds(clip) for clip in clips) * 60


def setting_for(engine: Engine, voice: str, wpm: float, folder: Path | None,
                version: str, progress: Callable[[int, int], None] | None = None) -> int:
    """The engine setting at which ``voice`` speaks ``wpm`` words per minute (measured).

    Settings are measured until one speaks within :data:`TOLERANCE` of ``wpm`` (or the
    engine's own ``rate_tolerance``, where its rate moves in steps) (a secant
    search: each new setting lies on the line through the two nearest measurements), or
    until the rate is placed by proportion (an engine whose setting scales its
    durations, near a reading: :func:`_placed`); every
    measurement is kept, so a voice is measured once for each rate it is asked for.
    ``progress`` is told how many of the calibration lines a reading has spoken, of all.
    """
    key = f"{engine.name}|{version}|{voice_key(engine, voice)}|{TEXT_KEY}"
    path = _store(folder)
    tolerance = float(getattr(engine, "rate_tolerance", TOLERANCE))
    points, changed = (_measured[key], False) if key in _measured else _kept(
        path, key, _range(engine))
    with contextlib.ExitStack() as held:
        if _off(points, wpm, tolerance) and not _placed(engine, points, wpm):
            # Measured by one process at a time: the others wait, then read its readings
            # (a week's workers all start with the same voice).
            held.enter_context(_one_at_a_time(path))
            points, changed = _kept(path, key, _range(engine), warn=False)
        points, measured = _measure_until_close(engine, voice, wpm, points, tolerance, progress)
        _measured[key] = points
        if changed or measured:
            _save(path, key, points)
    best = min(points, key=lambda p: abs(p[1] - wpm))
    return (best[0] if abs(best[1] - wpm) <= tolerance * wpm
            else _predict(points, wpm, _range(engine), _placed(engine, points, wpm)))


#: How far from a reading (a fraction of the asked-for rate) the rate of an engine whose
#: setting scales its durations is placed without reading again: the normal pace's
#: reading places the slow pace (120 and 100 words a minute).
SCALE_REACH = 0.25


def _placed(engine: Engine, points: Points, wpm: float) -> bool:
    """Whether ``wpm`` is placed by a reading in ``points`` without another: the engine's
    setting scales every duration it predicts (``rate_scales``), so words per minute are
    near enough proportional to it within :data:`SCALE_REACH` of a reading."""
    return bool(getattr(engine, "rate_scales", False)) and any(
        abs(w - wpm) <= SCALE_REACH * wpm for _, w in points)


def _off(points: Points, wpm: float, tolerance: float) -> bool:
    """True when no reading in ``points`` is within ``tolerance`` of ``wpm``."""
    return not points or min(abs(w - wpm) for _, w in points) > tolerance * wpm


@contextlib.contextmanager
def _one_at_a_time(path: Path | None) -> Iterator[None]:
    """Hold the lock beside the calibration file at ``path`` (none without one, or where it
    cannot be made: measuring twice is only slower)."""
    fd = None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # as _save makes it
            fd = os.open(path.parent / ".calibration.lock",
                         os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _lines(progress: Callable[[int, int], None] | None) -> Callable[[int], None] | None:
    """A reading's progress callback: lines spoken, of the calibration's lines."""
    if progress is None:
        return None
    return lambda done: progress(done, len(LINES))


def _measure_until_close(engine: Engine, voice: str, wpm: float, points: Points,
                         tolerance: float, progress: Callable[[int, int], None] | None,
                         ) -> tuple[Points, bool]:
    """``points`` with readings added until one is close to ``wpm`` (a secant search), and
    whether any was."""
    points = list(points)
    measured = False
    for _ in range(MAX_MEASUREMENTS):
        if not points:
            setting = first_setting(engine, wpm)
        else:
            best = min(points, key=lambda p: abs(p[1] - wpm))
            if abs(best[1] - wpm) <= tolerance * wpm or _placed(engine, points, wpm):
                break
            setting = _predict(points, wpm, _range(engine))
            if setting in {s for s, _ in points}:
                break
        if progress is not None:
            progress(0, len(LINES))
        points.append((setting, measure(engine, voice, setting, _lines(progress))))
        measured = True
        log.info("voice %s at setting %d speaks %.0f words per minute", voice, *points[-1])
    return points, measured


def first_setting(engine: Engine, wpm: float) -> int:
    """The setting to measure first for ``wpm``: on the line through the engine's
    ``typical`` measurements where it has them (so that one measurement usually confirms
    it), else its ``first_setting``."""
    typical = getattr(engine, "typical", None)
    if typical is not None:
        return _predict(list(typical), wpm, _range(engine))
    return int(getattr(engine, "first_setting", FIRST_SETTING))


def estimate(engine: Engine, voice: str, wpm: float, folder: Path | None,
             version: str) -> int:
    """The setting for ``wpm`` from what is known, without measuring anything (for a
    sample): the voice's kept measurements, else the engine's typical ones."""
    key = f"{engine.name}|{version}|{voice_key(engine, voice)}|{TEXT_KEY}"
    points = _measured.get(key) or _load(_store(folder))[0].get(key)
    if points:
        return _predict(points, wpm, _range(engine), _placed(engine, points, wpm))
    return first_setting(engine, wpm)


def _kept(path: Path | None, key: str, limits: tuple[int, int],
          warn: bool = True) -> tuple[Points, bool]:
    """The measurements of ``key`` kept at ``path``, and whether the file must be written
    anew: anything wrong in it (for any voice) is warned of once (unless not ``warn``),
    and what it concerns is measured again."""
    stored, problem = _load(path)
    points = stored.get(key, [])
    if points and isinstance(wrong := _points([list(p) for p in points], limits), str):
        problem, points = f"{key}: {wrong}", []
    if problem is not None and warn:
        log.warning("the voice calibration %s is not valid (%s); the voices it concerns are "
                    "measured again, and the file is written anew", path, problem)
    return points, problem is not None


#: How close a measured rate must come to the asked-for one.
TOLERANCE = 0.02
MAX_MEASUREMENTS = 5


def _range(engine: Engine) -> tuple[int, int]:
    lo, hi = getattr(engine, "setting_range", SETTING_RANGE)
    return int(lo), int(hi)


def _predict(points: list[tuple[int, float]], wpm: float, limits: tuple[int, int],
             proportional: bool = False) -> int:
    """The setting on the line through the two measurements nearest ``wpm`` (through the
    origin and the nearest one when there is only one, or when the rate is
    ``proportional`` to the setting: words per minute grow with the setting)."""
    near = sorted(points, key=lambda p: abs(p[1] - wpm))[:2]
    if len(near) < 2 or abs(near[1][1] - near[0][1]) < 1e-6 or proportional:
        s0, w0 = near[0]
        return _clamp(s0 * wpm / w0, limits)
    (s0, w0), (s1, w1) = near
    return _clamp(s0 + (wpm - w0) * (s1 - s0) / (w1 - w0), limits)


def _clamp(setting: float, limits: tuple[int, int]) -> int:
    return round(min(max(setting, limits[0]), limits[1]))
