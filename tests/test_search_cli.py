"""`hwnas search` through typer: a short digits search, every refusal as a UserError, and the
run's files found by `pick` and `train` from another working directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from conftest import TINY_SPACE, synthetic_table
from typer.testing import CliRunner

from hwnas.arch.space import PRESETS
from hwnas.cli import app as hwnas_app
from hwnas.cli.search import search
from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable, write_table

app = typer.Typer()
app.command()(search)  # hwnas/cli.py registers the same function as `hwnas search`

QUICK = ["--epochs", "2", "--limit-train", "32", "--batch-size", "16"]
V0 = Path(__file__).parent / "fixtures" / "v0"  # files the previous version wrote


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


@pytest.mark.parametrize(("options", "recorded"), [((), "true"), (("--no-channels-last",),
                                                                   "false")])
def test_channels_last_is_the_default_and_can_be_turned_off(tmp_path, table_path,
                                                            options: tuple[str, ...],
                                                            recorded: str) -> None:
    out = tmp_path / "runs"
    result = _invoke("--table", table_path, "--out", out, *options, *QUICK)
    assert result.exit_code == 0, result.output
    assert ("channels-last" in result.output) == (recorded == "true")
    assert (f'"channels_last": {recorded}'
            in (out / "tiny-digits-seed0" / "config.json").read_text())


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
    result = CliRunner().invoke(hwnas_app, ["search", "--table", str(table_path), "--out",
                                            str(tmp_path / "runs"), "--name", "x"])
    assert result.exit_code == 130
    assert "run the same command with --resume" in result.output


def _npz(path: Path, images: np.ndarray) -> Path:
    """`images` (N×8×8) with labels cycling through the tiny space's 10 classes."""
    np.savez(path, x_train=images, y_train=np.arange(len(images)) % TINY_SPACE.classes)
    return path


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_non_finite_images_are_refused_before_anything_is_written(tmp_path, table_path,
                                                                  bad: float) -> None:
    images = np.random.default_rng(0).random((40, 8, 8))
    images[3, 2, 2] = bad  # 1e39: finite in float64, infinite once read as float32
    data = _npz(tmp_path / "bad.npz", images)
    result = CliRunner().invoke(hwnas_app, ["search", "--table", str(table_path), "--dataset",
                                            str(data), "--out", str(tmp_path / "runs"), *QUICK])
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()[-1]  # after the header naming the run
    assert message.startswith("error:") and result.output.count("error") == 1
    assert "bad.npz: x_train has 1 image(s) with NaN or infinite" in message
    assert not (tmp_path / "runs").exists()


def _cli(*args: object) -> str:
    result = CliRunner().invoke(hwnas_app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_pick_and_train_find_the_runs_files_from_another_folder(tmp_path, tiny_table,
                                                                monkeypatch) -> None:
    """The issue's report: search with relative paths in one folder, then pick from a
    subfolder and train from a third; a moved data set is named with the option that fixes
    it."""
    project, sub, elsewhere = tmp_path / "project", tmp_path / "project" / "sub", tmp_path / "e"
    sub.mkdir(parents=True)
    elsewhere.mkdir()
    write_table(tiny_table, project / "t.parquet")
    _npz(project / "fm.npz", np.random.default_rng(0).random((60, 8, 8)).astype(np.float32))
    monkeypatch.chdir(project)
    _cli("search", "--table", "t.parquet", "--dataset", "fm.npz", "--out", "runs", "--name",
         "r", "--epochs", "1", "--batch-size", "16")
    recorded = json.loads((project / "runs" / "r" / "config.json").read_text())
    assert recorded["table"]["path"] == str(project / "t.parquet")
    assert recorded["config"]["dataset"] == str(project / "fm.npz")
    monkeypatch.chdir(sub)
    _cli("pick", "--run", "../runs/r", "--max-latency-ms", "1000", "--export", "../exp")
    exported = json.loads((project / "exp" / "genotype.json").read_text())
    assert exported["table_path"] == str(project / "t.parquet")
    monkeypatch.chdir(elsewhere)
    _cli("train", "../project/exp", "--out", "m", "--epochs", "1")
    assert json.loads((elsewhere / "m" / "record.json").read_text())["dataset"] == str(
        project / "fm.npz")
    (project / "fm.npz").rename(elsewhere / "moved.npz")
    moved = CliRunner().invoke(hwnas_app, ["train", "../project/exp", "--out", "m2"])
    assert moved.exit_code == 2
    assert str(project / "fm.npz") in moved.output and "--dataset" in moved.output
    assert not (elsewhere / "m2").exists()
    _cli("train", "../project/exp", "--out", "m2", "--epochs", "1", "--dataset", "moved.npz")


def test_a_run_of_the_previous_version_is_read_from_another_folder(tmp_path,
                                                                   monkeypatch) -> None:
    """tests/fixtures/v0 recorded its table relative to the folder it searched in: pick (which
    reads the checkpoint to export) and train still find everything from elsewhere, and an old
    train folder resumes."""
    copy = tmp_path / "v0"
    shutil.copytree(V0, copy, ignore=shutil.ignore_patterns("bundle"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _cli("pick", "--run", copy / "runs" / "tiny", "--max-latency-ms", "1000", "--export", "exp")
    assert json.loads((elsewhere / "exp" / "genotype.json").read_text())["table_path"] == str(
        copy / "tiny.parquet")
    _cli("train", copy / "exports" / "model", "--out", copy / "exports" / "model", "--resume",
         "--epochs", "1")
