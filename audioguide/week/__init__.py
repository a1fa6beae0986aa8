"""The week: plan files, the parallel week build, its playlist, feed and page, and the server."""

#: The file that marks a folder as a week (and lists its sessions in order).
MANIFEST = "week.json"

#: Written wherever the week is described (its page and its feed), after the source texts'
#: "When to Seek Professional Help". It makes no medical claim.
CARE_NOTE = (
    "These practices can support your wellbeing, but they do not replace professional care. "
    "If numbness or detachment persists, affects your relationships, work or self-care, or "
    "comes with a history of trauma, depression or anxiety, talking with a therapist can help. "
    "Trying to reconnect can sometimes stir up strong distress: that is a good moment to reach "
    "out for support, too."
)

#: What to do in a crisis, said beside the care note.
CRISIS_NOTE = ("If you are in danger, or thinking of harming yourself, call your local "
               "emergency number now.")


def care_text(help_line: str | None = None) -> str:
    """The care note, the crisis line and, when the plan names one, its helpline."""
    helpline = f" You can also call {help_line}." if help_line else ""
    return f"{CARE_NOTE} {CRISIS_NOTE}{helpline}"
