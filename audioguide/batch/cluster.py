"""The batch on a Dask cluster: one task per session on the workers of a running
scheduler, after checking that every worker runs this audioguide and, unless the files
come back to this machine (``--collect``), writes where this machine reads."""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioguide.batch.tasks import (
    PROBE_PREFIX,
    Key,
    SessionResult,
    build_session,
    worker_version,
    write_probe,
)
from audioguide.builder import output_name
from audioguide.errors import RequestError, ToolMissingError
from audioguide.request import Request

if TYPE_CHECKING:
    from audioguide.batch.tasks import BatchStatus


def run_dask(todo: list[tuple[Key, Request]], address: str, collect: bool, out: Path,
             status: BatchStatus, done: Callable[[Key, SessionResult], None],
             progress: Callable[[BatchStatus], None] | None = None) -> str:
    """Build ``todo`` on the Dask cluster at ``address`` (already accepted by
    :func:`check_address`): one task per session. Each task's stages come back as events
    of the batch's own topic, shown while it builds."""
    from distributed import as_completed

    client = connect(address)
    futures: dict[Any, tuple[Key, Request]] = {}
    events: collections.deque[Any] = collections.deque()  # filled on the client's thread
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise RequestError("--scheduler", f"the scheduler at {address} has had no "
                               "workers for a minute; start some with 'dask worker "
                               f"{address}'.") from None
        workers = client.scheduler_info(n_workers=-1)["workers"]
        status.workers = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
        check_versions(client, address, tuple(sorted({r.engine for _, r in todo})))
        if not collect:
            probe(client, out)
        status.work_began = time.monotonic()
        batch = uuid.uuid4().hex[:8]
        topic = f"audioguide-{batch}-stages"
        client.subscribe_topic(topic, events.append)
        for key, request in todo:
            future = client.submit(build_session, request, collect, key, topic, pure=False,
                                   key=f"audioguide-{batch}-{key[0]}-{key[1]}")
            futures[future] = (key, request)
        finished = as_completed(list(futures), loop=client.loop)
        while futures:
            ready = finished.next_batch(block=False)
            building = {key for key, _ in futures.values()}  # a late event is not shown
            while events:  # (timestamp, [[listener, session], stage, done, total])
                (number, index), stage, part, total = events.popleft()[1]
                if (number, index) in building:
                    status.active[number, index] = (stage, part, total)
            for future in ready:
                key, request = futures.pop(future)
                status.active.pop(key, None)
                try:
                    result = future.result()
                except Exception as exc:  # the task failed for good (KilledWorker, a crash)
                    result = SessionResult(output_name(request), f"its task failed on the "
                                           f"cluster: {type(exc).__name__}: {exc}")
                future.release()
                done(key, result)
            if not ready:
                if progress:
                    progress(status)
                time.sleep(0.2)
        client.unsubscribe_topic(topic)
    except BaseException:
        if futures:
            client.cancel(list(futures))
        raise
    finally:
        client.close()
    return f"Dask scheduler {address}, {status.workers} worker threads"


#: Seconds a scheduler has to accept a connection and greet, and then to take the client.
CONNECT_SECONDS = 15.0
#: The most bytes a scheduler's greeting may announce (distributed's is about 60).
GREETING_MOST = 64 << 10
#: The most bytes a message may announce while the client connects (the scheduler's
#: description, a few kB a worker); distributed itself reads any size it is told.
CONNECT_MOST = 64 << 20


