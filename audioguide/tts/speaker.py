"""Speech for one request: phrases through the cache and the engine, measured in samples.

Clips are decoded once to be measured; a small cache keeps recently decoded
clips for the mixer's passes.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from audioguide.audio.clips import Samples, decode
from audioguide.tts import Engine, calibrate, voice_key
from audioguide.tts.cache import PhraseKey, SpeechCache, default_cache_dir

if TYPE_CHECKING:
    from audioguide.request import Progress, Request

log = logging.getLogger(__name__)

__all__ = ["Samples", "Speaker", "decoded"]

SAMPLE_RATE = 44_100


class Speaker:
    """Speaks phrases for one request through the cache, reporting progress."""

    def __init__(self, engine: Engine, voice: str, request: Request,
                 progress: Progress | None) -> None:
        self.engine = engine
        self.voice = voice
        self.voice_key = voice_key(engine, voice)
        self.version: str = engine.version()
        self.cache = SpeechCache(default_cache_dir() if request.use_cache else None)
        #: The engine's own setting that makes this voice speak the asked-for words per minute.
        self.rate = calibrate.setting_for(engine, voice, request.speech_rate, self.cache.folder,
                                          self.version)
        self.progress = progress
        self.raw: dict[str, bytes] = {}
        self.lengths: dict[str, int] = {}

    def speak(self, texts: list[str]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        """The engine's audio and the clip length of each text, rendering only what neither
        this build nor the cache has. Clips are decoded to be measured, then let go."""
        wanted = list(dict.fromkeys(t for t in texts if t not in self.raw))
        keys = [PhraseKey(self.engine.name, self.version, self.voice_key, self.rate, t)
                for t in wanted]
        found, missing = self.cache.split(keys)
        log.info("%d new phrases: %d cached, %d to render", len(wanted), len(found),
                 len(missing))

        def spoken(done: int) -> None:
            if self.progress is not None:
                self.progress("speak", len(found) + done, len(wanted))

        spoken(0)
        rendered = self.engine.synthesize([wanted[i] for i in missing], self.voice, self.rate,
                                          spoken)
        for i, data in zip(missing, rendered, strict=True):
            self.cache.put(keys[i], data)
            found[i] = data
        for i, text in enumerate(wanted):
            self.raw[text] = found[i]
            self.lengths[text] = decode(found[i], SAMPLE_RATE).size
        return tuple(self.raw[t] for t in texts), tuple(self.lengths[t] for t in texts)


#: Decoded clips kept between the master's passes: 16 MB of int16, a few minutes
#: of speech; longer sessions decode the rest again in each pass.
CLIP_CACHE_BYTES = 16 << 20
_clip_cache: dict[bytes, npt.NDArray[np.int16]] = {}


def decoded(raw: bytes) -> Samples:
    """``raw`` decoded to float32 samples, from a small cache when it was decoded lately."""
    key = hashlib.sha1(raw).digest()
    kept = _clip_cache.pop(key, None)
    if kept is not None:
        _clip_cache[key] = kept  # most recently used last
        return kept.astype(np.float32) / np.float32(32767)
    samples = decode(raw, SAMPLE_RATE)
    _clip_cache[key] = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
    while sum(v.nbytes for v in _clip_cache.values()) > CLIP_CACHE_BYTES:
        del _clip_cache[next(iter(_clip_cache))]
    return samples
