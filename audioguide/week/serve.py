"""Serve a week folder over HTTP, for a phone on the same network.

Reading (:mod:`audioguide.week.files`) is open, as podcast apps need; with
``--allow-writes`` the page also keeps the practice log for the holder of the
key printed here (:mod:`audioguide.companion.api`). Binds to 127.0.0.1 unless
told otherwise; on any other address it warns, and names every address a phone
could use. The number of connections is capped (:mod:`audioguide.week.requests`).
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO
from urllib.parse import quote

from audioguide.companion.api import Companion, CompanionHandler
from audioguide.companion.queue import BuildQueue
from audioguide.errors import RequestError
from audioguide.week.files import CONTENT_TYPES, HEADER_TIMEOUT_S, IDLE_TIMEOUT_S
from audioguide.week.lan import lan_addresses, public_url, public_urls, qr_text
from audioguide.week.requests import MAX_CONNECTIONS, WeekServer

log = logging.getLogger(__name__)

#: The handler of a served week: its files, and the practice log for the key's holder.
WeekHandler = CompanionHandler


def check_week_folder(folder: Path) -> Path:
    """The folder, resolved, if it holds a week or a batch's weeks; otherwise a clear
    error."""
    from audioguide.week import MANIFEST

    resolved = folder.resolve()
    if not (resolved / MANIFEST).is_file() and not batch_listeners(resolved):
        raise RequestError("DIR", f"{folder} is not a week folder (it has no {MANIFEST}) nor a "
                           "batch's folder (no batch.json naming a built week); build one with "
                           "'audioguide week' or 'audioguide batch' and serve the folder it "
                           "prints.")
    return resolved


def is_batch(root: Path) -> bool:
    """Whether the served folder ``root`` (checked) holds a batch's weeks, not one week."""
    from audioguide.week import MANIFEST

    return not (root / MANIFEST).is_file()


def batch_listeners(folder: Path) -> dict[str, list[str]]:
    """For a batch's folder: each listener's part of it (``ana``) -> their built weeks
    (``ana/2026-W48``), from its ``batch.json``; empty for any other folder."""
    from audioguide.batch.roster import RECORD
    from audioguide.week import MANIFEST

    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        found: dict[str, list[str]] = {}
        for listener in record["listeners"]:
            week = (folder / listener["folder"]).resolve()
            if week.is_relative_to(folder) and week != folder and (week / MANIFEST).is_file():
                relative = week.relative_to(folder)
                found.setdefault(relative.parts[0], []).append(relative.as_posix())
        return found
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}


def make_server(folder: Path, host: str, port: int, *, timeout: float = IDLE_TIMEOUT_S,
                max_connections: int = MAX_CONNECTIONS,
                header_timeout: float = HEADER_TIMEOUT_S,
                companion: Companion | None = None,
                companions: Mapping[str, Companion] | None = None) -> WeekServer:
    """A server for ``folder`` (a week, or a batch's weeks) bound to host:port, or a clear
    error if it cannot bind.

    ``timeout``: seconds any read or write may wait; ``header_timeout``: seconds a request
    has, from when it is awaited, to send all its headers; ``companion``: the log a single
    week's key holder may write, ``companions`` each of a batch's listeners' (None: the
    weeks are read-only).
    """

    root = check_week_folder(folder)
    batch = is_batch(root)
    writes = companions if batch else ({"": companion} if companion else None)
    handler = partial(WeekHandler, root=root, timeout=timeout, header_timeout=header_timeout,
                      companions=writes, batch=batch, builds=BuildQueue() if writes else None)
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

    return Companion(log_path, load_key(key_path(log_path), renew=new_key))


def companions_for(folder: Path, log: Path | None, new_key: bool = False
                   ) -> dict[str, Companion]:
    """Who may write to what when ``folder`` is served with writes on: a week's listener
    ("") their log (``log``, else the default); each of a batch's listeners their own,
    ``<id>.sqlite`` in the folder ``log`` (else ``listeners`` beside the default log)."""
    from audioguide.companion.store import default_log_path

    root = check_week_folder(folder)
    listeners = batch_listeners(root)
    if not listeners or not is_batch(root):
        single = companion(log or default_log_path(), new_key)
        single.check()
        return {"": single}
    where = log or default_log_path().parent / "listeners"
    if where.exists() and not where.is_dir():
        raise RequestError("--log", f"{where} is a file; for a batch, --log names the folder "
                           "that holds each listener's log (<id>.sqlite).")
    found = {name: companion(where / f"{name}.sqlite", new_key) for name in listeners}
    for each in found.values():
        if each.log_path.exists():
            each.check()  # a listener's first entry makes theirs
    return found


#: Held (flock) by the one server that may write in a folder; hidden files are not served.
LOCK = ".audioguide-serve.lock"


def _hold(folder: Path) -> IO[bytes]:
    """This server's hold on writing in ``folder`` (two would make sessions over each
    other); released when the process ends, however it ends."""
    import fcntl

    path = check_week_folder(folder) / LOCK
    try:
        held = path.open("ab")
    except OSError as exc:
        raise RequestError("DIR", f"cannot write in {folder} ({exc.strerror or exc}); "
                           "--allow-writes needs a folder this user can write.") from exc
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        held.close()
        raise RequestError("DIR", f"another 'audioguide serve --allow-writes' is serving "
                           f"{folder}; stop it first (two would write over each other's "
                           "sessions), or serve without --allow-writes.") from None
    return held


def serve(folder: Path, host: str, port: int, ready: Callable[[str, bool, dict[str, str]], None],
          writes: Mapping[str, Companion] | None = None) -> None:
    """Serve until interrupted; ``ready`` gets the URL once listening, whether it reaches
    beyond this machine, and each page's address by listener ("" for a single week; with
    its key when writes are on).

    Listening beyond this machine is logged as a warning naming every address
    the folder can now be fetched at.
    """
    held = _hold(folder) if writes else None
    server = make_server(folder, host, port, companion=(writes or {}).get(""),
                         companions=writes)
    urls, beyond = public_urls(host, server.server_address[1])
    root = check_week_folder(folder)
    listeners = batch_listeners(root) if is_batch(root) else {}
    # Each listener's latest week (a batch run week after week keeps the earlier ones).
    pages = ({name: f"{urls[0]}{quote(max(weeks))}/index.html"
              for name, weeks in listeners.items()} or {"": urls[0] + "index.html"})
    if writes:
        pages = {name: f"{page}?key={writes[name].key}" for name, page in pages.items()
                 if name in writes}
    try:
        ready(urls[0], beyond, pages)
        if beyond:
            log.warning("Warning: %s is now readable by anyone on the same network "
                        "(sessions, transcripts, the names in them), at %s. Use --host "
                        "127.0.0.1 to keep it on this machine.", folder, " or ".join(urls))
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if held is not None:
            held.close()


__all__ = ["CONTENT_TYPES", "Companion", "WeekHandler", "WeekServer", "batch_listeners",
           "companion", "companions_for", "lan_addresses", "make_server", "public_url",
           "public_urls", "qr_text", "serve"]
