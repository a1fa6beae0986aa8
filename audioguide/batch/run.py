"""The batch: every listener's week, one task per session, on this machine or a Dask cluster.

The client (this process) checks what is already built, hands every session still
to build to the workers, and, as each listener's last session comes back, writes
that listener's playlist, feed and page. Sessions are published atomically, by the
worker on shared storage or, with ``--collect``, by the client from the files the
worker returns, so a killed worker or an interrupted batch leaves no partial file;
the next run builds only what is missing or changed (the week's recipe check).
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audioguide.batch import cluster
from audioguide.batch.roster import RECORD, Listener, Roster
from audioguide.batch.tasks import BatchStatus, Key, SessionResult, build_session
from audioguide.builder import output_name
from audioguide.errors import AudioguideError, RequestError
from audioguide.publish import (
    Staging,
    atomic_write,
    check_output_dir,
    make_output_dir,
    sweep,
    sweep_stopped,
)
from audioguide.request import Request
from audioguide.week.build import check_folder_is_this_week, requests_for, up_to_date
from audioguide.week.finish import finish_week
from audioguide.week.workers import drain, memory_allows, start_pool, stop_pool

log = logging.getLogger(__name__)

#: How often a session whose worker process died is tried again on this machine.
LOCAL_ATTEMPTS = 3

@dataclass
class ListenerReport:
    """What became of one listener's week."""

    id: str
    folder: Path
    sessions: int
    built: int = 0
    up_to_date: int = 0
    #: (session file, why) for each session that was not built.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Why the week's playlist, feed and page could not be written, if they could not.
    week_error: str | None = None

    @property
    def finished(self) -> bool:
        return self.built + self.up_to_date + len(self.failed) == self.sessions

    @property
    def status(self) -> str:
        if self.failed or self.week_error:
            return "failed"
        return "built" if self.built else "up to date"

    def reasons(self) -> str:
        found = [f"{name}: {why}" for name, why in self.failed]
        if self.week_error:
            found.append(self.week_error)
        return " ".join(found)


BatchProgress = Callable[[BatchStatus], None]


@dataclass
class BatchReport:
    """The batch's outcome: a report per listener, and where and how long it ran."""

    listeners: list[ListenerReport]
    where: str
    seconds: float
    status: BatchStatus

    @property
    def failed(self) -> list[ListenerReport]:
        return [r for r in self.listeners if r.status == "failed"]


def run_batch(roster: Roster, out: Path, base_url: str = "http://127.0.0.1:8000/",
              jobs: int | None = None, scheduler: str | None = None, collect: bool = False,
              progress: BatchProgress | None = None) -> BatchReport:
    """Build every listener's week of ``roster`` under ``out``; write ``out/batch.json``."""
    if collect and not scheduler:
        raise RequestError("--collect", "only means something with --scheduler (the files "
                           "come back from the cluster's workers); leave it out to build on "
                           "this machine.")
    if scheduler:
        cluster.check_address(scheduler)
    started_at = dt.datetime.now(dt.UTC)
    check_output_dir(out)
    base = base_url if base_url.endswith("/") else base_url + "/"
    requests: list[list[Request]] = []
    reports: list[ListenerReport] = []
    todo: list[tuple[Key, Request]] = []
    voices: dict[tuple[str, str | None], tuple[str, str]] = {}
    status = BatchStatus(total=0, listeners=len(roster.listeners))
    for number, listener in enumerate(roster.listeners):
        if progress:
            status.stage = f"checking listener {number + 1}/{len(roster.listeners)}"
            progress(status)
        week = [_pinned(r, voices) for r in requests_for(listener.plan, listener.folder)]
        check_folder_is_this_week(listener.folder, listener.plan)
        check_output_dir(listener.folder)
        sweep(listener.folder)
        report = ListenerReport(listener.id, listener.folder, len(week))
        for index, request in enumerate(week):
            if up_to_date(request):
                report.up_to_date += 1
            else:
                todo.append(((number, index), request))
        requests.append(week)
        reports.append(report)
    status.total, status.stage = sum(len(w) for w in requests), None
    status.skipped = status.done = sum(r.up_to_date for r in reports)
    log.info("%d listeners, %d sessions: %d up to date, %d to build", len(reports),
             status.total, status.skipped, len(todo))

    def finish(number: int) -> None:
        listener, report = roster.listeners[number], reports[number]
        status.listeners_done += 1
        if report.failed:
            return
        try:
            url = f"{base}{_relative(listener.folder, out)}/"
            finish_week(listener.folder, listener.plan, requests[number], url)
        except (AudioguideError, OSError) as exc:
            report.week_error = (f"the week's playlist, feed and page could not be written: "
                                 f"{getattr(exc, 'message', None) or exc}")

    def done(key: Key, result: SessionResult) -> None:
        number = key[0]
        report = reports[number]
        if result.error is None and result.files:
            result.error = _publish(roster.listeners[number], result)
            result.files = []  # the client holds no more of a week than it must
        if result.error is None:
            report.built += 1
        else:
            report.failed.append((result.name, result.error))
            status.failed += 1
        status.done += 1
        log.info("%s %s: %s in %.1f s on %s", report.id, result.name,
                 "built" if result.error is None else "failed", result.seconds, result.worker)
        if report.finished:
            finish(number)
        if progress:
            progress(status)

    for number, report in enumerate(reports):
        if report.finished:  # nothing to build: the week's files are brought up to date
            finish(number)
    if progress:
        progress(status)
    try:
        if todo and scheduler:
            where = cluster.run_dask(todo, scheduler, collect, out, status, done,
                                     progress)
        elif todo:
            where = _run_local(todo, jobs, status, done, progress)
        else:
            where = "nothing to build"
    finally:
        for listener in roster.listeners:
            if listener.folder.is_dir():
                sweep_stopped(listener.folder)
    outcome = BatchReport(reports, where, time.monotonic() - status.started, status)
    _write_record(out, roster, outcome, started_at)
    return outcome


