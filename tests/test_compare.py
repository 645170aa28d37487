"""`hwnas table compare`: two tables of one space side by side, and where they rank ops apart."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import TINY_SPACE, synthetic_latency_ms, synthetic_table
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.latency.model.penalty import device_penalty
from hwnas.latency.model.table import write_table
from hwnas.latency.targets.compare import compare

runner = CliRunner()


def pool_dear(key) -> float:
    """A device where max-pool costs 100× more: dearer than the convolution everywhere."""
    return synthetic_latency_ms(key) * (100.0 if key.op == "max_pool_3x3" else 1.0)


def test_a_table_against_itself_agrees_everywhere() -> None:
    table = synthetic_table(TINY_SPACE)
    result = compare(table, table, "torch", "torch")
    assert result.rank_changes == []
    assert result.ops["ratio"].tolist() == pytest.approx([1.0] * len(TINY_SPACE.ops))
    assert (result.entries["ratio"] == 1.0).all()


def test_ratios_s_dev_and_rank_changes_of_two_devices() -> None:
    a, b = synthetic_table(TINY_SPACE), synthetic_table(TINY_SPACE, latency=pool_dear)
    result = compare(a, b, "torch", "torch")
    pool = result.entries[result.entries["op"] == "max_pool_3x3"]
    assert pool["ratio"].tolist() == pytest.approx([100.0] * len(pool))
    ops = result.ops.set_index("op")
    assert ops.loc["max_pool_3x3", "b_s_dev"] == pytest.approx(
        device_penalty(b, "torch")["max_pool_3x3"])
    assert ops.loc["max_pool_3x3", "ratio"] > 1 and ops.loc["conv_3x3", "ratio"] == \
        pytest.approx(1.0)
    assert "on every edge: max_pool_3x3 is cheaper on A, conv_3x3 on B" in result.rank_changes
    assert any(change.startswith("edges at 4×8×8 stride 1") for change in result.rank_changes)


def test_other_spaces_and_missing_backends_are_refused() -> None:
    a = synthetic_table(TINY_SPACE)
    other = synthetic_table(dataclasses.replace(TINY_SPACE, name="wide", channels=6))
    with pytest.raises(UserError, match="A 'tiny'.*B 'wide'"):
        compare(a, other, "torch", "torch")
    with pytest.raises(UserError, match="table B has no tensorrt entries"):
        compare(a, a, "torch", "tensorrt")


def test_cli_compare_prints_and_writes_json(tmp_path: Path) -> None:
    a = write_table(synthetic_table(TINY_SPACE), tmp_path / "a.parquet")
    b = write_table(synthetic_table(TINY_SPACE, ("onnxruntime",), latency=pool_dear),
                    tmp_path / "b.parquet")
    shown = runner.invoke(app, ["table", "compare", str(a), str(b)])
    assert shown.exit_code == 0, shown.output
    assert "rank operations differently" in shown.output and "B/A" in shown.output
    printed = runner.invoke(app, ["table", "compare", str(a), str(b), "--json"])
    data = json.loads(printed.stdout)
    assert data["backend_a"] == data["backend_b"] == "onnxruntime"
    assert {row["op"] for row in data["ops"]} == set(TINY_SPACE.ops)
    wrong = runner.invoke(app, ["table", "compare", str(a), str(b), "--backend-b", "torch"])
    assert wrong.exit_code == 2 and "no torch entries" in wrong.output
