"""`hwnas predict`: the figure `pick` reports for its genotype, from the shell; one-line
errors for a missing, unreadable or foreign genotype file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import TINY_SPACE
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.latency.model.synthetic import synthetic_table
from hwnas.latency.model.table import read_table, write_table
from hwnas.search.config import SearchConfig
from hwnas.search.supernet.loop import run_search

runner = CliRunner()


@pytest.fixture(scope="module")
def picked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A tiny run's table, the pick's genotype written to a file, and `pick --json`."""
    folder = tmp_path_factory.mktemp("predict")
    table = write_table(synthetic_table(TINY_SPACE), folder / "tiny.parquet")
    config = SearchConfig(str(table), epochs=1, limit_train=64, batch_size=16,
                          val_fraction=0.05, out=str(folder / "runs"), name="tiny")
    run_dir = run_search(config, read_table(table)).run_dir
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1000",
                                 "--json"])
    assert result.exit_code == 0, result.output
    chosen = json.loads(result.stdout)
    genotype = folder / "genotype.json"
    genotype.write_text(json.dumps(chosen["genotype"]))
    return table, genotype, chosen


def _predict(*args: str) -> dict:
    result = runner.invoke(app, ["predict", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_predict_gives_the_figure_pick_reports(picked: tuple[Path, Path, dict]) -> None:
    table, genotype, chosen = picked
    predicted = _predict("--table", str(table), "--genotype", str(genotype))
    assert predicted["predicted_latency_ms"] == chosen["predicted_latency_ms"]
    assert predicted["backend"] == chosen["backend"] == "onnxruntime"
    assert predicted["table_fingerprint"] == chosen["table_fingerprint"]
    assert predicted["genotype"] == chosen["genotype"]
    on_torch = _predict("--table", str(table), "--genotype", str(genotype), "--backend", "torch")
    assert on_torch["backend"] == "torch"
    assert on_torch["predicted_latency_ms"] != predicted["predicted_latency_ms"]


def test_predict_reads_pick_json_and_prints_one_line(picked: tuple[Path, Path, dict],
                                                     tmp_path: Path) -> None:
    table, _, chosen = picked
    pick_json = tmp_path / "pick.json"
    pick_json.write_text(json.dumps(chosen))
    result = runner.invoke(app, ["predict", "--table", str(table), "--genotype", str(pick_json)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{chosen['predicted_latency_ms']:.3f} ms predicted on cpu "
                                    f"(onnxruntime, uncalibrated")
    assert "no calibration for onnxruntime" in result.stderr


def _foreign_genotype() -> str:
    wide = dataclasses.replace(TINY_SPACE, name="wide", nodes=3)
    return json.dumps({"normal": ["conv_3x3"] * wide.edges_per_cell,
                       "reduce": ["conv_3x3"] * wide.edges_per_cell})


@pytest.mark.parametrize(("content", "message"), [
    (None, "genotype file {file} not found"),
    ("{not json", "genotype file {file} is not readable JSON"),
    ('{"normal": ["conv_3x3"]}', "{file} holds no genotype"),
    (_foreign_genotype(), "genotype normal cell has 9 ops, the space 'tiny' has 5 edges"),
])
def test_a_bad_genotype_file_is_one_line(picked: tuple[Path, Path, dict], tmp_path: Path,
                                         content: str | None, message: str) -> None:
    table, _, _ = picked
    file = tmp_path / "g.json"
    if content is not None:
        file.write_text(content)
    result = runner.invoke(app, ["predict", "--table", str(table), "--genotype", str(file)])
    assert result.exit_code == 2
    assert message.format(file=file) in result.output
    assert "Traceback" not in result.output and result.stderr.count("error:") == 1


def test_a_backend_the_table_lacks_is_refused(picked: tuple[Path, Path, dict],
                                              tmp_path: Path) -> None:
    _, genotype, _ = picked
    torch_only = write_table(synthetic_table(TINY_SPACE, backends=("torch",)),
                             tmp_path / "torch.parquet")
    assert _predict("--table", str(torch_only), "--genotype", str(genotype))["backend"] == \
        "torch"
    result = runner.invoke(app, ["predict", "--table", str(torch_only), "--genotype",
                                 str(genotype), "--backend", "onnxruntime"])
    assert result.exit_code == 2 and "has no onnxruntime entries" in result.output
