"""Session kinds: Jinja templates with a metadata header, rendered in a sandbox.

Each ``templates/<kind>.j2`` starts with a Jinja comment holding ``key: value``
lines (title, description, min_minutes, max_silence, walking_safe, seed); the
rest renders to script markup (see ``templates/README.md``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from audioguide.errors import RequestError, TemplateError
from audioguide.script.markup import speakable
from audioguide.script.vocabulary import feeling, region

_HEADER = re.compile(r"\A\s*\{#-?(?P<body>.*?)-?#\}", re.DOTALL)
_REQUIRED = ("title", "description", "min_minutes", "max_silence")

#: Personal options a kind may use, as named in a header's ``uses:`` line.
PERSONAL_OPTIONS = frozenset({"focus", "feelings", "intention", "safe_person"})


#: Longest a template may take to render, in seconds.
RENDER_SECONDS = 5.0
#: Most text a template may produce, in characters.
MAX_OUTPUT = 1_000_000
#: Most loop items (``range`` elements) one render may use.
MAX_ITERATIONS = 200_000
#: Longest sequence a template may build by repetition (``"a" * n``).
MAX_REPEAT = 100_000


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

    @property
    def search_path(self) -> tuple[Path, ...]:
        """Folders its includes are looked up in: its own, then the shipped one."""
        own = self.path.parent
        shipped = shipped_dir()
        return (own,) if own == shipped else (own, shipped)


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
    """Every kind by name: shipped ones, and user ones (which may shadow them)."""
    return dict(_scan(user_dirs(extra)))


@cache
def _scan(folders: tuple[Path, ...]) -> tuple[tuple[str, Kind], ...]:
    found = {p.stem: read_kind(p) for p in sorted(shipped_dir().glob("*.j2"))}
    shipped = set(found)
    for folder in reversed(folders):  # earlier folders win
        if folder.is_dir():
            for path in sorted(folder.glob("*.j2")):
                found[path.stem] = replace(read_kind(path), source="user",
                                           shadows=path.stem in shipped)
    return tuple(found.items())


def get_kind(name: str, extra: Path | None = None, template: Path | None = None) -> Kind:
    """The kind called ``name`` (or the one in ``template``), or a clear error."""
    if template is not None:
        if not template.is_file():
            raise RequestError("--template", f"{template} is not a file.")
        return replace(read_kind(template), source="user")
    known = kinds(extra)
    if name not in known:
        raise RequestError(
            "KIND", f"unknown session kind {name!r}; known kinds: {', '.join(known)}. "
            "Run 'audioguide kinds' for a description of each."
        )
    return known[name]


def read_kind(path: Path) -> Kind:
    """Parse the metadata header of the template at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read the template: {exc}") from exc
    match = _HEADER.match(text)
    if match is None:
        raise TemplateError(f"{path} line 1: the template must start with a {{# ... #}} "
                            "header of 'key: value' lines (title, description, min_minutes, "
                            "max_silence; see templates/README.md).")
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


def rounds(minutes: float, fixed_minutes: float, per_round_minutes: float) -> int:
    """How many practice rounds fit: at least one, then one per ``per_round_minutes``."""
    if per_round_minutes <= 0:
        raise ValueError("rounds(): per_round_minutes must be above 0")
    return max(1, math.floor((minutes - fixed_minutes) / per_round_minutes))


def pick(options: list[Any], index: int) -> Any:
    """``options[index]``, cycling, so long sessions reuse prompts in order."""
    return options[index % len(options)]


def seconds_spoken(minutes: float) -> str:
    """``minutes`` as a listener hears a duration: "about a minute", "two and a half
    minutes", "forty seconds". Rounded to the nearest half minute (or ten seconds)."""
    seconds = minutes * 60
    if seconds < 55:
        tens = max(1, round(seconds / 10))
        return f"{_NUMBERS[tens * 10]} seconds"
    halves = max(2, round(minutes * 2))
    whole, half = divmod(halves, 2)
    if whole == 1 and not half:
        return "one minute"
    if whole == 1:
        return "a minute and a half"
    return f"{_NUMBERS.get(whole, str(whole))}{' and a half' if half else ''} minutes"


