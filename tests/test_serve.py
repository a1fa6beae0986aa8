"""The week server facing a network: malformed requests, ranges, validators, idle connections,
the connection cap, what it reveals, and the address it tells a phone to use.

These tests serve a small folder of made-up files (only ``week.json`` makes it a week);
tests/test_week.py serves a real week. Everything listens on 127.0.0.1 except the one
test of ``--host 0.0.0.0``, which serves made-up files for a second.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import ipaddress
import json
import logging
import os
import re
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
from audioguide.week.requests import MAX_CONNECTIONS, PER_CLIENT
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


def test_one_client_cannot_take_every_connection(folder: Path) -> None:
    """A client holding many silent connections is refused past its share; another
    client (here 127.0.0.2, also this machine) still gets in at once."""
    srv, address = start(folder, timeout=10.0)
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(socket.create_connection(address, timeout=10))
        time.sleep(0.3)
        refused = 0
        for sock in held:
            ready, _, _ = select.select([sock], [], [], 0.05)
            refused += bool(ready) and sock.recv(200).startswith(b"HTTP/1.0 503")
        assert refused == MAX_CONNECTIONS - PER_CLIENT
        other = http.client.HTTPConnection(*address, timeout=5,
                                           source_address=("127.0.0.2", 0))
        other.request("GET", "/a.mp3")
        answer = other.getresponse()
        assert answer.status == 200 and len(answer.read()) == SIZE
    finally:
        for sock in held:
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
            sock.sendall(b"GET /big.mp3 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % address[1])
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
        assert proc.stdout.readline().startswith("Feed: ")
        # The QR code keeps its colours though stdout is a pipe: without them it cannot scan.
        assert proc.stdout.readline().startswith("\x1b[97;107m▀▀▀▀")
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


# --- The Host a request names -------------------------------------------------------------

FEED_ON_DISK = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
    "<title>Practice week</title><link>http://127.0.0.1:8000/index.html</link>"
    '<atom:link href="http://127.0.0.1:8000/feed.xml" rel="self" type="application/rss+xml"/>'
    '<item><title>Monday</title><enclosure url="http://127.0.0.1:8000/a.mp3" length="200000" '
    'type="audio/mpeg"/></item></channel></rss>\n')


@pytest.fixture(scope="module")
def week_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A week with a feed and a playlist, whose links the server rewrites for each client."""
    root = tmp_path_factory.mktemp("week")
    (root / "week.json").write_text(json.dumps({"title": "Practice week", "sessions": ["a.mp3"]}))
    (root / "a.mp3").write_bytes(b"\xff\xfb" * 500)
    (root / "feed.xml").write_text(FEED_ON_DISK)
    (root / "playlist.m3u8").write_text("#EXTM3U\n#EXTINF:180,Monday\na.mp3\n")
    return root


@pytest.fixture
def week_server(week_folder: Path) -> Iterator[tuple[str, int]]:
    srv, address = start(week_folder)
    yield address
    srv.shutdown()
    srv.server_close()


def exchange(address: tuple[str, int], request: bytes, family: int = socket.AF_INET) -> bytes:
    """Everything the server answers ``request`` with, on a raw connection it then closes."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(request)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw answer; fails the test when there is no status line."""
    line = answer.split(b"\r\n", 1)[0]
    assert line.startswith((b"HTTP/1.0 ", b"HTTP/1.1 ")), f"no HTTP answer: {answer[:80]!r}"
    return int(line.split()[1])


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]


def header_of(answer: bytes, name: str) -> str | None:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def with_host(path: str, host: bytes | None, method: bytes = b"GET",
              version: bytes = b"HTTP/1.1") -> bytes:
    request = method + b" " + path.encode() + b" " + version + b"\r\n"
    if host is not None:
        request += b"Host: " + host + b"\r\n"
    return request + b"Connection: close\r\n\r\n"


def assert_refused(answer: bytes, status: int) -> None:
    """A short plain-text answer that echoes nothing of the request and holds no traceback."""
    assert status_of(answer) == status, answer[:200]
    assert header_of(answer, "Content-Type") == "text/plain; charset=utf-8"
    body = body_of(answer)
    assert 0 < len(body) < 200 and body.count(b"\n") == 1, body
    for leak in (b"evil", b"nip.io", b"Traceback", b"<", b"Practice", b"a.mp3"):
        assert leak not in body, body


