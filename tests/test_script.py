from __future__ import annotations

import pytest

from audioguide.errors import TemplateError
from audioguide.script.markup import (
    SPEECH_GAP_S,
    Chime,
    Elastic,
    Pause,
    Section,
    Speech,
    parse,
    speakable,
)


def test_every_cue_kind_parses() -> None:
    cues = parse(
        "# Arriving\n[chime]\nHello.\n[pause 3]\n[pause 5..]\n[pause 2.5..40 weight=2]\n"
        "[chime bell]\n"
    )
    assert cues == [
        Section("Arriving", 1), Chime(None, 2), Speech("Hello.", 3), Pause(3.0, 4),
        Elastic(5.0, None, 1.0, 5), Elastic(2.5, 40.0, 2.0, 6), Chime("bell", 7),
    ]


def test_consecutive_speech_gets_a_breath_between() -> None:
    cues = parse("One.\n\nTwo.\n")
    assert cues == [Speech("One.", 1), Pause(SPEECH_GAP_S, 3, breath=True), Speech("Two.", 3)]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("[pause]", "write a pause"),
        ("[pause 40..5]", "below its minimum"),
        ("[pause 3..9 weight=0]", "weight must be above 0"),
        ("[pause 9000]", "at most"),
        ("[wait 3]", "unknown directive"),
        ("[chime Big Bell]", "plain lowercase"),
        ("[pause 3] and more", "must be a whole"),
        ("#", "needs a title"),
    ],
)
def test_bad_markup_names_the_line(line: str, words: str) -> None:
    with pytest.raises(TemplateError) as err:
        parse(f"Hello.\n{line}\n", source="mine.j2")
    assert "mine.j2 line 2" in err.value.message
    assert words in err.value.message


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(TemplateError) as err:
        parse("Hi.\n[pause x]\n[nope]\n")
    assert "line 2" in err.value.message and "line 3" in err.value.message


def test_a_script_without_speech_is_refused() -> None:
    with pytest.raises(TemplateError, match="no speech"):
        parse("[pause 3]\n# Title\n")


def test_user_text_cannot_inject_markup() -> None:
    name = "Sam\n[pause 99]\n# Evil"
    line = f"Hello, {speakable(name)}."
    cues = parse(line)
    assert cues == [Speech("Hello, Sam (pause 99) Evil.", 1)]
