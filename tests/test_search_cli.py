"""`hwnas search` through typer: a short digits search, and every refusal as a UserError."""

from __future__ import annotations

import pytest
import torch
import typer
from conftest import TINY_SPACE, synthetic_table
from typer.testing import CliRunner

from hwnas.arch.space import PRESETS
from hwnas.cli.search import search
from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable, write_table

app = typer.Typer()
app.command()(search)  # hwnas/cli.py registers the same function as `hwnas search`

QUICK = ["--epochs", "2", "--limit-train", "32", "--batch-size", "16"]


@pytest.fixture
def table_path(tmp_path, tiny_table):
    return write_table(tiny_table, tmp_path / "tiny.parquet")


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_short_search_on_digits_writes_a_run(tmp_path, table_path) -> None:
    out = tmp_path / "runs"
    result = _invoke("--table", table_path, "--out", out, *QUICK)
    assert result.exit_code == 0, result.output
    run = out / "tiny-digits-seed0"
    assert "epoch   2/2" in result.output and "latency at s_dev" in result.output
    assert {p.name for p in run.iterdir()} == {"config.json", "checkpoint.pt", "metrics.csv"}
    assert (out / "LATEST").read_text().strip() == run.name
    again = _invoke("--table", table_path, "--out", out, "--resume", *QUICK)
    assert again.exit_code == 0, again.output
    assert "/2  loss" not in again.output  # a finished run has no epoch left to train


def test_sampling_reaches_the_run(tmp_path, table_path) -> None:
    out = tmp_path / "runs"
    result = _invoke("--table", table_path, "--out", out, "--sampling", "hard", *QUICK)
    assert result.exit_code == 0, result.output
    assert "hard sampling" in result.output
    assert '"sampling": "hard"' in (out / "tiny-digits-seed0" / "config.json").read_text()


def _refusal(*args: str) -> str:
    result = _invoke(*args)
    assert result.exit_code != 0
    assert isinstance(result.exception, UserError), result.output
    return str(result.exception)


def test_existing_run_without_resume(tmp_path, table_path) -> None:
    out = tmp_path / "runs"
    assert _invoke("--table", table_path, "--out", out, "--name", "a", *QUICK).exit_code == 0
    message = _refusal("--table", table_path, "--out", out, "--name", "a", *QUICK)
    assert "already exists: pass --resume" in message


def test_missing_table(tmp_path) -> None:
    assert "hwnas profile" in _refusal("--table", tmp_path / "none.parquet")


def test_table_missing_entries_the_space_needs(tmp_path, tiny_table) -> None:
    rows = tiny_table.rows[tiny_table.rows["op"] != "conv_3x3"]
    path = write_table(LatencyTable.from_frame(rows, tiny_table.meta), tmp_path / "holes.parquet")
    message = _refusal("--table", path, "--out", tmp_path / "runs")
    assert "lacks" in message and "conv_3x3" in message
    assert not (tmp_path / "runs").exists()


def test_table_for_another_space(tmp_path) -> None:
    other = synthetic_table(PRESETS["exp1"], backends=("onnxruntime",))
    mislabelled = LatencyTable(other.records, {**other.meta, "space": TINY_SPACE.to_dict()})
    path = write_table(mislabelled, tmp_path / "other.parquet")
    assert "another space" in _refusal("--table", path, "--out", tmp_path / "runs")


def test_backend_the_table_lacks(tmp_path) -> None:
    path = write_table(synthetic_table(TINY_SPACE, backends=("torch",)), tmp_path / "t.parquet")
    message = _refusal("--table", path, "--backend", "onnxruntime", "--out", tmp_path / "r")
    assert "no onnxruntime measurements" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(tmp_path, table_path) -> None:
    message = _refusal("--table", table_path, "--device", "cuda", "--out", tmp_path / "runs")
    assert "--device cpu" in message
    assert not (tmp_path / "runs").exists()


def test_missing_fashion_mnist_names_its_files(tmp_path, table_path) -> None:
    message = _refusal("--table", table_path, "--dataset", "fashion-mnist", "--data-dir",
                       tmp_path / "data", "--out", tmp_path / "runs")
    assert "train-images-idx3-ubyte" in message and "--download" in message
    assert not (tmp_path / "runs").exists()


def test_unknown_dataset_is_refused(tmp_path, table_path) -> None:
    message = _refusal("--table", table_path, "--dataset", "mnist", "--out", tmp_path / "runs")
    assert "unknown data set 'mnist'" in message and ".npz" in message
    assert not (tmp_path / "runs").exists()


def test_bad_beta(tmp_path, table_path) -> None:
    assert "--beta" in _refusal("--table", table_path, "--beta", "2", "--out", tmp_path)


def test_ctrl_c_says_how_to_resume(tmp_path, table_path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hwnas.search.supernet.loop.run_search", interrupted)
    result = _invoke("--table", table_path, "--out", tmp_path / "runs", "--name", "x")
    assert result.exit_code == 130
    assert "--resume --name x" in result.output
