"""Planning: render the script, speak every phrase, and fit the timeline to the length.

:func:`plan` does everything short of making the audio; ``preview`` prints its
result and ``build`` mixes it. When the spoken script does not fit the length,
the template is rendered again with its content re-sized; walking sessions get
a surroundings reminder wherever five minutes would pass without one.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from audioguide.audio import chimes
from audioguide.errors import AudioguideError, RequestError, TooLongError, TooShortError
from audioguide.request import SAMPLE_RATE, Progress, Request, validate
from audioguide.script import sandbox
from audioguide.script.checks import estimate_seconds
from audioguide.script.context import context, script_cues, script_text
from audioguide.script.markup import Chime, Cue, Elastic, Section, Speech, parse
from audioguide.script.templates import Kind, render
from audioguide.script.vocabulary import SURROUNDINGS
from audioguide.timing import Placed, Timeline, fit, interval_bells
from audioguide.tts.cache import SpeechCache
from audioguide.tts.speaker import Phrase, Samples, Speaker, decoded

log = logging.getLogger(__name__)

#: The chime rung by ``--bell-every``.
BELL = "soft"


@dataclass(frozen=True)
class Plan:
    """A session fitted to its length, ready to mix (or to preview)."""

    request: Request
    kind: Kind
    voice: str
    engine_version: str
    cues: tuple[Cue, ...]
    #: The phrase of each speech cue, in order (decoded when mixed).
    phrases: tuple[Phrase, ...]
    #: Length in samples of each decoded speech clip.
    clip_lengths: tuple[int, ...]
    timeline: Timeline
    #: Sample positions of the interval bells (``--bell-every``).
    bells: tuple[int, ...] = ()
    #: Where decoded clips are kept (the speech cache), if anywhere.
    cache: SpeechCache | None = None

    def clip(self, index: int) -> Samples:
        """The decoded samples of speech cue ``index``."""
        return decoded(self.phrases[index], self.cache)


#: Attempts at re-sizing a template's content before a length error is final.
FIT_ATTEMPTS = 6
#: Speech can come out faster than its words at the asked-for rate suggest (a fifth faster
#: at the slowest rates); before any speech is made, a script is refused only if it cannot
#: fit even when spoken in this share of the estimated time.
SPEECH_SHARE_AT_FASTEST = 0.6


def plan(request: Request, progress: Progress | None = None) -> Plan:
    """Validate, render, speak and fit: everything short of making the audio.

    Templates size their content by a length budget. When the spoken script
    turns out too long (or too short) for the requested minutes, the template
    is rendered again with a budget scaled by the measured mismatch; phrases
    already spoken come from the cache. A script whose words alone cannot fit is
    re-sized or refused before any of it is spoken. A length error is reported
    only when the content can change no further (at once, for a template that
    does not read its budget).
    """
    request = validate(request)
    try:
        return _plan(request, progress)
    except TooLongError:
        raise
    except RequestError as exc:
        if exc.field != "--minutes":
            raise
        raise _nearest_that_fits(request, exc) from None


#: How far (in half minutes) a refused length looks either way for one that fits.
NEAREST_STEPS = 12


def _nearest_that_fits(request: Request, exc: RequestError) -> RequestError:
    """``exc`` with the nearest lengths that do fit these settings named, found by planning
    them (half a minute apart), so the message never sends a listener to a length that
    fails too."""
    kind = request.kind_info()
    found: list[float] = []
    for direction in (1, -1):
        for step in range(1, NEAREST_STEPS + 1):
            minutes = math.floor(request.minutes * 2) / 2 + direction * step / 2
            if not kind.min_minutes <= minutes <= kind.max_minutes:
                break
            try:
                _plan(replace(request, minutes=minutes), None)
            except AudioguideError:
                continue
            found.append(minutes)
            break
    if not found:
        return exc
    works = " or ".join(f"{m:g}" for m in sorted(found))
    if min(found) < request.minutes:
        return RequestError("--minutes", f"{request.minutes:g} minutes cannot be fitted for "
                            f"{_describe(request, kind)}: at this length its script needs a "
                            f"little more time than there is. {works} minutes works.")
    return RequestError("--minutes", f"{request.minutes:g} minutes is too short for "
                        f"{_describe(request, kind)}; these settings need at least {works} "
                        "minutes.")


def _plan(request: Request, progress: Progress | None) -> Plan:
    """:func:`plan` for a validated request."""
    from audioguide.tts import get_engine, resolve_voice

    kind = request.kind_info()
    engine = get_engine(request.engine)
    voice = resolve_voice(engine, request.voice)
    speaker = Speaker(engine, voice, request, progress, before_synthesis=sandbox.close)
    target = round(request.minutes * 60 * SAMPLE_RATE)
    scripts = _Scripts(request, kind)
    scale = 1.0
    strict = True
    seen: set[tuple[Cue, ...]] = set()
    scanner = _Scan()
    while True:
        cues = scripts.cues(scale, strict)
        seen.add(cues)
        estimate = _estimate(cues, request.speech_rate)
        if estimate.least_s > request.minutes * 60:
            rescaled = _rescale(scripts, scale, request.minutes * 60 / estimate.total_s, seen,
                                strict)
            if rescaled is None or len(seen) >= FIT_ATTEMPTS:
                rescaled = scanner.next(scripts, seen, strict)
                if rescaled is None:
                    raise _unspeakable(request, kind, estimate)
            scale = rescaled
            continue
        phrases, lengths = speaker.speak([c.text for c in cues if isinstance(c, Speech)])
        try:
            timeline = fit(cues, lengths,
                           lambda name: chimes.length(name or request.chime, SAMPLE_RATE),
                           target, SAMPLE_RATE, what=_describe(request, kind))
            if request.walking or kind.always_walking:
                # The reminders add speech: a script they no longer fit is re-sized too.
                cues, phrases, lengths, timeline = _remind(request, kind, speaker, cues,
                                                           timeline)
            break
        except (TooShortError, TooLongError) as exc:
            have = exc.minimum_s if isinstance(exc, TooShortError) else exc.maximum_s
            rescaled = _rescale(scripts, scale, (target / SAMPLE_RATE) / have, seen, strict)
            if rescaled is None or len(seen) >= FIT_ATTEMPTS:
                if strict and isinstance(exc, TooLongError) and not scanner.scales:
                    # The content cannot grow: let silences reach the kind's own cap.
                    strict, scale = False, 1.0
                    seen.clear()
                    continue
                # Re-sizing by the measured mismatch went back and forth between scripts
                # on either side of the length (content grows in steps): try every
                # smaller script in turn before refusing.
                rescaled = scanner.next(scripts, seen, strict)
                if rescaled is None:
                    if strict and isinstance(exc, TooLongError):
                        # Every script was too long or, smaller, could not stretch: try
                        # them again letting silences reach the kind's own cap.
                        strict, scale, scanner = False, 1.0, _Scan()
                        seen.clear()
                        continue
                    raise
            scale = rescaled
            log.info("script does not fit %g min; re-sizing its content by %.2f",
                     request.minutes, scale)
    bells: tuple[int, ...] = ()
    if request.bell_every:
        bells = tuple(interval_bells(timeline, round(request.bell_every * 60 * SAMPLE_RATE),
                                     chimes.length(BELL, SAMPLE_RATE), SAMPLE_RATE))
    return Plan(request, kind, voice, speaker.version, cues, phrases, lengths, timeline, bells,
                speaker.cache)


class _Scan:
    """Smaller and smaller content, then larger, each script tried once: the last resort
    of fitting (content grows in steps, and a length can fall between two of them)."""

    STEPS = (*(1 - 0.04 * k for k in range(1, 16)), *(1 + 0.04 * k for k in range(1, 16)))

    def __init__(self) -> None:
        self.scales: list[float] = []
        self.started = False

    def next(self, scripts: _Scripts, seen: set[tuple[Cue, ...]], strict: bool) -> float | None:
        """The next scale whose script has not been tried, or None."""
        if not self.started:
            self.started = True
            self.scales = list(self.STEPS)
        while self.scales and scripts.resizable:
            scale = self.scales.pop(0)
            if scripts.cues(scale, strict) not in seen:
                return scale
        return None


class _Scripts:
    """The script at each content scale, each rendered once; a template that does not read
    its budget is rendered once in all, since no scale can change it."""

    def __init__(self, request: Request, kind: Kind) -> None:
        self.request = request
        self.kind = kind
        self.texts: dict[float, str] = {}
        self.fixed: str | None = None

    @property
    def resizable(self) -> bool:
        """False once a render showed that the template does not read its budget."""
        return self.fixed is None

    def cues(self, scale: float, strict: bool) -> tuple[Cue, ...]:
        """The shaped cues of the script at ``scale``."""
        text = self.fixed if self.fixed is not None else self.texts.get(scale)
        if text is None:
            rendered = script_text(self.request, self.kind, scale)
            text = self.texts[scale] = rendered.text
            if "budget" not in rendered.reads:
                self.fixed = text
        return tuple(script_cues(self.request, self.kind, scale, strict, text))


class _Estimate(NamedTuple):
    words: int
    speech_s: float
    #: The script's length with its shortest pauses, speech at the asked-for rate.
    total_s: float
    #: The same, with speech at its fastest likely rate.
    least_s: float


def _estimate(cues: Sequence[Cue], wpm: int) -> _Estimate:
    words = sum(len(c.text.split()) for c in cues if isinstance(c, Speech))
    speech_s = words / wpm * 60
    total_s = estimate_seconds(list(cues), wpm=wpm)
    return _Estimate(words, speech_s, total_s,
                     total_s - speech_s * (1 - SPEECH_SHARE_AT_FASTEST))


def _unspeakable(request: Request, kind: Kind, estimate: _Estimate) -> RequestError:
    return RequestError(
        "--minutes", f"{request.minutes:g} minutes is too short for {_describe(request, kind)}: "
        f"its script has {estimate.words:,} words, about {estimate.speech_s / 60:.1f} minutes "
        f"of speech, and needs about {estimate.total_s / 60:.1f} minutes with its shortest "
        "pauses (estimated from its words, before any speech was made). Choose a longer "
        "length, or shorten the script.")


#: A walking session says something about the surroundings at least this often (seconds);
#: reminders are placed a little earlier, so refitting cannot push them past it.
REMINDER_EVERY_S = 300.0
_REMINDER_AIM_S = 240.0


def _remind(request: Request, kind: Kind, speaker: Speaker, cues: tuple[Cue, ...],
            timeline: Timeline) -> tuple[tuple[Cue, ...], tuple[Phrase, ...], tuple[int, ...],
                                         Timeline]:
    """Put a surroundings reminder into the pauses of a walking session wherever the
    template left more than :data:`REMINDER_EVERY_S` without one, then fit again."""
    lines = [c.text for c in parse(render(kind, context(request, kind),
                                          "partials/walking-reminders.j2"))
             if isinstance(c, Speech)]
    phrases: tuple[Phrase, ...] = ()
    lengths: tuple[int, ...] = ()
    for used in range(math.ceil(timeline.total / SAMPLE_RATE / _REMINDER_AIM_S) + 4):
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
        cues = (*cues[:at], half, Speech(text, half.line), half, *cues[at + 1:])
        phrases, lengths = speaker.speak([c.text for c in cues if isinstance(c, Speech)])
        timeline = fit(cues, lengths, lambda name: chimes.length(name or request.chime,
                                                                 SAMPLE_RATE),
                       timeline.total, SAMPLE_RATE, what=_describe(request, kind))
    if _longest_unreminded(timeline) is not None:
        raise AudioguideError(f"{_describe(request, kind)}: could not place a surroundings "
                              "reminder every five minutes; the template has too few pauses.")
    if not phrases:
        phrases, lengths = speaker.speak([c.text for c in cues if isinstance(c, Speech)])
    return cues, phrases, lengths, timeline


def _longest_unreminded(timeline: Timeline) -> tuple[int, list[Placed]] | None:
    """The first stretch longer than the aim with no reminder: (its start, its pauses)."""

    marks = [0] + [e.start for e in timeline.events
                   if isinstance(e.cue, Speech) and SURROUNDINGS.search(e.cue.text)]
    marks.append(timeline.total)
    for a, b in itertools.pairwise(marks):
        if b - a > REMINDER_EVERY_S * SAMPLE_RATE * 0.95:
            pauses = [e for e in timeline.events if isinstance(e.cue, Elastic) and a < e.start < b]
            roomy = [e for e in pauses if e.length > 8 * SAMPLE_RATE]
            return a, roomy or pauses
    return None


def _rescale(scripts: _Scripts, scale: float, ratio: float, seen: set[tuple[Cue, ...]],
             strict: bool) -> float | None:
    """A budget scale, in the direction of ``ratio``, that gives a script not tried yet
    (None at once for a template that does not read its budget)."""
    step = ratio if abs(ratio - 1) > 0.05 else (0.93 if ratio < 1 else 1.07)
    for _ in range(12):
        if not scripts.resizable:
            return None
        scale *= step
        if scripts.cues(scale, strict) not in seen:
            return scale
    return None


def _describe(request: Request, kind: Kind) -> str:
    return (f"the {kind.title.lower()} session at {request.speech_rate} words per minute"
            f" ({request.pace.value} pace)")


def describe_cues(p: Plan) -> Sequence[tuple[float, str]]:
    """(start in seconds, text) for every cue, as ``preview`` shows it."""

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
