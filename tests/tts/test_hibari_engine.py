"""The hibari engine for real: the voice inside the package, spoken, decoded and measured.

Voices that are not in the package are downloaded on first use; that is tested against
servers on 127.0.0.1 (one that refuses, one that serves the wrong file), never the
voices' real host.
"""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audioguide.errors import EngineError, RequestError
from audioguide.tts import get_engine, hibari_engine
from audioguide.tts.hibari_engine import HibariEngine
from tests.conftest import assert_refused, probe, run, two_minute_session

ROOT = Path(__file__).resolve().parents[2]
PHRASE = "Let the breath come and go, gently, at its own pace."
#: A sentence of about 700 phonemes: hibari's model takes 400 at once.
LONG = ("Now, if you like, let your attention move slowly through the body, from the crown "
        "of your head, down across your forehead, your eyes, your cheeks and your jaw; down "
        "through your neck and shoulders, along each arm to the tips of your fingers; across "
        "your chest and your back, your belly and your hips, and down each leg, through the "
        "knees and ankles, all the way to the soles of your feet, noticing whatever is there, "
        "warmth or coolness, tightness or ease, and letting it be just as it is.")


def _samples(wav_bytes: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768, rate


def _silent_runs(samples: np.ndarray, rate: int, floor_db: float = -50) -> list[float]:
    """Lengths (seconds) of the stretches of 10 ms frames below ``floor_db`` dBFS inside
    the clip (not at its ends)."""
    n = rate // 100
    frames = samples[: samples.size // n * n].reshape(-1, n)
    quiet = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9) < floor_db
    loud = np.flatnonzero(~quiet)
    runs, length = [], 0
    for q in quiet[loud[0]:loud[-1] + 1]:
        if q:
            length += 1
        elif length:
            runs.append(length / 100)
            length = 0
    return runs


def test_the_bundled_voice_speaks_every_phrase_the_same_each_time() -> None:
    engine = HibariEngine()
    texts = [PHRASE, "Calm.", "Notice how you are, just now."]
    first = engine.synthesize(texts, "heart", 100)
    again = engine.synthesize(texts, "heart", 100)
    assert first == again  # seeded: one phrase, one sound (the speech cache relies on it)
    for text, clip in zip(texts, first, strict=True):
        samples, rate = _samples(clip)
        assert rate == 24_000
        seconds = samples.size / rate
        words = len(text.split())
        assert 0.15 * words <= seconds <= 0.8 * words + 0.6, (text, seconds)
        assert 0.05 <= float(np.abs(samples).max()) < 1.0
        assert np.sqrt((samples ** 2).mean()) > 0.01  # speech, not a click


def test_a_lower_setting_speaks_more_slowly() -> None:
    engine = HibariEngine()
    fast, slow = (_samples(engine.synthesize([PHRASE], "heart", s)[0])[0].size
                  for s in (100, 60))
    assert 1.4 <= slow / fast <= 1.9


def test_a_sentence_too_long_for_the_model_is_split_at_its_clauses_without_a_gap() -> None:
    from hibari.tts import MAX_PHONEMES

    engine = HibariEngine()
    model = hibari_engine._load("heart", engine._path("heart"))
    assert len(model.g2p(LONG)) > MAX_PHONEMES  # the case: one sentence the model cannot take
    samples, rate = _samples(engine.synthesize([LONG], "heart", 100)[0])
    words = len(LONG.split())
    assert 0.2 * words <= samples.size / rate <= 0.6 * words
    # No seam longer than a comma's pause, and none of the words lost: no silence inside
    # the clip goes beyond hibari's own pauses at punctuation plus the clause gap.
    runs = _silent_runs(samples, rate)
    assert max(runs) <= 0.9, runs
    heard = np.abs(samples).max()
    assert heard < 1.0


def test_voices_list_every_voice_with_where_it_is() -> None:
    voices = {v.id: v for v in HibariEngine().voices()}
    assert set(voices) == {"heart", "emma", "fenrir", "fable", "kore"}
    assert "in the package" in voices["heart"].name and "Apache-2.0" in voices["heart"].name
    assert voices["emma"].languages == ("en-GB",) and voices["fenrir"].gender == "male"
    assert "downloaded on first use" in voices["emma"].name
    assert HibariEngine().default_voice() == "heart"
    assert HibariEngine().resolve("Heart") == "heart"


def test_an_unknown_voice_is_refused_with_the_voices_there_are() -> None:
    with pytest.raises(RequestError, match=r"hibari has no voice 'af_bella'; its voices are "
                                           r"heart \(American female\), emma"):
        HibariEngine().resolve("af_bella")


@pytest.fixture
def refusing_host(monkeypatch: pytest.MonkeyPatch) -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    url = f"http://127.0.0.1:{port}/voices/"
    monkeypatch.setenv("AUDIOGUIDE_HIBARI_URL", url)
    return url


def test_a_voice_that_cannot_be_downloaded_is_refused_quickly_and_nothing_is_written(
        refusing_host: str, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run("build", "breath", "--minutes", "5", "--engine", "hibari", "--voice", "emma",
                 "--out", str(tmp_path / "out"))
    assert time.monotonic() - started < 30
    assert_refused(result, "hibari voice 'emma' is not on this machine", "'heart' is in the "
                   "package", "AUDIOGUIDE_HIBARI_URL", out=tmp_path / "out")
    folder = hibari_engine.hibari_dir()
    assert not folder.exists() or not any(folder.iterdir())  # no partial file left


class _WrongFile(http.server.BaseHTTPRequestHandler):
    """Serves the bundled voice's model under every name: a real model, not the one asked for."""

    def do_GET(self) -> None:
        body = Path(hibari_engine.voice_file("heart") or "").read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def wrong_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WrongFile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("AUDIOGUIDE_HIBARI_URL", url)
    yield url
    server.shutdown()


def test_a_downloaded_voice_that_is_not_the_published_one_is_discarded(wrong_host: str) -> None:
    with pytest.raises(EngineError, match="is not the published file"):
        hibari_engine.download("fable")
    folder = hibari_engine.hibari_dir()
    assert not folder.exists() or not list(folder.iterdir())  # no partial file, no model
    with pytest.raises(EngineError):
        HibariEngine().resolve("fable")


def test_a_session_built_with_hibari_is_tagged_and_at_the_target_loudness(tmp_path: Path) -> None:
    tags, recipe = two_minute_session("hibari", tmp_path)
    assert recipe["engine"] == "hibari" and recipe["voice"] == "heart"
    assert recipe["engine_version"].startswith("hibari-tts 0.2")
    assert "hibari voice heart (distilled from Kokoro-82M's af_heart; Apache-2.0)" in tags[
        "comment"]


def test_a_plain_install_speaks_with_hibari(tmp_path: Path) -> None:
    """What a user gets from 'pip install .' and no options: hibari, chosen by auto."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "AUDIOGUIDE_CACHE": str(tmp_path / "cache"), "AUDIOGUIDE_VOICES": str(tmp_path / "v")}
    done = subprocess.run([sys.executable, "-m", "audioguide.cli", "build", "breath",
                           "--minutes", "5", "--out", str(tmp_path / "out"), "-v"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "engine: hibari, chosen by --engine auto" in done.stderr
    path = Path(done.stdout.strip())
    recipe = json.loads(probe(path)["format"]["tags"]["audioguide-recipe"])
    assert recipe["engine"] == "hibari"


def test_the_engine_is_listed_and_named_in_errors() -> None:
    assert get_engine("hibari").name == "hibari"
    with pytest.raises(RequestError, match="known engines: auto, hibari, kokoro"):
        get_engine("espeak")
