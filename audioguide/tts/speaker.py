"""Speech for one request: phrases through the cache and the engine, measured in samples.

Clips are decoded once to be measured; the speech cache keeps their decoded
samples for the mixer's passes and for later builds.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from audioguide.audio import clips
from audioguide.audio.clips import Samples, decode
from audioguide.errors import EngineError
from audioguide.tts import Engine, calibrate, voice_key
from audioguide.tts.cache import PhraseKey, SpeechCache, default_cache_dir

if TYPE_CHECKING:
    from collections.abc import Callable

    from audioguide.request import Progress, Request

log = logging.getLogger(__name__)

__all__ = ["Phrase", "Samples", "Speaker", "decoded"]

SAMPLE_RATE = 44_100


class Speaker:
    """Speaks phrases for one request through the cache, reporting progress."""

    def __init__(self, engine: Engine, voice: str, request: Request,
                 progress: Progress | None,
                 before_synthesis: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.voice = voice
        self.voice_key = voice_key(engine, voice)
        self.version: str = engine.version()
        self.cache = SpeechCache(default_cache_dir() if request.use_cache else None)
        #: Called before the engine renders anything (the planner ends its template
        #: worker, so that it holds no memory beside the engine's).
        self.before_synthesis = before_synthesis

        def reading(done: int, lines: int) -> None:
            if before_synthesis is not None and done == 0:
                before_synthesis()
            if progress is not None:
                progress("voice", done, lines)

        # The engine's own setting that makes this voice speak the asked-for words per
        # minute: measured (a few seconds a reading) the first time a voice is used.
        self.rate = calibrate.setting_for(engine, voice, request.speech_rate,
                                          self.cache.folder, self.version, reading)
        self.progress = progress
        self.phrases: dict[str, Phrase] = {}
        self.lengths: dict[str, int] = {}

    def speak(self, texts: list[str]) -> tuple[tuple[Phrase, ...], tuple[int, ...]]:
        """Each text's phrase and clip length, rendering only what neither this build nor
        the cache has. A cached phrase with a decoded copy is only checked, not held: its
        length is the copy's; other clips are decoded (and stored) to be measured, then
        let go; with a cache, the engine's audio is let go too (read back if needed)."""
        wanted = list(dict.fromkeys(t for t in texts if t not in self.phrases))
        keys = [PhraseKey(self.engine.name, self.version, self.voice_key, self.rate, t)
                for t in wanted]
        stored = {i: d for i, key in enumerate(keys) if (d := self.cache.stored_digest(key))}
        missing = [i for i in range(len(wanted)) if i not in stored]
        log.info("%d new phrases: %d cached, %d to render", len(wanted), len(stored),
                 len(missing))

        def spoken(done: int) -> None:
            if self.progress is not None:
                self.progress("speak", len(stored) + done, len(wanted))

        spoken(0)
        if missing and self.before_synthesis is not None:
            self.before_synthesis()
        rendered = self.engine.synthesize([wanted[i] for i in missing], self.voice, self.rate,
                                          spoken)
        fresh: dict[int, bytes] = {}  # the engine's audio, until its clip is measured
        for i, data in zip(missing, rendered, strict=True):
            # A phrase the cache does not hold (no cache, or it could not be written)
            # keeps its audio: the mix may need to decode it again.
            kept = self.cache.put(keys[i], data)
            self.phrases[wanted[i]] = Phrase(keys[i], hashlib.sha256(data).hexdigest(),
                                             None if kept else data)
            fresh[i] = data
        for i, digest in stored.items():
            self.phrases[wanted[i]] = Phrase(keys[i], digest)

        def length(i: int) -> int:
            phrase = self.phrases[wanted[i]]
            if i in stored:
                size = self.cache.decoded_size(phrase.digest, DECODED_VERSION)
                if size is not None:
                    return size // 2
            return len(_stored(phrase, self.cache, fresh.pop(i, None))) // 2

        # Decoding new clips (resampling, mostly numpy outside the interpreter's lock)
        # runs on every core; stored copies are only checked.
        with cf.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            for text, samples in zip(wanted, pool.map(length, range(len(wanted))),
                                     strict=True):
                self.lengths[text] = samples
        return (tuple(self.phrases[t] for t in texts),
                tuple(self.lengths[t] for t in texts))


@dataclass(frozen=True)
class Phrase:
    """A spoken phrase as a plan keeps it: its cache key and its audio's SHA-256, and the
    audio itself only when there is no cache to read it back from."""

    key: PhraseKey
    digest: str
    audio: bytes | None = field(default=None, repr=False)


#: Names how :func:`~audioguide.audio.clips.decode` makes samples of an engine's audio
#: (rate, sample format, its settings for trim, fades and resampling): when any of them
#: changes, so does this, and every stored decoded clip is made again.
DECODED_VERSION = f"int16-{SAMPLE_RATE}-" + hashlib.sha256(repr(
    (clips.TRIM_THRESHOLD_DB, clips.LEAD_S, clips.TAIL_S, clips.FADE_IN_S, clips.FADE_OUT_S,
     clips._TAPS_PER_SIDE, clips._KAISER_BETA)).encode()).hexdigest()[:12]
#: Decoded clips kept in memory between the master's passes when the cache is off.
CLIP_CACHE_BYTES = 16 << 20
_clip_cache: dict[str, bytes] = {}
_clip_lock = threading.Lock()


def decoded(phrase: Phrase, cache: SpeechCache | None = None) -> Samples:
    """The phrase's samples as float32: from the speech cache's decoded copy when it has
    one (decoding and resampling cost far more than reading), else decoded and stored.
    Always through int16, so a clip sounds the same decoded now or read back."""
    return np.frombuffer(_stored(phrase, cache), dtype="<i2").astype(np.float32) / np.float32(
        32767)


def _stored(phrase: Phrase, cache: SpeechCache | None, audio: bytes | None = None) -> bytes:
    """The int16 samples of ``phrase``: from the cache (or this process's memory, when
    there is no cache), or decoded now from its audio and kept."""
    stored = cache.get_decoded(phrase.digest, DECODED_VERSION) if cache else None
    if stored is not None:
        return stored
    with _clip_lock:
        stored = _clip_cache.pop(phrase.digest, None)
    if stored is None:
        if audio is None and phrase.audio is None and cache:
            audio = cache.get(phrase.key)  # read back: it must be the audio planned with
            if audio is not None and hashlib.sha256(audio).hexdigest() != phrase.digest:
                audio = None
        audio = audio or phrase.audio
        if audio is None:
            raise EngineError(f"the speech cache lost or changed the phrase "
                              f"{phrase.key.text[:60]!r} while this session was being built "
                              "(another build rendering it at the same time?); build it "
                              "again.")
        try:
            samples = decode(audio, SAMPLE_RATE)
        except EngineError as exc:
            raise EngineError(f"{exc.message.rstrip('.')}: the phrase "
                              f"{phrase.key.text[:80]!r} (engine {phrase.key.engine}, voice "
                              f"{phrase.key.voice}). Reword the line, or choose another "
                              "voice.") from None
        stored = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        if cache:
            cache.put_decoded(phrase.digest, DECODED_VERSION, stored)
    if not (cache and cache.folder and cache.writable):
        with _clip_lock:
            _clip_cache[phrase.digest] = stored  # most recently used last
            while sum(map(len, _clip_cache.values())) > CLIP_CACHE_BYTES:
                del _clip_cache[next(iter(_clip_cache))]
    return stored
