"""Files written before the move to one import root still load: a table, a search run (its
checkpoint and family caches), a pick export, a trained model and a bundle's results
(`tests/fixtures/v0/README.md` says how they were made)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.latency.model.table import read_table

V0 = Path(__file__).parent / "fixtures" / "v0"
runner = CliRunner()


@pytest.fixture
def old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the old files, as the working directory they were written from."""
    folder = tmp_path / "v0"
    shutil.copytree(V0, folder)
    monkeypatch.chdir(folder)
    return folder


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_an_old_table_reads_with_its_fingerprint(old: Path) -> None:
    table = read_table(old / "tiny.parquet")
    config = json.loads((old / "runs" / "tiny" / "config.json").read_text())
    assert table.fingerprint == config["table"]["fingerprint"]


def test_an_old_run_is_picked_from_its_cache_and_exported_from_its_checkpoint(old: Path) -> None:
    cached = json.loads(invoke("pick", "--run", "runs/tiny", "--max-latency-ms", "100",
                               "--json"))
    old_pick = json.loads((old / "exports" / "pick" / "genotype.json").read_text())
    assert cached["genotype"] == old_pick["genotype"]
    invoke("pick", "--run", "runs/tiny", "--max-latency-ms", "100", "--export", "exports/again")
    assert (old / "exports" / "again" / "model.onnx").stat().st_size > 0


def test_an_old_run_resumes_from_its_checkpoint(old: Path) -> None:
    metrics = old / "runs" / "tiny" / "metrics.csv"
    before = metrics.read_text()
    invoke("search", "--table", "tiny.parquet", "--epochs", "1", "--limit-train", "64",
           "--batch-size", "16", "--out", "runs", "--name", "tiny", "--resume")
    assert metrics.read_text() == before  # the finished epoch is kept, not trained again


def test_an_old_export_and_an_old_trained_model_train_on(old: Path) -> None:
    invoke("train", "exports/pick", "--out", "exports/model2", "--epochs", "1")
    record = json.loads((old / "exports" / "model2" / "record.json").read_text())
    assert 0 <= record["test_accuracy"] <= 1
    metrics = old / "exports" / "model" / "metrics.csv"
    before = metrics.read_text()
    invoke("train", "exports/pick", "--out", "exports/model", "--epochs", "1", "--resume")
    assert metrics.read_text() == before


def test_old_bundle_results_import(old: Path) -> None:
    invoke("table", "import", "results.json", "--bundle", "bundle", "--out", "board.parquet")
    assert len(read_table(old / "board.parquet").records) > 0
