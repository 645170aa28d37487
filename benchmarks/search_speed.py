"""Seconds per search training step, soft (every op mixed) against hard (one sampled op per
edge), at the default space and at the seed authors' Fashion-MNIST configuration; and, with
--side-by-side, every training variant at the authors' configuration, per step and per epoch.

    .venv/bin/python benchmarks/search_speed.py [--steps 10] [--threads 1] [--table T]
    .venv/bin/python benchmarks/search_speed.py --side-by-side [--compile] [--steps 10]

Each configuration trains `hwnas.search.supernet.loop.train_step` on one batch of 64 digits
fitted to the space's input (28×28×1 for both), one thread by default; the variants' steps
alternate (A B A B …) after two warm-up steps each, and the script prints the median seconds
per step of each and its ratio to soft. The latency table only feeds the penalty term (its
values do not change the step's cost): a synthetic one (`hwnas.latency.model.synthetic`)
unless --table names one for the default space.

The side-by-side variants: soft and hard, each in the NCHW layout and channels-last
(`SearchConfig.channels_last`), and with --compile soft under `torch.compile` of every mixed
op, in either layout (not part of the product: timed to see whether it would be worth it; the
first step, which compiles, is reported apart). An epoch there is the digits training
split in steps of 64 plus that epoch's validation as `run_search` does it (two members'
accuracies, `hwnas.search.family.derive.member_accuracy`, timed on two fixed random
architectures, alternating with the steps): seconds per epoch = steps × the median step +
the median validation.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from search_common import benchmark_table

from hwnas.arch.genotypes import random_genotype
from hwnas.arch.space import PRESETS, SearchSpace, load_space
from hwnas.search.config import SAMPLINGS, SearchConfig
from hwnas.search.data.dataset import Dataset, load_dataset
from hwnas.search.family.derive import member_accuracy
from hwnas.search.supernet.latency_terms import latency_terms
from hwnas.search.supernet.loop import SearchState, build_state, memory_format, train_step
from hwnas.search.supernet.mixed_network import MixedOp
from hwnas.search.supernet.objective import Objective

AUTHORS_SPACE = Path(__file__).resolve().parent / "spaces" / "authors-fmnist.toml"
WARM_UP = 2
VALIDATION = "validation"


@dataclass(frozen=True)
class Variant:
    """One way to train: the sampling mode, the layout, and whether the supernet is compiled."""

    sampling: str
    channels_last: bool = False
    compiled: bool = False

    @property
    def label(self) -> str:
        return " + ".join([self.sampling, *(["channels_last"] if self.channels_last else []),
                           *(["torch.compile"] if self.compiled else [])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant (≥ 10)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", default=None, help="a table of the default space")
    parser.add_argument("--side-by-side", action="store_true",
                        help="every variant at the authors' configuration, per step and epoch")
    parser.add_argument("--compile", action="store_true",
                        help="with --side-by-side: add soft under torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_model()}, {args.threads} thread(s), torch {torch.__version__}; "
          f"batch {SearchConfig('').batch_size}, median of {args.steps} steps after "
          f"{WARM_UP} warm-up steps")
    if args.side_by_side:
        side_by_side(args.steps, args.compile)
        return
    print(f"{'configuration':<34} {'soft s/step':>11} {'hard s/step':>11} {'soft/hard':>9}")
    spaces = {"default (exp1, C=8)": (PRESETS["exp1"], args.table),
              f"authors ({AUTHORS_SPACE.stem}, C=16)": (load_space(str(AUTHORS_SPACE)), None)}
    for label, (space, table_path) in spaces.items():
        medians = alternate(Bench(space, table_path), [Variant(mode) for mode in SAMPLINGS],
                            args.steps)
        soft, hard = medians[Variant("soft")], medians[Variant("hard")]
        print(f"{label:<34} {soft:11.3f} {hard:11.3f} {soft / hard:8.2f}×", flush=True)


def side_by_side(steps: int, compile_soft: bool) -> None:
    """Every variant at the authors' configuration: s/step, s/epoch, ratios against soft."""
    bench = Bench(load_space(str(AUTHORS_SPACE)), None)
    variants = [Variant("soft"), Variant("hard"), Variant("soft", channels_last=True),
                Variant("hard", channels_last=True)]
    if compile_soft:
        variants += [Variant("soft", compiled=True),
                     Variant("soft", channels_last=True, compiled=True)]
    images = len(bench.data.train)
    steps_per_epoch = math.ceil(images / bench.config.batch_size)
    print(f"space {bench.space.name} (C={bench.space.channels}, {bench.space.cells} cells, "
          f"{len(bench.space.ops)} ops); an epoch: {images} digits training images = "
          f"{steps_per_epoch} steps, then 2 members evaluated on {len(bench.data.val)} "
          f"validation images", flush=True)
    medians = alternate(bench, variants, steps, validate=True)
    validation = medians.pop(VALIDATION)
    print(f"validation (2 members, every variant alike): {validation:.3f} s")
    soft = medians[Variant("soft")]
    soft_epoch = steps_per_epoch * soft + validation
    print(f"{'variant':<38} {'s/step':>8} {'soft/x':>7} {'s/epoch':>8} {'soft/x':>7}")
    for variant in variants:
        step = medians[variant]
        epoch = steps_per_epoch * step + validation
        print(f"{variant.label:<38} {step:8.3f} {soft / step:6.2f}× {epoch:8.1f} "
              f"{soft_epoch / epoch:6.2f}×")


