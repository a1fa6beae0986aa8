"""The pyttsx3 engine (espeak-ng on Linux, NSSpeechSynthesizer on macOS, SAPI5 on Windows).

pyttsx3 2.99 has traps that this module works around (see the project guide):

* ``runAndWait()`` returns before the file is written: each phrase waits for
  the ``finished-utterance`` event, then the file is checked.
* One ``save_to_file`` per ``runAndWait``; a batch of saves keeps only the last.
* Changing rate or voice between saves in one process is not reliably applied
  with espeak-ng (the previous rate is often used). So every batch runs in
  fresh worker processes whose voice and rate are set once, before the first
  phrase, and never changed.
* Forking after the engine is initialised hangs: workers are fresh interpreters.
* Voice and rate queued through ``setProperty`` are applied while the driver
  may cancel them (see ``_Speaker``): on Linux they are set on the driver
  directly and espeak-ng is left to become idle before the first phrase.
* espeak-ng still reports itself "playing" for a moment after the event; a
  save started then is cancelled by the driver's own ``endLoop`` (the next
  phrase ends with ``completed=False``). Each phrase waits until espeak-ng is
  idle before returning.
* The espeak driver prints "Audio saved to ..." on stdout: workers send their
  stdout to /dev/null, so the CLI's own output stays clean.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import math
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from functools import cache
from importlib.metadata import version as package_version
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import NamedTuple

from audioguide import interpreter
from audioguide.errors import EngineError, ToolMissingError
from audioguide.publish import Staging, sweep
from audioguide.tts import Progress, Voice

#: Seconds a phrase may take before the engine is considered stuck.
PHRASE_TIMEOUT_S = 30.0
#: Fewest phrases worth starting a second worker process for.
PHRASES_PER_WORKER = 6

_INSTALL_HINT = (
    "On Debian or Ubuntu: 'sudo apt-get install espeak-ng'; on Fedora: "
    "'sudo dnf install espeak-ng'; on Arch: 'sudo pacman -S espeak-ng'."
)


def _driver_name() -> str:
    if sys.platform == "darwin":
        return "nsss"
    if sys.platform == "win32":
        return "sapi5"
    return "espeak"


def require_espeak() -> None:
    """Raise :class:`ToolMissingError` when pyttsx3's Linux engine library is missing."""
    if _driver_name() == "espeak" and find_espeak_library() is None:
        raise ToolMissingError(
            "espeak-ng is not installed, and pyttsx3 needs it to speak on Linux. "
            + _INSTALL_HINT
        )


def find_espeak_library() -> str | None:
    """The espeak-ng (or espeak) shared library pyttsx3 would load, if any."""
    return ctypes.util.find_library("espeak-ng") or ctypes.util.find_library("espeak")


class Pyttsx3Engine:
    """pyttsx3 behind the :class:`~audioguide.tts.Engine` interface."""

    name = "pyttsx3"
    #: Two measurements of espeak-ng's default voice (rate, words per minute over the
    #: calibration lines), from which the first rate to measure is predicted.
    typical = ((108, 118.7), (150, 166.3))

    def version(self) -> str:
        """pyttsx3's version, plus espeak-ng's on Linux (both change the sound)."""
        return f"pyttsx3 {package_version('pyttsx3')}; {_backend_version()}"

    def credit(self, voice: str) -> str:
        """The voice and its engine's licence, for the tags."""
        if _driver_name() == "espeak":
            return f"the espeak-ng voice {voice} (espeak-ng, GPL-3.0)"
        return f"the system voice {voice} ({_driver_name()} through pyttsx3)"

    def voices(self) -> list[Voice]:
        """The voices the platform engine offers."""
        return list(_voices())

    def default_voice(self) -> str:
        """espeak-ng's American English voice on Linux; the system default elsewhere."""
        if _driver_name() == "espeak":
            return "gmw/en-us"
        voices = self.voices()
        if not voices:
            raise EngineError("The speech engine lists no voices.")
        return voices[0].id

    def synthesize(
        self, texts: Sequence[str], voice: str, rate: int, progress: Progress | None = None
    ) -> list[bytes]:
        """Render every phrase in worker processes; each returns the engine's file bytes."""
        if not texts:
            return []
        require_espeak()
        count = max(1, min(os.cpu_count() or 1, math.ceil(len(texts) / PHRASES_PER_WORKER)))
        jobs = [list(enumerate(texts))[k::count] for k in range(count)]
        root = scratch_root()
        sweep(root)  # scratch of runs that were killed
        out: list[bytes | None] = [None] * len(texts)
        with Staging(root) as scratch:
            workers: list[_Worker] = []
            try:
                for number, job in enumerate(jobs):
                    workers.append(_start_worker(voice, rate, scratch.dir, number))
                    try:
                        workers[-1].conn.send(job)
                    except OSError:
                        raise _stopped(workers[-1]) from None
                _collect(texts, workers, out, progress)
            finally:
                for worker in workers:
                    worker.conn.close()
                    if worker.proc.poll() is None:
                        worker.proc.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        worker.proc.wait(timeout=5)
                    if worker.proc.poll() is None:
                        worker.proc.kill()
                        worker.proc.wait()
        return [b for b in out if b is not None]


