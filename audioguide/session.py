"""A session request, and the build that turns it into a tagged MP3.

``plan`` renders the template, parses the script, speaks every phrase (through
the cache) and fits the timeline; ``build`` then mixes, masters, encodes, tags
and publishes it with an atomic rename. Stages report through ``progress``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import logging
import math
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from audioguide import __version__, chimes, vocabulary
from audioguide import ambience as beds
from audioguide.errors import AudioguideError, RequestError, TooLongError, TooShortError
from audioguide.script import Chime, Cue, Elastic, Pause, Speech, parse, speakable
from audioguide.templates import Kind, get_kind, kinds, render
from audioguide.timing import Placed, Timeline, fit, interval_bells

log = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
MAX_MINUTES = 90.0
RATE_RANGE = (80, 260)
BITRATE_RANGE = (48, 128)

#: MP3 sample rates offered (MPEG-1 layer III).
OUTPUT_RATES = (32_000, 44_100, 48_000)

#: The chime rung by ``--bell-every``.
BELL = "soft"

#: Called with (stage, done, total); stages: "speak", "mix", "master", "encode".
Progress = Callable[[str, int, int], None]


class Pace(enum.Enum):
    """How unhurried the voice and the pauses are."""

    NORMAL = "normal"
    SLOW = "slow"

    @property
    def rate(self) -> int:
        """Default speech rate in words per minute."""
        return {Pace.NORMAL: 150, Pace.SLOW: 128}[self]

    @property
    def pause_scale(self) -> float:
        """Factor applied to fixed pauses and to the shortest length of elastic ones."""
        return {Pace.NORMAL: 1.0, Pace.SLOW: 1.3}[self]

    @property
    def content_scale(self) -> float:
        """Share of the normal pace's content a session of this pace says."""
        return {Pace.NORMAL: 1.0, Pace.SLOW: 0.85}[self]


@dataclass(frozen=True)
class Request:
    """Everything that decides what a session says and how it sounds."""

    #: Session kind (a template name, see ``audioguide kinds``).
    kind: str
    #: Exact length of the finished file, in minutes.
    minutes: float
    #: The listener's name, used sparingly; None leaves it out.
    name: str | None = None
    #: Engine voice id or name; None is the engine's default.
    voice: str | None = None
    #: Speech rate in words per minute; None takes the pace's rate.
    rate: int | None = None
    pace: Pace = Pace.NORMAL
    #: Eyes-open instructions and surroundings reminders, for listening on a walk.
    walking: bool = False
    #: Body regions to dwell on (names from :data:`~audioguide.vocabulary.FOCUS_REGIONS`).
    focus: tuple[str, ...] = ()
    #: Feeling words to offer in labelling; empty takes the kind's defaults.
    feelings: tuple[str, ...] = ()
    #: One sentence the session returns to.
    intention: str | None = None
    #: Someone the listener feels safe with, for the rehearsals.
    safe_person: str | None = None
    #: Minutes between interval bells (rung in pauses); None for no bells.
    bell_every: float | None = None
    #: The chime that opens, separates and closes sections.
    chime: str = chimes.DEFAULT_CHIME
    #: Silence before the first sound, in seconds.
    settle_s: float = 3.0
    engine: str = "pyttsx3"
    #: Constant MP3 bitrate, kbit/s.
    bitrate_kbps: int = 64
    #: Integrated loudness target, LUFS.
    loudness_lufs: float = -19.0
    #: Background bed: none, rain, ocean or brown.
    ambience: str = "none"
    #: The bed's level relative to the voice, in dB (LU).
    ambience_level_db: float = beds.DEFAULT_LEVEL_DB
    #: Sample rate of the MP3 (the mix is always made at 44.1 kHz).
    sample_rate_out: int = 44_100
    #: Where the MP3 is written.
    out_dir: Path = Path("output")
    use_cache: bool = True
    #: A user template folder searched before the shipped kinds (``--templates``).
    templates_dir: Path | None = None
    #: A template file used in place of a named kind (``--template``).
    template_file: Path | None = None
    #: File name without extension; None derives it from kind, minutes and name.
    file_stem: str | None = None
    #: Album tag; None is the default album.
    album: str | None = None
    #: Track number and total, for a session that is part of a week.
    track: tuple[int, int] | None = None
    #: The date written into the tags.
    date: dt.date = field(default_factory=dt.date.today)

    @property
    def speech_rate(self) -> int:
        """The rate actually used."""
        return self.rate if self.rate is not None else self.pace.rate


