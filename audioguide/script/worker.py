"""The template worker: what runs in the child process that renders templates.

:func:`serve` limits its own process (address space, CPU time, no file writes), then
answers the parent's requests (:mod:`audioguide.script.sandbox`) one at a time: each
template is compiled once in a sandboxed Jinja environment and rendered with its loops,
repetition and output bounded. Here too are the helpers a template can call.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import signal
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from audioguide.script.markup import speakable
from audioguide.script.sandbox import (
    ADVICE,
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_REPEAT,
    MEMORY_BYTES,
    RENDER_SECONDS,
    FileRefusedError,
    read_source,
)
from audioguide.script.vocabulary import feeling, for_posture, region

#: CPU seconds a worker serves before it is replaced, so that its hard limit can be fixed.
WORKER_CPU_SECONDS = 120


def rounds(minutes: float, fixed_minutes: float, per_round_minutes: float) -> int:
    """How many practice rounds fit: at least one, then one per ``per_round_minutes``."""
    if per_round_minutes <= 0:
        raise ValueError("rounds(): per_round_minutes must be above 0")
    return max(1, math.floor((minutes - fixed_minutes) / per_round_minutes))


def pick(options: list[Any], index: int) -> Any:
    """``options[index]``, cycling, so long sessions reuse prompts in order."""
    return options[index % len(options)]


def in_turn(feelings: Iterable[Any], endings: dict[str, list[str]], start: int = 0,
            slot: str = "{n}") -> list[str]:
    """One line for each of ``feelings``: a wording from ``endings`` for its tone
    ("pleasant", "difficult"; any other tone, or one ``endings`` lacks, takes "neutral"),
    with ``slot`` replaced by the feeling's noun. Each tone's wordings are used in turn
    from ``start``, so no wording comes twice in a list shorter than its tone's."""
    if "neutral" not in endings or any(not isinstance(v, list | tuple) or not v
                                       for v in endings.values()):
        raise ValueError("in_turn() takes wordings for each tone, 'neutral' among them")
    used: dict[str, int] = {}
    lines = []
    for each in feelings:
        tone = getattr(each, "tone", "neutral")
        tone = tone if tone in endings else "neutral"
        count = used.get(tone, 0)
        used[tone] = count + 1
        wording = endings[tone][(start + count) % len(endings[tone])]
        lines.append(str(wording).replace(slot, str(getattr(each, "noun", each))))
    return lines


def for_length(feelings: list[Any], own: bool, budget: float) -> list[Any]:
    """The feeling words a session of content ``budget`` labels one by one, each with time
    to be looked for: the listener's own words always all of them; of the defaults, four
    below a budget of 10, six below 14, else eight (a gentle one stays last)."""
    room = 4 if budget < 10 else (6 if budget < 14 else 8)
    if own or len(feelings) <= room:
        return list(feelings)
    return [*feelings[:room - 1], feelings[-1]]


def vary(context: Any, options: list[Any], salt: int = 0) -> Any:
    """One of ``options`` for this session: the session's place in the programme (``seq``)
    picks it, so consecutive sessions of a week hear consecutive wordings and a rebuild
    hears the same one. ``salt`` shifts the choice, for two lists of one length that
    should not move in step."""
    if not isinstance(options, list | tuple) or not options:
        raise ValueError("vary() takes a list of one or more wordings")
    seq = context.get("seq", 0)
    return options[(int(seq) + int(salt)) % len(options)]


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


class _Spent:
    """What the render under way has used, and the context names it looked up."""

    def __init__(self) -> None:
        self.items = 0
        self.output = 0
        self.reads: set[str] = set()

    def produced(self, chars: int) -> None:
        self.output += chars
        if self.output > MAX_OUTPUT:
            raise RunawayError(f"it produced more than {MAX_OUTPUT:,} characters")


_spent = _Spent()


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    _spent.items += len(numbers)
    if _spent.items > MAX_ITERATIONS:
        raise RunawayError(f"its loops ran past {MAX_ITERATIONS:,} items")
    return numbers


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


