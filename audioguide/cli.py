"""The command line: parse options, call one core function, print the result.

Progress and log messages go to stderr; stdout carries only results (for
``build``, the MP3's path as the last line), so scripts can rely on it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from audioguide import __version__
from audioguide.batch.command import batch, terminated
from audioguide.companion.log_cli import log
from audioguide.console import (
    CONTEXT,
    Reporter,
    echo,
    printable_error,
    stages,
    verbose_option,
)
from audioguide.params import BASE_URL, EXISTING_FOLDER, FILE, FOLDER, TEXT, GivenPath, SchemaType
from audioguide.voices_cli import voices

if TYPE_CHECKING:
    from audioguide.options import Option
    from audioguide.request import Request
    from audioguide.week.build import WeekStatus

F = TypeVar("F", bound=Callable[..., Any])


def _session_options(output: bool) -> Callable[[F], F]:
    """KIND, the template choices, and every option of the schema as a click option.

    Options default to None, so that defaults live in the schema alone; ``output``
    adds the options that change only the file (``build``), not the script.
    """
    from audioguide.options import OPTIONS, Choice, Flag, Number

    def click_option(option: Option) -> Callable[[F], F]:
        if isinstance(option.value, Flag):
            return click.option(option.flag, option.field, is_flag=True, default=None,
                                help=option.help)
        kind: Any = str
        if isinstance(option.value, Number | Choice):
            kind = SchemaType(option)
        names = [option.flag, "-m"] if option.field == "minutes" else [option.flag]
        shown = "" if option.default in (None, ()) else f" [default: {option.default}]"
        return click.option(*names, option.field, type=kind, default=None,
                            required=option.field == "minutes", help=option.help + shown)

    def decorate(func: F) -> F:
        chosen = [o for o in OPTIONS if output or not o.output]
        decorators = [
            click.argument("kind", required=False),
            click.option("--template", type=FILE,
                         help="A template file to use in place of KIND."),
            click.option("--templates", type=EXISTING_FOLDER,
                         help="A folder of your own templates, searched before the shipped "
                         "ones."),
            *(click_option(o) for o in chosen),
            click.option("--no-cache", is_flag=True, help="Render every phrase afresh."),
            verbose_option,
        ]
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return decorate


def _request(kind: str | None, template: Path | None, templates: Path | None,
             no_cache: bool, out: Path | None = None, **given: object) -> Request:
    """The request the command line describes: only the options given override the
    schema's defaults."""
    from audioguide.options import split_words
    from audioguide.request import Pace, Request

    if (kind is None) == (template is None):
        raise click.UsageError("give a session KIND (see 'audioguide kinds') or --template FILE, "
                               "but not both.")
    if given.get("minutes") is None:  # click does not enforce it when the default is None
        raise click.UsageError("--minutes is needed: the session's exact length in minutes, "
                               "e.g. --minutes 10 (decimals allowed; from the kind's minimum, "
                               "which 'audioguide kinds' lists, to 90).")
    fields: dict[str, Any] = {}
    for field, value in given.items():
        if value is None:
            continue
        if field in ("focus", "feelings"):
            value = split_words(str(value))
        elif field == "pace" and value in {p.value for p in Pace}:
            value = Pace(value)  # any other is refused with the request's other problems
        fields[field] = value
    return Request(kind=kind or (template.stem if template else ""),
                   templates_dir=templates, template_file=template, use_cache=not no_cache,
                   out_dir=out or Path("output"), **fields)


class _Cli(click.Group):
    """The command group; error messages, which may quote a template, are made printable."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:
            printable_error(exc)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            printable_error(exc)
            raise


@click.group(cls=_Cli, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="audioguide")
@verbose_option
def cli() -> None:
    """Generate voice-guided practice sessions as MP3s of exactly the length you choose."""


@cli.command(context_settings=CONTEXT)
@_session_options(output=True)
@click.option("--out", type=FOLDER,
              help="Output folder (default: ./output).")
def build(**kw: Any) -> None:
    """Build one session of KIND and print the MP3's path."""
    from audioguide.script import sandbox

    sandbox.warm_up()
    from audioguide import builder

    reporter = Reporter()
    try:
        path = builder.build(_request(**kw), reporter)
    finally:
        reporter.close()
    echo(str(path))