def _kind(request: Request) -> Kind:
    return get_kind(request.kind, request.templates_dir, request.template_file)


def validate(request: Request) -> Request:
    """Check every field; report all problems together, each naming its option."""
    problems: list[tuple[str, str]] = []
    if not math.isfinite(request.minutes) or request.minutes <= 0:
        problems.append(("--minutes", f"{request.minutes:g} is not a length; give a number of "
                         f"minutes above 0 and at most {MAX_MINUTES:g}, such as 10 or 7.5."))
    elif request.minutes > MAX_MINUTES:
        problems.append(("--minutes", f"{request.minutes:g} is too long; the longest session "
                         f"is {MAX_MINUTES:g} minutes."))
    if request.rate is not None and not RATE_RANGE[0] <= request.rate <= RATE_RANGE[1]:
        problems.append(("--rate", f"{request.rate} words per minute is outside "
                         f"{RATE_RANGE[0]}-{RATE_RANGE[1]}; 150 is a calm default."))
    problems += _text_problems("--name", request.name, vocabulary.NAME_MAX)
    problems += _text_problems("--intention", request.intention, vocabulary.INTENTION_MAX)
    problems += _text_problems("--safe-person", request.safe_person, vocabulary.NAME_MAX)
    unknown = [r for r in request.focus if r not in vocabulary.FOCUS_REGIONS]
    if unknown:
        problems.append(("--focus", f"unknown body region {', '.join(map(repr, unknown))}; "
                         f"known regions: {', '.join(vocabulary.FOCUS_REGIONS)}."))
    if len(request.feelings) > vocabulary.FEELINGS_MAX:
        problems.append(("--feelings", f"{len(request.feelings)} feelings is too many; "
                         f"at most {vocabulary.FEELINGS_MAX}."))
    for word in request.feelings:
        if not re.fullmatch(r"[A-Za-z][A-Za-z' -]*", word) or len(word) > vocabulary.FEELING_MAX:
            problems.append(("--feelings", f"{word!r} is not a feeling word; give words of "
                             f"letters only, each at most {vocabulary.FEELING_MAX} characters, "
                             "separated by commas, such as 'calm,sadness,worry'."))
    if request.bell_every is not None and (
        not math.isfinite(request.bell_every) or not 1 <= request.bell_every <= 30
    ):
        problems.append(("--bell-every", f"{request.bell_every:g} minutes is outside 1-30."))
    if request.chime not in chimes.CHIMES:
        problems.append(("--chime", f"unknown chime {request.chime!r}; choose one of "
                         f"{', '.join(chimes.CHIMES)}."))
    if not math.isfinite(request.settle_s) or not 0 <= request.settle_s <= 60:
        problems.append(("--settle", f"{request.settle_s:g} seconds is outside 0-60."))
    if not BITRATE_RANGE[0] <= request.bitrate_kbps <= BITRATE_RANGE[1]:
        problems.append(("--bitrate", f"{request.bitrate_kbps} kbit/s is outside "
                         f"{BITRATE_RANGE[0]}-{BITRATE_RANGE[1]}."))
    if not math.isfinite(request.loudness_lufs) or not -30 <= request.loudness_lufs <= -10:
        problems.append(("--loudness", f"{request.loudness_lufs:g} LUFS is outside -30 to -10."))
    if request.ambience not in beds.AMBIENCES:
        problems.append(("--ambience", f"unknown ambience {request.ambience!r}; choose one of "
                         f"{', '.join(beds.AMBIENCES)}."))
    low, high = beds.LEVEL_RANGE
    if not math.isfinite(request.ambience_level_db) or not low <= request.ambience_level_db <= high:
        problems.append(("--ambience-level", f"{request.ambience_level_db:g} dB is outside "
                         f"{low:g} to {high:g} (relative to the voice)."))
    if request.sample_rate_out not in OUTPUT_RATES:
        problems.append(("--sample-rate", f"{request.sample_rate_out} Hz is not offered; choose "
                         f"one of {', '.join(map(str, OUTPUT_RATES))}."))
    if len(problems) == 1:
        raise RequestError(*problems[0])
    if problems:
        raise AudioguideError(f"{len(problems)} options have values that are not accepted. "
                              + " ".join(f"{name}: {text}" for name, text in problems))
    kind = _kind(request)
    unused = [o for o in PERSONAL if _given(request, o) and o not in kind.uses]
    if unused:
        option = unused[0]
        users = [k.name for k in kinds(request.templates_dir).values() if option in k.uses]
        flag = "--" + option.replace("_", "-")
        raise RequestError(flag, f"the {kind.title.lower()} session does not use it"
                           + (f" (nor {', '.join('--' + o.replace('_', '-') for o in unused[1:])})"
                              if unused[1:] else "")
                           + f"; leave it out, or choose a kind that uses {flag}: "
                           f"{', '.join(users)}.")
    if request.walking and not kind.walking_safe:
        safe = [k.name for k in kinds(request.templates_dir).values() if k.walking_safe]
        raise RequestError("--walking", f"the {kind.title.lower()} session is not meant for "
                           f"walking; walking-safe kinds: {', '.join(safe)}.")
    if request.minutes > kind.max_minutes:
        raise RequestError("--minutes", f"{request.minutes:g} minutes is longer than the "
                           f"{kind.title.lower()} session allows (at most "
                           f"{kind.max_minutes:g} minutes).")
    if request.minutes < kind.min_minutes:
        raise TooShortError(request.minutes * 60, kind.min_minutes * 60,
                            f"the {kind.title.lower()} session")
    return replace(
        request,
        name=_clean(request.name),
        intention=_clean(request.intention),
        safe_person=_clean(request.safe_person),
        feelings=tuple(" ".join(w.lower().split()) for w in request.feelings),
    )


