"""One search, many devices: `pick --table` prices the family with another device's table
(cached per fingerprint), `pick --budget` fits several devices at once, and a target's
bundle results become a table `pick` uses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SPACE, heavy_imports, synthetic_latency_ms, synthetic_table
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.latency.model.predict import latency_model
from hwnas.latency.model.table import read_table, write_table
from hwnas.search.config import SearchConfig
from hwnas.search.family.cache import latency_file
from hwnas.search.family.pick import Budget, best_within, parse_budget
from hwnas.search.family.pricing import device_column
from hwnas.search.family.sweep import family, load_run
from hwnas.search.supernet.loop import run_search

runner = CliRunner()


def conv_dear(key) -> float:
    """Another device: convolutions twenty times dearer, so it ranks the ops differently."""
    return synthetic_latency_ms(key) * (20.0 if key.op == "conv_3x3" else 1.0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny run searched on one table, and a second table of the same space."""
    folder = tmp_path_factory.mktemp("devices")
    table = write_table(synthetic_table(TINY_SPACE), folder / "host.parquet")
    other = write_table(synthetic_table(TINY_SPACE, latency=conv_dear), folder / "board.parquet")
    config = SearchConfig(str(table), backend="torch", epochs=2, limit_train=64,
                          batch_size=16, val_fraction=0.05, out=str(folder / "runs"),
                          name="tiny")
    run_dir = run_search(config, read_table(table)).run_dir
    family(load_run(run_dir))  # accuracies cached, as after any first pick
    return run_dir, table, other


def _pick(*args: str) -> dict:
    result = runner.invoke(app, ["pick", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_pick_with_another_table_prices_the_family_on_that_device(
        runs: tuple[Path, Path, Path]) -> None:
    run_dir, _, other = runs
    picked = _pick("--run", str(run_dir), "--table", str(other), "--max-latency-ms", "1000")
    from hwnas.arch.genotypes import Genotype

    genotype = Genotype.from_json(json.dumps(picked["genotype"]))
    expected = latency_model(read_table(other), "torch", warn=False).predict_ms(genotype)
    assert picked["predicted_latency_ms"] == pytest.approx(expected)
    assert picked["table_fingerprint"] == read_table(other).fingerprint
    assert (run_dir / latency_file(read_table(other).fingerprint)).is_file()


def test_a_cached_pick_with_a_second_table_imports_neither_torch_nor_pandas(
        runs: tuple[Path, Path, Path]) -> None:
    run_dir, host, other = runs
    pick = ["--run", str(run_dir), "--table", str(other), "--max-latency-ms", "1000"]
    _pick(*pick)
    assert heavy_imports(["pick", *pick, "--json"]) == []
    budgets = ["--run", str(run_dir), "--budget", f"{host}=1000", "--budget", f"{other}=1000"]
    _pick(*budgets)
    assert heavy_imports(["pick", *budgets, "--json"]) == []


def test_a_table_of_another_space_is_refused(runs: tuple[Path, Path, Path],
                                             tmp_path: Path) -> None:
    run_dir, _, _ = runs
    wide = dataclasses.replace(TINY_SPACE, name="wide", channels=6)
    path = write_table(synthetic_table(wide), tmp_path / "wide.parquet")
    for args in (["--table", str(path), "--max-latency-ms", "5"],
                 ["--budget", f"{path}=5"]):
        result = runner.invoke(app, ["pick", "--run", str(run_dir), *args])
        assert result.exit_code == 2, result.output
        assert "measured space 'wide'" in result.output and "searched space 'tiny'" in \
            result.output


def test_budgets_on_two_devices_fit_both(runs: tuple[Path, Path, Path]) -> None:
    run_dir, host, other = runs
    members = pd.DataFrame(family(load_run(run_dir))[0])
    host_ms = members["predicted_ms_torch"]
    board_ms = pd.DataFrame(family(load_run(run_dir), table=read_table(other))[0])[
        "predicted_ms_torch"]
    budget_host, budget_board = float(host_ms.max()) + 1, float(board_ms.median())
    picked = _pick("--run", str(run_dir), "--budget", f"{host}={budget_host}",
                   "--budget", f"{other}={budget_board}")
    on = {d["table"]: d for d in picked["devices"]}
    assert on[str(host)]["predicted_latency_ms"] <= budget_host
    assert on[str(other)]["predicted_latency_ms"] <= budget_board
    fitting = members[(host_ms <= budget_host) & (board_ms <= budget_board)]
    assert picked["accuracy"] == fitting["accuracy"].max()


def test_when_no_member_fits_the_binding_device_is_named(runs: tuple[Path, Path, Path]) -> None:
    run_dir, host, other = runs
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--budget", f"{host}=1000",
                                 "--budget", f"{other}=1e-6"])
    assert result.exit_code == 2
    assert f"{other} (torch, 1e-06 ms) binds; the fastest member there takes" in result.output


