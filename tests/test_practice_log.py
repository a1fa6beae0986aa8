"""The practice log: answers checked as the page and the command line send them, kept in
SQLite on disk through kills and threads, refused files left alone, and ``audioguide log``."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from audioguide.companion.store import (
    LOG_ENV,
    NOTE_MAX,
    Entry,
    PracticeLog,
    check_answers,
    default_log_path,
)
from audioguide.errors import RequestError
from tests.conftest import assert_refused

ROOT = Path(__file__).resolve().parents[1]
WEEK = dt.date(2026, 12, 7)
MARKUP = '<script>alert(1)</script> & "quotes"'


def entry(**changes: Any) -> Entry:
    """A session of the week of 7 Dec 2026, done and rated, with ``changes``."""
    fields: dict[str, Any] = dict(
        week_start=WEEK, week_title="Practice week of 7 Dec 2026",
        session="1-mon-1-breath-5min.mp3", kind="breath", minutes=5.0, day=WEEK, done=True,
        rating=7, too_much=False, feeling="calm", note=None, speak_note=False)
    return Entry(**(fields | changes))


def log_cli(*args: str, stdin: str | None = None) -> Result:
    """``audioguide log ARGS`` through click's runner."""
    from audioguide.cli import cli

    return CliRunner().invoke(cli, ["log", *args], input=stdin)


def test_default_path_follows_the_environment(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "mine.sqlite"))
    assert default_log_path() == tmp_path / "mine.sqlite"
    monkeypatch.delenv(LOG_ENV)
    assert default_log_path().parts[-2:] == ("audioguide", "practice.sqlite")


def test_add_list_delete_round_trip(tmp_path: Path) -> None:
    log = PracticeLog(tmp_path / "new" / "practice.sqlite")
    first = log.add(entry(note="  settled\n\tslowly  ", feeling=" Calm "))
    second = log.add(entry(session="2-tue-1-body-scan-10min.mp3", kind="body-scan",
                           minutes=10, day=WEEK + dt.timedelta(1), done=False, rating=None,
                           too_much=True, feeling=None))
    later = log.add(entry(week_start=WEEK + dt.timedelta(7), day=WEEK + dt.timedelta(7),
                          week_title="Practice week of 14 Dec 2026", speak_note=True,
                          note="x"))
    assert first.id is not None and second.id is not None and later.id is not None
    assert first.note == "settled\n\tslowly" and first.feeling == "calm"
    assert first.created is not None and first.created.utcoffset() == dt.timedelta(0)
    assert log.entries() == [first, second, later]  # oldest first, every field as given
    assert log.entries(week_start=WEEK) == [first, second]
    assert log.entries(session="2-tue-1-body-scan-10min.mp3") == [second]
    assert log.entries(week_start=WEEK, session="nothing.mp3") == []
    # Another PracticeLog on the same file (another process, say) sees the same.
    assert PracticeLog(log.path).entries() == [first, second, later]
    assert log.delete([first.id, 9999]) == 1
    assert log.delete_week(WEEK) == 1
    assert log.entries() == [later]
    assert log.delete_all() == 1 and log.entries() == []


