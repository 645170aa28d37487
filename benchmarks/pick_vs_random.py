"""Does the search beat drawing architectures at random? For 2–3 budgets inside the family's
latency range: the pick against random architectures of the space whose predicted latency lies
within ±5% of the pick's (drawn as the latency calibration draws them: op proportions from a
flat Dirichlet, then every edge from them, because uniform per-edge draws almost never land
on a fast architecture; then kept when within ±5%), every one trained from scratch with
`hwnas train`'s recipe for the same epochs on the same (small) share of the training images,
on several seeds; test accuracy mean ± std for each; the pick's inherited / fine-tuned /
from-scratch accuracy; and Kendall's τ between the inherited (one-shot) validation accuracy
and the trained test accuracy.

A figure-printing script, not a test. Resumable: every finished training is appended to
`--results` (CSV), and a rerun skips what is there, so it can run in short chunks
(`--max-minutes`), e.g. under `flock /tmp/hwnas-cpu.lock`.

    python benchmarks/pick_vs_random.py [--run runs/NAME] [--budgets 0.4,0.6] [--epochs 4]
        [--limit-train 300] [--random 8] [--seeds 2] [--results FILE.csv] [--max-minutes 7]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau  # a scikit-learn dependency: tau-b, which handles ties

import hwnas
from hwnas.arch.genotypes import Genotype, mixture_genotypes
from hwnas.arch.network import discrete_network
from hwnas.latency.model.predict import latency_model
from hwnas.search.data.dataset import Dataset, load_dataset
from hwnas.search.family.derive import accuracy, inherit, member_network
from hwnas.search.family.pick import Budget, best_within, genotype_of, latency_column
from hwnas.search.family.sweep import LoadedRun
from hwnas.search.retrain.fit import evaluate, fit
from hwnas.search.retrain.recipe import Recipe

TOLERANCE = 0.05  # random architectures lie within ±5% of the pick's predicted latency
DRAWS = 50_000  # random genotypes tried per budget before giving up on finding enough
BATCH = 500
FIELDS = ("budget_ms", "kind", "index", "seed", "genotype", "predicted_ms", "inherited_val",
          "inherited_test", "val", "test", "train_s")


def main() -> None:
    args = _arguments()
    run = hwnas.load_run(args.run or "runs")  # a run, or the runs root's latest
    backend = args.backend or run.config.backend
    members = hwnas.load_family(run)
    column = latency_column(backend)
    latencies_ms = [float(member[column]) for member in members]  # type: ignore[arg-type]
    budgets = ([float(b) for b in args.budgets.split(",")] if args.budgets
               else _default_budgets(latencies_ms))
    data = load_dataset(args.dataset or run.config.dataset, run.space,
                        run.config.data_dir, limit_train=args.limit_train)
    results = Path(args.results)
    done = _read(results)
    deadline = time.monotonic() + 60 * args.max_minutes
    print(f"run {run.path} ({backend}); family {min(latencies_ms):.3f}–"
          f"{max(latencies_ms):.3f} ms; budgets {budgets}; {args.epochs} epochs on "
          f"{len(data.train)} training images; {args.random} random × {args.seeds} seeds")
    complete = True
    for budget in budgets:
        pick = best_within(members, [Budget("run's table", backend, budget, column)])
        plan = _plan(run, data, genotype_of(pick), float(pick[column]), backend, args)
        for kind, index, seed, genotype, predicted_ms in plan:
            key = (f"{budget:g}", kind, str(index), str(seed))
            if key in done:
                continue
            if time.monotonic() > deadline:
                complete = False
                break
            row = train_architecture(run, data, genotype, kind, seed, args.epochs)
            row.update(budget_ms=f"{budget:g}", kind=kind, index=index, seed=seed,
                       genotype=genotype.to_json(), predicted_ms=predicted_ms)
            append_row(results, FIELDS, row)
            done[key] = {k: str(v) for k, v in row.items()}
            print(f"  {budget:g} ms {kind:<10} #{index} seed {seed}: test {row['test']:.3f} "
                  f"(inherited val {row['inherited_val']:.3f}) [{row['train_s']:.0f} s]")
    if not complete:
        print(f"stopped after {args.max_minutes} min: run the same command again to continue")
    _report(list(done.values()), budgets)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="search run folder (default: runs/LATEST)")
    parser.add_argument("--backend", help="whose latency counts (default: the run's)")
    parser.add_argument("--dataset", help="data set (default: the run's)")
    parser.add_argument("--budgets", help="comma-separated ms (default: 1/4, 1/2 and 3/4 "
                                          "of the way through the family's latency range)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--limit-train", type=int, default=300,
                        help="training images (a small share: full digits saturates)")
    parser.add_argument("--random", type=int, default=8, help="random architectures per budget")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--results", default="runs/pick_vs_random.csv")
    parser.add_argument("--max-minutes", type=float, default=7.0)
    return parser.parse_args()


def _default_budgets(latencies: list[float]) -> list[float]:
    """A quarter, half and three quarters of the way through the family's latency range
    (rounded to 0.01 ms): three budgets with picks of clearly different cost."""
    low, high = min(latencies), max(latencies)
    return sorted({round(low + share * (high - low), 2) for share in (0.25, 0.5, 0.75)})


def _plan(run: LoadedRun, data: Dataset, pick: Genotype, pick_ms: float, backend: str,
          args: argparse.Namespace) -> list[tuple[str, int, int, Genotype, float]]:
    """(kind, index, seed, genotype, predicted ms) of every training for one budget: the pick
    from scratch and fine-tuned from its inherited weights, and the random architectures."""
    randoms = random_architectures(run, backend, pick_ms, args.random, exclude=pick)
    plan = []
    for seed in range(args.seeds):
        plan.append(("pick", 0, seed, pick, pick_ms))
        plan.append(("fine-tuned", 0, seed, pick, pick_ms))
        plan.extend(("random", i + 1, seed, g, ms) for i, (g, ms) in enumerate(randoms))
    return plan


def random_architectures(run: LoadedRun, backend: str, target_ms: float, count: int,
                         exclude: Genotype | None = None) -> list[tuple[Genotype, float]]:
    """Up to `count` distinct random architectures (and their predicted ms) within ±5% of
    `target_ms`, drawn as the latency calibration draws them; the same on every rerun."""
    model = latency_model(run.table, backend, warn=False)
    rng = np.random.default_rng(round(target_ms * 1e6))
    randoms: list[tuple[Genotype, float]] = []
    for _ in range(DRAWS // BATCH):
        for genotype in mixture_genotypes(run.space, BATCH, rng, include_pure=False):
            ms = model.predict_ms(genotype)
            if abs(ms - target_ms) <= TOLERANCE * target_ms and genotype != exclude and \
                    genotype not in [g for g, _ in randoms]:
                randoms.append((genotype, ms))
        if len(randoms) >= count:
            return randoms[:count]
    print(f"  only {len(randoms)} random architectures within ±5% of {target_ms:.3f} ms "
          f"in {DRAWS} draws")
    return randoms


def train_architecture(run: LoadedRun, data: Dataset, genotype: Genotype, kind: str, seed: int,
                       epochs: int) -> dict[str, object]:
    """Train one architecture with the recipe; its inherited (one-shot) validation accuracy
    too, for the rank correlation."""
    shared, inherited_val = member_network(run.space, genotype, run.supernet, data)
    inherited_test = accuracy(shared, data.test)
    torch.manual_seed(seed)
    network = (inherit(run.space, genotype, run.supernet) if kind == "fine-tuned"
               else discrete_network(run.space, genotype))
    recipe = Recipe()
    started = time.perf_counter()
    fit(network, data, recipe, recipe.augmentation(run.space), epochs, seed)
    return {"inherited_val": inherited_val, "inherited_test": inherited_test,
            "val": evaluate(network, data, "val"),
            "test": evaluate(network, data, "test"), "train_s": time.perf_counter() - started}


def _read(path: Path) -> dict[tuple[str, str, str, str], dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open() as handle:
        return {(r["budget_ms"], r["kind"], r["index"], r["seed"]): r
                for r in csv.DictReader(handle)}


def append_row(path: Path, fields: tuple[str, ...], row: dict[str, object]) -> None:
    """One CSV line (`fields` of `row`) per finished piece of work, flushed at once: an
    interruption loses at most one. The header comes with the first line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        if new:
            writer.writeheader()
        writer.writerow({k: row[k] for k in fields})


