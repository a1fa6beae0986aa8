"""The feed as podcast apps read it in any time zone: each session on its own day, the week
in order (serial, numbered), and a guid per listener's audio."""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import feedparser
import podcastparser
import pytest

from audioguide.week.feed import Episode, feed_xml

ZONES = ["UTC", "America/Los_Angeles", "Pacific/Honolulu", "Pacific/Auckland",
         "Asia/Kolkata", "Europe/London"]


def _episodes(audio: str = "a") -> list[Episode]:
    days = [dt.date(2026, 11, 23), dt.date(2026, 11, 23), dt.date(2026, 11, 25),
            dt.date(2026, 11, 29)]
    return [Episode(path=Path(f"/w/{n}-session.mp3"), title=f"Session {n}",
                    description="A session.", date=day, duration_s=300.0, size=1000, track=n,
                    chapters=(), transcript=(), audio=f"{audio}{n}")
            for n, day in enumerate(days, 1)]


@pytest.fixture
def zone(request: pytest.FixtureRequest,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_each_session_is_dated_its_own_day_where_the_week_is_built(zone: str) -> None:
    """A UTC morning is the evening before in America: apps there showed each session a
    day early. Dated in the local zone, each parser's date, seen in that zone, is the
    session's day."""
    document = feed_xml("Week", _episodes(), "http://127.0.0.1:8000/")
    parsed = feedparser.parse(document)
    podcast = podcastparser.parse("http://127.0.0.1:8000/feed.xml", _stream(document))
    for entry, episode, item in zip(parsed.entries, _episodes(), podcast["episodes"],
                                    strict=True):
        local = dt.datetime.fromtimestamp(_epoch(entry.published))
        assert local.date() == episode.date, (zone, entry.published)
        assert dt.datetime.fromtimestamp(item["published"]).date() == episode.date
        assert local.hour == 7


def _epoch(published: str) -> float:
    return email.utils.parsedate_to_datetime(published).timestamp()


def _stream(document: bytes) -> io.BytesIO:
    return io.BytesIO(document)


def test_the_week_is_serial_and_numbered_in_order() -> None:
    channel = ET.fromstring(feed_xml("Week", _episodes(), "http://h/")).find("channel")
    assert channel is not None
    space = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
    assert channel.findtext(f"{space}type") == "serial"
    items = channel.findall("item")
    assert [i.findtext(f"{space}episode") for i in items] == ["1", "2", "3", "4"]
    assert {i.findtext(f"{space}episodeType") for i in items} == {"full"}
    published = [_epoch(i.findtext("pubDate") or "") for i in items]
    assert published == sorted(published) and len(set(published)) == 4


def test_a_guid_is_one_listeners_one_audio() -> None:
    def guids(title: str, audio: str) -> list[str]:
        channel = ET.fromstring(feed_xml(title, _episodes(audio), "http://h/")).find("channel")
        assert channel is not None
        return [i.findtext("guid") or "" for i in channel.findall("item")]

    ana, ben = guids("Week of 23 Nov 2026", "ana"), guids("Week of 23 Nov 2026", "ben")
    assert len(set(ana)) == 4 and not set(ana) & set(ben)  # same names, other audio
    assert guids("Week of 23 Nov 2026", "ana") == ana  # the same audio: the same episode
    assert not set(guids("Week of 23 Nov 2026", "ana-rebuilt")) & set(ana)
