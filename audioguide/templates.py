"""Session kinds: Jinja templates with a metadata header, rendered in a sandbox.

Each ``templates/<kind>.j2`` starts with a Jinja comment holding ``key: value``
lines (title, description, min_minutes, max_silence, walking_safe, seed); the
rest renders to script markup (see ``templates/README.md``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from audioguide.errors import RequestError, TemplateError
from audioguide.script import speakable

_HEADER = re.compile(r"\A\s*\{#-?(?P<body>.*?)-?#\}", re.DOTALL)
_REQUIRED = ("title", "description", "min_minutes", "max_silence")


@dataclass(frozen=True)
class Kind:
    """A session kind, as its template's header declares it."""

    name: str
    title: str
    description: str
    #: Shortest length, in minutes, the template supports at default settings.
    min_minutes: float
    #: Longest silence, in seconds, any pause of this kind may stretch to.
    max_silence_s: float
    walking_safe: bool
    path: Path


def shipped_dir() -> Path:
    """The shipped templates: inside the installed package, or at the repository's top."""
    installed = Path(__file__).with_name("templates")
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[1] / "templates"


@cache
def kinds() -> dict[str, Kind]:
    """Every shipped kind, by name."""
    found = {}
    for path in sorted(shipped_dir().glob("*.j2")):
        found[path.stem] = read_kind(path)
    return found


def get_kind(name: str) -> Kind:
    """The kind called ``name``, or a :class:`RequestError` listing the known ones."""
    known = kinds()
    if name not in known:
        raise RequestError(
            "KIND", f"unknown session kind {name!r}; known kinds: {', '.join(known)}. "
            "Run 'audioguide kinds' for a description of each."
        )
    return known[name]


def read_kind(path: Path) -> Kind:
    """Parse the metadata header of the template at ``path``."""
    text = path.read_text(encoding="utf-8")
    match = _HEADER.match(text)
    if match is None:
        raise TemplateError(f"{path}: line 1: the template must start with a {{# ... #}} "
                            "header of 'key: value' lines.")
    meta: dict[str, str] = {}
    for line in match["body"].splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip()] = value.strip()
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise TemplateError(f"{path}: the header lacks {', '.join(missing)}.")
    try:
        return Kind(
            name=path.stem,
            title=meta["title"],
            description=meta["description"],
            min_minutes=float(meta["min_minutes"]),
            max_silence_s=float(meta["max_silence"]),
            walking_safe=meta.get("walking_safe", "no").lower() in ("yes", "true"),
            path=path,
        )
    except ValueError as exc:
        raise TemplateError(f"{path}: a header number cannot be read: {exc}") from exc


def rounds(minutes: float, fixed_minutes: float, per_round_minutes: float) -> int:
    """How many practice rounds fit: at least one, then one per ``per_round_minutes``."""
    return max(1, math.floor((minutes - fixed_minutes) / per_round_minutes))


def pick(options: list[Any], index: int) -> Any:
    """``options[index]``, cycling, so long sessions reuse prompts in order."""
    return options[index % len(options)]


@cache
def _environment(folder: Path) -> Any:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["spoken"] = speakable
    env.globals.update(rounds=rounds, pick=pick)
    return env


def render(kind: Kind, context: Mapping[str, Any]) -> str:
    """Render ``kind``'s template with ``context`` to script markup."""
    from jinja2 import TemplateError as JinjaError
    from jinja2 import TemplateSyntaxError, UndefinedError

    env = _environment(kind.path.parent)
    try:
        template = env.get_template(kind.path.name)
        return str(template.render(**context))
    except TemplateSyntaxError as exc:
        where = exc.filename or str(kind.path)
        raise TemplateError(f"{where}: line {exc.lineno}: {exc.message}") from exc
    except UndefinedError as exc:
        raise TemplateError(f"{kind.path}: {exc.message}") from exc
    except JinjaError as exc:
        raise TemplateError(f"{kind.path}: {exc}") from exc