#: Personal options, in the order an error names them.
PERSONAL = ("focus", "feelings", "intention", "safe_person")


def _given(request: Request, option: str) -> bool:
    value = getattr(request, option)
    return bool(value)


def _speakable(text: str | None) -> str | None:
    return None if text is None else speakable(text) or None


def _clean(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split())


def _text_problems(option: str, value: str | None, limit: int) -> list[tuple[str, str]]:
    if value is None:
        return []
    cleaned = " ".join(value.split())
    if not cleaned:
        return [(option, "the text is empty; leave the option out instead.")]
    if len(cleaned) > limit:
        return [(option, f"{len(cleaned)} characters is too long; at most {limit}.")]
    return []


@dataclass(frozen=True)
class Plan:
    """A session fitted to its length, ready to mix (or to preview)."""

    request: Request
    kind: Kind
    voice: str
    engine_version: str
    cues: tuple[Cue, ...]
    #: The engine's audio for each speech cue, in order (decoded when mixed).
    raw: tuple[bytes, ...]
    #: Length in samples of each decoded speech clip.
    clip_lengths: tuple[int, ...]
    timeline: Timeline
    #: Sample positions of the interval bells (``--bell-every``).
    bells: tuple[int, ...] = ()

    def clip(self, index: int) -> Any:
        """The decoded samples of speech cue ``index``."""
        return _decoded(self.raw[index])


def context(request: Request, kind: Kind) -> dict[str, Any]:
    """What a template sees."""
    return {
        "minutes": request.minutes,
        "budget": budget(request),
        "own_feelings": bool(request.feelings),
        "seconds": request.minutes * 60,
        # Typed text is made speakable here, so no template can let it become markup.
        "name": _speakable(request.name),
        "walking": request.walking,
        "pace": request.pace.value,
        "kind": kind.name,
        "title": kind.title,
        "focus": list(request.focus),
        "feelings": [vocabulary.feeling(speakable(f))
                     for f in request.feelings or vocabulary.DEFAULT_FEELINGS],
        "intention": _speakable(request.intention),
        "safe_person": _speakable(request.safe_person),
        "regions": list(vocabulary.FOCUS_REGIONS),
        "wheel": [[core, list(fine)] for core, fine in vocabulary.EMOTION_WHEEL],
    }


def budget(request: Request) -> float:
    """The minutes a template sizes its content by: the time there is to practise.

    It never grows when the voice is slower: a slower rate or the slow pace gives the
    same words or fewer, and the time it frees goes into the pauses.
    """
    return request.minutes * request.pace.content_scale


