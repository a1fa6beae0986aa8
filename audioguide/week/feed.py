"""The week's playlist (extended M3U) and podcast feed (RSS 2.0 with itunes and podcast tags).

Both are written over the finished MP3s: titles, dates, chapters and lengths
are read back from the files themselves, so what the feed says is what the
files hold. The files on disk carry the links of ``--base-url``; the server
hands out copies whose links name the address the listener actually used
(:func:`rebase_feed`, :func:`rebase_playlist`).

Chapter times, in the chapters JSON and in Podlove Simple Chapters, are times
in the decoded audio, with the MP3 encoder delay already removed (the timeline
of gapless players such as ExoPlayer and of ffmpeg's decoded output), the same
values as the ID3 chapter frames. They do not add the 1105-sample (25 ms)
encoder delay: every chapter starts on a spoken line, and a player that counts
the delay (mpv, through ffmpeg's chapter times) then shows and seeks 25 ms
early, into silence, while adding it would make gapless players cut the first
25 ms of the line.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import re
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from audioguide import __version__
from audioguide.transcript import stamp
from audioguide.week import care_text

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
    # Podlove Simple Chapters: the only chapters gPodder reads from a feed.
    "psc": "http://podlove.org/simple-chapters",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
#: The namespace of podcast:guid's UUIDv5, fixed by the Podcasting 2.0 specification.
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
FEED = "feed.xml"
PLAYLIST = "playlist.m3u8"
#: Morning of the day a session is meant for, in the feed's publication dates.
PUBLISH_HOUR = 7
COVER = "cover.png"
#: Its small copy, for the page and the lock screen.
ICON = "icon.png"


@dataclass(frozen=True)
class Episode:
    """A finished session, as its files describe it."""

    path: Path
    title: str
    description: str
    date: dt.date
    duration_s: float
    size: int
    track: int
    chapters: tuple[tuple[float, float, str], ...]
    #: (start s, end s, text) per spoken line, from the WebVTT sidecar.
    transcript: tuple[tuple[float, float, str], ...]
    #: The SHA-256 of its audio, from its tag.
    audio: str = ""

    @classmethod
    def read(cls, path: Path) -> Episode:
        """Read an MP3 made by audioguide and its sidecars."""
        from audioguide import tags

        written = tags.read(path)
        return cls(
            path=path,
            title=written.title,
            description=written.comment,
            date=dt.date.fromisoformat(written.date[:10]),
            duration_s=written.length_ms / 1000,
            size=path.stat().st_size,
            track=written.track,
            chapters=tuple((c.start_ms / 1000, c.end_ms / 1000, c.title)
                           for c in written.chapters),
            transcript=read_vtt(path.with_suffix(".vtt")),
            audio=written.audio,
        )


def read_vtt(path: Path) -> tuple[tuple[float, float, str], ...]:
    """(start, end, text) of each cue of a WebVTT file written by audioguide."""
    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    found = re.findall(r"(\d+:\d\d:\d\d\.\d+) --> (\d+:\d\d:\d\d\.\d+)\n(.+)",
                       path.read_text(encoding="utf-8"))
    from audioguide.transcript import unescape_cue

    return tuple((seconds(a), seconds(b), unescape_cue(text)) for a, b, text in found)


def clock(seconds: float) -> str:
    """``1:05:03`` or ``5:03``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def playlist_files(folder: Path, title: str, files: list[Path]) -> dict[Path, bytes]:
    """``playlist.m3u8``: extended M3U, UTF-8, relative paths, durations and titles."""
    lines = ["#EXTM3U", f"#PLAYLIST:{title}"]
    for episode in map(Episode.read, files):
        lines.append(f"#EXTINF:{round(episode.duration_s)},audioguide - {episode.title} "
                     f"({episode.date:%a})")
        lines.append(episode.path.name)
    return {folder / PLAYLIST: ("\n".join(lines) + "\n").encode()}


