"""Words the sessions and their options share: body regions and feelings.

The templates hold what a session says; this module holds only the names a
user can pass (``--focus``, ``--feelings``) so they can be checked before any
work starts.
"""

from __future__ import annotations

#: Body regions, feet to crown, that ``--focus`` accepts and the body scan visits.
FOCUS_REGIONS: tuple[str, ...] = (
    "feet", "legs", "hips", "belly", "lower back", "chest", "upper back", "hands", "arms",
    "shoulders", "neck", "throat", "jaw", "face", "head",
)

#: Feelings offered for labelling when the listener gives none; gentle ones first.
DEFAULT_FEELINGS: tuple[str, ...] = (
    "calm", "tension", "sadness", "tiredness", "worry", "frustration", "joy", "tenderness",
)

#: An emotion wheel: core feelings with finer words, offered slowly in the check-in.
EMOTION_WHEEL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("calm", ("settled", "content", "peaceful")),
    ("joy", ("hopeful", "grateful", "proud")),
    ("sadness", ("lonely", "disappointed", "heavy")),
    ("fear", ("anxious", "worried", "unsafe")),
    ("anger", ("frustrated", "irritated", "resentful")),
    ("surprise", ("confused", "unsettled", "amazed")),
    ("tiredness", ("drained", "flat", "numb")),
    ("tenderness", ("caring", "warm", "moved")),
)

NAME_MAX = 40
INTENTION_MAX = 120
FEELING_MAX = 24
FEELINGS_MAX = 8
