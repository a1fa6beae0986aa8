"""Per-user folders, each overridable by an environment variable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal


def user_folder(override: str, kind: Literal["cache", "data", "config"], *parts: str) -> Path:
    """``$override`` if set, else the per-user ``kind`` folder of audioguide joined with parts
    (``~/.cache/audioguide/...``, ``~/.local/share/audioguide/...`` on Linux)."""
    value = os.environ.get(override)
    if value:
        return Path(value)
    import platformdirs

    base = {"cache": platformdirs.user_cache_dir, "data": platformdirs.user_data_dir,
            "config": platformdirs.user_config_dir}[kind]("audioguide")
    return Path(base).joinpath(*parts)


def voices_dir() -> Path:
    """Where downloaded voices live: ``$AUDIOGUIDE_VOICES`` or the per-user data folder."""
    return user_folder("AUDIOGUIDE_VOICES", "data", "voices")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
