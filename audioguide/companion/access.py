"""Who may write: the key ``serve --allow-writes`` prints, the page's token, and a rate.

Reading a week needs nothing (podcast apps have no key). Writing needs three
things at once: the key, held by the browser as an HttpOnly, SameSite=Strict
cookie (set when the printed address, ``?key=…``, is opened); the page's token,
which only a page of this server can read (from ``/api/state``) and sends in a
header, so another site cannot make the browser write; and a request from this
origin (``Origin`` and ``Sec-Fetch-Site``, when the browser sends them). Every
comparison takes constant time. The key is kept beside the log (mode 0600), so a
phone that opened the address once stays in after ``serve`` restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from audioguide.errors import RequestError

#: The cookie that carries the key.
COOKIE = "audioguide_key"
#: The header that carries the page's token.
TOKEN_HEADER = "X-Audioguide-Token"
#: The largest body a write may have, in bytes.
BODY_MAX = 4096
#: Writes one client may make per minute.
WRITES_PER_MINUTE = 30


def key_path(log: Path) -> Path:
    """Where the key for the log at ``log`` is kept."""
    return log.with_name(log.stem + ".key")


def load_key(path: Path, renew: bool = False) -> str:
    """The key kept at ``path``, made (or, with ``renew``, made again) when there is none."""
    if not renew:
        try:
            key = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            key = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise RequestError("--log", f"the key beside the log, {path}, cannot be read "
                               f"({exc}); delete it, or start with --new-key.") from exc
        if len(key) >= 32 and key.replace("-", "").replace("_", "").isalnum():
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)  # the key is the listener's alone
            return key
    key = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="ascii") as fh:  # mkstemp makes it 0600
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        raise RequestError("--log", f"the key cannot be kept at {path} ({exc.strerror or exc}); "
                           "choose a log in a folder you can write with --log.") from exc
    return key


def page_token(key: str) -> str:
    """The token a page of this server sends with each write (derived from the key, so it
    holds across restarts, and useless without the key's cookie)."""
    return hmac.new(key.encode(), b"audioguide page token", hashlib.sha256).hexdigest()[:32]


def same(given: str | None, expected: str) -> bool:
    """``given`` equals ``expected``, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def cookie_values(headers: list[str], name: str = COOKIE) -> list[str]:
    """Every value of cookie ``name`` in the ``Cookie`` headers: a browser sends one per
    path and server that set it (another audioguide on this host sets one too, since
    cookies do not tell ports apart). Read pair by pair, as browsers send them: another
    site's cookie that the standard library's parser refuses (a space, a non-ASCII value)
    must not hide ours."""
    found = []
    for header in headers:
        for pair in header.split(";"):
            key, equals, value = pair.partition("=")
            if equals and key.strip() == name:
                found.append(value.strip().strip('"'))
    return found


def set_cookie(key: str, path: str = "/") -> str:
    """The ``Set-Cookie`` value that hands the key to the browser, for the part of the
    server under ``path`` (a batch's listener gets only their own folder)."""
    return (f"{COOKIE}={key}; Path={path}; HttpOnly; SameSite=Strict; "
            f"Max-Age={400 * 24 * 3600}")


class RateLimit:
    """At most ``per_minute`` events per client in any 60 seconds."""

    def __init__(self, per_minute: int = WRITES_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Count one event for ``client``; False when it is over its rate."""
        now = time.monotonic()
        with self._lock:
            if len(self._events) > 1024:  # forget clients that went quiet
                self._events = {c: e for c, e in self._events.items() if e and e[-1] > now - 60}
            events = self._events.setdefault(client, deque())
            while events and events[0] <= now - 60:
                events.popleft()
            if len(events) >= self.per_minute:
                return False
            events.append(now)
            return True
