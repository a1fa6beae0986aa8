"""``audioguide batch``: the command, and its progress on stderr."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from audioguide.console import CONTEXT, Reporter, echo, stages, verbose_option
from audioguide.params import BASE_URL, FILE, FOLDER, TEXT

if TYPE_CHECKING:
    from audioguide.batch.tasks import BatchStatus


@click.command(context_settings=CONTEXT)
@click.argument("roster", type=FILE)
@click.option("--out", type=FOLDER, default=Path("output"),
              show_default=True, help="Where each listener's folder is made (OUT/<id>/<week>).")
@click.option("--start", type=TEXT, help="First day of every listener's week, YYYY-MM-DD "
              "(default: the roster's start, else the coming Monday).")
@click.option("--base-url", type=BASE_URL, default="http://127.0.0.1:8000/", show_default=True,
              help="Where OUT will be served, for the feeds' absolute links.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64),
              help="Sessions built at once on this machine (default: one per core).")
@click.option("--scheduler", type=TEXT, metavar="ADDRESS",
              help="A running Dask scheduler (tcp://HOST:PORT): one task per session on its "
              "workers, which need audioguide installed (pip install 'audioguide[dask]').")
@click.option("--collect", is_flag=True,
              help="With --scheduler, when OUT is not storage the workers share: they send "
              "the finished files back, and this machine publishes them.")
@click.option("--week-number", type=int, metavar="N",
              help="Every listener's week of the programme, 1 up (default: the roster's or "
              "the plan's number, else 1).")
@click.option("--log", "log_dir", type=FOLDER, metavar="DIR",
              help="The folder of the listeners' practice logs, DIR/<id>.sqlite, as 'serve "
              "--allow-writes' keeps them (default: listeners/ in your data folder).")
@click.option("--as-written", is_flag=True,
              help="Follow the programme as written, whatever the listeners' logs say.")
@verbose_option
def batch(roster: Path, out: Path, start: str | None, base_url: str, jobs: int | None,
          scheduler: str | None, collect: bool, week_number: int | None,
          log_dir: Path | None, as_written: bool) -> None:
    """Build a personalised week for every listener of a ROSTER, here or on a Dask cluster.

    Prints a table of what was built, up to date or failed (and why); writes
    OUT/batch.json. Running it again builds only what is missing or changed. Each
    listener's practice log shapes their week, as it does for 'audioguide week'.
    """
    reporter = _BatchReporter()
    reporter.say("batch: reading the roster and the practice logs")  # before the imports
    # SIGTERM (kill, a service manager) stops the batch as Ctrl-C does: its workers are
    # stopped and its staging swept, rather than left building with no one to report to.
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        import audioguide.batch.roster
        from audioguide.batch.roster import RECORD
        from audioguide.batch.run import run_batch, summary_table
        from audioguide.errors import BatchError, RequestError
        from audioguide.week import planfile

        if jobs and scheduler:
            raise RequestError("--jobs", "sets how many sessions this machine builds at "
                               "once; with --scheduler the cluster's workers decide. Leave "
                               "one out.")
        first = planfile.parse_start(start) if start else None
        if week_number is not None:
            planfile.check_week_number(week_number)
        target = out.absolute()
        loaded = audioguide.batch.roster.with_logs(
            audioguide.batch.roster.load(roster, target, first, week_number), log_dir,
            as_written)
        report = run_batch(loaded, target, base_url, jobs, scheduler, collect, reporter)
    finally:
        signal.signal(signal.SIGTERM, previous)
        reporter.close()
    for line in summary_table(report):
        echo(line)
    echo(str(target / RECORD))
    if report.failed:
        raise BatchError(f"{len(report.failed)} of {len(report.listeners)} listeners' weeks "
                         "are not complete; the table says why. Fix what it names (a session too "
                         "short for its script needs more minutes in its plan, or a slower "
                         "pace fewer), then run the same command again: it builds only what "
                         "is missing.")


def terminated(signum: int, _frame: object) -> None:
    """A SIGTERM handler: stop as Ctrl-C does, with the exit status a killed process has."""
    raise SystemExit(128 + signum)


class _BatchReporter(Reporter):
    """Sessions done of all, throughput and ETA; on a terminal one line that rewrites itself,
    elsewhere (a log) a line every half minute."""

    EVERY_S = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.last = 0.0

    def __call__(self, status: BatchStatus) -> None:  # type: ignore[override]
        parts = [f"batch: {status.done}/{status.total} sessions",
                 f"{status.listeners_done}/{status.listeners} listeners"]
        if status.skipped:
            parts.append(f"{status.skipped} up to date")
        if status.failed:
            parts.append(f"{status.failed} failed")
        if status.stage:
            parts.append(status.stage)
        parts += stages(status.active)
        rate, eta = status.per_minute(), status.eta_s()
        if rate is not None:
            parts.append(f"{rate:.1f} sessions/min")
        if eta is not None and status.done < status.total:
            parts.append(f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
        if self.live:
            click.echo("\r\033[K" + " · ".join(parts), nl=False, err=True)
        elif time.monotonic() - self.last >= self.EVERY_S or status.done == status.total:
            self.last = time.monotonic()
            click.echo(" · ".join(parts), err=True)
