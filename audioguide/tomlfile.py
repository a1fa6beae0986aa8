"""Plans and rosters: small TOML files a user writes, read so that no file can hang,
exhaust or crash the command that reads it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from audioguide.errors import AudioguideError

#: A plan file larger than this is not a plan.
MAX_PLAN_BYTES = 1 << 20


def read_toml_text(source: Path, label: str = "PLAN", what: str = "plan",
                   max_bytes: int = MAX_PLAN_BYTES) -> str:
    """The text of a small TOML file, or a clear error naming ``label``."""
    try:
        if source.is_dir() or (source.exists() and not source.is_file()):
            raise AudioguideError(f"{label}: {source} is not a file; give a TOML {what} file.")
        raw = source.read_bytes()[: max_bytes + 1]
    except OSError as exc:
        raise AudioguideError(f"{label}: cannot read {source}: {exc.strerror or exc}.") from exc
    if len(raw) > max_bytes:
        raise AudioguideError(f"{label}: {source} is over {max_bytes >> 20} MB; a {what} is a "
                              "short TOML file.")
    try:
        # utf-8-sig: a byte-order mark some editors write is allowed and ignored.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        encoding = "UTF-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "not UTF-8"
        raise AudioguideError(f"{label}: {source} is {encoding} (byte {exc.start}); save it as "
                              "UTF-8 text, as TOML requires.") from None


#: Tables and lists inside each other deeper than this are not a plan (ours go 3 deep).
MAX_DEPTH = 16


def parse_toml(text: str, source: Path, label: str, what: str) -> dict[str, Any]:
    """The TOML ``text`` of ``source``, or a clear error naming ``label``: not TOML, or
    tables and lists nested deeper than any {what} needs."""
    too_deep = (f"{label}: {source} nests tables or lists more than {MAX_DEPTH} deep; a "
                f"{what} has tables of keys and values, and lists of words.")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AudioguideError(f"{label}: {source} is not valid TOML: {exc}.") from exc
    except RecursionError:
        raise AudioguideError(too_deep) from None
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise AudioguideError(too_deep)
        children = value.values() if isinstance(value, dict) else value
        todo += [(v, depth + 1) for v in children if isinstance(v, dict | list)]
    return data