def _report(rows: list[dict[str, str]], budgets: list[float]) -> None:
    """Per budget: the pick (inherited, fine-tuned, from scratch) and the random set; then τ."""
    def figures(group: list[dict[str, str]], field: str) -> str:
        values = [float(r[field]) for r in group]
        if not values:
            return "—"
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {std:.3f}"

    archs: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in rows:
        archs.setdefault((row["budget_ms"], row["kind"], row["index"]), []).append(row)
    for budget in budgets:
        b = f"{budget:g}"
        pick = archs.get((b, "pick", "0"), [])
        if not pick:
            continue
        tuned = archs.get((b, "fine-tuned", "0"), [])
        randoms = [g for (bb, kind, _), g in archs.items() if bb == b and kind == "random"]
        # the random set's spread is between architectures: each one's mean over its seeds
        means = [{"val": str(statistics.mean(float(r["val"]) for r in g)),
                  "test": str(statistics.mean(float(r["test"]) for r in g))} for g in randoms]
        spread = [float(g[0]["predicted_ms"]) for g in randoms]
        print(f"\nbudget {b} ms: pick predicted {float(pick[0]['predicted_ms']):.3f} ms; "
              f"{len(randoms)} random architectures"
              + (f" predicted {min(spread):.3f}–{max(spread):.3f} ms" if spread else ""))
        print(f"  pick, inherited (one-shot)  val {float(pick[0]['inherited_val']):.3f}          "
              f"test {float(pick[0]['inherited_test']):.3f}")
        print(f"  pick, fine-tuned            val {figures(tuned, 'val')}  test "
              f"{figures(tuned, 'test')}  ({len(tuned)} seeds)")
        print(f"  pick, from scratch          val {figures(pick, 'val')}  test "
              f"{figures(pick, 'test')}  ({len(pick)} seeds)")
        print(f"  random, from scratch        val {figures(means, 'val')}  test "
              f"{figures(means, 'test')}  ({len(randoms)} architectures; all runs: test "
              f"{figures([r for g in randoms for r in g], 'test')})")
    trained = {key: g for key, g in archs.items() if key[1] in ("pick", "random")}
    if len(trained) > 2:
        print()
    for label, chosen in [("all budgets", budgets), *((f"{b:g} ms", [b]) for b in budgets)]:
        wanted = {f"{b:g}" for b in chosen}
        pairs = [(float(g[0]["inherited_val"]), statistics.mean(float(r["test"]) for r in g))
                 for key, g in trained.items() if key[0] in wanted]
        if len(pairs) > 2:
            tau, p = kendalltau(*zip(*pairs, strict=True))
            print(f"Kendall τ, inherited val accuracy vs trained test accuracy ({label}, "
                  f"{len(pairs)} architectures): {tau:+.2f} (p = {p:.2g})")


if __name__ == "__main__":
    main()
