"""The week's page on a phone, and the practice log it keeps: Debian's Chromium at 390×844
driven by Playwright, against the real server (in this process, or ``audioguide serve`` in
its own, killed with SIGKILL) and the log's SQLite file on disk."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from audioguide.week.serve import LOCK, companion, make_server
from tests.conftest import built_path, chromium, launch, probe

#: Every test here builds a week of audio: the quick half of the suite skips them.
pytestmark = pytest.mark.slow

START = "2026-11-23"
PLAN = """
[week]
title = "Phone week"

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
kind = "check-in"
minutes = 3.5
"""
NAMES = ["1-mon-1-check-in-3min.mp3", "1-mon-2-breath-5min.mp3", "3-wed-1-check-in-3.5min.mp3"]
PHONE = {"width": 390, "height": 844}
#: Lets a test start a player without a tap (the page's own script is what is tested).
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = tmp_path_factory.mktemp("plan") / "week.toml"
    plan.write_text(PLAN)
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(cli, ["week", str(plan), "--start", START, "--out", str(out)])
    return built_path(result)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "practice.sqlite"


@pytest.fixture
def writable(week: Path, log_path: Path) -> Iterator[tuple[str, str]]:
    """The week served with writes on: its base address and the key."""
    writes = companion(log_path)
    server = make_server(week, "127.0.0.1", 0, companion=writes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", writes.key
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as pw:
        browser = launch(pw, AUTOPLAY)
        yield browser
        browser.close()


def rows(log_path: Path) -> list[tuple[Any, ...]]:
    """Every entry of the log, read with SQLite itself."""
    if not log_path.exists():
        return []
    with sqlite3.connect(log_path) as db:
        return db.execute("SELECT * FROM entries ORDER BY id").fetchall()


def phone_page(browser: Any, url: str, today: str | None = None, scheme: str = "light") -> Any:
    context = browser.new_context(viewport=PHONE, color_scheme=scheme)
    page = context.new_page()
    if today is not None:
        page.clock.set_fixed_time(f"{today}T09:30:00")
    page.goto(url)
    return page


@pytest.mark.parametrize(("today", "first", "opened"), [
    ("2026-11-25", "3-wed-1-check-in-3.5min.mp3", "2026-11-25"),  # today
    ("2026-11-20", "1-mon-1-check-in-3min.mp3", "2026-11-23"),  # before the week: its start
    ("2026-12-02", "3-wed-1-check-in-3.5min.mp3", "2026-11-25"),  # after it: its last day
])
def test_today_comes_first_and_open(week: Path, browser: Any, today: str, first: str,
                                    opened: str) -> None:
    page = phone_page(browser, (week / "index.html").as_uri(), today)
    assert page.locator("article").first.get_attribute("data-session") == first
    days = page.eval_on_selector_all("details.day", "els => els.map(d => [d.dataset.date, d.open])")
    assert days[0] == [opened, True]
    assert [d for d in days if d[1]] == [[opened, True]]  # the other days are folded
    assert page.locator("article").first.is_visible()
    assert page.locator("article.next").count() == 1
    # Chapters and transcript are folded; one line says what the session does.
    card = page.locator("article").first
    assert not card.locator("ol.chapters").is_visible()
    assert not card.locator("details.transcript p").first.is_visible()
    about = card.locator("p.about").inner_text()
    assert about.endswith(".") and 20 < len(about) < 200
    # "Today" is said only of today.
    marked = page.locator("details.day.today").count()
    assert marked == (1 if today == opened else 0)


def test_opening_the_page_costs_kilobytes_and_one_player_plays(week: Path, browser: Any,
                                                               writable: tuple[str, str]) -> None:
    base, key = writable
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    fetched: list[tuple[str, int]] = []
    page.on("requestfinished", lambda r: fetched.append((r.url, r.sizes()["responseBodySize"])))
    page.goto(f"{base}index.html?key={key}")
    page.wait_for_selector("body.logging")  # the log's forms are in: every request is made
    page.wait_for_load_state("networkidle")
    total = sum(size for _, size in fetched)
    assert total < 300_000, fetched
    assert not [url for url, _ in fetched if url.endswith(".mp3")]
    # Two players: starting the second pauses the first.
    audios = page.locator("audio")
    audios.nth(0).evaluate("a => a.play()")
    page.wait_for_function("!document.querySelectorAll('audio')[0].paused")
    audios.nth(1).evaluate("a => a.play()")
    page.wait_for_function("!document.querySelectorAll('audio')[1].paused")
    assert audios.nth(0).evaluate("a => a.paused")
    # The lock screen names the session playing and the week, with the cover.
    title = page.locator("article").nth(1).get_attribute("data-title")
    assert page.evaluate("navigator.mediaSession.metadata.title") == title
    assert page.evaluate("navigator.mediaSession.metadata.artist") == "Phone week of 23 Nov 2026"
    assert page.evaluate("navigator.mediaSession.metadata.artwork.length") == 2
    context.close()


def test_the_position_is_resumed_after_a_reload(week: Path, browser: Any) -> None:
    page = phone_page(browser, (week / "index.html").as_uri(), "2026-11-23")
    card = page.locator("article").first
    session = card.get_attribute("data-session")
    audio = card.locator("audio")
    audio.evaluate("a => a.play()")
    page.wait_for_function("document.querySelector('article audio').readyState >= 1")
    audio.evaluate("a => { a.currentTime = 42; }")
    page.wait_for_function("Math.abs(document.querySelector('article audio').currentTime - 42)"
                           " < 2")
    audio.evaluate("a => a.pause()")
    page.reload()
    card = page.locator("article").first
    assert card.get_attribute("data-session") == session
    assert re.fullmatch(r"Resumes at 0:4[2-4]", card.locator("p.resume").inner_text())
    card.locator("audio").evaluate("a => a.play()")
    page.wait_for_function("document.querySelector('article audio').currentTime > 40",
                           timeout=20_000)
    assert card.locator("audio").evaluate("a => a.currentTime") < 50


def test_without_the_key_every_write_is_refused(writable: tuple[str, str],
                                                log_path: Path) -> None:
    base, key = writable
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    entry = json.dumps({"session": NAMES[0], "done": True, "rating": 6}).encode()

    def post(headers: dict[str, str], path: str = "/api/log", body: bytes = entry) -> int:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", path, body=body,
                           headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 201:
            assert "error" in json.loads(answer)  # a reason, as JSON
        return response.status

    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", "/api/state")  # without the key: no token, no entries
    assert json.loads(connection.getresponse().read()) == {"log": "locked"}
    connection.request("GET", "/api/state", headers={"Cookie": f"audioguide_key={key}"})
    token = json.loads(connection.getresponse().read())["token"]
    cookie = f"audioguide_key={key}"
    refused = [
        {},  # nothing
        {"X-Audioguide-Token": token},  # the token without the key
        {"Cookie": "audioguide_key=" + "x" * len(key), "X-Audioguide-Token": token},
        {"Cookie": cookie},  # the key without the page's token
        {"Cookie": cookie, "X-Audioguide-Token": token, "Origin": "http://evil.example"},
        {"Cookie": cookie, "X-Audioguide-Token": token, "Sec-Fetch-Site": "cross-site"},
    ]
    assert [post(h) for h in refused] == [403] * len(refused)
    make = json.dumps({"kind": "check-in", "minutes": 2}).encode()
    assert [post(h, "/api/make", make) for h in refused] == [403] * len(refused)
    assert [post(h, "/api/cancel", b'{"id": 1}') for h in refused] == [403] * len(refused)
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):  # only GET, HEAD and POST
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request(method, "/api/log", body=entry, headers={
            "Cookie": f"audioguide_key={key}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.status == 405 and answer.getheader("Allow") == "GET, HEAD, POST"
        assert "error" in json.loads(answer.read())
    assert rows(log_path) == []
    # A wrong key in the address opens the page to read, and hands out no cookie.
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", "/index.html?key=" + "y" * len(key))
    answer = connection.getresponse()
    assert answer.status == 200 and answer.getheader("Set-Cookie") is None
    assert b"<article" in answer.read()
    # Another site's cookie on this host that Python's parser would refuse hides nothing.
    connection.request("GET", "/api/state", headers={
        "Cookie": f"theme=dark mode; a=\u00e9; audioguide_key={key}".encode().decode("latin-1")})
    assert json.loads(connection.getresponse().read())["log"] == "open"
    # With both, the same entry is written once; bad values say which field is wrong.
    good = {"Cookie": cookie, "X-Audioguide-Token": token}
    assert post(good) == 201
    assert post(good, body=json.dumps({"session": NAMES[0], "done": True,
                                       "rating": 11}).encode()) == 400
    assert post(good, body=json.dumps({"session": "../week.json", "done": True}).encode()) == 400
    assert post(good, body=b"x" * 5000) == 413
    assert len(rows(log_path)) == 1


def test_a_note_with_markup_is_shown_as_text(writable: tuple[str, str], browser: Any,
                                              log_path: Path) -> None:
    base, key = writable
    page = phone_page(browser, f"{base}index.html?key={key}", "2026-11-23")
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.wait_for_selector("body.logging")
    assert "key=" not in page.url  # the key left the address (and the history) at once
    card = page.locator("article").first
    card.locator("details.log summary").click()
    note = '<img src=x onerror="alert(1)"><script>alert(2)</script> & "fine"'
    card.locator("textarea").fill(note)
    card.locator("input[name=feeling]").fill("Hopeful")
    card.locator("button[type=submit]").click()
    page.wait_for_selector("article >> text=Saved.")
    shown = card.locator("ul.logged li").last
    assert note in shown.inner_text() and "hopeful" in shown.inner_text()
    assert card.locator("ul.logged img, ul.logged script").count() == 0
    page.reload()
    page.wait_for_selector("body.logging")
    assert note in page.locator("article").first.locator("ul.logged li").last.inner_text()
    assert dialogs == []
    with sqlite3.connect(log_path) as db:  # stored as it was typed
        assert db.execute("SELECT note FROM entries").fetchall() == [(note,)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_serve(week: Path, log_path: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "audioguide.cli", "serve", str(week), "--port", str(port),
         "--allow-writes", "--log", str(log_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "Page:" in line:
            return process
    process.kill()
    raise AssertionError("serve did not print its address")


def test_a_log_entry_survives_serve_being_killed(week: Path, browser: Any,
                                                 log_path: Path) -> None:
    port = free_port()
    process = start_serve(week, log_path, port)
    try:
        key = (log_path.with_name("practice.key")).read_text().strip()
        page = phone_page(browser, f"http://127.0.0.1:{port}/index.html?key={key}", "2026-11-25")
        page.wait_for_selector("body.logging")
        card = page.locator("article").first
        card.locator("details.log summary").click()
        card.locator("input[name=done][value=no]").check()
        card.locator("input[name=too_much]").check()
        card.locator("input[type=range]").fill("3")
        card.locator("button[type=submit]").click()
        page.wait_for_selector("article >> text=Saved.")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    process = start_serve(week, log_path, port)
    try:
        page.reload()  # the same phone: its cookie still holds the key
        page.wait_for_selector("body.logging")
        logged = page.locator("article").first.locator("ul.logged li")
        assert logged.count() == 1 and "Not done · feeling 3/10 · too much" in logged.inner_text()
        with sqlite3.connect(log_path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        exported = CliRunner().invoke(cli, ["log", "export", "--json", "--log", str(log_path)])
        assert exported.exit_code == 0, exported.output
        [entry] = json.loads(exported.output)
        assert (entry["session"], entry["done"], entry["rating"], entry["too_much"],
                entry["kind"]) == ("3-wed-1-check-in-3.5min.mp3", False, 3, True, "check-in")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_nothing_of_the_log_reaches_the_feed_or_files(week: Path, writable: tuple[str, str],
                                                      log_path: Path) -> None:
    """The log lives in its own file, outside the served folder; the folder's files do not
    change when an entry is made."""
    assert not log_path.is_relative_to(week)
    before = {p.name: p.stat().st_mtime_ns for p in week.iterdir()}
    base, key = writable
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", "/api/state", headers={"Cookie": f"audioguide_key={key}"})
    token = json.loads(connection.getresponse().read())["token"]
    connection.request("POST", "/api/log", body=json.dumps(
        {"session": NAMES[1], "done": True, "note": "private words"}),
        headers={"Content-Type": "application/json", "Cookie": f"audioguide_key={key}",
                 "X-Audioguide-Token": token})
    assert connection.getresponse().status == 201
    assert {p.name: p.stat().st_mtime_ns for p in week.iterdir()} == before
    for name in ("feed.xml", "playlist.m3u8", "index.html", "week.json"):
        assert "private words" not in (week / name).read_text()


def test_a_session_made_from_the_phone_plays_and_joins_the_feed(
        week: Path, browser: Any, tmp_path: Path) -> None:
    folder = tmp_path / "week"
    shutil.copytree(week, folder)
    writes = companion(tmp_path / "practice.sqlite")
    server = make_server(folder, "127.0.0.1", 0, companion=writes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        page = phone_page(browser, f"{base}index.html?key={writes.key}", "2026-11-23")
        page.wait_for_selector("details.make")
        page.locator("details.make summary").click()
        page.select_option("#make-kind", "check-in")
        assert page.locator("#make-focus").is_hidden()  # the check-in does not use it
        page.fill("#make-minutes", "2")
        page.fill("#make-feelings", "hopeful, tired")
        page.locator("form.make button[type=submit]").click()
        page.wait_for_selector("ul.jobs li[data-state=building], ul.jobs li[data-state=done],"
                               " section.made", timeout=30_000)
        # When it is made, the page shows it under "Made for you".
        page.wait_for_selector("section.made article", timeout=180_000)
        made = page.locator("section.made article")
        assert made.count() == 1
        name = made.get_attribute("data-session") or ""
        assert name == "made-1-check-in-2min.mp3"
        made.locator("audio").evaluate("a => a.play()")
        page.wait_for_function("document.querySelector('section.made audio').readyState >= 1")
        assert made.locator("audio").evaluate("a => a.duration") == pytest.approx(120, abs=0.1)
        # In the feed and the playlist, as any session of the week.
        host, port = "127.0.0.1", server.server_address[1]
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", "/feed.xml")
        assert f"{base}{name}".encode() in connection.getresponse().read()
        connection.request("GET", "/playlist.m3u8")
        assert name.encode() in connection.getresponse().read()
        assert float(probe(folder / name)["format"]["duration"]) == pytest.approx(120, abs=0.1)
        # It can be logged like the week's own sessions.
        made.locator("details.log summary").click()
        made.locator("button[type=submit]").click()
        page.wait_for_selector("section.made >> text=Saved.")
        # A value the schema refuses is named, and nothing is queued.
        answer = page.evaluate("""() => fetch('api/make', {method: 'POST',
            headers: {'Content-Type': 'application/json',
                      'X-Audioguide-Token': window.audioguideToken},
            body: JSON.stringify({kind: 'breath', minutes: 2})})
            .then(r => r.json().then(b => [r.status, b.error]))""")
        assert answer[0] == 400 and "--minutes" in answer[1] and "too short" in answer[1]
        answer = page.evaluate("""() => fetch('api/make', {method: 'POST',
            headers: {'Content-Type': 'application/json',
                      'X-Audioguide-Token': window.audioguideToken},
            body: JSON.stringify({kind: 'check-in', minutes: 2, voice: 'no-such-voice'})})
            .then(r => r.json().then(b => [r.status, b.error]))""")
        assert answer[0] == 400 and "no-such-voice" in answer[1]  # told now, not later
        # A build can be cancelled; it leaves nothing behind.
        answer = page.evaluate("""() => fetch('api/make', {method: 'POST',
            headers: {'Content-Type': 'application/json',
                      'X-Audioguide-Token': window.audioguideToken},
            body: JSON.stringify({kind: 'breath', minutes: 30})}).then(r => r.json())""")
        # Stopped while it encodes (the last half of a build), not only while it speaks.
        page.wait_for_function(f"""() => fetch('api/jobs').then(r => r.json())
            .then(b => b.jobs.some(j => j.id === {answer['id']} && j.stage === 'encode'))""",
                               timeout=120_000, polling=200)
        page.evaluate(f"""() => fetch('api/cancel', {{method: 'POST',
            headers: {{'Content-Type': 'application/json',
                      'X-Audioguide-Token': window.audioguideToken}},
            body: JSON.stringify({{id: {answer['id']}}})}})""")
        page.wait_for_function(f"""() => fetch('api/jobs').then(r => r.json())
            .then(b => b.jobs.some(j => j.id === {answer['id']} && j.state === 'cancelled'))""",
                               timeout=60_000)
        left = [*folder.glob("*30min*"), *folder.glob(".*")]
        assert [p.name for p in left if p.name != LOCK] == []  # (serve's hold, copied)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("content", [b"", os.urandom(3000), b"SQLite format 3\x00" + bytes(200)])
def test_serve_refuses_a_log_that_is_not_one_before_it_starts(week: Path, tmp_path: Path,
                                                              content: bytes) -> None:
    bad = tmp_path / "practice.sqlite"
    if content:
        bad.write_bytes(content)
    else:
        bad.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "audioguide.cli", "serve", str(week), "--port", "0",
         "--allow-writes", "--log", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--log" in done.stderr and str(bad) in done.stderr, done.stderr
    if content:
        assert bad.read_bytes() == content


def test_made_sessions_never_share_a_number(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Numbers go past every made file the folder holds and every job, taken under a lock
    (requests at once, or a restart, had written one session over another); each listener
    has their own three places in the queue."""
    from audioguide.companion.queue import QUEUE_MAX, BuildQueue
    from audioguide.errors import RequestError

    monkeypatch.setattr(BuildQueue, "_run", lambda self: None)  # nothing is built here
    (tmp_path / "made-1-check-in-2min.mp3").touch()
    (tmp_path / "made-5-breath-5min.png").touch()  # a file left behind counts too
    builds = BuildQueue()
    answers = {"kind": "check-in", "minutes": 2}
    stems: list[str] = []

    def add(listener: str) -> None:
        stems.append(str(builds.add(listener, tmp_path, answers).request.file_stem))

    workers = [threading.Thread(target=add, args=(name,))
               for name in ("ana", "ben", "chidi", "dee") for _ in range(QUEUE_MAX)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(stems) == sorted(f"made-{n}-check-in-2min" for n in range(6, 18))
    with pytest.raises(RequestError, match="3 of your sessions are waiting"):
        builds.add("ana", tmp_path, answers)


def test_only_one_server_writes_in_a_folder(week: Path, tmp_path: Path) -> None:
    port = free_port()
    first = start_serve(week, tmp_path / "practice.sqlite", port)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "audioguide.cli", "serve", str(week), "--port",
             str(free_port()), "--allow-writes", "--log", str(tmp_path / "other.sqlite")],
            capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "Traceback" not in second.stderr
        assert "another 'audioguide serve --allow-writes' is serving" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not (week / ".audioguide-serve.lock").read_bytes()  # empty; never served
    again = start_serve(week, tmp_path / "practice.sqlite", port)  # the hold went with it
    again.send_signal(signal.SIGKILL)
    again.wait()
