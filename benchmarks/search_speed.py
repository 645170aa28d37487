"""Seconds per search training step, soft (every op mixed) against hard (one sampled op per
edge), at the default space and at the seed authors' Fashion-MNIST configuration.

    .venv/bin/python benchmarks/search_speed.py [--steps 10] [--threads 1] [--table T]

Each configuration trains `hwnas.search.supernet.loop.train_step` on one batch of 64 digits fitted
to the
space's input (28×28×1 for both), one thread by default; soft and hard steps alternate after
two warm-up steps each, and the script prints the median seconds per step of each and their
ratio. The latency table only feeds the penalty term (its values do not change the step's
cost): a synthetic one (`hwnas.latency.model.synthetic`) unless --table names one for the
default space.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from search_common import benchmark_table

from hwnas.arch.space import PRESETS, SearchSpace, load_space
from hwnas.search.config import SAMPLINGS, SearchConfig
from hwnas.search.data.dataset import load_dataset
from hwnas.search.supernet.latency_terms import latency_terms
from hwnas.search.supernet.loop import build_state, train_step
from hwnas.search.supernet.objective import Objective

AUTHORS_SPACE = Path(__file__).resolve().parent / "spaces" / "authors-fmnist.toml"
WARM_UP = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode (≥ 10)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", default=None, help="a table of the default space")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_model()}, {args.threads} thread(s), torch {torch.__version__}; "
          f"batch {SearchConfig('').batch_size}, median of {args.steps} steps after "
          f"{WARM_UP} warm-up steps")
    print(f"{'configuration':<34} {'soft s/step':>11} {'hard s/step':>11} {'soft/hard':>9}")
    spaces = {"default (exp1, C=8)": (PRESETS["exp1"], args.table),
              f"authors ({AUTHORS_SPACE.stem}, C=16)": (load_space(str(AUTHORS_SPACE)), None)}
    for label, (space, table_path) in spaces.items():
        medians = seconds_per_step(space, table_path, args.steps)
        print(f"{label:<34} {medians['soft']:11.3f} {medians['hard']:11.3f} "
              f"{medians['soft'] / medians['hard']:8.2f}×", flush=True)


def seconds_per_step(space: SearchSpace, table_path: str | None, steps: int) -> dict[str, float]:
    """Median seconds per step of each sampling mode, the modes alternating step by step."""
    table, written = benchmark_table(table_path, space)
    config = SearchConfig(str(written))
    objective = Objective(latency_terms(table, config.backend), config.kappa, config.beta,
                          config.latency_weight)
    images, labels = next(load_dataset("digits", space).train.batches(config.batch_size))
    states = {mode: build_state(config, space, torch.device("cpu")) for mode in SAMPLINGS}
    generator = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {mode: [] for mode in SAMPLINGS}
    for step in range(WARM_UP + steps):
        for mode, state in states.items():
            started = time.perf_counter()
            train_step(state, objective, images, labels, 1.0, generator, mode)
            if step >= WARM_UP:
                times[mode].append(time.perf_counter() - started)
    return {mode: statistics.median(values) for mode, values in times.items()}


def cpu_model() -> str:
    """The CPU's model name and core count, so a figure says which machine it came from."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0] if names else platform.processor()} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
