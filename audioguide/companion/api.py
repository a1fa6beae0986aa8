"""What the served page may ask beyond the week's files: the practice log.

``GET /api/state`` says whether the log is off, locked (writes are on, the
request lacks the key) or open, and only to the holder of the key gives the
page's token and the week's entries. ``POST /api/log`` adds an entry; without
the key (see :mod:`audioguide.companion.access`) it answers 403 and changes
nothing, and when ``serve`` was not started with ``--allow-writes`` it answers
404. Opening any page with ``?key=…`` hands the
key to the browser as a cookie and sends it on to the same page without the key
in its address. Every answer of the API is JSON, errors too (``{"error": …}``,
one paragraph naming the field), and never cached.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

from audioguide.batch.roster import RECORD
from audioguide.companion.access import (
    BODY_MAX,
    COOKIE,
    TOKEN_HEADER,
    RateLimit,
    cookie_values,
    page_token,
    same,
    set_cookie,
)
from audioguide.companion.queue import BuildQueue, form_schema
from audioguide.companion.store import Entry, PracticeLog, check_answers
from audioguide.errors import RequestError
from audioguide.week.files import FileHandler
from audioguide.week.requests import RefusedError

log = logging.getLogger("audioguide.week.serve")

#: A session's kind in a week's file name: ``3-wed-2-body-scan-7min.mp3`` and
#: ``made-1-body-scan-7min.mp3`` (made from the page) are body-scan.
_KIND = re.compile(r"^(?:\d+-[a-z]{3}-\d+|made-\d+)-(?P<kind>.+?)-[\d.]+min")
#: A call of the API, at the end of a week's path: ``/api/log``, ``/ana/2026-W48/api/jobs``
#: (a listener called "api" keeps their pages: ``/api/2026-W48/index.html`` is a file).
_API = re.compile(r"/api/(?:state|form|jobs|log|make|cancel)$")
#: The longest error message the API sends (one that quotes a huge value is cut).
_ERROR_MAX = 300


@dataclass
class Companion:
    """What one listener's served weeks may write to: their log, and the key that opens it."""

    log_path: Path
    key: str
    limiter: RateLimit = field(default_factory=RateLimit)

    @functools.cached_property
    def log(self) -> PracticeLog:
        """The log, made on first use (a batch's listeners who never write get no file)."""
        return PracticeLog(self.log_path)

    @property
    def token(self) -> str:
        """The token a page sends with each write."""
        return page_token(self.key)

    def check(self) -> PracticeLog:
        """Open the log now: a file that is not a practice log is refused at start, not
        on the phone."""
        return self.log


def entry_json(entry: Entry) -> dict[str, Any]:
    """An entry as the page (and ``audioguide log export --json``) sees it."""
    return {name: value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
            for name, value in asdict(entry).items()}


