"""Rendering untrusted templates: Jinja's sandbox, inside a worker process with hard limits.

A template from someone else is code. It runs in Jinja's immutable sandbox (no Python
internals, no imports, undefined names are errors; loop items, repetition, powers and
output are bounded), and the sandbox runs in a separate, long-lived worker process whose
address space, CPU time and file writes the kernel caps (``setrlimit``); the parent waits
a bounded time for each answer. Every limit hit becomes the usual
:class:`~audioguide.errors.TemplateError`, and the worker is replaced.

Every file a template can reach is resolved first (links included) and must lie inside
one of its template folders, be a regular file and be small: a partial linked to
``/etc/passwd`` is refused, not read.

The worker (:mod:`audioguide.script.worker`) is a fresh interpreter, never a fork of this
process, which may hold a speech engine's threads; it keeps its compiled templates between
renders, so a render costs one round trip of about a millisecond.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioguide.errors import TemplateError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

log = logging.getLogger(__name__)

#: Most CPU time one render may use, in seconds.
RENDER_SECONDS = 5.0
#: Most text one render may produce (its output and every captured block), in characters.
MAX_OUTPUT = 1_000_000
#: Most loop items (``range`` elements) one render may use.
MAX_ITERATIONS = 200_000
#: Longest sequence a template may build by repetition (``"a" * n``).
MAX_REPEAT = 100_000
#: Most address space the worker process may use, in bytes.
MEMORY_BYTES = 256 << 20
#: Largest template file that is read, in bytes.
MAX_TEMPLATE_BYTES = 256 << 10

# The parent's own deadline, for a render stuck where the CPU limit's signal cannot
# interrupt it (inside one long C call) or starved of CPU by other work.
_WALL_SECONDS = 2 * RENDER_SECONDS + 2
_START_SECONDS = 30.0
#: What a stopped template is told.
ADVICE = "Templates must finish quickly and stay small."


class FileRefusedError(Exception):
    """A template file that is not read: outside its folders, not a regular file, too big
    or not UTF-8 text. The message is a predicate ("is not a regular file")."""


def read_source(path: Path, roots: Iterable[Path]) -> str:
    """The text of the template file at ``path``, once it is known to lie inside one of
    ``roots`` with every link resolved, to be a regular file and to be small."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, or a loop of links
        why = getattr(exc, "strerror", None) or exc
        raise FileRefusedError(f"cannot be read ({why})") from None
    if not any(real.is_relative_to(os.path.realpath(root)) for root in roots):
        raise FileRefusedError(f"leads outside its templates folder (to {real}), and a "
                               "template can use only files inside its own folder and the "
                               "shipped templates")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise FileRefusedError(f"cannot be read ({exc.strerror})") from None
    data = b""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefusedError("is not a regular file")
        while len(data) <= MAX_TEMPLATE_BYTES and info.st_size <= MAX_TEMPLATE_BYTES:
            chunk = os.read(fd, MAX_TEMPLATE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_TEMPLATE_BYTES or info.st_size > MAX_TEMPLATE_BYTES:
        raise FileRefusedError(f"is larger than {MAX_TEMPLATE_BYTES >> 10} KiB, the most a "
                               "template may be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefusedError(f"is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class Rendered:
    """A template's text, and the names it looked up in its context while rendering."""

    text: str
    reads: frozenset[str]


def render(folders: Sequence[Path], name: str, context: Mapping[str, Any],
           main: Path) -> Rendered:
    """Render the template ``name``, found in ``folders``, with ``context``, in the worker
    and within the limits; ``main`` is the file errors are reported against."""
    reply = _ask(("render", [str(f) for f in folders], name, dict(context), str(main)), main)
    return Rendered(reply["text"], frozenset(reply["reads"]))


def compile_template(folders: Sequence[Path], name: str, main: Path) -> None:
    """Parse and compile the template ``name`` in the worker, without running it; a
    problem is raised as :class:`TemplateError` with its line."""
    _ask(("compile", [str(f) for f in folders], name, {}, str(main)), main)


def _ask(request: tuple[Any, ...], main: Path) -> dict[str, Any]:
    started = time.perf_counter()
    reply = _worker.ask(request)
    log.debug("%s %s: %s in %.1f ms, worker peak %s KiB", request[0], request[2],
              reply["status"], (time.perf_counter() - started) * 1000, reply.get("peak_kb"))
    if reply["status"] == "ok":
        return reply
    if reply["status"] == "error":
        raise TemplateError(reply["message"])
    why = (f"it ran for more than {RENDER_SECONDS:g} seconds" if reply["status"] == "timeout"
           else f"the process running it ended ({reply['how']}), most likely out of memory "
                "or stack")
    raise TemplateError(f"{main}: the template was stopped: {why}. {ADVICE}")


class _Worker:
    """The worker process: started on first use, replaced after a limit hit."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.lock = threading.Lock()

    def ask(self, request: tuple[Any, ...]) -> dict[str, Any]:
        """The worker's answer to ``request``, or a status saying how it failed to answer."""
        with self.lock:
            conn = self._connection()
            try:
                conn.send(request)
            except OSError:  # it was ended from outside since its last answer
                self.stop()
                conn = self._connection()
                conn.send(request)
            try:
                if not conn.poll(_WALL_SECONDS):
                    self.stop()
                    return {"status": "timeout"}
                reply: dict[str, Any] = json.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return {"status": "died", "how": self.stop(wait=True)}
            except BaseException:
                self.stop()  # interrupted: its answer must not be taken for the next one's
                raise
            if reply.get("retiring"):
                self.stop(wait=True)
            return reply

    def ready(self) -> None:
        """Start the worker if it is not running (the caller holds the lock)."""
        self._connection()

    def _connection(self) -> Connection:
        if self.conn is None or self.process is None or self.process.poll() is not None:
            self.stop()
            self._start()
        assert self.conn is not None
        return self.conn

    def _start(self) -> None:
        from audioguide import interpreter

        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LD_LIBRARY_PATH")}
        self.process, self.conn = interpreter.start(
            "audioguide.script.worker:serve", [], ("-I", "-B", "-X", "utf8"), env=env,
            start_new_session=True)
        try:
            if not self.conn.poll(_START_SECONDS):
                raise EOFError
            self.conn.recv_bytes()
        except (EOFError, OSError):
            how = self.stop(wait=True)
            raise RuntimeError(f"the template worker did not start ({how})") from None

    def stop(self, wait: bool = False) -> str:
        """End the worker (at once, unless ``wait``) and say how it ended."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        process, self.process = self.process, None
        if process is None:
            return "not running"
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if process.poll() is None:
            process.kill()
        code = process.wait()
        return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


_worker = _Worker()
_inherited: list[_Worker] = []


def warm_up() -> None:
    """Start the template worker now, on a thread of its own that waits for it, so that its
    interpreter starts while this one loads the rest (numpy, the audio code); the first
    render then finds it ready. A worker that fails to start is started, and its failure
    reported, by that render."""
    def start() -> None:
        with contextlib.suppress(Exception), _worker.lock:
            _worker.ready()

    threading.Thread(target=start, name="template-worker-start", daemon=True).start()


_kept = False


def keep_open() -> None:
    """Keep the template worker from one session to the next in this process (a week's
    worker processes plan many sessions each); :func:`close` no longer ends it."""
    global _kept
    _kept = True


def close() -> None:
    """End the template worker now, so that it holds no memory while audio is made (a
    later render starts it again), unless :func:`keep_open` was called."""
    if _kept:
        return
    with _worker.lock:
        _worker.stop(wait=True)


def _forget_after_fork() -> None:
    # A forked child must not talk to its parent's worker; it starts its own when needed.
    global _worker
    _inherited.append(_worker)
    _worker = _Worker()


os.register_at_fork(after_in_child=_forget_after_fork)
def _at_exit() -> None:
    # Waits for a worker being started (warm_up) to be up, so it is not left behind.
    locked = _worker.lock.acquire(timeout=_START_SECONDS)
    try:
        _worker.stop()
    finally:
        if locked:
            _worker.lock.release()


atexit.register(_at_exit)