_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
            8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen",
            14: "fourteen", 15: "fifteen", 16: "sixteen", 17: "seventeen", 18: "eighteen",
            19: "nineteen", 20: "twenty", 25: "twenty-five", 30: "thirty", 40: "forty",
            50: "fifty", 60: "sixty"}
_NUMBERS.update({n: f"twenty-{_NUMBERS[n - 20]}" for n in range(21, 30) if n != 25})
_NUMBERS.update({n: f"thirty-{_NUMBERS[n - 30]}" for n in range(31, 40)})


class RunawayError(Exception):
    """A template used more time, loop items or output than it may."""


_spent: contextvars.ContextVar[list[int]] = contextvars.ContextVar("spent")


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    spent = _spent.get([0])
    spent[0] += len(numbers)
    if spent[0] > MAX_ITERATIONS:
        raise RunawayError(f"its loops ran past {MAX_ITERATIONS:,} items")
    return numbers


def _make_environment(folders: tuple[Path, ...]) -> Any:
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        """The sandbox, with repetition and powers bounded as well."""

        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and (not isinstance(right, int | float) or abs(right) > 64
                                     or not isinstance(left, int | float)
                                     or abs(left) > 1e6):
                raise SecurityError("powers are limited to small numbers in templates")
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, str | list | tuple) and isinstance(times, int) \
                            and len(seq) * times > MAX_REPEAT:
                        raise SecurityError(f"repetition is limited to {MAX_REPEAT:,} items")
            return super().call_binop(context, operator, left, right)

    env = Sandbox(
        loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["spoken"] = speakable
    env.globals.update(rounds=rounds, pick=pick, range=_bounded_range, feeling=feeling,
                       region=region, seconds_spoken=seconds_spoken)
    return env


environment = cache(_make_environment)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the render after ``seconds`` (main thread on Unix; elsewhere, no limit)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise RunawayError(f"it ran for more than {seconds:g} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render(kind: Kind, context: Mapping[str, Any], name: str | None = None) -> str:
    """Render ``kind``'s template (or the template ``name`` on its search path, such as a
    partial) with ``context`` to script markup, within the limits."""
    from jinja2 import TemplateError as JinjaError
    from jinja2 import TemplateNotFound, TemplateSyntaxError

    env = environment(kind.search_path)
    token = _spent.set([0])
    try:
        with _time_limit(RENDER_SECONDS):
            template = env.get_template(name or kind.path.name)
            chunks, size = [], 0
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise RunawayError(f"it produced more than {MAX_OUTPUT:,} characters")
                chunks.append(chunk)
        return "".join(chunks)
    except TemplateSyntaxError as exc:
        where = exc.filename or str(kind.path)
        raise TemplateError(f"{where} line {exc.lineno}: {exc.message}") from None
    except RunawayError as exc:
        raise TemplateError(f"{kind.path}{_line(exc, kind)}: the template was stopped: {exc}. "
                            "Templates must finish quickly and stay small.") from None
    except TemplateNotFound as exc:
        raise TemplateError(f"{kind.path}{_line(exc, kind)}: there is no template "
                            f"{exc.name!r} to include, import or extend; templates can use "
                            "only other templates in their own folder and the shipped "
                            "partials.") from None
    except RecursionError:
        raise TemplateError(f"{kind.path}: the template was stopped: it called itself "
                            "without end.") from None
    except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateError(f"{kind.path}{_line(exc, kind)}: {message}") from None
    finally:
        _spent.reset(token)


def _line(exc: BaseException, kind: Kind) -> str:
    """`` line N`` of the template where ``exc`` arose, when the traceback shows it."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(kind.path.name):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" line {line}" if line else ""


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
