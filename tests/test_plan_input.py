"""Plans, rosters and the week's addresses: every text that reaches a file format (a
playlist, a feed, a page, MP3 tags) is checked for it, and no file can crash or exhaust
the command that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioguide.week import planfile
from tests.conftest import assert_refused, run

SESSION = "[[session]]\nday = 1\nkind = 'breath'\nminutes = 5\n"


def _plan(tmp_path: Path, week: str, sessions: str = SESSION) -> Path:
    path = tmp_path / "week.toml"
    path.write_text(f"[week]\n{week}\n{sessions}", encoding="utf-8")
    return path


@pytest.mark.parametrize("title, words", [
    ('"Walks\\u0000of November"', ["[week] title", "control characters"]),
    ('"\\u001b[31mRed week"', ["[week] title", "control characters"]),
    ('"Week \\u202eevil"', ["[week] title", "direction override"]),
    ('"\\u0007bell"', ["[week] title", "control characters"]),
    (f'"{"x" * 900_000}"', ["[week] title", "900000 characters is too long; at most 120"]),
    ('"   "', ["[week] title", "the text is empty"]),
    ("3", ["[week] title", "3 should be text"]),
    ("['a', 'b']", ["[week] title", "should be text"]),
])
def test_a_title_no_file_format_can_carry_is_refused_at_its_line(
        tmp_path: Path, title: str, words: list[str]) -> None:
    plan = _plan(tmp_path, f"title = {title}")
    result = run("week", str(plan), "--preview")
    assert_refused(result, "week.toml line 2", *words)
    out = tmp_path / "out"
    assert_refused(run("week", str(plan), "--out", str(out)), *words)
    assert not out.exists()


def test_a_title_on_several_lines_becomes_one_line(tmp_path: Path) -> None:
    """A newline would add entries to the playlist: white space is folded, as in the
    command line's text options."""
    plan = planfile.load(_plan(tmp_path, 'title = """Evening\n#EXTINF:1,x\n/etc/passwd"""'),
                         planfile.coming_monday(), tmp_path)
    assert plan.title == "Evening #EXTINF:1,x /etc/passwd"


def test_a_roster_title_is_checked_as_a_plans(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(SESSION)
    roster = tmp_path / "roster.toml"
    roster.write_text("[batch]\nplan = 'plan.toml'\n[[listener]]\nid = 'ana'\n"
                      "title = \"Ana\\u001b]0;pwned\\u0007\"\n")
    out = tmp_path / "out"
    assert_refused(run("batch", str(roster), "--out", str(out)), "roster.toml line 5",
                   "listener 1 title", "control characters")
    assert not out.exists() or not list(out.rglob("*.mp3"))


@pytest.mark.parametrize("nested", [
    "[" * 5000 + "]" * 5000,
    "{a = " * 3000 + "1" + "}" * 3000,
    "[" * 20 + "]" * 20,  # parses, but no plan is 20 deep
    "[" * 900 + "1" + "]" * 900,
])
@pytest.mark.parametrize("what", ["plan", "roster"])
def test_deeply_nested_toml_is_refused_not_a_recursion_error(
        tmp_path: Path, nested: str, what: str) -> None:
    path = tmp_path / f"{what}.toml"
    if what == "plan":
        path.write_text(f"[week]\ntitle = {nested}\n{SESSION}")
        result = run("week", str(path), "--out", str(tmp_path / "out"))
        label = "PLAN"
    else:
        path.write_text(f"[batch]\nfocus = {nested}\n[[listener]]\nid = 'a'\n")
        result = run("batch", str(path), "--out", str(tmp_path / "out"))
        label = "ROSTER"
    assert_refused(result, label, "nests tables or lists more than 16 deep")
    assert "RecursionError" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url, words", [
    ("javascript:alert(1)", ["not an address podcast apps can fetch from"]),
    ("file:///home/me/week/", ["not an address podcast apps can fetch from"]),
    ("data:text/html,hi", ["not an address podcast apps can fetch from"]),
    ("http://", ["not an address podcast apps can fetch from"]),
    ("//192.168.1.2/", ["not an address podcast apps can fetch from"]),
    ("http://host/\nhttp://evil/", ["spaces, control characters"]),
    ("http://host/a b/", ["spaces, control characters"]),
    ("http://host:99999/", ["Port out of range"]),
    ("http://host:0/", ["port 0"]),
    ("http://user:pw@host/", ["user name"]),
    ("http://host/?q=1", ["query"]),
    ("http://host/" + "a" * 2001, ["over 2000 characters"]),
    ("", ["it is empty"]),
])
@pytest.mark.parametrize("command", ["week", "batch"])
def test_a_base_url_that_is_not_a_web_address_is_refused(
        tmp_path: Path, url: str, words: list[str], command: str) -> None:
    target = _plan(tmp_path, "title = 'Walks'") if command == "week" else tmp_path / "r.toml"
    result = run(command, str(target), "--base-url", url, "--out", str(tmp_path / "out"))
    assert_refused(result, "--base-url", "http:// or https://" if url else "", *words)
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["http://192.168.1.20:8000", "https://example.org/walks/",
                                 "http://[fe80::1]:8000/", "HTTP://Host.local/"])
def test_a_web_address_is_taken(tmp_path: Path, url: str) -> None:
    result = run("week", str(_plan(tmp_path, "title = 'Walks'")), "--base-url", url,
                 "--preview")
    assert result.exit_code == 0, result.output


