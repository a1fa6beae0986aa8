"""Script markup: the text a template renders, parsed into typed cues.

The markup is line based (see ``templates/README.md``)::

    # Arriving                  a section heading (becomes a chapter)
    Let your breath settle.     a line of speech
    [pause 3]                   a fixed pause of 3 seconds
    [pause 5..]                 an elastic pause of at least 5 seconds
    [pause 5..40 weight=2]      elastic, 5 to 40 seconds, takes twice the share
    [chime] / [chime bell]      a chime (the session's own, or a named one)

A spoken line has at most :data:`MAX_LINE_WORDS` words and :data:`MAX_LINE_CHARS`
characters; control characters are dropped.

Blank lines are ignored. Two speech lines in a row get a breath between them
(:data:`SPEECH_GAP_S` here; the session shapes it by pace and position).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from audioguide.errors import TemplateError

#: Silence between two consecutive speech lines that have no pause between them.
SPEECH_GAP_S = 2.0


@dataclass(frozen=True)
class Speech:
    """One phrase to speak, rendered by the engine as one clip."""

    text: str
    line: int


@dataclass(frozen=True)
class Pause:
    """A silence of fixed length."""

    seconds: float
    line: int
    #: True for the breath the parser puts between two lines that run into each other.
    breath: bool = False


@dataclass(frozen=True)
class Elastic:
    """A silence whose length the fitter chooses, so the session is exactly as long as asked.

    The time left after speech, chimes and fixed pauses is shared among elastic pauses in
    proportion to ``weight``, never below ``min_s`` and never above ``max_s`` (when given).
    """

    min_s: float
    max_s: float | None
    weight: float
    line: int


@dataclass(frozen=True)
class Chime:
    """A chime sound; ``name`` None means the session's chosen chime."""

    name: str | None
    line: int


@dataclass(frozen=True)
class Section:
    """A section heading: where a chapter starts."""

    title: str
    line: int


Cue = Speech | Pause | Elastic | Chime | Section

_DIRECTIVE = re.compile(r"^\[\s*(?P<word>[a-z]+)(?P<args>[^\]]*)\]$")
_NUMBER = r"\d+(?:\.\d+)?"
_PAUSE_FIXED = re.compile(rf"^(?P<s>{_NUMBER})$")
_PAUSE_ELASTIC = re.compile(
    rf"^(?P<min>{_NUMBER})\s*\.\.\s*(?P<max>{_NUMBER})?(?:\s+weight\s*=\s*(?P<w>{_NUMBER}))?$"
)
_CHIME_NAME = re.compile(r"^[a-z][a-z0-9-]*$")

#: Longest fixed pause a script may ask for; longer silences should be elastic.
MAX_FIXED_PAUSE_S = 600.0
#: Longest spoken line, in words and in characters: about 50 seconds of speech. Longer
#: text is split into lines (each a clip), so no one clip grows without bound.
MAX_LINE_WORDS = 100
MAX_LINE_CHARS = 600
# Control characters cannot be spoken, and printed they could drive a terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def parse(text: str, source: str = "script") -> list[Cue]:
    """Parse rendered script text into cues; every problem is reported at once."""
    cues: list[Cue] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _CONTROL.sub("", raw.replace("\t", " ")).strip()
        if not line:
            continue
        try:
            cue = _parse_line(line, number)
        except ValueError as exc:
            shown = line if len(line) <= 80 else line[:77] + "..."
            problems.append(f"{source} line {number}: {exc} (the line reads {shown!r})")
            continue
        if isinstance(cue, Speech) and cues and isinstance(cues[-1], Speech):
            cues.append(Pause(SPEECH_GAP_S, number, breath=True))
        cues.append(cue)
    if problems:
        raise TemplateError("The script markup has problems: " + "; ".join(problems) + ".")
    if not any(isinstance(c, Speech) for c in cues):
        raise TemplateError(f"{source}: the script has no speech lines.")
    return cues


def _parse_line(line: str, number: int) -> Cue:
    if line.startswith("#"):
        title = line.lstrip("#").strip()
        if not title:
            raise ValueError("a section heading needs a title after '#'")
        return Section(title, number)
    match = _DIRECTIVE.match(line)
    if match is None:
        if line.startswith("["):
            raise ValueError("a line starting with '[' must be a whole [pause ...] or [chime]")
        words = len(line.split())
        if words > MAX_LINE_WORDS or len(line) > MAX_LINE_CHARS:
            raise ValueError(f"a spoken line can be at most {MAX_LINE_WORDS} words and "
                             f"{MAX_LINE_CHARS} characters (this one has {words:,} words and "
                             f"{len(line):,} characters); split it into shorter lines")
        if not any(unicodedata.category(c)[0] in "LN" for c in line):
            raise ValueError("a spoken line needs a letter or a digit to say (a line of "
                             "punctuation alone sounds as nothing); write words, or use "
                             "[pause 3s] for a silence")
        return Speech(line, number)
    word, args = match["word"], match["args"].strip()
    if word == "pause":
        return _parse_pause(args, number)
    if word == "chime":
        from audioguide.audio.chimes import CHIMES

        if args and not _CHIME_NAME.match(args):
            raise ValueError(f"chime name {args!r} is not a plain lowercase word")
        if args and args not in CHIMES:
            raise ValueError(f"there is no chime {args!r}; the chimes are "
                             f"{', '.join(CHIMES)}")
        return Chime(args or None, number)
    raise ValueError(f"unknown directive [{word}]; use [pause ...] or [chime]")


def _parse_pause(args: str, number: int) -> Pause | Elastic:
    fixed = _PAUSE_FIXED.match(args)
    if fixed:
        seconds = float(fixed["s"])
        if seconds > MAX_FIXED_PAUSE_S:
            raise ValueError(f"a fixed pause can be at most {MAX_FIXED_PAUSE_S:g} seconds")
        return Pause(seconds, number)
    elastic = _PAUSE_ELASTIC.match(args)
    if elastic is None:
        raise ValueError("write a pause as [pause S], [pause MIN..], [pause MIN..MAX] "
                         "or [pause MIN..MAX weight=W] with seconds as numbers")
    min_s = float(elastic["min"])
    max_s = float(elastic["max"]) if elastic["max"] else None
    weight = float(elastic["w"]) if elastic["w"] else 1.0
    if max_s is not None and max_s < min_s:
        raise ValueError(f"the pause's maximum {max_s:g} is below its minimum {min_s:g}")
    if weight <= 0:
        raise ValueError("a pause's weight must be above 0")
    return Elastic(min_s, max_s, weight, number)


def speakable(value: object) -> str:
    """Make user-typed text safe to put in a speech line.

    Newlines, brackets and '#' would otherwise become markup (a name
    containing ``[pause 9]`` is spoken as a name, not obeyed).
    """
    text = " ".join(str(value).split())
    text = text.replace("[", "(").replace("]", ")").replace("#", "")
    return " ".join(text.split())
