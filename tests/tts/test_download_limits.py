"""``voices --download`` against hostile servers: every download is bounded in size and
time, and leaves no partial file behind, whatever the server does.

Each server is a real HTTP server on 127.0.0.1, started here; ``AUDIOGUIDE_KOKORO_URL``
points the download at it. Most tests serve a small stand-in for the model (its SHA-256
and size pinned in place of the real one's), with deadlines shortened so that a trickle
is given up in seconds; one serves without end against the real pinned size.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from audioguide.cli import cli
from audioguide.errors import EngineError
from audioguide.tts import http_fetch, kokoro_files
from audioguide.tts.kokoro_files import Download
from tests.conftest import assert_refused, interruptible

NAME = "kokoro-v1.0.int8.onnx"
PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes
SMALL = Download(NAME, hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD))
#: The shortened deadlines: nothing for 2 s is a stall; 3 s is the overall deadline.
STALL, DEADLINE = 2.0, 3.0


class Hostile(http.server.BaseHTTPRequestHandler):
    """Serves ``/MODE/NAME`` as MODE says (see :meth:`do_GET`)."""

    protocol_version = "HTTP/1.0"
    sent: ClassVar[dict[str, int]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode = self.path.strip("/").split("/")[0]
        try:
            if mode == "good":
                self.head(len(PAYLOAD))
                self.wfile.write(PAYLOAD)
            elif mode in ("endless", "endless-real"):
                self.head(None)
                self.endless(mode)
            elif mode == "larger":  # no length announced; the body is 100 kB too long
                self.head(None)
                self.wfile.write(PAYLOAD + b"x" * 100_000)
            elif mode == "announces-larger":
                self.head(len(PAYLOAD) + 1)
                self.wfile.write(PAYLOAD + b"x")
            elif mode == "announces-4gib":  # and sends without end
                self.head(4 << 30)
                self.endless(mode)
            elif mode == "announces-less":  # says 1000 bytes, sends them all
                self.head(1000)
                self.wfile.write(PAYLOAD)
            elif mode == "closes-mid-body":  # announces the whole file, sends half
                self.head(len(PAYLOAD))
                self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            elif mode == "ends-early":  # no length announced: the body just stops
                self.head(None)
                self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            elif mode == "trickle":
                self.head(len(PAYLOAD))
                for byte in PAYLOAD:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1)
            elif mode == "silent":
                self.head(len(PAYLOAD))
                self.wfile.flush()
                time.sleep(60)
            elif mode == "wrong":
                self.head(len(PAYLOAD))
                self.wfile.write(bytes(len(PAYLOAD)))
            elif mode == "redirect":  # to the endless server
                self.send_response(302)
                self.send_header("Location", f"/endless/{NAME}")
                self.end_headers()
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def head(self, length: int | None) -> None:
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def endless(self, mode: str) -> None:
        block = b"\0" * (1 << 16)
        while True:
            self.wfile.write(block)
            Hostile.sent[mode] = Hostile.sent.get(mode, 0) + len(block)


class SlowHeaders(http.server.BaseHTTPRequestHandler):
    """Sends its status line a byte a second: only the overall deadline ends it."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        try:
            for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"y" * 100:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1)
        except (BrokenPipeError, ConnectionResetError):
            pass


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[str, object]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


@pytest.fixture
def host() -> Iterator[str]:
    """The hostile server's address."""
    url, server = serve(Hostile)
    yield url
    server.shutdown()  # type: ignore[attr-defined]


