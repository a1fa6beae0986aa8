"""The speech cache: every rendered phrase stored once, reused by every later build.

An entry is keyed on engine, engine version, voice, rate and text. Beside it
(``.pcm``) are its samples as the mix uses them, decoded, resampled, trimmed and
faded once, so a warm build reads them instead of decoding again. Each file
holds a SHA-256 of the payload followed by the payload (the engine's audio
file as written), so a damaged entry is noticed and rendered again. Entries
are written to a temporary file and renamed into place, so two builds running
at once never see half an entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from audioguide.errors import AudioguideError
from audioguide.paths import user_folder

log = logging.getLogger(__name__)

_DIGEST = 32
#: Entries are checked this much at a time where only their digest or size is needed.
_CHECK_PIECE = 1 << 20
#: Marks a folder as an audioguide speech cache (the CACHEDIR.TAG convention, so backup
#: tools skip it too); ``clear`` refuses a folder without it.
MARKER = "CACHEDIR.TAG"
MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
               "# This file marks the speech cache of audioguide.\n")
_ENTRY = re.compile(r"[0-9a-f]{64}\.(clip|pcm)")
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
        """The stored audio for ``key``, or None (missing or damaged)."""
        if self.folder is None:
            return None
        return self._read(self._path(key))

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
        return self._read(self._decoded_path(audio, version))

    def put_decoded(self, audio: str, version: str, payload: bytes) -> None:
        """Store the decoded samples of the audio whose SHA-256 is ``audio``, atomically."""
        if self.folder is not None and self.writable:
            self._write(self._decoded_path(audio, version), payload)

    def stored_digest(self, key: PhraseKey) -> str | None:
        """The SHA-256 of the audio stored for ``key`` (checked, without holding it), or
        None (missing or damaged)."""
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

    def _check(self, path: Path) -> tuple[str, int] | None:
        """(SHA-256, size) of the payload at ``path``, read a piece at a time, if it matches
        the digest stored with it."""
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                # The same file, unchanged since this process checked it, is not read again
                # (a week or a preview grid plans the same phrases many times).
                seen = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                if seen in _CHECKED:
                    return _CHECKED[seen]
                stored = fh.read(_DIGEST)
                while piece := fh.read(_CHECK_PIECE):
                    digest.update(piece)
                    size += len(piece)
        except OSError:
            return None
        if not size or digest.digest() != stored:
            log.warning("speech cache entry %s is damaged; making it again", path.name)
            return None
        if len(_CHECKED) >= _CHECKED_MOST:
            _CHECKED.clear()
        _CHECKED[seen] = (digest.hexdigest(), size)
        return _CHECKED[seen]

    def _decoded_path(self, audio: str, version: str) -> Path:
        assert self.folder is not None
        digest = hashlib.sha256(f"{version}\0{audio}".encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.pcm"

    def _read(self, path: Path) -> bytes | None:
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        payload = blob[_DIGEST:]
        if len(blob) <= _DIGEST or hashlib.sha256(payload).digest() != blob[:_DIGEST]:
            log.warning("speech cache entry %s is damaged; making it again", path.name)
            return None
        return payload

    def _write(self, path: Path, payload: bytes) -> bool:
        assert self.folder is not None
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            marker = self.folder / MARKER
            if not marker.exists():
                marker.write_text(MARKER_TEXT)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
            with os.fdopen(fd, "wb") as fh:
                fh.write(hashlib.sha256(payload).digest())
                fh.write(payload)
            Path(tmp).replace(path)
        except OSError as exc:
            if tmp is not None:  # a full disk leaves no partial file
                with contextlib.suppress(OSError):
                    Path(tmp).unlink()
            if self.writable:
                log.warning("cannot write the speech cache in %s (%s); building without "
                            "storing to it", self.folder, exc)
            self.writable = False
            return False
        return True

    def entries(self) -> list[Path]:
        """Every stored phrase's file: the cache's own naming (``ab/abcdef….clip``), regular
        files only, never through a link."""
        if self.folder is None or not self.folder.is_dir():
            return []
        found = []
        for sub in self.folder.iterdir():
            if sub.is_symlink() or not sub.is_dir() or len(sub.name) != 2:
                continue
            found += [p for p in sub.iterdir() if not p.is_symlink() and p.is_file()
                      and _ENTRY.fullmatch(p.name) and p.name[:2] == sub.name]
        return found

    def clear(self) -> tuple[int, int]:
        """Delete every stored phrase whose header checks out; return (files, bytes) removed.

        Refuses a folder that does not carry the cache's marker, so pointing
        ``AUDIOGUIDE_CACHE`` at the wrong folder deletes nothing.
        """
        if self.folder is None or not self.folder.is_dir():
            return 0, 0
        marker = self.folder / MARKER
        if marker.is_symlink() or not marker.is_file() or not marker.read_text(
                errors="replace").startswith(MARKER_TEXT.splitlines()[0]):
            raise AudioguideError(f"{self.folder} is not an audioguide speech cache (it has no "
                                  f"{MARKER} written by audioguide); nothing was removed.")
        files = size = 0
        for path in self.entries():
            blob = path.read_bytes()
            if len(blob) <= _DIGEST or hashlib.sha256(blob[_DIGEST:]).digest() != blob[:_DIGEST]:
                continue  # not an entry this cache wrote
            try:
                path.unlink()
            except OSError as exc:
                raise AudioguideError(f"cannot remove {path} ({exc.strerror or exc}); "
                                      f"{files} phrases were removed before it. Is the cache "
                                      "folder read-only?") from exc
            files += 1
            size += len(blob)
        return files, size
