"""Benchmark ONNX Runtime's graph terms in the latency model, on networks calibration never saw.

    .venv/bin/python benchmarks/ort_graph_terms.py --table T [--seeds 1 2 3] [--n 30]
    .venv/bin/python benchmarks/ort_graph_terms.py --measured T.graph-terms-seed1.json ...
    .venv/bin/python benchmarks/ort_graph_terms.py --check-counts 100 [--space exp1]

`--check-counts K` compares the node counts `hwnas.latency.model.ort_graph` replays from the
genotype with
those of the graph a real ONNX Runtime session writes out, on K architectures of the space
(half varied mixtures, half uniform per edge), and prints how many agree exactly.

For each seed it measures `n` held-out networks as `hwnas validate --backend onnxruntime`
does (two passes in new processes, four reference networks alongside for the drift) and
saves them beside the table (`T.graph-terms-seedS.json`; `--measured` re-reads such files
instead of measuring). It then refits the table's onnxruntime calibration from the
calibration networks the table stores, twice on the same figures: the plain model (an
intercept and one scale per op) and the model with ONNX Runtime's graph terms (plus a cost
per Add and per reorder node of its optimised graph, counted by `hwnas.latency.model.ort_graph`),
and
prints for both the share of held-out networks within ±5% and ±10%, MAPE, the mean and the
worst error, raw and corrected by the drift, and the (corrected) MAPE of the latency search's
differentiable term gives each network. Run it under the CPU lock on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from hwnas.arch.genotypes import Genotype, mixture_genotypes, random_genotype
from hwnas.arch.space import cell_plans, load_space
from hwnas.latency.measure.backends.onnx_backend import export_onnx
from hwnas.latency.measure.networks import network_inputs
from hwnas.latency.model.ort_graph import counts, nchwc_block, session_counts
from hwnas.latency.model.predict import (
    LatencyModel,
    fit_calibration,
    latency_model,
    uncalibrated_model,
)
from hwnas.latency.model.table import read_table
from hwnas.latency.validate import (
    NOISY_PCT,
    calibration_networks,
    drift_factor,
    error_figures,
    error_pct,
    validate,
)

BACKEND = "onnxruntime"


def check_counts(space_name: str, count: int) -> None:
    """Replayed node counts against a real session's, on `count` architectures."""
    space = load_space(space_name)
    block = nchwc_block()
    genotypes = mixture_genotypes(space, count // 2, np.random.default_rng(0), False)
    generator = torch.Generator().manual_seed(0)
    genotypes += [random_genotype(space, generator) for _ in range(count - len(genotypes))]
    exact = 0
    for genotype in genotypes:
        real = session_counts(export_onnx(*network_inputs(space, genotype)))
        replayed = counts(space, genotype, block)
        exact += real == replayed
        if real != replayed:
            print(f"  differs: session {real}, replay {replayed}: {genotype.to_json()}")
    print(f"{space.name}, NCHWc block {block}: replayed (Add, reorder) counts equal the "
          f"session's on {exact} of {len(genotypes)} architectures")


def measure(table_path: Path, seed: int, n: int) -> Path:
    """Held-out networks measured now, saved beside the table."""
    report = validate(read_table(table_path), BACKEND, n, seed)
    out = table_path.with_name(f"{table_path.name}.graph-terms-seed{seed}.json")
    out.write_text(json.dumps({
        "table": str(table_path), "seed": seed, "drift_pct": report.drift_pct,
        "points": [{"genotype": json.loads(p.genotype.to_json()), "first_ms": p.first_ms,
                    "second_ms": p.second_ms} for p in report.points]}))
    return out


def models(table_path: str) -> dict[str, LatencyModel]:
    """The plain and the graph-term model, both fitted on the table's calibration networks."""
    table = read_table(table_path)
    base = uncalibrated_model(table, BACKEND)
    genotypes, measured_ms = calibration_networks(table, BACKEND)
    stored = latency_model(table, BACKEND, warn=False).calibration
    block = stored.nchwc_block if stored and stored.node_ms else nchwc_block()
    return {name: dataclasses.replace(base, calibration=fit_calibration(
        base, genotypes, measured_ms, nchwc_block=b)) for name, b in
        (("plain", None), ("graph terms", block))}


def soft_ms(model: LatencyModel, genotype: Genotype) -> float:
    """What search's differentiable latency gives the genotype (one-hot weights): no op
    shared between edges, the graph nodes at their mean cost."""
    edges = model.scaled_edge_ms()
    return model.constant_ms + sum(edges[plan.index][i][op] for plan in cell_plans(model.space)
                                   for i, op in enumerate(genotype.for_cell(plan)))


def evaluate(measured: Path) -> dict[str, dict[str, float]]:
    """Both models' error figures (raw and drift-corrected) on one file of held-out networks."""
    data = json.loads(measured.read_text())
    factor = drift_factor(data["drift_pct"])
    points = [(Genotype.from_json(json.dumps(p["genotype"])), min(p["first_ms"], p["second_ms"]))
              for p in data["points"]]
    figures = {}
    for name, model in models(data["table"]).items():
        errors = [error_pct(model.predict_ms(g), ms) for g, ms in points]
        corrected = [error_pct(model.predict_ms(g) * factor, ms) for g, ms in points]
        searched = [error_pct(soft_ms(model, g) * factor, ms) for g, ms in points]
        figures[name] = {**error_figures(errors, ""), **error_figures(corrected, "_corrected"),
                         "mean_pct": statistics.fmean(errors),
                         "mean_pct_corrected": statistics.fmean(corrected),
                         "search_mape_corrected": statistics.fmean(map(abs, searched)),
                         "fit_mape_pct": model.calibration.fit_mape_pct}  # type: ignore[union-attr]
    repeat = statistics.median(abs(p["first_ms"] - p["second_ms"])
                               / min(p["first_ms"], p["second_ms"]) for p in data["points"])
    moved = max(100 * repeat, abs(data["drift_pct"])) > NOISY_PCT
    print(f"{Path(data['table']).name} seed {data['seed']}: {len(points)} networks, drift "
          f"{data['drift_pct']:+.1f}%, repeatability {100 * repeat:.1f}%"
          + (" — the machine moved: these errors are the machine's, not the models'"
             if moved else ""))
    for name, f in figures.items():
        print(f"  {name:12s} fit {f['fit_mape_pct']:5.2f}% | raw: {_line(f, '')} | "
              f"corrected: {_line(f, '_corrected')} | search's latency: MAPE "
              f"{f['search_mape_corrected']:5.2f}%")
    return figures


def _line(f: dict[str, float], suffix: str) -> str:
    return (f"±10% {100 * f['within_10pct' + suffix]:5.1f}% ±5% "
            f"{100 * f['within_5pct' + suffix]:5.1f}% MAPE {f['mape' + suffix]:5.2f}% mean "
            f"{f['mean_pct' + suffix]:+5.1f}% worst {f['worst_pct' + suffix]:+6.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, action="append", default=[],
                        help="a profiled table with onnxruntime calibration (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--measured", type=Path, nargs="*", default=[],
                        help="files this script saved: evaluate them without measuring")
    parser.add_argument("--check-counts", type=int, default=0, metavar="K")
    parser.add_argument("--space", default="exp1", help="space of --check-counts")
    args = parser.parse_args()
    if args.check_counts:
        check_counts(args.space, args.check_counts)
    files = list(args.measured)
    for table in args.table:
        files += [measure(table, seed, args.n) for seed in args.seeds]
    runs = [evaluate(path) for path in files]
    if not runs:
        return
    for name in ("plain", "graph terms"):
        for suffix, label in (("", "raw"), ("_corrected", "corrected")):
            within = [run[name][f"within_10pct{suffix}"] for run in runs]
            mape = [run[name][f"mape{suffix}"] for run in runs]
            print(f"{name:12s} {label:9s} over {len(runs)} runs: ±10% mean "
                  f"{100 * statistics.fmean(within):.1f}% (min {100 * min(within):.1f}%), "
                  f"MAPE mean {statistics.fmean(mape):.2f}% (max {max(mape):.2f}%)")


if __name__ == "__main__":
    main()
