"""``audioguide batch``: a personalised week per listener, here and on a real Dask cluster.

The cluster tests start a real scheduler and two real worker processes on 127.0.0.1
(distributed's ``LocalCluster``); one kills a worker process while it builds a
session. Every finished week is checked from outside: each MP3 decodes to its
planned length, its tags name the listener, and the week's playlist and feed list
every session.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audioguide.batch import roster as rosters
from audioguide.batch.run import run_batch
from audioguide.batch.tasks import BatchStatus
from tests.conftest import assert_refused, interruptible, probe, run

START = "2026-11-23"
WEEK = "2026-W48"
#: Two short sessions per listener, so a roster of four is eight sessions.
PLAN = """\
[week]
title = "Short week"
intention = "The plan's intention."

pace = "normal"

[[session]]
day = 1
kind = "check-in"
minutes = 3

[[session]]
day = 3
kind = "check-in"
minutes = 2.5
pace = "normal"
"""
SESSIONS = ["1-mon-1-check-in-3min.mp3", "3-wed-1-check-in-2.5min.mp3"]
LISTENERS = """\
[[listener]]
id = "ana"
name = "Ana"
feelings = ["calm", "tired"]

[[listener]]
id = "Ben Okafor"
name = "Ben"
intention = "I want to notice my breath."

[[listener]]
id = "p-017"
name = "Chidi"

[[listener]]
id = "dee"
name = "Dee"
pace = "slow"
"""
IDS = ["ana", "ben-okafor", "p-017", "dee"]


def write_roster(folder: Path, listeners: str = LISTENERS, plan: str = PLAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "short.toml").write_text(plan)
    path = folder / "roster.toml"
    path.write_text(f'[batch]\nstart = {START}\nplan = "short.toml"\n\n{listeners}')
    return path


def check_weeks(out: Path, ids: list[str]) -> None:
    """Every listener's week is complete, from outside: MP3s of the planned length whose
    tags carry the listener's name, sidecars, a playlist and feed listing each session,
    and nothing temporary left behind."""
    for ident in ids:
        folder = out / ident / WEEK
        assert sorted(p.name for p in folder.glob("*.mp3")) == SESSIONS, ident
        for mp3 in folder.glob("*.mp3"):
            info = probe(mp3)
            minutes = float(mp3.stem.split("-")[-1][:-3])
            assert abs(float(info["format"]["duration"]) - 60 * minutes) < 0.1, mp3
            assert mp3.with_suffix(".vtt").is_file() and mp3.with_suffix(".png").is_file()
        playlist = (folder / "playlist.m3u8").read_text()
        feed = (folder / "feed.xml").read_text()
        for name in SESSIONS:
            assert name in playlist and name in feed
        assert f"/{ident}/{WEEK}/" in feed  # the feed links where the listener's week is
        assert json.loads((folder / "week.json").read_text())["sessions"] == SESSIONS
        # Every file is as readable as the MP3s (a web server may run as another user).
        mode = (folder / SESSIONS[0]).stat().st_mode & 0o777
        for name in ("feed.xml", "index.html", "playlist.m3u8", "week.json", "cover.png"):
            assert (folder / name).stat().st_mode & 0o777 == mode, name
        assert (out / "batch.json").stat().st_mode & 0o777 == mode
        assert not [p.name for p in folder.glob(".*")], ident


def spoken(folder: Path) -> str:
    """What a session's transcript says (the words the listener hears)."""
    return " ".join(p.read_text() for p in sorted(folder.glob("*.vtt")))


# -- The roster ------------------------------------------------------------------------------

