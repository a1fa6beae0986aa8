"""Speech engines behind one narrow interface, and the table that names them.

An engine lists its voices and turns a batch of phrases, all in one voice and
rate, into one audio file's bytes per phrase (any format pydub/ffmpeg reads).
A phrase that fails raises :class:`~audioguide.errors.EngineError`; an engine
never returns silence in place of speech. Adding an engine means one new
module and one entry in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from audioguide.errors import RequestError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Called with the number of phrases finished so far.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Voice:
    """A voice an engine offers; ``id`` is what ``--voice`` takes."""

    id: str
    name: str
    languages: tuple[str, ...]
    gender: str | None = None


class Engine(Protocol):
    """What the session needs from a text-to-speech engine."""

    name: str

    def version(self) -> str:
        """A string that changes whenever the same text could sound different."""
        ...

    def voices(self) -> list[Voice]:
        """The voices installed for this engine."""
        ...

    def default_voice(self) -> str:
        """The voice used when none is asked for."""
        ...

    def synthesize(
        self, texts: Sequence[str], voice: str, rate: int, progress: Progress | None = None
    ) -> list[bytes]:
        """Render every phrase; return one audio file's bytes per phrase, in order."""
        ...


#: Engine name -> "module:class". The module is imported only when used.
ENGINES: dict[str, str] = {
    "hibari": "audioguide.tts.hibari_engine:HibariEngine",
    "pyttsx3": "audioguide.tts.pyttsx3_engine:Pyttsx3Engine",
    "piper": "audioguide.tts.piper_engine:PiperEngine",
    "kokoro": "audioguide.tts.kokoro_engine:KokoroEngine",
}


#: The engine ``--engine`` means by default: the most natural voice installed.
AUTO = "auto"


def credit(engine: Engine, voice: str) -> str:
    """Who made the voice, and its licence, for the file's tags."""
    named = getattr(engine, "credit", None)
    return str(named(voice)) if named is not None else f"{engine.name} voice {voice}"


def model_hash(path: Path) -> str:
    """A short hash of a voice model's bytes, computed once per version of the file."""
    stat = path.stat()
    return _model_hash(path, stat.st_mtime_ns, stat.st_size)


@cache
def _model_hash(path: Path, _mtime: int, _size: int) -> str:
    from audioguide.paths import file_sha256

    return file_sha256(path)[:16]


def wav_bytes(samples: npt.NDArray[np.float32], sample_rate: int) -> bytes:
    """Mono float samples in [-1, 1] as the bytes of a 16-bit WAV file."""
    import io
    import wave

    import numpy as np

    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def voice_key(engine: Engine, voice: str) -> str:
    """What identifies ``voice`` in the speech cache (a model hash, where the engine has one)."""
    key = getattr(engine, "voice_key", None)
    return str(key(voice)) if key is not None else voice


def get_engine(name: str) -> Engine:
    """Instantiate the engine called ``name`` (``auto`` is resolved before, by
    :func:`audioguide.tts.auto.resolve_engine`)."""
    try:
        target = ENGINES[name]
    except KeyError:
        known = ", ".join([AUTO, *sorted(ENGINES)])
        raise RequestError("--engine",
                           f"unknown engine {name!r}; known engines: {known}.") from None
    module_name, class_name = target.split(":")
    engine: Engine = getattr(importlib.import_module(module_name), class_name)()
    return engine


def resolve_voice(engine: Engine, wanted: str | None) -> str:
    """Return the voice id for ``wanted`` (an id or a name, any case), or the default."""
    if wanted is None:
        return engine.default_voice()
    resolve = getattr(engine, "resolve", None)
    if resolve is not None:
        resolved: str = resolve(wanted)
        return resolved
    voices = engine.voices()
    for voice in voices:
        if wanted.lower() in (voice.id.lower(), voice.name.lower()):
            return voice.id
    raise RequestError(
        "--voice",
        f"{engine.name} has no voice {wanted!r}. Run 'audioguide voices' to list the "
        f"{len(voices)} installed voices and pass one of their ids "
        f"(for example {engine.default_voice()!r}).",
    )
