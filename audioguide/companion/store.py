"""The practice log: what the listener noted after each session, in a SQLite file of theirs.

Each entry is its own committed transaction (write-ahead log, full sync), so once added it
survives the program being killed; each operation has its own connection, so the threaded
server and the command line can share the file."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audioguide.errors import RequestError
from audioguide.options import _BIDI_CONTROLS, Words
from audioguide.paths import user_folder
from audioguide.publish import folder_lock

LOG_ENV = "AUDIOGUIDE_LOG"  # the log file's path, in place of the default
NOTE_MAX = 500  # characters in a note (the schema's CHECK says 500 too)
SCHEMA_VERSION = 1  # the file's user_version (set to 1 in _create)
BUSY_TIMEOUT_S = 5.0  # how long an operation waits for another writer to finish
ANSWERS = ("done", "rating", "too_much", "feeling", "note", "speak_note")  # about one session

_SCHEMA = (
    """CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
        week_start TEXT NOT NULL CHECK (date(week_start) IS week_start),
        week_title TEXT NOT NULL CHECK (length(week_title) BETWEEN 1 AND 200),
        session TEXT NOT NULL CHECK (length(session) BETWEEN 1 AND 255),
        kind TEXT NOT NULL CHECK (kind <> '' AND kind NOT GLOB '*[^a-z-]*'),
        minutes REAL NOT NULL CHECK (minutes > 0), day TEXT NOT NULL CHECK (date(day) IS day),
        done INTEGER NOT NULL CHECK (done IN (0, 1)), rating INTEGER CHECK (rating IS NULL OR
            (typeof(rating) = 'integer' AND rating BETWEEN 0 AND 10)),
        too_much INTEGER NOT NULL CHECK (too_much IN (0, 1)),
        feeling TEXT CHECK (feeling IS NULL OR length(feeling) BETWEEN 1 AND 40),
        note TEXT CHECK (note IS NULL OR length(note) BETWEEN 1 AND 500),
        speak_note INTEGER NOT NULL CHECK (speak_note IN (0, 1)))""",
    "CREATE INDEX entries_week_session ON entries (week_start, session)",
)
#: The columns, in the order of _SELECT's rows and _INSERT's parameters (after the id).
_COLUMNS = ("id", "created", "week_start", "week_title", "session", "kind", "minutes", "day",
            "done", "rating", "too_much", "feeling", "note", "speak_note")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM entries"
_INSERT = f"INSERT INTO entries ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * 13)})"


def default_log_path() -> Path:
    """``$AUDIOGUIDE_LOG``, else ``~/.local/share/audioguide/practice.sqlite`` (on Linux)."""
    return user_folder(LOG_ENV, "data", "practice.sqlite")


@dataclass(frozen=True)
class Entry:
    """One session as the listener noted it: the session (its week's first day and title, MP3
    file name, kind, minutes, date) and the answers (see :func:`check_answers`; rating 0 is
    very low, 10 very good). ``id`` and ``created`` (UTC) are set when the log keeps it."""

    week_start: dt.date
    week_title: str
    session: str
    kind: str
    minutes: float
    day: dt.date
    done: bool
    rating: int | None
    too_much: bool
    feeling: str | None
    note: str | None
    speak_note: bool
    id: int | None = None
    created: dt.datetime | None = None


def check_answers(answers: Mapping[str, object]) -> dict[str, Any]:
    """A page's or a caller's answers about one session, checked and cleaned (exactly the keys
    of :data:`ANSWERS`), or RequestError naming the field and what it accepts."""
    if not isinstance(answers, Mapping):
        raise RequestError("answers", f"give the answers as an object of {', '.join(ANSWERS)}")
    for key in answers:
        if key not in ANSWERS:
            field = key if isinstance(key, str) and re.fullmatch(r"\w{1,40}", key) else "answers"
            raise RequestError(field, f"{str(key)[:40]!r} is not an answer the log keeps; "
                                      f"give only {', '.join(ANSWERS)}")
    done, rating, too_much, feeling, note, speak_note = (answers.get(k) for k in ANSWERS)
    for field, flag in (("done", done), ("too_much", too_much), ("speak_note", speak_note)):
        if not isinstance(flag, bool) and (flag is not None or field == "done"):
            got = f"{_shown(flag)} is not true or false" if field in answers else "it is missing"
            rest = "" if field == "done" else ", or leave it out"
            raise RequestError(field, f"{got}; give true or false{rest}")
    whole = "give a whole number from 0 to 10, or leave it out"
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)):
        raise RequestError("rating", f"{_shown(rating)} is not a whole number; {whole}")
    if rating is not None and not 0 <= rating <= 10:
        raise RequestError("rating", f"{rating} is out of range; {whole}")
    if feeling is not None and not isinstance(feeling, str):
        raise RequestError("feeling", f"{_shown(feeling)} is not a word; give one feeling "
                                      "word, or leave it out")
    if feeling := " ".join((feeling or "").split()).lower():
        rule = Words(most=1)  # that of --feelings: the page and the command line agree
        try:
            feeling = str(rule.check([feeling])[0])
        except ValueError:
            raise RequestError("feeling", f"{feeling[:40]!r} is not a feeling word; give one "
                               f"word of letters (at most {rule.word_limit}), such as calm, "
                               "or leave it out") from None
    if note is not None and not isinstance(note, str):
        raise RequestError("note", f"{_shown(note)} is not text; give a note of at most "
                                   f"{NOTE_MAX} characters, or leave it out")
    note = (note or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not _plain(note, allowed="\n\t"):
        raise RequestError("note", "it holds control characters (such as ESC, NUL or a text "
                                   "direction override); give plain text, with new lines and "
                                   "tabs if you like")
    if len(note) > NOTE_MAX:
        raise RequestError("note", f"{len(note)} characters is too long; give at most "
                                   f"{NOTE_MAX}")
    return {"done": done, "rating": rating, "too_much": bool(too_much),
            "feeling": feeling or None, "note": note or None, "speak_note": bool(speak_note)}


def _plain(text: str, allowed: str = "") -> bool:
    """No control characters (but ``allowed``), direction overrides or undecodable bytes."""
    return not any(c not in allowed and (unicodedata.category(c) in ("Cc", "Cs")
                                         or c in _BIDI_CONTROLS) for c in text)


def _shown(value: object) -> str:
    """A value as an error quotes it: JSON's spelling for true, false and null, and short."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)[:40]


