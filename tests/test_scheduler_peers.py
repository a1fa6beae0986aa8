"""``batch --scheduler`` pointed at servers that are not Dask schedulers: each is refused
in one paragraph within the documented 15 s (well inside 30 s here), with no traceback and
with memory bounded, whatever the peer sends or withholds.

Each peer is a real socket server on 127.0.0.1, started here; each batch runs in a process
of its own, whose peak memory (VmHWM) it reports itself as it exits.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: What a real scheduler (distributed 2026.8) sends first: its greeting (the handshake),
#: 58 bytes of frames after their 8-byte length.
GREETING = (b":\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00*\x00\x00\x00"
            b"\x00\x00\x00\x00\x83\xabcompression\xc0\xa6python\x93\x03\x0b\x07\xafpickle-"
            b"protocol\x05")
#: The most a refusal may take, and the most memory the refused batch may have used.
SECONDS, MEMORY = 30.0, 500 << 20

Peer = Callable[[socket.socket], None]


def huge_frame(conn: socket.socket) -> None:
    """Announces a 4 GiB frame, then sends it (zeros) for as long as it is read."""
    conn.sendall(struct.pack("Q", 4 << 30))
    block = bytes(1 << 20)
    while True:
        conn.sendall(block)


def silent(conn: socket.socket) -> None:
    time.sleep(120)


def trickle(conn: socket.socket) -> None:
    """A scheduler's own greeting, a byte a second."""
    for byte in GREETING:
        conn.sendall(bytes([byte]))
        time.sleep(1)
    time.sleep(120)


def garbage(conn: socket.socket) -> None:
    """A plausible length, then frames that are not a greeting."""
    conn.sendall(struct.pack("Q", 40) + struct.pack("Q", 7) + b"\xff" * 32)
    time.sleep(120)


def http_answer(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    time.sleep(120)


def wrong_message(conn: socket.socket) -> None:
    """Well-formed frames holding a message that is not a greeting."""
    body = struct.pack("QQ", 1, 4) + b"\x93\x01\x02\x03"  # msgpack [1, 2, 3]
    conn.sendall(struct.pack("Q", len(body)) + body)
    time.sleep(120)


def greets_then_silent(conn: socket.socket) -> None:
    """Greets as a scheduler does, then never answers the client."""
    conn.sendall(GREETING)
    time.sleep(120)


def greets_then_huge(conn: socket.socket) -> None:
    """Greets as a scheduler does, then announces a 4 GiB frame."""
    conn.sendall(GREETING)
    huge_frame(conn)


def closes(conn: socket.socket) -> None:
    conn.close()


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every connection as ``request.param`` does; its
    address, as tcp://HOST:PORT."""
    behave: Peer = request.param
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            behave(conn)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def batch_at(address: str, tmp_path: Path) -> tuple[int, str, float, int]:
    """``audioguide batch ROSTER --scheduler ADDRESS`` in a process of its own: its exit
    status, stderr, seconds taken and peak resident memory in bytes."""
    (tmp_path / "in").mkdir()
    roster = tmp_path / "in" / "roster.toml"
    (tmp_path / "in" / "short.toml").write_text(
        '[week]\ntitle = "W"\n\n[[session]]\nday = 1\nkind = "check-in"\nminutes = 2\n')
    roster.write_text('[batch]\nstart = 2026-11-23\nplan = "short.toml"\n\n'
                      '[[listener]]\nid = "a"\n')
    err_path = tmp_path / "stderr"
    peak_path = tmp_path / "peak"
    # The peak is read by the process itself (VmHWM, of its own memory since it started):
    # the kernel's ru_maxrss of a child also counts what this test process held when it
    # forked it, gigabytes late in a whole test run.
    code = ("import sys\nfrom pathlib import Path\nfrom audioguide.cli import main\n"
            "try:\n    main()\nfinally:\n"
            "    hwm = [l for l in Path('/proc/self/status').read_text().splitlines()"
            " if l.startswith('VmHWM:')][0].split()[1]\n"
            f"    Path({str(peak_path)!r}).write_text(hwm)\n")
    started = time.monotonic()
    with err_path.open("w") as err:
        child = subprocess.Popen([sys.executable, "-c", code, "batch", str(roster),
                                  "--out", str(tmp_path / "out"), "--scheduler", address],
                                 stdout=subprocess.DEVNULL, stderr=err)
        watchdog = threading.Timer(90, child.kill)
        watchdog.start()
        child.wait()
        watchdog.cancel()
    return (child.returncode, err_path.read_text(), time.monotonic() - started,
            int(peak_path.read_text()) * 1024)


@pytest.mark.parametrize(("peer", "words"), [
    (huge_frame, ["announces 4294967296 bytes"]),
    (silent, ["did not greet", "15 s"]),
    (trickle, ["did not greet", "15 s"]),
    (garbage, ["not a Dask scheduler's greeting"]),
    (http_answer, ["announces"]),
    (wrong_message, ["not a Dask scheduler's greeting"]),
    (closes, ["closed the connection"]),
    (greets_then_silent, ["did not take the client within"]),
    (greets_then_huge, ["announced a message of 4294967296 bytes"]),
], indirect=["peer"])
def test_a_peer_that_is_not_a_scheduler_is_refused_in_time_and_memory(
        peer: str, words: list[str], tmp_path: Path) -> None:
    code, err, took, peak = batch_at(peer, tmp_path)
    print(f"{peer}: exit {code} in {took:.1f} s, peak {peak >> 20} MB")
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]), err  # one paragraph, last
    message = errors[0]
    assert message.startswith(f"Error: --scheduler: cannot reach a Dask scheduler at "
                              f"{peer!r}"), err
    for word in [*words, "tcp://HOST:PORT", "dask scheduler", "same version of distributed"]:
        assert word in message, err
    assert took < SECONDS, took
    assert peak < MEMORY, peak
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
