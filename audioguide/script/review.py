"""Script statistics: how a session reads and breathes, measured on its preview.

Everything here works on preview rows, ``(start in seconds, text)`` as
``audioguide preview`` prints them, so the figures describe what a listener
hears, not what the template meant: repeated lines, speaking rate, the room
after each line, whether silences deepen, the closing's length, how far apart
walking reminders are, and lint on the spoken text.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from audioguide.script.vocabulary import EMOTION_WHEEL, FEELING_FORMS, SURROUNDINGS, WALKING_ONLY

Row = tuple[float, str]

_PREVIEW_ROW = re.compile(r"^(\d+):(\d+(?:\.\d+)?)  (.*)$")
_ADJECTIVES = frozenset(FEELING_FORMS.values()) | {w for _, fine in EMOTION_WHEEL for w in fine
                                                   if w not in FEELING_FORMS}


def rows_from_preview(text: str) -> tuple[list[Row], float]:
    """Parse ``audioguide preview`` output into rows and the total length (the ``(end)`` row)."""
    rows: list[Row] = []
    total = 0.0
    for line in text.splitlines():
        match = _PREVIEW_ROW.match(line)
        if match is None:
            continue
        start = int(match[1]) * 60 + float(match[2])
        if match[3] == "(end)":
            total = start
        else:
            rows.append((start, match[3]))
    return rows, total


def _is_speech(text: str) -> bool:
    return not (text.startswith("[") or text.startswith("# "))


@dataclass
class Stats:
    """Figures for one previewed session."""

    lines: int
    distinct: float
    repeated: float
    words_per_minute: float
    longest_silence: float
    #: Silence after each spoken line before the next sound, in seconds.
    gaps: list[float]
    #: Mean of the pauses of 5 s or more: last third of the practice over the first.
    deepening: float
    closing_s: float
    #: Longest stretch with no surroundings reminder (walking), else 0.
    reminder_gap: float
    #: Time from the end of each spoken line to the start of the next one, in seconds.
    line_gaps: list[float] = field(default_factory=list)
    #: (line, seconds of room after it) for each line that asks to recall a moment.
    after_recall: list[tuple[str, float]] = field(default_factory=list)
    lint: list[str] = field(default_factory=list)

    @property
    def shortest_gap(self) -> float:
        """The least room after any spoken line before the next sound."""
        return min(self.gaps, default=0.0)

    @property
    def shortest_line_gap(self) -> float:
        """The least time between two spoken lines."""
        return min(self.line_gaps, default=0.0)


#: A line that asks the listener to recall a moment (which takes time to do).
RECALL = re.compile(r"\b(bring to mind|call to mind|think (?:back )?(?:of|to) a|recall a|"
                    r"remember a (?:time|moment|conversation))\b", re.IGNORECASE)


def measure(rows: Sequence[Row], total: float, walking: bool = False,
            own_words: bool = True) -> Stats:
    """The statistics of one session's preview rows."""
    ordered = sorted(rows, key=lambda r: r[0])
    ends = [start for start, _ in ordered[1:]] + [total]
    speech = [(s, e, t) for (s, t), e in zip(ordered, ends, strict=True) if _is_speech(t)]
    texts = [t for _, _, t in speech]
    seen: set[str] = set()
    repeats = 0
    for text in texts:
        repeats += text in seen
        seen.add(text)
    words = sum(len(t.split()) for t in texts)
    speaking = sum(e - s for s, e, _ in speech)
    sounds = [(s, e) for (s, t), e in zip(ordered, ends, strict=True)
              if _is_speech(t) or t.startswith("[chime") or t == "[interval bell]"]
    silences = _silences(sounds, total)
    gaps = [_next_sound(sounds, e) - e for _, e, _ in speech[:-1]]
    heads = [s for s, t in ordered if t.startswith("# ")]
    closing = heads[-1] if len(heads) > 1 else total
    return Stats(
        lines=len(texts),
        distinct=len(seen) / max(len(texts), 1),
        repeated=repeats / max(len(texts), 1),
        words_per_minute=words / speaking * 60 if speaking else 0.0,
        longest_silence=max((b - a for a, b in silences), default=0.0),
        gaps=gaps,
        deepening=_deepening(silences, closing),
        closing_s=total - closing,
        reminder_gap=_reminder_gap(speech, total) if walking else 0.0,
        line_gaps=[b[0] - a[1] for a, b in itertools.pairwise(speech)],
        after_recall=[(a[2], b[0] - a[1]) for a, b in itertools.pairwise(speech)
                      if RECALL.search(a[2])],
        lint=lint(texts, walking=walking, own_words=own_words),
    )


def _silences(sounds: list[tuple[float, float]], total: float) -> list[tuple[float, float]]:
    out = []
    position = 0.0
    for start, end in sounds:
        if start - position > 0.05:
            out.append((position, start))
        position = max(position, end)
    if total - position > 0.05:
        out.append((position, total))
    return out


def _next_sound(sounds: list[tuple[float, float]], after: float) -> float:
    return min((s for s, _ in sounds if s >= after - 1e-6), default=after)


def _deepening(silences: list[tuple[float, float]], closing: float) -> float:
    """Mean long pause (5 s or more) in the last third before the closing, over the first."""
    third = closing / 3
    first = [b - a for a, b in silences if b - a >= 5 and a < third]
    last = [b - a for a, b in silences if b - a >= 5 and 2 * third <= a < closing]
    if not first or not last:
        return 0.0
    return statistics.mean(last) / statistics.mean(first)


def _reminder_gap(speech: list[tuple[float, float, str]], total: float) -> float:
    marks = [0.0] + [s for s, _, t in speech if SURROUNDINGS.search(t)] + [total]
    return max(b - a for a, b in itertools.pairwise(marks))


_DOUBLED = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)
_MARKUP = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}|\[|\]|\bNone\b|\bundefined\b")
_NOTICING = re.compile(r"\b(?:noticing|I notice|notice)\s+([a-z]+)\s*[.,;:!?]", re.IGNORECASE)


def lint(texts: Sequence[str], walking: bool = False, own_words: bool = True) -> list[str]:
    """What reads wrong in spoken lines: doubled words, leftover markup, an adjective used as
    a noun ("noticing tired"), an unfinished sentence, walking words in a seated session,
    and an offer of "your own words" when the listener gave none."""
    found = []
    for text in dict.fromkeys(texts):
        doubled = _DOUBLED.search(text)
        if doubled and doubled[1].lower() not in {"that", "had", "very", "far"}:
            found.append(f"doubled word {doubled[0]!r}: {text}")
        if _MARKUP.search(text):
            found.append(f"markup or template syntax: {text}")
        for word in _NOTICING.findall(text):
            if word.lower() in _ADJECTIVES and word.lower() not in FEELING_FORMS:
                found.append(f"adjective {word!r} used as a noun: {text}")
        if not text.rstrip().endswith((".", "?", "!", ":", "…", '"', "'", "”")):
            found.append(f"no closing punctuation: {text}")
        if not walking and WALKING_ONLY.search(text):
            found.append(f"walking words in a seated session: {text}")
        if not own_words and re.search(r"\byour own words\b.*:", text):
            found.append(f"offers the listener's own words, but none were given: {text}")
    return found
