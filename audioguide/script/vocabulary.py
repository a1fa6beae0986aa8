"""Words the sessions and their options share: body regions and feelings.

The templates hold what a session says; this module holds the names a user
can pass (``--focus``, ``--feelings``), so they can be checked before any work
starts, and the grammar a template needs to speak them correctly: a feeling's
noun and adjective forms, a region's pronoun, and which feelings the source
texts associate with which region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Body regions, feet to crown, that ``--focus`` accepts and the body scan visits.
FOCUS_REGIONS: tuple[str, ...] = (
    "feet", "legs", "hips", "belly", "lower back", "chest", "upper back", "hands", "arms",
    "shoulders", "neck", "throat", "jaw", "face", "head",
)

#: Regions spoken of in the plural ("let them soften").
PLURAL_REGIONS = frozenset({"feet", "legs", "hips", "hands", "arms", "shoulders", "ankles",
                            "calves", "knees", "thighs", "eyes", "fingers", "toes"})

#: What a region's tension or ease can go with, after the source texts ("a tight chest
#: with anxiety"; shoulders carrying a burden; a clenched jaw with anger). One table, so a
#: suggestion always belongs to its region.
REGION_FEELINGS: dict[str, str] = {
    "feet": "Restless feet can go with impatience; feet that feel planted, with steadiness.",
    "legs": "Legs ready to move can go with wanting to get away; heavy legs, with tiredness.",
    "hips": "Held hips can go with bracing, or with feeling guarded.",
    "belly": "A knotted or fluttering belly can go with nervousness, or sometimes excitement.",
    "lower back": "A heavy lower back can go with tiredness, or with feeling burdened.",
    "chest": "A tight chest can go with anxiety; a warm, open chest with ease.",
    "upper back": "A braced upper back can go with being on guard, or with carrying a lot.",
    "hands": "Clenched hands can go with frustration; open hands with calm.",
    "arms": "Arms held close can go with protecting yourself; loose arms with ease.",
    "shoulders": "Raised, held shoulders can go with worry, or with carrying a burden.",
    "neck": "A stiff neck can go with holding on, or with being on guard.",
    "throat": "A tight throat can go with sadness, or with words not yet spoken.",
    "jaw": "A clenched jaw can go with anger, or with holding something back.",
    "face": "A furrowed brow can go with concern; a soft face with contentment.",
    "head": "A full, busy head can go with overwhelm; a clear one with calm.",
}

#: The same links said other ways, so a listener who meets a region in several sessions
#: of a week does not hear one sentence each time: ``region(name, i)`` takes wording i.
REGION_FEELINGS_AGAIN: dict[str, tuple[str, str]] = {
    "feet": ("Feet that want to be elsewhere can carry impatience; grounded feet, a settled mind.",
             "Fidgeting toes can go with unease; feet resting heavy, with being at home."),
    "legs": ("Legs that feel like running can go with fear; legs that rest, with safety.",
             "Tired, leaden legs often go with a long day, or with feeling low."),
    "hips": ("Hips held tight can go with feeling on guard; loose hips with ease.",
             "Tension deep in the hips can go with bracing against something."),
    "belly": ("Butterflies in the belly can be nerves, or anticipation; a soft belly, safety.",
              "A tight belly can go with dread; a warm, loose one with comfort."),
    "lower back": ("A tight lower back can go with pressure, or with pushing on too long.",
                   "Heaviness low in the back can go with weariness, or with carrying too much."),
    "chest": ("A narrow, held chest can go with fear; a chest that opens, with relief.",
              "Pressure in the chest can go with worry, or with grief; lightness there, with joy."),
    "upper back": ("Tension between the shoulder blades can go with vigilance, or with strain.",
                   "A stiff upper back can go with bracing for what comes next."),
    "hands": ("Fists can go with anger; hands resting open, with trust.",
              "Fidgeting hands can go with nerves; still, open hands with ease."),
    "arms": ("Crossed or tight arms can go with guarding yourself; easy arms, with openness.",
             "Arms that want to reach out can go with longing, or with affection."),
    "shoulders": ("Shoulders up by the ears often go with stress; dropped shoulders, with relief.",
                  "Heavy shoulders can go with responsibility, or with worry carried all day."),
    "neck": ("A tight neck can go with strain, or with keeping things under control.",
             "Stiffness in the neck can go with vigilance, or with effort held too long."),
    "throat": ("A lump in the throat can go with grief, or with feeling moved.",
               "A closed throat can go with holding back words; an open one, with ease."),
    "jaw": ("A tight jaw can go with frustration, or with determination.",
            "Teeth held together can go with irritation, or with bearing something."),
    "face": ("A tight forehead can go with worry; soft eyes, with warmth.",
             "A held smile can go with politeness; a relaxed face, with being at ease."),
    "head": ("A crowded head can go with stress; a spacious one, with peace.",
             "Pressure behind the eyes can go with tiredness, or with sadness held back."),
}

#: Feelings offered for labelling when the listener gives none; gentle ones first.
DEFAULT_FEELINGS: tuple[str, ...] = (
    "calm", "tension", "sadness", "tiredness", "worry", "frustration", "joy", "tenderness",
)
#: The wider pools the defaults rotate through over a week, so a daily listener does not
#: hear the same eight labels in the same order every day. Each pool starts with the
#: defaults' own words, so a session on its own (seq 0) hears DEFAULT_FEELINGS.
_GENTLE_POOL = ("calm", "joy", "tenderness", "contentment", "relief", "curiosity", "ease")
_HARD_POOL = ("tension", "sadness", "tiredness", "worry", "frustration", "restlessness",
              "loneliness", "irritation", "nervousness", "disappointment", "boredom")


def default_feelings(seq: int) -> tuple[str, ...]:
    """The eight default feeling words of the session numbered ``seq`` in a programme:
    three gentle and five difficult ones, as in DEFAULT_FEELINGS, a gentle one first.
    Consecutive sessions start each pool at a different place, so both the words and
    their order change from day to day; seq 0 gives DEFAULT_FEELINGS exactly."""
    gentle = [_GENTLE_POOL[(seq * 2 + i) % len(_GENTLE_POOL)] for i in range(3)]
    hard = [_HARD_POOL[(seq * 3 + i) % len(_HARD_POOL)] for i in range(5)]
    return (gentle[0], *hard, *gentle[1:])

#: An emotion wheel: core feelings with finer words, offered slowly in the check-in.
#: It includes the words of detachment itself (numb, flat, distant).
EMOTION_WHEEL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("calm", ("settled", "content", "peaceful")),
    ("sadness", ("lonely", "disappointed", "heavy")),
    ("anger", ("frustrated", "irritated", "resentful")),
    ("tiredness", ("drained", "flat", "numb")),
    ("fear", ("anxious", "worried", "unsafe")),
    ("joy", ("hopeful", "grateful", "proud")),
    ("tenderness", ("caring", "warm", "moved")),
    ("surprise", ("confused", "unsettled", "amazed")),
    ("distance", ("detached", "blank", "far away")),
    ("shame", ("embarrassed", "exposed", "small")),
)

#: Noun and adjective of common feeling words, so either can be typed and both spoken.
FEELING_FORMS: dict[str, str] = {
    "anger": "angry", "anxiety": "anxious", "boredom": "bored", "calm": "calm",
    "confusion": "confused", "contentment": "content", "curiosity": "curious",
    "despair": "despairing", "disappointment": "disappointed", "disgust": "disgusted",
    "embarrassment": "embarrassed", "envy": "envious", "excitement": "excited",
    "exhaustion": "exhausted", "fear": "afraid", "frustration": "frustrated",
    "gratitude": "grateful", "grief": "grieving", "guilt": "guilty", "happiness": "happy",
    "hope": "hopeful", "hurt": "hurt", "irritation": "irritated", "jealousy": "jealous",
    "joy": "joyful", "loneliness": "lonely", "love": "loving", "nervousness": "nervous",
    "numbness": "numb", "overwhelm": "overwhelmed", "panic": "panicked", "peace": "peaceful",
    "pride": "proud", "rage": "furious", "regret": "regretful", "relief": "relieved",
    "resentment": "resentful", "restlessness": "restless", "sadness": "sad",
    "shame": "ashamed", "shock": "shocked", "stress": "stressed", "surprise": "surprised",
    "tenderness": "tender", "tension": "tense", "tiredness": "tired", "trust": "trusting",
    "unease": "uneasy", "warmth": "warm", "worry": "worried", "flatness": "flat",
    "distance": "distant", "detachment": "detached", "emptiness": "empty",
    "heaviness": "heavy", "lightness": "light", "safety": "safe", "care": "caring",
    "impatience": "impatient", "insecurity": "insecure", "vulnerability": "vulnerable",
    "irritability": "irritable", "apathy": "apathetic", "awe": "in awe",
    "compassion": "compassionate", "delight": "delighted", "dread": "full of dread",
    "ease": "at ease", "helplessness": "helpless", "indifference": "indifferent",
    "longing": "longing", "bitterness": "bitter", "calmness": "calm",
    "confidence": "confident", "serenity": "serene", "sorrow": "sorrowful",
    # Words typed as adjectives that no suffix gives away, with the noun a sentence needs.
    "strangeness": "strange", "uncertainty": "unsure", "security": "secure",
    "edginess": "on edge", "fragility": "fragile", "alertness": "alert", "shyness": "shy",
    "awkwardness": "awkward", "loss": "lost", "stuckness": "stuck", "lowness": "low",
    "gloom": "glum", "contentedness": "contented", "playfulness": "playful",
    "openness": "open", "closeness": "close", "tenseness": "tight", "fatigue": "weary",
    "sleepiness": "sleepy", "agitation": "agitated", "disconnection": "disconnected",
    "powerlessness": "powerless", "hopelessness": "hopeless",
    "upset": "upset", "annoyance": "annoyed", "bewilderment": "bewildered",
    "inspiration": "inspired", "amusement": "amused", "satisfaction": "satisfied",
    "thankfulness": "thankful", "eagerness": "eager", "hurry": "rushed",
    "overload": "overloaded", "steadiness": "steady", "groundedness": "grounded",
    "affection": "affectionate", "exposure": "exposed", "smallness": "small",
    "blankness": "blank", "amazement": "amazed", "unsettledness": "unsettled",
}
_ADJECTIVES = {adj: noun for noun, adj in FEELING_FORMS.items()}
#: Endings that make a word a noun; "strange", "unsure" and "on edge" end otherwise.
_NOUN_ENDINGS = ("ness", "tion", "sion", "ment", "ety", "ity", "ance", "ence", "dom", "ship",
                 "ism", "ief")

#: Feelings by tone, so an example line agrees with its feeling ("I feel hopeful" is not
#: followed by "I don't need you to fix anything"). Any other word is neutral.
PLEASANT = frozenset({
    "calm", "content", "contented", "peaceful", "settled", "joyful", "happy", "hopeful",
    "grateful", "proud", "caring", "warm", "moved", "amazed", "relieved", "loving", "safe",
    "light", "at ease", "confident", "serene", "delighted", "excited", "curious", "trusting",
    "compassionate", "in awe", "tender", "secure", "playful", "open", "close", "inspired",
    "amused", "satisfied", "thankful", "eager", "steady", "grounded", "affectionate",
})
DIFFICULT = frozenset({
    "sad", "lonely", "disappointed", "heavy", "angry", "frustrated", "irritated", "resentful",
    "drained", "flat", "numb", "afraid", "anxious", "worried", "unsafe", "confused",
    "unsettled", "detached", "blank", "far away", "embarrassed", "exposed", "small", "ashamed",
    "bored", "despairing", "disgusted", "envious", "exhausted", "grieving", "guilty", "hurt",
    "jealous", "nervous", "overwhelmed", "panicked", "furious", "regretful", "restless",
    "shocked", "stressed", "tense", "tired", "uneasy", "distant", "empty", "insecure",
    "vulnerable", "irritable", "apathetic", "full of dread", "helpless", "bitter", "sorrowful",
    "impatient", "strange", "unsure", "on edge", "fragile", "shy", "awkward", "lost", "stuck",
    "low", "glum", "tight", "weary", "agitated", "disconnected", "alone", "powerless",
    "hopeless", "upset", "annoyed", "bewildered", "rushed", "overloaded", "sleepy",
    "longing",
})


@dataclass(frozen=True)
class Feeling:
    """A feeling word with the forms a sentence needs.

    ``noun`` follows "noticing" or "I notice" ("noticing sadness", "noticing a frazzled
    feeling"); ``adjective`` follows "I feel" or "a little" ("I feel sad"), and for a noun
    with no adjective it is a phrase that still reads ("I feel some awe").
    """

    word: str
    noun: str
    adjective: str

    def __str__(self) -> str:
        return self.word

    @property
    def tone(self) -> str:
        """"pleasant", "difficult" or "neutral", for examples that agree with it."""
        if self.adjective in PLEASANT:
            return "pleasant"
        return "difficult" if self.adjective in DIFFICULT else "neutral"


def feeling(word: str) -> Feeling:
    """The forms of ``word``, typed as a noun ("sadness") or an adjective ("sad")."""
    word = " ".join(word.lower().split())
    if word in FEELING_FORMS:
        return Feeling(word, word, FEELING_FORMS[word])
    if word in _ADJECTIVES:
        return Feeling(word, _ADJECTIVES[word], word)
    if word.endswith(_NOUN_ENDINGS):
        # "I feel some awe" reads; "I feel awe" would too, but not after "a little".
        return Feeling(word, word, f"some {word}")
    # Taken as an adjective: "noticing a glum feeling", "I feel glum"; several words read
    # as a state ("noticing feeling on top of things").
    return Feeling(word, f"a {word} feeling" if " " not in word else f"feeling {word}", word)


#: People a listener may name by their relation to them rather than by name.
RELATIONS = frozenset({
    "sister", "brother", "mother", "father", "mum", "mom", "dad", "parent", "parents",
    "friend", "partner", "wife", "husband", "girlfriend", "boyfriend", "spouse", "son",
    "daughter", "child", "cousin", "aunt", "uncle", "grandmother", "grandfather", "grandma",
    "grandpa", "gran", "nan", "granny", "neighbour", "neighbor", "colleague", "coworker",
    "boss", "flatmate", "roommate", "housemate", "therapist", "counsellor", "counselor",
    "doctor", "mentor", "teacher", "coach", "sponsor", "fiancé", "fiance", "fiancée",
    "fiancee", "stepmother", "stepfather", "stepmum", "stepdad", "sibling", "twin",
    "godmother", "godfather", "carer", "nurse", "priest", "pastor", "rabbi", "imam",
})
_OWNER = re.compile(r"^(?:my|our|mine)\s+", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:a|an|the|one)\s+", re.IGNORECASE)


def person(text: str) -> str:
    """A safe person as the guide says it to the listener: "my sister" is "your sister",
    "my partner Sam" is "your partner Sam", "best friend" is "your best friend"; a name,
    or a person already described ("a friend from work", "Mum"), stays as it is."""
    text = " ".join(text.split())
    owned = _OWNER.match(text)
    if owned:
        return "your " + text[owned.end():]
    if _ARTICLE.match(text) or text.lower().startswith("your "):
        return text
    words = text.split()
    # A relation typed in lower case, with a describing word or two before it ("best
    # friend", "older sister"): the listener's own. Capitalised, it is used as a name.
    for word in words[:3]:
        if not word[:1].islower():
            break
        if word.lower().strip(".,") in RELATIONS:
            return "your " + text
    return text


@dataclass(frozen=True)
class Region:
    """A body region with its pronoun and the feelings it can go with."""

    name: str
    #: "them" for plural regions ("your shoulders ... let them soften"), else "it".
    it: str
    #: "they" or "it", as a sentence's subject.
    they: str
    #: "are" or "is".
    be: str
    #: A suggestion of what tension or ease here can go with ("" when the table has none).
    feelings: str

    def __str__(self) -> str:
        return self.name


def region(name: str, wording: int = 0) -> Region:
    """``name`` (a focus region or a finer one such as "left thumb") with its grammar;
    ``wording`` chooses among the ways its feelings are said (any int, cycling)."""
    last = name.split()[-1]
    plural = name in PLURAL_REGIONS or last in PLURAL_REGIONS
    said = ((REGION_FEELINGS[name], *REGION_FEELINGS_AGAIN[name])
            if name in REGION_FEELINGS else ("",))
    return Region(name, "them" if plural else "it", "they" if plural else "it",
                  "are" if plural else "is", said[wording % len(said)])


#: A line that points a walking listener at their surroundings.
SURROUNDINGS = re.compile(
    r"\b(surroundings|footing|traffic|paths?|roads?|kerbs?|crossings?|way ahead|ground ahead"
    r"|where you are (?:going|heading)|around you|people nearby|anyone nearby)\b", re.IGNORECASE)
#: Words a seated session never says: they belong to walking.
WALKING_ONLY = re.compile(r"\b(traffic|paths?|roads?|kerbs?|crossings?|footing)\b",
                          re.IGNORECASE)

NAME_MAX = 40
INTENTION_MAX = 120
FEELING_MAX = 24
FEELINGS_MAX = 8


_IF_POSTURE = re.compile(r"\s*\bIf you are (standing|sitting), ([^.]*\.)")


def for_posture(line: str, posture: str) -> str:
    """``line`` as said to a listener who is ``posture`` ("sitting" or "standing"): of
    its sentences "If you are standing, …" and "If you are sitting, …" the one for the
    other posture is left out, and the condition is dropped from the other ("If you are
    sitting, lift your heels." becomes "Lift your heels."). Other sentences stay."""
    if posture not in ("sitting", "standing"):
        raise ValueError("for_posture() takes 'sitting' or 'standing'")

    def keep(match: re.Match[str]) -> str:
        if match.group(1) != posture:
            return ""
        said = match.group(2)
        return " " + said[0].upper() + said[1:]

    return _IF_POSTURE.sub(keep, line).strip()
