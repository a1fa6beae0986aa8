"""The parts of serving that are not the handler's: a request's errors, its incoming
bytes under a deadline (a slowloris cannot hold a connection), what a GET sends, and
the server that caps its connections."""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

log = logging.getLogger("audioguide.week.serve")

#: Connections served at once; more are answered 503 and closed.
MAX_CONNECTIONS = 32
#: Of those, connections one client address may hold at once.
PER_CLIENT = 12
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nServer: audioguide\r\nRetry-After: 2\r\n"
         b"Content-Length: 0\r\nConnection: close\r\n\r\n")


class RefusedError(Exception):
    """The request is answered with ``status`` and the one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestTooSlowError(Exception):
    """The request's headers were not all in by its deadline (not a TimeoutError, which
    the standard handler takes for an idle connection and closes without a word)."""


class Incoming(io.RawIOBase):
    """A connection's incoming bytes: each read waits at most the idle time-out, and not
    past the deadline of the request being read."""

    def __init__(self, sock: socket.socket, idle: float) -> None:
        super().__init__()
        self.sock = sock
        self.idle = idle
        self.deadline = float("inf")
        #: Bytes read since the deadline was set.
        self.received = 0

    def start(self, seconds: float) -> None:
        """A request is awaited: all of its headers must be in within ``seconds``."""
        self.deadline = time.monotonic() + seconds
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RequestTooSlowError
        self.sock.settimeout(min(left, self.idle))
        try:
            count = self.sock.recv_into(buffer)
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                raise RequestTooSlowError from None
            raise
        finally:
            self.sock.settimeout(self.idle)  # what writes wait for
        self.received += count
        return count


@dataclass(frozen=True)
class Representation:
    """What a GET of one file sends: the file itself, or a copy made for this request."""

    path: Path
    size: int
    mtime: int
    etag: str
    #: The bytes to send, when they differ from the file on disk.
    body: bytes | None = None

    @property
    def last_modified(self) -> str:
        """The ``Last-Modified`` header value."""
        return email.utils.formatdate(self.mtime, usegmt=True)


def public_manifest(data: bytes) -> bytes:
    """``week.json`` as the network sees it: absolute paths reduced to their last part."""
    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, str) and (PurePosixPath(value).is_absolute()
                                       or PureWindowsPath(value).is_absolute()
                                       or value.startswith("~")):
            return PureWindowsPath(value).name if "\\" in value else PurePosixPath(value).name
        return value

    try:
        return json.dumps(scrub(json.loads(data)), indent=2).encode()
    except (ValueError, RecursionError):  # not JSON, or nested past what Python can read
        return b"{}"


class WeekServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; the rest get 503."""

    #: Connections the kernel holds until accepted (socketserver's default is 5).
    request_queue_size = 64

    def __init__(self, address: tuple[str, int],
                 handler: Callable[..., http.server.BaseHTTPRequestHandler],
                 max_connections: int = MAX_CONNECTIONS) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        #: The address or name the server was asked to listen on (``--host``).
        self.bound_host = address[0]
        self._slots = threading.BoundedSemaphore(max_connections)
        #: Connections one client may hold at once (a phone's player needs a few): one
        #: client cannot take every slot.
        self.per_client = min(PER_CLIENT, max_connections)
        self._clients: dict[str, int] = {}
        self._clients_lock = threading.Lock()
        super().__init__(address, handler)

    def _take(self, client: str) -> bool:
        with self._clients_lock:
            if self._clients.get(client, 0) >= self.per_client:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self._clients[client] = self._clients.get(client, 0) + 1
            return True

    def _give_back(self, client: str) -> None:
        with self._clients_lock:
            left = self._clients.get(client, 1) - 1
            if left:
                self._clients[client] = left
            else:
                self._clients.pop(client, None)
            self._slots.release()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread for the connection if a slot is free (and the client holds fewer
        than its share), else answer 503 and close."""
        client = str(client_address[0])
        if not self._take(client):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._give_back(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve the connection, then give its slot back."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._give_back(str(client_address[0]))

    def _refuse(self, request: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request.settimeout(1)
            request.sendall(_BUSY)
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failure in one connection goes to the debug log, not to the terminal."""
        log.debug("error serving %s", client_address, exc_info=True)