class NotASchedulerError(Exception):
    """The peer at the address is not a Dask scheduler; the message says why."""


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a clear error within about
    :data:`CONNECT_SECONDS` (5 s more at most), whatever the peer sends or withholds."""
    from distributed import Client

    try:
        greet(address)
    except NotASchedulerError as exc:
        raise _unreachable(address, str(exc)) from None
    # Made in two steps so that a client that failed to connect can be marked closed:
    # otherwise its finaliser tries to close it at exit, hanging 30 s with a traceback.
    client = Client.__new__(Client)
    failed: list[BaseException] = []

    def start() -> None:
        try:
            with _messages_at_most(CONNECT_MOST):
                client.__init__(address, timeout=f"{CONNECT_SECONDS}s",  # type: ignore[misc]
                                set_as_default=False)
        except Exception as exc:  # whatever answered is not a scheduler we can use
            failed.append(exc)

    # In a thread of its own, given up at a deadline: distributed's own timeout does not
    # cover the handshake, which a peer can hold for as long as it likes.
    thread = threading.Thread(target=start, name="audioguide-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS + 5)
    if failed or thread.is_alive():
        client.status = "closed"
        raise _unreachable(address, _why(failed[0]) if failed else
                           f"it did not take the client within {CONNECT_SECONDS + 5:g} s")
    return client


@contextmanager
def _messages_at_most(most: int) -> Iterator[None]:
    """While connecting, a message announced larger than ``most`` bytes ends the
    connection before anything is allocated for it (distributed's TCP reader allocates
    what a peer announces, 4 GiB if told so)."""
    from distributed.comm import tcp

    original = tcp.read_bytes_rw

    async def bounded(stream: Any, n: int) -> memoryview:
        if n > most:
            raise MessageTooLargeError(f"it announced a message of {n} bytes while the "
                                       f"client connected (at most {most} are accepted)")
        return await original(stream, n)

    tcp.read_bytes_rw = bounded
    try:
        yield
    finally:
        tcp.read_bytes_rw = original


class MessageTooLargeError(ValueError):
    """A peer announced a message larger than is accepted while connecting."""


def _why(exc: BaseException) -> str:
    """What distributed raised, in words for a sentence."""
    if isinstance(exc, TimeoutError):
        return f"it did not take the client within {CONNECT_SECONDS:g} s"
    if isinstance(exc, MessageTooLargeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _unreachable(address: str, why: str) -> RequestError:
    from importlib import metadata

    return RequestError("--scheduler", f"cannot reach a Dask scheduler at {address!r}: "
                        f"{why}. Give the address of a running Dask scheduler as "
                        "tcp://HOST:PORT (start one with 'dask scheduler', which prints "
                        "it, such as tcp://10.0.0.5:8786), running the same version of "
                        f"distributed as this machine ({metadata.version('distributed')}).")


def greet(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Refuse, within ``seconds``, a peer at a tcp:// ``address`` that does not greet as a
    Dask scheduler does at once: with a small message (its handshake: frames holding a
    msgpack map of its Python and pickle protocol). Nothing larger than
    :data:`GREETING_MOST` is read. Other transports are left to :func:`connect`'s
    deadline."""
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme != "tcp":
        return
    host, port = parse_host_port(location)
    deadline = time.monotonic() + seconds
    try:
        with socket.create_connection((host, port), timeout=seconds) as sock:
            (size,) = struct.unpack("Q", _read(sock, 8, deadline))
            if not 16 <= size <= GREETING_MOST:
                raise NotASchedulerError(f"its first message announces {size} bytes, where a "
                                    f"scheduler's greeting is about 60")
            _check_greeting(_read(sock, size, deadline))
    except TimeoutError:
        raise NotASchedulerError(f"it did not greet within {seconds:g} s, as a scheduler does "
                            "at once") from None
    except OSError as exc:
        raise NotASchedulerError(exc.strerror or str(exc)) from None


def _read(sock: socket.socket, size: int, deadline: float) -> bytes:
    """``size`` bytes from ``sock`` by ``deadline`` (``TimeoutError`` otherwise)."""
    got = bytearray()
    while len(got) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        block = sock.recv(min(size - len(got), 1 << 16))
        if not block:
            raise NotASchedulerError(f"it closed the connection after {len(got)} bytes of its "
                                "greeting" if got else "it closed the connection at once")
        got += block
    return bytes(got)


