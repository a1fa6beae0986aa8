"""A batch served whole: every listener's week under its own path, with its own key and its
own practice log (SQLite on disk), driven by http.client, Chromium and the real CLI."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from audioguide.week.serve import batch_listeners, companions_for, make_server
from tests.conftest import chromium, launch

pytestmark = pytest.mark.slow

PLAN = """\
[week]
title = "Short week"

[[session]]
day = 1
kind = "check-in"
minutes = 2.5
"""
ROSTER = """\
[batch]
start = 2026-11-23
plan = "short.toml"

[[listener]]
id = "ana"
name = "Ana"

[[listener]]
id = "Ben Okafor"
name = "Ben"

[[listener]]
id = "api"
name = "Api"
"""
SESSION = "1-mon-1-check-in-2.5min.mp3"


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("roster")
    (folder / "short.toml").write_text(PLAN)
    (folder / "roster.toml").write_text(ROSTER)
    out = tmp_path_factory.mktemp("batch")
    result = CliRunner().invoke(cli, ["batch", str(folder / "roster.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def served(batch_out: Path, tmp_path: Path) -> Iterator[tuple[tuple[str, int], dict[str, str]]]:
    """The batch served with writes on: the address, and each listener's key."""
    writes = companions_for(batch_out, tmp_path / "logs")
    server = make_server(batch_out, "127.0.0.1", 0, companions=writes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1]), {n: c.key for n, c in writes.items()}
    server.shutdown()
    server.server_close()


def call(address: tuple[str, int], method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    connection = http.client.HTTPConnection(*address, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read(), response


def entries(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        return count


def test_each_listener_has_their_own_path_feed_and_key(
        batch_out: Path, served: tuple[tuple[str, int], dict[str, str]], tmp_path: Path) -> None:
    address, keys = served
    assert batch_listeners(batch_out) == {"ana": ["ana/2026-W48"],
                                          "ben-okafor": ["ben-okafor/2026-W48"],
                                          "api": ["api/2026-W48"]}
    assert sorted(keys) == ["ana", "api", "ben-okafor"] and keys["ana"] != keys["ben-okafor"]
    # A listener called "api" has their pages, files and API like anyone.
    assert call(address, "GET", "/api/2026-W48/index.html")[0] == 200
    assert call(address, "GET", f"/api/2026-W48/{SESSION}")[0] == 200
    _, state, _ = call(address, "GET", "/api/2026-W48/api/state",
                       headers={"Cookie": f"audioguide_key={keys['api']}"})
    assert json.loads(state)["log"] == "open"
    # The batch's record names everyone: it is not served.
    for spelt in ("/batch.json", "/./batch.json", "/%62atch.json", "/ana/../batch.json",
                  f"/batch.json?key={keys['ana']}", "/batch.json?key=stale"):
        assert call(address, "GET", spelt)[0] == 404, spelt
    # Reading needs no key; each feed's links lead into its own listener's folder.
    status, feed, _ = call(address, "GET", "/ben-okafor/2026-W48/feed.xml")
    assert status == 200
    host = f"http://{address[0]}:{address[1]}"
    assert f"{host}/ben-okafor/2026-W48/{SESSION}".encode() in feed
    assert b"/ana/" not in feed
    # A key opens only its own listener: the cookie is scoped to their path.
    status, _, answer = call(address, "GET", f"/ana/2026-W48/index.html?key={keys['ana']}")
    assert status == 303 and "Path=/ana/;" in answer.getheader("Set-Cookie")
    status, _, answer = call(address, "GET",
                             f"/ben-okafor/2026-W48/index.html?key={keys['ana']}")
    assert status == 200 and answer.getheader("Set-Cookie") is None  # read, not a key
    ana = {"Cookie": f"audioguide_key={keys['ana']}"}
    _, state, _ = call(address, "GET", "/ana/2026-W48/api/state", headers=ana)
    token = json.loads(state)["token"]
    _, other, _ = call(address, "GET", "/ben-okafor/2026-W48/api/state", headers=ana)
    assert json.loads(other) == {"log": "locked"}
    # Two keys' cookies at once (another audioguide on this host), in either order.
    for pair in (f"audioguide_key={keys['ben-okafor']}; audioguide_key={keys['ana']}",
                 f"audioguide_key={keys['ana']}; audioguide_key={keys['ben-okafor']}"):
        _, both, _ = call(address, "GET", "/ana/2026-W48/api/state", headers={"Cookie": pair})
        assert json.loads(both)["log"] == "open"
    body = json.dumps({"session": SESSION, "done": True, "rating": 8}).encode()
    write = {**ana, "X-Audioguide-Token": token, "Content-Type": "application/json"}
    for path in ("/ben-okafor/2026-W48/api/log", "/ana/../ben-okafor/2026-W48/api/log",
                 "/ana/%2e%2e/ben-okafor/2026-W48/api/log"):
        status, _, _ = call(address, "POST", path, body, write)
        assert status in (403, 404), path
    assert entries(tmp_path / "logs" / "ben-okafor.sqlite") == 0
    status, _, _ = call(address, "POST", "/ana/2026-W48/api/log", body, write)
    assert status == 201
    assert entries(tmp_path / "logs" / "ana.sqlite") == 1
    assert entries(tmp_path / "logs" / "ben-okafor.sqlite") == 0
    # The batch's own folder lists no one.
    assert call(address, "GET", "/")[0] == 404


def test_a_listeners_page_keeps_their_log(
        served: tuple[tuple[str, int], dict[str, str]], tmp_path: Path) -> None:
    address, keys = served
    base = f"http://{address[0]}:{address[1]}"
    with chromium() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{base}/ben-okafor/2026-W48/index.html?key={keys['ben-okafor']}")
        page.wait_for_selector("body.logging")
        card = page.locator("article").first
        card.locator("details.log summary").click()
        card.locator("input[name=feeling]").fill("steady")
        card.locator("button[type=submit]").click()
        page.wait_for_selector("article >> text=Saved.")
        # The same phone on Ana's page: Ben's key does not open it.
        page.goto(f"{base}/ana/2026-W48/index.html")
        page.wait_for_selector("text=To keep a practice log on this phone")
        assert page.locator("body.logging").count() == 0
        browser.close()
    assert entries(tmp_path / "logs" / "ben-okafor.sqlite") == 1
    assert entries(tmp_path / "logs" / "ana.sqlite") == 0


def test_serve_prints_each_listeners_address(batch_out: Path, tmp_path: Path) -> None:
    """The CLI on a batch's folder: read-only, each listener's page; with writes, each with
    their own key (refused before: 'not a week folder')."""
    import audioguide.week.serve as served_module

    printed: list[dict[str, str]] = []

    def ready(url: str, beyond: bool, pages: dict[str, str]) -> None:
        printed.append(pages)
        raise KeyboardInterrupt  # stop at once: serve returns

    served_module.serve(batch_out, "127.0.0.1", 0, ready)
    writes = companions_for(batch_out, tmp_path / "logs")
    served_module.serve(batch_out, "127.0.0.1", 0, ready, writes)
    plain, keyed = printed
    assert sorted(plain) == ["ana", "api", "ben-okafor"]
    assert plain["ana"].endswith("/ana/2026-W48/index.html")
    assert keyed["ben-okafor"].endswith(f"/ben-okafor/2026-W48/index.html?key="
                                        f"{writes['ben-okafor'].key}")
    assert (tmp_path / "logs" / "ana.key").is_file()
    assert not (tmp_path / "logs" / "ana.sqlite").exists()  # made on first use only