def test_listener_values_take_the_place_of_the_plans_week_values(tmp_path: Path) -> None:
    roster = rosters.load(write_roster(tmp_path), tmp_path / "out")
    assert [listener.id for listener in roster.listeners] == IDS
    by_id = {listener.id: listener for listener in roster.listeners}
    ana = [s.request for s in by_id["ana"].plan.sessions]
    assert {r.name for r in ana} == {"Ana"}
    assert all(r.feelings == ("calm", "tired") for r in ana)
    ben = [s.request for s in by_id["ben-okafor"].plan.sessions]
    assert {r.intention for r in ben} == {"I want to notice my breath."}
    chidi = [s.request for s in by_id["p-017"].plan.sessions]
    assert {r.intention for r in chidi} == {"The plan's intention."}
    dee = [s.request for s in by_id["dee"].plan.sessions]
    # A listener's pace replaces the plan's week-wide pace; a session's own value still wins.
    assert [r.pace.value for r in dee] == ["slow", "normal"]
    assert by_id["dee"].folder == tmp_path / "out" / "dee" / WEEK


@pytest.mark.parametrize(
    ("listeners", "words"),
    [
        # Every problem at once, each at its line: an unknown key, an option out of range,
        # a missing id, two ids naming one folder, a bad date.
        ('[[listener]]\nid = "a"\ncolour = "blue"\n\n[[listener]]\nid = "b"\nrate = 9000\n\n'
         '[[listener]]\nname = "No id"\n\n[[listener]]\nid = "Ana"\n\n[[listener]]\nid = "ana"\n'
         '\n[[listener]]\nid = "e"\nstart = "next week"\n',
         ["5 problems", "line 7, listener 1 colour", "unknown key",
          "line 11, listener 2 rate", "line 13, listener 3 id", "missing 'id'",
          "line 20, listener 5 id", "same folder", "line 24, listener 6 start", "not a date"]),
        # A listener's plan that cannot be read, and one whose sessions their value breaks.
        ('[[listener]]\nid = "a"\nplan = "missing.toml"\n\n[[listener]]\nid = "b"\n'
         'plan = "journal.toml"\nwalking = true\n',
         ["2 problems", "for listener a: PLAN: cannot read", "missing.toml",
          "for listener b: roster.toml line 12, listener 2 walking", "not meant for walking"]),
        # A broken plan is reported once, with the listeners whose week it is.
        ('[[listener]]\nid = "a"\n\n[[listener]]\nid = "b"\n\n[[listener]]\nid = "c"\n\n'
         '[[listener]]\nid = "d"\nplan = "broken.toml"\n\n[[listener]]\nid = "e"\n'
         'plan = "broken.toml"\n',
         ["1 problem;", "for listeners d, e: broken.toml line 3, session 1 kind",
          "unknown session kind"]),
        ("", ["no [[listener]] tables"]),
        # Ids that would name no folder of their own, or the batch's record.
        ('[[listener]]\nid = ".."\n\n[[listener]]\nid = "日本"\n\n[[listener]]\n'
         'id = "Batch.json"\n',
         ["3 problems", "line 6, listener 1 id: '..' cannot name a folder",
          "'日本' cannot name a folder (it has no Latin letter or digit)",
          "'Batch.json' cannot name a folder (it is the batch's record, batch.json)"]),
    ],
)
def test_bad_rosters_are_reported_whole_and_build_nothing(
    tmp_path: Path, listeners: str, words: list[str]
) -> None:
    roster = write_roster(tmp_path / "in", listeners)
    (tmp_path / "in" / "broken.toml").write_text('[[session]]\nday = 1\nkind = "yoga"\n'
                                                 'minutes = 5\n')
    (tmp_path / "in" / "journal.toml").write_text('[[session]]\nday = 1\nkind = "journal"\n'
                                                  'minutes = 10\n')
    out = tmp_path / "out"
    assert_refused(run("batch", str(roster), "--out", str(out)), *words, out=out)
    assert not out.exists()


def test_refuses_options_that_do_not_go_together(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "in")
    out = tmp_path / "out"
    assert_refused(run("batch", str(roster), "--out", str(out), "--collect"), "--collect",
                   "--scheduler")
    assert_refused(run("batch", str(roster), "--out", str(out), "--jobs", "2", "--scheduler",
                       "tcp://127.0.0.1:9"), "--jobs")


@pytest.mark.parametrize("address", ["nonsense", "http://10.0.0.5:8786", "tcp://",
                                     "tcp://127.0.0.1:99999"])