@cli.command(context_settings=CONTEXT)
@_session_options(output=False)
def preview(**kw: Any) -> None:
    """Print the script of a KIND session as it will be spoken, with start times; no audio."""
    from audioguide.script import sandbox

    sandbox.warm_up()
    from audioguide.planning import plan

    reporter = Reporter()
    try:
        p = plan(_request(**kw), reporter)
    finally:
        reporter.close()
    _print_preview(p)


def _print_preview(p: Any) -> None:
    from audioguide.week.preview import session_lines

    for line in session_lines(p):
        echo(line)


@cli.command(context_settings=CONTEXT)
@click.option("--templates", "folder", type=EXISTING_FOLDER,
              help="A folder of your own templates, searched before the shipped ones.")
@verbose_option
def kinds(folder: Path | None) -> None:
    """List the session kinds with their shortest length, and where each comes from."""
    from audioguide.script import templates

    found = templates.kinds(folder)
    unusable = templates.broken(folder)
    width = max(len(k) for k in [*found, *unusable])
    for kind in found.values():
        origin = "" if kind.source == "shipped" else (
            f"  [yours, in place of the shipped one: {kind.path}]" if kind.shadows
            else f"  [yours: {kind.path}]")
        echo(f"{kind.name:<{width}}  from {kind.min_minutes:g} min  "
              f"{kind.description}{origin}")
    for bad in unusable.values():
        echo(f"{bad.name:<{width}}  broken: {bad.problem}")


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True,
                type=FILE)
@verbose_option
def check(files: tuple[Path, ...]) -> None:
    """Check template FILES without making audio; report every problem at once."""
    from audioguide.script.checks import check_template

    failed = 0
    for path in files:
        report = check_template(path)
        for line in report.lines():
            echo(line)
        failed += not report.ok
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} templates have problems.")


@cli.command(context_settings=CONTEXT)
@click.argument("plan", required=False, type=FILE)
@click.option("--start", type=TEXT,
              help="First day of the week, YYYY-MM-DD (default: the coming Monday).")
@click.option("--out", type=FOLDER, default=Path("output"),
              show_default=True, help="Where the week's folder is made.")
@click.option("--base-url", type=BASE_URL, default="http://127.0.0.1:8000/", show_default=True,
              help="Where the folder will be served, for the feed's absolute links.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64),
              help="Sessions built at once (default: one per core).")
@click.option("--week-number", type=int, metavar="N",
              help="The week's place in the programme of weeks, 1 up (default: the plan's "
                   "[week] number, else 1). Without PLAN, the programme's own week N.")
@click.option("--preview", is_flag=True,
              help="Print every session's script with start times, in order; no audio.")
@click.option("--log", "log_path", type=FILE, metavar="PATH",
              help="The practice log to read (default: practice.sqlite in your data folder).")
@click.option("--as-written", is_flag=True,
              help="Follow the programme as written, whatever the log of the week before says.")
@click.option("--review", is_flag=True,
              help="Make only the week's review again, from what its log holds now.")
@verbose_option
def week(plan: Path | None, start: str | None, out: Path, base_url: str, jobs: int | None,
         week_number: int | None, preview: bool, log_path: Path | None, as_written: bool,
         review: bool) -> None:
    """Build a week of sessions, a playlist, a podcast feed and a page; print the folder.

    The practice log shapes it: the week before's (a session that was too much steps
    back) and its own (the review speaks it)."""
    reporter = _WeekReporter()
    reporter.say("week: reading the plan and the practice log")  # before the slow imports
    # SIGTERM (kill, a service manager) stops the week as Ctrl-C does: its workers are
    # stopped and its staging swept, rather than left building with no one to report to.
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        from audioguide.companion.adapt import as_built, with_log
        from audioguide.week import planfile
        from audioguide.week.build import build_week

        first = planfile.coming_monday() if start is None else planfile.parse_start(start)
        if week_number is not None:
            planfile.check_week_number(week_number)
        week_plan = planfile.load(plan, first, out, week_number)
        # --review: the week as it was built; only what its own log says is new.
        week_plan = with_log(as_built(week_plan, out) if review else week_plan, log_path,
                             out, as_written or review)
        if preview:
            reporter.close()
            return _preview_week(week_plan)
        folder = build_week(week_plan, out, base_url, jobs, reporter, only_review=review)
    finally:
        signal.signal(signal.SIGTERM, previous)
        reporter.close()
    echo(str(folder))


