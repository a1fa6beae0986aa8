"""A small week built for real: files, playlist, feed, page, server, re-runs, interruptions."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import numpy as np
import podcastparser
import pytest
from click.testing import CliRunner

from audioguide import cover
from audioguide.cli import cli
from audioguide.week import build, planfile
from audioguide.week.serve import make_server
from tests.conftest import assert_refused, built_path, chromium, interruptible, launch, probe

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow

START = "2026-11-23"
PLAN = """
[week]
title = "Practice week"
name = "Alex"

[[session]]
day = 1
kind = "check-in"
minutes = 3

[[session]]
day = 1
kind = "breath"
minutes = 5

[[session]]
day = 3
kind = "grounding"
minutes = 5
ambience = "rain"

[[session]]
day = 7
kind = "check-in"
minutes = 3.5
"""
NAMES = ["1-mon-1-check-in-3min.mp3", "1-mon-2-breath-5min.mp3", "3-wed-1-grounding-5min.mp3",
         "7-sun-1-check-in-3.5min.mp3"]
MINUTES = [3, 5, 5, 3.5]


def run_week(plan: Path, out: Path, *extra: str) -> Path:
    result = CliRunner().invoke(cli, ["week", str(plan), "--start", START, "--out", str(out),
                                      *extra])
    assert result.exit_code == 0, result.output
    return built_path(result)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "week.toml"
    path.write_text(PLAN)
    return path


@pytest.fixture(scope="module")
def week(plan_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_week(plan_file, tmp_path_factory.mktemp("out"))


def test_folder_and_file_names(week: Path) -> None:
    assert week.name == "2026-W48"
    assert sorted(p.name for p in week.glob("*.mp3")) == NAMES
    for name in NAMES:
        stem = week / name
        assert stem.with_suffix(".vtt").exists() and stem.with_suffix(".png").exists()
    assert not list(week.glob(".*"))  # no partial files


def test_consistent_album_tracks_and_dates(week: Path) -> None:
    for number, name in enumerate(NAMES, start=1):
        tags = probe(week / name)["format"]["tags"]
        assert tags["album"] == "Practice week of 23 Nov 2026"
        assert tags["track"] == f"{number}/4"
    dates = [probe(week / n)["format"]["tags"]["date"] for n in NAMES]
    assert dates == ["2026-11-23", "2026-11-23", "2026-11-25", "2026-11-29"]


def test_playlist_entries_exist_with_durations(week: Path) -> None:
    lines = (week / "playlist.m3u8").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    entries = [(lines[i], lines[i + 1]) for i, line in enumerate(lines)
               if line.startswith("#EXTINF:")]
    assert [path for _, path in entries] == NAMES
    for (info, path), minutes in zip(entries, MINUTES, strict=True):
        assert (week / path).exists()
        seconds = float(info.split(":", 1)[1].split(",", 1)[0])
        assert seconds == pytest.approx(minutes * 60, abs=1)
        assert abs(float(probe(week / path)["format"]["duration"]) - minutes * 60) < 0.1


def test_feed_parses_in_podcastparser_and_feedparser(week: Path) -> None:
    raw = (week / "feed.xml").read_bytes()
    parsed = feedparser.parse(raw)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "Practice week of 23 Nov 2026"
    assert parsed.feed.language == "en"
    assert parsed.feed.image.href.endswith("cover.png")
    # Apple's current spelling; feedparser maps only "clean" to False and leaves this None.
    assert b"<itunes:explicit>false</itunes:explicit>" in raw
    assert [t.term for t in parsed.feed.tags][:1] == ["Health & Fitness"]
    # The feed says what the week holds, and when to seek professional help.
    assert "breath awareness" in parsed.feed.description.lower()
    assert "therapist" in parsed.feed.description
    assert "therapist" in (week / "index.html").read_text()
    with (week / "feed.xml").open("rb") as stream:
        podcast = podcastparser.parse("http://127.0.0.1:8000/feed.xml", stream)
    episodes = sorted(podcast["episodes"], key=lambda e: e["published"])
    assert len(episodes) == 4
    for episode, name, minutes in zip(episodes, NAMES, MINUTES, strict=True):
        (enclosure,) = episode["enclosures"]
        assert enclosure["url"] == f"http://127.0.0.1:8000/{name}"
        assert enclosure["mime_type"] == "audio/mpeg"
        assert enclosure["file_size"] == (week / name).stat().st_size
        assert episode["total_time"] == round(minutes * 60)
        assert episode["guid"].startswith("audioguide-")
        assert episode["description"]
    published = [dt.datetime.fromtimestamp(e["published"], dt.UTC) for e in episodes]
    assert [p.date().isoformat() for p in published] == [
        "2026-11-23", "2026-11-23", "2026-11-25", "2026-11-29"]
    for entry in parsed.entries:
        chapters = entry["podcast_chapters"]["url"].rsplit("/", 1)[1]
        data = json.loads((week / chapters).read_text())
        assert data["version"] == "1.2.0" and data["chapters"][0]["startTime"] == 0


def test_feed_chapters_for_gpodder_and_podcast_identity(week: Path) -> None:
    from audioguide.transcript import stamp

    raw = (week / "feed.xml").read_bytes()
    with (week / "feed.xml").open("rb") as stream:
        podcast = podcastparser.parse("http://127.0.0.1:8000/feed.xml", stream)
    parsed = feedparser.parse(raw)
    episodes = sorted(podcast["episodes"], key=lambda e: e["published"])
    for episode, entry, name in zip(episodes, parsed.entries, NAMES, strict=True):
        # The chapters in the MP3 as ffprobe reads them: times in the decoded audio.
        written = [(float(c["start_time"]), c["tags"]["title"])
                   for c in probe(week / name)["chapters"]]
        assert len(written) >= 2
        # gPodder reads Podlove Simple Chapters only (and keeps whole seconds).
        assert [(c["start"], c["title"]) for c in episode["chapters"]] == [
            (int(start), title) for start, title in written]
        simple = entry["psc_chapters"]
        assert simple["version"] == "1.2"
        assert [(c["start"], c["title"]) for c in simple["chapters"]] == [
            (stamp(start), title) for start, title in written]
        assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", c["start"])
                   for c in simple["chapters"])
    assert parsed.feed.publisher_detail["name"] == "audioguide"  # itunes:owner
    channel = ET.fromstring(raw).find("channel")
    assert channel is not None
    space = "{https://podcastindex.org/namespace/1.0}"
    # Podcasting 2.0: UUIDv5 of the feed URL without scheme and trailing slashes.
    expected = uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"),
                          "127.0.0.1:8000/feed.xml")
    assert channel.findtext(f"{space}guid") == str(expected)
    assert parsed.feed.podcast_guid == str(expected)
    assert channel.findtext(f"{space}locked") == "yes"


def test_manifest_names_the_plan_without_its_path(week: Path, plan_file: Path) -> None:
    manifest = json.loads((week / "week.json").read_text())
    assert manifest["plan"] == plan_file.name
    assert str(plan_file.parent) not in (week / "week.json").read_text()


def test_rerun_rebuilds_nothing(plan_file: Path, week: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in week.glob("*.mp3")}
    guids = [e["id"] for e in feedparser.parse((week / "feed.xml").read_bytes()).entries]
    assert run_week(plan_file, week.parent) == week
    assert {p.name: p.stat().st_mtime_ns for p in week.glob("*.mp3")} == before
    again = [e["id"] for e in feedparser.parse((week / "feed.xml").read_bytes()).entries]
    assert again == guids  # stable guids


@pytest.fixture(scope="module")
def server(week: Path) -> Iterator[tuple[str, int]]:
    srv = make_server(week, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def request(server: tuple[str, int], method: str, path: str,
            headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(*server, timeout=10)
    connection.request(method, path, headers=headers or {})
    return connection.getresponse()


def test_serve_head_and_content_types(server: tuple[str, int], week: Path) -> None:
    response = request(server, "HEAD", "/" + NAMES[0])
    assert response.status == 200
    assert response.getheader("Content-Type") == "audio/mpeg"
    assert int(response.getheader("Content-Length") or 0) == (week / NAMES[0]).stat().st_size
    assert response.getheader("Accept-Ranges") == "bytes"
    assert response.read() == b""
    for path, kind in [("/feed.xml", "application/rss+xml"), ("/", "text/html; charset=utf-8"),
                       ("/playlist.m3u8", "audio/x-mpegurl")]:
        assert request(server, "GET", path).getheader("Content-Type") == kind


def test_serve_byte_ranges(server: tuple[str, int], week: Path) -> None:
    data = (week / NAMES[1]).read_bytes()
    response = request(server, "GET", "/" + NAMES[1], {"Range": "bytes=1000-1999"})
    assert response.status == 206
    assert response.getheader("Content-Range") == f"bytes 1000-1999/{len(data)}"
    assert response.read() == data[1000:2000]
    tail = request(server, "GET", "/" + NAMES[1], {"Range": "bytes=-500"})
    assert tail.status == 206 and tail.read() == data[-500:]
    assert request(server, "GET", "/" + NAMES[1],
                   {"Range": f"bytes={len(data) + 5}-"}).status == 416


def test_served_feed_links_to_the_address_used(server: tuple[str, int], week: Path) -> None:
    on_disk = (week / "feed.xml").read_bytes()
    port = server[1]
    for host in [f"127.0.0.1:{port}", f"localhost:{port}"]:
        response = request(server, "GET", "/feed.xml", {"Host": host})
        assert response.status == 200
        served = response.read()
        podcast = podcastparser.parse(f"http://{host}/feed.xml", io.BytesIO(served))
        assert len(podcast["episodes"]) == 4
        for episode in podcast["episodes"]:
            (enclosure,) = episode["enclosures"]
            assert enclosure["url"].startswith(f"http://{host}/")
            # Each link is fetched as a player would, from the URL in the feed.
            with urllib.request.urlopen(urllib.request.Request(enclosure["url"], method="HEAD"),
                                        timeout=10) as answer:
                assert answer.status == 200
                assert int(answer.headers["Content-Length"]) == enclosure["file_size"]
        assert podcast["cover_url"] == f"http://{host}/cover.png"
        # podcastparser knows the podcast namespace only by its old URL; feedparser reads it.
        for entry in feedparser.parse(served).entries:
            for link in (entry["podcast_chapters"]["url"], entry["podcast_transcript"]["url"],
                         entry["image"]["href"]):
                assert link.startswith(f"http://{host}/")
                with urllib.request.urlopen(link, timeout=10) as answer:
                    assert answer.status == 200
    # Guids do not move with the address, and the file on disk keeps --base-url.
    served = feedparser.parse(request(server, "GET", "/feed.xml").read())
    assert served.feed.podcast_guid == feedparser.parse(on_disk).feed.podcast_guid
    assert (week / "feed.xml").read_bytes() == on_disk
    assert b"http://127.0.0.1:8000/" in on_disk


def test_served_feed_without_host_header_uses_the_local_address(
        server: tuple[str, int]) -> None:
    with socket_to(server) as sock:
        sock.sendall(b"GET /feed.xml HTTP/1.0\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.0 200")
    assert f"http://127.0.0.1:{server[1]}/1-mon-1-".encode() in answer
    with socket_to(server) as sock:
        sock.sendall(b"GET /feed.xml HTTP/1.0\r\nHost: evil.example/\"><x\r\n\r\n")
        answer = read_all(sock)
    # A malformed Host is a bad request, answered without echoing it.
    assert answer.startswith(b"HTTP/1.0 400") and b"evil" not in answer


def socket_to(server: tuple[str, int]) -> Any:
    """A plain TCP connection, for requests http.client would not send."""
    import socket

    return socket.create_connection(server, timeout=10)


def read_all(sock: Any) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_served_playlist_and_page_work_from_any_address(server: tuple[str, int],
                                                        week: Path) -> None:
    host = f"localhost:{server[1]}"
    lines = request(server, "GET", "/playlist.m3u8", {"Host": host}).read().decode().splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        f"http://{host}/{name}" for name in NAMES]
    assert (week / "playlist.m3u8").read_text().splitlines()[3] == NAMES[0]  # relative on disk
    page = request(server, "GET", "/index.html", {"Host": host}).read().decode()
    assert "127.0.0.1:8000" not in page and "http://" not in page  # relative links only


def test_vlc_plays_the_served_playlist(server: tuple[str, int]) -> None:
    cvlc = shutil.which("cvlc")
    assert cvlc, ("VLC is missing: this test needs Debian's vlc-bin and vlc-plugin-base "
                  "(apt-get install vlc-bin vlc-plugin-base)")
    base = f"http://{server[0]}:{server[1]}/"
    command = [cvlc, "--intf", "dummy", "--aout=dummy", "--no-video", "--run-time=1",
               "--play-and-exit", "-vv", base + "playlist.m3u8"]
    if os.geteuid() == 0:  # VLC refuses to run as root
        command = ["runuser", "-u", "nobody", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          cwd="/", check=False)
    log = done.stdout + done.stderr
    for name in NAMES:
        # It read the M3U (the titles come from #EXTINF), then opened and decoded each file.
        assert f"`{base}{name}' successfully opened" in log, log[-3000:]
    assert "processing request item: Feelings check-in — 3 min (Mon)" in log
    assert log.count('using audio decoder module "mpg123"') == len(NAMES)


@pytest.mark.parametrize("path", ["/../week.toml", "/%2e%2e/%2e%2e/etc/passwd", "/..%2fweek.toml",
                                  "//etc/passwd", "/.week.json.partial", "/nope.mp3"])
def test_serve_refuses_paths_outside(server: tuple[str, int], path: str) -> None:
    assert request(server, "GET", path).status == 404


def test_serve_refuses_other_methods(server: tuple[str, int]) -> None:
    assert request(server, "POST", "/feed.xml").status == 501
    assert request(server, "PUT", "/feed.xml").status == 501


def test_serve_errors(tmp_path: Path, week: Path, server: tuple[str, int]) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path)])
    assert result.exit_code != 0 and "not a week folder" in result.output
    result = CliRunner().invoke(cli, ["serve", str(week), "--port", str(server[1])])
    assert result.exit_code != 0 and "already in use" in result.output
    assert "Traceback" not in result.output


#: For every element with text of its own: its colour composited over the backgrounds behind
#: it (each ancestor's background, opacity included), and its WCAG 2 contrast ratio.
CONTRAST_JS = """
() => {
  const rgba = (text) => {
    const m = text.match(/^rgba?\\(([^)]*)\\)$/);
    if (m) {
      const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    const c = text.match(/^color\\(srgb ([^)]*)\\)$/);
    if (c) {
      const p = c[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    throw new Error('unparsed colour ' + text);
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3]));
  const channel = (v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const lum = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility() || ['SCRIPT', 'STYLE'].includes(el.tagName)) continue;
    let layers = [], opacity = 1;
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      opacity *= Number(style.opacity);
      layers.push(rgba(style.backgroundColor));
    }
    layers.push(rgba(getComputedStyle(document.documentElement).backgroundColor));
    let background = [255, 255, 255];
    for (const layer of layers.reverse()) background = over(layer, background);
    const colour = rgba(getComputedStyle(el).color);
    const text = over([colour[0], colour[1], colour[2], colour[3] * opacity], background);
    const [a, b] = [lum(text), lum(background)].sort((x, y) => y - x);
    found.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
                ratio: (a + 0.05) / (b + 0.05), colour: text.map(Math.round),
                background: background.map(Math.round)});
  }
  return found;
}
"""


def test_page_in_headless_chromium(week: Path, server: tuple[str, int]) -> None:
    expected = [m * 60 for m in MINUTES]
    with chromium() as pw:
        browser = launch(pw)
        try:
            problems: list[str] = []

            def on_console(message: Any) -> None:
                if message.type == "error":
                    problems.append(message.text)

            for url in [(week / "index.html").as_uri(),
                        f"http://{server[0]}:{server[1]}/index.html"]:
                page = browser.new_page(viewport={"width": 390, "height": 844})
                page.on("console", on_console)
                page.on("pageerror", lambda error: problems.append(str(error)))
                page.goto(url)
                # Nothing is fetched before play is pressed; then every file plays.
                assert page.eval_on_selector_all(
                    "audio", "els => els.map(a => [a.preload, a.readyState])") == [
                        ["none", 0]] * len(NAMES)
                page.evaluate("document.querySelectorAll('audio').forEach(a => {"
                              " a.preload = 'metadata'; a.load(); })")
                page.wait_for_function(
                    "Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1)",
                    timeout=20_000)
                durations = dict(page.eval_on_selector_all(
                    "audio", "els => els.map(a => [a.closest('article').dataset.session,"
                    " a.duration])"))
                assert durations == pytest.approx(dict(zip(NAMES, expected, strict=True)),
                                                  abs=0.1)
                assert page.locator("ol.chapters button").count() >= 4
                assert "Transcript" in page.inner_text("main")
                page.locator("article").first.locator("details.chapters summary").click()
                page.locator("ol.chapters button").nth(1).click()
                assert page.eval_on_selector("audio", "a => a.currentTime") > 0
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390  # no sideways scrolling on a phone
                assert problems == []
                page.close()
        finally:
            browser.close()


def test_page_transcript_times_seek_and_length_is_shown_once(week: Path) -> None:
    with chromium() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto((week / "index.html").as_uri())
            article = page.locator("article").first
            article.locator("details.transcript summary").click()
            line = article.locator("details.transcript p").nth(2)
            at = float(line.locator("button").get_attribute("data-at") or "nan")
            assert at > 10
            line.locator("button").click()
            position = page.eval_on_selector("audio", "a => a.currentTime")
            assert at - 0.1 <= position < at + 1.5
            # The length: in the title and in the player, not a third time beside them.
            mentions = page.eval_on_selector_all("article", """els => els.map(el => {
                const copy = el.cloneNode(true);
                copy.querySelectorAll('ol, details, audio').forEach(n => n.remove());
                const texts = [];  // each text node apart: "3 min" then "Notice", not "minNotice"
                const walk = document.createTreeWalker(copy, NodeFilter.SHOW_TEXT);
                while (walk.nextNode()) texts.push(walk.currentNode.textContent);
                return (texts.join(' ').match(/\\b\\d+(\\.\\d+)? min\\b|\\b\\d+:\\d\\d\\b/g)
                        || []).length;
            })""")
            assert mentions == [1] * len(NAMES)
        finally:
            browser.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_page_text_contrast_and_alignment(week: Path, scheme: str) -> None:
    with chromium() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme=scheme)
            page.goto((week / "index.html").as_uri())
            found = page.evaluate(CONTRAST_JS)
            assert len(found) > 20  # headings, chapters, transcript lines, the care note
            low = [f for f in found if f["ratio"] < 4.5]
            assert low == [], low[:5]
            page.close()
            # At a desktop width the header lines up with the centred cards.
            page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
            page.goto((week / "index.html").as_uri())
            header = page.locator("header img").bounding_box()
            card = page.locator("article").first.bounding_box()
            assert header is not None and card is not None
            assert abs(header["x"] - card["x"]) < 1
            page.close()
        finally:
            browser.close()


def _luminance(rgb: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """WCAG 2 relative luminance, written here again rather than trusting audioguide's."""
    c = rgb.astype(np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    result: np.ndarray[Any, Any] = linear @ np.array([0.2126, 0.7152, 0.0722])
    return result


def test_a_cover_that_shows_the_same_is_not_drawn_again(tmp_path: Path) -> None:
    """A week's cover is redrawn only when its words change (drawing one took 0.4 s of a
    batch re-run's 0.42 s per listener)."""
    path = tmp_path / "cover.png"
    cover.write(path, "week", "Practice week", "4 sessions · 24:00")
    first = path.read_bytes()
    path.write_bytes(first)  # the same file, a new inode: a redraw would replace it
    inode = path.stat().st_ino
    cover.write(path, "week", "Practice week", "4 sessions · 24:00")
    assert path.stat().st_ino == inode
    cover.write(path, "week", "Practice week", "5 sessions · 30:00")
    assert path.stat().st_ino != inode and path.read_bytes() != first
    path.write_bytes(b"not a png")
    cover.write(path, "week", "Practice week", "5 sessions · 30:00")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", [*cover.PALETTE, "week", "share", "create", "review", "stretch",
                                  *(hashlib.sha256(str(i).encode()).hexdigest()[:8]
                                    for i in range(6))])
