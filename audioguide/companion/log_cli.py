"""``audioguide log``: the practice log kept on this machine, listed, exported and deleted."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audioguide.console import CONTEXT, echo, verbose_option
from audioguide.errors import RequestError
from audioguide.params import FILE, TEXT

if TYPE_CHECKING:
    from audioguide.companion.store import Entry, PracticeLog

FIELDS = ("id", "created", "week_start", "week_title", "session", "kind", "minutes", "day",
          "done", "rating", "too_much", "feeling", "note", "speak_note")  # an export's columns
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

log_option = click.option("--log", "log_path", type=FILE, metavar="PATH", help=(
    "The practice log (default: $AUDIOGUIDE_LOG, else practice.sqlite in your data folder)."))
week_option = click.option(
    "--week", type=TEXT, metavar="YYYY-MM-DD",
    help="Only the week that starts on this day (the date 'audioguide log list' shows).")


@click.group(context_settings=CONTEXT)
def log() -> None:
    """The practice log: what you noted on the phone after each session, kept here."""


@log.command(name="list", context_settings=CONTEXT)
@week_option
@log_option
@verbose_option
def list_entries(week: str | None, log_path: Path | None) -> None:
    """Show the practice logged. A line a session, each week under its title."""
    start = _week(week)
    if (practice := _open(log_path)) is None:
        return
    entries = practice.entries(week_start=start)
    if not entries:
        what = f" for the week of {start.isoformat()}" if start else " yet"
        return echo(f"No practice logged{what} in {practice.path}.")
    for line in _table(entries):
        echo(line)


@log.command(context_settings=CONTEXT)
@click.option("--csv", "as_csv", is_flag=True,
              help="Comma-separated values with a header row (a spreadsheet opens them).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, an object an entry.")
@week_option
@click.option("--out", type=FILE, metavar="FILE",
              help="Write to FILE (replaced whole, readable by you only) instead of printing.")
@log_option
@verbose_option
def export(as_csv: bool, as_json: bool, week: str | None, out: Path | None,
           log_path: Path | None) -> None:
    """Export the log as CSV or JSON. Every field, dates YYYY-MM-DD, times in UTC."""
    if as_csv == as_json:
        raise RequestError("--csv/--json", f"give {'only ' if as_csv else ''}one of them: "
                                           "--csv for a spreadsheet, --json for a program")
    start = _week(week)
    practice = _open(log_path, err=True)
    records = [_record(e) for e in practice.entries(week_start=start)] if practice else []
    if as_json:
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: "" if v is None else str(v).lower() if isinstance(v, bool)
                          else v for k, v in r.items()} for r in records)  # as JSON spells them
        text = buffer.getvalue()
    if out is None:
        return click.echo(text, nl=False)
    _write(out, text)
    click.echo(f"Wrote {_count(len(records))} to {out}.", err=True)


@log.command(context_settings=CONTEXT)
@click.option("--id", "ids", multiple=True, type=TEXT, metavar="N",
              help="An entry's number, as 'audioguide log list' shows it; again for more.")
@week_option
@click.option("--all", "everything", is_flag=True, help="Every entry.")
@click.option("--yes", is_flag=True, help="Delete without asking first.")
@log_option
@verbose_option
def delete(ids: tuple[str, ...], week: str | None, everything: bool, yes: bool,
           log_path: Path | None) -> None:
    """Delete entries: by --id, --week or --all. Asks first, unless --yes."""
    given = [name for name, value in (("--id", ids), ("--week", week), ("--all", everything))
             if value]
    if len(given) != 1:
        raise RequestError("--id/--week/--all", f"give {'only ' if given else ''}one of "
                           "them: --id N (again for more), --week YYYY-MM-DD or --all")
    numbers = {_number(value) for value in ids}
    start = _week(week)
    if (practice := _open(log_path)) is None:
        return
    # Exactly the entries counted (and confirmed) go: not one the server adds meanwhile.
    chosen = [e.id for e in practice.entries(week_start=start)
              if e.id is not None and (not numbers or e.id in numbers)]
    if not chosen:
        return echo(f"Nothing to delete: no such entries in {practice.path}.")
    if not yes:
        click.confirm(f"Delete {_count(len(chosen))} from {practice.path}?", abort=True)
    echo(f"Deleted {_count(practice.delete(chosen))}.")


def _open(log_path: Path | None, err: bool = False) -> PracticeLog | None:
    """The log, or None (having said so) when none is there: reading makes no new log."""
    from audioguide.companion.store import PracticeLog, default_log_path
    path = log_path or default_log_path()
    if not path.exists():
        click.echo(f"No practice logged yet in {path}.", err=err)
        return None
    return PracticeLog(path)


def _week(value: str | None) -> dt.date | None:
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
        with contextlib.suppress(ValueError):
            return dt.date.fromisoformat(value.strip())
    raise RequestError("--week", f"{value!r} is not a date; give the week's first day as "
                                 "YYYY-MM-DD, such as 2026-12-07 (as 'audioguide log list' shows)")


def _number(value: str) -> int:
    if re.fullmatch(r"[0-9]{1,18}", value.strip()):
        return int(value)
    raise RequestError("--id", f"{value!r} is not an entry number; give a number from the "
                               "first column of 'audioguide log list', such as --id 12")


def _count(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


def _record(entry: Entry) -> dict[str, Any]:
    """An entry's fields in export order, dates and times in ISO 8601."""
    return {k: v.isoformat() if isinstance(v := getattr(entry, k), dt.date) else v
            for k in FIELDS}


def _table(entries: list[Entry]) -> list[str]:
    """The entries as a table, by week and day, each note shortened to the line's end."""
    head = ("id", "date", "day", "session", "done", "rating", "too much", "feeling", "note")
    ordered = sorted(entries, key=lambda e: (e.week_start, e.day, e.id or 0))
    rows = [(str(e.id), e.day.isoformat(), _DAYS[e.day.weekday()],
             f"{e.kind} {e.minutes:g} min", "done" if e.done else "skipped",
             "-" if e.rating is None else f"{e.rating}/10", "yes" if e.too_much else "-",
             e.feeling or "-", " ".join((e.note or "-").split())) for e in ordered]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head) - 1)]
    room = max(20, shutil.get_terminal_size().columns - 1 - sum(w + 2 for w in widths))

    def line(row: tuple[str, ...]) -> str:
        note = row[-1] if len(row[-1]) <= room else row[-1][:room - 1].rstrip() + "…"
        return "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), note])

    lines: list[str] = []
    for index, (entry, row) in enumerate(zip(ordered, rows, strict=True)):
        if index == 0 or entry.week_start != ordered[index - 1].week_start:
            lines += [*([""] if lines else []),
                      f"{entry.week_title} (from {entry.week_start.isoformat()})", line(head)]
        lines.append(line(row))
    return lines


def _write(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all: a temporary file beside it, then renamed."""
    if (path.exists() or path.is_symlink()) and (path.is_symlink() or not path.is_file()):
        raise RequestError("--out", f"{path} is not a plain file (a link, a folder or a "
                           "device); give a new file's name, or a plain file to replace")
    temp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        temp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        temp.replace(path)
    except OSError as exc:
        raise RequestError("--out", f"cannot write {path} ({exc.strerror or exc}); give a file "
                                    "in a folder you can write to, on a disk with room") from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