def test_what_is_not_a_scheduler_address_is_refused_at_once(tmp_path: Path, address: str) -> None:
    """In a fresh process, so that no half-made Dask client lingers to time out at exit
    (it did, for 30 s, with a traceback)."""
    roster = write_roster(tmp_path / "in", '[[listener]]\nid = "a"\n')
    out = tmp_path / "out"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "audioguide.cli", "batch", str(roster),
                           "--out", str(out), "--scheduler", address],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.startswith(f"Error: --scheduler: {address!r} is not a Dask scheduler's "
                                  "address; give it as tcp://HOST:PORT"), done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 20
    assert not out.exists()


def test_a_service_that_is_not_a_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    """An SSH server where the scheduler should be: it answered with a banner, which Dask
    read as a 2.8 EiB frame (a traceback, then 30 s of hanging at exit)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")

    threading.Thread(target=answer, daemon=True).start()
    roster = write_roster(tmp_path / "in", '[[listener]]\nid = "a"\n')
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "audioguide.cli", "batch", str(roster),
                               "--out", str(tmp_path / "out"), "--scheduler", address],
                              capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert done.returncode == 2, done
    assert done.stderr.splitlines()[-1].startswith(
        f"Error: --scheduler: cannot reach a Dask scheduler at {address!r}"), done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 20


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "in", '[[listener]]\nid = "a"\n')
    result = run("batch", str(roster), "--out", str(tmp_path / "out"), "--scheduler",
                 "tcp://127.0.0.1:9")
    assert_refused(result, "--scheduler", "cannot reach a Dask scheduler", "dask scheduler")


# -- On this machine -------------------------------------------------------------------------

def test_local_batch_builds_every_week_and_a_failed_listener_stops_no_one(
    tmp_path: Path
) -> None:
    # Chidi's own plan is too short for its slow check-in once it is spoken (found only by
    # planning the script, on the worker): Chidi's week fails, the others are built.
    listeners = LISTENERS.replace('name = "Chidi"', 'name = "Chidi"\nplan = "tight.toml"')
    roster = write_roster(tmp_path / "in", listeners)
    (tmp_path / "in" / "tight.toml").write_text(PLAN.replace("minutes = 3",
                                                             'minutes = 2\npace = "slow"'))
    out = tmp_path / "out"
    result = run("batch", str(roster), "--out", str(out), "--jobs", "2")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "1 of 4 listeners' weeks are not complete" in result.output
    table = result.stdout
    assert "p-017" in table and "failed: 1-mon-1-check-in-2min.mp3: --minutes" in table
    check_weeks(out, ["ana", "ben-okafor", "dee"])
    # An episode's guid is one listener's one audio: no two listeners' sessions share one.
    guids = [g for ident in ("ana", "ben-okafor", "dee") for g in re.findall(
        r"<guid[^>]*>([^<]+)</guid>", (out / ident / WEEK / "feed.xml").read_text())]
    assert len(guids) == 6 and len(set(guids)) == 6
    assert "Ana" in spoken(out / "ana" / WEEK) and "I want to notice my breath" in spoken(
        out / "ben-okafor" / WEEK)
    record = json.loads((out / "batch.json").read_text())
    assert record["sessions"] == {"total": 8, "built": 7, "up_to_date": 0, "failed": 1}
    chidi = next(r for r in record["listeners"] if r["id"] == "p-017")
    assert chidi["status"] == "failed" and chidi["built"] == 1
    assert "too short" in chidi["failed"][0]["reason"]
    assert not (out / "p-017" / WEEK / "feed.xml").exists()  # no feed for half a week

    # Fixed, the batch builds only Chidi's missing session; then nothing at all.
    (tmp_path / "in" / "tight.toml").write_text(PLAN)
    again = run("batch", str(roster), "--out", str(out))
    assert again.exit_code == 0, again.output
    assert json.loads((out / "batch.json").read_text())["sessions"] == {
        "total": 8, "built": 1, "up_to_date": 7, "failed": 0}
    check_weeks(out, IDS)
    mp3s = {p: p.stat().st_mtime_ns for p in out.glob(f"*/{WEEK}/*.mp3")}
    third = run("batch", str(roster), "--out", str(out))
    assert third.exit_code == 0, third.output
    assert {p: p.stat().st_mtime_ns for p in out.glob(f"*/{WEEK}/*.mp3")} == mp3s
    assert third.stdout.count("up to date") == 5  # four listeners and the summary
    assert json.loads((out / "batch.json").read_text())["where"] == "nothing to build"

    # Another listener's transcript copied over Ana's, and her cover emptied: the MP3s are
    # intact, but the re-run rebuilds the session (the page had shown Ben's name on hers).
    ana, ben = out / "ana" / WEEK, out / "ben-okafor" / WEEK
    vtt = SESSIONS[0].replace(".mp3", ".vtt")
    (ana / vtt).write_bytes((ben / vtt).read_bytes())
    (ana / SESSIONS[1].replace(".mp3", ".png")).write_bytes(b"")
    fourth = run("batch", str(roster), "--out", str(out))
    assert fourth.exit_code == 0, fourth.output
    assert json.loads((out / "batch.json").read_text())["sessions"]["built"] == 2
    assert "Ben" not in spoken(ana) and "Ben" not in (ana / "index.html").read_text()
    check_weeks(out, IDS)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_a_stopped_batch_stops_leaves_no_partial_files_and_the_next_run_completes(
    tmp_path: Path, stop: str
) -> None:
    """Ctrl-C (SIGINT to the whole process group) or SIGTERM to the batch alone: it stops,
    its workers stop too (they had gone on building the sessions queued to them, and
    published them after the batch had exited), and nothing partial is left."""
    roster = write_roster(tmp_path / "in")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "audioguide.cli", "batch", str(roster), "--out", str(out),
               "--jobs", "2"]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ),
                            preexec_fn=interruptible)
    deadline = time.monotonic() + 60
    while not list(out.glob(f"*/{WEEK}/.audioguide-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    if stop == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    published = sorted(out.glob(f"*/{WEEK}/*.mp3"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # every process the batch started is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("processes of the stopped batch are still running")
    assert sorted(out.glob(f"*/{WEEK}/*.mp3")) == published, "published after it stopped"
    assert len(published) < 8
    assert not list(out.glob(f"*/{WEEK}/.*")), "staging left behind"
    for mp3 in out.glob(f"*/{WEEK}/*.mp3"):  # whatever was published is whole
        assert abs(float(probe(mp3)["format"]["duration"]) - 60 * float(
            mp3.stem.split("-")[-1][:-3])) < 0.1
    result = run("batch", str(roster), "--out", str(out))
    assert result.exit_code == 0, result.output
    check_weeks(out, IDS)


# -- On a Dask cluster -----------------------------------------------------------------------

@pytest.fixture
def cluster(fresh_cache: Path) -> Iterator[Any]:
    """A real scheduler and two worker processes (one thread each) on 127.0.0.1, started
    as ``dask worker`` starts them (a nanny, and a daemonic worker process), with an
    empty speech cache, so that the workers render speech themselves."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as local:
        yield local


