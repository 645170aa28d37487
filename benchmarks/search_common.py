"""Shared by the search benchmarks: the table to run on (a real one, or a synthetic exp1)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hwnas
from hwnas.arch.space import PRESETS, SearchSpace
from hwnas.latency.model.synthetic import synthetic_table
from hwnas.latency.model.table import LatencyTable, write_table


def benchmark_table(path: str | None,
                    space: SearchSpace = PRESETS["exp1"]) -> tuple[LatencyTable, Path]:
    """The table at `path`, or a synthetic table of `space` (default exp1) written to a temp
    file."""
    if path is None:
        folder = Path(tempfile.mkdtemp(prefix="hwnas-bench-"))
        written = write_table(synthetic_table(space), folder / f"synthetic-{space.name}.parquet")
        return hwnas.read_table(written), written
    return hwnas.read_table(path), Path(path)
