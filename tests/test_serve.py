"""The week server facing a network: malformed requests, ranges, validators, idle connections,
the connection cap, what it reveals, and the address it tells a phone to use.

These tests serve a small folder of made-up files (only ``week.json`` makes it a week);
tests/test_week.py serves a real week. Everything listens on 127.0.0.1 except the one
test of ``--host 0.0.0.0``, which serves made-up files for a second.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audioguide.week import lan, serve
from audioguide.week.serve import make_server
from tests.conftest import interruptible

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow

SIZE = 200_000
PLAN_PATH = "/home/alex/private/plans/week.toml"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    (root / "week.json").write_text(json.dumps({
        "title": "Practice week", "start": "2026-11-23", "plan": PLAN_PATH,
        "sessions": ["a.mp3"]}))
    (root / "a.mp3").write_bytes(bytes(range(256)) * (SIZE // 256) + bytes(SIZE % 256))
    an_hour_ago = time.time() - 3600
    os.utime(root / "a.mp3", (an_hour_ago, an_hour_ago))
    return root


def start(folder: Path, **options: Any) -> tuple[Any, tuple[str, int]]:
    """A server for ``folder`` on 127.0.0.1, serving in a thread; (server, address)."""
    srv = make_server(folder, "127.0.0.1", 0, **options)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, ("127.0.0.1", srv.server_address[1])


@pytest.fixture
def server(folder: Path) -> Iterator[tuple[str, int]]:
    srv, address = start(folder)
    yield address
    srv.shutdown()
    srv.server_close()


def get(address: tuple[str, int], path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request on a connection of its own."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(("path", "status"), [
    ("/x%00.mp3", 400),
    ("/a.mp3%00", 400),
    ("/%0a.mp3", 400),
    ("/" + "a" * 300 + ".mp3", 404),
    ("/" + "a" * 255 + "/" + "b" * 256, 404),
    ("/%ff%fe.mp3", 400),
    ("/" + "%2e%2e/" * 60 + "etc/passwd", 404),
])
def test_malformed_targets_get_a_clean_4xx(server: tuple[str, int], path: str, status: int,
                                           caplog: pytest.LogCaptureFixture,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG, logger="audioguide.week.serve")
    assert get(server, path)[0] == status
    # No exception while serving it: none logged, no traceback printed by socketserver.
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in capsys.readouterr().err


BIG = "9" * 5000


@pytest.mark.parametrize(("header", "status", "span"), [
    ("bytes=0-99", 206, (0, 99)),
    ("bytes=100-", 206, (100, SIZE - 1)),
    ("bytes=-100", 206, (SIZE - 100, SIZE - 1)),
    ("bytes=0-" + BIG, 206, (0, SIZE - 1)),
    ("bytes=-" + BIG, 206, (0, SIZE - 1)),
    ("bytes=" + BIG + "-", 416, None),
    ("bytes=" + BIG + "-" + BIG, 416, None),
    (f"bytes={SIZE}-", 416, None),
    ("bytes=-0", 416, None),
    # Ignored, as HTTP allows: the whole file.
    ("bytes=0-1,5-6", 200, (0, SIZE - 1)),
    ("bytes=0-10, 20-30, 40-50", 200, (0, SIZE - 1)),
    ("items=0-5", 200, (0, SIZE - 1)),
    ("bytes=5-2", 200, (0, SIZE - 1)),
    ("bytes=abc", 200, (0, SIZE - 1)),
    ("bytes=-", 200, (0, SIZE - 1)),
    ("bytes 0-5", 200, (0, SIZE - 1)),
])
def test_ranges(server: tuple[str, int], folder: Path, header: str, status: int,
                span: tuple[int, int] | None) -> None:
    data = (folder / "a.mp3").read_bytes()
    got, headers, body = get(server, "/a.mp3", {"Range": header})
    assert got == status
    if status == 416:
        assert headers["Content-Range"] == f"bytes */{SIZE}" and body == b""
        return
    assert span is not None
    assert body == data[span[0]:span[1] + 1]
    assert int(headers["Content-Length"]) == len(body)
    if status == 206:
        assert headers["Content-Range"] == f"bytes {span[0]}-{span[1]}/{SIZE}"
    else:
        assert "Content-Range" not in headers


def test_server_header_names_no_python(server: tuple[str, int]) -> None:
    _, headers, _ = get(server, "/a.mp3", method="HEAD")
    assert headers["Server"] == "audioguide"
    _, headers, _ = get(server, "/nope")
    assert headers["Server"] == "audioguide"


def test_validators_and_conditional_requests(server: tuple[str, int], folder: Path) -> None:
    status, headers, _ = get(server, "/a.mp3", method="HEAD")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag.startswith('"') and etag.endswith('"')
    mtime = int((folder / "a.mp3").stat().st_mtime)
    assert email.utils.parsedate_to_datetime(modified).timestamp() == mtime
    later = email.utils.formatdate(mtime + 60, usegmt=True)
    earlier = email.utils.formatdate(mtime - 60, usegmt=True)
    for request, expected in [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": "W/" + etag}, 304),
        ({"If-None-Match": f'"other", {etag}'}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": later}, 304),
        ({"If-Modified-Since": earlier}, 200),
        ({"If-Modified-Since": "yesterday"}, 200),
        # A date in the future is no validator.
        ({"If-Modified-Since": email.utils.formatdate(time.time() + 3600, usegmt=True)}, 200),
        # If-None-Match wins over If-Modified-Since.
        ({"If-None-Match": '"other"', "If-Modified-Since": modified}, 200),
    ]:
        status, headers, body = get(server, "/a.mp3", request)
        assert status == expected, request
        if expected == 304:
            assert body == b"" and headers["ETag"] == etag
        else:
            assert len(body) == SIZE
    range_ = {"Range": "bytes=0-9"}
    for condition, expected in [(etag, 206), (modified, 206), ('"stale"', 200),
                                ("W/" + etag, 200), (earlier, 200), ("nonsense", 200)]:
        status, _, body = get(server, "/a.mp3", {**range_, "If-Range": condition})
        assert status == expected, condition
        assert len(body) == (10 if expected == 206 else SIZE)


def test_manifest_reveals_no_paths(server: tuple[str, int]) -> None:
    status, _, body = get(server, "/week.json")
    assert status == 200
    served = json.loads(body)
    assert served["plan"] == "week.toml"
    assert served["sessions"] == ["a.mp3"]
    assert b"/home" not in body and b"alex/private" not in body


def test_idle_connections_time_out_and_are_capped(folder: Path) -> None:
    srv, address = start(folder, timeout=1.0, max_connections=8)
    silent: list[socket.socket] = []
    try:
        baseline = threading.active_count()
        for _ in range(40):
            silent.append(socket.create_connection(address, timeout=10))
        time.sleep(0.3)
        assert threading.active_count() <= baseline + 8
        # A connection over the cap is answered at once and closed.
        over = silent[-1]
        assert over.recv(200).startswith(b"HTTP/1.0 503")
        # Every silent connection is closed by the server within its time-out.
        deadline = time.monotonic() + 5
        for sock in silent:
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "a silent connection is still held open"
            while sock.recv(4096):
                pass
        time.sleep(0.2)
        assert threading.active_count() <= baseline + 1
        status, _, body = get(address, "/a.mp3")
        assert status == 200 and len(body) == SIZE
    finally:
        for sock in silent:
            sock.close()
        srv.shutdown()
        srv.server_close()


def test_a_client_that_stops_reading_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "week.json").write_text("{}")
    (tmp_path / "big.mp3").write_bytes(os.urandom(32 << 20))
    srv, address = start(tmp_path, timeout=1.0, max_connections=2)
    try:
        baseline = threading.active_count()
        stuck = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(address)
            sock.sendall(b"GET /big.mp3 HTTP/1.1\r\nHost: x\r\n\r\n")
            stuck.append(sock)
        time.sleep(0.3)
        assert threading.active_count() == baseline + 2
        deadline = time.monotonic() + 8
        while threading.active_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.1)
        assert threading.active_count() == baseline, "a writer blocked on a stalled client"
        assert get(address, "/week.json")[0] == 200
        for sock in stuck:
            sock.close()
    finally:
        srv.shutdown()
        srv.server_close()


class _FakeUDP:
    """A UDP socket whose route to anywhere leaves from 192.168.1.23."""

    def __init__(self, *args: Any) -> None:
        pass

    def __enter__(self) -> _FakeUDP:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def connect(self, address: tuple[str, int]) -> None:
        pass

    def getsockname(self) -> tuple[str, int]:
        return ("192.168.1.23", 40000)


def test_any_address_names_the_lan_address_not_the_host_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A usual Debian install: the host name resolves to 127.0.1.1.
    monkeypatch.setattr(socket, "gethostname", lambda: "debian")
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "127.0.1.1")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
        (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.1.1", 0)),
        (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("10.8.0.5", 0))])
    monkeypatch.setattr(socket, "socket", _FakeUDP)
    urls, beyond = serve.public_urls("0.0.0.0", 8000)
    assert urls == ["http://192.168.1.23:8000/", "http://10.8.0.5:8000/"]
    assert beyond
    assert serve.public_url("0.0.0.0", 8000) == ("http://192.168.1.23:8000/", True)


def test_loopback_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve.public_urls("127.0.0.1", 8000) == (["http://127.0.0.1:8000/"], False)
    assert serve.public_urls("localhost", 8000) == (["http://localhost:8000/"], False)
    assert serve.public_urls("192.0.2.7", 8000) == (["http://192.0.2.7:8000/"], True)

    def unresolvable(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror("no /etc/hosts")

    # localhost is loopback by definition, even where it does not resolve (a bare root).
    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    assert serve.public_urls("localhost", 8000) == (["http://localhost:8000/"], False)
    assert serve.public_urls("phone.example", 8000) == (["http://phone.example:8000/"], True)


def test_an_unanswered_host_name_lookup_does_not_hold_up_serve(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A host name in no hosts file, and DNS that does not answer (a bare root, offline).
    def unanswered(*args: object, **kwargs: object) -> list[object]:
        time.sleep(30)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", unanswered)
    started = time.monotonic()
    found = serve.lan_addresses()
    assert time.monotonic() - started < 3 * lan.HOST_LOOKUP_S
    assert found == [a for a in found if not ipaddress.ip_address(a).is_loopback]


def test_lan_addresses_come_from_the_routing_table() -> None:
    found = serve.lan_addresses()
    assert found, "no address but loopback: this test needs a machine on a network"
    for address in found:
        parsed = ipaddress.ip_address(address)
        assert not parsed.is_loopback and not parsed.is_unspecified
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("192.168.255.255", 9))
        assert found[0] == udp.getsockname()[0]


def test_serving_on_every_interface_warns_and_names_each_address(folder: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "audioguide.cli", "serve", str(folder), "--host", "0.0.0.0",
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=interruptible)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert first.startswith("Serving "), first
        url = first.split(" at ", 1)[1].split()[0]
        host = url.split("//", 1)[1].rsplit(":", 1)[0]
        assert not ipaddress.ip_address(host).is_loopback, first
        warning = ""
        deadline = time.monotonic() + 10
        while "network" not in warning and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                warning += proc.stderr.readline()
        assert "Warning" in warning and "anyone on the same network" in warning, warning
        port = url.rsplit(":", 1)[1].rstrip("/")
        for address in serve.lan_addresses():
            assert f"http://{address}:{port}/" in warning
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
