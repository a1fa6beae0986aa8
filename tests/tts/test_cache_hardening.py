"""The speech cache, the voice calibration and the Kokoro voices folder against a hostile
user: swapped entries, planted links, FIFOs, endless devices, zip bombs, tampered
measurements and entries that cannot be removed. Each is checked from outside: the
audio built, the files left, the process finishing at all."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audioguide.tts import calibrate, kokoro_files
from audioguide.tts.cache import FORMAT, MARKER, SpeechCache
from audioguide.tts.cache_format import HEAD, checks_out
from tests.conftest import assert_refused, run, silences

#: Every test here builds audio or starts the command line as its own process.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: A process that has not finished by then hangs.
HANG_S = 60


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``audioguide ARGS`` as its own process; a hang fails the test instead of stalling it."""
    try:
        return subprocess.run([sys.executable, "-m", "audioguide.cli", *args], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"audioguide {' '.join(args)} was still running after {HANG_S} s")


def build(cache: Path, out: Path, *extra: str) -> Path:
    result = cli("build", "check-in", "--minutes", "2", "--out", str(out), *extra,
                 env={"AUDIOGUIDE_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def entries(cache: Path, suffix: str) -> list[Path]:
    """The cache's entries of one kind, shortest first."""
    return sorted((p for p in SpeechCache(cache).entries() if p.suffix == suffix),
                  key=lambda p: (p.stat().st_size, p.name))


#: Where speech starts and stops in a session.
Speech = list[tuple[float, float]]


def speaks_as(mp3: Path, reference: Speech) -> bool:
    """Whether ``mp3`` speaks where ``reference`` does: each line its own length. (espeak-ng
    renders a line a little differently after other lines, so a line made again is not
    the same to the sample; a line swapped for another is seconds off.)"""
    found = silences(mp3)
    return len(found) == len(reference) and all(
        abs(a - c) < 0.3 and abs(b - d) < 0.3 for (a, b), (c, d) in zip(found, reference,
                                                                          strict=True))


def all_check_out(cache: Path) -> bool:
    return all(checks_out(p.read_bytes(), p.stem) and p.read_bytes().startswith(FORMAT)
               for p in SpeechCache(cache).entries())


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Speech]:
    """A warm cache for the 2-minute check-in, and where its build speaks."""
    cache = tmp_path_factory.mktemp("warm") / "cache"
    mp3 = build(cache, cache.parent / "out")
    return cache, silences(mp3)


@pytest.fixture
def cache(warm: tuple[Path, Speech], tmp_path: Path) -> Path:
    """A copy of the warm cache, for this test to attack."""
    copy = tmp_path / "cache"
    shutil.copytree(warm[0], copy, symlinks=True)
    return copy


# --- 5. an entry belongs to its phrase --------------------------------------------------


def _swap(a: Path, b: Path) -> None:
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)


def _old_format(path: Path) -> None:
    import hashlib

    payload = path.read_bytes()[HEAD:]
    path.write_bytes(hashlib.sha256(payload).digest() + payload)


def _rotate(paths: list[Path]) -> None:
    for other in paths[1:]:
        _swap(paths[0], other)


