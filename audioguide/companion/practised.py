"""What one week's practice log says, in the form its review speaks it."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Words of a note the review reads aloud at most; a longer one is read up to here.
NOTE_WORDS = 45


@dataclass(frozen=True)
class Practised:
    """What the log says of one week, for its review to speak."""

    #: Sessions the week holds, and of those the ones logged as done, not done, too much.
    planned: int
    done: int
    skipped: int
    too_much: int
    #: The practices done, most often first ("breath awareness", "journal prompts").
    practices: tuple[str, ...]
    #: Up to three feelings named most often, most often first.
    feelings: tuple[str, ...]
    #: The 0-10 answers in the order the sessions were practised.
    ratings: tuple[int, ...]
    #: Notes the listener allowed the review to read aloud, oldest first.
    notes: tuple[str, ...]

    @property
    def trend(self) -> str | None:
        """"rose", "fell", "varied" or "steady" for the 0-10 answers; None for fewer than
        two."""
        if len(self.ratings) < 2:
            return None
        half = len(self.ratings) // 2
        first = sum(self.ratings[:half]) / half
        last = sum(self.ratings[-half:]) / half
        if last - first >= 1.5:
            return "rose"
        if first - last >= 1.5:
            return "fell"
        return "varied" if max(self.ratings) - min(self.ratings) >= 4 else "steady"

    def speech(self) -> dict[str, object]:
        """What the review's template sees as ``practised`` (the notes made speakable, so
        no note can become markup)."""
        from audioguide.script.markup import speakable

        half = max(1, len(self.ratings) // 2)
        return {
            "planned": self.planned, "done": self.done, "skipped": self.skipped,
            "too_much": self.too_much, "practices": list(self.practices),
            "feelings": list(self.feelings), "trend": self.trend,
            "first": _around(self.ratings[:half]), "last": _around(self.ratings[-half:]),
            "lowest": min(self.ratings, default=0), "highest": max(self.ratings, default=0),
            "notes": [said for note in self.notes if (said := note_lines(speakable(note)))],
        }


def _around(ratings: tuple[int, ...]) -> int:
    return round(sum(ratings) / len(ratings)) if ratings else 0


def note_lines(note: str) -> dict[str, object] | None:
    """A note as the review reads it: its sentences as lines (a spoken line is short), up to
    :data:`NOTE_WORDS` words; ``cut`` when the note goes on beyond them."""
    lines: list[str] = []
    words = 0
    for sentence in re.split(r"(?<=[.!?])\s+", note.strip()):
        count = len(sentence.split())
        if not any(c.isalnum() for c in sentence):  # ":)", "...", an emoji: nothing to say
            if lines:
                lines[-1] += " " + sentence  # kept with the sentence it follows
            continue
        if words + count > NOTE_WORDS:
            if not lines:
                lines.append(" ".join(sentence.split()[:NOTE_WORDS]))
            return {"lines": lines, "cut": True}
        lines.append(sentence)
        words += count
    return {"lines": lines, "cut": False} if lines else None
