"""The distribution installs one import name, `hwnas`, so a user's own modules named like its
parts (`search.py`, `latency.py`) cannot break it, nor it them."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path


def test_hwnas_is_the_only_top_level_name_installed() -> None:
    top_level = metadata.distribution("hwnas").read_text("top_level.txt")
    assert top_level is not None and top_level.split() == ["hwnas"]


def test_python_m_hwnas_works_beside_a_users_search_and_latency_modules(tmp_path: Path) -> None:
    for name in ("search", "latency", "arch"):
        (tmp_path / f"{name}.py").write_text(f"raise SystemExit('the user\\'s {name}.py ran')\n")
    for args in (["--help"], ["pick", "--help"], ["search", "--help"]):
        done = subprocess.run([sys.executable, "-m", "hwnas", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Usage" in done.stdout