def test_dask_cluster_survives_a_worker_killed_mid_session(tmp_path: Path, cluster: Any) -> None:
    from distributed import Client

    roster = rosters.load(write_roster(tmp_path / "in"), tmp_path / "out")
    killed: list[int] = []
    stages: set[str] = set()  # what the progress showed of the sessions being built
    with Client(cluster.scheduler_address, set_as_default=False) as client:

        def kill_a_busy_worker(status: BatchStatus) -> None:
            stages.update(stage for stage, _, _ in status.active.values())
            assert all(0 <= number < 4 and 0 <= index < 2 for number, index in status.active)
            # After the first session is back, kill a worker process that is building one.
            if killed or status.done - status.skipped < 1:
                return
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        report = run_batch(roster, tmp_path / "out", scheduler=cluster.scheduler_address,
                           progress=kill_a_busy_worker)
    assert killed, "no worker was busy to kill"
    # Each worker's stages came back while it built (an empty cache: speech is made).
    assert {"speak", "encode"} <= stages, stages
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert not report.failed, [r.reasons() for r in report.listeners]
    assert report.status.built == 8
    check_weeks(tmp_path / "out", IDS)
    assert "Dask scheduler" in json.loads((tmp_path / "out" / "batch.json").read_text())["where"]


def test_dask_cli_with_collected_files_and_a_rerun(tmp_path: Path, cluster: Any) -> None:
    roster = write_roster(tmp_path / "in")
    out = tmp_path / "out"
    address = cluster.scheduler_address
    result = run("batch", str(roster), "--out", str(out), "--scheduler", address, "--collect")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out.absolute() / "batch.json")
    check_weeks(out, IDS)
    again = run("batch", str(roster), "--out", str(out), "--scheduler", address)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "batch.json").read_text())["sessions"]["up_to_date"] == 8