#: Silence after a spoken line that runs straight into the next: a breath, longer later in
#: the session and at a slow pace (seconds, at the start and at the end of the practice).
BREATH_S = (2.0, 3.0)
#: No two spoken lines are closer than this, whatever the template wrote.
MIN_GAP_S = 1.5
#: Elastic pauses deepen through the practice: their share of the spare time grows from
#: the first to the last (weights times 0.6 ... 1.6), and so does their ceiling.
DEEPEN_WEIGHT = (0.6, 1.6)
DEEPEN_CEILING = (0.6, 1.0)


def ceiling(kind: Kind, minutes: float) -> float:
    """The longest silence at this length: the kind's cap is reached at 60 minutes, and a
    shorter session's longest silence is shorter, so silence deepens with length too."""
    return min(kind.max_silence_s, max(20.0, kind.max_silence_s * (0.35 + 0.65 * minutes / 60)))


def script_cues(request: Request, kind: Kind, content_scale: float = 1.0,
                strict: bool = True) -> list[Cue]:
    """Render and parse the script, then shape its silences: settle time, a breath between
    lines, pace, and pauses that deepen towards the closing within the kind's ceiling.

    ``content_scale`` multiplies the content budget the template sees. ``strict`` False
    lets every pause reach the kind's own cap (for a template whose content cannot grow).
    """
    ctx = context(request, kind)
    ctx["budget"] *= content_scale
    cues = parse(render(kind, ctx), source=str(kind.path))
    pause_scale = request.pace.pause_scale
    top = ceiling(kind, request.minutes) if strict else kind.max_silence_s
    closing = _closing_index(cues)
    elastic_at = [i for i, c in enumerate(cues[:closing]) if isinstance(c, Elastic)]
    depth = {index: n / max(len(elastic_at) - 1, 1) for n, index in enumerate(elastic_at)}
    spoken_at = [i for i, c in enumerate(cues) if isinstance(c, Speech)]
    shaped: list[Cue] = [Pause(request.settle_s, 0)] if request.settle_s else []
    for i, cue in enumerate(cues):
        if isinstance(cue, Pause) and cue.breath:
            along = min(1.0, spoken_at.index(i + 1) / max(len(spoken_at) - 1, 1))
            cue = replace(cue, seconds=_between(BREATH_S, along) * pause_scale, breath=False)
        elif isinstance(cue, Pause):
            cue = replace(cue, seconds=cue.seconds * pause_scale)
        elif isinstance(cue, Elastic):
            f = depth.get(i, 1.0)
            high = top if cue.max_s is None else min(cue.max_s, top)
            if i in depth and strict:
                high *= _between(DEEPEN_CEILING, f)
            low = min(cue.min_s * pause_scale, high)
            weight = cue.weight * (_between(DEEPEN_WEIGHT, f) if i in depth else 1.0)
            cue = replace(cue, min_s=low, max_s=max(high, low), weight=weight)
        elif isinstance(cue, Chime) and cue.name is None:
            cue = replace(cue, name=request.chime)
        shaped.append(cue)
    return _keep_apart(shaped)


def _between(span: tuple[float, float], f: float) -> float:
    return span[0] + (span[1] - span[0]) * f


def _closing_index(cues: Sequence[Cue]) -> int:
    """Where the closing starts: the last section heading, when there are several."""
    from audioguide.script import Section

    heads = [i for i, c in enumerate(cues) if isinstance(c, Section)]
    return heads[-1] if len(heads) > 1 else len(cues)


def _keep_apart(cues: list[Cue]) -> list[Cue]:
    """At least :data:`MIN_GAP_S` of silence between any two spoken lines."""
    out: list[Cue] = []
    run: list[Cue] = []
    for cue in cues:
        if isinstance(cue, Speech):
            if out and not any(isinstance(c, Elastic | Chime) for c in run):
                silent = sum(c.seconds for c in run if isinstance(c, Pause))
                if silent < MIN_GAP_S:
                    run.append(Pause(MIN_GAP_S - silent, cue.line))
            out += run
            run = []
            out.append(cue)
        else:
            run.append(cue)
    return out + run


