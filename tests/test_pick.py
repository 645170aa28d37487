"""`hwnas pick`: a tiny trained run is swept and picked; budget, query mode, export, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import TINY_SPACE, heavy_imports, synthetic_table, tiny_run
from typer.testing import CliRunner

import hwnas.latency.validate
from hwnas.arch.genotypes import Genotype
from hwnas.arch.network import discrete_network
from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.latency.model.table import read_table, write_table
from hwnas.search.config import SearchConfig
from hwnas.search.family.cache import FAMILY_FILE, PICK_TEST_FILE
from hwnas.search.family.derive import accuracy, inherit, member
from hwnas.search.family.pick import Budget, best_within, latency_column, parse_penalty
from hwnas.search.family.sweep import family, load_run
from hwnas.search.supernet.loop import run_search

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("pick"), epochs=2)


def test_sweep_keeps_distinct_members_and_caches_them(run_dir: Path) -> None:
    run = load_run(run_dir)
    found, cached = family(run)
    members = pd.DataFrame(found)
    assert not cached and len(members) >= 1
    assert members["genotype"].is_unique
    assert ((members["accuracy"] >= 0) & (members["accuracy"] <= 1)).all()
    for backend in ("torch", "onnxruntime"):
        assert (members[latency_column(backend)] > 0).all()
    counts = members[[f"count_{op}" for op in TINY_SPACE.ops]].sum(axis=1)
    assert (counts == 2 * TINY_SPACE.edges_per_cell).all()
    again, cached = family(load_run(run_dir))
    assert cached
    for column in ("genotype", "accuracy", "params", latency_column("torch")):
        assert [m[column] for m in again] == members[column].tolist()


def test_pick_respects_the_budget(run_dir: Path) -> None:
    """On a family whose accuracy grows with latency (a tiny run may have one member, so
    the family is built here from its first member at four latencies): the budget excludes
    every slower, more accurate member, and among members that fit it takes the most
    accurate, the faster one on a tie."""
    found, _ = family(load_run(run_dir))
    column = latency_column("torch")
    members = [{**found[0], "genotype": f"g{i}", column: ms, "accuracy": acc}
               for i, (ms, acc) in enumerate([(1.0, 0.5), (2.0, 0.7), (1.5, 0.7), (3.0, 0.9)])]

    def pick_under(budget_ms: float) -> str:
        return str(best_within(members, [Budget("t", "torch", budget_ms, column)])["genotype"])

    assert [pick_under(ms) for ms in (1.2, 1.7, 2.5, 3.0)] == ["g0", "g2", "g2", "g3"]
    with pytest.raises(UserError, match="the fastest takes 1.000 ms"):
        pick_under(0.5)


def test_inherited_member_computes_what_the_supernet_does_with_one_hot_edges(
        run_dir: Path) -> None:
    run = load_run(run_dir)
    s = torch.tensor([0.2, 0.3, 0.5])
    genotype = run.arch(s)
    member = inherit(TINY_SPACE, genotype, run.supernet).eval()
    logits = run.hypernet(s)
    one_hot = torch.nn.functional.one_hot(logits.argmax(-1), len(TINY_SPACE.ops)).float()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(member(x), run.supernet.eval()(x, one_hot[0], one_hot[1]),
                              atol=1e-5)


@pytest.mark.parametrize(("text", "expected", "note"), [
    ("conv_3x3=0.7,max_pool_3x3=0.15,skip_connect=0.15", [0.15, 0.15, 0.7], False),
    ("0.15, 0.7, 0.15", [0.15, 0.7, 0.15], False),
    ("1,1,2", [0.25, 0.25, 0.5], True),
])
def test_penalty_parses_and_normalises(text: str, expected: list[float], note: bool) -> None:
    s, message = parse_penalty(text, TINY_SPACE)
    assert s.tolist() == pytest.approx(expected)
    assert (message is not None) == note


@pytest.mark.parametrize(("text", "message"), [
    ("0.5,0.5", "has 2 values"),
    ("-0.1,0.6,0.5", "non-negative"),
    ("0,0,0", "sum to 0"),
    ("conv_3x3=0.5,max_pool_3x3=0.5", "leaves out skip_connect"),
    ("conv_7x7=1", "not an op of space"),
    ("conv_3x3=0.5,0.5,0", "mixes"),
    ("a,b,c", "not a number"),
])
def test_malformed_penalties_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_penalty(text, TINY_SPACE)


def test_cli_pick_json_export_and_plot(run_dir: Path, tmp_path: Path) -> None:
    export, plot = tmp_path / "export", tmp_path / "family.png"
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1000",
                                 "--json", "--export", str(export), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    picked = json.loads(result.stdout)
    for key in ("genotype", "s", "predicted_latency_ms", "accuracy", "val_accuracy",
                "test_accuracy", "params", "backend"):
        assert key in picked
    assert picked["backend"] == "onnxruntime" and picked["predicted_latency_ms"] <= 1000
    model = onnx.load(export / "model.onnx")
    onnx.checker.check_model(model)
    provenance = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert provenance["table_fingerprint"] == picked["table_fingerprint"]
    assert provenance["s"] == picked["s"] and provenance["seed"] == 0
    assert provenance["test_accuracy"] == picked["test_accuracy"]
    assert provenance["preprocessing"]["input_size"] == TINY_SPACE.input_size
    assert len(provenance["preprocessing"]["mean"]) == TINY_SPACE.input_channels
    saved = torch.load(export / "model.pt", weights_only=False)
    network = discrete_network(TINY_SPACE, load_run(run_dir).arch(
        torch.tensor(list(picked["s"].values())))).eval()
    network.load_state_dict(saved["state_dict"])
    x = torch.randn(1, 1, 8, 8)
    session = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        assert session.run(None, {"x0": x.numpy()})[0] == pytest.approx(
            network(x).numpy(), abs=1e-4)
    assert json.loads((export / "genotype.json").read_text())["genotype"] == picked["genotype"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_verify_measures_the_pick_in_new_processes(run_dir: Path) -> None:
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1000",
                                 "--json", "--verify"])
    assert result.exit_code == 0, result.output
    picked = json.loads(result.stdout)
    assert picked["measured_latency_ms"] > 0
    assert picked["machine_drift_pct"] is None  # the synthetic table has no calibration
    assert "than when it was profiled" not in result.output


def test_verify_warns_when_the_machine_has_moved(run_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(hwnas.latency.validate, "drift_pct", lambda now, then: 12.0)
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1000",
                                 "--json", "--verify"])
    assert result.exit_code == 0, result.output
    picked = json.loads(result.stdout)
    assert picked["machine_drift_pct"] == 12.0
    assert "calibration networks 12.0% slower than when it was profiled" in result.stderr
    measured, raw = picked["measured_latency_ms"], picked["predicted_latency_ms"]
    assert picked["error_pct_raw"] == pytest.approx(100 * (raw - measured) / measured)
    assert picked["error_pct_corrected"] == pytest.approx(
        100 * (raw * 1.12 - measured) / measured)


def test_recalibrate_scales_predictions_before_choosing(run_dir: Path, monkeypatch,
                                                         tmp_path: Path) -> None:
    members, _ = family(load_run(run_dir))
    fastest = min(float(m[latency_column("onnxruntime")]) for m in members)
    budget = ["--max-latency-ms", str(fastest * 1.2)]
    plain = runner.invoke(app, ["pick", "--run", str(run_dir), "--json", *budget])
    assert plain.exit_code == 0, plain.output
    uncalibrated = runner.invoke(app, ["pick", "--run", str(run_dir), "--recalibrate",
                                       *budget])
    assert uncalibrated.exit_code == 2 and "no onnxruntime calibration networks" in \
        uncalibrated.output
    # the machine now runs the references 50% slower than in the profile
    monkeypatch.setattr(hwnas.latency.validate, "reference_networks",
                        lambda table, backend: ([load_run(run_dir).arch(torch.ones(3) / 3)],
                                                [1.0]))
    monkeypatch.setattr(hwnas.latency.validate, "measure_now",
                        lambda table, backend, genotypes: ([], 50.0))
    slower = runner.invoke(app, ["pick", "--run", str(run_dir), "--recalibrate", *budget])
    assert slower.exit_code == 2 and "the fastest takes" in slower.output
    roomy = runner.invoke(app, ["pick", "--run", str(run_dir), "--recalibrate", "--json",
                                "--max-latency-ms", "1000", "--export", str(tmp_path / "e")])
    assert roomy.exit_code == 0, roomy.output
    picked = json.loads(roomy.stdout)
    assert picked["recalibration"] == {"drift_pct": 50.0, "factor": 1.5, "references": 1}
    assert picked["predicted_latency_ms"] == pytest.approx(
        1.5 * picked["predicted_latency_ms_raw"])
    provenance = {p.key: json.loads(p.value)
                  for p in onnx.load(tmp_path / "e" / "model.onnx").metadata_props}
    assert provenance["recalibration"] == picked["recalibration"]


def test_cli_query_mode_returns_the_member_at_s(run_dir: Path) -> None:
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--json", "--penalty",
                                 "max_pool_3x3=0.15,skip_connect=0.15,conv_3x3=0.7"])
    assert result.exit_code == 0, result.output
    picked = json.loads(result.stdout)
    expected = load_run(run_dir).arch(torch.tensor([0.15, 0.15, 0.7]))
    assert picked["genotype"] == json.loads(expected.to_json())
    assert picked["s"] == pytest.approx({"max_pool_3x3": 0.15, "skip_connect": 0.15,
                                         "conv_3x3": 0.7})


def test_cli_pick_errors(run_dir: Path, tmp_path: Path) -> None:
    none = runner.invoke(app, ["pick", "--runs", str(tmp_path), "--max-latency-ms", "3"])
    assert none.exit_code == 2 and "run `hwnas search` first" in none.output
    both = runner.invoke(app, ["pick", "--run", str(run_dir)])
    assert both.exit_code == 2 and "exactly one of" in both.output
    tiny = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1e-6"])
    assert tiny.exit_code == 2 and "the fastest takes" in tiny.output
    assert (run_dir / FAMILY_FILE).exists()


def test_run_accepts_a_runs_root_and_names_the_runs_inside_one(run_dir: Path,
                                                               tmp_path: Path) -> None:
    root = runner.invoke(app, ["pick", "--run", str(run_dir.parent), "--max-latency-ms",
                               "1000", "--json"])
    assert root.exit_code == 0, root.output
    assert json.loads(root.stdout)["run"] == str(run_dir)
    assert f"using its latest run, {run_dir}" in root.stderr
    unmarked = tmp_path / "runs"  # a root whose LATEST pointer is gone
    (unmarked / "a").mkdir(parents=True)
    (unmarked / "a" / "config.json").write_text("{}")
    refused = runner.invoke(app, ["pick", "--run", str(unmarked), "--max-latency-ms", "3"])
    assert refused.exit_code == 2 and "is a runs root" in refused.output
    assert str(unmarked / "a") in refused.output


def test_a_run_searched_with_torch_picks_on_torch(run_dir: Path, tmp_path: Path) -> None:
    """Runs recorded before ONNX Runtime became the default keep their backend."""
    old = _copy_run(run_dir, tmp_path / "old")
    record = json.loads((old / "config.json").read_text())
    record["config"]["backend"] = record["table"]["backend"] = "torch"
    (old / "config.json").write_text(json.dumps(record))
    result = runner.invoke(app, ["pick", "--run", str(old), "--max-latency-ms", "1000",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"] == "torch"


def _copy_run(run_dir: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("config.json", "checkpoint.pt"):
        (to / name).write_bytes((run_dir / name).read_bytes())
    return to


def test_a_changed_table_is_refused(run_dir: Path, tmp_path: Path) -> None:
    record = json.loads((run_dir / "config.json").read_text())
    moved = _copy_run(run_dir, tmp_path / "copy")
    other = synthetic_table(TINY_SPACE, latency=lambda key: 0.5)
    table_path = write_table(other, tmp_path / "changed.parquet")
    record["table"]["path"] = str(table_path)
    (moved / "config.json").write_text(json.dumps(record))
    result = runner.invoke(app, ["pick", "--run", str(moved), "--max-latency-ms", "3"])
    assert result.exit_code == 2 and "changed since run" in result.output
    table_path.unlink()
    gone = runner.invoke(app, ["pick", "--run", str(moved), "--max-latency-ms", "3"])
    assert gone.exit_code == 2 and "not found" in gone.output


def test_pick_chooses_on_validation_and_reports_test_accuracy(run_dir: Path) -> None:
    result = runner.invoke(app, ["pick", "--run", str(run_dir), "--max-latency-ms", "1000",
                                 "--json"])
    assert result.exit_code == 0, result.output
    picked = json.loads(result.stdout)
    run = load_run(run_dir)
    members = pd.DataFrame(family(run)[0])
    assert picked["accuracy"] == picked["val_accuracy"] == members["accuracy"].max()
    genotype = Genotype.from_json(json.dumps(picked["genotype"]))
    data = run.data()
    network = member(TINY_SPACE, genotype, run.supernet, data.train)
    assert picked["test_accuracy"] == accuracy(network, data.test)
    assert picked["test_accuracy"] != accuracy(network, data.val)  # another split
    # the family holds validation figures only; the pick's test figure is kept apart
    assert not any("test" in column for column in members.columns)
    stored = json.loads((run_dir / PICK_TEST_FILE).read_text())["test_accuracy"]
    assert stored[genotype.to_json()] == picked["test_accuracy"]
    assert set(stored) <= set(members["genotype"])


def test_a_run_from_before_the_test_split(run_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    family(load_run(run_dir))
    for name in ("config.json", "checkpoint.pt", FAMILY_FILE):
        shutil.copy2(run_dir / name, old / name)  # same mtime: the family cache stays valid
    record = json.loads((old / "config.json").read_text())
    del record["splits"]
    (old / "config.json").write_text(json.dumps(record))
    result = runner.invoke(app, ["pick", "--run", str(old), "--max-latency-ms", "1000"])
    assert result.exit_code == 0, result.output
    assert "before the data had a test split" in result.stderr
    config = SearchConfig(**{**record["config"], "out": str(tmp_path), "name": "old",
                             "resume": True, "epochs": 3})
    with pytest.raises(UserError, match="trained before the data's test split"):
        run_search(config, read_table(record["table"]["path"]))


def test_a_cached_budget_pick_imports_neither_torch_nor_pandas(run_dir: Path) -> None:
    pick = ["pick", "--run", str(run_dir), "--max-latency-ms", "1000", "--json"]
    first = runner.invoke(app, pick)
    assert first.exit_code == 0, first.output  # the family and the pick's test figure stored
    assert heavy_imports(pick) == []
