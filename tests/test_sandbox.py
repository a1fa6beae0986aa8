"""The sandbox's second wall: files resolved inside their folders, a limited child process."""

from __future__ import annotations

import os
import re
import resource
import threading
from pathlib import Path

import pytest
from click.testing import Result

from audioguide.script import sandbox
from tests.conftest import assert_refused, run

HEADER = ("{#\ntitle: Mine\ndescription: A test.\nmin_minutes: 1\nmax_minutes: 3\n"
          "max_silence: 60\n#}\n")
OUTSIDE = "leads outside its templates folder"


def template(folder: Path, body: str, name: str = "mine.j2") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + "Hello.\n" + body + "\n[pause 5..60]\n")
    return path


def uses(path: Path) -> list[Result]:
    """``check``, ``preview`` and ``build`` of the template file at ``path``."""
    out = path.parent / "out"
    return [run("check", str(path)),
            run("preview", "--template", str(path), "--minutes", "2"),
            run("build", "--template", str(path), "--minutes", "2", "--out", str(out))]


@pytest.mark.parametrize("link", ["file", "folder", "environ"])
def test_links_out_of_the_folder_are_refused(tmp_path: Path, link: str) -> None:
    folder = tmp_path / "mine"
    (folder / "parts").mkdir(parents=True)
    if link == "file":
        (folder / "parts" / "pw.j2").symlink_to("/etc/passwd")
        path = template(folder, "{% include 'parts/pw.j2' %}")
    elif link == "folder":
        (folder / "etc").symlink_to("/etc")
        path = template(folder, "{% include 'etc/passwd' %}")
    else:
        (folder / "parts" / "env.j2").symlink_to("/proc/self/environ")
        path = template(folder, "{% include 'parts/env.j2' %}")
    for result in uses(path):
        assert_refused(result, "mine.j2", "line 9", OUTSIDE)
        assert "root:" not in result.output and "PATH=" not in result.output


def test_a_kind_that_is_a_link_out_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    outside = template(tmp_path / "elsewhere", "Words from elsewhere.")
    (folder / "linked.j2").symlink_to(outside)
    for result in uses(folder / "linked.j2"):
        assert_refused(result, "linked.j2", OUTSIDE)
    kinds = run("kinds", "--templates", str(folder))
    assert kinds.exit_code == 0
    assert "linked" in kinds.output and OUTSIDE in kinds.output
    assert_refused(run("preview", "linked", "--templates", str(folder), "--minutes", "2"),
                   OUTSIDE)


def test_links_that_stay_inside_are_followed(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "real.j2").write_text("Words from a partial.\n")
    (folder / "alias.j2").symlink_to(folder / "parts" / "real.j2")
    path = template(folder, "{% include 'alias.j2' %}")
    result = run("preview", "--template", str(path), "--minutes", "1")
    assert result.exit_code == 0, result.output
    assert "Words from a partial." in result.output


def test_special_and_huge_files_are_not_read(tmp_path: Path) -> None:
    assert_refused(run("check", "/dev/zero"), "/dev/zero", "not a regular file")
    fifo = tmp_path / "pipe.j2"
    os.mkfifo(fifo)
    assert_refused(run("check", str(fifo)), "not a regular file")
    huge = tmp_path / "huge.j2"
    huge.write_text(HEADER + "Hello.\n" * 50_000)
    assert_refused(run("check", str(huge)), "larger than 256 KiB")
    folder = tmp_path / "partial"
    (folder / "parts").mkdir(parents=True)
    os.mkfifo(folder / "parts" / "fifo.j2")
    assert_refused(run("preview", "--template", str(template(folder, "{% include "
                                                              "'parts/fifo.j2' %}")),
                       "--minutes", "2"), "'parts/fifo.j2' is not a regular file")


NESTED = "".join(f"{{% for v{i} in range(1) %}}" for i in range(25)) + "x" + "{% endfor %}" * 25


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{{ 'x'|center(1500000000)|length }}", "more than 256 MB of memory"),
        ("{{ 'a\\nb'|indent(1500000000)|length }}", "more than 256 MB of memory"),
        ("{{ '%01500000000d'|format(1)|length }}", "more than 256 MB of memory"),
        ("{{ '{:>1500000000}'.format(1)|length }}", "more than 256 MB of memory"),
        ("{{ [1]|batch(150000000, 0)|list|length }}", "more than 256 MB of memory"),
        ("{% set s = 'x' * 100000 %}{% for i in range(10) %}{% set s = s ~ s %}{% endfor %}"
         "{{ s|replace('x', 'y' * 100000)|length }}", "more than 256 MB of memory"),
        ("{{ range(20000)|join('x' * 100000)|length }}", "more than 256 MB of memory"),
        ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}{{ ns.s|length }}", "more than 256 MB of memory"),
        ("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
         "{% endfor %}{{ ns.l|length }}", "more than 256 MB of memory"),
        ("{{ {'a': 1}|tojson(indent=700000000)|length }}", "more than 256 MB of memory"),
        ("{% set big %}{% for i in range(99999) %}{{ 'breathe slowly now ' * 20 }}{% endfor %}"
         "{% endset %}{{ big|length }}", "more than 1,000,000 characters"),
        (NESTED, "nested too deeply"),
    ],
    ids=["center", "indent", "percent-format", "str-format", "batch", "replace", "join",
         "namespace-string", "namespace-list", "tojson", "set-block", "nested-for"],
)
def test_hostile_one_liners_are_stopped_in_the_child(tmp_path: Path, body: str,
                                                     words: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path = template(tmp_path, body)
    for result in uses(path)[:2]:
        assert_refused(result, "mine.j2", words)
    # Nothing large was built in this process: the child did the work and was stopped.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    after = run("preview", "check-in", "--minutes", "3")
    assert after.exit_code == 0, after.output  # a fresh worker took over


def test_the_time_limit_works_off_the_main_thread(tmp_path: Path) -> None:
    path = template(tmp_path, "{% for i in range(90000) %}{% for c in 'x' * 90000 %}"
                              "{% endfor %}{% endfor %}")
    results: list[Result] = []
    worker = threading.Thread(
        target=lambda: results.append(run("preview", "--template", str(path), "-m", "2")))
    worker.start()
    worker.join(timeout=4 * sandbox.RENDER_SECONDS)
    assert not worker.is_alive()
    assert_refused(results[0], "stopped", f"more than {sandbox.RENDER_SECONDS:g} seconds")


def test_the_worker_is_limited_and_sees_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOGUIDE_SECRET", "hunter2")
    sandbox._worker.stop()  # the next worker starts while the secret is set
    assert run("preview", "check-in", "--minutes", "3").exit_code == 0
    process = sandbox._worker.process
    assert process is not None
    assert b"hunter2" not in Path(f"/proc/{process.pid}/environ").read_bytes()
    limits = Path(f"/proc/{process.pid}/limits").read_text()
    memory = sandbox.MEMORY_BYTES
    assert re.search(rf"Max address space\s+{memory}\s+{memory}\s", limits), limits
    assert re.search(r"Max file size\s+0\s+0\s", limits), limits
    assert re.search(r"Max cpu time\s+\d+\s+\d+\s", limits), limits
