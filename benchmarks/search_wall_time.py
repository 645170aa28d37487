"""Where a default search run's wall time goes: set-up, training steps, per-epoch validation,
checkpoint and metrics writing, and the family sweep that the first `pick` runs.

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/search_wall_time.py \
        --table /tmp/t/cpu.parquet [--seed 0] [--epochs 10] [--out DIR]

It runs `hwnas.search.supernet.loop.run_search` with the CLI's defaults, then
`hwnas.search.family.sweep.family` on the finished run (what `pick` does when no family is
cached), each part timed by wrapping the function the product calls for it, and prints each
part's seconds and share of the whole. The process's own start-up (importing torch) is not
in it: time `hwnas search` itself for that.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from search_common import benchmark_table

from hwnas.search.config import SearchConfig
from hwnas.search.family import sweep
from hwnas.search.supernet import loop


class Phases:
    """Seconds spent inside each wrapped function, summed over its calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @contextmanager
    def timing(self, owner: object, name: str, label: str) -> Iterator[None]:
        """While active, `owner.name` (a function the product calls) adds its time to
        `label`."""
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - started)

        with mock.patch.object(owner, name, timed):
            yield

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds
        self.calls[label] = self.calls.get(label, 0) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="a profiled table (default: synthetic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=SearchConfig("").epochs)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        default=SearchConfig.channels_last,
                        help="train in the channels-last layout (SearchConfig.channels_last, "
                             "the default)")
    parser.add_argument("--out", default=None, help="runs root (default: a temporary folder)")
    args = parser.parse_args()
    table, table_path = benchmark_table(args.table)
    out = args.out or tempfile.mkdtemp(prefix="hwnas-wall-")
    config = SearchConfig(str(table_path), epochs=args.epochs, seed=args.seed, out=out,
                          channels_last=args.channels_last,
                          name=f"wall-seed{args.seed}{'-cl' if args.channels_last else ''}")
    print(f"space {table.space.name}, {config.dataset}, {config.epochs} epochs, seed "
          f"{config.seed}, {config.sampling} sampling"
          f"{', channels-last' if config.channels_last else ''}, {torch.get_num_threads()} "
          f"threads → {Path(out) / config.name}")

    phases = Phases()
    with ExitStack() as stack:
        for owner, name, label in [
                (loop, "latency_terms", "set-up: latency terms"),
                (loop, "load_dataset", "set-up: data"),
                (loop, "build_state", "set-up: supernet and optimisers"),
                (loop, "train_epoch", "epoch"),
                (loop, "member_accuracy", "validation (2 members per epoch)"),
                (loop, "save", "checkpoint + metrics"),
                (sweep, "load_run", "sweep: load run"),
                (sweep.LoadedRun, "data", "sweep: data"),
                (sweep, "describe", "sweep: evaluate members"),
                (sweep, "write_cache", "sweep: write cache"),
                (sweep, "priced", "sweep: price members")]:
            stack.enter_context(phases.timing(owner, name, label))
        started = time.perf_counter()
        result = loop.run_search(config, table)
        search_s = time.perf_counter() - started
        started = time.perf_counter()
        members, _ = sweep.family(sweep.load_run(result.run_dir))
        sweep_s = time.perf_counter() - started

    steps_s = sum(row.train_s for row in result.metrics)
    seconds = phases.seconds
    validation_s = seconds["validation (2 members per epoch)"]
    parts = {
        "set-up: latency terms": seconds["set-up: latency terms"],
        "set-up: data": seconds["set-up: data"],
        "set-up: supernet and optimisers": seconds["set-up: supernet and optimisers"],
        "training steps": steps_s,
        "validation (2 members per epoch)": validation_s,
        "rest of each epoch (α(s_dev), latencies)": seconds["epoch"] - steps_s - validation_s,
        "checkpoint + metrics": seconds["checkpoint + metrics"],
    }
    parts["rest of run_search (run folder, resume check)"] = search_s - sum(parts.values())
    sweep_parts = {label: seconds[label] for label in seconds if label.startswith("sweep: ")}
    sweep_parts["sweep: query the hypernetwork, rest"] = sweep_s - sum(sweep_parts.values())
    total = search_s + sweep_s
    print(f"{'part':<48} {'seconds':>8} {'share':>6}  calls")
    for label, value in {**parts, **sweep_parts}.items():
        calls = phases.calls.get(label)
        print(f"{label:<48} {value:8.2f} {100 * value / total:5.1f}%  {calls or ''}")
    print(f"{'search (run_search)':<48} {search_s:8.2f} {100 * search_s / total:5.1f}%")
    print(f"{'family sweep (first pick)':<48} {sweep_s:8.2f} {100 * sweep_s / total:5.1f}%  "
          f"{len(members)} members")
    print(f"{'total':<48} {total:8.2f}")


if __name__ == "__main__":
    main()