def _week_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.slow
def test_a_second_week_in_the_same_calendar_week_never_replaces_the_first(
        tmp_path: Path) -> None:
    """Weeks from Mon 23 and Fri 27 Nov share 2026-W48: the second is refused, naming the
    first, and the first week's files are left exactly as they were; rebuilding the first
    week is still allowed."""
    plan = _plan(tmp_path, "title = 'Walks'", "[[session]]\nday = 1\nkind = 'check-in'\n"
                 "minutes = 2\n")
    out = tmp_path / "out"
    first = run("week", str(plan), "--start", "2026-11-23", "--out", str(out))
    assert first.exit_code == 0, first.output
    folder = out / "2026-W48"
    before = _week_files(folder)
    assert "week.json" in before and "playlist.m3u8" in before
    for start in ("2026-11-27", "2026-11-29", "2026-11-24"):
        result = run("week", str(plan), "--start", start, "--out", str(out))
        assert_refused(result, "--start", str(folder), "the week that starts Mon 23 Nov 2026",
                       "same calendar week", "--out")
        assert _week_files(folder) == before
    again = run("week", str(plan), "--start", "2026-11-23", "--out", str(out))
    assert again.exit_code == 0, again.output
    assert _week_files(folder) == before
    (folder / "week.json").write_text("{not json")  # tampered: which week is unknown
    assert_refused(run("week", str(plan), "--start", "2026-11-27", "--out", str(out)),
                   "week.json cannot be read as the record of a week")
    next_week = run("week", str(plan), "--start", "2026-11-30", "--out", str(out))
    assert next_week.exit_code == 0 and (out / "2026-W49" / "week.json").exists()


@pytest.mark.slow
def test_a_batch_never_replaces_a_listeners_other_week_of_the_same_calendar_week(
        tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text("[[session]]\nday = 1\nkind = 'check-in'\nminutes = 2\n")
    roster = tmp_path / "roster.toml"
    roster.write_text("[batch]\nplan = 'plan.toml'\nstart = 2026-11-23\n"
                      "[[listener]]\nid = 'ana'\n")
    out = tmp_path / "out"
    assert run("batch", str(roster), "--out", str(out), "--jobs", "1").exit_code == 0
    folder = out / "ana" / "2026-W48"
    before = _week_files(folder)
    result = run("batch", str(roster), "--out", str(out), "--start", "2026-11-26")
    assert_refused(result, str(folder), "the week that starts Mon 23 Nov 2026")
    assert _week_files(folder) == before


@pytest.mark.parametrize("email, ok", [
    ("alex@example.org", True), ("a.b+c@mail.example.co.uk", True),
    ("not an email", False), ("a@b", False), ("a@b.c\nBcc: x@y.z", False),
    ("<x@y.z>", False), (f"{'a' * 250}@b.org", False), ("", False),
])
def test_the_feed_owners_email_is_checked_and_named_in_the_feed(
        tmp_path: Path, email: str, ok: bool) -> None:
    import xml.etree.ElementTree as ET

    from audioguide.week.feed import feed_xml

    plan_path = _plan(tmp_path, f"email = {email!r}".replace("\\n", "\\\\n")
                      if "\n" not in email else 'email = "a@b.c\\nBcc: x@y.z"')
    if not ok:
        assert_refused(run("week", str(plan_path), "--preview"), "[week] email",
                       "is not an email address")
        return
    plan = planfile.load(plan_path, planfile.coming_monday(), tmp_path)
    assert plan.email == email
    owner = ET.fromstring(feed_xml("W", [], "http://h/", owner_email=plan.email)).find(
        "channel/{http://www.itunes.com/dtds/podcast-1.0.dtd}owner")
    assert owner is not None
    assert owner.findtext("{http://www.itunes.com/dtds/podcast-1.0.dtd}email") == email


@pytest.mark.parametrize("start", ["0001-01-01", "1899-12-31", "1000-06-15"])
def test_a_week_starting_before_1900_is_refused_before_any_work(
        tmp_path: Path, start: str) -> None:
    plan = _plan(tmp_path, "title = 'Walks'")
    out = tmp_path / "out"
    for extra in (["--preview"], ["--out", str(out)]):
        assert_refused(run("week", str(plan), "--start", start, *extra), "--start", start,
                       "too far in the past")
    roster = tmp_path / "roster.toml"
    roster.write_text(f"[batch]\nplan = 'week.toml'\nstart = {start}\n"
                      "[[listener]]\nid = 'ana'\n")
    assert_refused(run("batch", str(roster), "--out", str(out)), "too far in the past")
    assert not out.exists()


@pytest.mark.slow
def test_a_folder_at_a_weeks_file_name_is_refused_cleanly(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "title = 'Walks'", "[[session]]\nday = 1\nkind = 'check-in'\n"
                 "minutes = 2\n")
    args = ["week", str(plan), "--start", "2026-11-23", "--out", str(tmp_path / "out")]
    first = run(*args)
    assert first.exit_code == 0, first.output
    folder = tmp_path / "out" / "2026-W48"
    for name in ("playlist.m3u8", "index.html", "feed.xml", "cover.png",
                 "1-mon-1-check-in-2min.chapters.json"):
        (folder / name).unlink()
        (folder / name).mkdir()
        assert_refused(run(*args), name, "is a folder", "move or rename it")
        (folder / name).rmdir()
    manifest = (folder / "week.json").read_bytes()
    (folder / "week.json").unlink()
    (folder / "week.json").mkdir()
    assert_refused(run(*args), "week.json cannot be read as the record of a week")
    (folder / "week.json").rmdir()
    (folder / "week.json").write_bytes(manifest)
    assert run(*args).exit_code == 0
