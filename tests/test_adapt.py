"""Weeks that listen back: the practice log (SQLite on disk) read into the week's review and
into the next week, checked on the built files (the transcript the build wrote, the length
ffprobe measures, the page Chromium shows) and on ``week --preview``."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audioguide.cli import cli
from audioguide.companion.adapt import practised
from audioguide.companion.practised import Practised
from audioguide.companion.store import Entry, PracticeLog
from audioguide.week.serve import companion, make_server
from tests.conftest import built_path, chromium, launch, probe

START = dt.date(2026, 11, 23)
WEEK_1 = """
[week]
title = "Log week"

[[session]]
day = 1
kind = "check-in"
minutes = 3

[[session]]
day = 2
kind = "breath"
minutes = 6

[[session]]
day = 7
kind = "review"
minutes = 9
"""
WEEK_2 = """
[week]
title = "Log week"

[[session]]
day = 1
kind = "check-in"
minutes = 3

[[session]]
day = 2
kind = "breath"
minutes = 7
"""


def entry(session: str, kind: str, minutes: float, day: int, *, done: bool = True,
          rating: int | None = None, too_much: bool = False, feeling: str | None = None,
          note: str | None = None, speak_note: bool = False,
          start: dt.date = START) -> Entry:
    return Entry(week_start=start, week_title="Log week of 23 Nov 2026", session=session,
                 kind=kind, minutes=minutes, day=start + dt.timedelta(days=day - 1), done=done,
                 rating=rating, too_much=too_much, feeling=feeling, note=note,
                 speak_note=speak_note)


def request(address: tuple[str, int], method: str, path: str, body: str | None = None,
            headers: dict[str, str] | None = None) -> bytes:
    connection = http.client.HTTPConnection(*address, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    assert answer.status < 300, answer.status
    return answer.read()


def week(plan: Path, out: Path, log: Path, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["week", str(plan), "--out", str(out), "--log", str(log),
                                    *extra])


def test_the_summary_of_a_week() -> None:
    entries = [entry("a.mp3", "breath", 6, 1, rating=3, feeling="tired"),
               entry("b.mp3", "check-in", 3, 2, done=False),
               entry("c.mp3", "breath", 6, 3, rating=5, feeling="tired", too_much=True),
               entry("d.mp3", "journal", 10, 4, rating=7, feeling="calm", note="kept",
                     speak_note=True),
               entry("e.mp3", "journal", 10, 5, rating=7, note="private")]
    summary = practised(entries, planned=7)
    assert summary == Practised(planned=7, done=4, skipped=1, too_much=1,
                                practices=("breath awareness", "journal prompts"),
                                feelings=("tired", "calm"), ratings=(3, 5, 7, 7),
                                notes=("kept",), repeated=True)
    assert summary.trend == "rose"
    # The latest entry of a session counts: logged as skipped, then as done.
    again = practised([entry("a.mp3", "breath", 6, 1, done=False),
                       entry("a.mp3", "breath", 6, 1, rating=6)], planned=1)
    assert again is not None and (again.done, again.skipped, again.trend) == (1, 0, None)
    assert practised([], planned=3) is None
    # A session made from the page is extra: not counted against the week's plan.
    extra = entry("made-1-breath-6min.mp3", "breath", 6, 1, done=False, too_much=True)
    assert practised([extra], planned=3) is None
    assert practised([*entries, extra], planned=7) == summary


@pytest.mark.slow
def test_the_review_speaks_the_log_and_the_next_week_follows_it(tmp_path: Path) -> None:
    log_path = tmp_path / "practice.sqlite"
    plan_1, plan_2 = tmp_path / "week-1.toml", tmp_path / "week-2.toml"
    plan_1.write_text(WEEK_1)
    plan_2.write_text(WEEK_2)
    out = tmp_path / "out"
    folder = built_path(week(plan_1, out, log_path, "--start", START.isoformat()))
    review = folder / "7-sun-1-review-9min.mp3"
    others = {p: p.stat().st_mtime_ns for p in folder.glob("[12]-*.mp3")}
    before = review.with_suffix(".vtt").read_text()
    assert "What you noted" not in before and "named most often" not in before

    log = PracticeLog(log_path)
    log.add(entry("1-mon-1-check-in-3min.mp3", "check-in", 3, 1, rating=6, feeling="tired"))
    log.add(entry("2-tue-1-breath-6min.mp3", "breath", 6, 2, rating=2, feeling="anxious",
                  too_much=True, note="My chest went tight [pause 9] <b>.", speak_note=True))
    log.add(entry("2-tue-1-breath-6min.mp3", "breath", 6, 2, rating=3, feeling="anxious",
                  too_much=True, note="Too long for today", speak_note=False))

    # --review makes the review again from the log, and nothing else.
    again = week(plan_1, out, log_path, "--start", START.isoformat(), "--review")
    assert built_path(again) == folder
    assert {p: p.stat().st_mtime_ns for p in folder.glob("[12]-*.mp3")} == others
    spoken = " ".join(review.with_suffix(".vtt").read_text().split())
    # A short review says it in one sentence.
    assert ("Here is what you noted this week: one session felt like too much, and your "
            "answers went from around six to around three out of ten. Go gently as you read "
            "back.") in spoken
    assert ("You marked both sessions as done, and the words you noted for how you felt "
            "were: tired and anxious.") in spoken
    assert "Too long for today" not in spoken and "chest" not in spoken
    assert float(probe(review)["format"]["duration"]) == pytest.approx(9 * 60, abs=0.1)
    # Served with writes on, a new entry has the review made again in the background.
    writes = companion(log_path)
    server = make_server(folder, "127.0.0.1", 0, companion=writes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = ("127.0.0.1", server.server_address[1])
        cookie = {"Cookie": f"audioguide_key={writes.key}"}
        token = json.loads(request(address, "GET", "/api/state", headers=cookie))["token"]
        request(address, "POST", "/api/log", json.dumps(
            {"session": "1-mon-1-check-in-3min.mp3", "done": True, "feeling": "hopeful",
             "rating": 6}),
            {**cookie, "X-Audioguide-Token": token, "Content-Type": "application/json"})
        deadline = time.monotonic() + 180
        jobs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            jobs = json.loads(request(address, "GET", "/api/jobs", headers=cookie))["jobs"]
            if jobs and jobs[-1]["state"] not in ("waiting", "building"):
                break
            time.sleep(1)
        assert [(j["kind"], j["state"]) for j in jobs] == [("review", "done")], jobs
    finally:
        server.shutdown()
        server.server_close()
    spoken = " ".join(review.with_suffix(".vtt").read_text().split())
    assert "the words you noted for how you felt were: hopeful and anxious." in spoken
    assert "hopeful and anxious" in (folder / "index.html").read_text()  # its transcript
    assert float(probe(review)["format"]["duration"]) == pytest.approx(9 * 60, abs=0.1)
    assert {p: p.stat().st_mtime_ns for p in folder.glob("[12]-*.mp3")} == others

    # A longer one says more; the only note it may read was replaced by a later entry.
    longer = tmp_path / "longer.toml"
    longer.write_text(WEEK_1.replace("minutes = 9", "minutes = 15"))
    preview = week(longer, out, log_path, "--start", START.isoformat(), "--preview")
    assert preview.exit_code == 0, preview.output
    said = " ".join(line.split("  ", 1)[-1] for line in preview.output.splitlines())
    for line in ("Here is what you noted in your practice log this week.",
                 "You marked both sessions as done.", "One session felt like too much.",
                 "The words you noted for how you felt were: hopeful and anxious.",
                 "Your answers after practising went from around six out of ten to around "
                 "three. That sounds like a hard stretch."):
        assert line in said
    assert "You wrote" not in said and "Too long" not in said

    # Week 2 after that log: breath, too much, steps back; the check-in, done, goes on.
    start_2 = (START + dt.timedelta(days=7)).isoformat()
    adapted = week(plan_2, out, log_path, "--start", start_2, "--week-number", "2", "--preview")
    written = week(plan_2, out, log_path, "--start", start_2, "--week-number", "2", "--preview",
                   "--as-written")
    assert adapted.exit_code == 0 and written.exit_code == 0, adapted.output + written.output
    adapted_sessions = adapted.output.split("\n== ")
    written_sessions = written.output.split("\n== ")
    assert adapted_sessions[0] == (
        "why: Breath awareness (Tuesday): it felt like too much last week (Tuesday), so this "
        "one is gentler: 5 minutes rather than 7, at week 1's level rather than week 2's.")
    assert written_sessions[0].startswith("== week 2, day 1")  # no why: lines
    assert adapted_sessions[1] == written_sessions[0].removeprefix("== ")  # the check-in
    assert adapted_sessions[2].startswith("week 2, day 2 (Tue 2026-12-01), breath, 5 min")
    assert written_sessions[1].startswith("week 2, day 2 (Tue 2026-12-01), breath, 7 min")

    folder_2 = built_path(week(plan_2, out, log_path, "--start", start_2, "--week-number", "2"))
    manifest = json.loads((folder_2 / "week.json").read_text())
    assert manifest["levels"] == [2, 1] and len(manifest["changes"]) == 1
    assert float(probe(folder_2 / "2-tue-1-breath-5min.mp3")["format"]["duration"]) == \
        pytest.approx(300, abs=0.1)
    # Making week 2's review again keeps what week 1's log made of week 2, even after
    # that log has changed; only the sessions' own recipes decide what is rebuilt.
    assert PracticeLog(log_path).delete_week(START) == 4
    again_2 = week(plan_2, out, log_path, "--start", start_2, "--week-number", "2", "--review")
    assert built_path(again_2) == folder_2
    assert json.loads((folder_2 / "week.json").read_text()) == manifest
    with chromium() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto((folder_2 / "index.html").as_uri())
        why = page.locator("details.why")
        assert why.is_visible() and "Why this week looks as it does" in why.inner_text()
        assert manifest["changes"][0] in why.inner_text()
        browser.close()


def test_a_long_note_is_read_in_short_lines_and_the_review_still_fits(tmp_path: Path) -> None:
    log_path = tmp_path / "practice.sqlite"
    note = ("It was hard to stay with it today and I kept thinking about work " * 8).strip()
    PracticeLog(log_path).add(entry("1-mon-1-check-in-3min.mp3", "check-in", 3, 1, rating=4,
                                    note=note[:480], speak_note=True))
    PracticeLog(log_path).add(entry("2-tue-1-breath-6min.mp3", "breath", 6, 2, rating=5,
                                    note="Calmer. <b>Much</b> & calmer! :)", speak_note=True))
    # Notes are read in reviews of 15 minutes or more, at either pace.
    for minutes, pace, read in ((15, "normal", True), (20, "slow", True), (15, "slow", True),
                                (13, "slow", False), (9, "normal", False)):
        plan = tmp_path / "review.toml"
        plan.write_text(WEEK_1.replace("minutes = 9", f"minutes = {minutes}")
                        .replace('title = "Log week"', f'title = "Log week"\npace = "{pace}"'))
        shown = week(plan, tmp_path / "out", log_path, "--start", START.isoformat(),
                     "--preview")
        assert shown.exit_code == 0, shown.output
        review = shown.output.split("review, ")[1]
        said = [line.split("  ", 1)[1] for line in review.splitlines()[1:] if "  " in line]
        assert all(len(line.split()) <= 60 for line in said)
        if read:
            assert "You wrote: It was hard to stay with it today" in review
            assert "Your note goes on; the rest is on your page." in review
            assert "You also wrote: Calmer." in review and "<b>Much</b> & calmer!" in review
            assert ":)" not in review  # an emoticon is not read out
        else:
            assert "You wrote" not in review  # a short review reads no notes


def test_transcript_text_is_escaped_and_read_back(tmp_path: Path) -> None:
    from audioguide.transcript import escape_cue
    from audioguide.week.feed import read_vtt

    text = "You wrote: <b>Much</b> & calmer -> yes"
    assert escape_cue(text) == "You wrote: &lt;b&gt;Much&lt;/b&gt; &amp; calmer -&gt; yes"
    vtt = tmp_path / "a.vtt"
    vtt.write_text(f"WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\n{escape_cue(text)}\n")
    assert read_vtt(vtt) == ((1.0, 2.0, text),)


def test_a_step_back_never_goes_below_what_the_settings_need(tmp_path: Path) -> None:
    """A share of 11 minutes at the slow pace, too much: four fifths of it (8.5 minutes)
    cannot hold the slow share's script, so week 2 takes the shortest length that can."""
    log_path = tmp_path / "practice.sqlite"
    PracticeLog(log_path).add(entry("1-mon-1-share-11min.mp3", "share", 11, 1, too_much=True))
    plan = tmp_path / "share.toml"
    plan.write_text('[week]\ntitle = "Log week"\npace = "slow"\n\n[[session]]\nday = 1\n'
                    'kind = "share"\nminutes = 12\n')
    start_2 = (START + dt.timedelta(days=7)).isoformat()
    shown = week(plan, tmp_path / "out", log_path, "--start", start_2, "--week-number", "2",
                 "--preview")
    assert shown.exit_code == 0, shown.output
    why, header = shown.output.splitlines()[:2]
    minutes = float(header.split("share, ")[1].split(" min")[0])
    assert 8.5 < minutes <= 12 and why.startswith(
        "why: Sharing a feeling (Monday): it felt like too much last week (Monday)")
    assert (f"{minutes:g} minutes rather than 12" in why) == (minutes < 12), why
    assert "at week 1's level rather than week 2's" in why


