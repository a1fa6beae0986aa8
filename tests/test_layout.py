"""The package's shape: no import cycles, one option schema, a small public API."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

import audioguide
from audioguide import options
from audioguide.cli import cli
from audioguide.request import Pace, Request
from audioguide.week import planfile

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "audioguide"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str], types: bool = False) -> set[str]:
    """Every audioguide module ``path`` imports at run time, at any depth of the file
    (imports under ``if TYPE_CHECKING:`` are for the type checker only: counted only
    when ``types``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if (not types and isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test)):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("audioguide")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("audioguide"):
            assert node.module is not None
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
    return found & known


@pytest.mark.parametrize("types", [False, True], ids=["run time", "type checking"])
def test_no_import_cycles(types: bool) -> None:
    """Not at run time, and not even through the imports only the type checker reads (a
    type is defined below both modules that use it)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph = {name: _imports(path, known, types) - {name} for name, path in files.items()
             if name != "audioguide"}  # the package's lazy __getattr__ imports nothing
    # A module's import also runs its packages' __init__ files.
    for deps in graph.values():
        for dep in list(deps):
            parts = dep.split(".")
            deps |= {".".join(parts[:i]) for i in range(2, len(parts))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph.get(name, ())):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep):], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert len(graph) > 30  # the walk saw the whole package


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_cli_options_are_the_schema() -> None:
    assert isinstance(cli, click.Group)
    for command, output in (("build", True), ("preview", False)):
        params = {p.name: p for p in cli.commands[command].params}
        for option in options.OPTIONS:
            if option.output and not output:
                assert option.field not in params
                continue
            param = params[option.field]
            assert option.flag in param.opts
            # Defaults live in the schema: the command line passes only what was given.
            assert param.default is None, option.flag
        extra = set(params) - {o.field for o in options.OPTIONS}
        assert extra == {"kind", "template", "templates", "no_cache", "verbose"} | (
            {"out"} if output else set())


def test_request_defaults_are_the_schema() -> None:
    request = Request(kind="breath", minutes=5)
    for option in options.OPTIONS:
        if option.field == "minutes":
            continue
        value = getattr(request, option.field)
        assert (value.value if isinstance(value, Pace) else value) == option.default, option.field


def test_plan_keys_are_the_schema() -> None:
    assert set(planfile.OPTIONS) == {o.key for o in options.OPTIONS} - {"minutes"}
    assert {"day", "kind", "minutes", *planfile.OPTIONS} == planfile.SESSION_KEYS


def test_readme_options_table_is_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    assert options.options_table() in readme, (
        "README.md's options table differs from the schema; paste the output of "
        "python -c 'from audioguide.options import options_table; print(options_table())'")


def test_readme_kinds_table_is_the_kinds() -> None:
    from audioguide.script.templates import kinds_table

    readme = (ROOT / "README.md").read_text()
    assert kinds_table() in readme, (
        "README.md's kinds table differs from the templates; paste the output of "
        "python -c 'from audioguide.script.templates import kinds_table; print(kinds_table())'")


def test_public_api() -> None:
    from audioguide.builder import build
    from audioguide.errors import AudioguideError
    from audioguide.planning import plan

    assert audioguide.build is build and audioguide.plan is plan
    assert audioguide.AudioguideError is AudioguideError
    assert audioguide.Request is Request
    assert "pyttsx3" in audioguide.ENGINES and "breath" in audioguide.kinds()
    for name in audioguide.__all__:
        value = getattr(audioguide, name)
        assert name == "__version__" or value.__doc__, name
    assert "MP3" in (audioguide.build.__doc__ or "")


def test_import_is_lazy() -> None:
    code = ("import sys, audioguide, audioguide.cli; "
            "print(sorted(m for m in ('numpy', 'jinja2', 'mutagen', 'pydub', 'pyttsx3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_no_import_aliases_hide_module_names() -> None:
    aliased = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # the public API's re-export table
        for line in path.read_text().splitlines():
            match = re.match(r"\s*from audioguide\S* import (\w+) as (\w+)", line)
            if match and match[1] != match[2]:
                aliased.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert aliased == []