class CompanionHandler(FileHandler):
    """The week's files, and for the key's holder the practice log.

    ``companions``: listener -> their log and key; a single week's listener is "", a
    batch's are the first part of their folders' paths (``ana/2026-W48``: "ana"), so a
    listener's key, cookie and log reach only their own weeks. Empty: read-only.
    """

    companions: Mapping[str, Companion]
    #: The served folder holds a batch's listeners, each in a folder of their own.
    batch: bool

    def __init__(self, *args: Any, companions: Mapping[str, Companion] | None = None,
                 batch: bool = False, builds: BuildQueue | None = None,
                 **kwargs: Any) -> None:
        self.companions = companions or {}
        self.batch = batch
        self.builds = builds
        super().__init__(*args, **kwargs)

    def _is_api(self) -> bool:
        return _API.search(urlsplit(self.path).path) is not None

    def _refuse(self, refused: RefusedError) -> None:
        if self._is_api():
            reason = refused.reason
            if len(reason) > _ERROR_MAX:
                reason = reason[:_ERROR_MAX - 1].rstrip() + "…"
            self._json(refused.status, {"error": reason})
        else:
            super()._refuse(refused)

    def _json(self, status: int, value: object, *headers: tuple[str, str]) -> None:
        data = json.dumps(value, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value_ in headers:
            self.send_header(name, value_)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _listener(self, path: str) -> str | None:
        """Whose part of the server ``path`` is in ("" for a single week), None for none."""
        if not self.batch:
            return ""
        first = path.lstrip("/").split("/", 1)[0]
        return first if first in self.companions else None

    def _api_week(self, path: str) -> tuple[str | None, Path, str]:
        """(listener, week folder, call) of an API path such as ``/ana/2026-W48/api/log``."""
        from audioguide.week import MANIFEST

        prefix, _, call = path.rpartition("/api/")
        try:
            folder = (self.root / unquote(prefix, errors="strict").lstrip("/")).resolve()
            if not (folder.is_relative_to(self.root) and (folder / MANIFEST).is_file()):
                raise ValueError
        except (OSError, ValueError):
            raise RefusedError(404, "the API is reached from a week's page: "
                               "WEEK/api/…") from None
        if not self.batch:
            return "", folder, call
        # Whose week it is, from where the path leads (not from how it is spelt: "/ana/../
        # ben/…" is Ben's).
        listener = folder.relative_to(self.root).parts[0]
        return (listener if listener in self.companions else None), folder, call

    # -- reading ------------------------------------------------------------------------

    def _respond(self, body: bool) -> None:
        self._authority()
        target = urlsplit(self.path)
        query = parse_qs(target.query, keep_blank_values=True)
        if "key" in query and self.companions:
            self._take_key(target, query)
        elif _API.search(target.path):
            self._api_read(target.path)
        else:
            super()._respond(body)

    def _file(self) -> Path | None:
        """The file a request names; a batch's record is not served, however the path is
        spelt: it names every listener."""
        found = super()._file()
        return None if self.batch and found == self.root / RECORD else found

    def _take_key(self, target: Any, query: dict[str, list[str]]) -> None:
        """``?key=…``: the right key becomes a cookie for its listener's part of the server,
        and the page is opened without it."""
        listener = self._listener(target.path)
        companion = None if listener is None else self.companions.get(listener)
        if companion is None or not same(query["key"][-1], companion.key):
            # An old or mistyped key: reading stays open, and no cookie is handed out.
            super()._respond(self.command != "HEAD")
            return
        rest = urlencode([(k, v) for k, vs in query.items() if k != "key" for v in vs],
                         doseq=True)
        self.send_response(303)
        self.send_header("Location", urlunsplit(("", "", target.path, rest, "")))
        self.send_header("Set-Cookie", set_cookie(companion.key,
                                                  f"/{quote(listener)}/" if listener else "/"))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _holder(self, listener: str | None) -> Companion:
        """The listener's companion, if this request holds their key; else a refusal."""
        if not self.companions:
            raise RefusedError(404, "the practice log is off; start 'audioguide serve' with "
                               "--allow-writes to keep one")
        companion = None if listener is None else self.companions.get(listener)
        if companion is None or not any(
                same(value, companion.key)
                for value in cookie_values(self.headers.get_all("Cookie") or [], COOKIE)):
            raise RefusedError(403, "this needs the key: open the address 'audioguide serve "
                               "--allow-writes' printed (it ends in ?key=…)")
        return companion

    def _api_read(self, path: str) -> None:
        listener, folder, call = self._api_week(path)
        if call in ("form", "jobs"):
            self._holder(listener)
            if call == "form":
                self._json(200, form_schema())
            else:
                self._json(200, {"jobs": self._builds().views(str(listener))})
            return
        if call != "state":
            raise RefusedError(404, f"{path} is not part of this server's API")
        if not self.companions:
            self._json(200, {"log": "off"})
            return
        try:
            companion = self._holder(listener)
        except RefusedError:
            self._json(200, {"log": "locked"})  # no token, no entries: only that it exists
            return
        week = self._week(folder)
        try:
            entries = companion.log.entries(week_start=dt.date.fromisoformat(week["start"]))
        except RequestError as exc:
            raise RefusedError(500, exc.message) from None
        self._json(200, {"log": "open", "token": companion.token, "week": week["start"],
                         "entries": [entry_json(e) for e in entries]})

    def _week(self, folder: Path) -> dict[str, Any]:
        """The manifest of the week in ``folder``."""
        from audioguide.week import MANIFEST

        try:
            week = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            dt.date.fromisoformat(week["start"])
            if not all(isinstance(s, str) for s in week["sessions"]):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise RefusedError(500, f"{MANIFEST} in the served folder cannot be read; build "
                               "the week again") from None
        return dict(week)

    # -- writing ------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        """A write: the log's new entry, a session to make, a build to cancel."""
        self._guarded(self._write)

    def _other_method(self) -> None:
        """PUT, DELETE, PATCH, OPTIONS: the API answers in JSON, files as before."""
        if not self._is_api():
            self.send_error(501, "Unsupported method")
            return
        self._guarded(self._not_allowed)

    def _not_allowed(self) -> None:
        self._json(405, {"error": f"{self.command} is not taken here; the page reads with "
                         "GET and writes with POST"}, ("Allow", "GET, HEAD, POST"))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other_method  # noqa: N815 (http.server's names)

    def _write(self) -> None:
        self._authority()
        path = urlsplit(self.path).path
        if "/api/" not in path:
            raise RefusedError(501, "only GET and HEAD are served here")
        listener, folder, call = self._api_week(path)
        companion = self._holder(listener)
        self._check_origin()
        if not same(self.headers.get(TOKEN_HEADER), companion.token):
            raise RefusedError(403, f"a write needs the page's token in {TOKEN_HEADER}; "
                               "reload the page")
        if not companion.limiter.allow(self.client_address[0]):
            raise RefusedError(429, "too many writes in a minute; wait a moment and try again")
        if call == "make":
            try:
                job = self._builds().add(str(listener), folder, self._body())
            except RequestError as exc:
                raise RefusedError(400, exc.message) from None
            self._json(202, job.view(self._builds().per_minute))
            return
        if call == "cancel":
            number = self._body().get("id")
            found = (self._builds().cancel(str(listener), number)
                     if isinstance(number, int) and not isinstance(number, bool) else None)
            if found is None:
                raise RefusedError(404, "id: no such session is being made for you")
            self._json(200, found.view(self._builds().per_minute))
            return
        if call != "log":
            raise RefusedError(404, f"{path} is not part of this server's API")
        entry = self._entry(folder, self._body())
        try:
            stored = companion.log.add(entry)
        except RequestError as exc:
            raise RefusedError(500, exc.message) from None
        self._json(201, entry_json(stored))
        self._review_again(str(listener), folder, companion)

    def _review_again(self, listener: str, folder: Path, companion: Companion) -> None:
        """Queue the week's review to be made again from the log as it is now."""
        from audioguide.companion.review import reviews_to_make

        if self.builds is None:
            return
        try:
            for request in reviews_to_make(folder, companion.log):
                self.builds.again(listener, folder, request)
        except Exception:  # the entry is kept; the review is made again on the next one
            log.warning("the week's review could not be queued", exc_info=True)

    def _builds(self) -> BuildQueue:
        if self.builds is None:
            raise RefusedError(404, "sessions cannot be made here")
        return self.builds

    def _check_origin(self) -> None:
        """Refuse what a browser says came from another site."""
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise RefusedError(403, "writes are taken only from this server's own page")
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self._authority()}":
            raise RefusedError(403, "writes are taken only from this server's own page")

    def _body(self) -> dict[str, Any]:
        """The request's JSON object, within the size limit."""
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise RefusedError(415, "send the entry as JSON (Content-Type: application/json)")
        if self.headers.get("Transfer-Encoding"):
            raise RefusedError(411, "send the body with a Content-Length")
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) != 1 or not lengths[0].strip().isdigit():
            self.close_connection = True
            raise RefusedError(411, "send the body with one Content-Length")
        length = int(lengths[0])
        if length > BODY_MAX:
            self.close_connection = True
            raise RefusedError(413, f"an entry is at most {BODY_MAX} bytes")
        try:
            data = self.rfile.read(length)
        except (TimeoutError, OSError):
            self.close_connection = True
            raise RefusedError(408, "the body did not arrive in time") from None
        if len(data) < length:
            self.close_connection = True
            raise RefusedError(400, "the body is shorter than its Content-Length")
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise RefusedError(400, "the body is not JSON text") from None
        if not isinstance(value, dict):
            raise RefusedError(400, "the body should be a JSON object, such as "
                               '{"session": "…", "done": true, "rating": 7}')
        return value

    def _entry(self, folder: Path, answers: dict[str, Any]) -> Entry:
        """The entry ``answers`` make for one session of the week in ``folder``."""
        from audioguide.week.feed import Episode

        week = self._week(folder)
        session = answers.pop("session", None)
        made = [m for m in week.get("made") or [] if isinstance(m, str)]
        if not isinstance(session, str) or session not in [*week["sessions"], *made]:
            raise RefusedError(400, "session: give the file name of one of this week's "
                               "sessions, such as " + repr(week["sessions"][0]))
        try:
            cleaned: dict[str, Any] = check_answers(answers)
            episode = Episode.read(folder / session)
        except RequestError as exc:
            raise RefusedError(400, exc.message) from None
        except Exception:
            raise RefusedError(500, f"{session} in the served folder cannot be read; build "
                               "the week again") from None
        kinds = week.get("kinds") or []
        index = week["sessions"].index(session) if session in week["sessions"] else len(kinds)
        found = _KIND.match(session)
        kind = (kinds[index] if index < len(kinds) and isinstance(kinds[index], str)
                else found["kind"] if found else "session")
        return Entry(week_start=dt.date.fromisoformat(week["start"]),
                     week_title=str(week.get("title", "")), session=session, kind=kind,
                     minutes=round(episode.duration_s / 60, 1), day=episode.date, **cleaned)