#: The session's own fields (derived by the server from the week): check, what is accepted.
_SESSION_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(("week_start", "day"), (
        lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime), "a date")),
    "week_title": (lambda v: isinstance(v, str) and 0 < len(v.strip()) <= 200 and _plain(v),
                   "plain text of 1 to 200 characters"),
    "session": (lambda v: isinstance(v, str) and 0 < len(v.strip()) <= 255 and _plain(v)
                and "/" not in v and v not in (".", ".."),
                "the session's MP3 file name in the week folder"),
    "kind": (lambda v: isinstance(v, str) and bool(re.fullmatch(r"[a-z-]+", v)),
             "small letters and hyphens, such as breath"),
    "minutes": (lambda v: not isinstance(v, bool) and isinstance(v, int | float)
                and math.isfinite(v) and v > 0, "the session's minutes, above 0"),
}


class PracticeLog:
    """The practice log in one SQLite file, made if it is not there; safe to share between
    threads and processes (each operation has its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # private: made 0o600 before use
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            with path.open("rb") as fh:
                header = fh.read(100)
        except OSError as exc:
            raise self._refused(f"cannot be made or read ({exc.strerror or exc})") from None
        self._inspect(header)
        self._create()

    def add(self, entry: Entry) -> Entry:
        """Keep ``entry`` (its answers cleaned); the stored entry, with its id and the time
        it was added. Once this returns, the entry is on disk."""
        for field, (accepts, what) in _SESSION_FIELDS.items():
            if not accepts(value := getattr(entry, field)):
                raise RequestError(field, f"{_shown(value)} is not accepted; give {what}")
        answers = check_answers({name: getattr(entry, name) for name in ANSWERS})
        entry = replace(entry, minutes=float(entry.minutes), **answers)
        created = dt.datetime.now(dt.UTC)
        with self._connection(write=True) as db:
            rowid = db.execute(_INSERT, (
                created.isoformat(), entry.week_start.isoformat(), entry.week_title,
                entry.session, entry.kind, entry.minutes, entry.day.isoformat(),
                int(entry.done), entry.rating, int(entry.too_much), entry.feeling,
                entry.note, int(entry.speak_note))).lastrowid
        return replace(entry, id=rowid, created=created)

    def entries(self, *, week_start: dt.date | None = None,
                session: str | None = None) -> list[Entry]:
        """The entries, oldest first; only a week's, or only one session's, when given."""
        start = week_start.isoformat() if week_start is not None else None
        with self._connection() as db:
            rows = db.execute(_SELECT + " WHERE (?1 IS NULL OR week_start = ?1) AND "
                              "(?2 IS NULL OR session = ?2) ORDER BY id",
                              (start, session)).fetchall()
        try:
            return [_entry(row) for row in rows]
        except (ValueError, TypeError) as exc:
            raise RequestError("--log", f"{self.path} holds an entry that cannot be read "
                               f"({exc}); export what can be kept with an older copy, or "
                               "move the file aside and a new log starts.") from None

    def delete(self, ids: Iterable[int]) -> int:
        """Delete the entries with these ids, in one transaction; how many there were."""
        return self._delete("WHERE id = ?", [(value,) for value in ids])

    def delete_week(self, week_start: dt.date) -> int:
        """Delete the entries of the week that starts on ``week_start``; how many."""
        return self._delete("WHERE week_start = ?", [(week_start.isoformat(),)])

    def delete_all(self) -> int:
        """Delete every entry; how many there were."""
        return self._delete("", [()])

    def _delete(self, where: str, params: Sequence[tuple[object, ...]]) -> int:
        with self._connection(write=True) as db:
            db.execute("BEGIN IMMEDIATE")
            count = db.executemany("DELETE FROM entries " + where, params).rowcount
            db.execute("COMMIT")
        return count

    def _refused(self, what: str) -> RequestError:
        return RequestError("--log", f"{self.path} {what}; give the path of an audioguide "
                                     "practice log, or a new file name for a new log")

    def _inspect(self, header: bytes) -> None:
        """Refuse a file that is not a practice log of this version, only reading it: its
        header first (SQLite's own reading would leave side files beside it)."""
        version, tables, columns = int.from_bytes(header[60:64], "big"), set[str](), set[str]()
        if header and not header.startswith(b"SQLite format 3\x00"):
            raise self._refused("is not a practice log (not SQLite at all); it is left as it is")
        try:
            if version <= SCHEMA_VERSION:
                with contextlib.closing(sqlite3.connect(
                        f"{self.path.resolve().as_uri()}?mode=ro", uri=True)) as db:
                    version, tables, columns = _shape(db)
        except sqlite3.DatabaseError as exc:
            if not os.access(self.path.parent, os.W_OK):
                raise RequestError("--log", f"{self.path} is in a folder that cannot be "
                                   "written, and SQLite writes beside a log even to read it; "
                                   "copy the log to a folder you can write and give that "
                                   "with --log") from None
            raise self._refused(f"cannot be read as a practice log ({exc}); if it is "
                                "damaged, move it aside and a new log starts") from None
        if version > SCHEMA_VERSION:
            raise RequestError("--log", f"{self.path} was written by a newer audioguide (log "
                                        f"version {version}, not {SCHEMA_VERSION}); update "
                                        "audioguide to use it, or give another --log")
        if (version, tables) != (0, set()) and (version, columns) != (SCHEMA_VERSION,
                                                                      set(_COLUMNS)):
            raise self._refused("is a database of something else; it is left as it is")

    def _create(self) -> None:
        """Make the schema in a new (empty) file, once even when two processes start."""
        with self._connection(write=True) as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            if _shape(db)[:2] == (0, set()):
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("PRAGMA user_version = 1")
            db.execute("COMMIT")
        with contextlib.suppress(OSError):  # the notes are private
            self.path.chmod(0o600)

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Writers of this log take turns by the lock on its folder (tried every
        millisecond): SQLite's own wait polls, every 100 ms at last, so a process adding
        entries one after another can starve a delete past the timeout. Where the folder
        cannot be locked (not a local file system), SQLite's wait alone decides."""
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(folder_lock(self.path.resolve().parent, BUSY_TIMEOUT_S))
            except TimeoutError:
                raise self._busy("another audioguide is writing it") from None
            except OSError:
                pass
            yield

    def _busy(self, why: str) -> RequestError:
        return self._refused(f"is busy ({why}): another audioguide kept it for over "
                             f"{BUSY_TIMEOUT_S:g} seconds; try again")

    @contextlib.contextmanager
    def _connection(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one operation: each statement or transaction synced as it commits;
        a writer waits for its turn first."""
        with self._writer_turn() if write else contextlib.nullcontext(), self._opened() as db:
            yield db

    @contextlib.contextmanager
    def _opened(self) -> Iterator[sqlite3.Connection]:
        try:  # mode=rw: a log deleted meanwhile is not made again, empty
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                                 timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise self._refused(f"cannot be opened ({exc})") from None
        try:
            db.execute("PRAGMA busy_timeout = 5000")  # BUSY_TIMEOUT_S, for every statement
            db.execute("PRAGMA synchronous = FULL")
            yield db
        except sqlite3.DatabaseError as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise  # a constraint or a misuse: a bug, not the file
            with contextlib.suppress(sqlite3.Error):
                db.rollback()
            if "locked" in str(exc) or "busy" in str(exc):
                raise self._busy(str(exc)) from None
            raise self._refused(f"could not be read or written ({exc}); check the disk has "
                                "room and the file is a practice log") from None
        finally:
            db.close()


def _shape(db: sqlite3.Connection) -> tuple[int, set[str], set[str]]:
    """The file's schema version, its tables, and the columns of its entries table."""
    return (int(db.execute("PRAGMA user_version").fetchone()[0]),
            {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = "
                                          "'table' AND name NOT LIKE 'sqlite_%'")},
            {row[0] for row in db.execute("SELECT name FROM pragma_table_info('entries')")})


def _entry(row: Any) -> Entry:
    """An entry from a row of :data:`_SELECT` (its columns in :data:`_COLUMNS`' order)."""
    (id_, created, week_start, week_title, session, kind, minutes, day, done, rating,
     too_much, feeling, note, speak_note) = row
    return Entry(
        week_start=dt.date.fromisoformat(week_start), week_title=week_title,
        session=session, kind=kind, minutes=float(minutes), day=dt.date.fromisoformat(day),
        done=bool(done), rating=rating, too_much=bool(too_much), feeling=feeling, note=note,
        speak_note=bool(speak_note), id=id_, created=dt.datetime.fromisoformat(created))
