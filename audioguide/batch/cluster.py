"""The batch on a Dask cluster: one task per session on the workers of a running
scheduler, after checking that every worker runs this audioguide and, unless the files
come back to this machine (``--collect``), writes where this machine reads."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
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
              status: BatchStatus, done: Callable[[Key, SessionResult], None]) -> str:
    """Build ``todo`` on the Dask cluster at ``address`` (already accepted by
    :func:`check_address`): one task per session."""
    from distributed import Client, as_completed

    # Made in two steps so that a client that failed to connect can be marked closed:
    # otherwise its finaliser tries to close it at exit, hanging 30 s with a traceback.
    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout="15s", set_as_default=False)  # type: ignore[misc]
    except Exception as exc:  # whatever answered is not a scheduler we can use
        client.status = "closed"
        raise RequestError("--scheduler", f"cannot reach a Dask scheduler at {address!r} "
                           f"({exc}). Start one with 'dask scheduler' and give its address, "
                           "such as tcp://10.0.0.5:8786.") from None
    futures: dict[Any, tuple[Key, Request]] = {}
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
        for key, request in todo:
            future = client.submit(build_session, request, collect, pure=False,
                                   key=f"audioguide-{batch}-{key[0]}-{key[1]}")
            futures[future] = (key, request)
        for future in as_completed(list(futures), loop=client.loop):
            key, request = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the task failed for good (KilledWorker, a crash)
                result = SessionResult(output_name(request), f"its task failed on the "
                                       f"cluster: {type(exc).__name__}: {exc}")
            future.release()
            done(key, result)
    except BaseException:
        if futures:
            client.cancel(list(futures))
        raise
    finally:
        client.close()
    return f"Dask scheduler {address}, {status.workers} worker threads"


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
