"""What one week's practice log says, in the form its review speaks it."""

from __future__ import annotations

import re
import unicodedata
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
    #: Up to three feelings named most often, most often first, as the listener wrote them.
    feelings: tuple[str, ...]
    #: The 0-10 answers in the order the sessions were practised.
    ratings: tuple[int, ...]
    #: Notes the listener allowed the review to read aloud, oldest first.
    notes: tuple[str, ...]
    #: Whether a feeling was named more than once ("most often" means something).
    repeated: bool = False

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
        """What the review's template sees as ``practised``: counts and answers as words
        ("sixteen", "around six"), at most three practices named, and the notes made
        speakable (no note can become markup; emoticons and emoji are not read out)."""
        from audioguide.script.markup import speakable

        half = max(1, len(self.ratings) // 2)
        notes = [said for note in self.notes if (said := note_lines(speakable(plain(note))))]
        return {
            "planned": self.planned, "done": self.done, "skipped": self.skipped,
            "too_much": self.too_much, "said": {n: words(n) for n in (
                self.planned, self.done, self.skipped, self.too_much,
                len(self.practices) - 3)},
            "practices": list(self.practices[:3]), "more_practices": len(self.practices) - 3,
            "feelings": list(self.feelings), "repeated": self.repeated, "trend": self.trend,
            "first": words(_around(self.ratings[:half])),
            "last": words(_around(self.ratings[-half:])),
            "lowest": words(min(self.ratings, default=0)),
            "highest": words(max(self.ratings, default=0)),
            "low": bool(self.ratings) and _around(self.ratings[-half:]) <= 3,
            "notes": notes,
        }


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
          "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
          "seventeen", "eighteen", "nineteen", "twenty")


def words(number: int) -> str:
    """A count as a voice says it in a sentence: "six", "twenty", 31."""
    return _WORDS[number] if 0 <= number < len(_WORDS) else str(number)


#: Emoticons a note may hold (":)", ";-(", ":D", "<3"): a voice would spell them out.
_EMOTICON = re.compile(r"(?:^|(?<=\s))(?:[:;=8][-']?[()\[\]DPpOo/\\|*]+|<3|\^_?\^)(?=\s|$)")


def plain(note: str) -> str:
    """A note without the emoji and emoticons a voice cannot say."""
    # An emoticon often ends a sentence ("Better tonight :) Still tired."): a full stop in
    # its place, unless one is there already.
    text = _EMOTICON.sub("\0", note)
    text = "".join(c for c in text if unicodedata.category(c) not in ("So", "Sk", "Cs")
                   and c not in "\ufe0f\u200d")
    text = re.sub(r"([.!?…])\s*\0", r"\1", text)
    text = re.sub(r"\s*\0", ".", text)
    return " ".join(text.split())


def _around(ratings: tuple[int, ...]) -> int:
    """The mean, rounded half up (4.5 is "around five", as 5.5 is "around six")."""
    return int(sum(ratings) / len(ratings) + 0.5) if ratings else 0


#: Where a note's sentences part: after . ! or ? and before a capital (or a quote), not
#: after an abbreviation ("Dr. Smith", "5 min. a day").
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"“'(]?[A-Z])")
_ABBREVIATION = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|St|Prof|min|mins|approx|e\.g|i\.e|etc|vs)\.$",
                           re.IGNORECASE)


def note_lines(note: str) -> dict[str, object] | None:
    """A note as the review reads it: its sentences as lines (a spoken line is short), up to
    :data:`NOTE_WORDS` words; ``cut`` when the note goes on beyond them. None for a note with
    nothing to say."""
    sentences: list[str] = []
    for piece in _SENTENCE.split(note.strip()):
        if sentences and (_ABBREVIATION.search(sentences[-1])
                          or not any(c.isalnum() for c in piece)):
            sentences[-1] += " " + piece  # "Dr." and "Smith said …" are one sentence
        elif any(c.isalnum() for c in piece):
            sentences.append(piece)
    lines: list[str] = []
    words_said = 0
    for sentence in sentences:
        count = len(sentence.split())
        if words_said + count > NOTE_WORDS:
            if not lines:  # a long first sentence: up to its last comma within the words
                head = " ".join(sentence.split()[:NOTE_WORDS])
                lines.append(head.rsplit(",", 1)[0] if "," in head else head)
            return {"lines": lines, "cut": True}
        lines.append(sentence)
        words_said += count
    return {"lines": lines, "cut": False} if lines else None