@pytest.mark.parametrize("host", [
    "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "LocalHost.:{port}"])
def test_the_feed_and_playlist_link_to_an_address_the_server_listens_on(
        week_server: tuple[str, int], host: str) -> None:
    host = host.format(port=week_server[1])
    for path, link in [("/feed.xml", b'url="http://%s/a.mp3"'),
                       ("/playlist.m3u8", b"\nhttp://%s/a.mp3\n")]:
        answer = exchange(week_server, with_host(path, host.encode()))
        assert status_of(answer) == 200, answer[:200]
        assert link % host.encode() in body_of(answer)


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:{other}",
    "127.0.0.1:99999", "127.0.0.1", "127.0.0.2:{port}", "0.0.0.0:{port}", "192.0.2.7:{port}",
    "localhost.evil.example:{port}", "2130706433:{port}", "[::1]:{port}",
    "[::ffff:127.0.0.2]:{port}"])
def test_a_host_the_server_does_not_listen_on_is_misdirected(
        week_server: tuple[str, int], host: str, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG, logger="audioguide.week.serve")
    port = week_server[1]
    host = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    for path in ["/feed.xml", "/playlist.m3u8", "/week.json", "/a.mp3", "/nope"]:
        assert_refused(exchange(week_server, with_host(path, host.encode())), 421)
    head = exchange(week_server, with_host("/feed.xml", host.encode(), b"HEAD"))
    assert status_of(head) == 421 and body_of(head) == b""
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("host", [
    b"", b" ", b'evil.example/"><x', b"127.0.0.1:{port}:{port}", b"127.0.0.1:", b"a b:{port}",
    b"_evil.example:{port}", b"[::1:{port}", b"[1.2.3.4]:{port}", b"::1:{port}",
    b"127.0.0.1:{port}\x00", b"\xff\xfe:{port}", b"127.0.0.1:{port}/feed.xml"])
def test_a_malformed_host_is_a_bad_request(week_server: tuple[str, int], host: bytes) -> None:
    host = host.replace(b"{port}", str(week_server[1]).encode())
    assert_refused(exchange(week_server, with_host("/feed.xml", host)), 400)