def test_output_folder_the_workers_cannot_see_is_refused(tmp_path: Path) -> None:
    """Each worker writes a probe file where it sees --out; here the "worker" writes to
    another folder, as a worker on another machine without the shared disk would."""
    from audioguide.batch import cluster
    from audioguide.batch.tasks import write_probe
    from audioguide.errors import RequestError

    elsewhere = tmp_path / "other-disk"

    class OtherMachine:
        def run(self, function: Any, folder: str, token: str) -> dict[str, str]:
            assert function is write_probe
            return {"tcp://10.0.0.7:4000": write_probe(str(elsewhere), token)}

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RequestError, match=r"not shared with the cluster.*--collect"):
        cluster.probe(OtherMachine(), out)
    assert list(out.iterdir()) == []


def test_workers_without_this_audioguide_are_refused() -> None:
    from audioguide import __version__
    from audioguide.batch import cluster
    from audioguide.batch.tasks import worker_version
    from audioguide.errors import RequestError

    class Workers:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        def run(self, function: Any, engines: tuple[str, ...]) -> dict[str, str]:
            assert function is worker_version and engines == ("pyttsx3",)
            if isinstance(self.answer, Exception):
                raise self.answer
            here = worker_version(engines)
            return {"tcp://10.0.0.8:4000": self.answer, "tcp://10.0.0.9:4000": here}

    here = worker_version(("pyttsx3",))
    assert here.startswith(f"audioguide {__version__}; pyttsx3: pyttsx3 ") and "espeak" in here
    cluster.check_versions(Workers(here), "tcp://10.0.0.5:8786", ("pyttsx3",))
    with pytest.raises(RequestError, match=r"tcp://10\.0\.0\.8:4000 runs audioguide 0\.0\.1"):
        cluster.check_versions(Workers(here.replace(__version__, "0.0.1")),
                               "tcp://10.0.0.5:8786", ("pyttsx3",))
    older_voice = here.replace("espeak-ng", "espeak-ng 1.49 (was")
    with pytest.raises(RequestError, match=r"the same versions everywhere"):
        cluster.check_versions(Workers(older_voice), "tcp://10.0.0.5:8786", ("pyttsx3",))
    with pytest.raises(RequestError, match=r"cannot run audioguide.*No module named"):
        cluster.check_versions(Workers(ModuleNotFoundError("No module named 'audioguide'")),
                               "tcp://10.0.0.5:8786", ("pyttsx3",))


MALLOC_PROBE = """
import ctypes, json, os
from audioguide.batch.tasks import undo_dask_malloc_tuning

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.mallinfo2.restype = MallInfo2

def mapped_by_a_1_mb_block():
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(1 << 20)
    mapped = libc.mallinfo2().hblkhd - before
    libc.free(ctypes.c_void_p(block))
    return mapped

first = mapped_by_a_1_mb_block()
undone = undo_dask_malloc_tuning()
print(json.dumps([first, undone, mapped_by_a_1_mb_block(),
                  "MALLOC_TRIM_THRESHOLD_" in os.environ]))
"""


