"""The processes a week and a local batch build in, and what runs in them.

One pool of worker processes serves a whole week: it plans every session (renders,
speaks through the cache and fits it), then, once every plan is known to be sound,
builds them. The workers start once, and each keeps what it loaded (the interpreter,
the engine, the template worker) from one session to the next. Each reports its
stages on a queue, so the command can say what it is doing from the first second.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import logging.handlers
import multiprocessing as mp
import os
import queue
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioguide.errors import AudioguideError, named
from audioguide.request import Request

if TYPE_CHECKING:
    from audioguide.planning import Plan

log = logging.getLogger(__name__)

#: What one worker speaking with Kokoro holds at its peak (measured: a 20-minute session's
#: build peaked at 935 MB resident, the model and onnxruntime's buffers most of it), so a
#: week never starts more of them than memory allows.
KOKORO_WORKER_BYTES = 1 << 30


def memory_allows(requests: list[Request]) -> int:
    """How many sessions may be built at once as far as memory goes."""
    if not any(r.engine == "kokoro" for r in requests):
        return 1 << 10
    try:  # Linux: memory available without swapping, page cache included
        meminfo = Path("/proc/meminfo").read_text()
        available = int(meminfo.split("MemAvailable:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return 1 << 10
    allowed = max(1, available // KOKORO_WORKER_BYTES)
    log.info("memory allows %d Kokoro workers at once", allowed)
    return allowed


def start_pool(workers: int, events: Any) -> cf.ProcessPoolExecutor:
    """``workers`` processes (spawned: nothing of this process's state is shared), each
    reporting on ``events`` (a queue, or None) its stages and its log (at this process's
    level: ``-v`` shows what each worker does), each given its share of the cores for a
    neural engine's model, and each killed by the kernel if this process dies."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    level = logging.getLogger().getEffectiveLevel()
    return cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                  initializer=init_worker,
                                  initargs=(events, threads, os.getpid(), level))


def stop_pool(pool: cf.ProcessPoolExecutor, others: set[Any]) -> None:
    """Stop ``pool`` and its worker processes now (those of this process's children that
    are not in ``others``, taken before the pool started). Cancelling alone leaves each
    worker building the sessions already queued to it, and publishing them after the
    command has stopped."""
    pool.shutdown(wait=False, cancel_futures=True)
    workers = [p for p in mp.active_children() if p not in others]
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=10)


def drain(events: Any) -> list[tuple[Any, str, int, int]]:
    """The stage reports waiting on ``events``: (session index, stage, done, total). The
    workers' log records among them are logged here, as this process logs its own."""
    found: list[tuple[Any, str, int, int]] = []
    while True:
        try:
            item = events.get_nowait()
        except queue.Empty:
            return found
        if isinstance(item, logging.LogRecord):
            logging.getLogger(item.name).handle(item)
        else:
            found.append(item)


_events: Any = None
#: The session this worker is planning or building, named in its log records.
_session = ""


class _Session(logging.Filter):
    """Names the worker's current session at the start of each of its log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _session:
            record.msg, record.args = f"{_session}: {record.getMessage()}", None
        return True


def init_worker(events: Any, threads: int, parent: int | None = None,
                level: int = logging.WARNING) -> None:
    """Runs first in each worker process of a week or a local batch."""
    global _events
    from audioguide.script import sandbox

    _events = events
    if events is not None:  # its log goes to the command's, on the stage queue
        handler = logging.handlers.QueueHandler(events)
        handler.addFilter(_Session())
        logging.getLogger().handlers[:] = [handler]
        logging.getLogger().setLevel(level)
    os.environ.setdefault("AUDIOGUIDE_THREADS", str(threads))
    # One template worker serves every session this process plans, rather than one
    # started (and its Jinja loaded) per session.
    sandbox.keep_open()
    if parent is not None:
        die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent (``parent``) dies, however it dies
    (SIGKILL included): a worker left alive would publish sessions after the command
    stopped and hold its caller's pipe open (``week | tee log`` would never return). On
    Linux; elsewhere only Ctrl-C and SIGTERM stop the workers (the parent does)."""
    import ctypes
    import ctypes.util
    import signal

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def reporter(index: Any) -> Any:
    """A build's progress callback that puts its stages on this worker's queue, as those
    of session ``index``."""
    def report(stage: str, done: int, total: int) -> None:
        if _events is not None:
            _events.put((index, stage, done, total))

    return report


def plan_one(index: int, request: Request) -> tuple[str | None, Plan | None]:
    """Runs in a worker process: plan one session (render, speak, fit); return why it
    cannot be built (or None), and the plan, for its build, when it is small (its speech
    in the cache, named by digest: a few kB)."""
    from audioguide import memory, planning

    _name_session(request)
    report = reporter(index)
    report("plan", 0, 1)
    try:
        planned = planning.plan(request, report)
    except AudioguideError as exc:
        return exc.message, None
    finally:
        memory.release()
    return None, planned if planned.cache is not None else None


def build_one(index: int, request: Request, planned: Plan | None = None) -> str:
    """Runs in a worker process: build one session (from its plan, if given), reporting
    its stages."""
    from audioguide.builder import build, output_name

    _name_session(request)
    try:
        return str(build(request, reporter(index), planned))
    except AudioguideError as exc:
        # Re-raised in the parent as the same kind of error (so the same exit code),
        # naming the session.
        raise named(exc, output_name(request)) from None


def _name_session(request: Request) -> None:
    global _session
    _session = request.file_stem or request.kind
