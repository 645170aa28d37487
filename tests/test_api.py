"""The Python API (`import hwnas`) and the pick as a library call: light to import, the same
answers as the CLI, several budgets at once, training a genotype."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_SPACE
from typer.testing import CliRunner

import hwnas
from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.model.synthetic import synthetic_latency_ms, synthetic_table
from hwnas.latency.model.table import read_table, write_table
from hwnas.search.config import SearchConfig
from hwnas.search.family.choose import PickRequest
from hwnas.search.family.choose import pick as choose
from hwnas.search.supernet.loop import run_search

runner = CliRunner()


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny run searched on one table, and a second table of the same space whose
    convolutions are ten times dearer (another device)."""
    folder = tmp_path_factory.mktemp("api")
    table = write_table(synthetic_table(TINY_SPACE), folder / "host.parquet")
    board = write_table(synthetic_table(
        TINY_SPACE, latency=lambda key: synthetic_latency_ms(key) * (
            10.0 if key.op == "conv_3x3" else 1.0)), folder / "board.parquet")
    config = SearchConfig(str(table), epochs=2, limit_train=64, batch_size=16,
                          val_fraction=0.05, out=str(folder / "runs"), name="tiny")
    return run_search(config, read_table(table)).run_dir, table, board


def _heavy_imports_of(code: str) -> list[str]:
    """Which of torch and pandas `code` leaves imported, run in a new process."""
    done = subprocess.run([sys.executable, "-c", f"import json, sys; {code}; print(json.dumps("
                           "[m for m in ('torch', 'pandas') if m in sys.modules]))"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_hwnas_is_light_and_a_cached_pick_stays_so(
        searched: tuple[Path, Path, Path]) -> None:
    run_dir, _, _ = searched
    assert _heavy_imports_of("import hwnas") == []
    hwnas.pick(run_dir, max_latency_ms=1000)  # the family and the pick's test figure cached
    assert _heavy_imports_of(f"import hwnas; hwnas.pick({str(run_dir)!r}, "
                                "max_latency_ms=1000)") == []


def test_the_library_pick_is_what_the_cli_prints(searched: tuple[Path, Path, Path]) -> None:
    run_dir, _, _ = searched
    chosen = hwnas.pick(run_dir, max_latency_ms=1000)
    cli = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1000",
                              "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout) == json.loads(json.dumps(chosen.to_dict()))
    assert chosen.member["accuracy"] == max(m["accuracy"] for m in chosen.members)
    assert chosen.predicted_latency_ms == chosen.to_dict()["predicted_latency_ms"] <= 1000


def test_budgets_on_two_devices_bind_the_library_pick(searched: tuple[Path, Path, Path]) -> None:
    run_dir, host, board = searched
    on_board = hwnas.load_family(run_dir, board)
    budget_board = sorted(m["predicted_ms_onnxruntime"] for m in on_board)[len(on_board) // 2]
    chosen = hwnas.pick(run_dir, budgets={host: 1000.0, board: budget_board})
    assert [d.name for d in chosen.devices] == [str(host), str(board)]
    fitting = [m for m in on_board if m["predicted_ms_onnxruntime"] <= budget_board]
    assert chosen.member["accuracy"] == max(m["accuracy"] for m in fitting)
    assert chosen.to_dict()["devices"][1]["predicted_latency_ms"] <= budget_board
    with pytest.raises(UserError, match="board.parquet .onnxruntime, 1e-06 ms. binds"):
        hwnas.pick(run_dir, budgets={host: 1000.0, board: 1e-6})


@pytest.mark.parametrize(("request_", "message"), [
    (PickRequest(), "exactly one of"),
    (PickRequest(max_latency_ms=3.0, penalty="1,1,1"), "exactly one of"),
    (PickRequest(budgets=(("t.parquet", 3.0),), table=Path("t.parquet")), "names its own"),
])
def test_a_request_says_how_to_choose_exactly_once(request_: PickRequest, message: str) -> None:
    with pytest.raises(UserError, match=message):
        choose(request_)


def test_recalibrating_needs_calibration_networks(searched: tuple[Path, Path, Path]) -> None:
    run_dir, _, _ = searched
    warnings: list[str] = []
    with pytest.raises(UserError, match="no onnxruntime calibration networks"):
        choose(PickRequest(run=run_dir, max_latency_ms=1000, recalibrate=True),
               Hooks(warn=warnings.append))
    assert any("no calibration for onnxruntime" in w for w in warnings)


def test_predict_latency_matches_the_pick_and_takes_every_genotype_form(
        searched: tuple[Path, Path, Path], tmp_path: Path) -> None:
    run_dir, host, _ = searched
    chosen = hwnas.pick(run_dir, max_latency_ms=1000)
    picked = chosen.to_dict()
    file = tmp_path / "pick.json"
    file.write_text(json.dumps(picked))
    for form in (chosen.genotype, picked["genotype"], picked, file, str(file)):
        prediction = hwnas.predict_latency(form, host)
        assert prediction.latency_ms == chosen.predicted_latency_ms
        assert prediction.backend == "onnxruntime" and not prediction.calibrated
    torch_ms = hwnas.predict_latency(file, hwnas.read_table(host), "torch").latency_ms
    assert torch_ms == pytest.approx(chosen.member["predicted_ms_torch"])


def test_train_a_genotype_quotes_its_predicted_latency(searched: tuple[Path, Path, Path],
                                                       tmp_path: Path) -> None:
    run_dir, host, _ = searched
    chosen = hwnas.pick(run_dir, max_latency_ms=1000)
    result = hwnas.train(chosen.genotype, host, tmp_path / "model", epochs=1, limit_train=32)
    assert result.record["predicted_latency_ms"] == chosen.predicted_latency_ms
    assert result.record["genotype"] == chosen.to_dict()["genotype"]
    assert 0 <= float(result.record["test_accuracy"]) <= 1  # type: ignore[arg-type]
    assert Path(result.files["onnx"]).is_file()
