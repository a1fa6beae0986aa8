"""User templates: folders, files, partials, `check`, the sandbox and hostile input."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from audioguide.cli import cli
from audioguide.script import context as script_context
from audioguide.script import templates
from audioguide.script.templates import Kind, get_kind
from audioguide.tts.speaker import Phrase, Speaker
from tests.conftest import SAMPLE_RATE, assert_refused, built_path, decode

ROOT = Path(__file__).resolve().parents[1]
HEADER = "{#\ntitle: Mine\ndescription: A test.\nmin_minutes: 1\nmax_minutes: 3\nmax_silence: 60\n"


def readme_example() -> str:
    text = (ROOT / "templates" / "README.md").read_text()
    section = text[text.index("## A small example"):]
    match = re.search(r"```jinja\n(.*?)```", section, re.DOTALL)
    assert match
    return match[1]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_readme_example_passes_check_and_builds(tmp_path: Path) -> None:
    path = tmp_path / "three-breaths.j2"
    path.write_text(readme_example())
    result = run("check", str(path))
    assert result.exit_code == 0, result.output
    assert ": ok" in result.output
    built = run("build", "--template", str(path), "--minutes", "2", "--name", "Jo",
                "--out", str(tmp_path / "out"))
    assert built.exit_code == 0, built.output
    mp3 = built_path(built)
    assert abs(decode(mp3).size - 120 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE


def test_templates_folder_adds_and_shadows_kinds(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "evening.j2").write_text(HEADER + "walking_safe: yes\n#}\n"
                                         '{% extends "partials/base.j2" %}\n'
                                         '{% set title_spoken = "evening practice" %}\n'
                                         "{% block practice %}\n# Evening\n"
                                         "Let the day settle.\n[pause 5..60]\n{% endblock %}\n")
    (tmp_path / "breath.j2").write_text(HEADER + "#}\n# Mine\nMy own breath words.\n"
                                        "[pause 5..60]\nAnd again.\n[pause 5..60]\n")
    result = run("kinds", "--templates", str(tmp_path))
    assert re.search(r"^evening .*\[yours: ", result.output, re.MULTILINE)
    assert re.search(r"^breath .*in place of the shipped one", result.output, re.MULTILINE)
    shortest = get_kind("body-scan").min_minutes
    assert re.search(rf"^body-scan .*from {shortest:g} min", result.output, re.MULTILINE)
    preview = run("preview", "evening", "--minutes", "2.5", "--templates", str(tmp_path))
    assert preview.exit_code == 0, preview.output
    assert "evening practice" in preview.output  # the shipped opening
    assert "Let the day settle." in preview.output
    assert "# Returning" in preview.output  # the shipped closing
    monkeypatch.setenv("AUDIOGUIDE_TEMPLATES", str(tmp_path))
    mine = run("preview", "breath", "--minutes", "1.5")
    assert mine.exit_code == 0 and "My own breath words." in mine.output


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os }}", "unsafe"),
        ("{{ self._TemplateReference__context }}", "unsafe"),
        ("{{ lipsum.__globals__['os'] }}", "unsafe"),
        ("{{ '{0.__class__}'.format(1) }}", "unsafe"),
        ("{{ rounds.__globals__ }}", "unsafe"),
        ("{% include '/etc/passwd' %}", "no template '/etc/passwd'"),
        ("{% include '../../../../etc/passwd' %}", "no template '../../../../etc/passwd'"),
        ("{% import 'os' as os %}", "no template 'os'"),
        ("{{ config }}", "'config' is undefined"),
    ],
)
def test_sandbox_escapes_are_refused(tmp_path: Path, body: str, words: str) -> None:
    path = tmp_path / "evil.j2"
    path.write_text(HEADER + "#}\nHello.\n" + body + "\n[pause 5..60]\n")
    out = tmp_path / "out"
    result = run("build", "--template", str(path), "--minutes", "2", "--out", str(out))
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "root:" not in result.output
    assert words in result.output, result.output
    assert "evil.j2" in result.output
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}",
         "past 200,000 items"),
        ("{{ 'a' * 100000000 }}", "repetition is limited"),
        ("{{ 10 ** 10 ** 8 }}", "powers are limited"),
        ("{% for i in range(99999) %}{{ 'breathe slowly now ' * 20 }}{% endfor %}",
         "1,000,000 characters"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "called itself"),
        ("{% for i in range(90000) %}{% for c in 'x' * 90000 %}{% endfor %}{% endfor %}",
         "more than 5 seconds"),
    ],
)
def test_runaway_templates_are_stopped(tmp_path: Path, body: str, words: str) -> None:
    path = tmp_path / "runaway.j2"
    path.write_text(HEADER + "#}\nHello.\n" + body + "\n[pause 5..60]\n")
    started = time.monotonic()
    result = run("preview", "--template", str(path), "--minutes", "2")
    assert time.monotonic() - started < 15
    assert_refused(result)
    assert "stopped" in result.output or "limited" in result.output
    assert words in result.output, result.output


def test_check_reports_every_problem_with_lines(tmp_path: Path) -> None:
    header_bad = tmp_path / "header.j2"
    header_bad.write_text("{#\ntitle: X\nmin_minutes: lots\nmax_silence: 30\n#}\nHi.\n")
    syntax = tmp_path / "syntax.j2"
    syntax.write_text(HEADER + "#}\nHello.\n{% if minutes %}\n[pause 5..60]\n")
    unsafe = tmp_path / "unsafe.j2"
    unsafe.write_text(HEADER + "walking_safe: yes\n#}\nHello.\nNow close your eyes.\n"
                      "[pause 5..60]\n[pause 5..60]\n")
    wordy = tmp_path / "wordy.j2"
    wordy.write_text(HEADER + "#}\n" + "Breathe in, and breathe out, slowly and gently.\n" * 40
                     + "[pause 5..60]\n")
    markup = tmp_path / "markup.j2"
    markup.write_text(HEADER + "#}\nHello.\n[pause forever]\n[pause 5..60]\n")
    result = run("check", *(str(p) for p in (header_bad, syntax, unsafe, wordy, markup)))
    assert result.exit_code != 0
    out = result.output
    assert "header.j2: line 3: min_minutes 'lots' should be a number" in out
    assert "header.j2: " in out and "lacks 'description'" in out
    assert re.search(r"syntax\.j2: line \d+: Unexpected end of template", out)
    assert "unsafe.j2: at 1 min walking: script line" in out and "close your eyes" in out
    assert "wordy.j2: at 1 min: the script needs about" in out
    assert "markup.j2: at 1 min: " in out and "the line reads '[pause forever]'" in out
    assert "5 of 5 templates have problems" in out


@pytest.mark.parametrize("name", ["../../../etc/passwd", "CON", "a/b\\\\c", "..", ".hidden",
                                  "Zoë \x07 bell", "x" * 40])
def test_hostile_names_stay_inside_the_output_folder(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    result = run("build", "check-in", "--minutes", "3", "--name", name, "--out", str(out))
    if result.exit_code != 0:  # refused cleanly is fine too
        assert "Traceback" not in result.output and "--name" in result.output
        return
    mp3 = built_path(result)
    assert mp3.parent == out
    assert not mp3.name.startswith(".") and ".." not in mp3.name
    assert re.fullmatch(r"[a-z0-9._-]+\.mp3", mp3.name)
    assert mp3.stem.split(".")[0] not in {"con", "nul", "prn", "aux"}


def test_a_script_that_cannot_fit_is_refused_before_any_speech(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoken: list[str] = []
    real = Speaker.speak

    def speak(self: Speaker, texts: list[str]) -> tuple[tuple[Phrase, ...], tuple[int, ...]]:
        spoken.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(Speaker, "speak", speak)
    many = tmp_path / "many.j2"
    many.write_text(HEADER + "#}\n" + "".join(f"This is line number {i} of a long script.\n"
                                                for i in range(1000)) + "[pause 5..60]\n")
    result = run("preview", "--template", str(many), "--minutes", "2")
    assert_refused(result, "--minutes", "9,000 words", "about 75.0 minutes of speech",
                   "estimated")
    wordy = tmp_path / "wordy.j2"
    wordy.write_text(HEADER + "#}\nHello.\n" + "breathe " * 1500 + "\n[pause 5..60]\n")
    for result in (run("preview", "--template", str(wordy), "--minutes", "2"),
                   run("check", str(wordy))):
        assert_refused(result, "wordy.j2 line 2", "at most 100 words", "1,500 words")
    assert spoken == []


def test_a_template_that_ignores_its_budget_is_rendered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[float] = []
    real = templates.render_script

    def counting(kind: Kind, ctx: Mapping[str, Any], name: str | None = None) -> Any:
        renders.append(ctx["budget"])
        return real(kind, ctx, name)

    monkeypatch.setattr(script_context, "render_script", counting)
    fixed = tmp_path / "fixed.j2"
    fixed.write_text(HEADER + "#}\n# Fixed\nOne.\n[pause 2..10]\nTwo.\n[pause 2..10]\nThree.\n")
    assert_refused(run("preview", "--template", str(fixed), "--minutes", "3"), "--minutes",
                   "at most")
    assert len(renders) == 1
    renders.clear()
    sized = tmp_path / "sized.j2"
    sized.write_text(HEADER + "#}\n# Sized\n{% for i in range(rounds(budget, 0, 0.25)) %}"
                     "Breath {{ i }}.\n[pause 2..8]\n{% endfor %}")
    result = run("preview", "--template", str(sized), "--minutes", "2")
    assert result.exit_code == 0, result.output
    assert len(renders) > 1 and len(set(renders)) == len(renders)  # re-sized, none twice


def test_a_broken_template_breaks_only_itself(tmp_path: Path) -> None:
    (tmp_path / "good.j2").write_text(HEADER + "#}\n# Good\nGood words.\n[pause 5..60]\n"
                                      "More words.\n[pause 5..60]\n")
    (tmp_path / "bad.j2").write_text("{#\ntitle: Bad\nmin_minutes: lots\n#}\nHi.\n")
    kinds = run("kinds", "--templates", str(tmp_path))
    assert kinds.exit_code == 0, kinds.output
    assert re.search(r"^bad +broken: .*bad\.j2: .*min_minutes 'lots'", kinds.output, re.M)
    assert re.search(r"^good +from 1 min .*\[yours: ", kinds.output, re.M)
    shortest = get_kind("breath").min_minutes
    assert re.search(rf"^breath +from {shortest:g} min", kinds.output, re.M)
    for kind, minutes in (("good", "1.5"), ("check-in", "3")):
        result = run("preview", kind, "--templates", str(tmp_path), "--minutes", minutes)
        assert result.exit_code == 0, result.output
    assert_refused(run("preview", "bad", "--templates", str(tmp_path), "--minutes", "2"),
                   "bad.j2", "min_minutes 'lots'")


def test_nothing_a_template_says_can_drive_the_terminal(tmp_path: Path) -> None:
    escapes = "\x1b]0;owned\x07\x1b[2J\x9b31m\x7f"
    path = tmp_path / "loud.j2"
    path.write_text(f"{{#\ntitle: Loud{escapes}\ndescription: Hi{escapes}\nmin_minutes: 1\n"
                    f"max_minutes: 3\nmax_silence: 60\n#}}\n# Head{escapes}\nHello{escapes}.\n"
                    "[pause 5..60]\nAgain.\n[pause 5..60]\n{{ 'x' ~ '\\x1b[5m' }}\n")
    preview = run("preview", "--template", str(path), "--minutes", "1")
    assert preview.exit_code == 0, preview.output
    assert "Hello]0;owned[2J31m." in preview.output
    outputs = [preview.output, run("kinds", "--templates", str(tmp_path)).output,
               run("preview", "--template", str(path), "--minutes", "0.5").output,
               run("check", str(path)).output]
    assert "too short for the loud" in outputs[2]
    for output in outputs:
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", output), repr(output)


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u200b \u2060\u200d", "Jo\udcff"])
@pytest.mark.parametrize(("kind", "flag"), [("check-in", "--name"), ("check-in", "--intention"),
                                            ("congruence", "--safe-person")])
def test_text_with_nothing_to_say_or_bad_bytes_is_refused(name: str, kind: str,
                                                          flag: str) -> None:
    minutes = str(get_kind(kind).min_minutes + 1)
    assert_refused(run("preview", kind, "--minutes", minutes, flag, name), flag)


def test_an_unknown_chime_fails_check_before_any_speech(tmp_path: Path) -> None:
    path = tmp_path / "gong.j2"
    path.write_text(HEADER + "#}\nHello.\n[chime gong]\n[pause 5..60]\n")
    assert_refused(run("check", str(path)), "gong.j2: at 1 min", "no chime 'gong'",
                   "bowl, bell, soft")
    assert_refused(run("preview", "--template", str(path), "--minutes", "2"),
                   "gong.j2 line 2", "no chime 'gong'")


def readme_plain_script() -> str:
    text = (ROOT / "templates" / "README.md").read_text()
    section = text[text.index("## A plain script"):]
    match = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert match
    return match[1]


def test_a_plain_text_file_is_a_session(tmp_path: Path) -> None:
    path = tmp_path / "evening-calm.txt"
    path.write_text(readme_plain_script())
    checked = run("check", str(path))
    assert checked.exit_code == 0, checked.output
    assert "no header, so defaults were used: title 'Evening calm', min_minutes 1" in \
        checked.output
    assert "it can fill about" in checked.output
    preview = run("preview", "--template", str(path), "--minutes", "3")
    assert preview.exit_code == 0, preview.output
    rows = preview.output.splitlines()[1:-1]  # between the settle pause and the end
    spoken = [r for r in rows if "[pause" not in r]
    assert len(spoken) == len(readme_plain_script().strip().splitlines())
    pauses = [float(r.split("[pause ")[1].split(" s]")[0]) for r in rows if "[pause" in r]
    assert len(pauses) == len(spoken) - 1 and min(pauses) > 5  # elastic, not a breath
    built = run("build", "--template", str(path), "--minutes", "2", "--out",
                str(tmp_path / "out"))
    assert abs(decode(built_path(built)).size - 120 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE
