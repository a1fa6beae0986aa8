"""The pace a listener hears: words per minute measured on finished audio and on previews,
for both engines and both paces, with room to practise and silences that deepen."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from audioguide.script.review import Stats, measure, rows_from_preview
from audioguide.script.templates import get_kind
from tests.conftest import built_path, run, silences

ENGINES = ["pyttsx3", "piper", "hibari"]
#: Finished sessions, with every engine: the natural voices shorter, as their speech takes
#: its time (Kokoro's model speaks at about real time on two cores: 20 minutes took 7
#: minutes); Kokoro with its English voice af_heart.
FINISHED = [("pyttsx3", None, 20), ("piper", None, 10), ("hibari", None, 20),
            ("kokoro", "af_heart", 6)]


def vtt_cues(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue in a WebVTT file."""
    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    blocks = path.read_text().split("\n\n")
    cues = []
    for block in blocks:
        lines = block.strip().splitlines()
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        start, end = (seconds(x.strip()) for x in lines[timing].split("-->"))
        cues.append((start, end, " ".join(lines[timing + 1:])))
    return cues


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "voice", "minutes"), FINISHED)
def test_a_finished_breath_session_speaks_at_a_calm_rate(engine: str, voice: str | None,
                                                         minutes: int, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    if engine == "kokoro":
        request.getfixturevalue("english_kokoro")
    result = run("build", "breath", "--minutes", str(minutes), "--engine", engine, "--out",
                 str(tmp_path), *(["--voice", voice] if voice else []))
    mp3 = built_path(result)
    cues = vtt_cues(mp3.with_suffix(".vtt"))
    words = sum(len(text.split()) for _, _, text in cues)
    speaking = sum(end - start for start, end, _ in cues)
    wpm = words / speaking * 60
    assert 110 <= wpm <= 135, f"{engine}: {wpm:.0f} words per minute"
    print(f"{engine}: {wpm:.1f} words per minute as heard")
    # The cues are where the voice really is: most of each one sounds (a pause between two
    # sentences of one line is allowed), so the rate is words over real speech time.
    quiet = silences(mp3, noise_db=-45, min_s=0.3)
    for start, end, text in cues:
        silent = sum(max(0.0, min(end, b) - max(start, a)) for a, b in quiet)
        assert silent < 0.4 * (end - start), text


def preview_stats(kind: str, minutes: float, *args: str) -> tuple[float, Stats]:
    result = run("preview", kind, "--minutes", f"{minutes:g}", *args)
    assert result.exit_code == 0, result.output
    rows, total = rows_from_preview(result.output)
    walking = "--walking" in args or get_kind(kind).always_walking
    stats = measure(rows, total, walking=walking)
    return stats.words_per_minute, stats


#: (engine, rate): both rates with espeak-ng and hibari; Piper, whose synthesis is the
#: slow part of the suite, at 150 (its 100 is the slow pace, which PACE_CASES checks).
RATES = [(engine, rate) for engine in ENGINES for rate in (100, 150)
         if (engine, rate) != ("piper", 100)]


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "rate"), RATES)
def test_rate_is_words_per_minute_as_heard(engine: str, rate: int) -> None:
    wpm, _ = preview_stats("breath", 10, "--engine", engine, "--rate", str(rate))
    assert abs(wpm - rate) <= 0.1 * rate, f"{engine} asked {rate}, measured {wpm:.0f}"


#: (engine, pace, minutes): both paces at 20 and 60 minutes with espeak-ng; Piper, whose
#: synthesis is the slow part of the suite, and hibari at 20.
PACE_GRID = [("pyttsx3", pace, minutes) for pace in ("normal", "slow") for minutes in (20, 60)] + [
    (engine, pace, 20) for engine in ("piper", "hibari") for pace in ("normal", "slow")]
PACE_KINDS = ["breath", "body-scan", "congruence", "walking"]
#: Piper checks each kind at one pace (two kinds a pace), not all four at both.
PIPER_KINDS = {"normal": ("body-scan", "walking"), "slow": ("breath", "congruence")}
PACE_CASES = [(kind, engine, pace, minutes) for engine, pace, minutes in PACE_GRID
              for kind in PACE_KINDS if engine != "piper" or kind in PIPER_KINDS[pace]]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "engine", "pace", "minutes"), PACE_CASES)
def test_pace_targets_for_both_engines_and_paces(engine: str, pace: str, kind: str,
                                                 minutes: int) -> None:
    wpm, stats = preview_stats(kind, minutes, "--engine", engine, "--pace", pace)
    target = 120 if pace == "normal" else 100
    assert abs(wpm - target) <= 0.1 * target, f"{wpm:.0f} words per minute"
    assert stats.shortest_line_gap >= 1.5 - 1e-3
    assert stats.deepening >= 1.25
    assert stats.closing_s >= (90 if minutes >= 45 else 40)
    if kind == "walking":
        assert stats.reminder_gap <= 300


@pytest.mark.parametrize("kind", ["breath", "body-scan", "congruence"])
def test_a_slower_pace_keeps_more_silence(kind: str) -> None:
    _, normal = preview_stats(kind, 20)
    _, slow = preview_stats(kind, 20, "--pace", "slow")
    assert slow.lines <= normal.lines
    assert slow.longest_silence >= normal.longest_silence - 1


def test_recall_gets_time_to_remember() -> None:
    result = run("preview", "congruence", "--minutes", "20")
    rows, total = rows_from_preview(result.output)
    stats = measure(rows, total)
    assert stats.after_recall, "no line asks to recall a moment"
    assert min(gap for _, gap in stats.after_recall) >= 20


def test_body_scan_gives_each_region_ten_seconds() -> None:
    for minutes in (6, 20):
        result = run("preview", "body-scan", "--minutes", str(minutes))
        rows, _ = rows_from_preview(result.output)
        # "Bring your attention to your feet.", "Now move up into your legs.", "Now your chest."
        regions = [i for i, (_, text) in enumerate(rows)
                   if re.match(r"(?:\w+ ){0,5}your (feet|legs|hips|belly|lower back|chest|"
                               r"upper back|hands|arms|shoulders|neck|throat|jaw|face|head)\b",
                               text)]
        assert len(regions) >= 5
        for this, following in itertools.pairwise(regions):
            assert rows[following][0] - rows[this][0] >= 10, rows[this][1]
