"""Calibration inside `hwnas profile` and `hwnas validate`, end to end on a tiny space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_SPACE, synthetic_table
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.hooks import Hooks
from hwnas.latency import validate as validate_module
from hwnas.latency.measure.profile import ProfileConfig, profile
from hwnas.latency.model.table import read_table, write_table
from hwnas.latency.runner.timing import TimingSettings
from hwnas.latency.validate import validate

QUICK = TimingSettings(warmup_s=0.002, block_s=0.001, min_calls=3, max_calls=20,
                       min_rounds=2, max_rounds=3)
runner = CliRunner()


@pytest.fixture(scope="module")
def calibrated_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tables") / "tiny.parquet"
    profile(ProfileConfig(TINY_SPACE, timing=QUICK, calibration_networks=6), out)
    return out


def test_profile_stores_a_calibration_per_backend(calibrated_table: Path) -> None:
    table = read_table(calibrated_table)
    for backend in ("torch", "onnxruntime"):
        stored = table.meta["calibration"][backend]
        assert stored["networks"] == 6
        assert set(stored["op_scale"]) == set(TINY_SPACE.ops)
        networks = table.meta["calibration_networks"][backend]
        assert len(networks) == 6 and all(n["measured_ms"] > 0 for n in networks)


def test_validate_measures_held_out_networks_twice(calibrated_table: Path) -> None:
    table = read_table(calibrated_table)
    warnings: list[str] = []
    report = validate(table, "torch", n=3, seed=5, hooks=Hooks(warn=warnings.append))
    assert report.calibrated
    assert not [w for w in warnings if "machine itself moved" not in w]  # noise may warn
    assert len(report.points) == 3
    for point in report.points:
        assert point.first_ms > 0 and point.second_ms > 0
        assert point.measured_ms == min(point.first_ms, point.second_ms)
    summary = report.summary()
    assert summary["n"] == 3 and 0 <= summary["within_10pct"] <= 1
    assert isinstance(summary["drift_pct"], float)
    assert summary["mape"] == pytest.approx(
        sum(abs(p.error_pct) for p in report.points) / 3)


def test_drift_compares_reference_networks_with_the_profile(calibrated_table: Path,
                                                            monkeypatch) -> None:
    table = read_table(calibrated_table)
    for net in table.meta["calibration_networks"]["torch"]:
        net["measured_ms"] = 0.5
    passes = iter([1.0, 2.0])  # every network: 1 ms in pass 1, 2 ms in pass 2

    def fake(fresh, backend, device, threads, space, genotypes, settings, **kwargs):
        value = next(passes)
        return [value] * len(genotypes)

    monkeypatch.setattr(validate_module, "deployed_latency_ms", fake)
    warnings: list[str] = []
    report = validate(table, "torch", n=3, seed=5, hooks=Hooks(warn=warnings.append))
    assert [p.measured_ms for p in report.points] == [1.0, 1.0, 1.0]
    assert warnings == ["torch: the machine itself moved by 100.0% during this check "
                        "(repeatability or drift above 5%): errors of that size are the "
                        "machine's, not the model's; re-run when it is quieter"]
    assert [p.repeat_pct for p in report.points] == [100.0, 100.0, 100.0]
    assert report.drift_pct == pytest.approx(100.0)  # 1 ms now against 0.5 ms in the profile
    summary = report.summary()
    assert summary["drift_factor"] == pytest.approx(2.0)
    corrected = [100 * (2 * p.predicted_ms - 1.0) for p in report.points]  # measured 1 ms
    assert summary["mape_corrected"] == pytest.approx(sum(map(abs, corrected)) / 3)
    assert summary["worst_pct_corrected"] == pytest.approx(max(corrected, key=abs))
    assert report.summary()["rank_correlation"] is None  # every network measured alike


def test_cli_validate_json_csv_and_plot(calibrated_table: Path, tmp_path: Path) -> None:
    csv, plot = tmp_path / "points.csv", tmp_path / "points.png"
    result = runner.invoke(app, ["validate", "--table", str(calibrated_table), "--backend",
                                 "onnxruntime", "--n", "3", "--json", "--csv", str(csv),
                                 "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("backend", "n", "within_5pct", "within_10pct", "mape", "worst_pct",
                "repeatability_pct", "within_10pct_corrected", "mape_corrected",
                "drift_factor"):
        assert key in summary
    assert summary["backend"] == "onnxruntime" and summary["n"] == 3
    assert csv.read_text().count("\n") == 4  # header + 3 networks
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_validate_warns_for_an_uncalibrated_table(tmp_path: Path) -> None:
    path = write_table(synthetic_table(TINY_SPACE, backends=("torch",)), tmp_path / "t.parquet")
    table = read_table(path)
    table.meta["timing"] = QUICK.to_dict()
    table.meta["device_name"] = "synthetic"
    warnings: list[str] = []
    report = validate(table, "torch", n=2, hooks=Hooks(warn=warnings.append))
    assert not report.calibrated and report.drift_pct is None
    assert any("no calibration" in w for w in warnings)
    assert any("was measured on 'synthetic'" in w for w in warnings)


def test_cli_validate_errors(tmp_path: Path) -> None:
    path = write_table(synthetic_table(TINY_SPACE, backends=("torch",)), tmp_path / "t.parquet")
    result = runner.invoke(app, ["validate", "--table", str(path), "--backend", "onnxruntime"])
    assert result.exit_code == 2 and "no onnxruntime entries" in result.output
    missing = runner.invoke(app, ["validate", "--table", str(tmp_path / "none.parquet")])
    assert missing.exit_code == 2 and "hwnas profile" in missing.output