def _pinned(request: Request, chosen: dict[tuple[str, str | None], tuple[str, str]]) -> Request:
    """``request`` with its engine and voice as this machine resolves them, so that every
    worker speaks with the same voice whatever it has installed, and the recipe this
    machine checks is the one the workers build."""
    from audioguide.tts import get_engine, resolve_voice
    from audioguide.tts.auto import resolve_engine

    key = (request.engine, request.voice)
    if key not in chosen:
        engine = resolve_engine(request.engine, request.voice)
        chosen[key] = engine, resolve_voice(get_engine(engine), request.voice)
    engine, voice = chosen[key]
    return replace(request, engine=engine, voice=voice)


def _relative(folder: Path, out: Path) -> str:
    try:
        return folder.relative_to(out).as_posix()
    except ValueError:
        return folder.name


def _publish(listener: Listener, result: SessionResult) -> str | None:
    """Publish a session's returned files into the listener's folder, atomically."""
    try:
        with Staging(listener.folder) as staging:
            for name, data in result.files:
                staging.path(name).write_bytes(data)
            staging.publish([name for name, _ in result.files])
    except (AudioguideError, OSError) as exc:
        return (f"could not publish into {listener.folder}: "
                f"{getattr(exc, 'message', None) or getattr(exc, 'strerror', None) or exc}")
    return None


def _run_local(todo: list[tuple[Key, Request]], jobs: int | None, status: BatchStatus,
               done: Callable[[Key, SessionResult], None],
               progress: BatchProgress | None = None) -> str:
    """Build ``todo`` in a pool of processes on this machine, as ``week`` does. A session
    whose worker process died (killed, out of memory) is tried again in a new pool."""
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo),
                         memory_allows([r for _, r in todo])))
    status.workers = workers
    status.work_began = time.monotonic()
    attempts: dict[Key, int] = {}
    waiting = list(todo)
    events: Any = mp.get_context("spawn").Queue()
    while waiting:
        others = set(mp.active_children())
        pool = start_pool(workers, events)
        futures = {pool.submit(build_session, request, False, key): (key, request)
                   for key, request in waiting}
        waiting = []
        pending = set(futures)
        try:
            while pending:
                finished, pending = cf.wait(pending, timeout=0.5,
                                            return_when=cf.FIRST_COMPLETED)
                for who, stage, part, total in drain(events):
                    status.active[who] = (stage, part, total)
                for future in finished:
                    key, request = futures[future]
                    status.active.pop(key, None)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        attempts[key] = attempts.get(key, 0) + 1
                        if attempts[key] < LOCAL_ATTEMPTS:
                            waiting.append((key, request))
                            continue
                        result = SessionResult(
                            output_name(request), "its worker process died "
                            f"{LOCAL_ATTEMPTS} times while building it (out of memory?); "
                            "nothing of it was published.")
                    done(key, result)
                if progress and not finished:
                    progress(status)
        except BaseException:
            stop_pool(pool, others)
            raise
        pool.shutdown()
        status.active.clear()
        if waiting:
            log.warning("a worker process died; %d sessions start again", len(waiting))
    return f"this machine, {workers} worker{'s' if workers > 1 else ''}"


def _write_record(out: Path, roster: Roster, report: BatchReport,
                  started_at: dt.datetime) -> None:
    status = report.status
    data = {
        "roster": roster.source.name,
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(report.seconds, 1),
        "where": report.where,
        "sessions": {"total": status.total, "built": status.built,
                     "up_to_date": status.skipped, "failed": status.failed},
        "listeners": [
            {"id": r.id, "folder": _relative(r.folder, out), "status": r.status,
             "sessions": r.sessions, "built": r.built, "up_to_date": r.up_to_date,
             "failed": [{"session": name, "reason": why} for name, why in r.failed]
             + ([{"session": None, "reason": r.week_error}] if r.week_error else [])}
            for r in report.listeners
        ],
    }
    make_output_dir(out)
    atomic_write(out / RECORD, (json.dumps(data, indent=2) + "\n").encode())


def summary_table(report: BatchReport) -> Iterable[str]:
    """The batch's outcome as a table: one line per listener, reasons for failures."""
    width = max([len("listener"), *(len(r.id) for r in report.listeners)])
    yield f"{'listener':<{width}}  {'week':<8}  {'sessions':>8}  status"
    for r in report.listeners:
        line = (f"{r.id:<{width}}  {r.folder.name:<8}  "
                f"{r.built + r.up_to_date:>3}/{r.sessions:<4}  {r.status}")
        if r.status == "built" and r.up_to_date:
            line += f" ({r.built} built, {r.up_to_date} up to date)"
        if r.status == "failed":
            line += f": {r.reasons()}"
        yield line
    status = report.status
    yield (f"{len(report.listeners)} listeners, {status.total} sessions: {status.built} built, "
           f"{status.skipped} up to date, {status.failed} failed; {report.seconds:.0f} s "
           f"({report.where})")