ATTACKS: dict[str, Callable[[list[Path], list[Path]], object]] = {
    "two phrases swapped": lambda clips, pcms: _swap(clips[0], clips[-1]),
    "one phrase copied over another": lambda clips, pcms: shutil.copyfile(clips[-1], clips[0]),
    "every phrase rotated": lambda clips, pcms: _rotate(clips),
    "two decoded copies swapped": lambda clips, pcms: _swap(pcms[0], pcms[-1]),
    "a decoded copy copied over another": lambda clips, pcms: shutil.copyfile(pcms[-1],
                                                                              pcms[0]),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_entry_moved_to_another_phrase_is_never_spoken(
        attack: str, cache: Path, warm: tuple[Path, Speech],
        tmp_path: Path) -> None:
    ATTACKS[attack](entries(cache, ".clip"), entries(cache, ".pcm"))
    result = cli("build", "check-in", "--minutes", "2", "--out", str(tmp_path / "out"),
                 env={"AUDIOGUIDE_CACHE": str(cache)})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "not the phrase it is named for" in result.stderr
    # The build speaks exactly what a clean cache speaks: each line its own audio.
    assert speaks_as(Path(result.stdout.split()[-1]), warm[1])
    assert all_check_out(cache)


def test_entries_of_the_older_format_are_made_again_quietly(
        cache: Path, warm: tuple[Path, Speech], tmp_path: Path) -> None:
    for path in SpeechCache(cache).entries():
        _old_format(path)
    result = cli("build", "check-in", "--minutes", "2", "--out", str(tmp_path / "out"),
                 env={"AUDIOGUIDE_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "speech cache" not in result.stderr, result.stderr
    assert speaks_as(Path(result.stdout.split()[-1]), warm[1])
    assert all_check_out(cache)


# --- 6. links in the cache are never followed -------------------------------------------


def test_a_linked_marker_is_replaced_not_written_through(tmp_path: Path) -> None:
    for target in ("existing", "dangling"):
        cache = tmp_path / target / "cache"
        cache.mkdir(parents=True)
        outside = tmp_path / target / "outside.txt"
        if target == "existing":
            outside.write_text("precious")
        (cache / MARKER).symlink_to(outside)
        build(cache, tmp_path / target / "out")
        assert not (cache / MARKER).is_symlink()
        assert (cache / MARKER).read_text().startswith("Signature: 8a477f597d28d")
        assert (outside.read_text() == "precious") if target == "existing" else \
            not outside.exists()


@pytest.mark.parametrize("suffix", [".clip", ".pcm"])
def test_linked_subfolders_are_removed_not_filled(suffix: str, cache: Path,
                                                  warm: tuple[Path, Speech],
                                                  tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    subs = sorted({p.parent for p in entries(cache, suffix)})[:3]
    for sub in subs:
        copy = outside / sub.name
        shutil.move(sub, copy)  # the entries are still good, but only behind a link
        sub.symlink_to(copy)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    mp3 = build(cache, tmp_path / "out")
    assert speaks_as(mp3, warm[1])
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before
    for sub in subs:
        assert sub.is_dir() and not sub.is_symlink() and any(sub.iterdir())
    assert all_check_out(cache)


@pytest.mark.parametrize("target", ["a good entry elsewhere", "/etc/shadow", "dangling",
                                    "a folder"])
@pytest.mark.parametrize("suffix", [".clip", ".pcm"])
def test_linked_entries_are_removed_not_read(target: str, suffix: str, cache: Path,
                                             warm: tuple[Path, Speech],
                                             tmp_path: Path) -> None:
    planted = entries(cache, suffix)[:2]
    for index, entry in enumerate(planted):
        if target == "a good entry elsewhere":
            aim = tmp_path / f"good-{index}"
            shutil.move(entry, aim)  # it would check out, if it were followed
        else:
            aim = {"/etc/shadow": Path("/etc/shadow"), "dangling": tmp_path / "nowhere",
                   "a folder": tmp_path}[target]
            entry.unlink()
        entry.symlink_to(aim)
    result = cli("build", "check-in", "--minutes", "2", "--out", str(tmp_path / "out"),
                 env={"AUDIOGUIDE_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "is a link" in result.stderr
    assert speaks_as(Path(result.stdout.split()[-1]), warm[1])
    for entry in planted:
        assert not entry.is_symlink() and entry.is_file()
    assert all_check_out(cache)
    assert Path("/etc/shadow").exists()


# --- 17. nothing in the cache or the voices folder can hang a build ----------------------


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


def _huge(path: Path) -> None:
    with path.open("wb") as fh:
        fh.truncate(80 << 20)  # sparse: larger than any entry, costing no disk


PLANTS: dict[str, Callable[[Path], None]] = {"a FIFO": _fifo, "a link to /dev/zero": _zero,
                                             "a huge file": _huge}


@pytest.mark.parametrize("plant", list(PLANTS))
@pytest.mark.parametrize("suffix", [".clip", ".pcm"])
def test_an_entry_that_is_no_file_is_made_again_without_hanging(
        plant: str, suffix: str, cache: Path, warm: tuple[Path, Speech],
        tmp_path: Path) -> None:
    planted = entries(cache, suffix)[:3]
    for entry in planted:
        PLANTS[plant](entry)
    mp3 = build(cache, tmp_path / "out")
    assert speaks_as(mp3, warm[1])
    for entry in planted:
        assert not entry.is_symlink() and entry.is_file() and entry.stat().st_size < 1 << 24
    assert all_check_out(cache)


# --- 12. the calibration is a cache: nothing in it is trusted ----------------------------

#: A tampered calibration file: text or bytes to write, or a function making it.
Tamper = str | bytes | Callable[[Path, str, list[list[float]]], None]


def _ours(value: str) -> Callable[[Path, str, list[list[float]]], None]:
    """The measurements of the voice in use replaced by ``value`` (JSON text)."""
    def write(path: Path, key: str, points: list[list[float]]) -> None:
        path.write_text(f'{{{json.dumps(key)}: {value}}}')
    return write


def _with_other(value: str) -> Callable[[Path, str, list[list[float]]], None]:
    """The voice in use kept, another voice's measurements replaced by ``value``."""
    def write(path: Path, key: str, points: list[list[float]]) -> None:
        path.write_text(f'{{{json.dumps(key)}: {json.dumps(points)}, "other|1|v|t": {value}}}')
    return write


def _padded(path: Path, key: str, points: list[list[float]]) -> None:
    path.write_text(json.dumps({key: points}) + " " * (2 << 20))


def _linked(path: Path, key: str, points: list[list[float]]) -> None:
    real = path.parent.parent / "calibration-elsewhere.json"
    real.write_text(json.dumps({key: [[p[0], p[1] * 3] for p in points]}))
    path.symlink_to(real)


TAMPERED: dict[str, Tamper] = {
    "not JSON": "{{{ not json", "empty": "", "binary": b"\x00\xff\xfe garbage",
    "bare NaN": "NaN", "a list": "[[150, 180]]", "a string": '"calibration"', "null": "null",
    "a number": "42", "nested past what Python can read": "[" * 100_000 + "]" * 100_000,
    "NaN rate": _ours("[[150, NaN]]"), "zero rate": _ours("[[150, 0]]"),
    "infinite rate": _ours("[[150, Infinity]]"), "minus infinity": _ours("[[150, -Infinity]]"),
    "5 wpm": _ours("[[150, 5]]"), "5000 wpm": _ours("[[150, 5000]]"),
    "negative rate": _ours("[[150, -180]]"), "string rate": _ours('[[150, "180"]]'),
    "string setting": _ours('[["150", 180]]'), "boolean setting": _ours("[[true, 180]]"),
    "boolean rate": _ours("[[150, false]]"), "setting 0": _ours("[[0, 180]]"),
    "setting out of the engine's range": _ours("[[5000, 180]]"),
    "fractional setting": _ours("[[150.5, 180]]"), "huge number": _ours(f"[[150, 1{'0' * 400}]]"),
    "a pair too short": _ours("[[150]]"), "a pair too long": _ours("[[150, 180, 1]]"),
    "flat list": _ours("[150, 180]"), "empty list": _ours("[]"), "a dict": _ours('{"150": 180}'),
    "a number for points": _ours("180"), "null points": _ours("null"),
    "a setting twice": _ours("[[150, 180], [150, 200]]"),
    "another voice's NaN": _with_other("[[150, NaN]]"),
    "another voice's nonsense": _with_other('{"a": [1, 2]}'),
    "over a megabyte": _padded, "a link to other measurements": _linked,
}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, list[Any]]:
    """A cache whose calibration is measured, the preview it gives, and the voice's key and
    measurements."""
    cache = tmp_path_factory.mktemp("calibrated") / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOGUIDE_CACHE", str(cache))
        mp.setattr(calibrate, "_measured", {})
        result = run("preview", "breath", "--minutes", "5")
    assert result.exit_code == 0, result.output
    stored = json.loads((cache / "calibration.json").read_text())
    [(key, points)] = stored.items()
    return cache, result.stdout, key, points


def _valid_after(path: Path, key: str, points: list[Any]) -> None:
    assert path.is_file() and not path.is_symlink()
    stored = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert stored[key] == points
    for value in stored.values():
        assert not isinstance(calibrate._points(value, calibrate.ANY_SETTING), str)


@pytest.mark.parametrize("tamper", list(TAMPERED))
def test_a_tampered_calibration_is_measured_again_with_one_warning(
        tamper: str, calibrated: tuple[Path, str, str, list[Any]],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    cache, preview, key, points = calibrated
    path = cache / "calibration.json"
    path.unlink(missing_ok=True)
    how = TAMPERED[tamper]
    if isinstance(how, str):
        path.write_text(how)
    elif isinstance(how, bytes):
        path.write_bytes(how)
    else:
        how(path, key, points)
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(cache))
    monkeypatch.setattr(calibrate, "_measured", {})  # as in a new process
    with caplog.at_level(logging.WARNING):
        result = run("preview", "breath", "--minutes", "5")
    assert result.exit_code == 0, result.output
    assert result.exception is None and "Traceback" not in result.output
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "calibration" in warnings[0].getMessage(), warnings
    assert result.stdout == preview  # the asked-for rate, not the tampered one
    _valid_after(path, key, points)


def test_a_missing_voice_is_measured_without_a_warning(
        calibrated: tuple[Path, str, str, list[Any]], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    cache, preview, key, points = calibrated
    path = cache / "calibration.json"
    path.write_text(json.dumps({"other|1|v|t": [[150, 180.0]]}))
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(cache))
    monkeypatch.setattr(calibrate, "_measured", {})
    with caplog.at_level(logging.WARNING):
        result = run("preview", "breath", "--minutes", "5")
    assert result.exit_code == 0 and result.stdout == preview
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    _valid_after(path, key, points)
    assert json.loads(path.read_text())["other|1|v|t"] == [[150, 180.0]]


@pytest.mark.parametrize("plant", ["a FIFO", "a link to /dev/zero"])
def test_a_calibration_that_is_no_file_does_not_hang(
        plant: str, calibrated: tuple[Path, str, str, list[Any]]) -> None:
    cache, preview, key, points = calibrated
    path = cache / "calibration.json"
    PLANTS[plant](path)
    result = cli("preview", "breath", "--minutes", "5", env={"AUDIOGUIDE_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == preview
    assert len([line for line in result.stderr.splitlines() if "calibration" in line]) == 1
    assert "Traceback" not in result.stderr
    _valid_after(path, key, points)


# --- 17. the Kokoro voices folder --------------------------------------------------------


def _kokoro_voices(tmp_path: Path) -> Path:
    folder = tmp_path / "voices" / "kokoro"
    folder.mkdir(parents=True)
    return folder


def _bomb(path: Path, members: int, size: int) -> None:
    """An .npz whose members unpack to ``size`` bytes each (zeros: little once packed)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (size // 4,)})
    block = bytes(1 << 24)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(members):
            with archive.open(f"bomb{index}.npy", "w", force_zip64=True) as fh:
                fh.write(header.getvalue())
                left = size - len(header.getvalue())
                for _ in range(left // len(block)):
                    fh.write(block)
                fh.write(bytes(left % len(block)))


@pytest.mark.parametrize("plant", ["a FIFO", "a link to /dev/zero", "a folder"])
def test_a_voices_file_that_is_no_file_does_not_hang(plant: str, tmp_path: Path) -> None:
    folder = _kokoro_voices(tmp_path)
    for name in ("planted.bin", "planted.npz"):
        if plant == "a folder":
            (folder / name).mkdir()
        else:
            PLANTS[plant](folder / name)
    result = cli("voices", "--engine", "kokoro", env={"AUDIOGUIDE_VOICES": str(tmp_path /
                                                                              "voices")})
    assert result.returncode == 0, result.stderr
    assert "jf_alpha" in result.stdout
    assert "planted.bin" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("members", "size"), [(1, 1_100 << 20), (80, 7 << 20)])
def test_a_zip_bomb_voices_file_is_refused_before_it_is_unpacked(
        members: int, size: int, tmp_path: Path) -> None:
    folder = _kokoro_voices(tmp_path)
    _bomb(folder / "voices-v1.0.bin", members, size)
    assert (folder / "voices-v1.0.bin").stat().st_size < 4 << 20
    code = ("import sys; from audioguide.cli import cli\n"
            "try: cli(['voices', '--engine', 'kokoro'])\n"
            "except SystemExit: pass\n"
            # VmHWM: this process's own peak (ru_maxrss also counts the test process's
            # memory when it was forked, gigabytes late in a whole test run).
            "print([line for line in open('/proc/self/status') if line.startswith('VmHWM')]"
            "[0].split()[1], file=sys.stderr)")
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=HANG_S,
                              env={**os.environ, "AUDIOGUIDE_VOICES": str(tmp_path / "voices")})
    except subprocess.TimeoutExpired:
        pytest.fail("listing the voices hung")
    assert "jf_alpha" in done.stdout, done.stderr
    assert "voices-v1.0.bin" in done.stderr and "would unpack to" in done.stderr
    peak_kb = int(done.stderr.split()[-1])
    assert peak_kb < 600_000, peak_kb  # far below the bomb's size


def test_the_packaged_voices_still_pass_the_checks() -> None:
    found = kokoro_files.voice_files()
    assert {"jf_alpha", "jm_kumo"} <= set(found)


# --- 14. clear removes what it can and names the rest -------------------------------------


@contextlib.contextmanager
def immutable(paths: list[Path]) -> Iterator[bool]:
    """``paths`` marked immutable (even root cannot remove them) while inside; False when
    the file system cannot mark them."""
    done = []
    try:
        for path in paths:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
                yield False
                return
            done.append(path)
        yield True
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("what", ["two entries", "a whole entry folder"])
def test_clear_removes_what_it_can_and_names_the_rest(
        what: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    every = SpeechCache(cache).entries()
    stuck = every[:2] if what == "two entries" else [every[0].parent]
    kept = every[:2] if what == "two entries" else [p for p in every
                                                    if p.parent == every[0].parent]
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(cache))
    with immutable(stuck) as marked:
        if not marked:
            pytest.skip("this file system cannot mark files immutable")
        result = run("cache", "clear")
        again = cli("cache", "clear", env={"AUDIOGUIDE_CACHE": str(cache)})
    assert_refused(result, "cannot remove", str(cache), "Operation not permitted",
                   "cache clear' again")
    assert f"{len(kept)} entries" in result.output or "1 entry" in result.output
    assert f"removed {len(every) - len(kept)} entries" in result.output
    assert len(result.output.strip().splitlines()) <= 8  # one paragraph, wrapped
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "removed 0 entries" in again.stderr
    assert sorted(SpeechCache(cache).entries()) == sorted(kept)
    assert run("cache", "clear").exit_code == 0  # removable again: all gone
    assert SpeechCache(cache).entries() == []


def test_clear_passes_over_an_entry_that_cannot_be_read(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads everything, so another user's unreadable entry is played, not arranged.
    every = SpeechCache(cache).entries()
    real = os.open

    def refuse(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path) == str(every[3]):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(cache))
    result = run("cache", "clear")
    assert_refused(result, "cannot remove 1 entry", str(every[3]), "Permission denied")
    assert SpeechCache(cache).entries() == [every[3]]


def test_a_build_still_warns_once_for_a_cache_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("preview", "check-in", "--minutes", "2",
                 env={"AUDIOGUIDE_CACHE": str(blocker / "cache")})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cannot write the speech cache") == 1, result.stderr
    assert "not a folder" not in result.stderr