def _preview_week(week_plan: Any) -> None:
    from audioguide.week.preview import week_lines

    reporter = Reporter()
    try:
        lines = week_lines(week_plan, reporter)
    finally:
        reporter.close()
    for line in lines:
        echo(line)


class _WeekReporter(Reporter):
    """Overall progress with an ETA, and what each session being built is doing."""

    def __call__(self, status: WeekStatus) -> None:  # type: ignore[override]
        if not self.live:
            return
        eta = status.eta_s()
        parts = [f"week: {status.done}/{status.total} sessions"]
        if status.skipped:
            parts.append(f"{status.skipped} up to date")
        if status.stage:
            parts.append(status.stage)
        parts += stages(status.active)
        if eta is not None:
            parts.append(f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
        click.echo("\r\033[K" + " · ".join(parts), nl=False, err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("folder", type=FOLDER)
@click.option("--host", type=TEXT, default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes it reachable from a phone.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--allow-writes", is_flag=True,
              help="Let the page keep a practice log, for whoever opens the address printed "
                   "with its key.")
@click.option("--log", "log_path", type=GivenPath(), metavar="PATH",
              help="The practice log's file (default: practice.sqlite in your data folder); "
                   "for a batch, the folder of each listener's log.")
@click.option("--new-key", is_flag=True,
              help="Make a new key, so a phone that had the old one can no longer write.")
@verbose_option
def serve(folder: Path, host: str, port: int, allow_writes: bool, log_path: Path | None,
          new_key: bool) -> None:
    """Serve a week FOLDER, or a batch's folder (each listener's weeks under their own path),
    over HTTP (Ctrl-C stops); read-only unless --allow-writes."""
    import audioguide.week.serve

    server = audioguide.week.serve
    if (log_path or new_key) and not allow_writes:
        raise click.UsageError("--log and --new-key go with --allow-writes.")
    writes = server.companions_for(folder, log_path, new_key) if allow_writes else None

    def ready(url: str, beyond: bool, pages: dict[str, str]) -> None:
        click.echo(f"Serving {folder} at {url} (Ctrl-C to stop)")
        if list(pages) == [""]:
            click.echo(f"Feed: {url}feed.xml  Page: {pages['']}")
        else:  # a batch: each listener's page (and feed beside it), with their own key
            for name, page in pages.items():
                click.echo(f"{name}: {page}")
        if writes:
            where = {c.log_path.parent for c in writes.values()}
            click.echo(f"Practice log{'s' * (len(writes) > 1)} in {', '.join(map(str, where))} "
                       "(a page writes only with the key in its address)")
        if beyond and len(pages) == 1:  # kept in colour through a pipe, or it cannot scan
            click.echo(server.qr_text(next(iter(pages.values()))), color=True)

    server.serve(folder, host, port, ready, writes)


cli.add_command(batch)
cli.add_command(voices)
cli.add_command(log)


@cli.group(context_settings=CONTEXT)
def cache() -> None:
    """The speech cache: every phrase rendered once, reused by later builds."""


@cache.command(context_settings=CONTEXT)
@verbose_option
def info() -> None:
    """Where the cache is, how many entries (phrases and their decoded copies) it holds
    and how big it is."""
    from audioguide.tts.cache import SpeechCache, default_cache_dir

    folder = default_cache_dir()
    entries = SpeechCache(folder).entries()
    size = sum(p.stat().st_size for p in entries)
    click.echo(f"location: {folder}")
    click.echo(f"entries:  {len(entries)}")
    click.echo(f"size:     {size / 1e6:.1f} MB")


@cache.command(context_settings=CONTEXT)
@verbose_option
def clear() -> None:
    """Delete every cached phrase and decoded copy."""
    from audioguide.tts.cache import SpeechCache, default_cache_dir

    folder = default_cache_dir()
    removed, size = SpeechCache(folder).clear()
    click.echo(f"removed {removed} entries ({size / 1e6:.1f} MB) from {folder}")


def main() -> None:
    """Console-script entry point."""
    import sys

    try:
        cli(prog_name="audioguide")
    except OSError as exc:  # the result could not be written (stdout on a full device)
        with contextlib.suppress(OSError):
            sys.stderr.write(f"Error: could not write the output: {exc.strerror or exc}.\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
