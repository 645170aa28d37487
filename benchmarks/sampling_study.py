"""Which sampling should the search use by default? Soft (every op mixed) against hard (one
sampled op per edge) at equal epochs and at equal training time, judged on what the user gets:
the pick at three budgets, trained from scratch with `hwnas train`'s recipe, test accuracy
mean ± std over search seeds; beside random architectures of the same predicted latency
trained the same way, the family's latency span, and op control at the simplex's corners.

A figure-printing script, not a test. Resumable: each search run is a normal run folder under
`--out` (a finished one is reused), and every finished training is appended to
`--out/trainings.csv`, so it can run in chunks (`--max-minutes`), e.g. under
`flock /tmp/hwnas-cpu.lock`. Every setting and variant is named on the command line:

    python benchmarks/sampling_study.py --out study --setting exp1=tables/exp1.parquet \\
        --setting exp2=tables/exp2.parquet [--variants soft,hard,hard-time] [--seeds 3]
        [--limit-train 300] [--train-epochs 8] [--random 3] [--rerank 0,3] [--max-minutes 10]

`hard-time` is hard sampling given the epochs its speed buys: `--epochs` times soft's fastest
epoch (the steps alone, `train_s` in metrics.csv, of the same seed) over hard's fastest. A
variant ending in `-cl` (`soft-cl`, `hard-cl`) trains in the channels-last memory layout.
Budgets are a quarter, half and three quarters of the way through the soft seed-0 family's
latency range, fixed per setting so every variant is judged at the same budgets.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pick_vs_random import (
    _default_budgets,
    append_row,
    random_architectures,
    train_architecture,
)

import hwnas
from hwnas.arch.genotypes import Genotype
from hwnas.latency.model.table import Record, read_table
from hwnas.search.config import SearchConfig
from hwnas.search.data.dataset import Dataset, load_dataset
from hwnas.search.family.pick import Budget, best_within, genotype_of, latency_column
from hwnas.search.family.sweep import LoadedRun
from hwnas.search.supernet.loop import run_search

FIELDS = ("setting", "variant", "search_seed", "budget_ms", "rerank", "kind", "index",
          "train_seed", "genotype", "predicted_ms", "inherited_val", "inherited_test", "val",
          "test", "train_s")
FAMILY_FIELDS = ("setting", "variant", "seed", "epochs", "members", "min_ms", "max_ms",
                 "corner_control", "search_train_s", "search_wall_s")


@dataclass(frozen=True)
class Setting:
    name: str
    table: Path


def main() -> None:
    args = _arguments()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60 * args.max_minutes
    trainings = out / "trainings.csv"
    done = {_key(r) for r in _read(trainings)}
    families = {(r["setting"], r["variant"], r["seed"]): r for r in _read(out / "families.csv")}
    for setting in args.settings:
        for variant in args.variants:
            for seed in range(args.seeds):
                if time.monotonic() > deadline:
                    print(f"stopped after {args.max_minutes} min: run again to continue")
                    return _report(out, args)
                run_dir = _search(out, setting, variant, seed, args, families)
                _train_picks(out, setting, variant, seed, run_dir, args, done, trainings,
                             deadline)
        _train_randoms(out, setting, args, done, trainings, deadline)
    if time.monotonic() > deadline:  # trainings past the deadline were skipped, not done
        print(f"stopped after {args.max_minutes} min: run again to continue")
    _report(out, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/sampling-study")
    parser.add_argument("--setting", action="append", required=True,
                        help="NAME=TABLE (the table's space is the setting's space)")
    parser.add_argument("--variants", default="soft,hard,hard-time")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="search epochs (soft, hard)")
    parser.add_argument("--limit-train", type=int, default=300)
    parser.add_argument("--train-epochs", type=int, default=8)
    parser.add_argument("--random", type=int, default=3, help="random architectures a budget")
    parser.add_argument("--rerank", default="0", help="comma-separated K of `pick --rerank`")
    parser.add_argument("--max-minutes", type=float, default=10.0)
    args = parser.parse_args()
    args.settings = [Setting(name, Path(table)) for name, _, table in
                     (text.partition("=") for text in args.setting)]
    args.variants = args.variants.split(",")
    args.rerank = [int(k) for k in args.rerank.split(",")]
    return args


def _search(out: Path, setting: Setting, variant: str, seed: int, args: argparse.Namespace,
            families: dict[tuple[str, str, str], dict[str, str]]) -> Path:
    """The run folder of (setting, variant, seed), searched now unless it is finished."""
    name = f"{setting.name}-{variant}-s{seed}"
    epochs = _epochs(out, setting, variant, seed, args)
    config = SearchConfig(str(setting.table),
                          sampling="soft" if variant.startswith("soft") else "hard",
                          channels_last=variant.endswith("-cl"), epochs=epochs, seed=seed,
                          limit_train=args.limit_train, out=str(out / "runs"), name=name,
                          resume=(out / "runs" / name).is_dir())
    started = time.perf_counter()
    run_dir = run_search(config, read_table(setting.table)).run_dir
    wall_s = time.perf_counter() - started
    key = (setting.name, variant, str(seed))
    if key not in families:
        members = hwnas.load_family(run_dir)
        run = hwnas.load_run(run_dir)
        column = latency_column(run.config.backend)
        latencies = [float(m[column]) for m in members]
        row = {"setting": setting.name, "variant": variant, "seed": seed, "epochs": epochs,
               "members": len(members), "min_ms": min(latencies), "max_ms": max(latencies),
               "corner_control": _corner_control(run),
               "search_train_s": sum(_epoch_train_s(run_dir)),
               "search_wall_s": wall_s}
        append_row(out / "families.csv", FAMILY_FIELDS, row)
        families[key] = {k: str(v) for k, v in row.items()}
        print(f"{name}: {epochs} epochs, {len(members)} members {min(latencies):.3f}–"
              f"{max(latencies):.3f} ms, corner control {row['corner_control']:.2f}")
    return run_dir


def _epochs(out: Path, setting: Setting, variant: str, seed: int,
            args: argparse.Namespace) -> int:
    """Search epochs: `args.epochs`, or for hard-time the epochs soft's training time buys."""
    if variant != "hard-time":
        return args.epochs
    soft = _epoch_train_s(out / "runs" / f"{setting.name}-soft-s{seed}")
    hard = _epoch_train_s(out / "runs" / f"{setting.name}-hard-s{seed}")
    return max(args.epochs, round(args.epochs * min(soft) / min(hard)))