def test_the_file_is_private_durable_and_versioned(tmp_path: Path) -> None:
    log = PracticeLog(tmp_path / "private" / "practice.sqlite")
    assert log.path.stat().st_mode & 0o777 == 0o600
    assert log.path.parent.stat().st_mode & 0o777 == 0o700
    db = sqlite3.connect(log.path)  # closed below
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert ("entries_week_session",) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    # The schema refuses what the code would, should anything get past it.
    session = ("2026-12-07T08:00:00+00:00", "2026-12-07", "t", "s.mp3", "breath", 5.0,
               "2026-12-07", 1)
    for answers in ((11, 0, None, None, 0), (7, 0, None, "n" * (NOTE_MAX + 1), 0),
                    (7, 2, None, None, 0), (7.5, 0, None, None, 0)):
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            db.execute("INSERT INTO entries (created, week_start, week_title, session, kind, "
                       "minutes, day, done, rating, too_much, feeling, note, speak_note) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*session, *answers))
    db.close()


@pytest.mark.parametrize(("answers", "cleaned"), [
    ({"done": True}, {"rating": None, "too_much": False, "feeling": None, "note": None,
                      "speak_note": False}),
    ({"done": False, "rating": 0, "too_much": True, "feeling": "  On   EDGE ", "note": "",
      "speak_note": True},
     {"rating": 0, "too_much": True, "feeling": "on edge", "note": None, "speak_note": True}),
    ({"done": True, "rating": 10, "feeling": "", "note": "  two\n\tlines \r\nhere  "},
     {"rating": 10, "too_much": False, "feeling": None, "note": "two\n\tlines \nhere",
      "speak_note": False}),
    ({"done": True, "rating": None, "feeling": None, "note": None, "too_much": None},
     {"rating": None, "too_much": False, "feeling": None, "note": None, "speak_note": False}),
    ({"done": True, "note": "é" * NOTE_MAX + "   "},
     {"rating": None, "too_much": False, "feeling": None, "note": "é" * NOTE_MAX,
      "speak_note": False}),
    ({"done": True, "note": MARKUP}, {"rating": None, "too_much": False, "feeling": None,
                                      "note": MARKUP, "speak_note": False}),
], ids=["least", "skipped", "whitespace", "nulls", "longest-note", "markup"])
def test_check_answers_accepts(answers: dict[str, object], cleaned: dict[str, object]) -> None:
    result = check_answers(answers)
    assert result == {"done": answers["done"], **cleaned}
    assert list(result) == ["done", "rating", "too_much", "feeling", "note", "speak_note"]


@pytest.mark.parametrize(("answers", "field", "words"), [
    ({}, "done", "missing"),
    ({"done": 1}, "done", "true or false"),
    ({"done": "true"}, "done", "true or false"),
    ({"done": None}, "done", "true or false"),
    ({"done": True, "too_much": 0}, "too_much", "true or false"),
    ({"done": True, "speak_note": "yes"}, "speak_note", "true or false"),
    ({"done": True, "rating": True}, "rating", "whole number"),
    ({"done": True, "rating": 11}, "rating", "11 is out of range"),
    ({"done": True, "rating": -1}, "rating", "0 to 10"),
    ({"done": True, "rating": 7.0}, "rating", "whole number"),
    ({"done": True, "rating": "7"}, "rating", "whole number"),
    ({"done": True, "feeling": "calm2"}, "feeling", "letters"),
    ({"done": True, "feeling": "x" * 25}, "feeling", "at most 24"),
    ({"done": True, "feeling": 3}, "feeling", "feeling word"),
    ({"done": True, "note": "n" * (NOTE_MAX + 1)}, "note", "at most 500"),
    ({"done": True, "note": "calm\x1b[31m"}, "note", "control characters"),
    ({"done": True, "note": "right\u202eleft"}, "note", "control characters"),
    ({"done": True, "note": "bad \ud800 bytes"}, "note", "plain text"),
    ({"done": True, "note": ["a list"]}, "note", "not text"),
    ({"done": True, "mood": "fine"}, "mood", "done, rating"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_check_answers_refuses(answers: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(RequestError) as refused:
        check_answers(answers)
    assert refused.value.field == field
    assert refused.value.message.startswith(f"{field}: ") and words in refused.value.message


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "Breath!"}, "kind"), ({"minutes": 0}, "minutes"),
    ({"minutes": float("nan")}, "minutes"), ({"session": "../secret.mp3"}, "session"),
    ({"week_title": "a\x1bb"}, "week_title"), ({"day": dt.datetime(2026, 12, 7)}, "day"),
    ({"rating": 11}, "rating"),
])
def test_add_refuses_a_bad_entry(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    log = PracticeLog(tmp_path / "practice.sqlite")
    with pytest.raises(RequestError) as refused:
        log.add(entry(**change))
    assert refused.value.field == field
    assert log.entries() == []


def test_markup_in_a_note_is_kept_as_text(tmp_path: Path) -> None:
    log = PracticeLog(tmp_path / "practice.sqlite")
    stored = log.add(entry(**check_answers({"done": True, "note": MARKUP})))
    (read,) = log.entries()
    assert read == stored and read.note is not None
    assert read.note.encode() == MARKUP.encode()
    with contextlib.closing(sqlite3.connect(log.path)) as db:
        raw = db.execute("SELECT CAST(note AS BLOB) FROM entries").fetchone()[0]
    assert raw == MARKUP.encode()
    exported = json.loads(log_cli("export", "--json", "--log", str(log.path)).stdout)
    assert exported[0]["note"] == MARKUP


CHILD = """
import datetime as dt, sys
from pathlib import Path
from audioguide.companion.store import Entry, PracticeLog
log = PracticeLog(Path(sys.argv[1]))
while True:
    stored = log.add(Entry(dt.date(2026, 12, 7), "Practice week of 7 Dec 2026",
                           "1-mon-1-breath-5min.mp3", "breath", 5.0, dt.date(2026, 12, 7),
                           True, 7, False, "calm", "a note " * 60, False))
    print(stored.id, flush=True)
"""


def adding(path: Path) -> subprocess.Popen[str]:
    """A process adding entries to the log at ``path`` as fast as it can, printing each id
    once add() has returned."""
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("kills", [(3, 17, 41)])
def test_an_added_entry_survives_sigkill(tmp_path: Path, kills: tuple[int, ...]) -> None:
    path = tmp_path / "practice.sqlite"
    printed: list[int] = []
    for count in kills:  # killed at a different moment each time, recovering each time
        with adding(path) as child:
            assert child.stdout is not None
            for _ in range(count):
                printed.append(int(child.stdout.readline()))
            child.send_signal(signal.SIGKILL)
            printed += [int(line) for line in child.stdout.read().split()]
            assert child.wait(timeout=30) == -signal.SIGKILL
    kept = {e.id for e in PracticeLog(path).entries()}
    assert set(printed) <= kept and len(printed) >= sum(kills)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_threads_all_land(tmp_path: Path) -> None:
    log = PracticeLog(tmp_path / "practice.sqlite")
    start = threading.Barrier(9)
    ids: list[int | None] = []
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            start.wait()
            ids.extend(log.add(entry(note=f"thread {thread} entry {i}")).id for i in range(25))
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:  # a reader and a deleter of nothing, at the same time
        try:
            start.wait()
            for _ in range(25):
                log.entries(week_start=WEEK)
                log.delete([10**9])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(set(ids)) == 200 and None not in ids
    assert sorted(e.note or "" for e in log.entries()) == sorted(
        f"thread {t} entry {i}" for t in range(8) for i in range(25))


def test_the_command_line_deletes_while_another_process_adds(tmp_path: Path) -> None:
    path = tmp_path / "practice.sqlite"
    with adding(path) as child:
        assert child.stdout is not None
        try:
            child.stdout.readline()
            for _ in range(3):
                result = log_cli("delete", "--all", "--yes", "--log", str(path))
                assert result.exit_code == 0, result.output
                assert log_cli("list", "--log", str(path)).exit_code == 0
        finally:
            child.kill()


def foreign_sqlite(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('keep me')")
        db.commit()


def newer_log(path: Path) -> None:
    """A practice log a later audioguide has moved on to its version 2."""
    PracticeLog(path).add(entry())
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 2")
        db.commit()


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(20_000))


@pytest.mark.parametrize(("make", "words"), [
    (random_bytes, "not SQLite"), (foreign_sqlite, "something else"),
    (newer_log, "newer audioguide"),
], ids=["random-bytes", "foreign-sqlite", "newer-version"])
def test_a_file_that_is_not_a_log_is_refused_and_left_alone(
        tmp_path: Path, make: Any, words: str) -> None:
    path = tmp_path / "practice.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(RequestError) as refused:
        PracticeLog(path)
    assert refused.value.field == "--log"
    assert str(path) in refused.value.message and words in refused.value.message
    for args in (["list"], ["export", "--csv"], ["delete", "--all", "--yes"]):
        assert_refused(log_cli(*args, "--log", str(path)), "--log", str(path), words)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["practice.sqlite"]


def test_a_log_deleted_meanwhile_is_not_made_again(tmp_path: Path) -> None:
    log = PracticeLog(tmp_path / "practice.sqlite")
    log.path.unlink()
    with pytest.raises(RequestError, match="--log"):
        log.entries()
    assert not log.path.exists()


@pytest.fixture
def filled(tmp_path: Path) -> PracticeLog:
    """A log of three entries over two weeks, one note holding commas, quotes, new lines
    and markup."""
    log = PracticeLog(tmp_path / "log" / "practice.sqlite")
    log.add(entry(note='tight, then "loose"\nand <b>soft</b>, finally', speak_note=True))
    log.add(entry(session="2-tue-1-body-scan-10min.mp3", kind="body-scan", minutes=10.5,
                  day=WEEK + dt.timedelta(1), done=False, rating=None, too_much=True,
                  feeling=None, note="w" * NOTE_MAX))
    log.add(entry(week_start=WEEK + dt.timedelta(7), day=WEEK + dt.timedelta(9),
                  week_title="Practice week of 14 Dec 2026", rating=0, feeling="on edge"))
    return log


def test_list(filled: PracticeLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the terminal's width, which the notes fit
    result = log_cli("list", "--log", str(filled.path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Practice week of 7 Dec 2026 (from 2026-12-07)" in lines
    assert "Practice week of 14 Dec 2026 (from 2026-12-14)" in lines
    assert any(line.startswith("1 ") and "2026-12-07" in line and "Mon" in line
               and "breath 5 min" in line and "done" in line and "7/10" in line
               and 'tight, then "loose" and <b>soft</b>' in line for line in lines)
    assert any("body-scan 10.5 min" in line and "skipped" in line and "yes" in line
               for line in lines)
    assert any("0/10" in line and "on edge" in line for line in lines)
    long = next(line for line in lines if "www" in line)
    assert long.endswith("w…") and len(long) == 199  # a 500-character note, shortened
    monkeypatch.setenv("COLUMNS", "120")
    narrow = log_cli("list", "--log", str(filled.path)).stdout.splitlines()
    assert max(map(len, narrow)) == 119 and any("tight, then" in line for line in narrow)
    week = log_cli("list", "--week", "2026-12-14", "--log", str(filled.path)).stdout
    assert week.splitlines()[0] == "Practice week of 14 Dec 2026 (from 2026-12-14)"
    assert len(week.splitlines()) == 3 and "on edge" in week.splitlines()[2]
    empty = log_cli("list", "--week", "2027-01-04", "--log", str(filled.path))
    assert empty.exit_code == 0 and empty.stdout.startswith("No practice logged for the week")


def test_list_with_nothing_logged(tmp_path: Path) -> None:
    path = tmp_path / "none" / "practice.sqlite"
    result = log_cli("list", "--log", str(path))
    assert result.exit_code == 0 and result.stdout == f"No practice logged yet in {path}.\n"
    assert not path.parent.exists()  # nothing made for a look
    assert log_cli("export", "--json", "--log", str(path)).stdout == "[]\n"
    assert log_cli("delete", "--all", "--log", str(path)).exit_code == 0
    assert not path.parent.exists()
    # The default log is the run's own (conftest), not the user's.
    assert os.environ[LOG_ENV] == str(default_log_path())
    result = log_cli("list")
    assert result.exit_code == 0 and str(default_log_path()) in result.stdout


def test_export_csv_and_json_read_back(filled: PracticeLog, tmp_path: Path) -> None:
    stored = filled.entries()
    as_json = json.loads(log_cli("export", "--json", "--log", str(filled.path)).stdout)
    as_csv = list(csv.DictReader(io.StringIO(
        log_cli("export", "--csv", "--log", str(filled.path)).stdout, newline="")))
    assert len(as_json) == len(as_csv) == 3
    for e, j, c in zip(stored, as_json, as_csv, strict=True):
        assert j == {"id": e.id, "created": e.created.isoformat() if e.created else None,
                     "week_start": e.week_start.isoformat(), "week_title": e.week_title,
                     "session": e.session, "kind": e.kind, "minutes": e.minutes,
                     "day": e.day.isoformat(), "done": e.done, "rating": e.rating,
                     "too_much": e.too_much, "feeling": e.feeling, "note": e.note,
                     "speak_note": e.speak_note}
        assert c == {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                     for k, v in j.items()}
    assert as_csv[0]["note"] == 'tight, then "loose"\nand <b>soft</b>, finally'
    week = json.loads(log_cli("export", "--json", "--week", "2026-12-14", "--log",
                              str(filled.path)).stdout)
    assert [j["week_start"] for j in week] == ["2026-12-14"]
    out = tmp_path / "export.csv"
    result = log_cli("export", "--csv", "--out", str(out), "--log", str(filled.path))
    assert result.exit_code == 0 and result.stdout == ""
    assert list(csv.DictReader(io.StringIO(out.read_text(), newline=""))) == as_csv
    assert out.stat().st_mode & 0o777 == 0o600  # the notes stay private
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "log"]


def test_delete(filled: PracticeLog) -> None:
    path = str(filled.path)
    first, second, third = (e.id for e in filled.entries())
    kept = log_cli("delete", "--id", str(first), "--log", path, stdin="n\n")
    assert kept.exit_code != 0 and "Delete 1 entry" in kept.output
    assert len(filled.entries()) == 3
    result = log_cli("delete", "--id", str(first), "--id", "999", "--yes", "--log", path)
    assert result.exit_code == 0 and "Deleted 1 entry." in result.stdout
    result = log_cli("delete", "--week", "2026-12-07", "--log", path, stdin="y\n")
    assert result.exit_code == 0 and "Deleted 1 entry." in result.stdout
    assert [e.id for e in filled.entries()] == [third]
    result = log_cli("delete", "--week", "2026-12-07", "--yes", "--log", path)
    assert result.exit_code == 0 and "Nothing to delete" in result.stdout
    result = log_cli("delete", "--all", "--yes", "--log", path)
    assert result.exit_code == 0 and "Deleted 1 entry." in result.stdout
    assert filled.entries() == [] and second is not None


@pytest.mark.parametrize(("args", "words"), [
    (["list", "--week", "notadate"], ["--week", "YYYY-MM-DD"]),
    (["list", "--week", "2026-02-30"], ["--week", "YYYY-MM-DD"]),
    (["export", "--json", "--week", "2026-W50"], ["--week", "YYYY-MM-DD"]),
    (["delete", "--id", "x", "--yes"], ["--id", "number"]),
    (["delete", "--id", "-3", "--yes"], ["--id", "number"]),
    (["delete", "--yes"], ["--id/--week/--all", "give one of them"]),
    (["delete", "--all", "--week", "2026-12-07", "--yes"], ["give only one"]),
    (["export"], ["--csv/--json", "give one of them"]),
    (["export", "--csv", "--json"], ["--csv/--json", "give only one"]),
], ids=["week-notadate", "week-feb-30", "week-iso-week", "id-x", "id-negative",
        "delete-nothing", "delete-two", "export-no-format", "export-two-formats"])
def test_bad_input_is_refused_cleanly(filled: PracticeLog, args: list[str],
                                      words: list[str]) -> None:
    assert_refused(log_cli(*args, "--log", str(filled.path)), *words)
    assert len(filled.entries()) == 3


def test_export_to_a_folder_that_is_not_there(filled: PracticeLog, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "export.json"
    assert_refused(log_cli("export", "--json", "--out", str(out), "--log", str(filled.path)),
                   "--out")
    assert not out.parent.exists()


def test_export_never_replaces_a_link_or_a_device(tmp_path: Path) -> None:
    from audioguide.cli import cli

    log_path = tmp_path / "practice.sqlite"
    PracticeLog(log_path)
    target = tmp_path / "real.csv"
    target.write_text("kept\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for out, says in ((link, "not a plain file"), (tmp_path, "is a directory")):
        result = CliRunner().invoke(cli, ["log", "export", "--csv", "--log", str(log_path),
                                          "--out", str(out)])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "--out" in result.output and says in result.output
    assert link.is_symlink() and target.read_text() == "kept\n"


def test_a_log_on_a_read_only_disk_is_not_called_damaged(tmp_path: Path) -> None:
    """A log whose folder cannot be written (a read-only mount) is named as such: SQLite
    writes its side files beside a log even to read it, and the file is fine."""
    from audioguide.cli import cli

    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        log_path = disk / "practice.sqlite"
        log = PracticeLog(log_path)
        log.add(entry())
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = CliRunner().invoke(cli, ["log", "list", "--log", str(log_path)])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "cannot be written" in result.output and "damaged" not in result.output
    finally:
        subprocess.run(["umount", str(disk)], check=True)
