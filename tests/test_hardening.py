"""Concurrent runs, planted links, killed builds, full disks, a cache that is not ours,
errors that cross process boundaries, loudness that misses: each as a hostile user or a
bad day would cause it, checked from outside."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import fcntl
import multiprocessing as mp
import os
import pickle
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audioguide import publish, tags
from audioguide.errors import AudioguideError, ToolMissingError, TooShortError, named
from audioguide.request import Request
from audioguide.tts.cache import SpeechCache
from audioguide.tts.pyttsx3_engine import scratch_root
from audioguide.week.build import up_to_date
from tests.conftest import SAMPLE_RATE, assert_refused, built_path, decode, run

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MINUTES = 5


def cli(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """``audioguide ARGS`` as its own process, as a user would start it."""
    return subprocess.Popen([sys.executable, "-m", "audioguide.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_two_builds_into_one_folder_both_publish_whole_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = [cli("build", "breath", "--minutes", str(MINUTES), "--out", str(out))
            for _ in range(2)]
    results = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], results
    mp3 = out / f"breath-{MINUTES}min.mp3"
    assert decode(mp3).size == MINUTES * 60 * SAMPLE_RATE
    assert tags.audio_intact(mp3)
    assert leftovers(out) == []


def test_a_damaged_file_is_not_up_to_date(tmp_path: Path) -> None:
    request = Request("breath", MINUTES, out_dir=tmp_path)
    result = run("build", "breath", "--minutes", str(MINUTES), "--out", str(tmp_path))
    mp3 = built_path(result)
    assert up_to_date(request)
    data = mp3.read_bytes()
    mp3.write_bytes(data[: len(data) // 2])  # the tag and its recipe survive, half the audio
    assert tags.read_recipe(mp3)
    assert not up_to_date(request)
    mp3.write_bytes(data[: len(data) - len(data) // 3 * 2] + bytes(len(data) // 3 * 2))
    assert not up_to_date(request)
    # Cut short and tagged afterwards, as a full disk once let a build do: the digest in
    # its tag is the short file's own, and the file is still not up to date.
    from mutagen.id3 import ID3, TXXX

    for keep in (0.5, 0.99):
        mp3.write_bytes(data[: int(len(data) * keep)])
        tag = ID3(str(mp3))  # type: ignore[no-untyped-call]
        tag.add(TXXX(encoding=3, desc=tags.AUDIO_KEY, text=[tags.audio_digest(mp3)]))  # type: ignore[no-untyped-call]
        tag.save(str(mp3))
        assert tags.audio_intact(mp3) and not up_to_date(request)


def test_an_mp3_that_cannot_be_written_whole_is_never_taken_for_the_measured_one(
        tmp_path: Path) -> None:
    """ffmpeg's tee muxer goes on encoding to the measuring pipe when the file's writes
    fail, and exits 0; the file on disk is checked against what was measured."""
    from audioguide.audio.ffmpeg import encode_mp3

    audio = (0.1 * np.sin(np.arange(SAMPLE_RATE * 20) / 20)).astype(np.float32)
    whole = tmp_path / "whole.mp3"
    loudness = encode_mp3(audio, SAMPLE_RATE, whole, 64)
    assert -70 < loudness.integrated_lufs < -10
    broken = tmp_path / "broken.mp3"
    broken.symlink_to("/dev/full")  # every write fails with "no space left"
    with pytest.raises(AudioguideError, match="not the audio that was encoded"):
        encode_mp3(audio[: SAMPLE_RATE * 10], SAMPLE_RATE, broken, 64)


@contextlib.contextmanager
def _small_disk(folder: Path, megabytes: float) -> Iterator[Path]:
    """A real file system of ``megabytes`` at ``folder`` while the block runs (tmpfs; the
    suite runs as root, as its setup installs system packages)."""
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(megabytes * 1024)}k", "tmpfs",
                    str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _plan_of(folder: Path, kind: str, minutes: int, days: int = 2) -> Path:
    """A plan of one ``kind`` session of ``minutes`` on each of the first ``days`` days."""
    plan = folder / "plan.toml"
    plan.write_text("".join(f"[[session]]\nday = {d}\nkind = '{kind}'\nminutes = {minutes}\n"
                            for d in range(1, days + 1)))
    return plan


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_week_on_a_disk_that_fills_publishes_nothing_short(tmp_path: Path,
                                                             jobs: str) -> None:
    """Two 12-minute sessions (5.8 MB each) on a 9 MB disk: at most one fits. Whatever is
    published is whole, the error names a session that failed, and once space is freed the
    next run builds the rest, every file whole."""
    disk = tmp_path / "disk"
    with _small_disk(disk, 9):
        plan = _plan_of(tmp_path, "breath", 12)
        args = ("week", str(plan), "--start", "2026-11-23", "--out", str(disk), "-j", jobs)
        result = run(*args)
        assert_refused(result, "may be full")
        folder = disk / "2026-W48"
        named = re.findall(r"(\d-\w+-\d-breath-12min\.mp3)", result.output)
        assert named and not (folder / named[0]).exists(), result.output
        for mp3 in folder.glob("*.mp3"):
            assert decode(mp3).size == 12 * 60 * SAMPLE_RATE
        assert not (folder / "playlist.m3u8").exists()
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        folder_path = built_path(run(*args))
        mp3s = sorted(folder_path.glob("*.mp3"))
        assert len(mp3s) == 2
        for mp3 in mp3s:
            assert decode(mp3).size == 12 * 60 * SAMPLE_RATE


def test_links_planted_at_temporary_names_are_never_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    # The names older versions used, and the prefix of today's staging folders.
    for name in (f".breath-{MINUTES}min.mp3.partial", f".breath-{MINUTES}min.png.partial",
                 ".audioguide-planted"):
        (out / name).symlink_to(victim if "partial" in name else tmp_path)
    result = run("build", "breath", "--minutes", str(MINUTES), "--out", str(out))
    mp3 = built_path(result)
    assert victim.read_text() == "precious" and tmp_path.is_dir()
    assert not mp3.is_symlink() and decode(mp3).size == MINUTES * 60 * SAMPLE_RATE
    assert (out / ".audioguide-planted").is_symlink()  # not ours: left alone


def test_killed_builds_are_swept_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_ = cli("build", "breath", "--minutes", "20", "--out", str(out), "--no-cache")
    deadline = time.monotonic() + 120
    while not list(out.glob(".audioguide-*/")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    run_.send_signal(signal.SIGKILL)
    run_.wait()
    stale = [p for p in out.glob(".audioguide-*") if p.is_dir()]
    assert stale, "the killed build left no staging folder to sweep"
    result = run("build", "breath", "--minutes", str(MINUTES), "--out", str(out))
    built_path(result)
    assert leftovers(out) == []


def test_killed_speech_workers_scratch_is_swept(tmp_path: Path) -> None:
    root = scratch_root()
    run_ = cli("preview", "breath", "--minutes", "30", "--no-cache",
               env={**os.environ, "AUDIOGUIDE_CACHE": str(tmp_path / "cache")})
    deadline = time.monotonic() + 60
    mine: list[Path] = []
    before = set(root.glob(".audioguide-*"))
    while not mine and time.monotonic() < deadline:
        mine = [p for p in root.glob(".audioguide-*") if p not in before
                and not p.name.startswith(publish.NEW_STAGING_PREFIX)]  # renamed at once
        time.sleep(0.02)
    assert mine, "no scratch folder appeared"
    run_.send_signal(signal.SIGKILL)
    run_.wait()
    assert [p for p in mine if p.exists()], "the killed run left nothing to sweep"
    assert run("preview", "breath", "--minutes", "5", "--no-cache").exit_code == 0
    assert not [p for p in mine if p.exists()]


def test_a_staging_folder_stopped_half_way_is_swept_and_a_live_one_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build stopped (Ctrl-C, or terminated with its week) while it makes or removes its
    staging folder: whatever it leaves, the sweep after it removes; a live build's folder,
    and one being made by another build this moment, stay."""
    live = publish.Staging(tmp_path)
    assert live.dir.name.startswith(publish.STAGING_PREFIX) and (live.dir / ".lock").exists()
    assert not live.dir.name.startswith(publish.NEW_STAGING_PREFIX)
    dead = publish.Staging(tmp_path)
    (dead.dir / "session.mp3").write_bytes(b"half")
    os.close(dead._lock)  # its process died: the lock is released
    removing = publish.Staging(tmp_path)
    (removing.dir / ".lock").unlink()  # stopped after the lock, before the folder went
    being_made = tmp_path / f"{publish.NEW_STAGING_PREFIX}{os.getppid()}-x1abcdef"
    being_made.mkdir()
    (being_made / ".lock").touch()  # made, but its maker has not locked it yet
    assert publish.sweep(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.dir.name,
                                                                 being_made.name])
    old = time.time() - publish.STALE_AFTER_S - 1
    os.utime(being_made, (old, old))  # its maker was stopped long ago
    assert publish.sweep(tmp_path) == 1
    # Killed between making its folder and locking it: its process is gone, so the next
    # sweep removes the folder at once; one whose maker still runs stays.
    gone = subprocess.Popen(["true"])
    gone.wait()
    zombie = subprocess.Popen(["true"])
    zombie_gone = time.monotonic() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < zombie_gone
        time.sleep(0.01)
    running = subprocess.Popen(["sleep", "30"])
    made = {pid: tmp_path / f"{publish.NEW_STAGING_PREFIX}{pid}-abc_1234"
            for pid in (gone.pid, zombie.pid, running.pid)}
    recent = time.time() - 2
    for folder in made.values():
        folder.mkdir()
        os.utime(folder, (recent, recent))
    try:
        assert publish.sweep(tmp_path) == 2
        assert [p.name for p in tmp_path.iterdir() if p != live.dir] == [made[running.pid].name]
    finally:
        running.kill()
        running.wait()
        zombie.wait()
    shutil.rmtree(made[running.pid])
    live.close()
    assert list(tmp_path.iterdir()) == []

    def interrupted(fd: int, operation: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fcntl, "flock", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish.Staging(tmp_path)
    assert list(tmp_path.iterdir()) == []  # Ctrl-C while it was made: nothing left


def test_the_sweep_removes_only_what_builds_leave(tmp_path: Path) -> None:
    """What carries our names but not our marks is a user's or another tool's: a folder
    called .audioguide-backup, a staging-like name without our lock, another tool's
    .partial download, a link at a staging name. None is removed, however old."""
    old = time.time() - publish.STALE_AFTER_S - 3600
    keep = {
        ".audioguide-mybackup/notes.txt": "mine",
        ".audioguide-123-abcdefgh/notes.txt": "no lock: not ours",
        ".audioguide-124-abcdefgh/.lock": "a lock file, but not ours",
        ".audioguide-new-1-abcdefgh/notes.txt": "pid 1 runs, and this is not ours anyway",
        ".download.partial": "another tool's",
        ".feed.xml.partial": "the name older versions used",
    }
    for name, text in keep.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / ".audioguide-125-abcdefgh").symlink_to(tmp_path / ".audioguide-mybackup")
    for path in tmp_path.rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)
    left = publish.Staging(tmp_path)  # a killed build's: marked lock, nobody holds it
    (left.dir / "session.mp3").write_bytes(b"half")
    os.close(left._lock)
    empty = tmp_path / ".audioguide-126-abcdefgh"  # stopped while it was removed
    empty.mkdir()
    with publish.folder_lock(tmp_path):
        pass
    fd, stale = tempfile.mkstemp(dir=tmp_path, prefix=".feed.xml.",
                                 suffix=publish.PARTIAL_SUFFIX)
    os.close(fd)
    os.utime(stale, (old, old))
    assert publish.sweep(tmp_path) == 3
    assert not left.dir.exists() and not empty.exists() and not Path(stale).exists()
    for name, text in keep.items():
        assert (tmp_path / name).read_text() == text, name
    assert (tmp_path / ".audioguide-125-abcdefgh").is_symlink()


