"""The request: everything that decides what a session says and how it sounds.

Its fields, defaults and checks come from the option schema
(:mod:`audioguide.options`); :func:`validate` checks every field at once and
then what depends on the kind (its length range, walking, the personal
options it uses).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from audioguide.errors import AudioguideError, RequestError, TooShortError
from audioguide.options import OPTIONS, PERSONAL, default, flag
from audioguide.script.templates import Kind, get_kind, kinds

if TYPE_CHECKING:
    from audioguide.companion.practised import Practised

#: Internal sample rate of every stage before encoding.
SAMPLE_RATE = 44_100

#: Called with (stage, done, total); stages: "speak", "mix", "master", "encode".
Progress = Callable[[str, int, int], None]


class Pace(enum.Enum):
    """How unhurried the voice and the pauses are."""

    NORMAL = "normal"
    SLOW = "slow"

    @property
    def rate(self) -> int:
        """Speaking rate in words per minute, as measured on the voice."""
        return {Pace.NORMAL: 120, Pace.SLOW: 100}[self]

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
    """Everything that decides what a session says and how it sounds.

    The option fields are documented in :data:`audioguide.options.OPTIONS`.
    """

    #: Session kind (a template name, see ``audioguide kinds``).
    kind: str
    #: Exact length of the finished file, in minutes.
    minutes: float
    name: str | None = default("name")
    voice: str | None = default("voice")
    #: Words per minute; None takes the pace's rate.
    rate: int | None = default("rate")
    pace: Pace = Pace.NORMAL
    walking: bool = default("walking")
    focus: tuple[str, ...] = default("focus")
    feelings: tuple[str, ...] = default("feelings")
    intention: str | None = default("intention")
    safe_person: str | None = default("safe_person")
    bell_every: float | None = default("bell_every")
    chime: str = default("chime")
    settle_s: float = default("settle_s")
    engine: str = default("engine")
    bitrate_kbps: int = default("bitrate_kbps")
    loudness_lufs: float = default("loudness_lufs")
    ambience: str = default("ambience")
    ambience_level_db: float = default("ambience_level_db")
    sample_rate_out: int = default("sample_rate_out")
    loudness_check: str = default("loudness_check")
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
    #: The session's place in the programme of weeks: the week (1 up) and its day (1-7).
    week_number: int = 1
    day: int = 1
    #: Sessions of the programme before this one (``seq``) and, of those, sessions of this
    #: kind (``turn``): a template varies its wording by the first and its content (the
    #: feeling, conversation, situation or region order) by the second.
    seq: int = 0
    turn: int = 0
    #: A local helpline the week's plan names, spoken where the review speaks of help.
    help_line: str | None = None
    #: The programme level when the practice log changed it (None: the week number's).
    level: int | None = None
    #: What the week's practice log holds, for its review to speak.
    practised: Practised | None = None

    @property
    def speech_rate(self) -> int:
        """The rate actually asked for, in words per minute."""
        return self.rate if self.rate is not None else self.pace.rate

    def kind_info(self) -> Kind:
        """The session kind this request names (or its template file's)."""
        return get_kind(self.kind, self.templates_dir, self.template_file)


def problems(request: Request) -> list[tuple[str, str]]:
    """(flag, message) for every option value the schema does not accept."""
    found: list[tuple[str, str]] = []
    for option in OPTIONS:
        value = getattr(request, option.field)
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        try:
            option.value.check(value)
        except ValueError as exc:
            found.append((option.flag, f"{exc}."))
    return found


def validate(request: Request) -> Request:
    """Check every field; report all problems together, each naming its option. Returns
    the request with its text options cleaned (white space folded, feelings lower case)."""
    found = problems(request)
    if len(found) == 1:
        raise RequestError(*found[0])
    if found:
        raise AudioguideError(f"{len(found)} options have values that are not accepted. "
                              + " ".join(f"{name}: {text}" for name, text in found))
    kind = request.kind_info()
    unused = [o for o in PERSONAL if getattr(request, o) and o not in kind.uses]
    if unused:
        users = [k.name for k in kinds(request.templates_dir).values() if unused[0] in k.uses]
        others = f" (nor {', '.join(flag(o) for o in unused[1:])})" if unused[1:] else ""
        raise RequestError(flag(unused[0]), f"the {kind.title.lower()} session does not use "
                           f"it{others}; leave it out, or choose a kind that uses "
                           f"{flag(unused[0])}: {', '.join(users)}.")
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
    from audioguide.tts.auto import resolve_engine

    return replace(
        request,
        engine=resolve_engine(request.engine, request.voice),
        name=_clean(request.name),
        intention=_clean(request.intention),
        safe_person=_clean(request.safe_person),
        feelings=tuple(" ".join(w.lower().split()) for w in request.feelings),
    )


def _clean(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split())
