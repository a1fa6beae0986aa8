"""What every command shares: click settings, -v, progress on stderr, and printing
text that may quote a template or a user's file safely."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _set_verbosity(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if value:
        level = logging.DEBUG if value > 1 else logging.INFO
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr, force=True)
    return value


verbose_option = click.option(
    "-v", "--verbose", count=True, expose_value=False, is_eager=True, callback=_set_verbosity,
    help="Say what is happening on stderr (-vv for more).",
)


def stage_text(stage: str, done: int, total: int) -> str:
    """What a build doing ``stage`` (``done`` of ``total``) shows a listener."""
    if stage == "speak" and not total:
        stage = "plan"
    return {"plan": "planning", "speak": f"speaking {done}/{total} phrases",
            "voice": f"measuring the voice's pace ({done}/{total} lines)",
            "mix": "mixing", "master": "mastering",
            "encode": f"encoding MP3 {100 * done // total}%" if total > 1 else "encoding MP3",
            }.get(stage, stage)


def stages(active: Mapping[Any, tuple[str, int, int]]) -> list[str]:
    """The stages of the sessions being built (or planned) now, one per worker."""
    return [stage_text(*active[key]) for key in sorted(active)]


class Reporter:
    """Progress on stderr: one line that rewrites itself on a terminal, nothing otherwise."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.live:
            return
        click.echo(f"\r\033[K{stage_text(stage, done, total)}", nl=False, err=True)

    def say(self, text: str) -> None:
        """Draw ``text`` as the progress line (what a command does before its stages)."""
        if self.live:
            click.echo(f"\r\033[K{text}", nl=False, err=True)

    def close(self) -> None:
        if self.live:
            click.echo("\r\033[K", nl=False, err=True)


# Control characters (terminal escapes among them), bidi overrides, and lone surrogates
# (undecodable bytes from the command line), none of which a template may print.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` as it is safe to print: tabs as spaces, control characters removed,
    undecodable bytes shown as U+FFFD, so that no template can drive the terminal."""
    return _SURROGATE.sub("\ufffd", _UNPRINTABLE.sub("", text.replace("\t", " ")))


def echo(text: str) -> None:
    click.echo(printable(text))


def printable_error(exc: click.ClickException) -> None:
    # click declares the message Final, but it is only read when the error is shown, after
    # this; cleaning it here keeps click's own display, exit code and testing behaviour.
    exc.message = printable(exc.message)  # type: ignore[misc]