@lru_cache(maxsize=16)
def environment(folders: tuple[Path, ...]) -> Any:
    """The sandboxed Jinja environment for templates found in ``folders`` (in order)."""
    from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, pass_context
    from jinja2.exceptions import SecurityError
    from jinja2.loaders import split_template_path
    from jinja2.runtime import Context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Loader(BaseLoader):
        """Finds a template in the folders, refusing any file that leaves them."""

        def get_source(self, environment: Any, template: str) -> tuple[str, str, Any]:
            pieces = split_template_path(template)
            for folder in folders:
                path = folder.joinpath(*pieces)
                if os.path.lexists(path):
                    try:
                        text = read_source(path, folders)
                    except FileRefusedError as exc:
                        raise FileRefusedError(f"the template {template!r} {exc}") from None
                    stamp = _stamp(path)
                    return text, str(path), lambda p=path, s=stamp: _stamp(p) == s
            raise TemplateNotFound(template)

    class Sandbox(ImmutableSandboxedEnvironment):
        """The sandbox, with repetition, powers and captured text bounded as well."""

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

        def concat(self, parts: Iterable[str]) -> str:
            # Text captured by {% set %} blocks, macros and filter blocks counts too.
            text = "".join(parts)
            _spent.produced(len(text))
            return text

    class Recording(Context):
        """A context that notes every name looked up in it."""

        def resolve_or_missing(self, key: str) -> Any:
            _spent.reads.add(key)
            return super().resolve_or_missing(key)

    env = Sandbox(loader=Loader(), undefined=StrictUndefined, trim_blocks=True,
                  lstrip_blocks=True, autoescape=False, keep_trailing_newline=True)
    env.context_class = Recording
    env.filters["spoken"] = speakable
    env.globals.update(rounds=rounds, pick=pick, in_turn=in_turn, for_length=for_length,
                       range=_bounded_range, feeling=feeling,
                       region=region, seconds_spoken=seconds_spoken, for_posture=for_posture,
                       vary=pass_context(vary))
    return env


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cap(which: int, value: int) -> None:
    hard = resource.getrlimit(which)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value))


def _out_of_cpu(_signum: int, _frame: Any) -> None:
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
    raise RunawayError(f"it ran for more than {RENDER_SECONDS:g} seconds")


@contextlib.contextmanager
def _cpu_limit() -> Iterator[None]:
    """The kernel signals the worker once this render has used its CPU time."""
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = math.ceil(_cpu_used()) + math.ceil(RENDER_SECONDS)
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


def serve(fd: int) -> None:
    """The worker's loop: limit this process, then answer render requests from the
    socket ``fd`` until the parent hangs up or a limit is hit."""
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    _cap(resource.RLIMIT_AS, MEMORY_BYTES)
    retire_at = _cpu_used() + WORKER_CPU_SECONDS - RENDER_SECONDS - 2
    _cap(resource.RLIMIT_CPU, math.ceil(_cpu_used()) + WORKER_CPU_SECONDS)
    signal.signal(signal.SIGXCPU, _out_of_cpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _cap(resource.RLIMIT_FSIZE, 0)
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        reply = _answer(*request)
        reply["peak_kb"] = _peak_kb()
        reply["retiring"] = bool(reply.pop("limit", False)) or _cpu_used() > retire_at
        conn.send_bytes(json.dumps(reply).encode())
        if reply["retiring"]:
            return


def _peak_kb() -> int:
    """This process's peak resident memory, in KiB (``ru_maxrss`` would count the parent's
    too: Linux carries it across the exec that started this process)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else 0


def _answer(op: str, folders: list[str], name: str, context: dict[str, Any],
            main: str) -> dict[str, Any]:
    """Render (or only compile) one template; every failure becomes a message."""
    from jinja2 import TemplateError as JinjaError
    from jinja2 import TemplateNotFound, TemplateSyntaxError

    global _spent
    _spent = _Spent()
    compiled = False
    try:
        with _cpu_limit():
            template = environment(tuple(Path(f) for f in folders)).get_template(name)
            compiled = True
            if op == "compile":
                return {"status": "ok"}
            chunks = []
            for chunk in template.generate(**context):
                _spent.produced(len(chunk))
                chunks.append(chunk)
            text = "".join(chunks)
        return {"status": "ok", "text": text, "reads": sorted(_spent.reads)}
    except TemplateSyntaxError as exc:
        return _failed(f"{exc.filename or main} line {exc.lineno}: {exc.message}")
    except FileRefusedError as exc:
        return _failed(f"{main}{_line(exc, main)}: {exc}.")
    except (RunawayError, MemoryError, RecursionError) as exc:
        why = (str(exc) if isinstance(exc, RunawayError)
               else f"it used more than {MEMORY_BYTES >> 20} MB of memory"
               if isinstance(exc, MemoryError) else "it called itself without end"
               if compiled else "it is nested too deeply to compile")
        return _failed(f"{main}{_line(exc, main)}: the template was stopped: {why}. {ADVICE}",
                       limit=True)
    except SyntaxError as exc:  # Python's own limits on the compiled template
        return _failed(f"{main}: the template is nested too deeply to run ({exc.msg}); use "
                       "fewer blocks inside one another.")
    except TemplateNotFound as exc:
        return _failed(f"{main}{_line(exc, main)}: there is no template {exc.name!r} to "
                       "include, import or extend; templates can use only other templates "
                       "in their own folder and the shipped partials.")
    except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return _failed(f"{main}{_line(exc, main)}: {message}")
    except Exception as exc:  # anything else a template provokes is still its problem
        return _failed(f"{main}{_line(exc, main)}: {type(exc).__name__}: {exc}", limit=True)


def _failed(message: str, limit: bool = False) -> dict[str, Any]:
    return {"status": "error", "message": message, "limit": limit}


def _line(exc: BaseException, main: str) -> str:
    """`` line N`` of the template ``main`` where ``exc`` arose, when the traceback shows it."""
    tb = exc.__traceback__
    line = None
    name = Path(main).name
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(name):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" line {line}" if line else ""