#: Attempts at re-sizing a template's content before a length error is final.
FIT_ATTEMPTS = 6


def plan(request: Request, progress: Progress | None = None) -> Plan:
    """Validate, render, speak and fit: everything short of making the audio.

    Templates size their content by a length budget. When the spoken script
    turns out too long (or too short) for the requested minutes, the template
    is rendered again with a budget scaled by the measured mismatch; phrases
    already spoken come from the cache. A length error is reported only when
    the content can change no further.
    """
    from audioguide.tts import get_engine, resolve_voice

    request = validate(request)
    kind = _kind(request)
    engine = get_engine(request.engine)
    voice = resolve_voice(engine, request.voice)
    speaker = _Speaker(engine, voice, request, progress)
    target = round(request.minutes * 60 * SAMPLE_RATE)
    scale = 1.0
    strict = True
    seen: set[tuple[Cue, ...]] = set()
    while True:
        cues = tuple(script_cues(request, kind, scale, strict))
        seen.add(cues)
        raw, lengths = speaker.speak([c.text for c in cues if isinstance(c, Speech)])
        try:
            timeline = fit(cues, lengths,
                           lambda name: chimes.length(name or request.chime, SAMPLE_RATE),
                           target, SAMPLE_RATE, what=_describe(request, kind))
            break
        except (TooShortError, TooLongError) as exc:
            have = exc.minimum_s if isinstance(exc, TooShortError) else exc.maximum_s
            rescaled = _rescale(request, kind, scale, (target / SAMPLE_RATE) / have, seen,
                                strict)
            if rescaled is None or len(seen) >= FIT_ATTEMPTS:
                if strict and isinstance(exc, TooLongError):
                    # The content cannot grow: let silences reach the kind's own cap.
                    strict, scale = False, 1.0
                    seen.clear()
                    continue
                raise
            scale = rescaled
            log.info("script does not fit %g min; re-sizing its content by %.2f",
                     request.minutes, scale)
    if request.walking:
        cues, raw, lengths, timeline = _remind(request, kind, speaker, cues, timeline)
    bells: tuple[int, ...] = ()
    if request.bell_every:
        bells = tuple(interval_bells(timeline, round(request.bell_every * 60 * SAMPLE_RATE),
                                     chimes.length(BELL, SAMPLE_RATE), SAMPLE_RATE))
    return Plan(request, kind, voice, speaker.version, cues, raw, lengths, timeline, bells)


#: A walking session says something about the surroundings at least this often (seconds);
#: reminders are placed a little earlier, so refitting cannot push them past it.
REMINDER_EVERY_S = 300.0
_REMINDER_AIM_S = 240.0


