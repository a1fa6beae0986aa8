"""How the speech cache lays out and writes its entries (shared by the cache and ``clear``).

Each entry is ``ab/<name>.clip`` or ``ab/<name>.pcm``, ``<name>`` being a
SHA-256 in hex (of the phrase's key, or of a decoded copy's decoder and audio)
and ``ab`` its first two characters. The file holds :data:`FORMAT`, then a
SHA-256 of the format, the name and the payload together, then the payload: an
entry checks out only under its own name.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from audioguide.tts.safe_files import kind

#: Starts every entry; names the format, so entries of another format are made again.
FORMAT = b"audioguide speech cache entry v2\n"
DIGEST = 32
HEAD = len(FORMAT) + DIGEST
#: No phrase's audio or decoded samples come near this (12 minutes of 44.1 kHz samples);
#: a larger file in the cache is not an entry.
ENTRY_MOST = 64 << 20
#: Marks a folder as an audioguide speech cache (the CACHEDIR.TAG convention, so backup
#: tools skip it too); ``clear`` refuses a folder without it.
MARKER = "CACHEDIR.TAG"
MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
               "# This file marks the speech cache of audioguide.\n")
ENTRY = re.compile(r"[0-9a-f]{64}\.(clip|pcm)")


def binding(name: str) -> hashlib._Hash:
    """A SHA-256 started on the format and the entry's name, so that it checks the payload
    as belonging to that name only."""
    return hashlib.sha256(FORMAT + name.encode() + b"\0")


def header(name: str, payload: bytes) -> bytes:
    """What precedes ``payload`` in the entry named ``name`` (without its suffix)."""
    digest = binding(name)
    digest.update(payload)
    return FORMAT + digest.digest()


def checks_out(blob: bytes, name: str) -> bool:
    """Whether ``blob`` is an entry this cache wrote under ``name``: of this format, or of
    the one before it (a SHA-256 of the payload, then the payload)."""
    if blob.startswith(FORMAT):
        return len(blob) > HEAD and blob[:HEAD] == header(name, blob[HEAD:])
    return len(blob) > DIGEST and hashlib.sha256(blob[DIGEST:]).digest() == blob[:DIGEST]


def listed(sub: Path) -> tuple[list[Path], OSError | None]:
    """The entries in the entry folder ``sub`` (regular files named as the cache names
    them, never through a link), and the error if it could not be listed."""
    try:
        names = os.listdir(sub)  # noqa: PTH208 - names only, no stat of each
    except OSError as exc:
        return [], exc
    found = []
    for name in sorted(names):
        if ENTRY.fullmatch(name) and name[:2] == sub.name:
            try:
                mode = (sub / name).lstat().st_mode
            except OSError:
                continue
            if kind(mode) == "a regular file":
                found.append(sub / name)
    return found, None