def test_a_dask_workers_allocator_tuning_is_undone_for_sessions() -> None:
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc map
    and unmap every block of audio afresh (a session took 1.5 times as long); a session's
    task sets the thresholds back, so a 1 MB block comes from the heap again."""
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", MALLOC_PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout
    mapped_before, undone, mapped_after, still_set = json.loads(out)
    assert mapped_before >= 1 << 20 and undone and mapped_after == 0 and not still_set
    plain = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", MALLOC_PROBE], env=plain, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)[1] is False  # outside Dask nothing is changed


MIXING_PROBE = MALLOC_PROBE.split("def mapped_by_a_1_mb_block")[0].replace(
    "from audioguide.batch.tasks import undo_dask_malloc_tuning", "from audioguide import memory"
) + """
def mapped_by(size):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    mapped = libc.mallinfo2().hblkhd - before
    libc.free(ctypes.c_void_p(block))
    return mapped

libc.free(ctypes.c_void_p(libc.malloc(8 << 20)))  # glibc raises its threshold past this
dynamic = mapped_by(512 << 10)
memory.for_mixing()
memory.release()  # as a build does
print(json.dumps([dynamic, mapped_by(512 << 10), mapped_by(256 << 10)]))
"""


def test_the_mix_maps_clip_sized_blocks_and_reuses_the_mixers() -> None:
    """From the mix on (the thresholds set, the heap trimmed), a clip-sized block (512 KiB)
    is mapped and given back when freed, not left to fragment the heap (as glibc's raised
    threshold would), while a mixer's block (256 KiB) still comes from the heap."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # Dask's
    out = subprocess.run([sys.executable, "-c", MIXING_PROBE], env=plain, capture_output=True,
                         text=True, check=True).stdout
    dynamic, clip, mixer = json.loads(out)
    assert dynamic == 0 and clip >= 512 << 10 and mixer == 0


def test_the_voice_is_chosen_here_for_every_worker() -> None:
    """Workers speak with the engine and voice this machine resolves, not their own
    --engine auto choice (a worker with Piper installed would otherwise speak some of a
    week in another voice, and every re-run would rebuild those sessions)."""
    from audioguide.batch.run import _pinned
    from audioguide.request import Request

    chosen: dict[Any, Any] = {}
    pinned = _pinned(Request(kind="breath", minutes=5), chosen)
    assert (pinned.engine, pinned.voice) == ("pyttsx3", "gmw/en-us")
    scottish = _pinned(Request(kind="walking", minutes=5, voice="GMW/EN-GB-Scotland"), chosen)
    assert scottish.voice == "gmw/en-gb-scotland"
    assert len(chosen) == 2


def test_the_readmes_roster_example_is_a_valid_roster(tmp_path: Path) -> None:
    """The README's complete example loads, with its plans beside it, and means what its
    comments say."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Rosters"):readme.index("### On a Dask cluster")]
    example = section.split("```toml\n")[1].split("```")[0]
    (tmp_path / "gentle.toml").write_text(PLAN)
    (tmp_path / "walks.toml").write_text(PLAN.replace('"check-in"', '"walking"', 1)
                                         .replace("minutes = 3", "minutes = 5"))
    (tmp_path / "course.toml").write_text(example)
    roster = rosters.load(tmp_path / "course.toml", tmp_path / "weeks")
    by_id = {listener.id: listener for listener in roster.listeners}
    assert list(by_id) == ["ana", "ben-okafor", "p-017"]
    assert by_id["ben-okafor"].folder == tmp_path / "weeks" / "ben-okafor" / WEEK
    ana = by_id["ana"].plan.sessions[0].request
    assert (ana.name, ana.feelings, ana.pace.value) == ("Ana", ("calm", "tired"), "slow")
    ben = by_id["ben-okafor"].plan.sessions[0].request
    assert ben.intention == "I want to notice my breath before I answer."
    assert ben.pace.value == "normal"
    p017 = by_id["p-017"].plan.sessions[0].request
    assert (p017.kind, p017.voice, p017.focus) == ("walking", "gmw/en-gb-scotland",
                                                   ("shoulders", "jaw"))
    assert by_id["ana"].plan.title == "Spring course"
