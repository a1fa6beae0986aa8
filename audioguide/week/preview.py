"""A whole week's scripts, as ``audioguide week --preview`` prints them: no audio."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from audioguide.planning import Plan, describe_cues
from audioguide.request import SAMPLE_RATE
from audioguide.week.build import check_scripts
from audioguide.week.planfile import DAY_NAMES, WeekPlan


def session_lines(p: Plan) -> Iterator[str]:
    """A planned session's cues with their start times, then its end, as ``preview``
    prints them."""
    for start, text in describe_cues(p):
        minutes, seconds = divmod(start, 60)
        yield f"{int(minutes):02d}:{seconds:06.3f}  {text}"
    total = p.timeline.total / SAMPLE_RATE
    yield f"{int(total // 60):02d}:{total % 60:06.3f}  (end)"


def week_lines(week: WeekPlan,
               progress: Callable[[str, int, int], None] | None = None) -> list[str]:
    """Every session of ``week`` in order: a ``== `` line (week, day, date, kind, minutes),
    then exactly the lines ``audioguide preview`` prints for it; first, a ``why:`` line for
    each way the practice log changed the week. Every session is planned before anything
    is returned, so a problem stops it before any output."""
    planned: dict[int, Plan] = {}
    sessions = [s.request for s in week.sessions]
    check_scripts(week, sessions, list(range(len(sessions))), planned.__setitem__, progress)
    lines = [f"why: {change}" for change in week.changes]
    for index, session in enumerate(week.sessions):
        p, r = planned[index], session.request
        lines.append(f"== week {week.number}, day {session.day} "
                     f"({DAY_NAMES[session.date.weekday()].capitalize()} "
                     f"{session.date.isoformat()}), {r.kind}, {r.minutes:g} min")
        lines += session_lines(p)
    return lines
