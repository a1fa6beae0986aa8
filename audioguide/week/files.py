"""What a served week reads: its files, over GET and HEAD.

Single byte ranges (players seek with them), validators (``ETag``,
``Last-Modified``) and conditional requests, the content types real players
expect, and nothing outside the folder: paths are resolved (symlinks too) and
must stay inside it; hidden files are never served. The feed and the playlist
are handed out with links for the address the client used, whatever
``--base-url`` the week was built for, provided that address is one the server
listens on: any other ``Host`` (a DNS-rebinding page's name) is answered 421 and
sees nothing. Idle connections time out and a request's headers must all arrive
within a few seconds; malformed requests get a 4xx answer, a feed that cannot be
read a 500, always as one line of plain text, never a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.etree.ElementTree import ParseError

from audioguide.week.lan import names_this_server, plain_address, split_authority
from audioguide.week.ranges import (
    BadRequestError,
    UnsatisfiableRangeError,
    byte_range,
    entity_tags,
    http_date,
    opaque,
)
from audioguide.week.requests import (
    Incoming,
    RefusedError,
    Representation,
    RequestTooSlowError,
    WeekServer,
    public_manifest,
)

log = logging.getLogger("audioguide.week.serve")

CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    # Not application/vnd.apple.mpegurl: VLC takes that for HLS and plays nothing.
    ".m3u8": "audio/x-mpegurl",
    ".m3u": "audio/x-mpegurl",
    ".xml": "application/rss+xml",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}
#: Seconds a connection may stay silent (or not read what it is sent) before it is closed.
IDLE_TIMEOUT_S = 30.0
#: Seconds from when a request is awaited to when its last header line must have arrived.
HEADER_TIMEOUT_S = 10.0
_CHUNK = 1 << 16
#: Longest file name the server looks for (the usual file system limit, in bytes).
_NAME_MAX = 255
_SLOW_BODY = b"408 Request Timeout: the request's headers took too long to arrive\n"
_SLOW = (b"HTTP/1.0 408 Request Timeout\r\nServer: audioguide\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
         b"Connection: close\r\n\r\n%s" % (len(_SLOW_BODY), _SLOW_BODY))
#: A request target in absolute form (``http://host/path``), which names its own host.
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET and HEAD for files inside ``root``."""

    root: Path
    server: WeekServer
    server_version = "audioguide"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s: %(explain)s\n"

    def __init__(self, *args: Any, root: Path, timeout: float = IDLE_TIMEOUT_S,
                 header_timeout: float = HEADER_TIMEOUT_S, **kwargs: Any) -> None:
        self.root = root
        self.idle_timeout = timeout
        self.header_timeout = header_timeout
        self._sent_headers = False
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        """Every read and write on the connection times out after ``idle_timeout``, and
        reading a request's headers after ``header_timeout`` all told."""
        self.request.settimeout(self.idle_timeout)
        super().setup()
        self.rfile.close()
        self.incoming = Incoming(self.request, self.idle_timeout)
        self.rfile = io.BufferedReader(self.incoming)

    def handle_one_request(self) -> None:
        """One request, its headers in by the deadline; else 408 (if it began) and close."""
        self.incoming.start(self.header_timeout)
        try:
            super().handle_one_request()
        except RequestTooSlowError:
            self.close_connection = True
            if self.incoming.received:
                with contextlib.suppress(OSError):
                    self.request.sendall(_SLOW)

    def end_headers(self) -> None:
        """The headers go out: from now on a failure can only close the connection."""
        self._sent_headers = True
        super().end_headers()

    def version_string(self) -> str:
        """``Server``: the program's name, nothing about the host or its Python."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Requests and their errors go to the debug log; the CLI prints only its address."""
        log.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        """Headers only."""
        self._answer(body=False)

    def do_GET(self) -> None:
        """Headers and (a range of) the file."""
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        """Respond to GET or HEAD."""
        self._guarded(lambda: self._respond(body))

    def _refuse(self, refused: RefusedError) -> None:
        """Answer with the refusal's status and its one-line reason."""
        self.send_error(refused.status, None, refused.reason)

    def _guarded(self, work: Callable[[], None]) -> None:
        """Do ``work``; whatever goes wrong, the client gets a status line, not a closed
        socket, and never a traceback."""
        self._sent_headers = False
        try:
            work()
        except RefusedError as refused:
            self._refuse(refused)
        except Exception:
            log.debug("error answering %s %s", self.command, self.path, exc_info=True)
            if self._sent_headers:
                self.close_connection = True
            else:
                self.send_error(500, None, "the server could not answer this request")

    def _file(self) -> Path | None:
        """The file the request names, None if there is none to serve.

        Raises :class:`BadRequestError` for a target no file name can come from.
        """
        try:
            path = unquote(urlsplit(self.path).path, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadRequestError from None
        if any(ord(c) < 32 or ord(c) == 127 for c in path):
            raise BadRequestError  # a NUL byte above all: no file name holds one
        if path.endswith("/"):
            path += "index.html"
        if any(len(part.encode()) > _NAME_MAX for part in path.split("/")):
            return None
        try:
            target = (self.root / path.lstrip("/")).resolve()
            if not target.is_relative_to(self.root) or not target.is_file():
                return None
        except (OSError, ValueError):
            return None
        if any(part.startswith(".") for part in target.relative_to(self.root).parts):
            return None  # partial files and other hidden files are not served
        return target

    def _authority(self) -> str:
        """``HOST:PORT`` as the client reached us: the host its request names (in an
        absolute target, else in ``Host``), if the server listens there; else, in an
        HTTP/1.0 request without a Host, the local address of this connection.

        Raises :class:`RefusedError`: 400 for a malformed or missing Host, 421 for one
        that names another server.
        """
        local = self.connection.getsockname()[:2]
        hosts = self.headers.get_all("Host") or []
        if _ABSOLUTE.match(self.path):
            target = urlsplit(self.path)
            if target.scheme.lower() != "http":
                raise RefusedError(400, "only http is served here")
            hosts = [target.netloc]
        if len(hosts) > 1:
            raise RefusedError(400, "a request names one Host")
        if not hosts:
            if self.request_version not in ("HTTP/0.9", "HTTP/1.0"):
                raise RefusedError(400, "an HTTP/1.1 request needs a Host header")
            address = plain_address(local[0])
            return f"[{address}]:{local[1]}" if address.version == 6 else f"{address}:{local[1]}"
        authority = hosts[0].strip()
        parts = split_authority(authority)
        if parts is None:
            raise RefusedError(400, "the Host header is not a host and port")
        if not names_this_server(*parts, local, self.server.bound_host):
            raise RefusedError(421, "this server answers only at the addresses it listens on")
        return authority

    def _base_url(self) -> str:
        """``http://HOST:PORT/`` as the client reached us (see :meth:`_authority`)."""
        return f"http://{self._authority()}/"

    def _representation(self, target: Path) -> Representation:
        from audioguide.week import MANIFEST
        from audioguide.week.feed import FEED, PLAYLIST, rebase_feed, rebase_playlist

        stat = target.stat()
        mtime = int(stat.st_mtime)
        body: bytes | None = None
        if target.name in (FEED, PLAYLIST, MANIFEST) and (target.parent / MANIFEST).is_file():
            # A week's own files, at the top or (a batch) in a listener's folder: links
            # for the address the client used, down to that week's folder.
            base = self._base_url() + "".join(
                quote(part) + "/" for part in target.parent.relative_to(self.root).parts)
            data = target.read_bytes()
            try:
                if target.name == FEED:
                    body = rebase_feed(data, base)
                elif target.name == PLAYLIST:
                    body = rebase_playlist(data.decode("utf-8"), base).encode()
                else:
                    body = public_manifest(data)
            except (ParseError, UnicodeDecodeError, RecursionError):
                what = "XML" if target.name == FEED else "UTF-8 text"
                raise RefusedError(500, f"{target.name} in the served folder is not valid "
                                   f"{what}; build the week again") from None
            etag = f'"{hashlib.sha256(body).hexdigest()[:24]}"'
            return Representation(target, len(body), mtime, etag, body)
        return Representation(target, stat.st_size, mtime,
                              f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"')

    def _not_modified(self, entity: Representation) -> bool:
        """True when the client's copy is current (If-None-Match, else If-Modified-Since)."""
        none_match = self.headers.get("If-None-Match")
        if none_match is not None:
            tags = entity_tags(none_match)
            return "*" in tags or opaque(entity.etag) in map(opaque, tags)
        since = self.headers.get("If-Modified-Since")
        moment = None if since is None else http_date(since)
        if moment is None:
            return False
        return moment <= time.time() and entity.mtime <= moment

    def _range_applies(self, entity: Representation) -> bool:
        """If-Range: a Range counts only while the client's validator still matches."""
        condition = self.headers.get("If-Range")
        if condition is None:
            return True
        condition = condition.strip()
        if condition.startswith(('"', "W/")):
            return condition == entity.etag  # strong comparison: a weak tag never matches
        moment = http_date(condition)
        return moment is not None and int(moment) == entity.mtime

    def _respond(self, body: bool) -> None:
        self._authority()
        try:
            target = self._file()
        except BadRequestError:
            self.send_error(400, "Bad request")
            return
        if target is None:
            self.send_error(404, "Not found")
            return
        try:
            entity = self._representation(target)
        except OSError:
            self.send_error(404, "Not found")
            return
        if self._not_modified(entity):
            self.send_response(304)
            self._validators(entity)
            self.end_headers()
            return
        size = entity.size
        start, end, status = 0, size - 1, 200
        header = self.headers.get("Range")
        if header is not None and self._range_applies(entity):
            try:
                chosen = byte_range(header, size)
            except UnsatisfiableRangeError:
                self._unsatisfiable(size)
                return
            if chosen is not None:
                (start, end), status = chosen, 206
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix,
                                                           "application/octet-stream"))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self._validators(entity)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return
        try:
            self._send_body(entity, start, end)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client left or stopped reading

    def _validators(self, entity: Representation) -> None:
        self.send_header("ETag", entity.etag)
        self.send_header("Last-Modified", entity.last_modified)

    def _send_body(self, entity: Representation, start: int, end: int) -> None:
        if entity.body is not None:
            self.wfile.write(entity.body[start:end + 1])
            return
        with entity.path.open("rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    def _unsatisfiable(self, size: int) -> None:
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()