def _remind(request: Request, kind: Kind, speaker: _Speaker, cues: tuple[Cue, ...],
            timeline: Timeline) -> tuple[tuple[Cue, ...], tuple[bytes, ...], tuple[int, ...],
                                         Timeline]:
    """Put a surroundings reminder into the pauses of a walking session wherever the
    template left more than :data:`REMINDER_EVERY_S` without one, then fit again."""
    lines = [c.text for c in parse(render(kind, context(request, kind),
                                          "partials/walking-reminders.j2"))
             if isinstance(c, Speech)]
    used = 0
    raw: tuple[bytes, ...] = ()
    lengths: tuple[int, ...] = ()
    for _ in range(math.ceil(timeline.total / SAMPLE_RATE / _REMINDER_AIM_S) + 4):
        gap = _longest_unreminded(timeline)
        if gap is None:
            break
        start, events = gap
        if not events:
            break
        # Split the pause nearest to where a reminder is due.
        due = start + _REMINDER_AIM_S * SAMPLE_RATE
        placed = min(events, key=lambda e: abs(e.start + e.length // 2 - due))
        at = timeline.events.index(placed)
        half = placed.cue
        assert isinstance(half, Elastic)
        half = replace(half, min_s=half.min_s / 2, weight=half.weight / 2)
        text = lines[used % len(lines)]
        used += 1
        cues = (*cues[:at], half, Speech(text, half.line), half, *cues[at + 1:])
        raw, lengths = speaker.speak([c.text for c in cues if isinstance(c, Speech)])
        timeline = fit(cues, lengths, lambda name: chimes.length(name or request.chime,
                                                                 SAMPLE_RATE),
                       timeline.total, SAMPLE_RATE, what=_describe(request, kind))
    if _longest_unreminded(timeline) is not None:
        raise AudioguideError(f"{_describe(request, kind)}: could not place a surroundings "
                              "reminder every five minutes; the template has too few pauses.")
    if not raw:
        raw, lengths = speaker.speak([c.text for c in cues if isinstance(c, Speech)])
    return cues, raw, lengths, timeline


def _longest_unreminded(timeline: Timeline) -> tuple[int, list[Placed]] | None:
    """The first stretch longer than the aim with no reminder: (its start, its pauses)."""
    from audioguide.vocabulary import SURROUNDINGS

    marks = [0] + [e.start for e in timeline.events
                   if isinstance(e.cue, Speech) and SURROUNDINGS.search(e.cue.text)]
    marks.append(timeline.total)
    for a, b in zip(marks, marks[1:], strict=False):
        if b - a > REMINDER_EVERY_S * SAMPLE_RATE * 0.95:
            pauses = [e for e in timeline.events if isinstance(e.cue, Elastic) and a < e.start < b]
            roomy = [e for e in pauses if e.length > 8 * SAMPLE_RATE]
            return a, roomy or pauses
    return None


def _rescale(request: Request, kind: Kind, scale: float, ratio: float,
             seen: set[tuple[Cue, ...]], strict: bool) -> float | None:
    """A budget scale, in the direction of ``ratio``, that gives a script not tried yet."""
    step = ratio if abs(ratio - 1) > 0.05 else (0.93 if ratio < 1 else 1.07)
    for _ in range(12):
        scale *= step
        if tuple(script_cues(request, kind, scale, strict)) not in seen:
            return scale
    return None


class _Speaker:
    """Speaks phrases for one request through the cache, reporting progress."""

    def __init__(self, engine: Any, voice: str, request: Request,
                 progress: Progress | None) -> None:
        from audioguide.tts import voice_key
        from audioguide.tts.cache import SpeechCache, default_cache_dir

        self.engine = engine
        self.voice = voice
        self.voice_key = voice_key(engine, voice)
        self.rate = request.speech_rate
        self.version: str = engine.version()
        self.cache = SpeechCache(default_cache_dir() if request.use_cache else None)
        self.progress = progress
        self.raw: dict[str, bytes] = {}
        self.lengths: dict[str, int] = {}

    def speak(self, texts: list[str]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        """The engine's audio and the clip length of each text, rendering only what neither
        this build nor the cache has. Clips are decoded to be measured, then let go."""
        from audioguide import clips as clip_mod
        from audioguide.tts.cache import PhraseKey

        wanted = list(dict.fromkeys(t for t in texts if t not in self.raw))
        keys = [PhraseKey(self.engine.name, self.version, self.voice_key, self.rate, t)
                for t in wanted]
        found, missing = self.cache.split(keys)
        log.info("%d new phrases: %d cached, %d to render", len(wanted), len(found),
                 len(missing))

        def spoken(done: int) -> None:
            if self.progress is not None:
                self.progress("speak", len(found) + done, len(wanted))

        spoken(0)
        rendered = self.engine.synthesize([wanted[i] for i in missing], self.voice, self.rate,
                                          spoken)
        for i, data in zip(missing, rendered, strict=True):
            self.cache.put(keys[i], data)
            found[i] = data
        for i, text in enumerate(wanted):
            self.raw[text] = found[i]
            self.lengths[text] = clip_mod.decode(found[i], SAMPLE_RATE).size
        return tuple(self.raw[t] for t in texts), tuple(self.lengths[t] for t in texts)


#: Decoded clips kept between the master's passes: 16 MB of int16, a few minutes
#: of speech; longer sessions decode the rest again in each pass.
CLIP_CACHE_BYTES = 16 << 20
_clip_cache: dict[bytes, Any] = {}


def _decoded(raw: bytes) -> Any:
    """``raw`` decoded to float32 samples, from a small cache when it was decoded lately."""
    import numpy as np

    from audioguide.clips import decode

    key = hashlib.sha1(raw).digest()
    kept = _clip_cache.pop(key, None)
    if kept is not None:
        _clip_cache[key] = kept  # most recently used last
        return kept.astype(np.float32) / 32767
    samples = decode(raw, SAMPLE_RATE)
    _clip_cache[key] = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
    while sum(v.nbytes for v in _clip_cache.values()) > CLIP_CACHE_BYTES:
        del _clip_cache[next(iter(_clip_cache))]
    return samples


def _describe(request: Request, kind: Kind) -> str:
    return (f"the {kind.title.lower()} session at {request.speech_rate} words per minute"
            f" ({request.pace.value} pace)")


def output_name(request: Request) -> str:
    """``breath-10min.mp3``, ``breath-7.5min-alex.mp3``: safe, sortable, readable."""
    if request.file_stem:
        return safe_filename(request.file_stem) + ".mp3"
    kind = request.template_file.stem if request.template_file else request.kind
    parts = [kind, f"{request.minutes:g}min"]
    if request.name:
        parts.append(request.name[:24])
    return safe_filename("-".join(parts)) + ".mp3"


#: Names Windows reserves for devices, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}
FILENAME_MAX = 80


def safe_filename(text: str) -> str:
    """A file name stem safe on every system: no separators, no '..', no control or
    reserved names, lower case ASCII letters, digits, '.', '_' and '-', at most 80 characters."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.lower())
    # A dot only between letters or digits ("7.5min"); never "..", never leading.
    stem = re.sub(r"(?<![a-z0-9])\.|\.(?![a-z0-9])", "-", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_ ")[:FILENAME_MAX].strip(".-_ ")
    if not stem:
        stem = "session"
    if stem.split(".")[0] in _RESERVED:
        stem = "session-" + stem
    return stem


def title(request: Request, kind: Kind) -> str:
    """The track title, e.g. 'Breath awareness — 10 min'."""
    return f"{kind.title} — {request.minutes:g} min"


def recipe(p: Plan) -> dict[str, Any]:
    """Everything needed to rebuild the file, as stored in its tag."""
    return recipe_for(p.request, p.voice, p.engine_version)


def recipe_for(request: Request, voice: str, engine_version: str) -> dict[str, Any]:
    """The recipe of ``request`` with its voice resolved (no speech needed to know it)."""
    r = asdict(request)
    r.update(pace=request.pace.value, date=request.date.isoformat(), voice=voice,
             rate=request.speech_rate, engine_version=engine_version, audioguide=__version__,
             focus=list(request.focus), feelings=list(request.feelings),
             track=list(request.track) if request.track else None,
             templates_dir=str(request.templates_dir) if request.templates_dir else None,
             template_file=str(request.template_file) if request.template_file else None,
             template_sha256=hashlib.sha256(_kind(request).path.read_bytes()).hexdigest())
    del r["out_dir"], r["use_cache"]
    return r


def expected_recipe(request: Request) -> dict[str, Any]:
    """The recipe a build of ``request`` would store, found without rendering any speech."""
    from audioguide.tts import get_engine, resolve_voice

    engine = get_engine(request.engine)
    return recipe_for(request, resolve_voice(engine, request.voice), engine.version())


def check_output_dir(folder: Path) -> None:
    """Create ``folder`` if needed and prove it can be written, before any work starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".audioguide-write-test-"):
            pass
    except OSError as exc:
        raise RequestError("--out", f"cannot write to the folder {folder} "
                           f"({exc.strerror or exc}); choose a folder you can write to.") from exc


def build(request: Request, progress: Progress | None = None) -> Path:
    """Build the session; return the MP3's path (a ``.vtt`` and a ``.png`` sit beside it)."""
    from audioguide import cover, ffmpeg, tags, transcript
    from audioguide.master import master
    from audioguide.mix import Mixer

    request = validate(request)
    check_output_dir(request.out_dir)
    ffmpeg.executable()
    p = plan(request, progress)
    voice = Mixer(p.timeline, p.clip, p.clip_lengths,
                  lambda name: chimes.render(name or request.chime, SAMPLE_RATE),
                  [(start, chimes.render(BELL, SAMPLE_RATE)) for start in p.bells])
    speech = [(e.start, e.start + e.length) for e in p.timeline.events
              if isinstance(e.cue, Speech)]

    def bed(voice_lufs: float) -> Any:
        return beds.Bed(request.ambience, SAMPLE_RATE, p.timeline.total,
                        voice_lufs + request.ambience_level_db, speech)

    final = request.out_dir / output_name(request)
    cover_png = cover.render(request.kind, p.kind.title, f"{request.minutes:g} min")
    outputs = {
        final.with_suffix(".vtt"): transcript.webvtt(p.timeline, title(request, p.kind)).encode(),
        final.with_suffix(".png"): cover_png,
    }
    partials = {path: path.with_name(f".{path.name}.partial") for path in [*outputs, final]}
    try:
        _report(progress, "master")

        def encode(blocks: Any) -> Any:
            _report(progress, "encode")
            ffmpeg.encode_mp3(blocks, SAMPLE_RATE, partials[final], request.bitrate_kbps,
                              request.sample_rate_out)
            return ffmpeg.measure_file(partials[final])

        master(voice, SAMPLE_RATE, encode, request.loudness_lufs,
               bed=bed if request.ambience != "none" else None)
        tags.write(partials[final], session_tags(p, cover_png))
        for path, data in outputs.items():
            partials[path].write_bytes(data)
        # The MP3 goes last: when it is in place, its sidecars are too.
        for path in [*outputs, final]:
            partials[path].replace(path)
    except BaseException:
        for partial in partials.values():
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        raise
    log.info("wrote %s", final)
    return final


def _report(progress: Progress | None, stage: str) -> None:
    if progress is not None:
        progress(stage, 0, 1)


def chapters(p: Plan) -> list[Any]:
    """One chapter per section heading; the first starts at 0, the last ends at the end."""
    from audioguide.script import Section
    from audioguide.tags import Chapter

    def ms(samples: int) -> int:
        return round(samples * 1000 / SAMPLE_RATE)

    heads = [(e.start, e.cue.title) for e in p.timeline.events if isinstance(e.cue, Section)]
    if not heads:
        return [Chapter(p.kind.title, 0, ms(p.timeline.total))]
    starts = [0] + [start for start, _ in heads[1:]]
    ends = [*starts[1:], p.timeline.total]
    return [Chapter(t, ms(a), ms(b)) for (_, t), a, b in zip(heads, starts, ends, strict=True)]


def session_tags(p: Plan, cover_png: bytes | None = None) -> Any:
    """The ID3 tags of a planned session."""
    from audioguide.tags import Tags

    request = p.request
    spoken = [c.text for c in p.cues if isinstance(c, Speech)]
    return Tags(
        text={
            "title": title(request, p.kind),
            "artist": "audioguide",
            "album_artist": "audioguide",
            "album": request.album or "audioguide practice sessions",
            "genre": "Meditation",
            "date": request.date.isoformat(),
            "language": "eng",
            "length_ms": str(round(p.timeline.total * 1000 / SAMPLE_RATE)),
            "encoded_by": f"audioguide {__version__}",
            **({"track": f"{request.track[0]}/{request.track[1]}"} if request.track else {}),
        },
        comment=f"{p.kind.description} A guided {p.kind.title.lower()} practice of "
                f"{request.minutes:g} minutes. You can pause or stop at any time.",
        recipe=recipe(p),
        transcript="\n".join(spoken),
        chapters=chapters(p),
        cover_png=cover_png,
    )


def describe_cues(p: Plan) -> Sequence[tuple[float, str]]:
    """(start in seconds, text) for every cue, as ``preview`` shows it."""
    from audioguide.script import Section

    rows: list[tuple[float, str]] = []
    for placed in p.timeline.events:
        start = placed.start / SAMPLE_RATE
        cue = placed.cue
        if isinstance(cue, Speech):
            rows.append((start, cue.text))
        elif isinstance(cue, Section):
            rows.append((start, f"# {cue.title}"))
        elif isinstance(cue, Chime):
            rows.append((start, f"[chime {cue.name}]"))
        elif placed.length:
            rows.append((start, f"[pause {placed.length / SAMPLE_RATE:.1f} s]"))
    rows += [(bell / SAMPLE_RATE, "[interval bell]") for bell in p.bells]
    rows.sort(key=lambda row: row[0])
    return rows


__all__ = ["AudioguideError", "Pace", "Plan", "Request", "build", "plan", "validate"]
