"""The speech cache: every rendered phrase stored once, reused by every later build.

An entry is keyed on engine, engine version, voice, rate and text, and named by
the SHA-256 of that key. Beside it (``.pcm``) are its samples as the mix uses
them, decoded, resampled, trimmed and faded once, so a warm build reads them
instead of decoding again; a copy is named by the SHA-256 of its decoder's
version and the audio it was decoded from. Each file holds the cache's format
line, then a SHA-256 of its name and its payload together, then the payload (the
engine's audio file as written): a damaged entry, or one copied or swapped from
another name, does not check out and is removed and made again, never used.
Entries are written to a temporary file and renamed into place, so two builds
running at once never see half an entry.

Nothing in the folder is trusted to be what its name says: a link where an
entry, a subfolder or the marker should be is removed (the link, never what it
points to), and a FIFO, a device or a file too large to be an entry is never
read (see :mod:`audioguide.tts.safe_files`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from audioguide.paths import user_folder
from audioguide.tts import cache_clear
from audioguide.tts.cache_format import (
    DIGEST,
    ENTRY_MOST,
    FORMAT,
    MARKER,
    MARKER_TEXT,
    binding,
    header,
    listed,
)
from audioguide.tts.safe_files import FOLDER_FLAGS, NOT_FOLLOWED, Unusable, lkind, open_regular

log = logging.getLogger(__name__)

#: Entries are checked this much at a time where only their digest or size is needed.
_CHECK_PIECE = 1 << 20
#: Entries this process has checked: (path, device, inode, size, mtime) -> (SHA-256, size).
_CHECKED: dict[tuple[str, int, int, int, int], tuple[str, int]] = {}
_CHECKED_MOST = 200_000


def default_cache_dir() -> Path:
    """``$AUDIOGUIDE_CACHE``, or the per-user cache folder."""
    return user_folder("AUDIOGUIDE_CACHE", "cache", "speech")


@dataclass(frozen=True)
class PhraseKey:
    """Everything that decides how a phrase sounds."""

    engine: str
    engine_version: str
    voice: str
    rate: int
    text: str

    def digest(self) -> str:
        """A stable hex name for this key."""
        blob = json.dumps(
            [self.engine, self.engine_version, self.voice, self.rate, self.text],
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


class _Bad(Exception):  # noqa: N818 - a reason, not an error shown to anyone
    """Why an entry is not used; ``quiet`` for one of an older format (simply made again)."""

    def __init__(self, reason: str, quiet: bool = False) -> None:
        super().__init__(reason)
        self.quiet = quiet


class SpeechCache:
    """A folder of rendered phrases; ``None`` as folder means caching is off."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        #: Turned off when a write fails (a full disk, a read-only folder); what the
        #: folder holds is still read.
        self.writable = True

    def _path(self, key: PhraseKey) -> Path:
        assert self.folder is not None
        digest = key.digest()
        return self.folder / digest[:2] / f"{digest}.clip"

    def get(self, key: PhraseKey) -> bytes | None:
        """The stored audio for ``key``, or None (missing, damaged or not its own)."""
        if self.folder is None:
            return None
        found = self._scan(self._path(key), keep=True)
        return found[2] if found else None

    def put(self, key: PhraseKey, payload: bytes) -> bool:
        """Store ``payload`` atomically and say whether it was stored; a folder that cannot
        be written turns storing off."""
        return self.folder is not None and self.writable and self._write(self._path(key),
                                                                         payload)

    def get_decoded(self, audio: str, version: str) -> bytes | None:
        """The decoded samples stored for the engine's audio whose SHA-256 is ``audio``,
        made by decoder ``version``."""
        if self.folder is None:
            return None
        found = self._scan(self._decoded_path(audio, version), keep=True)
        return found[2] if found else None

    def put_decoded(self, audio: str, version: str, payload: bytes) -> None:
        """Store the decoded samples of the audio whose SHA-256 is ``audio``, atomically."""
        if self.folder is not None and self.writable:
            self._write(self._decoded_path(audio, version), payload)

    def stored_digest(self, key: PhraseKey) -> str | None:
        """The SHA-256 of the audio stored for ``key`` (checked, without holding it), or
        None (missing, damaged or not its own)."""
        if self.folder is None:
            return None
        checked = self._check(self._path(key))
        return checked[0] if checked else None

    def decoded_size(self, audio: str, version: str) -> int | None:
        """The size in bytes of the decoded samples stored for the audio whose SHA-256 is
        ``audio`` (checked, without holding them), or None (missing or damaged)."""
        if self.folder is None:
            return None
        checked = self._check(self._decoded_path(audio, version))
        return checked[1] if checked else None

    def _decoded_path(self, audio: str, version: str) -> Path:
        assert self.folder is not None
        digest = hashlib.sha256(f"{version}\0{audio}".encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.pcm"

    # --- reading ---------------------------------------------------------------------------

    def _check(self, path: Path) -> tuple[str, int] | None:
        """(SHA-256, size) of the payload at ``path``, read a piece at a time, if the entry
        checks out; the same file unchanged since this process checked it is not read again
        (a week or a preview grid plans the same phrases many times)."""
        found = self._scan(path, keep=False)
        return (found[0], found[1]) if found else None

    def _scan(self, path: Path, keep: bool) -> tuple[str, int, bytes | None] | None:
        """(SHA-256, size, payload if ``keep``) of the entry at ``path``, or None: missing,
        or bad (then removed, with a warning, so that it is made again)."""
        folder = self._folder(path.parent, create=False)
        if folder is None:
            return None
        try:
            with open_regular(path.name, ENTRY_MOST, dir_fd=folder) as fh:
                st = os.fstat(fh.fileno())
                seen = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                if not keep and seen in _CHECKED:
                    return (*_CHECKED[seen], None)
                try:
                    digest, size, payload = _verify(fh, path.stem, keep)
                except _Bad as bad:
                    self._discard(folder, path, st, str(bad), bad.quiet)
                    return None
        except FileNotFoundError:
            return None
        except Unusable as exc:
            self._discard(folder, path, None, f"it is {exc}")
            return None
        except OSError:  # unreadable: left alone, made again over it if the folder allows
            return None
        finally:
            os.close(folder)
        if len(_CHECKED) >= _CHECKED_MOST:
            _CHECKED.clear()
        _CHECKED[seen] = (digest, size)
        return digest, size, payload

    def _discard(self, folder: int, path: Path, seen: os.stat_result | None, reason: str,
                 quiet: bool = False) -> None:
        """Remove the bad entry at ``path`` (a link itself, never its target), unless another
        build has meanwhile replaced it by a good one."""
        (log.info if quiet else log.warning)(
            "speech cache entry %s is not used (%s); removing it and making it again",
            path, reason)
        with contextlib.suppress(OSError):
            now = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
            if stat.S_ISDIR(now.st_mode):
                os.rmdir(path.name, dir_fd=folder)  # only when empty
            elif seen is None or (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
                os.unlink(path.name, dir_fd=folder)

    def _folder(self, sub: Path, create: bool) -> int | None:
        """The entry folder ``sub`` opened without following a link; a link (or anything
        but a folder) planted at its name is removed, never followed, and with ``create`` a
        real folder is made there. None when there is none (and not ``create``)."""
        for _ in range(3):
            try:
                return os.open(sub, FOLDER_FLAGS)
            except FileNotFoundError:
                if not create:
                    return None
                with contextlib.suppress(FileExistsError):
                    sub.mkdir()
            except OSError as exc:
                try:
                    found = lkind(sub) if exc.errno in NOT_FOLLOWED else None
                    if found is None or found == "a folder":  # the cache itself is not one
                        raise exc
                    log.warning("%s in the speech cache is %s, not a folder; removing it (not "
                                "what it points to)", sub, found)
                    sub.unlink()
                except OSError:
                    if create:
                        raise
                    return None
        raise OSError(errno.EAGAIN, "its entry folder keeps changing", str(sub))

    # --- writing ---------------------------------------------------------------------------

    def _write(self, path: Path, payload: bytes) -> bool:
        assert self.folder is not None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._mark()
            folder = self._folder(path.parent, create=True)
            assert folder is not None
            try:
                _install(folder, path, header(path.stem, payload), payload)
            finally:
                os.close(folder)
        except OSError as exc:
            if self.writable:
                log.warning("cannot write the speech cache in %s (%s); building without "
                            "storing to it", self.folder, exc)
            self.writable = False
            return False
        return True

    def _mark(self) -> None:
        """Write the cache's marker, replacing (never writing through) a link or anything
        else planted at its name."""
        assert self.folder is not None
        marker = self.folder / MARKER
        found = lkind(marker)
        if found == "a regular file":
            return
        if found is not None:
            log.warning("%s is %s; replacing it by the speech cache's marker (not what it "
                        "points to)", marker, found)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".tag")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(MARKER_TEXT)
            Path(tmp).replace(marker)
        except OSError:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise

    # --- listing and clearing ----------------------------------------------------------------

    def entries(self) -> list[Path]:
        """Every stored phrase's file: the cache's own naming (``ab/abcdef….clip``), regular
        files only, never through a link; folders that cannot be listed are passed over."""
        return [p for sub in self._subfolders() for p in listed(sub)[0]]

    def _subfolders(self) -> list[Path]:
        if self.folder is None or not self.folder.is_dir():
            return []
        try:
            return [sub for sub in self.folder.iterdir() if len(sub.name) == 2
                    and lkind(sub) == "a folder"]
        except OSError:
            return []

    def clear(self) -> tuple[int, int]:
        """Delete every stored phrase whose header checks out; return (files, bytes) removed.

        Refuses a folder that does not carry the cache's marker, so pointing
        ``AUDIOGUIDE_CACHE`` at the wrong folder deletes nothing. What cannot be removed
        (another user's, a read-only or immutable file) is passed over, and then named.
        """
        if self.folder is None or not self.folder.is_dir():
            return 0, 0
        return cache_clear.clear(self.folder, self._subfolders())


def _verify(fh: BinaryIO, name: str, keep: bool) -> tuple[str, int, bytes | None]:
    """(SHA-256, size, payload if ``keep``) of the entry ``name`` open at ``fh``, read a
    piece at a time; :class:`_Bad` if it does not check out for that name."""
    head = fh.read(len(FORMAT) + DIGEST)
    if not head.startswith(FORMAT):
        raise _Bad("it was written by an older audioguide", quiet=True)
    bound, digest = binding(name), hashlib.sha256()
    pieces: list[bytes] = []
    size = 0
    while piece := fh.read(_CHECK_PIECE):
        bound.update(piece)
        digest.update(piece)
        size += len(piece)
        if keep:
            pieces.append(piece)
    if not size or bound.digest() != head[len(FORMAT):]:
        raise _Bad("damaged, or not the phrase it is named for")
    return digest.hexdigest(), size, b"".join(pieces) if keep else None


def _install(folder: int, path: Path, head: bytes, payload: bytes) -> None:
    """Write ``head`` and ``payload`` to a temporary file in the entry folder held open as
    ``folder`` and rename it to ``path``'s name there; a full disk leaves no partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    name = Path(tmp).name
    try:
        with os.fdopen(fd, "wb") as fh:
            mine = os.fstat(fh.fileno())
            there = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
                raise OSError(errno.EAGAIN, "the entry folder was replaced while being written",
                              str(path.parent))
            fh.write(head)
            fh.write(payload)
        os.replace(name, path.name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


__all__ = ["ENTRY_MOST", "FORMAT", "MARKER", "MARKER_TEXT", "PhraseKey", "SpeechCache",
           "default_cache_dir", "header"]
