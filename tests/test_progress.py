"""Progress as a listener sees it on a terminal: the week and the batch say what they are
doing from their first seconds, and keep saying it while they plan, before any session
is built. Run on a real pseudo-terminal, with an empty speech cache, so the planning is
the real, slow one (every phrase spoken)."""

from __future__ import annotations

import itertools
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import interruptible

#: The first progress line appears within this many seconds of the start.
FIRST_S = 2.0
#: While the command plans, its line changes at least this often.
EVERY_S = 5.0


def watch(args: list[str], env: dict[str, str], until: str,
          limit_s: float = 240) -> list[tuple[float, str]]:
    """Run ``audioguide ARGS`` with stderr on a pseudo-terminal; return (seconds since the
    start, text) of every progress line it draws, up to the first that contains ``until``
    (the command is then stopped) or its end."""
    master, slave = pty.openpty()
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("audioguide")), *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=slave, env=env, start_new_session=True,
        preexec_fn=interruptible)
    os.close(slave)
    lines: list[tuple[float, str]] = []
    pending = b""
    try:
        while time.monotonic() - started < limit_s:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the command ended and closed the terminal
                break
            pending += chunk
            *drawn, pending = pending.split(b"\r")
            now = time.monotonic() - started
            # What follows the last carriage return is on the screen already (the next
            # one begins the next line).
            for raw in [*drawn, pending]:
                text = raw.decode(errors="replace").replace("\x1b[K", "").strip()
                if text and (not lines or lines[-1][1] != text):
                    lines.append((now, text))
            if lines and until in lines[-1][1]:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        os.close(master)
    return lines


def check_lively(lines: list[tuple[float, str]], until: str) -> None:
    assert lines, "nothing was drawn"
    assert lines[0][0] <= FIRST_S, f"the first line came after {lines[0][0]:.1f} s: {lines[0]}"
    reached = next((i for i, (_, text) in enumerate(lines) if until in text), None)
    assert reached is not None, f"never reached {until!r}: {lines[-5:]}"
    for (before, text), (after, _) in itertools.pairwise(lines[:reached + 1]):
        assert after - before <= EVERY_S, f"{text!r} stood for {after - before:.1f} s"


def env_for(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AUDIOGUIDE_CACHE": str(tmp_path / "cold-cache"),
            "COLUMNS": "200"}


@pytest.mark.slow
def test_a_week_shows_progress_from_its_first_seconds_and_while_it_plans(
        tmp_path: Path) -> None:
    """The default week (17 sessions), from an empty cache: a line within 2 s, saying
    what it checks and plans ("planning 5/17", each worker's "speaking 40/212 phrases"),
    changing at least every 5 s until its first session is built."""
    lines = watch(["week", "--start", "2026-11-23", "--out", str(tmp_path / "out")],
                  env_for(tmp_path), until="week: 1/17")
    check_lively(lines, "week: 1/17")
    said = " | ".join(text for _, text in lines)
    assert "planning 0/17" in said and "planning 17/17" in said, said
    assert "speaking" in said and "phrases" in said, said
    assert "ETA" in said, said  # once building, an estimate of the time left


@pytest.mark.slow
def test_a_batch_shows_progress_from_its_first_seconds_and_while_it_builds(
        tmp_path: Path) -> None:
    """Two listeners' default weeks, from an empty cache: a line within 2 s, and each
    worker's stage (speaking, mixing, encoding) changing at least every 5 s until the
    first session is built."""
    roster = tmp_path / "roster.toml"
    roster.write_text('[batch]\nstart = 2026-11-23\n\n[[listener]]\nid = "ana"\n\n'
                      '[[listener]]\nid = "ben"\n')
    lines = watch(["batch", str(roster), "--out", str(tmp_path / "out")],
                  env_for(tmp_path), until="batch: 1/34")
    check_lively(lines, "batch: 1/34")
    said = " | ".join(text for _, text in lines)
    assert "speaking" in said and "encoding MP3" in said, said