def test_cover_text_contrast(kind: str) -> None:
    from PIL import Image

    title, subtitle = "Practice week of 23 Nov 2026", "12 sessions · 1:45:00"
    behind = np.asarray(cover.background(kind))
    drawn = np.asarray(Image.open(io.BytesIO(cover.render(kind, title, subtitle))))
    outside = np.ones(behind.shape[:2], dtype=bool)
    for line in cover.layout(title, subtitle):
        left, top, right, bottom = cover.text_box(line)
        outside[top:bottom, left:right] = False
        region = behind[top:bottom, left:right].reshape(-1, 3)
        text = float(_luminance(np.array(line.fill)))
        # Against the lightest and the darkest pixel behind the line.
        for background in (float(_luminance(region).max()), float(_luminance(region).min())):
            light, dark = max(text, background), min(text, background)
            assert (light + 0.05) / (dark + 0.05) >= 4.5, (kind, line.text)
    # What render() draws is that background with those lines on it, and nothing else.
    assert np.array_equal(drawn[outside], behind[outside])
    assert not np.array_equal(drawn[~outside], behind[~outside])


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_week_eta_counts_down_steadily(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    clock = FakeClock()
    monkeypatch.setattr(build, "time", clock)
    minutes = [3, 4, 4, 3.5, 5, 3, 4, 6, 2.5]
    seconds_per_minute = 6.0  # a steady pace
    status = build.WeekStatus(total=len(minutes), active={}, minutes_total=sum(minutes),
                              started=clock.now, workers=workers,
                              waiting=dict(enumerate(minutes)))
    queued = list(range(len(minutes)))
    running: dict[int, float] = {}
    start = clock.now
    samples = []
    while queued or running:
        while queued and len(running) < workers:
            index = queued.pop(0)
            running[index] = clock.now + minutes[index] * seconds_per_minute
            status.began(index, minutes[index])
        clock.now += 0.5
        for index, end in sorted(running.items(), key=lambda item: item[1]):
            if end <= clock.now:
                del running[index]
                status.finished(index, minutes[index])
        samples.append((clock.now, status.eta_s()))
    finish = clock.now
    estimates = [(now, eta) for now, eta in samples if eta is not None]
    assert samples[0][1] is None and len(estimates) > len(samples) // 2
    for (_, before), (_, after) in itertools.pairwise(estimates):
        assert after <= before + 0.5  # never climbs (half a second of clock resolution)
    for now, eta in estimates:
        assert eta == pytest.approx(finish - now, abs=0.5 * workers + 0.5)
    assert finish > start


def test_interrupted_week_leaves_no_partial_files_and_completes(
    plan_file: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "audioguide.cli", "week", str(plan_file), "--start", START,
               "--out", str(tmp_path), "--jobs", "1"]
    folder = tmp_path / "2026-W48"
    for sig in (signal.SIGINT, signal.SIGKILL):
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ),
                                preexec_fn=interruptible)
        deadline = time.monotonic() + 60
        while not list(folder.glob(".audioguide-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, sig)
        assert proc.wait(timeout=30) != 0
        for mp3 in folder.glob("*.mp3"):  # whatever was published is whole
            assert abs(float(probe(mp3)["format"]["duration"]) - 60 * float(
                mp3.stem.split("-")[-1][:-3])) < 0.1
        assert not (folder / "feed.xml").exists() and not (folder / "playlist.m3u8").exists()
        if sig == signal.SIGINT:  # cleaned up on the way out; after SIGKILL, by the next run
            assert not list(folder.glob(".audioguide-*"))
    # Completed with -v: each worker's log reaches the command's, naming its session.
    done = subprocess.run([*command[:3], "-v", *command[3:]], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == folder
    assert sorted(p.name for p in folder.glob("*.mp3")) == NAMES
    assert not list(folder.glob(".*"))
    built = re.findall(r"INFO audioguide\.week\.build: built \d+/\d+: (\S+)", done.stderr)
    wrote = re.findall(r"INFO audioguide\.builder: (\S+): wrote (\S+)", done.stderr)
    measured = re.findall(r"INFO audioguide\.audio\.master: (\S+): file at -1\d\.\d+ LUFS",
                          done.stderr)
    assert built and sorted(built) == sorted(stem for stem, _ in wrote) == sorted(measured)
    assert all(path == str(folder / f"{stem}.mp3") for stem, path in wrote)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[session]]\nday = 1\nkind = 'breath'\nminutes = \n", ["not valid TOML", "line 4"]),
        ("[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\ncolour = 'blue'\n",
         ["line 5, session 1 colour", "unknown key"]),
        ("[[session]]\nday = 9\nkind = 'breath'\nminutes = 5\n\n[[session]]\nday = 2\n"
         "kind = 'yoga'\nminutes = -4\n",
         ["2 problems", "line 2, session 1 day", "1 to 7", "line 9, session 2 minutes"]),
        ("[week]\nvolume = 11\n\n[[session]]\nday = 2\nkind = 'yoga'\nminutes = 4\n",
         ["line 2, [week] volume", "line 6, session 1 kind", "unknown session kind 'yoga'"]),
        # A bad day does not hide the session's other problems.
        ("[[session]]\nday = 9\nkind = 'breath'\nminutes = 5\nbitrate = 64.5\nfocus = 'elbow'\n",
         ["3 problems", "session 1 day", "session 1 bitrate", "session 1 focus"]),
        # [week] values are checked like a session's, and named at their own line, once.
        ("[week]\nname = 5\nintention = ['a']\nvoice = 5\nbitrate = 64.5\nsettle = true\n"
         "[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\n"
         "[[session]]\nday = 2\nkind = 'breath'\nminutes = 6\n",
         ["5 problems", "line 2, [week] name", "line 3, [week] intention",
          "line 4, [week] voice", "line 5, [week] bitrate", "line 6, [week] settle"]),
        ("session = [1, 2]\n", ["session 1", "not a session"]),
        # A value set for the week that a session's kind cannot take: the [week] line.
        ("[week]\nwalking = true\n\n[[session]]\nday = 1\nkind = 'journal'\nminutes = 10\n",
         ["line 2, [week] walking", "not meant for walking"]),
        # Found only by planning the script: still before any audio, at the session's line.
        ("[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\n\n[[session]]\nday = 2\n"
         "kind = 'body-scan'\nminutes = 6\npace = 'slow'\nrate = 80\nwalking = true\n"
         "focus = ['feet', 'legs', 'hips', 'belly', 'lower back', 'chest', 'upper back', "
         "'hands', 'arms', 'shoulders', 'neck', 'throat', 'jaw', 'face', 'head']\n",
         ["line 6 (body-scan, 6 min)", "too short", "nothing was built"]),
    ],
)
def test_bad_plans_are_reported_whole_and_build_nothing(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["week", str(plan), "--start", START, "--out", str(out)])
    assert_refused(result)
    for word in words:
        assert word in result.output, result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("[[session]]\nday = 1\nkind = 'br\xe9ath'\nminutes = 5\n".encode("latin-1"),
         ["not UTF-8", "save it as UTF-8"]),
        ("[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\n".encode("utf-16"),
         ["UTF-16"]),
        (("[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\n" * 10_000).encode(),
         ["10000 sessions", "at most 70"]),
    ],
)
def test_unreadable_plans_are_refused_clearly(tmp_path: Path, data: bytes,
                                              words: list[str]) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_bytes(data)
    result = CliRunner().invoke(cli, ["week", str(plan), "--start", START, "--out",
                                      str(tmp_path / "out")])
    assert_refused(result, *words)
    assert not (tmp_path / "out").exists()


