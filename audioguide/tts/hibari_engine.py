"""The hibari engine: a natural English voice in the package itself, fast on any CPU.

hibari (``hibari-tts``, Apache-2.0) is a small acoustic model distilled from
Kokoro-82M, one 7.9 MB ONNX file per voice, with its own English phonemizer
(misaki's lexicons and rules, no espeak-ng). It is installed with audioguide.
The voice ``heart`` (American English, female; Kokoro's af_heart) is inside the
package; ``emma``, ``fable`` (British), ``fenrir`` and ``kore`` are one
download each, fetched on first use into the voices folder's ``hibari/``
subfolder (within a bounded time, checked against the SHA-256 hibari pins).
A voice hibari itself has already fetched (into ``$HIBARI_HOME``) is used from
there.

The engine's setting is hibari's speed times 100; the speaking rate is reached
through the measured calibration, as for every engine. A phrase is read
sentence by sentence, with a short silence between sentences, and a sentence
longer than the model takes at once is split at its commas, semicolons and
dashes with a shorter one; the noise part of the voice is seeded, so the same
phrase always sounds the same.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from audioguide.errors import EngineError, RequestError
from audioguide.paths import voices_dir
from audioguide.tts import Progress, Voice, model_hash, wav_bytes

log = logging.getLogger(__name__)

LICENCE = "Apache-2.0 (hibari, distilled from Kokoro-82M)"
DEFAULT = "heart"
#: Where voices not in the package are fetched from (hibari's own host), unless
#: ``$AUDIOGUIDE_HIBARI_URL`` names a mirror holding the same files.
VOICES_URL = "https://huggingface.co/maureesewilliams/hibari/resolve/main/voices/"
#: Silence between the sentences of one phrase, and between the parts of a sentence too
#: long for the model at once (split at clause punctuation, so a comma's pause). The model
#: leaves about 0.3 s of silence before each part and 0.5 s after it; that is trimmed to
#: :data:`EDGE_S` first, so these are the pauses heard.
SENTENCE_GAP_S = 0.45
CLAUSE_GAP_S = 0.2
#: Silence kept at each end of a part, and the level (re its loudest 10 ms) below which
#: the end of a part is silence.
EDGE_S = 0.04
EDGE_DB = -50.0
#: The noise component's seed: one phrase, one sound (the speech cache relies on it).
SEED = 0
#: A gentle high shelf on the voice: hibari's plosives and sibilants carry bursts of
#: 4-12 kHz some 20 dB above the rest of the voice, which MP3 encoding turns into peaks
#: 2-3 dB higher than they were (a finished session then measured -1.0 dBTP against the
#: -1.5 ceiling, and needed two more encodes to come under it). Above SHELF_HZ the voice
#: is SHELF_DB quieter.
SHELF_DB = -4.0
SHELF_HZ = 7000.0
SHELF_TAPS = 63
#: Phrases rendered at once, at most (each holds a few MB of spectra while it is made).
MOST_THREADS = 8
#: Below this peak, a rendered phrase is taken for silence (an engine never returns
#: silence in place of speech).
SILENT_PEAK = 1e-3


def available() -> bool:
    """Whether hibari and the runtime it needs can be imported here."""
    try:
        import hibari  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _registry() -> dict[str, dict[str, Any]]:
    from hibari.voices import VOICES

    return dict(VOICES)


def hibari_dir() -> Path:
    """Where downloaded hibari voices live."""
    return voices_dir() / "hibari"


def voice_file(name: str) -> Path | None:
    """The model file of voice ``name`` when it is on this machine (in the package, the
    voices folder or hibari's own cache), else None."""
    from hibari.voices import ASSETS, cache_dir

    file = str(_registry()[name]["file"])
    if _registry()[name].get("bundled"):
        bundled = Path(ASSETS) / file
        return bundled if bundled.is_file() else None
    for folder in (hibari_dir(), Path(cache_dir())):
        if (folder / file).is_file():
            return folder / file
    return None


def english_voice_installed() -> str | None:
    """The voice ``--engine auto`` would speak with (every hibari voice is English)."""
    return DEFAULT if voice_file(DEFAULT) is not None else None


class HibariEngine:
    """hibari behind the :class:`~audioguide.tts.Engine` interface."""

    name = "hibari"
    #: hibari's speed, times 100: 100 is the teacher voice's own pace, about 190 words a
    #: minute in guided-practice lines, so guidance (120, slow 100, --rate down to 80) needs
    #: 0.3 to 0.6, below the 0.5 hibari's documentation names; the model takes it.
    first_setting = 100
    setting_range = (30, 200)
    #: Two measurements of the bundled voice (setting, words per minute over the
    #: calibration lines), from which the first setting to measure is predicted (every
    #: hibari voice keeps its teacher's pace, near enough).
    typical = ((50, 103.59), (70, 144.17))
    #: The model's pace moves in a step between speeds 0.57 and 0.58 (113 and 123 words a
    #: minute over the calibration lines: its durations jump by 8 %), so no setting
    #: speaks 120 within the usual 2 %; 3 % takes the nearer one at the first measurement.
    rate_tolerance = 0.03

    def __init__(self) -> None:
        if not available():
            raise RequestError("--engine", "the hibari engine is not installed; install it "
                               "with: pip install hibari-tts")

    def version(self) -> str:
        """hibari's and onnxruntime's versions, and this engine's own settings (gaps, edges,
        shelf, seed): a new one is a new sound."""
        return (f"hibari-tts {metadata.version('hibari-tts')}, onnxruntime "
                f"{metadata.version('onnxruntime')}; gaps {SENTENCE_GAP_S:g}/{CLAUSE_GAP_S:g} s,"
                f" edges {EDGE_S:g} s at {EDGE_DB:g} dB, shelf {SHELF_DB:g} dB at "
                f"{SHELF_HZ:g} Hz, seed {SEED}")

    def voices(self) -> list[Voice]:
        """Every hibari voice, with accent, gender, licence and where it is."""
        found = []
        for name, entry in _registry().items():
            where = ("in the package" if entry.get("bundled") else "downloaded"
                     if voice_file(name) else
                     f"downloaded on first use, {entry['bytes'] / 1e6:.1f} MB")
            found.append(Voice(id=name, name=f"{entry['gender']} · {entry['accent']} · "
                               f"Kokoro {entry['kokoro']} · {LICENCE} · {where}",
                               languages=(entry["language"],), gender=entry["gender"]))
        return found

    def default_voice(self) -> str:
        """heart, the voice in the package."""
        return DEFAULT

    def resolve(self, wanted: str) -> str:
        """A voice name (any case) as a voice id; a voice not on this machine is downloaded
        now (or refused, saying how to get it)."""
        registry = _registry()
        name = wanted.strip().lower()
        if name not in registry:
            listed = ", ".join(f"{n} ({e['accent']} {e['gender']})" for n, e in registry.items())
            raise RequestError("--voice", f"hibari has no voice {wanted!r}; its voices are "
                               f"{listed}.")
        if voice_file(name) is None:
            download(name)
        return name

    def credit(self, voice: str) -> str:
        """The voice and its licence, for the tags."""
        teacher = _registry()[voice]["kokoro"]
        return f"the hibari voice {voice} (distilled from Kokoro-82M's {teacher}; Apache-2.0)"

    def voice_key(self, voice: str) -> str:
        """The voice id plus a hash of its model, so a changed model is never mistaken."""
        return f"{voice}@{model_hash(self._path(voice))}"

    def _path(self, voice: str) -> Path:
        path = voice_file(voice)
        if path is None:
            raise RequestError("--voice", f"the hibari voice {voice!r} is not on this machine; "
                               f"'audioguide voices --download hibari:{voice}' fetches it.")
        return path

    def synthesize(self, texts: Sequence[str], voice: str, rate: int,
                   progress: Progress | None = None) -> list[bytes]:
        """Render each phrase to 24 kHz WAV bytes, in order: several phrases at once, one
        per core, through one model (onnxruntime and numpy let go of the interpreter)."""
        if not texts:
            return []
        model = _load(voice, self._path(voice))
        speed = min(max(rate, self.setting_range[0]), self.setting_range[1]) / 100

        def render(text: str) -> bytes:
            try:
                samples = _speak(model, text, speed)
            except Exception as exc:
                raise EngineError(f"hibari failed on the phrase {text!r}: {_said(exc)}. No "
                                  "audio was written; a phrase is never replaced by "
                                  "silence.") from exc
            if samples.size == 0 or not np.abs(samples).max() > SILENT_PEAK:
                raise EngineError(f"hibari produced no audio for the phrase {text!r}; reword "
                                  "it with words to say, or choose another engine.")
            return wav_bytes(samples, int(model.sample_rate))

        out = []
        with cf.ThreadPoolExecutor(_threads()) as pool:
            try:
                for done, data in enumerate(pool.map(render, texts), start=1):
                    out.append(data)
                    if progress is not None:
                        progress(done)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return out


def _threads() -> int:
    """Phrases rendered at once: ``$AUDIOGUIDE_THREADS``, else one per core."""
    wanted = os.environ.get("AUDIOGUIDE_THREADS")
    if wanted and wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:  # the cores this process may run on, not the machine's
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MOST_THREADS))