def _epoch_train_s(run_dir: Path) -> list[float]:
    """Each epoch's training seconds (the steps alone). Their minimum is the speed figure:
    other work on a shared machine only ever slows an epoch down."""
    with (run_dir / "metrics.csv").open() as handle:
        return [float(row["train_s"]) for row in csv.DictReader(handle)]


def _corner_control(run: LoadedRun) -> float:
    """At each simplex corner (all penalty on op m), the share of edges *not* running op m,
    averaged over the ops: 1 means penalising an op always removes it."""
    k = len(run.space.ops)
    shares = []
    for m, op in enumerate(run.space.ops):
        genotype = run.arch(torch.eye(k)[m])
        picks = [*genotype.normal, *genotype.reduce]
        shares.append(sum(p != op for p in picks) / len(picks))
    return statistics.mean(shares)


def _budgets(out: Path, setting: Setting) -> list[float]:
    members = hwnas.load_family(out / "runs" / f"{setting.name}-soft-s0")
    column = latency_column(hwnas.load_run(out / "runs" / f"{setting.name}-soft-s0")
                            .config.backend)
    return _default_budgets([float(m[column]) for m in members])


def _loaded(run_dir: Path, limit_train: int) -> tuple[LoadedRun, list[Record], str, Dataset]:
    """A finished run, its family, the column that prices it and its (shortened) data."""
    run = hwnas.load_run(run_dir)
    data = load_dataset(run.config.dataset, run.space, run.config.data_dir,
                        limit_train=limit_train)
    return run, hwnas.load_family(run), latency_column(run.config.backend), data


