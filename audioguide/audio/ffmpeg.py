"""ffmpeg as a subprocess: MP3 encoding, checked as it is written, and measurements.

Samples travel to ffmpeg as raw float32 on its standard input, block by block
as they are made, so neither a temporary WAV nor the whole session needs to
exist at once. The encoder's MP3 stream also goes to a decoder (mpg123, else
ffmpeg), whose samples are measured while the encoding goes on. The tools'
own messages go to temporary files and are quoted in the error if one fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from audioguide.audio.clips import Samples
from audioguide.errors import EncodeError, ToolMissingError

_BLOCK = 1 << 20  # samples per write


def executable(name: str = "ffmpeg") -> str:
    """Path of ``ffmpeg`` (or ``ffprobe``); :class:`ToolMissingError` says how to install it."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissingError(
            f"{name} is not installed (or not on PATH); audioguide needs it to measure and "
            "encode audio. On Debian or Ubuntu: 'sudo apt-get install ffmpeg'; on macOS: "
            "'brew install ffmpeg'; on Windows: 'winget install ffmpeg'."
        )
    return found


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (EBU R128) and true peak."""

    integrated_lufs: float
    true_peak_dbtp: float


#: Samples, whole or as consecutive blocks.
Audio = Samples | Iterable[Samples]


def _blocks(audio: Audio) -> Iterator[Samples]:
    if isinstance(audio, np.ndarray):
        for start in range(0, audio.size, _BLOCK):
            yield audio[start:start + _BLOCK]
    else:
        yield from audio


def _raw_input(sample_rate: int) -> list[str]:
    """ffmpeg reading f32le mono samples at ``sample_rate`` on its standard input."""
    return [executable(), "-hide_banner", "-nostats", "-f", "f32le", "-ar", str(sample_rate),
            "-ac", "1", "-i", "pipe:0"]


def _run_with_input(args: list[str], audio: Audio, sample_rate: int) -> str:
    """Run ffmpeg reading ``audio`` as f32le mono; return its stderr text."""
    command = [*_raw_input(sample_rate), *args]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=err)
        assert proc.stdin is not None
        try:
            for block in _blocks(audio):
                proc.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        err.seek(0)
        text = err.read().decode(errors="replace")
    _check(code, text, "ffmpeg failed")
    return text


def _check(code: int, stderr: str, what: str) -> None:
    """Raise :class:`EncodeError` quoting ffmpeg's last lines when it exited non-zero."""
    if code != 0:
        tail = " ".join(stderr.strip().splitlines()[-3:])
        raise EncodeError(f"{what} (exit {code}): {tail}")


def _measure_args(true_peak: bool) -> list[str]:
    peak = "true" if true_peak else "sample"
    return ["-af", f"ebur128=peak={peak}:framelog=verbose", "-f", "null", "-"]


def measure(audio: Audio, sample_rate: int, true_peak: bool = True) -> Loudness:
    """Integrated loudness and peak of ``audio``, by ffmpeg's ``ebur128`` filter (the
    reference that ``scripts/voice-check`` uses).

    Without ``true_peak`` the (cheaper) sample peak is reported instead.
    """
    return parse_ebur128(_run_with_input(_measure_args(true_peak), audio, sample_rate))


