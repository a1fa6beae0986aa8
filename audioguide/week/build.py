"""A week of practice: sessions built in parallel, then a playlist, a feed and a page.

Each session is published atomically by :func:`audioguide.builder.build`; one
whose MP3 already carries the same recipe (and has its sidecars) is skipped.
The playlist, feed and page are written last, each to a temporary file and
renamed, over whatever sessions are finished, so an interrupted run leaves no
partial file and the next run completes the week.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import heapq
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audioguide import tags
from audioguide.builder import output_name
from audioguide.errors import AudioguideError, EncodeError, RequestError
from audioguide.request import Request
from audioguide.tagging import expected_recipe
from audioguide.week import MANIFEST, workers
from audioguide.week.finish import album_title, finish_week
from audioguide.week.planfile import DAY_NAMES, WeekPlan

log = logging.getLogger(__name__)


#: Called with a snapshot of the week's progress.
WeekProgress = Callable[["WeekStatus"], None]


@dataclass
class WeekStatus:
    """What the week build is doing, for a progress display."""

    total: int
    done: int = 0
    skipped: int = 0
    #: session index -> (stage, done, total) for sessions being built now.
    active: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    minutes_total: float = 0.0
    minutes_done: float = 0.0
    started: float = 0.0
    #: Sessions built at once.
    workers: int = 1
    #: session index -> minutes of audio, for sessions to build that have not begun.
    waiting: dict[int, float] = field(default_factory=dict)
    #: session index -> (minutes of audio, when its build began) for sessions being built.
    running: dict[int, tuple[float, float]] = field(default_factory=dict)
    #: Wall-clock seconds the finished sessions took, each from its own start.
    busy_s: float = 0.0
    #: What the week does before its sessions are built ("planning 5/17"), or None.
    stage: str | None = None

    def began(self, index: int, minutes: float) -> None:
        """Note that session ``index`` (``minutes`` long) started building now."""
        self.waiting.pop(index, None)
        self.running.setdefault(index, (minutes, time.monotonic()))

    def finished(self, index: int, minutes: float) -> None:
        """Count session ``index`` (``minutes`` long) as built, now."""
        self.waiting.pop(index, None)
        _, began = self.running.pop(index, (minutes, self.started))
        self.busy_s += time.monotonic() - began
        self.done += 1
        self.minutes_done += minutes

    def eta_s(self) -> float | None:
        """Seconds left, or None before the first session is built.

        From the measured throughput: the wall-clock seconds a worker has
        needed per minute of audio, over the sessions finished so far (skips
        excluded). The sessions left are laid out on the workers in the order
        they will start, those in progress credited with the time they have
        already run, so at a steady pace the estimate counts down with the
        clock, where elapsed-time-over-minutes-built climbed between finishes.
        """
        if self.minutes_done <= 0 or self.busy_s <= 0:
            return None
        per_minute = self.busy_s / self.minutes_done
        now = time.monotonic()
        free = [max(0.0, minutes * per_minute - (now - began))
                for minutes, began in self.running.values()]
        free += [0.0] * max(0, self.workers - len(free))
        heapq.heapify(free)
        for index in sorted(self.waiting):  # the pool starts them in this order
            heapq.heappush(free, heapq.heappop(free) + self.waiting[index] * per_minute)
        return max(free, default=0.0)


def week_folder(out: Path, start: dt.date) -> Path:
    """``output/2026-W48``: the ISO week of the first day."""
    year, week, _ = start.isocalendar()
    return out / f"{year}-W{week:02d}"


def check_folder_is_this_week(folder: Path, plan: WeekPlan, flag: str = "--start") -> None:
    """Refuse to build ``plan`` into ``folder`` when the folder holds another week that
    starts in the same ISO week (23 and 27 Nov share 2026-W48): its playlist, feed and
    page would be replaced, and its sessions no longer listed."""
    manifest = folder / MANIFEST
    if not manifest.exists() and not manifest.is_symlink():
        return
    held: Any = None
    try:
        if manifest.is_file() and not manifest.is_symlink():
            with manifest.open("rb") as fh:  # a small JSON file of our own
                held = json.loads(fh.read(1 << 20)).get("start")
    except (OSError, ValueError, AttributeError, RecursionError):
        held = None
    if held == plan.start.isoformat():
        return
    if not (isinstance(held, str) and _is_date(held)):
        raise AudioguideError(
            f"{flag}: {manifest} cannot be read as the record of a week (it is damaged, or "
            f"not a file), so which week {folder} holds is not known and building into it "
            f"could replace that week's playlist, feed and page. Move {folder} away, or "
            "remove that file if the folder holds only this week, then build again.")
    raise AudioguideError(
        f"{flag}: {folder} already holds the week that starts "
        f"{dt.date.fromisoformat(held):%a %d %b %Y}, and this week (from "
        f"{plan.start:%a %d %b %Y}) falls in the same calendar week, so it would replace that "
        f"week's playlist, feed and page. Build it into another folder (--out), start it "
        f"on that week's first day, or move {folder} away first.")


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def requests_for(plan: WeekPlan, folder: Path) -> list[Request]:
    """Each session's request with its week file name, album and track number."""
    out = []
    per_day: dict[int, int] = {}
    total = len(plan.sessions)
    for number, session in enumerate(plan.sessions, start=1):
        per_day[session.day] = per_day.get(session.day, 0) + 1
        r = session.request
        stem = (f"{session.day}-{DAY_NAMES[session.date.weekday()]}-{per_day[session.day]}"
                f"-{r.kind}-{r.minutes:g}min")
        out.append(replace(r, out_dir=folder, file_stem=stem, album=album_title(plan),
                           track=(number, total)))
    return out


