"""Session kinds: Jinja templates with a metadata header, rendered in a sandbox.

Each ``templates/<kind>.j2`` starts with a Jinja comment holding ``key: value``
lines (title, description, min_minutes, max_silence, walking_safe, seed); the
rest renders to script markup (see ``templates/README.md``). A file with no
header at all is a plain script, used with defaults. Templates are read only
from inside their folders and rendered in a separate, limited process
(:mod:`audioguide.script.sandbox`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from audioguide.errors import RequestError, TemplateError
from audioguide.script import sandbox
from audioguide.script.sandbox import FileRefusedError, Rendered

log = logging.getLogger(__name__)

_HEADER = re.compile(r"\A\s*\{#-?(?P<body>.*?)-?#\}", re.DOTALL)
_REQUIRED = ("title", "description", "min_minutes", "max_silence")

#: Personal options a kind may use, as named in a header's ``uses:`` line.
PERSONAL_OPTIONS = frozenset({"focus", "feelings", "intention", "safe_person"})

#: What a plain script (a file with no header) gets: its lengths and longest silence.
PLAIN_MIN_MINUTES = 1.0
PLAIN_MAX_MINUTES = 90.0
PLAIN_MAX_SILENCE_S = 90.0


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
    #: Longest length, in minutes, the template supports.
    max_minutes: float = 90.0
    #: "shipped", or "user" for a template from a user's folder or file.
    source: str = "shipped"
    #: True when a user template of this name hides the shipped one.
    shadows: bool = False
    #: The personal options the session speaks (``uses:`` in the header); any other is
    #: refused. A header without ``uses:`` accepts them all.
    uses: frozenset[str] = PERSONAL_OPTIONS
    #: A walking session whether or not ``--walking`` is given (``walking_safe: always``).
    always_walking: bool = False
    #: A plain script: the file has no header, so the defaults were used, and its lines
    #: get elastic pauses between them.
    plain: bool = False

    @property
    def search_path(self) -> tuple[Path, ...]:
        """Folders its includes are looked up in: its own, then the shipped one."""
        own = self.path.parent
        shipped = shipped_dir()
        return (own,) if own == shipped else (own, shipped)


@dataclass(frozen=True)
class Broken:
    """A template found in a templates folder that cannot be used, and why."""

    name: str
    path: Path
    #: The error a use of it reports.
    problem: str


def shipped_dir() -> Path:
    """The shipped templates: inside the installed package, or at the repository's top."""
    installed = Path(__file__).parents[1] / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "templates"


def user_dirs(extra: Path | None = None) -> tuple[Path, ...]:
    """User template folders, first match wins: ``--templates``, ``$AUDIOGUIDE_TEMPLATES``,
    then the per-user config folder (``~/.config/audioguide/templates`` on Linux)."""
    from platformdirs import user_config_dir

    found = [extra] if extra else []
    found += [Path(p) for p in os.environ.get("AUDIOGUIDE_TEMPLATES", "").split(os.pathsep) if p]
    found.append(Path(user_config_dir("audioguide")) / "templates")
    return tuple(found)


def kinds(extra: Path | None = None) -> dict[str, Kind]:
    """Every usable kind by name: shipped ones, and user ones (which may shadow them)."""
    return dict(_scan(user_dirs(extra))[0])


def broken(extra: Path | None = None) -> dict[str, Broken]:
    """The templates in the same folders that cannot be used, by name, with the reason."""
    return dict(_scan(user_dirs(extra))[1])


@cache
def _scan(folders: tuple[Path, ...]) -> tuple[tuple[tuple[str, Kind], ...],
                                              tuple[tuple[str, Broken], ...]]:
    found: dict[str, Kind] = {}
    bad: dict[str, Broken] = {}
    shipped = {p.stem for p in shipped_dir().glob("*.j2")}
    # Earlier folders win, so they are read last; a broken file hides only its own name.
    for folder, source in [(shipped_dir(), "shipped"), *((f, "user") for f in reversed(folders))]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.j2")):
            try:
                kind = read_kind(path)
            except TemplateError as exc:
                bad[path.stem] = Broken(path.stem, path, exc.message)
                found.pop(path.stem, None)
                log.warning("%s", exc.message)
                continue
            if source == "user":
                kind = replace(kind, source="user", shadows=path.stem in shipped)
            found[path.stem] = kind
            bad.pop(path.stem, None)
    return tuple(found.items()), tuple(bad.items())


def get_kind(name: str, extra: Path | None = None, template: Path | None = None) -> Kind:
    """The kind called ``name`` (or the one in ``template``), or a clear error."""
    if template is not None:
        if not template.is_file():
            raise RequestError("--template", f"{template} is not a file.")
        return replace(read_kind(template), source="user")
    unusable = broken(extra)
    if name in unusable:
        raise TemplateError(unusable[name].problem)
    known = kinds(extra)
    if name not in known:
        raise RequestError(
            "KIND", f"unknown session kind {name!r}; known kinds: {', '.join(known)}. "
            "Run 'audioguide kinds' for a description of each."
        )
    return known[name]