def _speak(model: Any, text: str, speed: float) -> npt.NDArray[np.float32]:
    """``text`` read sentence by sentence (and a long sentence clause by clause), with
    silences between them."""
    from hibari.tts import MAX_PHONEMES

    rng = np.random.default_rng(SEED)
    rate = int(model.sample_rate)
    pieces: list[npt.NDArray[np.float32]] = []
    for sentence in model.split_sentences(text):
        phonemes = model.g2p(sentence)
        if not phonemes:
            continue
        parts = _clauses(phonemes, MAX_PHONEMES)
        for i, part in enumerate(parts):
            audio = _trimmed(np.asarray(model.from_ids(model.ids(part), speed, rng),
                                        dtype=np.float32), rate)
            if audio.size == 0:
                continue
            if pieces:
                gap = SENTENCE_GAP_S if i == 0 else CLAUSE_GAP_S
                pieces.append(np.zeros(round(gap * rate), dtype=np.float32))
            pieces.append(audio)
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    whole = np.concatenate(pieces)
    return np.convolve(whole, _shelf(rate), mode="same").astype(np.float32)


@cache
def _shelf(rate: int) -> npt.NDArray[np.float32]:
    """A linear-phase FIR high shelf: unity below about ``SHELF_HZ`` minus 1 kHz,
    :data:`SHELF_DB` above about ``SHELF_HZ`` plus 1 kHz (frequency sampling, Hann window)."""
    n = 1024
    freqs = np.fft.rfftfreq(n, 1 / rate)
    ramp = np.clip((freqs - (SHELF_HZ - 1000)) / 2000, 0, 1)
    gain = 10 ** (SHELF_DB * (0.5 - 0.5 * np.cos(np.pi * ramp)) / 20)
    impulse = np.roll(np.fft.irfft(gain, n), SHELF_TAPS // 2)[:SHELF_TAPS]
    return (impulse * np.hanning(SHELF_TAPS + 2)[1:-1]).astype(np.float32)


def _said(exc: BaseException) -> str:
    """An error's own words on one line, at most 300 characters (onnxruntime's run long)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _trimmed(audio: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    """``audio`` without the silence before and after its sound (but :data:`EDGE_S`)."""
    n = rate // 100
    frames = audio[: audio.size // n * n].reshape(-1, n)
    if frames.size == 0:
        return audio
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    loud = np.flatnonzero(power > power.max() * 10 ** (EDGE_DB / 10))
    if loud.size == 0:
        return audio[:0]
    edge = round(EDGE_S * rate)
    return audio[max(0, loud[0] * n - edge):min(audio.size, (loud[-1] + 1) * n + edge)]


def _clauses(phonemes: str, most: int) -> list[str]:
    """``phonemes`` in parts of at most ``most`` characters where it can be, cut after
    clause punctuation (as hibari cuts them)."""
    import re

    if len(phonemes) <= most:
        return [phonemes]
    parts: list[str] = []
    current = ""
    for piece in re.split(r"(?<=[,;:—])\s+", phonemes):
        if current and len(current) + len(piece) + 1 > most:
            parts.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        parts.append(current)
    return parts


@cache
def _load(voice: str, path: Path) -> Any:
    """One model per voice and process, each run on one onnxruntime thread (phrases are
    rendered side by side instead) without onnxruntime's memory arena (it kept the largest
    phrase's buffers for good), its phonemizer loaded before any thread needs it, and the
    memory its loading used and let go given back to the system."""
    import onnxruntime as ort
    from hibari import Hibari

    from audioguide.memory import release

    try:
        model = Hibari(voice=voice, model=str(path), threads=1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        model.sess = ort.InferenceSession(str(path), options,
                                          providers=["CPUExecutionProvider"])
        model.g2p("Ready.")
    except Exception as exc:
        raise EngineError(f"hibari could not load the voice model {path}: {_said(exc)}. The "
                          "file may be damaged; remove it and let it download again, or "
                          "reinstall hibari-tts.") from None
    release()
    return model


# --- downloading ---------------------------------------------------------------------------

#: Called with (bytes so far, bytes in all).
Fetching = Callable[[int, int], None]


def download(name: str, fetching: Fetching | None = None) -> Path:
    """Fetch voice ``name`` into the voices folder (bounded in size and time, checked
    against hibari's pinned SHA-256, installed atomically); its path."""
    from audioguide.tts import http_fetch
    from audioguide.tts.kokoro_files import _install

    entry = _registry()[name]
    target: Path = hibari_dir() / str(entry["file"])
    base = os.environ.get("AUDIOGUIDE_HIBARI_URL") or VOICES_URL
    url = base.rstrip("/") + "/" + entry["file"]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{entry['file']}-",
                                   suffix=".part")
    except OSError as exc:
        raise EngineError(f"Cannot write the hibari voice {name!r} into the voices folder "
                          f"{target.parent} ({exc.strerror or exc}). Set AUDIOGUIDE_VOICES to "
                          "a folder you can write to.") from None
    log.info("downloading the hibari voice %s from %s", name, url)
    try:
        with os.fdopen(fd, "w+b") as out:
            try:
                got = http_fetch.fetch(url, out, int(entry["bytes"]), None if fetching is None
                                       else lambda done: fetching(done, int(entry["bytes"])))
            except (http_fetch.FetchError, ValueError) as exc:
                raise EngineError(
                    f"The hibari voice {name!r} is not on this machine, and downloading it from "
                    f"{url} failed: {exc or 'not an http(s) address'}. Choose a voice that is "
                    f"here ('{DEFAULT}' is in the package), try again with a connection, set "
                    "AUDIOGUIDE_HIBARI_URL to a mirror of hibari's voices folder, or copy "
                    f"{entry['file']} into {target.parent} yourself.") from None
            out.flush()
            out.seek(0)
            digest = hashlib.sha256()
            while block := out.read(1 << 20):
                digest.update(block)
            if digest.hexdigest() != entry["sha256"]:
                raise EngineError(f"The download of the hibari voice {name!r} from {url} is not "
                                  f"the published file ({got} bytes with SHA-256 "
                                  f"{digest.hexdigest()[:16]}…, expected {entry['bytes']} bytes "
                                  f"with {entry['sha256'][:16]}…); it was discarded.")
        _install(Path(tmp), target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
