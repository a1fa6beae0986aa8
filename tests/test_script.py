from __future__ import annotations

import pytest

from audioguide.errors import TemplateError
from audioguide.script.markup import (
    MAX_LINE_CHARS,
    MAX_LINE_WORDS,
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


def test_an_unknown_chime_is_refused_naming_the_chimes() -> None:
    with pytest.raises(TemplateError) as err:
        parse("Hello.\n[chime gong]\n", source="mine.j2")
    assert "mine.j2 line 2" in err.value.message
    assert "no chime 'gong'" in err.value.message
    assert "bowl, bell, soft" in err.value.message


def test_a_spoken_line_has_a_cap_and_says_it() -> None:
    words = " ".join(["breathe"] * (MAX_LINE_WORDS + 1))
    with pytest.raises(TemplateError) as err:
        parse(f"Hello.\n{words}\n", source="mine.j2")
    assert "mine.j2 line 2" in err.value.message
    assert f"at most {MAX_LINE_WORDS} words and {MAX_LINE_CHARS} characters" in err.value.message
    assert len(err.value.message) < 500  # the line is not quoted whole
    with pytest.raises(TemplateError, match="characters"):
        parse("x" * (MAX_LINE_CHARS + 1))
    assert parse(" ".join(["calm"] * MAX_LINE_WORDS))  # at the cap is fine


def test_control_characters_never_reach_speech() -> None:
    cues = parse("Hello\x1b[2J\x07 there.\x9b31m\n")
    assert cues == [Speech("Hello[2J there.31m", 1)]
