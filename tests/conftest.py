"""Shared fixtures: an isolated speech cache, and measurements made from outside.

Every measurement decodes or probes the finished file with ffmpeg/ffprobe;
none trusts the code that wrote it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from click.testing import CliRunner, Result

SAMPLE_RATE = 44_100


#: Modules left out by ``scripts/test --quick``: each of their tests builds weeks or
#: batches, drives Chromium, a Dask cluster or a natural voice, or grids over every kind.
HEAVY_MODULES = {
    "test_batch.py", "test_batch_serve.py", "test_scheduler_peers.py", "test_companion.py",
    "test_phone_ready.py", "test_programme.py", "test_lengths.py", "test_library.py",
    "test_pace.py", "test_loudness.py", "test_progress.py", "test_packaging.py",
    "test_kokoro_engine.py", "test_piper_engine.py", "test_hibari_engine.py",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--quick", action="store_true",
                     help="Only the fast tests: none marked slow, none of HEAVY_MODULES.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--quick"):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        heavy = item.path.name in HEAVY_MODULES or item.get_closest_marker("slow")
        (drop if heavy else keep).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture(autouse=True, scope="session")
def _speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One speech cache, one voices folder and one practice log (``AUDIOGUIDE_LOG``) for the
    whole run, never the user's own; and espeak-ng (pyttsx3) as the engine ``--engine auto``
    stands for, since the test environment has Piper and Kokoro installed too. Tests of the
    natural voices name their engine; tests of ``auto`` itself (tests/tts/test_auto_engine.py)
    unset this."""
    mp = pytest.MonkeyPatch()
    shared = _shared_folder(tmp_path_factory)
    mp.setenv("AUDIOGUIDE_CACHE", str(shared("speech-cache")))
    mp.setenv("AUDIOGUIDE_VOICES", str(shared("voices")))
    mp.setenv("AUDIOGUIDE_LOG", str(tmp_path_factory.mktemp("practice-log") / "practice.sqlite"))
    mp.setenv("AUDIOGUIDE_ENGINE", "pyttsx3")
    yield
    mp.undo()


def _shared_folder(factory: pytest.TempPathFactory) -> Any:
    """A folder of this run: under pytest-xdist, one that every worker of the run shares
    (the run's base folder holds each worker's own), so the speech is spoken and each
    voice calibrated once per run, not once per worker. The cache is made for processes
    that write it at once (a week's and a batch's workers do)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")

    def folder(name: str) -> Path:
        if worker is None:
            return factory.mktemp(name)
        path = factory.getbasetemp().parent / name
        path.mkdir(exist_ok=True)
        return path

    return folder


@pytest.fixture(scope="session")
def english_kokoro() -> Path:
    """Kokoro's English voices (af_heart, bf_emma, ...) in the run's voices folder: the
    voices file ``scripts/setup --dev`` converts from npm's kokoro-js into the user's voices
    folder, linked in (nothing is downloaded at test time)."""
    import platformdirs

    from audioguide.tts import kokoro_js
    from audioguide.tts.kokoro_files import kokoro_dir

    installed = (Path(platformdirs.user_data_dir("audioguide")) / "voices" / "kokoro"
                 / kokoro_js.VOICES_FILE)
    assert installed.is_file(), (f"Kokoro's English voices are not installed ({installed}); "
                                 "run scripts/setup --dev, which installs them from npm")
    target = kokoro_dir() / kokoro_js.VOICES_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another worker of the run linked it
        target.symlink_to(installed)
    return target


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty speech cache of this test's own, for tests whose meaning is cold speech."""
    folder = tmp_path / "speech-cache"
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(folder))
    return folder


def interruptible() -> None:
    """For ``preexec_fn``: a child that is sent SIGINT gets it as Ctrl-C, even when this run
    was started where SIGINT is ignored (in the background, or from a script's ``&``), which
    a child would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def chromium() -> Any:
    """Playwright, to drive Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def launch(pw: Any, *args: str) -> Any:
    """Debian's headless Chromium, quiet: no sandbox (root in CI), no GPU, no updates;
    ``args`` are more of its flags."""
    return pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", *args])


def run(*args: str) -> Result:
    """``audioguide ARGS`` through click's runner."""
    from audioguide.cli import cli

    return CliRunner().invoke(cli, list(args))


def built_path(result: Result) -> Path:
    """The MP3 (or folder) a successful ``build``/``week`` printed as its last stdout line."""
    if result.exit_code != 0 and result.exc_info is not None and not isinstance(
            result.exception, SystemExit):
        import traceback

        raise AssertionError(result.output + "".join(
            traceback.format_exception(*result.exc_info)))
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def assert_refused(result: Result, *words: str, out: Path | None = None) -> None:
    """A clean refusal: non-zero exit, no traceback, every word in the message, and
    nothing left in ``out``."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for word in words:
        assert word in result.output, result.output
    if out is not None and out.exists():
        assert list(out.iterdir()) == []


def decode(path: Path) -> npt.NDArray[np.float32]:
    """Decode an audio file with ffmpeg to mono float32 at 44.1 kHz."""
    raw = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path),
         "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f4")


def loudness(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of the decoded file, by ffmpeg's ebur128."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path),
         "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    ).stderr
    summary = err[err.rfind("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, err[-500:]
    return float(integrated[1]), float(peak[1])


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON view of the file: format, streams, chapters."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         "-show_chapters", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def silences(path: Path, noise_db: float = -50, min_s: float = 0.3) -> list[tuple[float, float]]:
    """(start, end) of every silence ffmpeg's silencedetect finds."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path),
         "-af", f"silencedetect=noise={noise_db}dB:d={min_s}", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    ).stderr
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", err)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", err)]
    if len(ends) < len(starts):
        ends.append(float("inf"))
    return list(zip(starts, ends, strict=True))


def two_minute_session(engine: str, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build a 2-minute check-in with ``engine``; check it is exactly 2 minutes at the
    loudness target and under the true-peak ceiling; return its tags and its recipe."""
    import json

    path = built_path(run("build", "check-in", "--minutes", "2", "--engine", engine, "--out",
                          str(out)))
    assert abs(decode(path).size - 2 * 60 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE
    integrated, true_peak = loudness(path)
    assert abs(integrated + 19) <= 1.0 and true_peak <= -1.5
    tags: dict[str, Any] = probe(path)["format"]["tags"]
    return tags, json.loads(tags["audioguide-recipe"])