def parse_ebur128(text: str) -> Loudness:
    """Read the summary block that ffmpeg's ``ebur128`` filter prints at the end."""
    summary = text[text.rfind("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"(?:True|Sample) peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    if not (integrated and peak):
        raise EncodeError("ffmpeg's ebur128 summary could not be read.")
    return Loudness(float(integrated[1]), float(peak[1]))


def encode_mp3(audio: Audio, sample_rate: int, path: Path, bitrate_kbps: int,
               output_rate: int | None = None) -> Loudness:
    """Encode ``audio`` to a constant-bitrate MP3 with its gapless (LAME/Info) header, and
    return the file's loudness and true peak as decoded: what a listener's player plays.

    The encoder hands a copy of its MP3 stream to a decoder as it writes the file, and
    the decoded samples are measured (:mod:`~audioguide.audio.loudness`) while the
    encoding goes on, so checking the file costs no pass of its own. ``output_rate``
    other than ``sample_rate`` resamples with ffmpeg's SoX resampler.
    """
    from audioguide.audio.loudness import Meter, TruePeak

    rate = output_rate or sample_rate
    command = [*_raw_input(sample_rate),
               *_encode_args(sample_rate, path.name, bitrate_kbps, output_rate)]
    decode = _decoder(rate)
    meter = Meter(rate)
    peak = TruePeak()
    sent = 0

    def measure(samples: bytes) -> None:
        block = np.frombuffer(samples, dtype="<f4")
        meter.append(block)
        peak.add(block)

    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as derr:
        encoder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=err, cwd=path.parent)
        started = [encoder]
        reader = None
        try:
            assert encoder.stdin is not None and encoder.stdout is not None
            decoder = subprocess.Popen(decode, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=derr)
            started.append(decoder)
            for pipe in (encoder.stdin, encoder.stdout, decoder.stdin, decoder.stdout):
                _widen(pipe)
            # The stream goes to the decoder through this process, which takes its digest:
            # the file on disk is then checked to hold exactly what was measured.
            relay = _Relay(encoder, decoder)
            reader = _Reader(decoder, measure)
            try:
                for block in _blocks(audio):
                    encoder.stdin.write(np.ascontiguousarray(block, dtype="<f4").data)
                    sent += block.size
                encoder.stdin.close()
            except BrokenPipeError:
                pass
            code = encoder.wait()
            relay.join()
            reader.join()
            decoded = decoder.wait()
        except BaseException:
            for proc in started:
                proc.kill()
                proc.wait()
            if reader is not None:
                reader.join()
            raise
        # The decoder's failure first: the encoder then fails too, on the pipe it fed.
        if reader.error is not None:
            raise reader.error
        _check(decoded, _text(derr), f"{Path(decode[0]).name} could not decode {path.name} "
               "to check it")
        _check(code, _text(err), "ffmpeg failed")
    _check_written(path, relay)
    done = meter.end
    if done < sent * rate // sample_rate:
        raise EncodeError(f"{path.name} decodes to {done / rate:.2f} s of the "
                          f"{sent / sample_rate:.2f} s encoded; the encoder's output is broken.")
    meter.flush()
    return Loudness(round(meter.integrated(), 2), round(peak.dbtp(), 2))


def _decoder(rate: int) -> list[str]:
    """A command that decodes an MP3 stream on its standard input to f32le mono samples at
    ``rate`` on its standard output: mpg123 when it is installed (it needs a twentieth
    of ffmpeg's memory and half its time), else ffmpeg."""
    mpg123 = shutil.which("mpg123")
    if mpg123:
        return [mpg123, "--quiet", "--mono", "--encoding", "f32", "--rate", str(rate),
                "--stdout", "-"]
    return [executable(), "-hide_banner", "-nostats", "-f", "mp3", "-i", "pipe:0",
            "-f", "f32le", "-ac", "1", "-ar", str(rate), "pipe:1"]


#: Bytes a pipe between the processes holds (Linux allows up to 1 MB unprivileged): the
#: encoder, the decoder and the measuring do not wait on one another's every block.
PIPE_BYTES = 1 << 20


def _widen(pipe: IO[bytes] | None) -> None:
    """Make ``pipe`` hold :data:`PIPE_BYTES`, where the system allows it."""
    if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _text(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


class _Relay(threading.Thread):
    """Copies the encoder's MP3 stream to the decoder, counting its bytes and taking its
    SHA-256 on the way."""

    def __init__(self, encoder: subprocess.Popen[bytes],
                 decoder: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        import hashlib

        self.source, self.sink = encoder.stdout, decoder.stdin
        self.digest = hashlib.sha256()
        self.size = 0
        self.start()

    def run(self) -> None:
        assert self.source is not None and self.sink is not None
        try:
            while chunk := self.source.read1(_BLOCK):  # type: ignore[attr-defined]
                self.digest.update(chunk)
                self.size += len(chunk)
                self.sink.write(chunk)
        except (BrokenPipeError, ValueError, OSError):
            pass  # the decoder stopped: its own exit status says why
        finally:
            self.source.close()
            with contextlib.suppress(OSError):
                self.sink.close()


#: The most the file's gapless (LAME/Info) header frame, which only the file has, takes.
_HEADER_FRAME_MAX = 4096


def _check_written(path: Path, relay: _Relay) -> None:
    """Check that the MP3 ``path`` on disk ends with exactly the stream that was decoded and
    measured, after one header frame: ffmpeg's tee muxer goes on writing the stream when
    the file's writes fail (a full disk), and exits 0, so a short file would otherwise be
    published with the whole session's figures."""
    import hashlib

    try:
        size = path.stat().st_size
        extra = size - relay.size
        ok = 0 < extra <= _HEADER_FRAME_MAX
        if ok:
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                fh.seek(extra)
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            ok = digest.digest() == relay.digest.digest()
    except OSError as exc:
        raise EncodeError(f"{path.name} could not be read back after encoding: "
                          f"{exc.strerror or exc}.") from exc
    if not ok:
        raise EncodeError(
            f"{path.name} on disk is not the audio that was encoded and measured ({size} "
            f"bytes written of {relay.size} and its header): the disk may be full, or the "
            "folder may be failing. Free some space and build again; nothing was published.")


class _Reader(threading.Thread):
    """Reads a process's standard output in blocks and hands each to ``take``."""

    def __init__(self, proc: subprocess.Popen[bytes], take: Callable[[bytes], None]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.take = take
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        assert self.proc.stdout is not None
        pending = b""
        try:
            while chunk := self.proc.stdout.read(_BLOCK):
                pending += chunk
                whole = len(pending) - len(pending) % 4
                if whole:
                    self.take(pending[:whole])
                    pending = pending[whole:]
        except BaseException as exc:  # handed to the thread that waits for this one
            self.error = exc
            self.proc.kill()
        finally:
            self.proc.stdout.close()


def short_term_max(audio: Audio, sample_rate: int) -> float:
    """The loudest short-term (3 s window) loudness of ``audio``, in LUFS."""
    text = _run_with_input(["-af", "ebur128=framelog=info", "-f", "null", "-"], audio,
                           sample_rate)
    values = [float(v) for v in re.findall(r"S:\s*(-?[\d.]+)", text)]
    if not values:
        raise EncodeError("ffmpeg's ebur128 frame log could not be read.")
    return max(values)


def _encode_args(sample_rate: int, name: str, bitrate_kbps: int,
                 output_rate: int | None) -> list[str]:
    """Encode into the file ``name`` (in the working folder), and the same MP3 stream,
    without its header, to standard output (ffmpeg's tee muxer: one encoding, two
    outputs)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"not a plain file name: {name!r}")
    rate = output_rate or sample_rate
    resample = ["-af", "aresample=resampler=soxr"] if rate != sample_rate else []
    mp3 = "f=mp3:id3v2_version=0:write_id3v1=0"
    return [
        *resample, "-map", "0:a", "-c:a", "libmp3lame", "-b:a", f"{bitrate_kbps}k",
        "-ar", str(rate), "-map_metadata", "-1", "-y", "-f", "tee",
        f"[{mp3}:write_xing=1]file:{name}|[{mp3}:write_xing=0]pipe:1",
    ]
