"""The script of a session: the template's context, and the cues it renders to, shaped.

What a template sees (:func:`context`), the budget it sizes its content by, and
:func:`script_cues`: render, parse, then shape the silences (settle time, a
breath between lines, pace, pauses that deepen towards the closing within a
ceiling that grows with the session's length).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from audioguide.script import vocabulary
from audioguide.script.markup import (
    SPEECH_GAP_S,
    Chime,
    Cue,
    Elastic,
    Pause,
    Section,
    Speech,
    parse,
    speakable,
)
from audioguide.script.sandbox import Rendered
from audioguide.script.templates import Kind, render_script

if TYPE_CHECKING:
    from audioguide.request import Request


def _speakable(text: str | None) -> str | None:
    return None if text is None else speakable(text) or None


def _person(text: str | None) -> str | None:
    spoken = _speakable(text)
    return None if spoken is None else vocabulary.person(spoken)


def context(request: Request, kind: Kind) -> dict[str, Any]:
    """What a template sees."""
    return {
        "minutes": request.minutes,
        "budget": budget(request),
        "own_feelings": bool(request.feelings),
        "seconds": request.minutes * 60,
        # Typed text is made speakable here, so no template can let it become markup.
        "name": _speakable(request.name),
        "walking": request.walking or kind.always_walking,
        "pace": request.pace.value,
        "kind": kind.name,
        "title": kind.title,
        "focus": list(request.focus),
        "feelings": [vocabulary.feeling(speakable(f)) for f in request.feelings
                     or vocabulary.default_feelings(request.seq + listener_offset(request.name))],
        "intention": _speakable(request.intention),
        "safe_person": _person(request.safe_person),
        "regions": list(vocabulary.FOCUS_REGIONS),
        "wheel": [[core, list(fine)] for core, fine in vocabulary.EMOTION_WHEEL],
        # The session's place in the programme of weeks (templates/programme/README.md).
        "week_number": request.week_number,
        "level": request.level or min(request.week_number, LEVELS),
        # What the week's practice log holds (for the review), None without one.
        "practised": request.practised.speech() if request.practised else None,
        "day": request.day,
        "turn": request.turn,
        "seq": request.seq + listener_offset(request.name),
        "help_line": _speakable(request.help_line),
    }


#: Levels of the programme: week 4 and later practise at the most advanced.
LEVELS = 4


def listener_offset(name: str | None) -> int:
    """A small number fixed by the listener's name, so two listeners of one week hear
    their sessions' wordings in different orders (and a rebuild hears the same)."""
    if not name:
        return 0
    folded = " ".join(name.lower().split()).encode()
    return int.from_bytes(hashlib.sha256(folded).digest()[:4], "big") % 997


def budget(request: Request) -> float:
    """The minutes a template sizes its content by: the time there is to practise.

    It shrinks when the voice is slower: a ``--rate`` below the pace's, like the slow
    pace, says fewer words, so the room after each instruction is kept; a faster rate
    says no more (the time it frees goes into the pauses).
    """
    scale = request.pace.content_scale
    if request.rate is not None and request.rate < request.pace.rate:
        # A slower voice says less, as the slow pace does (100 of 120 words a minute keeps
        # 0.85 of the content), so its instructions keep their room.
        scale *= (request.rate / request.pace.rate) ** 0.9
    return request.minutes * scale


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


def script_text(request: Request, kind: Kind, content_scale: float = 1.0) -> Rendered:
    """The template rendered for ``request``, with its content budget times
    ``content_scale``, and the names it looked up (whether it reads ``budget`` at all)."""
    ctx = context(request, kind)
    ctx["budget"] *= content_scale
    return render_script(kind, ctx)


def script_cues(request: Request, kind: Kind, content_scale: float = 1.0,
                strict: bool = True, text: str | None = None) -> list[Cue]:
    """Render and parse the script, then shape its silences: settle time, a breath between
    lines, pace, and pauses that deepen towards the closing within the kind's ceiling.

    ``content_scale`` multiplies the content budget the template sees. ``strict`` False
    lets every pause reach the kind's own cap (for a template whose content cannot grow).
    ``text`` is the rendered script, when the caller has it already.
    """
    if text is None:
        text = script_text(request, kind, content_scale).text
    cues = parse(text, source=str(kind.path))
    if kind.plain:
        # A plain script's lines are the whole practice: the time between them is elastic.
        cues = [Elastic(SPEECH_GAP_S, None, 1.0, c.line) if isinstance(c, Pause) and c.breath
                else c for c in cues]
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