def _check_greeting(body: bytes) -> None:
    """``body`` must be frames whose first holds distributed's handshake (read with plain
    msgpack: nothing a peer sends here is unpickled)."""
    import msgpack  # type: ignore[import-untyped]

    try:
        (count,) = struct.unpack_from("Q", body)
        lengths = struct.unpack_from(f"{count}Q", body, 8) if count <= 16 else ()
        start = 8 * (1 + count)
        if not lengths or start + sum(lengths) != len(body):
            raise ValueError("frames")
        greeting = msgpack.unpackb(body[start:start + lengths[0]], use_list=False)
    except Exception:  # garbage: struct, msgpack and value errors
        greeting = None
    if not isinstance(greeting, dict) or not {"python", "pickle-protocol"} <= set(greeting):
        raise NotASchedulerError("what it sent first is not a Dask scheduler's greeting")


#: The transports a scheduler's address may name, each with a host and a port.
SCHEMES = ("tcp", "tls", "ws", "wss")


def check_address(address: str) -> None:
    """Refuse, before any work, a scheduler address that cannot be one, or a machine
    without Dask's ``distributed``."""
    try:
        from distributed.comm.addressing import parse_address, parse_host_port
    except ImportError:
        raise ToolMissingError("--scheduler: building on a Dask cluster needs Dask's "
                               "'distributed'; install it with: pip install "
                               "'audioguide[dask]'.") from None
    try:
        scheme, location = parse_address(address)
        _host, port = parse_host_port(location)
        ok = scheme in SCHEMES and 0 < int(port) < 65536
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise RequestError("--scheduler", f"{address!r} is not a Dask scheduler's address; "
                           "give it as tcp://HOST:PORT (the scheduler prints it, port 8786 by "
                           f"default), such as tcp://10.0.0.5:8786; transports: "
                           f"{', '.join(SCHEMES)}.")


def check_versions(client: Any, address: str, engines: tuple[str, ...] = ()) -> None:
    """Every worker must run this audioguide, and the speech ``engines`` the batch speaks
    with at the versions this machine has: another version would build other sessions
    than the recipe check expects (and rebuild them on every run)."""
    from audioguide import __version__

    here = worker_version(engines)
    try:
        versions: dict[str, str] = client.run(worker_version, engines)
    except Exception as exc:  # raised on a worker: audioguide is not importable there
        raise RequestError("--scheduler", f"the workers of {address} cannot run audioguide "
                           f"({type(exc).__name__}: {exc}); install this version "
                           f"({__version__}) on every worker, with its system packages "
                           "(espeak-ng, ffmpeg).") from None
    other = {worker: v for worker, v in versions.items() if v != here}
    if other:
        raise RequestError("--scheduler", "every worker must run what this machine runs "
                           f"({here}); "
                           + ", ".join(f"{w} runs {v}" for w, v in sorted(other.items()))
                           + ". Install the same versions everywhere (the same audioguide, "
                           "and espeak-ng or the voice from the same Debian release).")


def probe(client: Any, out: Path) -> None:
    """Prove every worker writes where this machine reads: each writes a probe file into
    ``out`` as it sees it, and each must be here, with the right contents."""
    token = uuid.uuid4().hex
    written: dict[str, str] = client.run(write_probe, str(out), token)
    problems = []
    for worker, name in written.items():
        if name.startswith("error:"):
            problems.append(f"worker {worker} {name[len('error: '):]}")
            continue
        probe = out / name
        try:
            ok = probe.read_text() == token
            probe.unlink()
        except OSError:
            ok = False
        if not ok:
            problems.append(f"worker {worker} wrote its probe file where this machine cannot "
                            "see it")
    for stray in out.glob(PROBE_PREFIX + token + "*"):
        stray.unlink(missing_ok=True)
    if problems:
        raise RequestError("--out", f"{out} is not shared with the cluster: "
                           + "; ".join(problems) + ". Put --out on storage that every worker "
                           "mounts at the same path, or pass --collect to have the finished "
                           "files sent back to this machine.")
