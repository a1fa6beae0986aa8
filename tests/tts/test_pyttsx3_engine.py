"""The real pyttsx3 engine (espeak-ng): every phrase rendered, checked and repeatable."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

from audioguide.audio.clips import decode
from audioguide.errors import EngineError, RequestError
from audioguide.tts import get_engine, pyttsx3_engine, resolve_voice
from audioguide.tts.pyttsx3_engine import Pyttsx3Engine, scratch_root

start_worker = pyttsx3_engine._start_worker

SUBJECTS = ["breath", "chest", "shoulders", "hands", "feet", "jaw", "belly", "back",
            "forehead", "throat"]
VERBS = ["soften", "settle", "rest", "ease", "widen"]
TEXTS = [
    f"Notice your {SUBJECTS[i % 10]}, and let it {VERBS[i % 5]} a little, breath number {i}."
    for i in range(50)
]
#: (voice, rate) pairs; 4 x 50 = 200 phrases.
SETTINGS = [("gmw/en-us", 120), ("gmw/en-us", 190), ("gmw/en", 150), ("gmw/en-gb-x-rp", 170)]


def wav_frames(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1
        return int(w.getnframes())


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, int], list[bytes]]:
    engine = Pyttsx3Engine()
    return {(voice, rate): engine.synthesize(TEXTS, voice, rate) for voice, rate in SETTINGS}


def test_two_hundred_phrases_all_present(rendered: dict[tuple[str, int], list[bytes]]) -> None:
    assert sum(len(v) for v in rendered.values()) == 200
    for clips in rendered.values():
        assert len(clips) == len(TEXTS)
        for data in clips:
            assert wav_frames(data) > 22050 // 2  # every phrase lasts well over half a second


def test_length_follows_the_rate(rendered: dict[tuple[str, int], list[bytes]]) -> None:
    slow = rendered[("gmw/en-us", 120)]
    fast = rendered[("gmw/en-us", 190)]
    for text, a, b in zip(TEXTS, slow, fast, strict=True):
        ratio = decode(a, 44100).size / decode(b, 44100).size
        # espeak-ng's rate is words per minute: 190/120 = 1.58 for the same text.
        assert 1.3 < ratio < 1.9, (text, ratio)
    for (_voice, rate), clips in rendered.items():
        for text, data in zip(TEXTS, clips, strict=True):
            seconds = decode(data, 44100).size / 44100
            wpm = len(text.split()) / seconds * 60
            assert 0.6 * rate < wpm < 1.4 * rate, (rate, text, wpm)


def test_repeated_batch_gives_identical_bytes(
    rendered: dict[tuple[str, int], list[bytes]],
) -> None:
    again = Pyttsx3Engine().synthesize(TEXTS, "gmw/en", 150)
    assert again == rendered[("gmw/en", 150)]


def test_unknown_voice_is_refused_with_a_hint() -> None:
    with pytest.raises(RequestError) as err:
        resolve_voice(get_engine("pyttsx3"), "klingon-opera")
    assert "--voice" in err.value.message and "audioguide voices" in err.value.message


def test_a_phrase_with_nothing_to_say_fails_loudly() -> None:
    with pytest.raises(EngineError):
        decode(Pyttsx3Engine().synthesize(["   ...   "], "gmw/en-us", 150)[0], 44100)


@pytest.mark.parametrize("when", ["before its phrases", "while it speaks"])
def test_a_worker_that_dies_fails_the_batch_and_leaves_no_process(
        monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    before_scratch = set(scratch_root().iterdir())
    started: list[subprocess.Popen[bytes]] = []

    def killed(*args: Any) -> Any:
        worker = start_worker(*args)
        started.append(worker.proc)
        if len(started) == 2 and when == "before its phrases":  # the second of two dies
            worker.proc.kill()
            worker.proc.wait()
        return worker

    def first_clip(done: int) -> None:
        # While it speaks: killed as the first of the 40 clips comes back (a timer raced
        # a fast machine, whose worker had finished its 20 phrases).
        if when == "while it speaks" and done == 1:
            started[1].kill()

    monkeypatch.setattr(pyttsx3_engine, "_start_worker", killed)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with pytest.raises(EngineError, match=r"stopped answering \(a worker exited with code -9\)"):
        Pyttsx3Engine().synthesize(TEXTS[:40], "gmw/en-us", 150, first_clip)
    assert len(started) == 2 and all(proc.poll() is not None for proc in started)
    assert not (set(scratch_root().iterdir()) - before_scratch)


def test_a_worker_that_cannot_start_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ImportError: no module named audioguide' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    with pytest.raises(EngineError, match=r"a worker exited with code 3: ImportError: no "
                                          r"module named audioguide\)"):
        Pyttsx3Engine().synthesize(TEXTS[:2], "gmw/en-us", 150)