def test_final_name_taken_by_a_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / f"breath-{MINUTES}min.mp3").mkdir()
    result = run("build", "breath", "--minutes", str(MINUTES), "--out", str(tmp_path))
    assert_refused(result, "--out", "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"breath-{MINUTES}min.mp3"]


def _small_files() -> None:
    # Every file this process (and ffmpeg) writes may hold 300 kB at most: the MP3 fails.
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))


@pytest.mark.parametrize("warm", [True, False])
def test_a_full_disk_gives_a_message_and_publishes_nothing(tmp_path: Path, warm: bool) -> None:
    # Warm: the speech comes from the cache and the MP3 cannot be written; cold: the
    # speech engine's own files cannot be written either.
    if warm:
        assert run("preview", "breath", "--minutes", "8").exit_code == 0
    run_ = cli("build", "breath", "--minutes", "8", "--out", str(tmp_path),
               *([] if warm else ["--no-cache"]), preexec_fn=_small_files)
    _, stderr = run_.communicate(timeout=300)
    assert run_.returncode not in (0, 1), stderr  # 1 would be an unexpected traceback
    assert "Traceback" not in stderr and "Error:" in stderr
    if not warm:  # the speech worker's failed file is its phrase's error, at once
        assert "File too large" in stderr and "check that that disk has room" in stderr
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    assert leftovers(tmp_path) == []