class _Worker(NamedTuple):
    """A speech worker process and its end of the socket."""

    proc: subprocess.Popen[bytes]
    conn: Connection
    #: What it wrote before it began to serve (why it failed to start, if it did).
    log: Path


def _start_worker(voice: str, rate: int, scratch: Path, number: int) -> _Worker:
    """A speech worker: a fresh, isolated interpreter (not a multiprocessing child, which
    would keep multiprocessing's resource tracker, 12 MB, alive for the rest of the
    build) that answers on a socket."""
    log = scratch / f"worker-{number}.log"
    with log.open("wb") as err:
        proc, conn = interpreter.start("audioguide.tts.pyttsx3_engine:serve",
                                       [voice, str(rate), str(scratch)], stderr=err)
    return _Worker(proc, conn, log)


def _stopped(worker: _Worker) -> EngineError:
    """The error for a worker that hung up: it has exited, or is made to."""
    try:
        code = worker.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        worker.proc.kill()
        code = worker.proc.wait()
    said = ""
    with contextlib.suppress(OSError):
        lines = worker.log.read_text(errors="replace").strip().splitlines()
        said = f": {lines[-1][:300]}" if lines else ""
    return EngineError(f"The speech engine stopped answering (a worker exited with code "
                       f"{code}{said}). No audio was written.")


def _collect(
    texts: Sequence[str],
    workers: list[_Worker],
    out: list[bytes | None],
    progress: Progress | None,
) -> None:
    waiting = {worker.conn: worker for worker in workers}
    done = 0
    while waiting:
        ready = wait(list(waiting), timeout=PHRASE_TIMEOUT_S + 30)
        if not ready:
            raise EngineError("The speech engine stopped answering. No audio was written.")
        for conn in ready:
            assert isinstance(conn, Connection)
            try:
                kind, index, payload = conn.recv()
            except (EOFError, OSError):
                raise _stopped(waiting[conn]) from None
            if kind == "done":
                del waiting[conn]
            elif kind == "clip":
                out[index] = payload
                done += 1
                if progress is not None:
                    progress(done)
            else:
                room = (f" It writes each phrase to {scratch_root()} first: check that that "
                        "disk has room (and that no file size limit is set)."
                        if "Error saving WAV file" in str(payload) else "")
                raise EngineError(
                    f"The speech engine failed on the phrase {texts[index]!r}: {payload}."
                    f"{room} No audio was written; a phrase is never replaced by silence."
                )


def scratch_root() -> Path:
    """This user's folder for the workers' WAV files: one private folder per batch inside
    it, locked while the batch runs, so the next run removes what a killed one left."""
    root = Path(tempfile.gettempdir()) / f"audioguide-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or (
            info.st_uid != os.getuid()):
        raise EngineError(f"{root} is not a folder of yours; audioguide keeps its speech "
                          "workers' files there. Remove it, then try again.")
    return root


def serve(fd: int, voice: str, rate: str, scratch: str) -> None:
    """A speech worker's life: take its phrases from the socket ``fd``, render them with
    voice and rate fixed from the start, and send back each file's bytes, then "done"."""
    conn = Connection(fd)
    # The driver prints on stdout, and its thread's tracebacks on stderr; a failure reaches
    # the parent on the socket and is reported there, once, as an EngineError.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - lives as long as the worker
    sys.stderr = sys.stdout
    job: list[tuple[int, str]] = conn.recv()
    index = job[0][0] if job else -1
    try:
        speaker = _Speaker(voice, int(rate))
        for index, text in job:
            conn.send(("clip", index, speaker.render(text, Path(scratch) / f"{index}.wav")))
    except Exception as exc:  # reported to the parent, which raises EngineError
        conn.send(("error", index, f"{type(exc).__name__}: {exc}"))
    conn.send(("done", -1, None))


