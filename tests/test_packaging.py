"""The wheel carries the templates, so `pip install .` works from any folder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

#: Every test here builds audio (or a week of it): the quick half of the suite skips them.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_templates_and_partials(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
         str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("audioguide-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"audioguide/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
               for p in (ROOT / "templates").rglob("*.j2")}
    assert shipped and shipped <= names
    assert "audioguide/cli.py" in names
