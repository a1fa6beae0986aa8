"""The feed's identifiers and time stamps against their specifications, and the rebasing of the
feed and playlist that the server hands out (tests/test_week.py parses a real week's feed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import feedparser
import pytest

from audioguide.transcript import stamp
from audioguide.week.feed import podcast_guid, rebase_feed, rebase_playlist

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow


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
    assert stamp(seconds) == text


FEED = b"""<?xml version='1.0' encoding='utf-8'?>
<rss xmlns:atom="http://www.w3.org/2005/Atom" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
 xmlns:podcast="https://podcastindex.org/namespace/1.0" version="2.0">
  <channel>
    <title>Week</title>
    <link>http://127.0.0.1:8000/index.html</link>
    <atom:link href="http://127.0.0.1:8000/feed.xml" rel="self" type="application/rss+xml" />
    <description>See http://127.0.0.1:8000/ for more.</description>
    <itunes:image href="http://127.0.0.1:8000/cover.png" />
    <image><url>http://127.0.0.1:8000/cover.png</url><link>http://127.0.0.1:8000/index.html</link></image>
    <podcast:guid>917393e3-1b1e-5cef-ace4-edaa54e1f810</podcast:guid>
    <item>
      <title>One</title>
      <enclosure url="http://127.0.0.1:8000/a%20b.mp3" length="10" type="audio/mpeg" />
      <guid isPermaLink="false">audioguide-1</guid>
      <podcast:chapters url="http://127.0.0.1:8000/a.chapters.json"
       type="application/json+chapters" />
      <link>https://example.org/elsewhere</link>
    </item>
  </channel>
</rss>
"""


def test_rebase_feed_moves_its_own_links_only() -> None:
    moved = rebase_feed(FEED, "http://192.168.1.23:8123/")
    parsed = feedparser.parse(moved)
    assert not parsed.bozo
    assert parsed.feed.link == "http://192.168.1.23:8123/index.html"
    assert parsed.feed.image.href == "http://192.168.1.23:8123/cover.png"
    (entry,) = parsed.entries
    assert entry.enclosures[0].href == "http://192.168.1.23:8123/a%20b.mp3"
    assert entry.podcast_chapters["url"] == "http://192.168.1.23:8123/a.chapters.json"
    assert entry.link == "https://example.org/elsewhere"  # not under the feed's base
    assert entry.id == "audioguide-1"
    assert parsed.feed.podcast_guid == "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    assert parsed.feed.description == "See http://127.0.0.1:8000/ for more."  # text stays
    root = ET.fromstring(moved)
    assert root.find("channel/{http://www.w3.org/2005/Atom}link").get("href") == (  # type: ignore[union-attr]
        "http://192.168.1.23:8123/feed.xml")
    assert b"xmlns:itunes=" in moved and b"xmlns:podcast=" in moved
    assert rebase_feed(FEED, "http://127.0.0.1:8000/") == FEED


def test_rebase_playlist() -> None:
    text = "#EXTM3U\n#EXTINF:180,One\n1 one.mp3\n#EXTINF:60,Two\nhttp://x/two.mp3\n"
    assert rebase_playlist(text, "http://[::1]:8000/").splitlines() == [
        "#EXTM3U", "#EXTINF:180,One", "http://[::1]:8000/1%20one.mp3", "#EXTINF:60,Two",
        "http://x/two.mp3"]
