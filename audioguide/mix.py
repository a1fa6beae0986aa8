"""Mix a fitted timeline into one pre-allocated buffer of samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from audioguide.clips import Samples
from audioguide.script import Chime, Speech
from audioguide.timing import Timeline


def mix(timeline: Timeline, clips: Sequence[Samples],
        chime: Callable[[str | None], Samples],
        extra: Sequence[tuple[int, Samples]] = ()) -> Samples:
    """Place every speech clip and chime, and any ``extra`` (start, sound), in one buffer."""
    out = np.zeros(timeline.total, dtype=np.float32)
    speech = iter(clips)
    for placed in timeline.events:
        if isinstance(placed.cue, Speech):
            clip = next(speech)
            out[placed.start:placed.start + clip.size] = clip
        elif isinstance(placed.cue, Chime):
            sound = chime(placed.cue.name)
            end = min(out.size, placed.start + sound.size)
            out[placed.start:end] += sound[:end - placed.start]
    for start, sound in extra:
        end = min(out.size, start + sound.size)
        out[start:end] += sound[:end - start]
    return out
