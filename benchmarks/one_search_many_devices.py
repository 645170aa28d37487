"""Does one search serve several devices? Search once pricing the ops with table A, pick on
device B (`pick --table B`) at three budgets, and compare with a search made with table B,
picked at the same budgets: validation and test accuracy and predicted latency on B, side by
side. Also times a cached `hwnas pick --table B` (the family and B's prices already cached).

    python benchmarks/one_search_many_devices.py --table-a A.parquet --backend-a torch
        --table-b B.parquet --backend-b onnxruntime [--run-a runs/A] [--run-b runs/B]
        [--epochs 10] [--out /tmp/hwnas-devices-bench]

Without --run-a / --run-b it runs the two searches itself (default settings but --epochs);
with them it reuses finished runs (so the searches can run in separate lock holds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import hwnas
from hwnas.search.config import SearchConfig
from hwnas.search.family.pick import latency_column
from hwnas.search.family.sweep import LoadedRun
from hwnas.search.supernet.loop import run_search

FRACTIONS = (0.2, 0.5, 0.8)  # budgets across the range both families share on device B
PICK_REPEATS = 5


def searched(run: str | None, table: Path, backend: str, epochs: int, out: Path,
             name: str) -> LoadedRun:
    if run is not None:
        return hwnas.load_run(run)
    config = SearchConfig(str(table), backend=backend, epochs=epochs, out=str(out), name=name)
    started = time.perf_counter()
    result = run_search(config, hwnas.read_table(table))
    print(f"search {name}: {time.perf_counter() - started:.0f} s")
    return hwnas.load_run(result.run_dir)


def pick_on(run: LoadedRun, table: Path, backend: str, budget_ms: float) -> dict[str, float]:
    chosen = hwnas.pick(run.path, budget_ms, table=table, backend=backend)
    return {"val": float(chosen.member["accuracy"]),  # type: ignore[arg-type]  # a float column
            "ms": chosen.predicted_latency_ms, "test": chosen.test_accuracy}


def cached_pick_s(run: LoadedRun, table_b: Path, backend_b: str,
                  budget_ms: float) -> list[float]:
    """Wall time of `hwnas pick --run A --table B` once its caches exist (new processes)."""
    command = [sys.executable, "-m", "hwnas", "pick", "--run", str(run.path), "--table",
               str(table_b), "--backend", backend_b, "--max-latency-ms", f"{budget_ms}",
               "--json"]
    subprocess.run(command, check=True, capture_output=True)  # fills any cache still missing
    times = []
    for _ in range(PICK_REPEATS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table-a", type=Path, required=True)
    parser.add_argument("--backend-a", default="torch")
    parser.add_argument("--table-b", type=Path, required=True)
    parser.add_argument("--backend-b", default="onnxruntime")
    parser.add_argument("--run-a")
    parser.add_argument("--run-b")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/hwnas-devices-bench"))
    args = parser.parse_args()
    table_b = hwnas.read_table(args.table_b)
    run_a = searched(args.run_a, args.table_a, args.backend_a, args.epochs, args.out, "a")
    run_b = searched(args.run_b, args.table_b, args.backend_b, args.epochs, args.out, "b")
    column = latency_column(args.backend_b)
    on_b = {name: [float(member[column])  # type: ignore[arg-type]  # a float column
                   for member in hwnas.load_family(run, table_b)]
            for name, run in (("A", run_a), ("B", run_b))}
    low = max(min(ms) for ms in on_b.values())
    high = min(max(ms) for ms in on_b.values())
    budgets = [round(low + f * (high - low), 3) for f in FRACTIONS]
    print(f"device B: {table_b.meta.get('device_name')} ({args.backend_b}); run A searched "
          f"with {args.table_a} ({args.backend_a}), run B with {args.table_b} "
          f"({args.backend_b}); {run_a.config.epochs} epochs each")
    for name, ms in on_b.items():
        print(f"family of run {name} on B: {len(ms)} members, {min(ms):.3f}–{max(ms):.3f} ms")
    print("\n| budget on B (ms) | A's pick on B: val / test acc | predicted ms on B "
          "| B's pick: val / test acc | predicted ms on B |\n|---|---|---|---|---|")
    for budget in budgets:
        a = pick_on(run_a, args.table_b, args.backend_b, budget)
        b = pick_on(run_b, args.table_b, args.backend_b, budget)
        print(f"| {budget:.3f} | {a['val']:.3f} / {a['test']:.3f} | {a['ms']:.3f} "
              f"| {b['val']:.3f} / {b['test']:.3f} | {b['ms']:.3f} |")
    times = cached_pick_s(run_a, args.table_b, args.backend_b, budgets[1])
    print(f"\ncached `hwnas pick --run A --table B`: median {statistics.median(times):.2f} s, "
          f"fastest {min(times):.2f} s over {len(times)} runs (new processes, imports "
          f"included)")


if __name__ == "__main__":
    main()