def test_a_byte_order_mark_and_a_single_focus_word_are_fine(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_bytes("\ufeff[[session]]\nday = 1\nkind = 'body-scan'\nminutes = 8\n"
                     "focus = 'jaw'\n".encode())
    week = planfile.load(plan, dt.date(2026, 11, 23), tmp_path)
    assert week.sessions[0].request.focus == ("jaw",)


def test_a_start_at_the_end_of_time_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["week", "--start", "9999-12-27", "--out", str(tmp_path)])
    assert_refused(result, "--start", "too far")


def test_bad_start_date(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["week", "--start", "23/11/2026", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--start" in result.output and "YYYY-MM-DD" in result.output


def test_without_a_start_the_week_begins_on_the_coming_monday() -> None:
    monday = dt.date(2026, 11, 23)
    assert planfile.coming_monday(monday) == monday
    for days in range(1, 7):  # Tuesday to Sunday
        assert planfile.coming_monday(monday + dt.timedelta(days)) == monday + dt.timedelta(7)
    assert planfile.coming_monday().weekday() == 0


def test_default_plan_follows_the_gentle_weekly_plan() -> None:
    week = planfile.load(None, dt.date(2026, 11, 23), Path("output"))
    days = {d: [s.request for s in week.sessions if s.day == d] for d in range(1, 8)}
    assert all(days.values())
    kinds = {d: {r.kind for r in rs} for d, rs in days.items()}
    # Days 1-2: mindfulness, the event-feeling-need journal, sharing one feeling.
    assert {"breath", "journal", "share"} <= kinds[1] | kinds[2]
    assert {"breath", "journal"} <= kinds[1] and {"breath", "journal"} <= kinds[2]
    # Days 3-4: a walk or gentle movement with a body scan; a mood sketch; one boundary.
    for day in (3, 4):
        assert kinds[day] & {"walking", "stretch"} and "body-scan" in kinds[day]
    assert {"create", "boundaries"} <= kinds[3] | kinds[4]
    assert {"empathy", "congruence"} <= kinds[5] and {"empathy", "congruence"} <= kinds[6]
    # Day 7: the review, with the week's intention.
    (review,) = [r for r in days[7] if r.kind == "review"]
    assert review.intention
    total = {d: sum(r.minutes for r in rs) for d, rs in days.items()}
    assert total[2] > total[1] and total[4] > total[3] and total[6] > total[5]  # gradual
    # Professional help is heard at least once in the week.
    assert {"review", "journal", "check-in"} & {r.kind for rs in days.values() for r in rs}