def up_to_date(request: Request) -> bool:
    """True when the session's MP3 and sidecars exist, its recipe matches, and its audio
    and sidecars are exactly what the build wrote (checked against the SHA-256s stored in
    its tag)."""
    mp3 = request.out_dir / output_name(request)
    if not all(p.is_file() for p in (mp3, mp3.with_suffix(".vtt"), mp3.with_suffix(".png"))):
        return False
    try:
        expected: dict[str, Any] = json.loads(json.dumps(expected_recipe(request)))
        return (tags.read_recipe(mp3) == expected and tags.audio_intact(mp3)
                and tags.length_plausible(mp3, request.minutes * 60, request.bitrate_kbps)
                and tags.sidecars_intact(mp3))
    except EncodeError:
        return False


def build_week(plan: WeekPlan, out: Path, base_url: str, jobs: int | None = None,
               progress: WeekProgress | None = None, only_review: bool = False) -> Path:
    """Build every session of ``plan`` under ``out`` (with ``only_review``, only its
    review: the rest must be built); return the week folder."""
    from audioguide.publish import check_output_dir, sweep, sweep_stopped

    folder = week_folder(out, plan.start)
    check_folder_is_this_week(folder, plan)
    requests = requests_for(plan, folder)
    status = WeekStatus(total=len(requests), started=time.monotonic())
    todo = []
    for index, request in enumerate(requests):
        if progress:
            status.stage = f"checking {index + 1}/{len(requests)}"
            progress(status)
        if only_review and request.kind != "review":
            if not (folder / output_name(request)).is_file():
                raise RequestError("--review", f"{folder} has no {output_name(request)} yet; "
                                   "build the week without --review first.")
            status.skipped += 1
            status.done += 1
        elif up_to_date(request):
            status.skipped += 1
            status.done += 1
        else:
            todo.append(index)
            status.minutes_total += request.minutes
    log.info("%d sessions: %d up to date, %d to build", len(requests), status.skipped,
             len(todo))
    if not todo:
        check_output_dir(folder)
        sweep(folder)
    else:
        with _Pool(requests, todo, jobs, status, progress) as pool:
            # Every session is planned (spoken, fitted) before the first MP3 is made, and
            # every problem is reported at once, each at its plan line.
            _raise_problems(plan, pool.plan())
            check_output_dir(folder)
            sweep(folder)  # what a killed run left; never a running build's files
            try:
                pool.build()
            finally:
                sweep_stopped(folder)  # what workers stopped mid-session (Ctrl-C) left
    finish_week(folder, plan, requests, base_url)
    return folder


