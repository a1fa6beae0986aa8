"""Mix a fitted timeline, any range of it at a time, so a session never sits whole in memory.

A :class:`Mixer` knows where every sound starts; ``render(a, b)`` returns
samples ``a`` to ``b`` of the session. Consecutive ranges (the way the
master streams the session through ffmpeg) touch each clip once or twice;
decoded clips are kept only while a range still needs them.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from audioguide.audio.clips import Samples
from audioguide.script.markup import Chime, Speech
from audioguide.timing import Timeline

#: Samples per block when streaming (about 1.5 s at 44.1 kHz).
BLOCK = 1 << 16


@dataclass(frozen=True)
class _Sound:
    start: int
    length: int
    #: Returns the sound's samples (decoded on demand).
    load: Callable[[], Samples]


class Mixer:
    """The session's voice layer (speech, chimes, bells), renderable by range."""

    def __init__(self, timeline: Timeline, clip: Callable[[int], Samples],
                 clip_lengths: Sequence[int], chime: Callable[[str | None], Samples],
                 extra: Sequence[tuple[int, Samples]] = ()) -> None:
        sounds: list[_Sound] = []
        speech_index = 0
        for placed in timeline.events:
            cue = placed.cue
            if isinstance(cue, Speech):
                sounds.append(_Sound(placed.start, clip_lengths[speech_index],
                                     partial(clip, speech_index)))
                speech_index += 1
            elif isinstance(cue, Chime):
                sound = chime(cue.name)
                sounds.append(_Sound(placed.start, sound.size, partial(_same, sound)))
        for start, sound in extra:
            sounds.append(_Sound(start, sound.size, partial(_same, sound)))
        sounds.sort(key=lambda s: s.start)
        self.total = timeline.total
        self._sounds = sounds
        self._starts = [s.start for s in sounds]
        self._longest = max((s.length for s in sounds), default=0)
        self._loaded: dict[int, Samples] = {}

    def sounding(self) -> list[tuple[int, int]]:
        """The stretches that hold any sound, merged, in order."""
        merged: list[tuple[int, int]] = []
        for sound in self._sounds:
            end = sound.start + sound.length
            if merged and sound.start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((sound.start, end))
        return merged

    def render(self, a: int, b: int) -> Samples:
        """Samples ``a`` (inclusive) to ``b`` (exclusive) of the voice layer."""
        out = np.zeros(b - a, dtype=np.float32)
        first = bisect.bisect_left(self._starts, a - self._longest)
        last = bisect.bisect_left(self._starts, b)
        for index in range(first, last):
            sound = self._sounds[index]
            lo, hi = max(a, sound.start), min(b, sound.start + sound.length)
            if lo >= hi:
                continue
            samples = self._loaded.get(index)
            if samples is None:
                samples = self._loaded[index] = sound.load()
            out[lo - a:hi - a] += samples[lo - sound.start:hi - sound.start]
        # Forget sounds that end before this range: ranges only move forward.
        for index in [i for i in self._loaded if self._sounds[i].start
                      + self._sounds[i].length < a - BLOCK]:
            del self._loaded[index]
        return out


def _same(samples: Samples) -> Samples:
    return samples


def ranges(total: int, block: int = BLOCK) -> Iterator[tuple[int, int]]:
    """Consecutive (a, b) ranges covering ``total`` samples."""
    for a in range(0, total, block):
        yield a, min(total, a + block)
