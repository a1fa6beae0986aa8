"""Serve a week folder read-only over HTTP, for a phone on the same network.

GET and HEAD only, single byte ranges (players seek with them), the right
content types, and nothing outside the folder: paths are resolved (symlinks
too) and must stay inside it. Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import errno
import http.server
import ipaddress
import re
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from audioguide.errors import RequestError

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
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16


class WeekHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET and HEAD for files inside ``root``."""

    root: Path
    server_version = "audioguide"

    def __init__(self, *args: Any, root: Path, **kwargs: Any) -> None:
        self.root = root
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the CLI prints only its address."""

    def do_HEAD(self) -> None:
        """Headers only."""
        self._respond(body=False)

    def do_GET(self) -> None:
        """Headers and (a range of) the file."""
        self._respond(body=True)

    def _file(self) -> Path | None:
        path = unquote(urlsplit(self.path).path)
        if path.endswith("/"):
            path += "index.html"
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        if any(part.startswith(".") for part in target.relative_to(self.root).parts):
            return None  # partial files and other hidden files are not served
        return target

    def _respond(self, body: bool) -> None:
        target = self._file()
        if target is None:
            self.send_error(404, "Not found")
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        status = 200
        header = self.headers.get("Range")
        if header:
            match = _RANGE.match(header.strip())
            if match is None or (not match[1] and not match[2]):
                self._unsatisfiable(size)
                return
            if match[1]:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
            else:  # the last N bytes
                start = max(0, size - int(match[2]))
            if start > end or start >= size:
                self._unsatisfiable(size)
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix,
                                                           "application/octet-stream"))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return
        with target.open("rb") as fh:
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


def check_week_folder(folder: Path) -> Path:
    """The folder, resolved, if it holds a week; otherwise a clear error."""
    from audioguide.week import MANIFEST

    resolved = folder.resolve()
    if not (resolved / MANIFEST).is_file():
        raise RequestError("DIR", f"{folder} is not a week folder (it has no {MANIFEST}); "
                           "build one with 'audioguide week' and serve the folder it prints.")
    return resolved


def make_server(folder: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """A server for ``folder`` bound to host:port, or a clear error if it cannot bind."""
    root = check_week_folder(folder)
    handler = partial(WeekHandler, root=root)
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise RequestError("--port", f"port {port} on {host} is already in use; choose "
                               "another with --port.") from exc
        raise RequestError("--host", f"cannot listen on {host}:{port}: "
                           f"{exc.strerror or exc}.") from exc


def public_url(host: str, port: int) -> tuple[str, bool]:
    """(URL a phone would use, whether it reaches beyond this machine)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}/", True
    if address.is_loopback:
        return f"http://{host}:{port}/", False
    if address.is_unspecified:
        lan = socket.gethostbyname(socket.gethostname())
        return f"http://{lan}:{port}/", True
    return f"http://{host}:{port}/", True


def serve(folder: Path, host: str, port: int, ready: Callable[[str, bool], None]) -> None:
    """Serve until interrupted; ``ready`` gets the URL once listening."""
    server = make_server(folder, host, port)
    url, beyond = public_url(host, server.server_address[1])
    ready(url, beyond)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def qr_text(url: str) -> str:
    """A QR code of ``url`` drawn with text blocks, for a terminal."""
    import io

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(url)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


__all__ = ["CONTENT_TYPES", "WeekHandler", "make_server", "serve"]
