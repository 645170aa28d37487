"""Which training recipe for `hwnas train`? Trains one exported pick from scratch under a few
variants of the default recipe (optimiser, label smoothing, augmentation) on several seeds and
prints validation and test accuracy (mean ± std) and seconds per epoch for each.

A figure-printing script, not a test; run it under `flock /tmp/hwnas-cpu.lock`.

    python benchmarks/train_recipe.py [EXPORT_DIR=exports/pick] [--epochs 5] [--seeds 2]
        [--limit-train N]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from hwnas.arch.network import discrete_network
from hwnas.search.data.dataset import load_dataset
from hwnas.search.retrain.fit import evaluate, fit
from hwnas.search.retrain.recipe import Recipe
from hwnas.search.retrain.source import from_export

VARIANTS = {
    "default (AdamW 3e-3, smoothing 0.1)": {},
    "no label smoothing": {"label_smoothing": 0.0},
    "SGD+Nesterov 0.05, wd 5e-4": {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4},
    "AdamW 1e-3": {"lr": 1e-3},
    "small shifts (±2 px)": {"augment": "shift"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", nargs="?", default="exports/pick")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=None)
    args = parser.parse_args()
    source = from_export(Path(args.export))
    data = load_dataset(source.dataset, source.space, limit_train=args.limit_train)
    print(f"{args.export}: {source.space.name} on {source.dataset}, {len(data.train)} training "
          f"images, {args.epochs} epochs, seeds 0..{args.seeds - 1}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'recipe':<38} {'val':>15} {'test':>15} {'s/epoch':>8}")
    for name, change in VARIANTS.items():
        recipe = dataclasses.replace(Recipe(), **change)
        vals, tests, epoch_s = [], [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            network = discrete_network(source.space, source.genotype)
            started = time.perf_counter()
            fit(network, data, recipe, recipe.augmentation(source.space), args.epochs, seed)
            epoch_s.append((time.perf_counter() - started) / args.epochs)
            vals.append(evaluate(network, data, "val"))
            tests.append(evaluate(network, data, "test"))
        print(f"{name:<38} {_mean_std(vals):>15} {_mean_std(tests):>15} "
              f"{statistics.median(epoch_s):>8.1f}")


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


if __name__ == "__main__":
    main()