class Bench:
    """A space's training set-up: the objective, one batch of digits and the data set."""

    def __init__(self, space: SearchSpace, table_path: str | None) -> None:
        table, written = benchmark_table(table_path, space)
        self.space = space
        self.config = SearchConfig(str(written))
        self.objective = Objective(latency_terms(table, self.config.backend), self.config.kappa,
                                   self.config.beta, self.config.latency_weight)
        self.data: Dataset = load_dataset("digits", space)
        self.images, self.labels = next(self.data.train.batches(self.config.batch_size))

    def step(self, variant: Variant) -> Callable[[], None]:
        """One training step of `variant`'s own state, built as `run_search` builds it."""
        config = dataclasses.replace(self.config, sampling=variant.sampling,
                                     channels_last=variant.channels_last)
        state = build_state(config, self.space, torch.device("cpu"))
        if variant.compiled:  # each mixed op, one static graph per shape: the whole supernet
            for module in state.supernet.modules():  # took over 5 min to compile here, and
                if isinstance(module, MixedOp):  # shapes left dynamic failed in inductor
                    module.compile(dynamic=False)
        images = self.images.contiguous(memory_format=memory_format(config))
        generator = torch.Generator().manual_seed(0)

        def run() -> None:
            train_step(state, self.objective, images, self.labels, 1.0, generator,
                       variant.sampling)

        return run

    def validation(self) -> Callable[[], None]:
        """An epoch's validation: two members' accuracies, as `train_epoch` computes them."""
        state: SearchState = build_state(self.config, self.space, torch.device("cpu"))
        generator = torch.Generator().manual_seed(0)
        members = [random_genotype(self.space, generator) for _ in range(2)]

        def run() -> None:
            for genotype in members:
                member_accuracy(self.space, genotype, state.supernet, self.data)

        return run


def alternate(bench: Bench, variants: list[Variant], steps: int,
              validate: bool = False) -> dict[Variant | str, float]:
    """Median seconds of each variant's step (and of the validation), in rounds of one each."""
    work: dict[Variant | str, Callable[[], None]] = {v: bench.step(v) for v in variants}
    if validate:
        work[VALIDATION] = bench.validation()
    times: dict[Variant | str, list[float]] = {name: [] for name in work}
    for round_ in range(WARM_UP + steps):
        for name, run in work.items():
            started = time.perf_counter()
            run()
            if round_ >= WARM_UP:
                times[name].append(time.perf_counter() - started)
            elif round_ == 0 and isinstance(name, Variant) and name.compiled:
                print(f"{name.label}: first step (compiling) "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
    return {name: statistics.median(values) for name, values in times.items()}


def cpu_model() -> str:
    """The CPU's model name and core count, so a figure says which machine it came from."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0] if names else platform.processor()} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