def test_host_header_edge_cases(week_server: tuple[str, int]) -> None:
    port = week_server[1]
    local = f"127.0.0.1:{port}".encode()
    # HTTP/1.0 without a Host: links to the address the connection reached.
    answer = exchange(week_server, with_host("/feed.xml", None, version=b"HTTP/1.0"))
    assert status_of(answer) == 200
    assert b'url="http://%s/a.mp3"' % local in body_of(answer)
    # HTTP/1.1 requires one (RFC 9112, 3.2).
    assert_refused(exchange(week_server, with_host("/feed.xml", None)), 400)
    # Two Host headers, even one of them right, are one too many.
    twice = b"GET /feed.xml HTTP/1.1\r\nHost: %s\r\nHost: evil.example\r\n\r\n" % local
    assert_refused(exchange(week_server, twice), 400)
    # A request in absolute form names its host in the target, and that one counts.
    answer = exchange(week_server, b"GET http://%s/feed.xml HTTP/1.1\r\nHost: evil.example\r\n"
                      b"Connection: close\r\n\r\n" % local)
    assert status_of(answer) == 200 and b"evil" not in answer
    assert_refused(exchange(week_server, b"GET http://evil.example/feed.xml HTTP/1.1\r\nHost: "
                            b"%s\r\nConnection: close\r\n\r\n" % local), 421)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_hosts_on_an_ipv6_server(week_folder: Path) -> None:
    srv = make_server(week_folder, "::1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    address = ("::1", port)
    try:
        for host in [f"[::1]:{port}", f"[0:0:0:0:0:0:0:1]:{port}", f"localhost:{port}"]:
            answer = exchange(address, with_host("/feed.xml", host.encode()), socket.AF_INET6)
            assert status_of(answer) == 200, host
            assert b'url="http://%s/a.mp3"' % host.encode() in body_of(answer)
        for host in ["[::1]", f"[::2]:{port}", f"127.0.0.1:{port}", "[::1]:99999",
                     f"[::ffff:127.0.0.1]:{port}", f"evil.example:{port}"]:
            answer = exchange(address, with_host("/feed.xml", host.encode()), socket.AF_INET6)
            assert_refused(answer, 421)
        for host in [f"::1:{port}", f"[::1%lo]:{port}", f"[::g]:{port}"]:
            answer = exchange(address, with_host("/feed.xml", host.encode()), socket.AF_INET6)
            assert_refused(answer, 400)
        answer = exchange(address, with_host("/feed.xml", None, version=b"HTTP/1.0"),
                          socket.AF_INET6)
        assert b'url="http://[::1]:%d/a.mp3"' % port in body_of(answer)
    finally:
        srv.shutdown()
        srv.server_close()


def test_hosts_on_every_interface(week_folder: Path) -> None:
    """On 0.0.0.0, each address of this machine and its name; localhost only over loopback."""
    srv = make_server(week_folder, "0.0.0.0", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        lan_address = serve.lan_addresses()[0]
        name = socket.gethostname()
        for via, host, status in [
            ("127.0.0.1", f"127.0.0.1:{port}", 200),
            ("127.0.0.1", f"localhost:{port}", 200),
            ("127.0.0.1", f"{lan_address}:{port}", 200),
            (lan_address, f"{lan_address}:{port}", 200),
            (lan_address, f"127.0.0.1:{port}", 200),
            (lan_address, f"{name}:{port}", 200),
            (lan_address, f"{name.split('.')[0]}.local:{port}", 200),
            (lan_address, f"localhost:{port}", 421),
            (lan_address, f"192.0.2.7:{port}", 421),
            (lan_address, f"{lan_address}.nip.io:{port}", 421),
            (lan_address, f"evil.example:{port}", 421),
            (lan_address, f"0.0.0.0:{port}", 421),
            (lan_address, f"{lan_address}:{port + 1}", 421),
        ]:
            answer = exchange((via, port), with_host("/feed.xml", host.encode()))
            assert status_of(answer) == status, (via, host)
            if status == 200:
                assert b'url="http://%s/a.mp3"' % host.encode() in body_of(answer)
            else:
                assert_refused(answer, status)
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_server_bound_to_a_name_answers_to_that_name(week_folder: Path) -> None:
    srv = make_server(week_folder, "localhost", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        via = (str(srv.server_address[0]), port)
        family = socket.AF_INET6 if ":" in via[0] else socket.AF_INET
        for host in [f"localhost:{port}", f"{via[0]}:{port}" if family == socket.AF_INET
                     else f"[{via[0]}]:{port}"]:
            assert status_of(exchange(via, with_host("/feed.xml", host.encode()), family)) == 200
        assert_refused(exchange(via, with_host("/feed.xml", b"evil.example"), family), 421)
    finally:
        srv.shutdown()
        srv.server_close()


# --- Every request gets an answer ----------------------------------------------------------

ABSURD_DATES = [
    "Mon, 01 Jan 99999999999 00:00:00 GMT",
    "Mon, 01 Jan 99999999999999999999999 00:00:00 GMT",
    "Mon, 01 Jan 2020 00:00:99999999999999 GMT",
    "Mon, 01 Jan 2020 00:00:00 +99999999999",
    "Mon, 31 Feb 2020 00:00:00 GMT",
    "Mon, 99 Foo 2020 99:99:99 GMT",
    "Fri, 31 Dec 9999 23:59:59 -2359",
    "Mon, 01 Jan -5 00:00:00 GMT",
    "9" * 5000,
    ", , ,",
    "\x00",
    "\xff\xfe",
    "",
]


@pytest.mark.parametrize("date", ABSURD_DATES)
def test_an_unreadable_date_is_ignored(server: tuple[str, int], date: str) -> None:
    port = server[1]
    head = f"GET /a.mp3 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    # If-Modified-Since: as if absent, the whole file.
    answer = exchange(server, (head + f"If-Modified-Since: {date}\r\n\r\n").encode("latin-1"))
    assert status_of(answer) == 200 and len(body_of(answer)) == SIZE
    # If-Range: the validator does not match, so the whole file rather than the range.
    answer = exchange(server, (head + f"Range: bytes=0-9\r\nIf-Range: {date}\r\n\r\n")
                      .encode("latin-1"))
    assert status_of(answer) == 200 and len(body_of(answer)) == SIZE


@pytest.mark.parametrize("headers", [
    b"If-None-Match: \x00", b'If-None-Match: "', b"If-None-Match: ,,,,", b"If-None-Match: W/",
    b"If-None-Match: " + b'"x",' * 5000, b"If-None-Match: \xff\xfe\xfd",
    b"Range: bytes=\x00-1", b"Range: bytes=0-1\x00", b"Range: bytes=" + b"-" * 1000,
    b"Range: bytes==0-1", b"Range: bytes=0--1", b"Range: bytes=1-0-", b"Range: \xff=0-1",
    b"Range: bytes=\xb2-\xb3", b"Range: bytes=" + b"0-1," * 5000, b"Range: bytes=0-1\r\n\t2",
    b"Range: bytes=0-9\r\nRange: bytes=10-19", b"If-Range: \x00\r\nRange: bytes=0-9",
    b"If-Range: W/\r\nRange: bytes=0-9",
])
def test_garbled_validators_and_ranges_get_an_answer(server: tuple[str, int],
                                                     headers: bytes) -> None:
    answer = exchange(server, b"GET /a.mp3 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
                      b"Connection: close\r\n\r\n" % (server[1], headers))
    assert status_of(answer) in (200, 206, 304, 416), answer[:200]


BROKEN_FEEDS = {
    "truncated": FEED_ON_DISK.encode()[:150],
    "empty": b"",
    "nul bytes": b"\x00" * 64,
    "nul inside": FEED_ON_DISK.encode().replace(b"<title>", b"<title>\x00", 1),
    "binary": bytes(range(256)) * 16,
    "not utf-8": FEED_ON_DISK.encode().replace(b"Monday", b"Mon\xffday"),
    "nested too deep": FEED_ON_DISK.encode().replace(
        b"<item>", b"<x>" * 100_000 + b"</x>" * 100_000 + b"<item>"),
}


@pytest.mark.parametrize("content", BROKEN_FEEDS.values(), ids=BROKEN_FEEDS.keys())
def test_a_broken_feed_is_a_server_error_with_a_reason(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "week.json").write_text("{}")
    (tmp_path / "feed.xml").write_bytes(content)
    srv, address = start(tmp_path)
    try:
        host = b"127.0.0.1:%d" % address[1]
        answer = exchange(address, with_host("/feed.xml", host))
        assert status_of(answer) == 500
        assert header_of(answer, "Content-Type") == "text/plain; charset=utf-8"
        body = body_of(answer)
        assert body.count(b"\n") == 1 and b"feed.xml" in body and b"Traceback" not in body
        head = exchange(address, with_host("/feed.xml", host, b"HEAD"))
        assert status_of(head) == 500 and body_of(head) == b""
        # The server goes on serving the rest.
        assert status_of(exchange(address, with_host("/week.json", host))) == 200
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("content", [bytes(range(256)) * 16, b"#EXTM3U\n\xff\xfe.mp3\n"])
def test_a_playlist_that_is_not_text_is_a_server_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "week.json").write_text("{}")
    (tmp_path / "playlist.m3u8").write_bytes(content)
    srv, address = start(tmp_path)
    try:
        answer = exchange(address, with_host("/playlist.m3u8", b"127.0.0.1:%d" % address[1]))
        assert status_of(answer) == 500 and b"playlist.m3u8" in body_of(answer)
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_manifest_nested_too_deep_is_served_empty(tmp_path: Path) -> None:
    (tmp_path / "week.json").write_text("[" * 100_000 + "]" * 100_000)
    srv, address = start(tmp_path)
    try:
        answer = exchange(address, with_host("/week.json", b"127.0.0.1:%d" % address[1]))
        assert status_of(answer) == 200 and body_of(answer) == b"{}"
    finally:
        srv.shutdown()
        srv.server_close()


# --- Slow requests --------------------------------------------------------------------------

def test_slow_headers_are_cut_off_and_another_client_gets_in(folder: Path) -> None:
    """A slowloris: more connections than the cap, each sending a header line now and then
    (each well within the idle time-out), some a byte at a time."""
    bound = 1.5
    srv, address = start(folder, timeout=30.0, max_connections=4, header_timeout=bound)
    slow: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        count = 0
        while not stop.wait(0.2):
            count += 1
            for i, sock in enumerate(slow):
                line = b"X-Slow-%d: %d\r\n" % (i, count) if i % 2 else b"X"
                with contextlib.suppress(OSError):
                    sock.sendall(line)

    try:
        for i in range(7):
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(b"GET /a.mp3 HTTP/1.1\r\n" if i % 2 else b"G")
            slow.append(sock)
        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(0.3)
        started = time.monotonic()
        status, body = 0, b""
        while status != 200 and time.monotonic() - started < bound + 5:
            try:  # 503 until a slot is free; Retry-After asks for 2 s, a second will do here
                status, _, body = get(address, "/a.mp3")
            except (ConnectionError, http.client.HTTPException):
                status = 0
            if status != 200:
                time.sleep(0.2)
        waited = time.monotonic() - started
        print(f"a normal client was served after {waited:.2f} s (bound {bound} s)")
        assert status == 200 and len(body) == SIZE
        assert waited < bound + 1.0
        # Every slow connection has been closed, after 408 (or 503 for those over the cap).
        deadline = time.monotonic() + 2.0
        for sock in slow:
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "a slow connection is still open"
            answer = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(4096):
                    answer += chunk
            assert answer.startswith((b"HTTP/1.0 408", b"HTTP/1.0 503")), answer
    finally:
        stop.set()
        for sock in slow:
            sock.close()
        srv.shutdown()
        srv.server_close()


def test_the_header_bound_spares_a_slow_download(tmp_path: Path) -> None:
    (tmp_path / "week.json").write_text("{}")
    data = os.urandom(16 << 20)
    (tmp_path / "big.mp3").write_bytes(data)
    srv, address = start(tmp_path, timeout=5.0, header_timeout=0.5)
    try:
        with socket.create_connection(address, timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET /big.mp3 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % address[1])
            received, started = b"", time.monotonic()
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                assert chunk, "no answer"
                received += chunk
            head, received = received.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.0 200")
            while len(received) < len(data):
                chunk = sock.recv(1 << 20)
                assert chunk, "the download was cut"
                received += chunk
                time.sleep(0.02)
            assert time.monotonic() - started > 1.0 and received == data
    finally:
        srv.shutdown()
        srv.server_close()


# --- The QR code in the terminal ------------------------------------------------------------

#: The colours an xterm draws for the SGR codes, by code.
_PALETTE = {30: (0, 0, 0), 37: (229, 229, 229), 90: (127, 127, 127), 97: (255, 255, 255)}
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def terminal_picture(text: str, background: tuple[int, int, int],
                     foreground: tuple[int, int, int]) -> tuple[Any, list[list[bool]]]:
    """``text`` as a terminal with these default colours shows it: (the image, 8 pixels a
    module; for each module whether it is drawn in a colour the text chose, not a default)."""
    from PIL import Image

    rows: list[list[tuple[int, int, int]]] = []
    chosen: list[list[bool]] = []
    fg: tuple[int, int, int] | None = None
    bg: tuple[int, int, int] | None = None
    for line in text.splitlines():
        top: list[tuple[int, int, int]] = []
        bottom: list[tuple[int, int, int]] = []
        marks: list[bool] = []
        for token in re.split(r"(\x1b\[[0-9;]*m)", line):
            sgr = _SGR.fullmatch(token)
            if sgr:
                for code in map(int, filter(None, sgr[1].split(";"))) if sgr[1] else [0]:
                    if code == 0:
                        fg = bg = None
                    elif code in _PALETTE:
                        fg = _PALETTE[code]
                    elif code - 10 in _PALETTE:
                        bg = _PALETTE[code - 10]
                    else:
                        raise AssertionError(f"an SGR code no terminal test knows: {code}")
                continue
            for char in token:
                ink, paper = fg or foreground, bg or background
                upper, lower = {" ": (paper, paper), "\xa0": (paper, paper),
                                "█": (ink, ink), "▀": (ink, paper), "▄": (paper, ink)}[char]
                top.append(upper)
                bottom.append(lower)
                marks.append(fg is not None and bg is not None)
        rows += [top, bottom]
        chosen.append(marks)
    width = max(len(row) for row in rows) + 4
    scale = 8
    image = Image.new("RGB", (width * scale, (len(rows) + 4) * scale), background)
    for y, row in enumerate(rows):
        for x, colour in enumerate(row):
            image.paste(colour, ((x + 2) * scale, (y + 2) * scale,
                                 (x + 3) * scale, (y + 3) * scale))
    return image, chosen


@pytest.mark.parametrize("terminal", ["dark", "light"])
def test_the_qr_code_scans_on_dark_and_light_terminals(terminal: str) -> None:
    import zxingcpp

    url = "http://192.168.1.23:8000/index.html"
    text = serve.qr_text(url)
    black, white = (0, 0, 0), (255, 255, 255)
    background, foreground = (black, white) if terminal == "dark" else (white, black)
    image, chosen = terminal_picture(text, background, foreground)
    # As a phone's camera reads: dark modules on light, no inverted codes.
    found = zxingcpp.read_barcodes(image, zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
                                   try_invert=False)
    assert [code.text for code in found] == [url]
    # Every character is drawn in colours of its own, none in the terminal's.
    assert all(all(row) for row in chosen)
    # A quiet zone of 4 light modules all round (2 lines of half blocks top and bottom).
    pixels = image.load()
    assert pixels is not None
    lines = text.splitlines()
    modules = (len(_SGR.sub("", lines[0])), 2 * len(lines))
    for x in range(modules[0]):
        for y in range(modules[1]):
            if min(x, y, modules[0] - 1 - x, modules[1] - 1 - y) < 4:
                assert pixels[(x + 2) * 8 + 4, (y + 2) * 8 + 4] == white, (x, y)