def test_best_within_takes_the_most_accurate_member_fitting_every_budget() -> None:
    members = pd.DataFrame({"accuracy": [0.9, 0.8, 0.7, 0.95],
                            device_column(0): [1.0, 2.0, 1.0, 5.0],
                            device_column(1): [9.0, 3.0, 2.0, 1.0]}).to_dict("records")
    budgets = [Budget("a", "torch", 2.5, device_column(0)),
               Budget("b", "onnxruntime", 4.0, device_column(1))]
    assert best_within(members, budgets)["accuracy"] == 0.8
    with pytest.raises(UserError, match="b .onnxruntime, 0.5 ms. binds.*takes 1.000 ms"):
        best_within(members, [budgets[0], dataclasses.replace(budgets[1], budget_ms=0.5)])


@pytest.mark.parametrize(("text", "message"), [
    ("tables/board.parquet", "write TABLE=MS"),
    ("=3", "write TABLE=MS"),
    ("t.parquet=0", "not a positive number"),
    ("t.parquet=-2", "not a positive number"),
    ("t.parquet=nan", "not a positive number"),
    ("t.parquet=fast", "not a positive number"),
])
def test_malformed_budgets_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_budget(text)


def test_a_budget_on_a_missing_table_is_one_line(runs: tuple[Path, Path, Path],
                                                 tmp_path: Path) -> None:
    run_dir, _, _ = runs
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--budget",
                                 f"{tmp_path}/none.parquet=3"])
    assert result.exit_code == 2 and "none.parquet" in result.output and "not found" in \
        result.output
    assert "Traceback" not in result.output


def test_plot_shows_every_budget(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    run_dir, host, other = runs
    plot = tmp_path / "two.png"
    picked = _pick("--run", str(run_dir), "--budget", f"{host}=1000", "--budget",
                   f"{other}=1000", "--plot", str(plot))
    assert picked["plot"] == str(plot) and plot.read_bytes()[:4] == b"\x89PNG"


def test_bundle_run_import_then_pick_on_the_imported_table(
        runs: tuple[Path, Path, Path], measured: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, _, _ = runs
    bundle, results = measured
    board = tmp_path / "board.parquet"
    imported = runner.invoke(app, ["table", "import", str(results), "--bundle", str(bundle),
                                   "--out", str(board)])
    assert imported.exit_code == 0, imported.output
    picked = _pick("--run", str(run_dir), "--table", str(board), "--max-latency-ms", "1000")
    machine = json.loads(results.read_text())["machine"]
    assert picked["backend"] == "onnxruntime"  # the imported table's only backend
    assert picked["devices"][0]["device_name"] == machine["cpu_model"]
    verify = runner.invoke(app, ["pick", "--run", str(run_dir), "--table", str(board),
                                 "--max-latency-ms", "1000", "--verify"])
    assert verify.exit_code == 2 and "through a bundle" in verify.output
