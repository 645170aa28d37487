"""`hwnas pick --rerank K`: off by default and then unchanged; the K best members under the
budget fine-tuned (exactly K, once: a repeated pick reads the run folder's cache) and the
choice made on their fine-tuned validation accuracy; bad values refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from conftest import TINY_SPACE, heavy_imports, tiny_run
from typer.testing import CliRunner

import hwnas
import hwnas.search.family.rerank as rerank_module
from hwnas.arch.genotypes import Genotype
from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.model.table import Record
from hwnas.search.family.cache import RERANK_FILE
from hwnas.search.family.choose import DEFAULT_RERANK
from hwnas.search.family.derive import member
from hwnas.search.family.pick import Budget, best_within, latency_column, ranked_within
from hwnas.search.family.rerank import fine_tune, rerank
from hwnas.search.family.sweep import LoadedRun, family, load_run
from hwnas.search.retrain.recipe import Recipe

runner = CliRunner()
BUDGET = ["--max-latency-ms", "1000"]  # every member of the tiny family fits
LATENCY = latency_column("onnxruntime")  # the run's backend


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run with its family swept and cached (23 members here)."""
    run_dir = tiny_run(tmp_path_factory.mktemp("rerank"), epochs=2)
    family(load_run(run_dir))
    return run_dir


@pytest.fixture
def run_dir(searched: Path, tmp_path: Path) -> Path:
    """A copy of the run for one test, its caches still valid (same checkpoint mtime) and no
    fine-tuned finalists yet."""
    copy = tmp_path / "run"
    shutil.copytree(searched, copy, ignore=shutil.ignore_patterns(RERANK_FILE))
    return copy


class FakeFineTune:
    """`fine_tune` returning a given accuracy per genotype (default 0.5), counting calls."""

    def __init__(self, accuracies: dict[str, float] | None = None) -> None:
        self.accuracies = accuracies or {}
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, run: LoadedRun, genotype: Genotype, epochs: int, recipe: Recipe,
                 seed: int) -> float:
        self.calls.append((genotype.to_json(), epochs, seed))
        return self.accuracies.get(genotype.to_json(), 0.5)


def _fake(monkeypatch: pytest.MonkeyPatch,
          accuracies: dict[str, float] | None = None) -> FakeFineTune:
    fake = FakeFineTune(accuracies)
    monkeypatch.setattr(rerank_module, "fine_tune", fake)
    return fake


def _ranked(run_dir: Path) -> list[Record]:
    """The family under the tests' budget, best inherited accuracy first."""
    members, _ = family(load_run(run_dir))
    return ranked_within(members, [Budget("run", "onnxruntime", 1000.0, LATENCY)])


def _pick(run_dir: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET, "--json", *args])
    assert result.exit_code == 0, result.output
    picked: dict[str, Any] = json.loads(result.stdout)
    return picked


def test_ranked_within_orders_as_best_within_breaks_ties() -> None:
    column = "ms"
    members = [{"genotype": name, "accuracy": acc, column: ms} for name, acc, ms in
               [("a", 0.5, 1.0), ("b", 0.7, 2.0), ("c", 0.7, 1.5), ("d", 0.9, 9.0),
                ("e", 0.7, 1.5)]]
    budgets = [Budget("t", "torch", 5.0, column)]
    ranked = ranked_within(members, budgets)
    assert [m["genotype"] for m in ranked] == ["c", "e", "b", "a"]  # d is over the budget
    assert ranked[0] is best_within(members, budgets)


def test_rerank_zero_keeps_todays_pick(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake(monkeypatch)
    assert DEFAULT_RERANK == 0
    plain = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET, "--json"])
    zero = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET, "--json", "--rerank",
                               "0", "--rerank-epochs", "3"])
    assert plain.exit_code == zero.exit_code == 0, plain.output + zero.output
    assert zero.stdout == plain.stdout
    picked = json.loads(plain.stdout)
    assert set(picked) == {"genotype", "s", "predicted_latency_ms", "accuracy", "val_accuracy",
                           "params", "op_counts", "backend", "run", "table_fingerprint",
                           "device", "test_accuracy", "devices"}
    assert json.dumps(picked["genotype"]) == json.dumps(json.loads(
        str(_ranked(run_dir)[0]["genotype"])))
    text = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET])
    assert text.exit_code == 0 and "(chosen on)" in text.stdout
    assert "finalists" not in text.stdout and "fine-tuned" not in text.stdout
    assert fake.calls == [] and not (run_dir / RERANK_FILE).exists()


