"""The feed's identifiers and time stamps against their specifications
(tests/test_week.py parses a real week's feed)."""

from __future__ import annotations

import pytest

from audioguide.week.feed import npt, podcast_guid


def test_podcast_guid_matches_the_specification_example() -> None:
    # podcast-namespace docs/1.0.md, <podcast:guid>: this feed URL gives this UUID.
    assert podcast_guid("https://mp3s.nashownotes.com/pc20rss.xml") == (
        "917393e3-1b1e-5cef-ace4-edaa54e1f810")
    # Scheme and trailing slashes do not count.
    assert podcast_guid("http://mp3s.nashownotes.com/pc20rss.xml//") == (
        "917393e3-1b1e-5cef-ace4-edaa54e1f810")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "00:00:00.000"), (61.804, "00:01:01.804"), (59.9996, "00:01:00.000"),
    (3723.5, "01:02:03.500"), (36_000, "10:00:00.000"),
])
def test_normal_play_time(seconds: float, text: str) -> None:
    assert npt(seconds) == text