def check_scripts(plan: WeekPlan, requests: list[Request], todo: list[int],
                  keep: Callable[[int, Any], None] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> None:
    """Plan every session of ``todo`` (render, speak through the cache, fit) in this
    process, and report every problem at once, each at its plan line. ``keep`` is given
    each session's index and plan, for a caller that uses them (the preview)."""
    from audioguide import planning

    problems = []
    for done, index in enumerate(todo):
        session = plan.sessions[index]
        if progress:
            progress(f"planning {done + 1}/{len(todo)}: day {session.day} "
                     f"{session.request.kind}", done, len(todo))
        try:
            planned = planning.plan(requests[index])
        except AudioguideError as exc:
            problems.append((index, exc.message))
            continue
        if keep:
            keep(index, planned)
    _raise_problems(plan, problems)


def _raise_problems(plan: WeekPlan, problems: list[tuple[int, str]]) -> None:
    """One error naming every session of ``plan`` that cannot be built, and why."""
    if not problems:
        return
    said = []
    for index, message in sorted(problems):
        session = plan.sessions[index]
        where = session.where or f"session {index + 1}"
        said.append(f"{where} ({session.request.kind}, {session.request.minutes:g} min): "
                    f"{message}")
    raise AudioguideError(f"The plan has {len(said)} problem{'s' if len(said) > 1 else ''}; "
                          "nothing was built. " + " ".join(f"({i}) {p}"
                                                           for i, p in enumerate(said, 1)))


class _Pool:
    """The week's worker processes: started once, they plan every session, then build."""

    def __init__(self, requests: list[Request], todo: list[int], jobs: int | None,
                 status: WeekStatus, progress: WeekProgress | None) -> None:
        self.requests, self.todo, self.status, self.progress = requests, todo, status, progress
        self.workers = max(1, min(jobs or os.cpu_count() or 1, len(todo),
                                  workers.memory_allows([requests[i] for i in todo])))
        status.workers = self.workers
        self.events: Any = mp.get_context("spawn").Queue()
        self.others = set(mp.active_children())
        self.pool = workers.start_pool(self.workers, self.events)
        #: Each session's plan, made by a worker, for the worker that builds it.
        self.plans: dict[int, Any] = {}

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt | SystemExit):
            workers.stop_pool(self.pool, self.others)
        else:
            self.pool.shutdown(wait=True, cancel_futures=True)
            workers.drain(self.events)  # the workers' last log records

    def plan(self) -> list[tuple[int, str]]:
        """Plan every session in the workers; (index, why) of those that cannot be built."""
        status, problems = self.status, []
        futures = {self.pool.submit(workers.plan_one, index, self.requests[index]): index
                   for index in self.todo}
        for _ in self._wait(futures, planning=True):
            pass
        for future, index in futures.items():
            why, planned = future.result()
            if why is not None:
                problems.append((index, why))
            elif planned is not None:
                self.plans[index] = planned
        log.info("planned %d sessions in %.1f s", len(futures),
                 time.monotonic() - status.started)
        status.stage = None
        status.active.clear()
        return problems

    def build(self) -> None:
        """Build every session in the workers, each as a worker is free."""
        status = self.status
        status.waiting = {index: self.requests[index].minutes for index in self.todo}
        futures = {self.pool.submit(workers.build_one, index, self.requests[index],
                                    self.plans.pop(index, None)): index
                   for index in self.todo}
        for index in self._wait(futures, planning=False):
            status.finished(index, self.requests[index].minutes)
            log.info("built %d/%d: %s", status.done, status.total,
                     self.requests[index].file_stem)

    def _wait(self, futures: dict[cf.Future[Any], int], planning: bool) -> Any:
        """Yield each session's index as its task ends (re-raising a task's error), showing
        the workers' stages as they report them."""
        status, pending = self.status, set(futures)
        done_count = 0
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for index, stage, part, total in workers.drain(self.events):
                    status.active[index] = (stage, part, total)
                    if not planning:
                        status.began(index, self.requests[index].minutes)
                for future in done:
                    index = futures[future]
                    future.result()  # re-raises the session's error
                    status.active.pop(index, None)
                    done_count += 1
                    yield index
                if planning:
                    status.stage = f"planning {done_count}/{len(futures)}"
                if self.progress:
                    self.progress(status)
        except (KeyboardInterrupt, SystemExit):
            # Stopped now, before the caller sweeps what they were writing.
            workers.stop_pool(self.pool, self.others)
            raise
        except BaseException:
            for future in pending:
                future.cancel()
            raise