def rebase_playlist(text: str, base: str) -> str:
    """The playlist ``text`` with each relative entry made an absolute URL under ``base``.

    Served this way, a playlist saved on a phone still plays from the server.
    """
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#") and "://" not in line:
            line = base + urllib.parse.quote(line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def feed_files(folder: Path, title: str, plan: object, files: list[Path],
               base_url: str) -> dict[Path, bytes]:
    """``feed.xml``, a chapters JSON per episode, and the week's cover image and its small
    copy for the page (when they changed)."""
    from audioguide import cover

    base = base_url if base_url.endswith("/") else base_url + "/"
    episodes = [Episode.read(f) for f in files]
    made: dict[Path, bytes] = {}
    image = cover.wanted(folder / COVER, "week", title, f"{len(episodes)} sessions · "
                         f"{clock(sum(e.duration_s for e in episodes))}")
    if image is not None:
        made[folder / COVER] = image
    if image is not None or not (folder / ICON).is_file():
        made[folder / ICON] = cover.icon(image or (folder / COVER).read_bytes())
    for episode in episodes:
        chapters = {"version": "1.2.0", "chapters": [
            {"startTime": round(start, 3), "endTime": round(end, 3), "title": name}
            for start, end, name in episode.chapters]}
        made[_chapters_path(episode.path)] = json.dumps(chapters, indent=1).encode()
    made[folder / FEED] = feed_xml(title, episodes, base, getattr(plan, "help_line", None),
                                   getattr(plan, "email", None))
    return made


def _chapters_path(mp3: Path) -> Path:
    return mp3.with_name(mp3.stem + ".chapters.json")


def feed_xml(title: str, episodes: list[Episode], base: str,
             help_line: str | None = None, owner_email: str | None = None) -> bytes:
    """The RSS document, its links under ``base``; ``help_line`` joins the care note, and
    ``owner_email`` (the plan's) is the owner's."""
    def url(name: str) -> str:
        return base + urllib.parse.quote(name)

    def sub(parent: ET.Element, tag: str, content: str | None = None, **attrs: str) -> ET.Element:
        if ":" in tag:
            prefix, local = tag.split(":")
            tag = f"{{{NS[prefix]}}}{local}"
        element = ET.SubElement(parent, tag, {k.replace("_", ":"): v for k, v in attrs.items()})
        if content is not None:
            element.text = content
        return element

    rss = ET.Element("rss", {"version": "2.0"})
    channel = sub(rss, "channel")
    sub(channel, "title", title)
    sub(channel, "link", url("index.html"))
    sub(channel, "atom:link", href=url(FEED), rel="self", type="application/rss+xml")
    about = (f"A week of guided practice, {len(episodes)} sessions: {_contents(episodes)}. "
             + care_text(help_line))
    sub(channel, "description", about)
    sub(channel, "language", "en")
    sub(channel, "generator", f"audioguide {__version__}")
    sub(channel, "itunes:author", "audioguide")
    owner = sub(channel, "itunes:owner")
    sub(owner, "itunes:name", "audioguide")
    if owner_email:
        sub(owner, "itunes:email", owner_email)
    # Apps built on feedparser show itunes:summary in place of the description.
    sub(channel, "itunes:summary", about)
    sub(channel, "itunes:image", href=url(COVER))
    image = sub(channel, "image")
    sub(image, "url", url(COVER))
    sub(image, "title", title)
    sub(image, "link", url("index.html"))
    category = sub(channel, "itunes:category", text="Health & Fitness")
    sub(category, "itunes:category", text="Mental Health")
    sub(channel, "itunes:explicit", "false")
    # Serial: apps list the week in its order and play it from the first session.
    sub(channel, "itunes:type", "serial")
    sub(channel, "podcast:guid", podcast_guid(url(FEED)))
    # A private week: directories must not take it in.
    sub(channel, "podcast:locked", "yes")
    for episode in episodes:
        name = episode.path.name
        same_day = sum(e.date == episode.date and e.track < episode.track for e in episodes)
        item = sub(channel, "item")
        sub(item, "title", f"{episode.date:%a} · {episode.title}")
        sub(item, "description", episode.description)
        sub(item, "enclosure", url=url(name), length=str(episode.size), type="audio/mpeg")
        # One listener's one audio: another listener's session, or this one rebuilt with
        # other audio, is another episode to an app.
        guid = hashlib.sha256(f"{title}/{name}/{episode.audio}".encode()).hexdigest()[:32]
        sub(item, "guid", f"audioguide-{guid}", isPermaLink="false")
        # The morning of its day where the week is built (a UTC time would put it on the
        # day before in American time zones); sessions of one day a minute apart.
        published = dt.datetime.combine(episode.date,
                                        dt.time(PUBLISH_HOUR, same_day)).astimezone()
        sub(item, "pubDate", email.utils.format_datetime(published))
        sub(item, "itunes:duration", str(round(episode.duration_s)))
        sub(item, "itunes:episode", str(episode.track))
        sub(item, "itunes:episodeType", "full")
        sub(item, "itunes:image", href=url(episode.path.with_suffix(".png").name))
        sub(item, "podcast:chapters", url=url(_chapters_path(episode.path).name),
            type="application/json+chapters")
        if episode.chapters:
            simple = sub(item, "psc:chapters", version="1.2")
            for start, _, name in episode.chapters:
                sub(simple, "psc:chapter", start=stamp(start), title=name)
        sub(item, "podcast:transcript", url=url(episode.path.with_suffix(".vtt").name),
            type="text/vtt")
    ET.indent(rss)
    document: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return document


def podcast_guid(feed_url: str) -> str:
    """podcast:guid: the UUIDv5 of the feed URL without its scheme and trailing slashes."""
    bare = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", feed_url).rstrip("/")
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, bare))


def rebase_feed(document: bytes, base: str) -> bytes:
    """The feed ``document`` with its links moved from the base it was written for to ``base``.

    Only links under the feed's own base (its ``atom:link rel="self"``) change;
    guids, podcast:guid included, stay as written, so apps keep the episodes
    they already have.
    """
    root = ET.fromstring(document)
    own = root.find(f"channel/{{{NS['atom']}}}link[@rel='self']")
    old = own.get("href", "") if own is not None else ""
    if not old.endswith("/" + FEED):
        return document
    old = old[: -len(FEED)]
    if old == base:
        return document
    for element in root.iter():
        for key in ("href", "url"):
            value = element.get(key)
            if value is not None and value.startswith(old):
                element.set(key, base + value[len(old):])
        if element.tag in ("link", "url") and element.text and element.text.startswith(old):
            element.text = base + element.text[len(old):]
    rebased: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return rebased


def _contents(episodes: list[Episode]) -> str:
    """The week's kinds, in the order they first appear ("breath awareness, journal ...")."""
    names = list(dict.fromkeys(e.title.split(" — ")[0].lower() for e in episodes))
    return ", ".join(names) if names else "no sessions yet"
