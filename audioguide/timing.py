"""Fit a script to an exact length: every pause gets its length in samples.

Speech clips, chimes and fixed pauses have known lengths; the time left is
shared among the elastic pauses by weight (water-filling: a pause that reaches
its maximum stops growing and the rest share what remains). The result is an
integer number of samples per cue that adds up exactly to the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audioguide.errors import TooLongError, TooShortError
from audioguide.script.markup import Chime, Cue, Elastic, Pause, Section, Speech


@dataclass(frozen=True)
class Placed:
    """A cue placed on the timeline: it starts at ``start`` and lasts ``length`` samples."""

    start: int
    length: int
    cue: Cue


@dataclass(frozen=True)
class Timeline:
    """Every cue of a session at its sample position; ``total`` is the exact length."""

    total: int
    sample_rate: int
    events: tuple[Placed, ...]

    def seconds(self, samples: int) -> float:
        """Convert a sample count on this timeline to seconds."""
        return samples / self.sample_rate


def fit(
    cues: Sequence[Cue],
    speech_lengths: Sequence[int],
    chime_length: Callable[[str | None], int],
    target: int,
    sample_rate: int,
    what: str = "this session",
) -> Timeline:
    """Place every cue so that the session lasts exactly ``target`` samples.

    ``speech_lengths`` gives the length of each :class:`Speech` cue's clip, in
    order. Raises :class:`TooShortError` when even the shortest pauses do not
    fit, :class:`TooLongError` when the elastic pauses cannot stretch far enough.
    """
    speech_iter = iter(speech_lengths)
    fixed: list[float | None] = []
    elastic: list[Elastic] = []
    for cue in cues:
        if isinstance(cue, Speech):
            fixed.append(float(next(speech_iter)))
        elif isinstance(cue, Pause):
            fixed.append(cue.seconds * sample_rate)
        elif isinstance(cue, Chime):
            fixed.append(float(chime_length(cue.name)))
        elif isinstance(cue, Section):
            fixed.append(0.0)
        else:
            fixed.append(None)
            elastic.append(cue)
    fixed_total = sum(x for x in fixed if x is not None)
    shares = _share(elastic, target - fixed_total, sample_rate, fixed_total, target, what)

    share_iter = iter(shares)
    exact = [x if x is not None else next(share_iter) for x in fixed]
    lengths = _round_preserving_sum(exact, target)
    events: list[Placed] = []
    position = 0
    for cue, length in zip(cues, lengths, strict=True):
        events.append(Placed(position, length, cue))
        position += length
    return Timeline(total=position, sample_rate=sample_rate, events=tuple(events))


def _share(
    elastic: list[Elastic],
    free: float,
    rate: int,
    fixed_total: float,
    target: int,
    what: str,
) -> list[float]:
    mins = [e.min_s * rate for e in elastic]
    maxs = [math.inf if e.max_s is None else e.max_s * rate for e in elastic]
    if free < sum(mins) - 0.5:
        raise TooShortError(target / rate, (fixed_total + sum(mins)) / rate, what)
    alloc = list(mins)
    extra = free - sum(mins)
    active = [i for i in range(len(elastic)) if maxs[i] > mins[i]]
    while extra > 1e-6 and active:
        per_weight = extra / sum(elastic[i].weight for i in active)
        capped = [i for i in active if alloc[i] + per_weight * elastic[i].weight >= maxs[i]]
        if not capped:
            for i in active:
                alloc[i] += per_weight * elastic[i].weight
            extra = 0.0
            break
        for i in capped:
            extra -= maxs[i] - alloc[i]
            alloc[i] = maxs[i]
            active.remove(i)
    if extra > 0.5:
        raise TooLongError(target / rate, (fixed_total + sum(maxs)) / rate, what)
    return alloc


def _round_preserving_sum(values: Sequence[float], total: int) -> list[int]:
    """Round each value down, then give the missing samples to the largest remainders."""
    floors = [math.floor(v) for v in values]
    missing = total - sum(floors)
    order = sorted(range(len(values)), key=lambda i: values[i] - floors[i], reverse=True)
    for i in order[: max(missing, 0)]:
        floors[i] += 1
    return floors


def interval_bells(timeline: Timeline, every: int, bell_length: int, margin: int) -> list[int]:
    """Start positions of bells every ``every`` samples, each inside a pause with room for it.

    A bell rings at its mark if a pause there can hold it (with ``margin`` of
    silence either side), otherwise early in the next pause that can; it never
    overlaps speech or a chime, and none rings in the last stretch of the session.
    """
    silences = [p for p in timeline.events if isinstance(p.cue, Pause | Elastic)
                and p.length >= bell_length + 2 * margin]
    bells: list[int] = []
    mark = every
    while mark < timeline.total - bell_length - margin:
        for pause in silences:
            start = max(mark, pause.start + margin, bells[-1] + bell_length if bells else 0)
            if start + bell_length + margin <= pause.start + pause.length:
                bells.append(start)
                break
        else:
            break
        mark = max(mark + every, bells[-1] + every // 2)
    return bells
