"""ffmpeg as a subprocess: loudness measurement and MP3 encoding.

Samples travel to ffmpeg as raw float32 on its standard input, block by block
as they are made, so neither a temporary WAV nor the whole session needs to
exist at once. ffmpeg's own messages go to a temporary file and are quoted in
the error if it fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

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
    """EBU R128 figures as ffmpeg's ``ebur128`` filter reports them."""

    integrated_lufs: float
    true_peak_dbtp: float
    range_lu: float


#: Samples, whole or as consecutive blocks.
Audio = Samples | Iterable[Samples]


def _blocks(audio: Audio) -> Iterator[Samples]:
    if isinstance(audio, np.ndarray):
        for start in range(0, audio.size, _BLOCK):
            yield audio[start:start + _BLOCK]
    else:
        yield from audio


def _run_with_input(args: list[str], audio: Audio, sample_rate: int) -> str:
    """Run ffmpeg reading ``audio`` as f32le mono; return its stderr text."""
    command = [
        executable(), "-hide_banner", "-nostats",
        "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", *args,
    ]
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
    """Integrated loudness, peak and loudness range of ``audio``.

    Without ``true_peak`` the (cheaper) sample peak is reported instead.
    """
    return parse_ebur128(_run_with_input(_measure_args(true_peak), audio, sample_rate))


def parse_ebur128(text: str) -> Loudness:
    """Read the summary block that ffmpeg's ``ebur128`` filter prints at the end."""
    summary = text[text.rfind("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"(?:True|Sample) peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    lra = re.search(r"LRA:\s+(-?[\d.]+) LU", summary)
    if not (integrated and peak and lra):
        raise EncodeError("ffmpeg's ebur128 summary could not be read.")
    return Loudness(float(integrated[1]), float(peak[1]), float(lra[1]))


def encode_mp3(audio: Audio, sample_rate: int, path: Path, bitrate_kbps: int,
               output_rate: int | None = None) -> None:
    """Encode ``samples`` to a constant-bitrate MP3 with its gapless (LAME/Info) header.

    ``output_rate`` other than ``sample_rate`` resamples with ffmpeg's SoX resampler.
    """
    _run_with_input(_encode_args(sample_rate, path, bitrate_kbps, output_rate), audio,
                    sample_rate)


def short_term_max(audio: Audio, sample_rate: int) -> float:
    """The loudest short-term (3 s window) loudness of ``audio``, in LUFS."""
    text = _run_with_input(["-af", "ebur128=framelog=info", "-f", "null", "-"], audio,
                           sample_rate)
    values = [float(v) for v in re.findall(r"S:\s*(-?[\d.]+)", text)]
    if not values:
        raise EncodeError("ffmpeg's ebur128 frame log could not be read.")
    return max(values)


#: Samples quieter than this (dBFS) cannot hide a true peak near the ceiling.
_TRUE_PEAK_FLOOR_DB = -6.0
_OVERSAMPLE = 4


def measure_file(path: Path) -> Loudness:
    """Loudness and true peak of an audio file as decoded: what a listener's player plays.

    One ffmpeg decodes the file once, measures its loudness and hands the
    samples on for the true peak, which is found by 4x oversampling only
    around the samples within 6 dB of full scale (the rest cannot come near
    the ceiling), the same oversampling ffmpeg's own true-peak meter does over
    everything.
    """
    from audioguide.audio.clips import resample

    command = [executable(), "-hide_banner", "-nostats", "-i", str(path), "-filter_complex",
               "[0:a]asplit=2[m][s];[m]ebur128=peak=sample:framelog=verbose[x]",
               "-map", "[x]", "-f", "null", "-", "-map", "[s]", "-f", "f32le", "-ac", "1", "-"]
    with tempfile.TemporaryFile() as err:
        decoder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        assert decoder.stdout is not None
        floor = 10 ** (_TRUE_PEAK_FLOOR_DB / 20)
        peak = 0.0
        tail = np.zeros(0, dtype=np.float32)
        while chunk := decoder.stdout.read(_BLOCK * 4):
            x = np.concatenate((tail, np.frombuffer(chunk, dtype="<f4")))
            near = np.flatnonzero(np.abs(x[:-64]) > floor) if x.size > 64 else np.zeros(0, int)
            for start in np.unique(near // 256):
                lo = max(0, int(start) * 256 - 64)
                region = resample(x[lo:lo + 256 + 128], 1, _OVERSAMPLE)
                peak = max(peak, float(np.abs(region).max()))
            peak = max(peak, float(np.abs(x).max(initial=0.0)))
            tail = x[-128:]
        code = decoder.wait()
        err.seek(0)
        text = err.read().decode(errors="replace")
    _check(code, text, f"ffmpeg could not measure {path.name}")
    found = parse_ebur128(text)
    true_peak = 20 * np.log10(peak) if peak > 0 else float("-inf")
    return Loudness(found.integrated_lufs, round(float(true_peak), 2), found.range_lu)


def _encode_args(sample_rate: int, path: Path, bitrate_kbps: int,
                 output_rate: int | None) -> list[str]:
    rate = output_rate or sample_rate
    resample = ["-af", "aresample=resampler=soxr"] if rate != sample_rate else []
    return [
        *resample, "-c:a", "libmp3lame", "-b:a", f"{bitrate_kbps}k", "-ar", str(rate),
        "-write_xing", "1", "-id3v2_version", "0", "-write_id3v1", "0",
        "-map_metadata", "-1", "-y", "-f", "mp3", str(path),
    ]