def test_rerank_fine_tunes_exactly_k_finalists_and_chooses_on_finetuned_val(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranked = _ranked(run_dir)
    third = str(ranked[2]["genotype"])
    fake = _fake(monkeypatch, {third: 0.9})  # the third-best inherited member trains best
    picked = _pick(run_dir, "--rerank", "3", "--rerank-epochs", "2")
    assert [call[0] for call in fake.calls] == [str(m["genotype"]) for m in ranked[:3]]
    assert {call[1:] for call in fake.calls} == {(2, 0)}  # E epochs, the run's seed for all
    assert json.dumps(picked["genotype"]) == json.dumps(json.loads(third))
    assert picked["finetuned_val_accuracy"] == 0.9
    assert picked["accuracy"] == picked["val_accuracy"] == ranked[2]["accuracy"]  # inherited
    finalists = picked["finalists"]
    assert len(finalists) == 3
    for finalist, row in zip(finalists, ranked, strict=False):
        assert finalist["genotype"] == json.loads(str(row["genotype"]))
        assert finalist["inherited_val_accuracy"] == row["accuracy"]
        assert finalist["predicted_latency_ms"] == row[LATENCY]
        assert finalist["seconds"] >= 0 and finalist["cached"] is False
    assert [f["finetuned_val_accuracy"] for f in finalists] == [0.5, 0.5, 0.9]
    rerank_info = picked["rerank"]
    assert rerank_info["k"] == 3 and rerank_info["epochs"] == 2 and rerank_info["reused"] == 0
    assert rerank_info["cost_s"] == pytest.approx(sum(f["seconds"] for f in finalists))
    # the API takes the same options
    chosen = hwnas.pick(run_dir, max_latency_ms=1000, rerank=3, rerank_epochs=2)
    assert chosen.rerank is not None and chosen.genotype.to_json() == third
    assert len(fake.calls) == 3  # the API's pick read the CLI's results


def _records(values: list[tuple[float, float]]) -> list[Record]:
    """Finalists of the tiny space, (inherited accuracy, latency) each, ranked as given."""
    return [{"genotype": Genotype.from_picks(TINY_SPACE, [i] * TINY_SPACE.edges_per_cell,
                                             [0] * TINY_SPACE.edges_per_cell).to_json(),
             "accuracy": accuracy, LATENCY: ms} for i, (accuracy, ms) in enumerate(values)]


@pytest.mark.parametrize(("inherited", "finetuned", "expected"), [
    ([(0.8, 1.0), (0.7, 1.0), (0.6, 1.0)], [0.5, 0.6, 0.55], 1),  # best fine-tuned
    ([(0.8, 1.0), (0.7, 1.0), (0.6, 1.0)], [0.5, 0.6, 0.6], 1),  # tie: higher inherited
    ([(0.7, 2.0), (0.7, 1.0), (0.6, 0.5)], [0.6, 0.6, 0.6], 1),  # tie again: lower latency
    ([(0.7, 1.0), (0.7, 1.0), (0.6, 1.0)], [0.6, 0.6, 0.6], 0),  # and then the better rank
])
def test_ties_go_to_the_higher_inherited_accuracy_then_the_lower_latency(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inherited: list[tuple[float, float]],
        finetuned: list[float], expected: int) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"")  # what the cache is keyed by
    rows = _records(inherited)
    _fake(monkeypatch, {str(r["genotype"]): v for r, v in zip(rows, finetuned, strict=True)})

    def no_run() -> LoadedRun:
        return cast("LoadedRun", None)  # the fake fine-tune reads no run

    result = rerank(rows, 3, 1, 0, LATENCY, tmp_path, TINY_SPACE, no_run, Hooks())
    assert result.chosen == result.finalists[expected]
    assert result.chosen.genotype == rows[expected]["genotype"]