@pytest.fixture
def voices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A voices folder of this test's own, the small stand-in pinned in place of the model,
    and the shortened deadlines; the Kokoro folder, where files land."""
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    monkeypatch.setitem(kokoro_files.DOWNLOADS, "kokoro", (SMALL,))
    monkeypatch.setattr(http_fetch, "STALL_SECONDS", STALL)
    monkeypatch.setattr(http_fetch, "DEADLINE_FLOOR", DEADLINE)
    monkeypatch.setattr(http_fetch, "SECONDS_PER_MB", 0.0)
    return tmp_path / "voices" / "kokoro"


def download(base: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Result, float]:
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", base)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["voices", "--download", "kokoro"])
    return result, time.monotonic() - started


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_stand_in_downloads(host: str, voices: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = download(f"{host}/good/", monkeypatch)
    assert result.exit_code == 0, result.output
    assert leftovers(voices) == [NAME] and (voices / NAME).read_bytes() == PAYLOAD


@pytest.mark.parametrize(("mode", "words"), [
    ("endless", ["sent more than the 204800 bytes the file has"]),
    ("larger", ["sent more than the 204800 bytes the file has"]),
    ("redirect", ["sent more than the 204800 bytes the file has"]),
    ("announces-larger", ["announced 204801 bytes, more than the 204800"]),
    ("announces-4gib", ["announced 4294967296 bytes"]),
    ("closes-mid-body", ["connection closed after 102400 bytes", "102400 short"]),
    ("trickle", [f"took longer than the {DEADLINE:.0f} s allowed"]),
    ("silent", [f"nothing came for {STALL:g} s"]),
    ("missing", ["404"]),
])
def test_a_hostile_server_is_given_up_clearly_and_leaves_nothing(
        mode: str, words: list[str], host: str, voices: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    result, took = download(f"{host}/{mode}/", monkeypatch)
    assert_refused(result, f"Could not download {NAME} from 127.0.0.1", *words,
                   "AUDIOGUIDE_KOKORO_URL", f"{NAME} was not installed")
    assert "\n" not in result.output.strip()  # one paragraph
    assert leftovers(voices) == []
    assert took < DEADLINE + 5


@pytest.mark.parametrize(("mode", "got"), [
    ("announces-less", 1000),  # the server's length is believed: 1000 bytes, not the file
    ("ends-early", 102400),
    ("wrong", 204800),
])
def test_what_is_not_the_published_file_is_discarded(
        mode: str, got: int, host: str, voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = download(f"{host}/{mode}/", monkeypatch)
    assert_refused(result, f"{NAME} from 127.0.0.1 is not the published file",
                   f"({got} bytes with SHA-256", f"expected {len(PAYLOAD)} bytes",
                   f"{NAME} was not installed")
    assert leftovers(voices) == []


def test_headers_sent_a_byte_a_second_meet_the_overall_deadline(
        voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, server = serve(SlowHeaders)
    try:
        result, took = download(f"{url}/", monkeypatch)
    finally:
        server.shutdown()  # type: ignore[attr-defined]
    assert_refused(result, f"took longer than the {DEADLINE:.0f} s allowed")
    assert took < DEADLINE + 5 and leftovers(voices) == []


def test_an_endless_body_stops_at_the_real_pinned_size(
        host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real model's pinned size (92 MB), the real deadlines: the download stops as soon
    as the server has sent more, having written no more than the model's size."""
    monkeypatch.setenv("AUDIOGUIDE_VOICES", str(tmp_path / "voices"))
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", f"{host}/endless-real/")
    size = kokoro_files.DOWNLOADS["kokoro"][0].size
    assert size == 92_361_271
    written: list[int] = []
    with pytest.raises(EngineError, match="sent more than the 92361271 bytes"):
        kokoro_files.download("kokoro", lambda name, got, total: written.append(got))
    assert max(written) <= size
    assert Hostile.sent["endless-real"] < size + (16 << 20)  # what the sockets buffered
    assert leftovers(tmp_path / "voices" / "kokoro") == []


def test_every_download_has_a_size_cap() -> None:
    for files in kokoro_files.DOWNLOADS.values():
        for file in files:
            assert file.size is not None and file.size < kokoro_files.UNPINNED_MOST


def test_ctrl_c_in_process_removes_the_partial_file(
        host: str, voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOGUIDE_KOKORO_URL", f"{host}/good/")

    def interrupt(name: str, got: int, total: int) -> None:
        assert leftovers(voices)[0].startswith(f".{NAME}-")  # the partial file, mid-way
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kokoro_files.download("kokoro", interrupt)
    assert leftovers(voices) == []


def start_trickled_download(host: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """``audioguide voices --download kokoro`` in a process of its own, from the trickling
    server, once its partial file is there."""
    folder = tmp_path / "voices" / "kokoro"
    env = dict(os.environ, AUDIOGUIDE_VOICES=str(tmp_path / "voices"),
               AUDIOGUIDE_KOKORO_URL=f"{host}/trickle/")
    child = subprocess.Popen([sys.executable, "-m", "audioguide.cli", "voices", "--download",
                              "kokoro"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 60
    while not list(folder.glob(f".{NAME}-*.part")):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "no partial file appeared"
        time.sleep(0.1)
    time.sleep(1.5)  # a byte or two in
    return child, folder


def test_ctrl_c_removes_the_partial_file(host: str, tmp_path: Path) -> None:
    child, folder = start_trickled_download(host, tmp_path)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode != 0 and "Traceback" not in err, err
    assert leftovers(folder) == []


def test_a_killed_download_s_partial_file_is_removed_by_the_next_run(
        host: str, tmp_path: Path, voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    child, folder = start_trickled_download(host, tmp_path)
    child.kill()
    child.communicate(timeout=30)
    stale = leftovers(folder)
    assert len(stale) == 1 and stale[0].startswith(f".{NAME}-")  # SIGKILL leaves it
    result, _ = download(f"{host}/good/", monkeypatch)
    assert result.exit_code == 0, result.output
    assert leftovers(folder) == [NAME]


def test_a_killed_download_s_partial_file_is_removed_even_when_the_next_fails(
        host: str, voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    voices.mkdir(parents=True)
    (voices / f".{NAME}-killed.part").write_bytes(b"half a model")
    result, _ = download(f"{host}/wrong/", monkeypatch)
    assert_refused(result, "is not the published file")
    assert leftovers(voices) == []


def test_a_download_under_way_keeps_its_partial_file(
        host: str, voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run's download, still going (it holds its file's lock), is left alone."""
    voices.mkdir(parents=True)
    busy = voices / f".{NAME}-busy.part"
    busy.write_bytes(b"so far")
    with busy.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        result, _ = download(f"{host}/good/", monkeypatch)
        assert result.exit_code == 0, result.output
        assert leftovers(voices) == [busy.name, NAME]