def test_a_missed_loudness_target_fails_or_warns(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from audioguide.audio import ffmpeg, master

    real = master.master

    def off_target(*args: Any, **kwargs: Any) -> ffmpeg.Loudness:
        # What a file that the master could not bring to the target would measure.
        found = real(*args, **kwargs)
        return ffmpeg.Loudness(found.integrated_lufs - 3, -0.5)

    monkeypatch.setattr(master, "master", off_target)
    result = run("build", "breath", "--minutes", str(MINUTES), "--out", str(tmp_path))
    assert_refused(result, "integrated loudness", "true peak", "nothing was published")
    assert result.exit_code == 4
    assert [p for p in tmp_path.iterdir() if p.suffix in (".mp3", ".vtt", ".png")] == []
    warned = run("build", "breath", "--minutes", str(MINUTES), "--out", str(tmp_path),
                 "--loudness-check", "warn")
    assert built_path(warned).is_file()


def test_cache_clear_deletes_only_its_own_entries(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    (folder / "ab").mkdir(parents=True)
    mine = folder / "ab" / "holiday.clip"
    mine.write_text("a user's own file")
    outside = tmp_path / "elsewhere"
    (outside / "cd").mkdir(parents=True)
    precious = outside / "cd" / ("cd" + "0" * 62 + ".clip")
    precious.write_bytes(b"x" * 40)
    (folder / "cd").symlink_to(outside / "cd")
    with pytest.raises(AudioguideError, match="not an audioguide speech cache"):
        SpeechCache(folder).clear()
    # A real cache folder: entries it wrote go, anything else stays.
    env = {**os.environ, "AUDIOGUIDE_CACHE": str(folder)}
    done = subprocess.run([sys.executable, "-m", "audioguide.cli", "preview", "breath",
                           "--minutes", "5"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    count = len(SpeechCache(folder).entries())
    assert count > 5
    cleared = subprocess.run([sys.executable, "-m", "audioguide.cli", "cache", "clear"],
                             cwd=ROOT, env=env, capture_output=True, text=True)
    assert f"removed {count} entries" in cleared.stdout
    assert mine.read_text() == "a user's own file" and precious.exists()


def test_cache_clear_on_a_read_only_cache_says_so(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(folder))
    assert run("preview", "breath", "--minutes", "5").exit_code == 0

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Read-only file system", str(self))

    # Root ignores permissions, so the file system's refusal is played, not arranged.
    monkeypatch.setattr(Path, "unlink", refuse)
    assert_refused(run("cache", "clear"), "cannot remove", "Read-only file system")


def _fail(kind: str) -> None:
    if kind == "tool":
        raise named(ToolMissingError("ffmpeg is not installed."), "1-mon-1-breath-5min.mp3")
    raise named(TooShortError(60, 180, "the breath session"), "1-mon-1-breath-5min.mp3")


@pytest.mark.parametrize(("kind", "error", "code"),
                         [("tool", ToolMissingError, 3), ("short", TooShortError, 2)])
def test_errors_cross_process_boundaries_with_their_type(
        kind: str, error: type[AudioguideError], code: int) -> None:
    with (cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool,
          pytest.raises(error) as raised):
        pool.submit(_fail, kind).result()
    assert raised.value.exit_code == code
    assert raised.value.message.startswith("1-mon-1-breath-5min.mp3: ")
    again = pickle.loads(pickle.dumps(raised.value))
    assert type(again) is error and again.message == raised.value.message


def _processes_in_group(group: int) -> list[int]:
    """The live (not zombie) processes of process group ``group``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("command", ["week", "batch"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_a_killed_week_or_batch_takes_its_workers_with_it(
        tmp_path: Path, command: str, sig: signal.Signals) -> None:
    """Killed while its workers build (SIGKILL: no chance to clean up; SIGTERM: as a
    service manager stops it), the command's workers die with it: its pipes close at once
    (``week | tee log`` returns), no process of its group is left, and no session is
    published after it stopped."""
    plan = _plan_of(tmp_path, "breath", 15, days=4)
    out = tmp_path / "out"
    if command == "week":
        args = ["week", str(plan), "--start", "2026-11-23", "--out", str(out), "--jobs", "2"]
        folder = out / "2026-W48"
    else:
        roster = tmp_path / "roster.toml"
        roster.write_text("[batch]\nplan = 'plan.toml'\nstart = 2026-11-23\n"
                          "[[listener]]\nid = 'ana'\n")
        args = ["batch", str(roster), "--out", str(out), "--jobs", "2"]
        folder = out / "ana" / "2026-W48"
    proc = cli(*args, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(list(folder.glob(".audioguide-*"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, sig)  # the command only, as `kill` does: not its group
    try:
        proc.communicate(timeout=20)  # returns once no process holds its pipes
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("a worker still held the command's pipes") from None
    assert proc.returncode == -sig if sig == signal.SIGKILL else proc.returncode == 128 + sig
    time.sleep(0.5)
    assert _processes_in_group(proc.pid) == []
    published = sorted(folder.glob("*.mp3"))
    time.sleep(6)
    assert sorted(folder.glob("*.mp3")) == published  # nothing published after the stop
    if sig == signal.SIGTERM:
        assert not list(folder.glob(".audioguide-*"))  # swept on the way out


def _fill(disk: Path) -> None:
    """Fill the file system at ``disk`` to the last byte."""
    with (disk / "filler").open("wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(bytes(1 << 16))
            fh.flush()
    with contextlib.suppress(OSError), (disk / "filler2").open("wb") as fh:
        while True:
            fh.write(b"x")
            fh.flush()


def test_a_finished_week_on_a_full_disk_is_published_whole_or_not_at_all(
        tmp_path: Path) -> None:
    """Run again with nothing changed, a finished week on a full disk succeeds (nothing to
    write); with its feed to change (a new --base-url), it fails with one message and
    leaves the week's files exactly as they were, not a new feed beside an old page."""
    disk = tmp_path / "disk"
    with _small_disk(disk, 6):
        plan = _plan_of(tmp_path, "check-in", 2)
        args = ["week", str(plan), "--start", "2026-11-23", "--out", str(disk)]
        folder = built_path(run(*args))
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        _fill(disk)
        assert built_path(run(*args)) == folder
        for url in ("http://192.168.1.20:8000/", "https://example.org/walks/"):
            result = run(*args, "--base-url", url)
            assert_refused(result, "cannot write the week's playlist, feed and page",
                           "No space left on device", "None of them was changed")
            assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