def test_a_repeated_pick_reuses_the_finalists(run_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ranked = _ranked(run_dir)
    fake = _fake(monkeypatch, {str(ranked[1]["genotype"]): 0.8})
    first = _pick(run_dir, "--rerank", "2", "--rerank-epochs", "1")
    assert len(fake.calls) == 2 and (run_dir / RERANK_FILE).is_file()
    again = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET, "--json", "--rerank",
                                "2", "--rerank-epochs", "1"])
    assert again.exit_code == 0, again.output
    assert len(fake.calls) == 2  # nothing trained
    assert "2 of 2 finalists' fine-tuned accuracies reused" in again.stderr
    second = json.loads(again.stdout)
    assert second["genotype"] == first["genotype"] and second["rerank"]["reused"] == 2
    assert [f["cached"] for f in second["finalists"]] == [True, True]
    assert [f["seconds"] for f in second["finalists"]] == [
        f["seconds"] for f in first["finalists"]]  # what they cost when computed
    text = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET, "--rerank", "2",
                               "--rerank-epochs", "1"])
    assert text.exit_code == 0, text.output
    for words in ("fine-tuned validation", "--rerank 2: finalists fine-tuned 1 epoch ",
                  "2 chosen", "(cached)", "re-ranking cost", "reused from the run folder's"):
        assert words in text.stdout, text.stdout
    assert len(fake.calls) == 2
    # a third finalist is the only one trained; other epochs are another result
    _pick(run_dir, "--rerank", "3", "--rerank-epochs", "1")
    assert [call[0] for call in fake.calls[2:]] == [str(ranked[2]["genotype"])]
    _pick(run_dir, "--rerank", "2", "--rerank-epochs", "2")
    assert [call[1] for call in fake.calls[3:]] == [2, 2]


def test_a_reranked_export_keeps_the_inherited_weights(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ranked = _ranked(run_dir)
    second = str(ranked[1]["genotype"])
    _fake(monkeypatch, {second: 0.9})
    picked = _pick(run_dir, "--rerank", "2", "--export", str(tmp_path / "export"))
    assert json.dumps(picked["genotype"]) == json.dumps(json.loads(second))
    saved = torch.load(tmp_path / "export" / "model.pt", weights_only=False)
    run = load_run(run_dir)
    inherited = member(TINY_SPACE, Genotype.from_json(second), run.supernet,
                       run.data().train).state_dict()
    assert saved["state_dict"].keys() == inherited.keys()
    for name, tensor in inherited.items():
        assert torch.equal(saved["state_dict"][name], tensor), name
    assert saved["provenance"]["rerank"]["k"] == 2


def test_a_real_rerank_is_deterministic_and_cached(run_dir: Path) -> None:
    """Two finalists really fine-tuned one epoch: the choice is the better of them, the
    figures repeat exactly, the supernet is untouched, and the repeat needs no torch."""
    picked = _pick(run_dir, "--rerank", "2", "--rerank-epochs", "1")
    finalists = picked["finalists"]
    assert len(finalists) == 2
    best = max(f["finetuned_val_accuracy"] for f in finalists)
    assert picked["finetuned_val_accuracy"] == best
    assert all(0.0 <= f["finetuned_val_accuracy"] <= 1.0 and f["seconds"] > 0
               for f in finalists)
    run = load_run(run_dir)
    before = {k: v.clone() for k, v in run.supernet.state_dict().items()}
    genotype = Genotype.from_json(json.dumps(finalists[0]["genotype"]))
    again = fine_tune(run, genotype, 1, Recipe(), 0)
    assert again == finalists[0]["finetuned_val_accuracy"]
    assert all(torch.equal(before[k], v) for k, v in run.supernet.state_dict().items())
    command = ["pick", "--run", str(run_dir), *BUDGET, "--json", "--rerank", "2",
               "--rerank-epochs", "1"]
    assert heavy_imports(command) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--rerank", "-1"], "--rerank must be 0 (off) or a number of finalists, got -1"),
    (["--rerank", "2", "--rerank-epochs", "0"], "--rerank-epochs must be at least 1, got 0"),
    (["--rerank-epochs", "-3"], "--rerank-epochs must be at least 1, got -3"),
])
def test_bad_rerank_values_are_refused_in_one_line(searched: Path, args: list[str],
                                                   message: str) -> None:
    result = runner.invoke(app, ["pick", "--run", str(searched), *BUDGET, *args])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_rerank_with_a_penalty_is_refused(searched: Path) -> None:
    result = runner.invoke(app, ["pick", "--run", str(searched), "--rerank", "2", "--penalty",
                                 "1,1,1"])
    assert result.exit_code == 2 and "--rerank chooses among the members under a budget" in \
        result.output
    assert len(result.output.strip().splitlines()) == 1
    with pytest.raises(UserError, match="--rerank must be"):
        hwnas.pick(searched, max_latency_ms=1000, rerank=-2)


def test_fewer_members_than_k_are_all_finalists(run_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake(monkeypatch)
    members = _ranked(run_dir)
    result = runner.invoke(app, ["pick", "--run", str(run_dir), *BUDGET, "--json", "--rerank",
                                 "1000", "--rerank-epochs", "1"])
    assert result.exit_code == 0, result.output
    assert f"only {len(members)} members fit, all of them are finalists" in result.stderr
    assert len(fake.calls) == len(json.loads(result.stdout)["finalists"]) == len(members)
