"""``audioguide check``: validate a template without making audio.

Reads the header, parses the Jinja, renders the script at several lengths
(walking and not, where the template says it is walking-safe), parses the
markup, estimates the shortest and longest length the script can fill from
its word count at the default pace, and lints walking-safe templates for
instructions that are unsafe on a walk. Every problem is collected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from audioguide.audio import chimes
from audioguide.errors import AudioguideError
from audioguide.script.markup import Chime, Cue, Elastic, Pause, Speech

#: Instructions that are unsafe while walking.
EYES_CLOSED = re.compile(
    r"close your eyes|closing your eyes|eyes closed|let your eyes close|eyes (?:are|fall) shut"
    r"|lie down|lying down|stop noticing|shut out|tune out", re.IGNORECASE)
#: Words per minute assumed for the estimates (the default rate).
ESTIMATE_WPM = 120


@dataclass
class Report:
    """What ``check`` found in one template."""

    path: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def lines(self) -> list[str]:
        """The report as lines of text."""
        if self.ok:
            return [f"{self.path}: ok" + (f" ({'; '.join(self.notes)})" if self.notes else "")]
        return [f"{self.path}: {problem}" for problem in self.problems]


def estimate_seconds(cues: list[Cue], longest: bool = False, wpm: float = ESTIMATE_WPM) -> float:
    """The script's length from its word count at ``wpm`` words per minute, with every
    elastic pause at its minimum (or, with ``longest``, at its maximum)."""
    total = 0.0
    for cue in cues:
        if isinstance(cue, Speech):
            total += len(cue.text.split()) / wpm * 60
        elif isinstance(cue, Pause):
            total += cue.seconds
        elif isinstance(cue, Elastic):
            total += (cue.max_s or 0.0) if longest else cue.min_s
        elif isinstance(cue, Chime):
            total += chimes.CHIMES.get(cue.name or chimes.DEFAULT_CHIME,
                                       chimes.CHIMES[chimes.DEFAULT_CHIME]).seconds
    return total


def check_template(path: Path) -> Report:
    """Check the template at ``path``; never raises for a problem in the template."""
    from audioguide.request import Request
    from audioguide.script.context import script_cues
    from audioguide.script.sandbox import compile_template
    from audioguide.script.templates import read_kind

    report = Report(path)
    try:
        kind = read_kind(path)
    except AudioguideError as exc:
        text = exc.message.removeprefix(f"{path}: ").removeprefix(f"{path} ").rstrip(".")
        report.problems += [part + "." for part in text.split("; ")]
        return report
    try:
        compile_template(kind.search_path, path.name, path)
    except AudioguideError as exc:
        report.problems.append(exc.message.removeprefix(f"{path}: ").removeprefix(f"{path} "))
        return report
    lengths = sorted({kind.min_minutes, min(max(10.0, kind.min_minutes), kind.max_minutes),
                      kind.max_minutes})
    if kind.plain:
        # No header to correct: say what was assumed and what the script can fill instead.
        lengths = [kind.min_minutes]
        report.notes.append(
            f"no header, so defaults were used: title {kind.title!r}, min_minutes "
            f"{kind.min_minutes:g}, max_minutes {kind.max_minutes:g}, max_silence "
            f"{kind.max_silence_s:g}, walking_safe no; lines without a pause between them get "
            "an elastic one")
    shortest = None
    for walking in ([False, True] if kind.walking_safe else [False]):
        for minutes in lengths:
            request = Request(kind.name, minutes, walking=walking, template_file=path)
            label = f"at {minutes:g} min{' walking' if walking else ''}"
            try:
                cues = script_cues(request, kind, strict=False)
            except AudioguideError as exc:
                message = exc.message.removeprefix(f"{path}: ").removeprefix(f"{path} ")
                report.problems.append(f"{label}: {message}")
                continue
            need = estimate_seconds(cues) / 60
            room = estimate_seconds(cues, longest=True) / 60
            if minutes == kind.min_minutes and not walking:
                shortest = need
            if kind.plain:
                report.notes.append(f"it can fill about {need:.1f} to {room:.1f} minutes")
                continue
            if need > minutes + 0.05:
                report.problems.append(
                    f"{label}: the script needs about {need:.1f} minutes at {ESTIMATE_WPM} "
                    "words per minute; shorten it there or raise min_minutes.")
            if room < minutes - 0.05:
                report.problems.append(
                    f"{label}: the script can fill only about {room:.1f} minutes with its "
                    "pauses at their longest; add content for longer sessions or lower "
                    "max_minutes.")
            if walking or kind.always_walking:
                for cue in cues:
                    if isinstance(cue, Speech) and EYES_CLOSED.search(cue.text):
                        report.problems.append(
                            f"{label}: script line {cue.line} is unsafe on a walk "
                            f"({cue.text!r}); wrap it in {{% if not walking %}}.")
    if shortest is not None and not kind.plain:
        report.notes.append(f"estimated shortest length {shortest:.1f} min at the default pace")
    return report