def _train_picks(out: Path, setting: Setting, variant: str, seed: int, run_dir: Path,
                 args: argparse.Namespace, done: set[tuple[str, ...]], trainings: Path,
                 deadline: float) -> None:
    run, members, column, data = _loaded(run_dir, args.limit_train)
    for budget in _budgets(out, setting):
        for k in args.rerank if variant == args.variants[0] else [0]:
            key = (setting.name, variant, str(seed), f"{budget:g}", str(k), "pick", "0",
                   str(seed))
            if key in done or time.monotonic() > deadline:
                continue
            if k == 0:
                pick = best_within(members, [Budget("table", run.config.backend, budget,
                                                    column)])
                genotype, predicted = genotype_of(pick), float(pick[column])
            else:
                chosen = hwnas.pick(run_dir, budget, rerank=k)
                genotype, predicted = chosen.genotype, chosen.predicted_latency_ms
            _record(trainings, done, key, run, data, genotype, predicted, args, setting)


def _train_randoms(out: Path, setting: Setting, args: argparse.Namespace,
                   done: set[tuple[str, ...]], trainings: Path, deadline: float) -> None:
    """Random architectures within ±5% of each budget's soft seed-0 pick, every seed."""
    run, members, column, data = _loaded(out / "runs" / f"{setting.name}-soft-s0",
                                         args.limit_train)
    for budget in _budgets(out, setting):
        pick = best_within(members, [Budget("table", run.config.backend, budget, column)])
        randoms = random_architectures(run, run.config.backend, float(pick[column]),
                                       args.random, exclude=genotype_of(pick))
        for index, (genotype, predicted) in enumerate(randoms, start=1):
            for seed in range(args.seeds):
                key = (setting.name, "random", "-", f"{budget:g}", "0", "random", str(index),
                       str(seed))
                if key in done or time.monotonic() > deadline:
                    continue
                _record(trainings, done, key, run, data, genotype, predicted, args, setting)


def _record(trainings: Path, done: set[tuple[str, ...]], key: tuple[str, ...],
            run: LoadedRun, data: Dataset, genotype: Genotype,
            predicted: float, args: argparse.Namespace, setting: Setting) -> None:
    row = train_architecture(run, data, genotype, "pick", int(key[7]), args.train_epochs)
    row.update(dict(zip(("setting", "variant", "search_seed", "budget_ms", "rerank", "kind",
                         "index", "train_seed"), key, strict=True)),
               genotype=genotype.to_json(), predicted_ms=predicted)
    append_row(trainings, FIELDS, row)
    done.add(key)
    print(f"  {' '.join(key)}: {predicted:.3f} ms, test {row['test']:.3f} "
          f"[{row['train_s']:.0f} s]")


def _key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[f] for f in ("setting", "variant", "search_seed", "budget_ms", "rerank",
                                  "kind", "index", "train_seed"))


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f} (n={len(values)})"


def _report(out: Path, args: argparse.Namespace) -> None:
    rows = _read(out / "trainings.csv")
    families = _read(out / "families.csv")
    print("\nfamilies: setting variant seed epochs members span corner-control train_s wall_s")
    for f in families:
        print(f"  {f['setting']} {f['variant']} s{f['seed']} {f['epochs']} {f['members']} "
              f"{float(f['min_ms']):.3f}–{float(f['max_ms']):.3f} ms "
              f"{float(f['corner_control']):.2f} {float(f['search_train_s']):.1f} "
              f"{float(f['search_wall_s']):.1f}")
    print("\ntest accuracy trained from scratch (mean ± std over search seeds; random: over "
          "architectures × seeds)")
    for setting in args.settings:
        budgets = sorted({r["budget_ms"] for r in rows if r["setting"] == setting.name},
                         key=float)
        for budget in budgets:
            group = [r for r in rows if r["setting"] == setting.name
                     and r["budget_ms"] == budget]
            cells = []
            for variant in [*args.variants, "random"]:
                for k in sorted({int(r["rerank"]) for r in group if r["variant"] == variant}):
                    tests = [float(r["test"]) for r in group
                             if r["variant"] == variant and int(r["rerank"]) == k]
                    label = variant + (f" K={k}" if k else "")
                    cells.append(f"{label}: {_mean_std(tests)}")
            print(f"  {setting.name} {budget} ms: " + "; ".join(cells))


if __name__ == "__main__":
    main()
