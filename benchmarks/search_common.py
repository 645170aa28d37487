"""Shared by the search benchmarks: the table to run on (a real one, or a synthetic exp1)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hwnas.arch.space import PRESETS, SearchSpace
from hwnas.latency.model.table import LatencyTable, read_table, write_table

TESTS = Path(__file__).resolve().parents[1] / "tests"


def benchmark_table(path: str | None,
                    space: SearchSpace = PRESETS["exp1"]) -> tuple[LatencyTable, Path]:
    """The table at `path`, or tests/conftest.py's synthetic table of `space` (default exp1)
    written to a temp file."""
    if path is None:
        sys.path.insert(0, str(TESTS))
        from conftest import synthetic_table

        folder = Path(tempfile.mkdtemp(prefix="hwnas-bench-"))
        written = write_table(synthetic_table(space), folder / f"synthetic-{space.name}.parquet")
        return read_table(written), written
    return read_table(path), Path(path)
