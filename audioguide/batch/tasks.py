"""What a batch's workers run: one session per task, and the shared-storage probe.

These functions run in worker processes (this machine's pool, or Dask workers on
other machines, which need audioguide installed), so they take and return only
plain, picklable values. A problem the listener's input causes comes back as a
result, not an exception, so Dask does not retry it on another worker; anything
else (a crash, a killed worker) is the scheduler's to retry.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from audioguide import memory
from audioguide.errors import AudioguideError
from audioguide.request import Request

#: A session of the batch: (listener index, session index).
Key = tuple[int, int]


@dataclass
class BatchStatus:
    """Where the batch is, for a progress display."""

    total: int
    listeners: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    listeners_done: int = 0
    workers: int = 1
    started: float = field(default_factory=time.monotonic)
    #: When the first session was handed to a worker.
    work_began: float | None = None
    #: What the batch does before its sessions are handed out ("checking listener 2/6").
    stage: str | None = None
    #: (listener, session) -> (stage, done, total) for sessions being built on this machine.
    active: dict[Key, tuple[str, int, int]] = field(default_factory=dict)

    @property
    def built(self) -> int:
        return self.done - self.skipped - self.failed

    def per_minute(self) -> float | None:
        """Sessions finished (built or failed) per minute of wall-clock time since the work
        began, or None before the first."""
        worked = self.done - self.skipped
        if self.work_began is None or worked <= 0:
            return None
        return worked / max(1e-6, (time.monotonic() - self.work_began) / 60)

    def eta_s(self) -> float | None:
        rate = self.per_minute()
        return None if rate is None else (self.total - self.done) / rate * 60


@dataclass
class SessionResult:
    """What became of one session's task."""

    #: The MP3's file name.
    name: str
    #: Why it was not built (a one-paragraph message), or None.
    error: str | None = None
    #: Seconds the build took on its worker.
    seconds: float = 0.0
    #: Which machine and process built it.
    worker: str = ""
    #: With ``--collect``: the finished files (name, contents), the MP3 last.
    files: list[tuple[str, bytes]] = field(default_factory=list)


#: Values like those glibc's own dynamic tuning reaches.
_TRIM_BYTES, _MMAP_BYTES = 64 << 20, 32 << 20


def undo_dask_malloc_tuning() -> bool:
    """Give this process and its children glibc's usual allocator behaviour again, if a
    Dask nanny changed it; say whether it did.

    Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``, so that freed
    memory goes back to the system at once. Setting it also turns off glibc's growing
    mmap threshold, so every block of audio a build allocates is mapped and unmapped
    afresh: a session took 1.5 times as long in a Dask worker as outside one. The
    variable is dropped (the speech workers and ffmpeg a build starts no longer inherit
    it) and this process's thresholds are set to what glibc would have grown them to.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    del os.environ["MALLOC_TRIM_THRESHOLD_"]
    memory.set_thresholds(_MMAP_BYTES, _TRIM_BYTES)
    return True


def build_session(request: Request, collect: bool = False, key: Key | None = None,
                  topic: str | None = None) -> SessionResult:
    """Build one session: into its week folder (shared storage or this machine), or, with
    ``collect``, into a private folder whose files are returned and then removed. With
    ``key``, its stages are reported as the key's: in a worker of this machine's pool on
    the pool's queue, on a Dask worker as events of ``topic`` the client subscribes to."""
    from audioguide.builder import build, output_name
    from audioguide.script import sandbox
    from audioguide.week.workers import reporter

    undo_dask_malloc_tuning()
    sandbox.keep_open()  # a worker builds many sessions: one template worker serves them
    started = time.monotonic()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    name = output_name(request)
    private = Path(tempfile.mkdtemp(prefix="audioguide-batch-")) if collect else None
    try:
        report = (None if key is None else dask_reporter(topic, key) if topic
                  else reporter(key))
        mp3 = build(replace(request, out_dir=private) if private else request, report)
        files = []
        if private:
            # The order they are published in: the MP3 last, as a build publishes them.
            for path in (mp3.with_suffix(".vtt"), mp3.with_suffix(".png"), mp3):
                files.append((path.name, path.read_bytes()))
        return SessionResult(name, None, time.monotonic() - started, worker, files)
    except AudioguideError as exc:
        return SessionResult(name, exc.message, time.monotonic() - started, worker)
    finally:
        if private:
            shutil.rmtree(private, ignore_errors=True)


#: Seconds between a Dask task's reports of the same stage (a new stage is sent at once).
DASK_REPORT_S = 0.5


def dask_reporter(topic: str, key: Key) -> Callable[[str, int, int], None] | None:
    """A build's progress callback that logs its stages as events of ``topic`` on the Dask
    worker running it (None outside one), a few a second at most."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    last: dict[str, float] = {}  # the stage last sent: when

    def report(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last.get(stage, -DASK_REPORT_S) < DASK_REPORT_S:
            return
        last.clear()
        last[stage] = now
        worker.log_event(topic, [list(key), stage, done, total])

    return report


def worker_version(engines: tuple[str, ...] = ()) -> str:
    """The audioguide version a worker runs and, for each of ``engines``, the speech
    engine's version there or why it cannot speak (a session's recipe depends on both)."""
    from audioguide import __version__
    from audioguide.tts import get_engine

    parts = [f"audioguide {__version__}"]
    for name in engines:
        try:
            parts.append(f"{name}: {get_engine(name).version()}")
        except AudioguideError as exc:
            parts.append(f"{name}: cannot speak here ({exc.message})")
    return "; ".join(parts)


#: The probe file's name begins with this (swept like any of audioguide's temporary files).
PROBE_PREFIX = ".audioguide-probe-"


def write_probe(folder: str, token: str) -> str:
    """Write a probe file into ``folder`` as a worker sees it; return its name, or why not."""
    name = f"{PROBE_PREFIX}{token}-{socket.gethostname()}-{os.getpid()}"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_text(token)
    except OSError as exc:
        return f"error: cannot write to {folder} ({exc.strerror or exc})"
    return name
