"""Data-parallel search against one process: seconds per epoch, per-epoch losses side by side,
the two families, and what the gradient all-reduce carries per step.

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/distributed_speed.py \\
        [--table T] [--epochs 10] [--nproc 2] [--device cpu|cuda] [--out DIR]

On the CPU it runs the default `hwnas search` twice with the same global batch, seed and
epochs: one process with `--nproc` threads, then `torchrun --nproc-per-node NPROC` with one
thread per rank (the same cores). With `--device cuda`: one GPU, then NPROC GPUs. A third
run, one process in the other memory layout (`--no-channels-last`), is the yardstick for the
differences: it differs from the first only in float rounding. Each run is a
normal run folder under `--out`; a finished one is reused, so an interrupted benchmark goes on
where it stopped. Batch-norm normalises each rank's shard by itself, so the two runs are not
bit-identical; the figures say by how much they differ.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from search_common import benchmark_table

import hwnas
from hwnas.arch.space import SearchSpace
from hwnas.search.distributed import parameter_bytes
from hwnas.search.family.pick import Budget, best_within, latency_column
from hwnas.search.supernet.hypernet import Hypernetwork, reference_points
from hwnas.search.supernet.latency_terms import CELL_TYPES
from hwnas.search.supernet.mixed_network import build_supernet

# Bus bandwidths to put the communication volume on paper (not measured here): a PCIe 4.0
# x16 link, and NVLink as NCCL's all-reduce reaches it on an 8-GPU H100 node.
PAPER_BANDWIDTH_GB_S = {"PCIe 4.0": 20.0, "NVLink": 300.0}
PAPER_LATENCY_S = 30e-6  # one small NCCL all-reduce on 8 GPUs: a few tens of microseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", help="latency table (default: a synthetic exp1 table)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir(), "hwnas-dist-speed")))
    args = parser.parse_args()
    table, table_path = benchmark_table(args.table)
    out = Path(args.out)
    base = ["search", "--table", str(table_path), "--epochs", str(args.epochs), "--out",
            str(out), "--device", args.device]
    threads = "1" if args.device == "cuda" else str(args.nproc)
    one_s = _run([sys.executable, "-m", "hwnas", *base, "--name", "one"], out / "one",
                 threads, args.epochs)
    ranks_s = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={args.nproc}", "-m", "hwnas", *base,
                    "--name", f"ranks{args.nproc}"], out / f"ranks{args.nproc}", "1",
                   args.epochs)
    one = pd.read_csv(out / "one" / "metrics.csv")
    ranks = pd.read_csv(out / f"ranks{args.nproc}" / "metrics.csv")
    print("\nseconds per epoch (median of the steps' train_s; whole command wall / epochs):")
    print(f"  1 process × {threads} thread(s): {one['train_s'].median():.2f} s "
          f"(wall {_per_epoch(one_s, args.epochs)})")
    print(f"  {args.nproc} ranks × 1 thread: {ranks['train_s'].median():.2f} s "
          f"(wall {_per_epoch(ranks_s, args.epochs)}); speed-up "
          f"{one['train_s'].median() / ranks['train_s'].median():.2f}×")
    print(f"  peak memory per epoch (rank 0): {one['peak_memory_mb'].max():.0f} MiB one "
          f"process, {ranks['peak_memory_mb'].max():.0f} MiB a rank")
    # the yardstick: one process again, differing only in float rounding (the other layout)
    _run([sys.executable, "-m", "hwnas", *base, "--name", "one-other-layout",
          "--no-channels-last"], out / "one-other-layout", threads, args.epochs)
    other = pd.read_csv(out / "one-other-layout" / "metrics.csv")
    print("\nper-epoch loss and validation accuracy at s_dev, side by side (1p: one process; "
          "Np: the ranks; 1p': one process in the other memory layout, float rounding only):")
    print("  epoch  loss 1p  loss Np  loss 1p'   val 1p  val Np  val 1p'")
    for a, b, c in zip(one.itertuples(), ranks.itertuples(), other.itertuples(), strict=True):
        print(f"  {a.epoch:>5}  {a.loss:.4f}  {b.loss:.4f}  {c.loss:.4f}   {a.val_acc_dev:.3f}"
              f"   {b.val_acc_dev:.3f}   {c.val_acc_dev:.3f}")
    for label, frame in ((f"{args.nproc} ranks", ranks), ("other layout", other)):
        print(f"  largest loss difference, {label} against one process: "
              f"{(one['loss'] - frame['loss']).abs().div(one['loss']).max():.2%}")
    _families(out / "one", out / f"ranks{args.nproc}", f"{args.nproc} ranks")
    _families(out / "one", out / "one-other-layout", "other layout")
    run = hwnas.load_run(out / "one")
    steps = math.ceil(len(run.data().train) / run.config.batch_size)
    _communication(table.space, args.nproc, one["train_s"].median() / steps)


def _run(command: list[str], run_dir: Path, threads: str, epochs: int) -> float | None:
    """Run `command` (resumed where an earlier try stopped); its wall seconds, or None when
    the run folder already holds every epoch."""
    metrics = run_dir / "metrics.csv"
    finished = len(pd.read_csv(metrics)) if metrics.is_file() else 0
    if finished >= epochs:
        return None
    resume = ["--resume"] if finished else []
    started = time.perf_counter()
    done = subprocess.run([*command, *resume], env={**os.environ, "OMP_NUM_THREADS": threads},
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    return time.perf_counter() - started


def _per_epoch(seconds: float | None, epochs: int) -> str:
    return "reused" if seconds is None else f"{seconds / epochs:.2f} s"


def _families(one_dir: Path, ranks_dir: Path, label: str) -> None:
    """Both families (swept in one process) and their picks at three budgets."""
    one, ranks = hwnas.load_family(one_dir), hwnas.load_family(ranks_dir)
    column = latency_column(hwnas.load_run(one_dir).config.backend)
    shared = {m["genotype"] for m in one} & {m["genotype"] for m in ranks}
    latencies = sorted(float(m[column]) for m in one)
    print(f"\nfamilies: {len(one)} members (1 process), {len(ranks)} ({label}), {len(shared)} "
          f"in both; spans {latencies[0]:.3f}–{latencies[-1]:.3f} ms and "
          f"{min(float(m[column]) for m in ranks):.3f}–"
          f"{max(float(m[column]) for m in ranks):.3f} ms")
    backend = hwnas.load_run(one_dir).config.backend
    for share in (0.25, 0.5, 0.75):
        budget = latencies[0] + share * (latencies[-1] - latencies[0])
        picks = [best_within(f, [Budget("table", backend, budget, column)]) for f in (one, ranks)]
        print(f"  budget {budget:.3f} ms: 1 process {float(picks[0][column]):.3f} ms val "
              f"{float(picks[0]['accuracy']):.3f}; {label} {float(picks[1][column]):.3f} ms val "
              f"{float(picks[1]['accuracy']):.3f}; same member: "
              f"{picks[0]['genotype'] == picks[1]['genotype']}")


def _communication(space: SearchSpace, nproc: int, step_s: float) -> None:
    """What one step's gradient all-reduce carries, and what it would cost on 8 GPUs beside
    one process's step here."""
    hypernet = Hypernetwork(reference_points(len(space.ops)), CELL_TYPES, space.edges_per_cell,
                            0.3)
    size = parameter_bytes([build_supernet(space), hypernet])
    print(f"\ncommunication: {size / 1e6:.3f} MB of float32 gradients all-reduced per step "
          f"(soft sampling; hard sends the same buffer minus the unsampled ops); a ring "
          f"all-reduce moves 2(N-1)/N of it per rank per step")
    for ranks in (nproc, 8):
        moved = 2 * (ranks - 1) / ranks * size
        costs = ", ".join(f"{moved / (bw * 1e9) * 1e3 + PAPER_LATENCY_S * 1e3:.3f} ms over "
                          f"{name}" for name, bw in PAPER_BANDWIDTH_GB_S.items())
        print(f"  {ranks} ranks: {moved / 1e6:.3f} MB a rank a step; on paper {costs}")
    print(f"  one process's step here: {step_s * 1e3:.1f} ms (the median epoch's steps / "
          f"steps per epoch)")


if __name__ == "__main__":
    main()
