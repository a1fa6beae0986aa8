"""Publishing: safe file names, writable folders, and atomic writes.

A file appears under its final name only when it is complete: it is written
under a hidden temporary name in the same folder and renamed into place.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path

from audioguide.errors import RequestError

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
    """Create ``folder`` if needed and prove it can be written, before any work starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".audioguide-write-test-"):
            pass
    except OSError as exc:
        raise RequestError("--out", f"cannot write to the folder {folder} "
                           f"({exc.strerror or exc}); choose a folder you can write to.") from exc




def partial_path(path: Path) -> Path:
    """The hidden name ``path`` is written under before it is renamed into place."""
    return path.with_name(f".{path.name}.partial")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    partial = partial_path(path)
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