def read_kind(path: Path) -> Kind:
    """Parse the metadata header of the template at ``path`` (defaults for a file without
    one). The file must lie inside its folder, links resolved, and be small."""
    try:
        text = sandbox.read_source(path, (path.parent, shipped_dir()))
    except FileRefusedError as exc:
        raise TemplateError(f"{path}: the template {exc}.") from None
    match = _HEADER.match(text)
    if match is None:
        if text.lstrip().startswith("{#"):
            raise TemplateError(f"{path} line 1: the header comment is not closed with '#}}'.")
        return _plain(path)
    meta: dict[str, tuple[str, int]] = {}
    for line_number, line in enumerate(match["body"].splitlines(), start=1):
        if ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip()] = (value.strip(), line_number)
    problems = [f"the header lacks '{k}'" for k in _REQUIRED if k not in meta]

    def number(key: str, default: float | None = None, low: float = 0.1,
               high: float = 600.0) -> float:
        if key not in meta:
            return default if default is not None else 0.0
        value, line = meta[key]
        try:
            result = float(value)
        except ValueError:
            result = math.nan
        if not low <= result <= high:
            problems.append(f"line {line}: {key} {value!r} should be a number from "
                            f"{low:g} to {high:g}")
            return default if default is not None else low
        return result

    min_minutes = number("min_minutes", high=90)
    max_minutes = number("max_minutes", 90.0, high=90)
    max_silence = number("max_silence", high=3600)
    if min_minutes > max_minutes:
        problems.append(f"min_minutes {min_minutes:g} is above max_minutes {max_minutes:g}")
    walking = meta.get("walking_safe", ("no", 0))
    if walking[0].lower() not in ("yes", "no", "true", "false", "always"):
        problems.append(f"line {walking[1]}: walking_safe should be yes, no or always")
    uses = PERSONAL_OPTIONS
    if "uses" in meta:
        value, line = meta["uses"]
        uses = frozenset(w.strip().replace("-", "_") for w in value.split(",") if w.strip()
                         and w.strip() != "none")
        if uses - PERSONAL_OPTIONS:
            problems.append(f"line {line}: uses {value!r} names options that are not "
                            f"personal options; choose from {', '.join(sorted(PERSONAL_OPTIONS))}"
                            " or 'none'")
    if problems:
        raise TemplateError(f"{path}: " + "; ".join(problems) + ".")
    return Kind(
        name=path.stem,
        title=meta["title"][0],
        description=meta["description"][0],
        min_minutes=min_minutes,
        max_silence_s=max_silence,
        walking_safe=walking[0].lower() in ("yes", "true", "always"),
        always_walking=walking[0].lower() == "always",
        path=path,
        max_minutes=max_minutes,
        uses=uses & PERSONAL_OPTIONS,
    )


def _plain(path: Path) -> Kind:
    """A file with no header: a plain script, its title from its file name."""
    title = " ".join(path.stem.replace("_", " ").replace("-", " ").split()) or "My session"
    return Kind(name=path.stem, title=title[0].upper() + title[1:],
                description=f"A session of your own, from {path.name}.",
                min_minutes=PLAIN_MIN_MINUTES, max_silence_s=PLAIN_MAX_SILENCE_S,
                walking_safe=False, path=path, max_minutes=PLAIN_MAX_MINUTES, plain=True)


def render(kind: Kind, context: Mapping[str, Any], name: str | None = None) -> str:
    """Render ``kind``'s template (or the template ``name`` on its search path, such as a
    partial) with ``context`` to script markup, in the sandbox and within its limits."""
    return render_script(kind, context, name).text


def render_script(kind: Kind, context: Mapping[str, Any], name: str | None = None) -> Rendered:
    """As :func:`render`, with the names the template looked up in ``context``."""
    return sandbox.render(kind.search_path, name or kind.path.name, context, kind.path)


def kinds_table() -> str:
    """The README's table of shipped kinds and the personal options each uses (Markdown)."""
    shipped = {p.stem: read_kind(p) for p in sorted(shipped_dir().glob("*.j2"))}
    columns = ("focus", "feelings", "intention", "safe_person")
    rows = ["| kind | what it guides | from | longest silence | walking | "
            + " | ".join(f"`--{c.replace('_', '-')}`" for c in columns) + " |",
            "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in columns) + " |"]
    for kind in shipped.values():
        marks = " | ".join("yes" if c in kind.uses else "" for c in columns)
        rows.append(f"| `{kind.name}` | {kind.description} | {kind.min_minutes:g} min | "
                    f"{kind.max_silence_s:g} s | {'yes' if kind.walking_safe else ''} | "
                    f"{marks} |")
    return "\n".join(rows) + "\n"