@pytest.mark.parametrize(("note", "lines"), [
    ("Dr. Smith said to try 5 min. a day... it helps!",
     ["Dr. Smith said to try 5 min. a day... it helps!"]),  # no cut at abbreviations
    ("Slightly better tonight :) Still tired.", ["Slightly better tonight.", "Still tired."]),
    ("honestly this was too much :( i'm so tired 😞", ["honestly this was too much. i'm so tired"]),
    ("Went well. :)", ["Went well."]),
    ("😞😞", None),
    ("!!! ??? ...", None),
])
def test_a_note_is_read_as_its_sentences_without_emoji(note: str,
                                                      lines: list[str] | None) -> None:
    from audioguide.companion.practised import note_lines, plain

    said = note_lines(plain(note))
    assert (said["lines"] if said else None) == lines


def test_a_note_with_nothing_to_say_leaves_room_for_one_that_has() -> None:
    entries = [entry("a.mp3", "breath", 6, 1, note="First, kept.", speak_note=True),
               entry("b.mp3", "breath", 6, 2, note="Second.", speak_note=True),
               entry("c.mp3", "breath", 6, 3, note="😞😞", speak_note=True)]
    summary = practised(entries, planned=3)
    assert summary is not None and summary.notes == ("First, kept.", "Second.")
