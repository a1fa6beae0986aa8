"""The speech cache's decoded copies: each phrase is decoded and resampled once, read back
by every later pass and build, and made again when damaged."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np
import pytest

from audioguide.audio.clips import decode
from audioguide.planning import plan
from audioguide.request import SAMPLE_RATE, Request
from audioguide.tts import speaker
from audioguide.tts.cache import SpeechCache


def test_decoded_copies_are_made_once_read_back_and_made_again_when_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(folder))
    first = plan(Request("check-in", 2))
    clips = sorted(folder.rglob("*.clip"))
    copies = sorted(folder.rglob("*.pcm"))
    assert len(copies) == len(set(first.phrases)) == len(clips) > 5
    # A copy holds what decoding the engine's audio gives (as 16-bit samples).
    cache = SpeechCache(folder)
    for index, phrase in enumerate(first.phrases[:3]):
        audio = cache.get(phrase.key)
        assert audio is not None
        fresh = np.round(np.clip(decode(audio, SAMPLE_RATE), -1, 1) * 32767) / 32767
        assert np.array_equal(first.clip(index), fresh.astype(np.float32))
        assert first.clip_lengths[index] == fresh.size
    samples = [first.clip(i) for i in range(len(first.phrases))]
    # A warm plan and mix read the copies: nothing is decoded again.
    def no_decoding(data: bytes, rate: int) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(speaker, "decode", no_decoding)
    again = plan(Request("check-in", 2))
    assert all(np.array_equal(again.clip(i), s) for i, s in enumerate(samples))
    # A damaged copy is noticed, decoded afresh and stored whole again.
    monkeypatch.undo()
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(folder))
    damaged = copies[0]
    blob = bytearray(damaged.read_bytes())
    blob[-10] ^= 0xFF
    damaged.write_bytes(bytes(blob))
    with caplog.at_level(logging.WARNING):
        third = plan(Request("check-in", 2))
        assert all(np.array_equal(third.clip(i), s) for i, s in enumerate(samples))
    assert "damaged" in caplog.text
    assert damaged.read_bytes() != bytes(blob)
    assert all(cache.get_decoded(phrase.digest, speaker.DECODED_VERSION) is not None
               for phrase in first.phrases)


def test_without_a_cache_clips_are_decoded_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(tmp_path / "cache"))
    p = plan(Request("check-in", 2, use_cache=False))
    assert not (tmp_path / "cache").exists()
    assert all(phrase.audio for phrase in p.phrases)
    assert p.clip(0).size == p.clip_lengths[0]


def test_a_cache_that_cannot_be_written_still_builds_long_sessions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # A full disk: every write fails. Phrases rendered now are neither stored nor read
    # back; each keeps its audio for the mix, however little decoded audio fits in memory.
    from audioguide import builder
    from tests.conftest import decode as decode_file

    cache_module = importlib.import_module("audioguide.tts.cache")

    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_module.tempfile, "mkstemp", full)
    monkeypatch.setattr(speaker, "CLIP_CACHE_BYTES", 1 << 20)
    with caplog.at_level(logging.WARNING):
        path = builder.build(Request("breath", 5, out_dir=tmp_path / "out"))
    assert decode_file(path).size == 5 * 60 * SAMPLE_RATE
    warnings = [r for r in caplog.records if "cannot write the speech cache" in r.getMessage()]
    assert len(warnings) == 1
    assert not list((tmp_path / "cache").rglob("*.pcm"))


def test_a_warm_plan_holds_no_cached_audio_and_a_truncated_copy_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning only checks what the cache holds (the engine's audio is not read into
    memory, nor are the decoded copies kept); a copy cut short is noticed there, so the
    lengths planned are the clips' own."""
    monkeypatch.setenv("AUDIOGUIDE_CACHE", str(tmp_path / "cache"))
    first = plan(Request("check-in", 2))

    def not_read(self: SpeechCache, *args: object) -> bytes:
        raise AssertionError("cached audio read while planning")

    with monkeypatch.context() as patched:
        patched.setattr(SpeechCache, "get", not_read)
        patched.setattr(SpeechCache, "get_decoded", not_read)
        warm = plan(Request("check-in", 2))
    assert warm.clip_lengths == first.clip_lengths
    assert [p.digest for p in warm.phrases] == [p.digest for p in first.phrases]
    cache = SpeechCache(tmp_path / "cache")
    copy = cache._decoded_path(first.phrases[0].digest, speaker.DECODED_VERSION)
    whole = copy.read_bytes()
    copy.write_bytes(whole[:-1000])
    again = plan(Request("check-in", 2))
    assert again.clip_lengths == first.clip_lengths
    assert [again.clip(i).size for i in range(len(again.phrases))] == list(first.clip_lengths)
    assert copy.read_bytes() == whole  # made and stored again
