"""Publishing: safe file names, writable folders, and atomic writes.

A file appears under its final name only when it is complete: a build writes
into a private staging folder inside the output folder and renames its files
into place under the folder's lock; a single file is written to a new,
exclusively created temporary file and renamed. Two runs can share a folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import stat
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

from audioguide.errors import AudioguideError, RequestError

#: Names Windows reserves for devices, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}
FILENAME_MAX = 80


def safe_filename(text: str) -> str:
    """A file name stem safe on every system: no separators, no '..', no control or
    reserved names, lower case ASCII letters, digits, '.', '_' and '-', at most 80 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.lower())
    # A dot only between letters or digits ("7.5min"); never "..", never leading.
    stem = re.sub(r"(?<![a-z0-9])\.|\.(?![a-z0-9])", "-", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_ ")[:FILENAME_MAX].strip(".-_ ")
    if not stem:
        stem = "session"
    if stem.split(".")[0] in _RESERVED:
        stem = "session-" + stem
    return stem


def check_output_dir(folder: Path) -> None:
    """Prove, before any work starts, that ``folder`` can be written, or made where it does
    not exist yet. It is made only when the first file is published into it, so a refused
    build leaves no empty folder behind."""
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    try:
        if existing == folder:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".audioguide-write-test-"):
                pass
            return
        if not existing.is_dir():
            raise NotADirectoryError(20, f"{existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(13, f"{existing} cannot be written")
    except OSError as exc:
        raise RequestError("--out", f"cannot write to the folder {folder} "
                           f"({exc.strerror or exc}); choose a folder you can write to.") from exc


def make_output_dir(folder: Path) -> None:
    """Make ``folder`` (and its parents) when the first file is to be published into it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequestError("--out", f"cannot make the folder {folder} "
                           f"({exc.strerror or exc}); choose a folder you can write to.") from exc


#: Files and folders a build of audioguide leaves only while it runs.
STAGING_PREFIX = ".audioguide-"
#: A staging folder's name until its lock is held (then it is renamed), so that a staging
#: folder under its own name without a lock is one being removed, never one being made.
NEW_STAGING_PREFIX = STAGING_PREFIX + "new-"
#: A staging folder whose owner has gone, and that is at least this old, is removed.
STALE_AFTER_S = 60.0
#: What a staging folder's lock file says: only a folder that carries it is ever removed
#: with what is in it (a user's ".audioguide-backup" is not ours).
LOCK_MARKER = b"audioguide staging folder; removed when the build that made it is gone\n"
#: The names :class:`Staging` gives (mkdtemp's eight random characters after the maker's
#: process id); nothing else is swept.
_STAGING_NAME = re.compile(r"\.audioguide-(?:new-)?(\d+)-[a-z0-9_]{8}")
#: The ending of :func:`atomic_write`'s temporary files (not another tool's ".partial").
PARTIAL_SUFFIX = ".audioguide-partial"


class Staging:
    """A private folder inside the output folder, where one build writes its files.

    Created with a unique name and mode 0700, so no other user can plant a file or a
    link in it; the build holds a lock on it while it runs, so a later run can tell a
    stale one (its owner killed) from a live one. :meth:`publish` moves the finished
    files into place, in order, under the output folder's lock.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        make_output_dir(folder)
        # The maker's process id is in the name, so a sweep can tell one being made from
        # one whose maker was killed before it could take the lock.
        new = Path(tempfile.mkdtemp(dir=folder, prefix=f"{NEW_STAGING_PREFIX}{os.getpid()}-"))
        self.dir = new.with_name(STAGING_PREFIX + new.name[len(NEW_STAGING_PREFIX):])
        self._lock = -1
        try:
            self._lock = os.open(new / ".lock", os.O_RDWR | os.O_CREAT | os.O_EXCL
                                 | os.O_NOFOLLOW, 0o600)
            os.write(self._lock, LOCK_MARKER)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            new.rename(self.dir)  # the lock is on the file: it holds across the rename
        except BaseException:  # Ctrl-C included: nothing is left behind
            shutil.rmtree(new if new.exists() else self.dir, ignore_errors=True)
            if self._lock >= 0:
                os.close(self._lock)
            raise

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path(self, name: str) -> Path:
        """Where the file that will be published as ``name`` is written."""
        return self.dir / name

    def publish(self, names: Sequence[str]) -> None:
        """Rename the staged ``names`` into the output folder, in order, holding its lock."""
        with folder_lock(self.folder):
            for name in names:
                target = self.folder / name
                if target.is_dir() and not target.is_symlink():
                    raise AudioguideError(f"cannot publish {target}: a folder has that name. "
                                          "Move or rename it, then build again.")
                (self.dir / name).replace(target)

    def close(self) -> None:
        """Remove the staging folder and whatever is left in it, its lock last: stopped
        half-way, it leaves an unlocked lock or no lock, and the next sweep removes it."""
        try:
            for entry in self.dir.iterdir() if self.dir.is_dir() else ():
                if entry.name != ".lock":
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            (self.dir / ".lock").unlink(missing_ok=True)
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            os.close(self._lock)  # whatever is left, a sweep may now remove


@contextlib.contextmanager
def folder_lock(folder: Path, within: float | None = None) -> Iterator[None]:
    """Hold the folder's lock (on the folder itself, so no lock file is left): concurrent
    builds publish one after the other, and writers of a practice log take turns. With
    ``within``, tried every millisecond for that many seconds, then :class:`TimeoutError`;
    a folder that cannot be locked raises another :class:`OSError`."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if within is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + within
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{folder} stayed locked for {within:g} s") from None
                    time.sleep(0.001)
        yield
    finally:
        os.close(fd)  # the folder's descriptor: closing one of a file would drop its locks


def sweep(folder: Path) -> int:
    """Remove what killed builds left in ``folder``, and only that: staging folders (by
    their exact name) whose marked lock nobody holds, or that are empty, and temporary
    files of :func:`atomic_write` past :data:`STALE_AFTER_S`. Never through a link.
    Returns how many were removed."""
    removed = 0
    now = time.time()
    for entry in folder.glob(STAGING_PREFIX + "*"):
        if (not _STAGING_NAME.fullmatch(entry.name) or entry.is_symlink()
                or not entry.is_dir()):
            continue
        if entry.name.startswith(NEW_STAGING_PREFIX) and not _maker_gone(entry, now):
            continue  # being made: its maker may not hold the lock yet
        removed += _remove_staging(entry)
    for entry in folder.glob(".*" + PARTIAL_SUFFIX):
        if (entry.is_file() and not entry.is_symlink()
                and now - entry.lstat().st_mtime > STALE_AFTER_S):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def sweep_stopped(folder: Path) -> int:
    """:func:`sweep` after this process stopped its own builders: a staging folder that one
    of them had made in the second before it was stopped is not yet past the split second
    :func:`sweep` leaves a maker elsewhere, so it is swept again once it is."""
    removed = sweep(folder)
    fresh = [entry for entry in folder.glob(NEW_STAGING_PREFIX + "*")
             if (named := _STAGING_NAME.fullmatch(entry.name))
             and not _running(int(named.group(1)))]
    if fresh:
        time.sleep(1.1)
        removed += sweep(folder)
    return removed


def _remove_staging(entry: Path) -> int:
    """Remove the staging folder ``entry`` if nobody holds its lock and it is ours: its
    lock carries :data:`LOCK_MARKER`, or it holds nothing but an empty lock (its maker
    was stopped before it could write one), or nothing at all (stopped while removing
    it). Returns 1 if it was removed."""
    try:
        fd = os.open(entry / ".lock", os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            entry.rmdir()  # only an empty one: what is in it is not known to be ours
            return 1
        return 0
    except OSError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        marker = os.pread(fd, len(LOCK_MARKER) + 1, 0)
    except OSError:
        return 0  # a build is running in it (or the lock is not a file)
    finally:
        os.close(fd)
    if marker == LOCK_MARKER:
        shutil.rmtree(entry, ignore_errors=True)
        return 1
    if marker == b"" and [p.name for p in entry.iterdir()] == [".lock"]:
        (entry / ".lock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            entry.rmdir()
            return 1
    return 0


def _maker_gone(entry: Path, now: float) -> bool:
    """Whether the staging folder ``entry``, still under its first name, was left by a
    maker that is gone: its process (named in the folder's name) no longer runs, or the
    folder is older than :data:`STALE_AFTER_S` (a maker on another machine or in another
    process namespace, whose id means nothing here)."""
    try:
        age = now - entry.stat().st_mtime
    except OSError:
        return False  # renamed (or removed) meanwhile
    if age >= STALE_AFTER_S:
        return True
    named = _STAGING_NAME.fullmatch(entry.name)
    pid = named.group(1) if named else ""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    if _running(int(pid)):
        return False
    return age > 1.0  # not the split second in which a maker elsewhere is at work


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a killed process nobody has reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it runs, as another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask: it exists
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@functools.cache
def file_mode() -> int:
    """The mode a new file of the user's gets (0666 less the umask), for files made
    private by ``mkstemp`` (0600) that others must read, such as a served feed. The umask
    is read once: reading it means setting it, which is not safe beside other threads."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_together(files: dict[Path, bytes], what: str) -> None:
    """Write every file of ``files`` that changed, or none: each is first written whole to
    a temporary file beside it, and only when all are written are they renamed into place
    (a full disk half-way leaves the old set, not a new feed beside an old page). A file
    that already holds its bytes is not written again, so a finished set is re-published
    even on a full disk. ``what`` names the set in the error."""
    for path in files:
        if path.is_dir() and not path.is_symlink():
            raise AudioguideError(f"cannot publish {what} in {path.parent}: {path.name} there "
                                  "is a folder, so the file cannot be written under that name; "
                                  "move or rename it first. None of them was changed.")
    changed = {path: data for path, data in files.items() if not _holds(path, data)}
    written: list[tuple[str, Path]] = []
    try:
        for path, data in changed.items():
            written.append((_write_temporary(path, data), path))
    except OSError as exc:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        folder = next(iter(changed)).parent
        raise AudioguideError(
            f"cannot write {what} in {folder}: {exc.strerror or exc}. None of them was "
            "changed; free some space (or fix the folder's permissions) and run again: the "
            "sessions already built are kept.") from None
    for tmp, path in written:
        Path(tmp).replace(path)


def _holds(path: Path, data: bytes) -> bool:
    """Whether the regular file ``path`` (not a link) holds exactly ``data``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size != len(data):
                return False
            return fh.read(len(data) + 1) == data
    except OSError:
        return False


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a new temporary file (created exclusively, never
    through a link) and a rename."""
    Path(_write_temporary(path, data)).replace(path)


def _write_temporary(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path`` (created exclusively, never
    through a link) and return its name; nothing is left when writing fails."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                suffix=PARTIAL_SUFFIX)
    try:
        # mkstemp makes it 0600; a feed or page must be readable as any file the user
        # writes (a web server running as another user serves it).
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp
