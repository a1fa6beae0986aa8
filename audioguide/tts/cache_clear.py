"""``audioguide cache clear``: every entry the speech cache wrote removed, and what could
not be removed named in one paragraph."""

from __future__ import annotations

import logging
from pathlib import Path

from audioguide.errors import AudioguideError
from audioguide.tts.cache_format import ENTRY_MOST, MARKER, MARKER_TEXT, checks_out, listed
from audioguide.tts.safe_files import Unusable, open_regular, read_most

log = logging.getLogger(__name__)


def clear(folder: Path, subfolders: list[Path]) -> tuple[int, int]:
    """Delete every entry in ``subfolders`` of the cache ``folder`` that checks out; return
    (files, bytes) removed. Refuses a folder without the cache's marker; entries that cannot
    be removed are passed over, then named in an :class:`AudioguideError`."""
    _check_marker(folder)
    files = size = 0
    failed: list[tuple[Path, OSError]] = []
    for sub in subfolders:
        paths, error = listed(sub)
        if error is not None:
            failed.append((sub, error))
        for path in paths:
            removed = _remove(path, failed)
            if removed is not None:
                files += 1
                size += removed
    if failed:
        raise AudioguideError(_not_removed(folder, files, size, failed))
    return files, size


def _check_marker(folder: Path) -> None:
    marker = folder / MARKER
    try:
        with open_regular(marker, 4096) as fh:
            text = read_most(fh, 4096).decode(errors="replace")
    except (OSError, Unusable):
        text = ""
    if not text.startswith(MARKER_TEXT.splitlines()[0]):
        raise AudioguideError(f"{folder} is not an audioguide speech cache (it has no "
                              f"{MARKER} written by audioguide); nothing was removed.")


def _remove(path: Path, failed: list[tuple[Path, OSError]]) -> int | None:
    """Remove the entry at ``path`` if the cache wrote it, and return its size; an entry
    that cannot be read or removed is added to ``failed``."""
    try:
        with open_regular(path, ENTRY_MOST) as fh:
            blob = read_most(fh, ENTRY_MOST)
    except (FileNotFoundError, Unusable):
        return None  # gone meanwhile, or not an entry of this cache
    except OSError as exc:
        failed.append((path, exc))
        return None
    if not checks_out(blob, path.stem):
        return None  # not an entry this cache wrote
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        failed.append((path, exc))
        return None
    return len(blob)


def _not_removed(folder: Path, files: int, size: int,
                 failed: list[tuple[Path, OSError]]) -> str:
    path, exc = failed[0]
    more = f"{len(failed)} entries" if len(failed) > 1 else "1 entry"
    return (f"removed {files} entries ({size / 1e6:.1f} MB) from {folder}, but cannot remove "
            f"{more}, e.g. {path} ({exc.strerror or exc}). They may belong to another user, "
            "be marked immutable (chattr +i) or be on a read-only file system: remove them "
            "as their owner (or with sudo), or make them removable (chmod, chattr -i), then "
            "run 'audioguide cache clear' again.")