class _Speaker:
    """One pyttsx3 engine in this process, voice and rate set once."""

    def __init__(self, voice: str, rate: int) -> None:
        import pyttsx3

        self._engine = pyttsx3.init(_driver_name())
        self._finished = threading.Event()
        self._completed = False
        self._errors: list[BaseException] = []
        self._engine.connect("finished-utterance", self._on_finished)
        self._engine.connect("error", self._on_error)
        # The espeak driver writes each WAV in its ctypes callback, where an error (a full
        # disk: "Error saving WAV file: [Errno 28]") is only printed, and the phrase's
        # event never comes: taken as the phrase's error, at once, not after the timeout.
        sys.unraisablehook = self._on_unraisable
        self._is_playing: Callable[[], int] | None = None
        if _driver_name() == "espeak":
            from pyttsx3.drivers import _espeak

            self._is_playing = _espeak.IsPlaying
            # Queued properties are applied at the start of the first runAndWait,
            # while the driver's endLoop checks IsPlaying: espeak-ng is still busy
            # with the voice change then, so the driver cancels it (the property is
            # lost) and leaves a stop flag that aborts the next phrase. Applying
            # them straight to the driver, then waiting for idle, avoids both.
            driver = self._engine.proxy._driver
            driver.setProperty("voice", voice)
            driver.setProperty("rate", rate)
            driver.setProperty("volume", 1.0)
            self._wait_idle()
        else:
            self._engine.setProperty("voice", voice)
            self._engine.setProperty("rate", rate)
            self._engine.setProperty("volume", 1.0)

    def _wait_idle(self) -> None:
        if self._is_playing is None:
            return
        deadline = time.monotonic() + PHRASE_TIMEOUT_S
        while self._is_playing():
            if time.monotonic() > deadline:
                raise RuntimeError("espeak-ng did not become idle after the phrase")
            time.sleep(0.001)

    def _on_finished(self, name: str | None, completed: bool) -> None:
        self._completed = completed
        self._finished.set()

    def _on_error(self, name: str | None, exception: BaseException) -> None:
        self._errors.append(exception)
        self._finished.set()

    def _on_unraisable(self, unraisable: sys.UnraisableHookArgs) -> None:
        if "callback" not in (unraisable.err_msg or "") or unraisable.exc_value is None:
            sys.__unraisablehook__(unraisable)
            return
        self._on_error(None, unraisable.exc_value)
        # The driver raised before ending its loop: end it, or runAndWait never returns.
        driver = getattr(self._engine.proxy, "_driver", None)
        if driver is not None and hasattr(driver, "endLoop"):
            driver._speaking = False
            driver._data_buffer = b""
            self._engine.proxy.setBusy(False)
            driver.endLoop()

    def render(self, text: str, path: Path) -> bytes:
        """Speak ``text`` into ``path`` and return the file's bytes, checked."""
        self._finished.clear()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._engine.save_to_file(text, str(path))
        self._engine.runAndWait()
        if not self._finished.wait(PHRASE_TIMEOUT_S + len(text) * 0.05):
            raise RuntimeError(f"no finished-utterance event within {PHRASE_TIMEOUT_S:g} s")
        if self._errors:
            raise self._errors.pop()
        if not self._completed:
            raise RuntimeError("the engine reported the utterance as not completed")
        self._wait_idle()
        data = path.read_bytes() if path.exists() else b""
        _check_audio_file(data, path)
        return data


def _check_audio_file(data: bytes, path: Path) -> None:
    """Fail unless ``data`` holds some audio (a WAV is parsed; other formats are sized)."""
    if len(data) <= 64:
        raise RuntimeError(f"the engine wrote no audio to {path.name}")
    if data[:4] == b"RIFF":
        with wave.open(str(path), "rb") as wav:
            frames = wav.getnframes()
            expected = frames * wav.getsampwidth() * wav.getnchannels()
            body = len(wav.readframes(frames))
        if frames == 0 or body != expected:
            raise RuntimeError(f"the engine wrote an empty or truncated WAV ({frames} frames)")


@cache
def _voices() -> tuple[Voice, ...]:
    require_espeak()
    import pyttsx3

    engine = pyttsx3.init(_driver_name())
    found = []
    for v in engine.getProperty("voices"):
        languages = tuple(
            lang.decode(errors="ignore") if isinstance(lang, bytes) else str(lang)
            for lang in (v.languages or [])
        )
        found.append(Voice(id=str(v.id), name=str(v.name), languages=languages, gender=v.gender))
    return tuple(sorted(found, key=lambda v: v.id))


@cache
def _backend_version() -> str:
    if _driver_name() != "espeak":
        return sys.platform
    library = find_espeak_library()
    if library is None:
        return "espeak-ng missing"
    lib = ctypes.CDLL(library)
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    raw: bytes = lib.espeak_Info(None)
    return f"espeak-ng {raw.decode()}"
