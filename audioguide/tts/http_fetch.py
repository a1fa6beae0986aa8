"""Downloads that cannot run away: a size cap, a stall timeout and an overall deadline.

A server may send without end, send more than it announced, announce what it does not
send, trickle a byte a second or stop mid-body; none of these may fill the disk or hold
the caller for ever. Every socket of a download (the first and any after a redirect) is
watched, and shut when the download's deadline passes, so that no read — of the status
line, a header, the TLS handshake or the body — can outlast it.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, BinaryIO

#: Seconds without a byte before a download is given up.
STALL_SECONDS = 60.0
#: The overall deadline: this floor, plus this many seconds per MB at most expected (10 s
#: a MB is 100 kB/s, a generous budget for any connection that can fetch the file at all).
DEADLINE_FLOOR = 300.0
SECONDS_PER_MB = 10.0
#: Bytes read at a time.
BLOCK = 1 << 16


class FetchError(Exception):
    """A download that failed; the message says how, in words that fit in a sentence."""


def deadline_for(most: int) -> float:
    """Seconds a download of at most ``most`` bytes may take in all."""
    return DEADLINE_FLOOR + SECONDS_PER_MB * most / 1e6


def fetch(url: str, out: BinaryIO, most: int,
          progress: Callable[[int], None] | None = None) -> int:
    """Write what ``url`` serves into ``out``, at most ``most`` bytes; the number written.

    Raises :class:`FetchError` when the server announces or sends more than ``most``
    bytes, sends nothing for :data:`STALL_SECONDS`, takes longer in all than
    :func:`deadline_for` allows, closes before the end it announced, or cannot be
    reached; ``ValueError`` when ``url`` is not an http(s) address."""
    seconds = deadline_for(most)
    watch = _Watch(seconds)
    try:
        opener = urllib.request.build_opener(_Http(watch), _Https(watch))
        with opener.open(url, timeout=STALL_SECONDS) as response:
            _check_announced(response, most)
            got = _copy(response, out, most, progress)
        if watch.expired:  # the read that the deadline cut short looked like the end
            raise FetchError()
        return got
    except (FetchError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        if watch.expired:
            raise FetchError(f"it took longer than the {seconds:.0f} s allowed") from None
        if isinstance(exc, FetchError):
            raise
        raise FetchError(_reason(exc)) from None
    finally:
        watch.cancel()


def _check_announced(response: Any, most: int) -> None:
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.strip().isdigit() and int(announced) > most:
        raise FetchError(f"the server announced {int(announced)} bytes, more than the "
                          f"{most} the file has")


def _copy(response: Any, out: BinaryIO, most: int,
          progress: Callable[[int], None] | None) -> int:
    announced = response.length  # None when the server did not say
    got = 0
    while block := response.read1(BLOCK):
        got += len(block)
        if got > most:
            raise FetchError(f"the server sent more than the {most} bytes the file has")
        out.write(block)
        if progress is not None:
            progress(got)
    if announced is not None and got < announced:
        raise FetchError(f"the connection closed after {got} bytes of the body, "
                         f"{announced - got} short of what the server announced")
    return got


def _reason(exc: BaseException) -> str:
    """What went wrong, in words for a sentence."""
    if isinstance(exc, TimeoutError):
        return f"nothing came for {STALL_SECONDS:g} s"
    if isinstance(exc, http.client.IncompleteRead):
        return (f"the connection closed after {len(exc.partial)} bytes of the body, "
                f"{exc.expected} short of what the server announced")
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, TimeoutError):
        return f"nothing came for {STALL_SECONDS:g} s"
    return str(reason) or type(reason).__name__


class _Watch:
    """Shuts every socket of one download when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[int] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        """Watch ``sock`` (by its descriptor: a TLS wrap takes over the socket object)."""
        with self._lock:
            self._sockets.append(sock.fileno())
            if self.expired:
                _shut(sock.fileno())

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for fd in self._sockets:
                _shut(fd)

    def cancel(self) -> None:
        with self._lock:
            self._timer.cancel()
            self._sockets.clear()


def _shut(fd: int) -> None:
    """Shut the connection on descriptor ``fd``: a blocked read of it returns at once."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed meanwhile
        pass


def _watched(watch: _Watch, connection: Any) -> Any:
    """``connection`` (an ``http.client`` connection) with its sockets watched."""
    create = connection._create_connection

    def create_watched(*args: Any, **kwargs: Any) -> socket.socket:
        sock: socket.socket = create(*args, **kwargs)
        watch.add(sock)
        return sock

    connection._create_connection = create_watched
    return connection


class _Http(urllib.request.HTTPHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(lambda *a, **k: _watched(self.watch, http.client.HTTPConnection(
            *a, **k)), req)


class _Https(urllib.request.HTTPSHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(lambda *a, **k: _watched(self.watch, http.client.HTTPSConnection(
            *a, **k)), req, context=self._context)  # type: ignore[attr-defined]
