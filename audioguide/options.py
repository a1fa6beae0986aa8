"""The option schema: every session option once, with its type, default, range and help.

The command line's options, the plan files' keys and their type checks, the
validation of a :class:`~audioguide.request.Request`, its recipe and the
README's options table are all made from :data:`OPTIONS`, so they cannot
disagree. Each kind of value is a small class with ``check``, in the spirit of
mkdocs' ``config_options``: it returns the value it accepts, or raises
:class:`ValueError` with a sentence saying what would be accepted.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioguide.script.vocabulary import (
    FEELING_MAX,
    FEELINGS_MAX,
    FOCUS_REGIONS,
    INTENTION_MAX,
    NAME_MAX,
)


class Value:
    """A kind of option value."""

    #: What a plan file holds for it, for the type error ("a number").
    plan_type = "text"

    def check(self, value: Any) -> Any:
        """The accepted value, or ValueError naming what would be accepted."""
        return value

    def describe(self) -> str:
        """The accepted values, for help and the README."""
        return ""

    def from_plan(self, value: Any) -> Any:
        """A plan file's TOML value as this option's value (type errors raise ValueError)."""
        if not isinstance(value, str):
            raise ValueError(f"{value!r} should be {self.plan_type}")
        return value


@dataclass(frozen=True)
class Number(Value):
    """A number within ``low`` .. ``high`` (a whole one when ``whole``)."""

    low: float
    high: float
    unit: str = ""
    whole: bool = False
    #: ``low`` itself is refused (a length must be above 0).
    above: bool = False

    @property
    def plan_type(self) -> str:  # type: ignore[override]
        return "a whole number" if self.whole else "a number"

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number; give {self.describe()}")
        unit = f" {self.unit}" if self.unit else ""
        if math.isfinite(value) and self.whole and value != int(value):
            raise ValueError(f"{value:g} is not a whole number; give {self.describe()}")
        if not math.isfinite(value) or not self.low <= value <= self.high or (
                self.above and value == self.low):
            raise ValueError(f"{value:g}{unit} is outside what is accepted: {self.describe()}")
        return int(value) if self.whole else float(value)

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.above:
            return f"above {self.low:g} and at most {self.high:g}{unit}"
        return f"{self.low:g} to {self.high:g}{unit}"

    def from_plan(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                self.whole and not isinstance(value, int)):
            raise ValueError(f"{value!r} should be {self.plan_type}")
        return value


@dataclass(frozen=True)
class Choice(Value):
    """One of a few values, listed by ``source`` where they are defined (looked up only
    when needed, so that the command line starts without importing the audio code)."""

    source: Callable[[], tuple[Any, ...]]
    #: The type of the values (what the command line converts to).
    type: type = str

    @property
    def choices(self) -> tuple[Any, ...]:
        """The values offered."""
        return self.source()

    def check(self, value: Any) -> Any:
        if value not in self.choices:
            raise ValueError(f"{value!r} is not offered; choose one of {self.describe()}")
        return value

    def describe(self) -> str:
        return ", ".join(str(c) for c in self.choices)

    def from_plan(self, value: Any) -> Any:
        if not isinstance(value, type(self.choices[0])) or isinstance(value, bool):
            raise ValueError(f"{value!r} should be one of {self.describe()}")
        return value


#: Characters that reorder how text is shown (a title could hide what it says).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Text(Value):
    """A short piece of text, white space folded."""

    limit: int
    #: Spoken aloud: it must have a letter or a digit to say.
    spoken: bool = True

    def check(self, value: Any) -> Any:
        cleaned = " ".join(str(value).split())
        if not cleaned:
            raise ValueError("the text is empty; leave the option out instead")
        if any(unicodedata.category(c) == "Cs" for c in cleaned):
            raise ValueError("it holds bytes that are not valid text (not UTF-8); type it "
                             "again in UTF-8, or leave the option out")
        if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in cleaned):
            raise ValueError("it holds control characters (such as ESC, NUL or a text "
                             "direction override), which no file or voice can carry; give "
                             "plain text")
        if self.spoken and not any(unicodedata.category(c)[0] in "LN" for c in cleaned):
            raise ValueError(f"{cleaned!r} has no letters or digits to speak; leave the "
                             "option out instead")
        if len(cleaned) > self.limit:
            raise ValueError(f"{len(cleaned)} characters is too long; at most {self.limit}")
        return cleaned

    def describe(self) -> str:
        return f"text, at most {self.limit} characters"


@dataclass(frozen=True)
class Words(Value):
    """A comma-separated list of words (a list in a plan file)."""

    most: int
    known: tuple[str, ...] = ()
    word_limit: int = FEELING_MAX

    plan_type = 'a list of words, such as ["calm", "worry"]'

    def check(self, value: Any) -> Any:
        words = tuple(" ".join(str(w).lower().split()) for w in value)
        if len(words) > self.most:
            raise ValueError(f"{len(words)} words is too many; at most {self.most}")
        if self.known:
            unknown = [w for w in words if w not in self.known]
            if unknown:
                raise ValueError(f"unknown {', '.join(map(repr, unknown))}; known: "
                                 f"{', '.join(self.known)}")
        for word in words:
            if not re.fullmatch(r"[a-z][a-z' -]*", word) or len(word) > self.word_limit:
                raise ValueError(f"{word!r} is not a word; give words of letters only, each at "
                                 f"most {self.word_limit} characters, separated by commas, "
                                 "such as 'calm,sadness,worry'")
        return words

    def describe(self) -> str:
        return ", ".join(self.known) if self.known else f"up to {self.most} words"

    def from_plan(self, value: Any) -> Any:
        if isinstance(value, str):
            return split_words(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{value!r} should be {self.plan_type}")
        return tuple(value)


@dataclass(frozen=True)
class Flag(Value):
    """On or off."""

    plan_type = "true or false"

    def check(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} should be true or false")
        return value

    def describe(self) -> str:
        return "a flag (true or false in a plan)"

    def from_plan(self, value: Any) -> Any:
        return self.check(value)


@dataclass(frozen=True)
class Folder(Value):
    """A path (checked where it is used)."""

    def check(self, value: Any) -> Any:
        return Path(value)


def split_words(value: str) -> tuple[str, ...]:
    """'shoulders, jaw' -> ('shoulders', 'jaw')."""
    return tuple(" ".join(w.split()).lower() for w in value.split(",") if w.strip())


@dataclass(frozen=True)
class Option:
    """One session option: a :class:`Request` field, its flag, plan key, type and help."""

    #: The Request field.
    field: str
    #: The command-line flag ("" for none).
    flag: str
    #: The plan-file key ("" when plans do not set it).
    key: str
    value: Value
    default: Any
    help: str
    #: A personal option: a kind's ``uses:`` decides whether it is accepted.
    personal: bool = False
    #: Given on ``build`` (and plans), not ``preview``: it changes the file, not the script.
    output: bool = False


def _chimes() -> tuple[str, ...]:
    from audioguide.audio.chimes import CHIMES

    return tuple(CHIMES)


def _ambiences() -> tuple[str, ...]:
    from audioguide.audio.ambience import AMBIENCES

    return AMBIENCES


def _engines() -> tuple[str, ...]:
    from audioguide.tts import AUTO, ENGINES

    return (AUTO, *ENGINES)


def _paces() -> tuple[str, ...]:
    return ("normal", "slow")


def _checks() -> tuple[str, ...]:
    return ("fail", "warn")


def _sample_rates() -> tuple[int, ...]:
    return (32_000, 44_100, 48_000)


#: Every session option, in the order help and the README list them.
OPTIONS: tuple[Option, ...] = (
    Option("minutes", "--minutes", "minutes", Number(0.0, 90.0, "minutes", above=True), None,
           "Exact length in minutes; decimals allowed (7.5); from the kind's minimum to 90."),
    Option("name", "--name", "name", Text(NAME_MAX), None,
           "The listener's name, used at the greeting and the close."),
    Option("focus", "--focus", "focus", Words(len(FOCUS_REGIONS), FOCUS_REGIONS), (),
           "Body regions to dwell on, comma-separated.", personal=True),
    Option("feelings", "--feelings", "feelings", Words(FEELINGS_MAX), (),
           "Feeling words, nouns or adjectives, comma-separated (every one is spoken).",
           personal=True),
    Option("intention", "--intention", "intention", Text(INTENTION_MAX), None,
           "One sentence the session returns to.", personal=True),
    Option("safe_person", "--safe-person", "safe_person", Text(NAME_MAX), None,
           "Someone you feel safe with, for the rehearsals.", personal=True),
    Option("walking", "--walking", "walking", Flag(), False,
           "For a walk: eyes open, and a surroundings reminder at least every 5 minutes."),
    Option("pace", "--pace", "pace", Choice(_paces), "normal",
           "slow: about 100 words per minute instead of 120, fewer words, longer pauses."),
    Option("voice", "--voice", "voice", Text(200, spoken=False), None,
           "Voice id or name (see 'audioguide voices')."),
    Option("rate", "--rate", "rate", Number(80, 260, "words per minute", whole=True), None,
           "Speaking rate in words per minute, measured on the voice (default: the pace's)."),
    Option("engine", "--engine", "engine", Choice(_engines), "auto",
           "Speech engine. auto: the best-sounding one installed, by measurement, the faster "
           "among equals: hibari (in every install), else Piper or Kokoro with an English "
           "voice, else pyttsx3 (espeak-ng)."),
    Option("bell_every", "--bell-every", "bell_every", Number(1, 30, "minutes"), None,
           "Minutes between soft interval bells, rung inside pauses."),
    Option("chime", "--chime", "chime", Choice(_chimes), "bowl",
           "The chime that opens, separates and closes sections."),
    Option("settle_s", "--settle", "settle", Number(0, 60, "seconds"), 3.0,
           "Seconds of silence before the first sound."),
    Option("ambience", "--ambience", "ambience", Choice(_ambiences), "none",
           "Background bed.", output=True),
    Option("ambience_level_db", "--ambience-level", "ambience_level", Number(-40, -6, "dB"),
           -20.0, "The bed's level relative to the voice.", output=True),
    Option("bitrate_kbps", "--bitrate", "bitrate", Number(48, 128, "kbit/s", whole=True), 64,
           "Constant MP3 bitrate.", output=True),
    Option("loudness_lufs", "--loudness", "loudness", Number(-30, -10, "LUFS"), -19.0,
           "Integrated loudness target.", output=True),
    Option("sample_rate_out", "--sample-rate", "sample_rate",
           Choice(_sample_rates, int), 44_100, "MP3 sample rate in Hz.", output=True),
    Option("loudness_check", "--loudness-check", "loudness_check", Choice(_checks), "fail",
           "A file more than 1 LU from the loudness target, or above -1.5 dBTP true peak: "
           "fail (nothing published) or warn.", output=True),
)

BY_FIELD: dict[str, Option] = {o.field: o for o in OPTIONS}
BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS if o.key}
#: Personal options, in the order an error names them.
PERSONAL: tuple[str, ...] = tuple(o.field for o in OPTIONS if o.personal)


def default(field: str) -> Any:
    """The schema's default for a Request field."""
    return BY_FIELD[field].default


def flag(field: str) -> str:
    """The command-line flag of a Request field ("--safe-person")."""
    return BY_FIELD[field].flag


def options_table(options: Sequence[Option] = OPTIONS) -> str:
    """The README's options table (Markdown), from the schema."""
    rows = ["| option | meaning | accepted | default |", "| --- | --- | --- | --- |"]
    for o in options:
        if not o.flag:
            continue
        shown = "off" if o.default is False else (
            "none" if o.default in (None, ()) else f"{o.default:g}" if isinstance(
                o.default, float) else str(o.default))
        accepted = o.value.describe() or "text"
        where = " On `build` only." if o.output else ""
        rows.append(f"| `{o.flag}` | {o.help}{where} | {accepted} | {shown} |")
    return "\n".join(rows) + "\n"
