"""Serve a week folder over HTTP, for a phone on the same network.

Reading (:mod:`audioguide.week.files`) is open, as podcast apps need; with
``--allow-writes`` the page also keeps the practice log for the holder of the
key printed here (:mod:`audioguide.companion.api`). Binds to 127.0.0.1 unless
told otherwise; on any other address it warns, and names every address a phone
could use. The number of connections is capped (:mod:`audioguide.week.requests`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from audioguide.companion.api import Companion, CompanionHandler
from audioguide.errors import RequestError
from audioguide.week.files import CONTENT_TYPES, HEADER_TIMEOUT_S, IDLE_TIMEOUT_S
from audioguide.week.lan import lan_addresses, public_url, public_urls, qr_text
from audioguide.week.requests import MAX_CONNECTIONS, WeekServer

log = logging.getLogger(__name__)

#: The handler of a served week: its files, and the practice log for the key's holder.
WeekHandler = CompanionHandler


def check_week_folder(folder: Path) -> Path:
    """The folder, resolved, if it holds a week; otherwise a clear error."""
    from audioguide.week import MANIFEST

    resolved = folder.resolve()
    if not (resolved / MANIFEST).is_file():
        raise RequestError("DIR", f"{folder} is not a week folder (it has no {MANIFEST}); "
                           "build one with 'audioguide week' and serve the folder it prints.")
    return resolved


def make_server(folder: Path, host: str, port: int, *, timeout: float = IDLE_TIMEOUT_S,
                max_connections: int = MAX_CONNECTIONS,
                header_timeout: float = HEADER_TIMEOUT_S,
                companion: Companion | None = None) -> WeekServer:
    """A server for ``folder`` bound to host:port, or a clear error if it cannot bind.

    ``timeout``: seconds any read or write may wait; ``header_timeout``: seconds a request
    has, from when it is awaited, to send all its headers; ``companion``: the log the key's
    holder may write (None: the week is read-only).
    """
    root = check_week_folder(folder)
    handler = partial(WeekHandler, root=root, timeout=timeout, header_timeout=header_timeout,
                      companion=companion)
    try:
        return WeekServer((host, port), handler, max_connections)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise RequestError("--port", f"port {port} on {host} is already in use; choose "
                               "another with --port.") from exc
        raise RequestError("--host", f"cannot listen on {host}:{port}: "
                           f"{exc.strerror or exc}.") from exc


def companion(log_path: Path, new_key: bool = False) -> Companion:
    """The log at ``log_path`` and the key kept beside it (made again with ``new_key``)."""
    from audioguide.companion.access import key_path, load_key
    from audioguide.companion.store import PracticeLog

    return Companion(PracticeLog(log_path), load_key(key_path(log_path), renew=new_key))


def serve(folder: Path, host: str, port: int, ready: Callable[[str, bool, str], None],
          writes: Companion | None = None) -> None:
    """Serve until interrupted; ``ready`` gets the URL once listening, whether it reaches
    beyond this machine, and the page's address (with the key when ``writes`` is on).

    Listening beyond this machine is logged as a warning naming every address
    the folder can now be fetched at.
    """
    server = make_server(folder, host, port, companion=writes)
    urls, beyond = public_urls(host, server.server_address[1])
    page = urls[0] + "index.html" + (f"?key={writes.key}" if writes else "")
    ready(urls[0], beyond, page)
    if beyond:
        log.warning("Warning: %s is now readable by anyone on the same network (sessions, "
                    "transcripts, the names in them), at %s. Use --host 127.0.0.1 to keep it "
                    "on this machine.", folder, " or ".join(urls))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["CONTENT_TYPES", "Companion", "WeekHandler", "WeekServer", "companion",
           "lan_addresses", "make_server", "public_url", "public_urls", "qr_text", "serve"]
