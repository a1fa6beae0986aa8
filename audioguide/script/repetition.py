"""What a daily listener hears again: repeated lines across a week and across weeks.

Works on the spoken lines of each session of a week, in the order they are heard
(``audioguide week --preview`` prints them). A line counts as heard again when the
same words, case and spacing aside, were spoken earlier: earlier that week (within the
same session too), or in an earlier week of the programme. Lines that speak the
listener's own intention are exempt: it is meant to return.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audioguide.script.review import rows_from_preview

_HEADER = re.compile(r"^== (.*)$")


@dataclass(frozen=True)
class Heard:
    """One session as heard: its ``== `` header and its spoken lines in order."""

    header: str
    lines: tuple[str, ...]


def key(line: str) -> str:
    """A line as compared: lower case, spacing folded."""
    return " ".join(line.lower().split())


def sessions_of(preview: str) -> list[Heard]:
    """The sessions of ``audioguide week --preview`` output, with their spoken lines."""
    sessions: list[Heard] = []
    header, chunk = None, []
    for line in [*preview.splitlines(), "== (end)"]:
        match = _HEADER.match(line)
        if match is None:
            chunk.append(line)
            continue
        if header is not None:
            rows, _ = rows_from_preview("\n".join(chunk))
            spoken = tuple(t for _, t in rows if not t.startswith(("[", "# ")))
            sessions.append(Heard(header, spoken))
        header, chunk = match[1], []
    return sessions


def _counted(lines: Iterable[str], exempt: Sequence[str]) -> list[str]:
    folded = [key(e) for e in exempt if e]
    return [key(line) for line in lines if not any(e in key(line) for e in folded)]


@dataclass(frozen=True)
class WeekFigures:
    """How much of one week a listener has heard before."""

    #: Spoken lines counted (intention lines left out).
    lines: int
    #: Share of them already heard earlier the same week.
    within_week: float
    #: Share of them heard in any earlier week (0 for the first).
    earlier_weeks: float
    #: The largest share of one session's lines found in a single earlier session of the
    #: programme, and the two sessions' headers.
    most_shared: float
    most_shared_pair: tuple[str, str]
    #: The most repeated lines of the week, with how often each is spoken.
    top: list[tuple[str, int]]


def figures(weeks: Sequence[Sequence[Heard]], exempt: Sequence[str] = ()) -> list[WeekFigures]:
    """The figures of each week, each measured against the weeks before it."""
    out = []
    before: set[str] = set()
    earlier_sessions: list[tuple[str, set[str]]] = []
    for week in weeks:
        heard: set[str] = set()
        again = from_before = total = 0
        counts: Counter[str] = Counter()
        worst, pair = 0.0, ("", "")
        for session in week:
            lines = _counted(session.lines, exempt)
            for line in lines:
                again += line in heard
                from_before += line in before
                heard.add(line)
                counts[line] += 1
            total += len(lines)
            mine = set(lines)
            for header, theirs in earlier_sessions:
                if lines:
                    shared = sum(line in theirs for line in lines) / len(lines)
                    if shared > worst:
                        worst, pair = shared, (session.header, header)
            earlier_sessions.append((session.header, mine))
        before |= heard
        out.append(WeekFigures(total, again / max(total, 1), from_before / max(total, 1),
                               worst, pair, [(t, n) for t, n in counts.most_common(10)
                                             if n > 1]))
    return out
