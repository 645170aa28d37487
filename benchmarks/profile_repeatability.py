"""Benchmark `hwnas profile`: wall time of the default profile, and agreement of two in a row.

    .venv/bin/python benchmarks/profile_repeatability.py [--space exp1] [--repeats 2]

Prints each profile's wall time (the whole command, imports included) with where it went
(the phases `hwnas profile` records: entries built, each backend's interleaved measurement,
the launches of the calibration networks' processes and, inside them, ONNX export and
session creation) and, per backend, the median and worst relative difference of
`latency_ms` and of the calibration networks' latency between consecutive profiles. Targets
on a 2-core CPU (issue 2): wall ≤ 60 s, median disagreement ≤ 5%.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hwnas.latency.model.table import ROW_KEY, read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="exp1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hwnas-bench-"))
    tables, networks = [], []
    for repeat in range(args.repeats):
        out = folder / f"profile{repeat}.parquet"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hwnas", "profile", "--device", args.device,
                        "--space", args.space, "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        wall_s = time.perf_counter() - start
        table = read_table(out)
        unstable = int((~table.rows["stable"]).sum())
        print(f"profile {repeat}: wall {wall_s:.1f} s (measuring inside: "
              f"{table.meta['profile_wall_s']} s), {len(table.rows)} entries, "
              f"{unstable} unstable")
        for name, seconds in (table.meta.get("profile_phases_s") or {}).items():
            print(f"    {seconds:7.2f} s  {name}")
        for backend, fit in (table.meta.get("calibration") or {}).items():
            print(f"    {backend} calibration fit error {fit['fit_mape_pct']}%")
        tables.append(table.rows.set_index(list(ROW_KEY))["latency_ms"])
        networks.append(table.meta.get("calibration_networks") or {})
    for first, second in zip(tables, tables[1:], strict=False):
        relative = ((second - first).abs() / first).dropna()
        for backend, diffs in relative.groupby(level="backend"):
            worst_key = diffs.idxmax()
            print(f"{backend:12s} consecutive profiles: median |diff| {100 * diffs.median():.1f}%"
                  f", 90th pct {100 * diffs.quantile(0.9):.1f}%, worst {100 * diffs.max():.1f}% "
                  f"({worst_key[1]} c_in={worst_key[3]} h={worst_key[5]} "
                  f"stride={worst_key[7]})")
    for first, second in zip(networks, networks[1:], strict=False):
        for backend in first.keys() & second.keys():
            diffs = [abs(b["measured_ms"] / a["measured_ms"] - 1)
                     for a, b in zip(first[backend], second[backend], strict=True)]
            print(f"{backend:12s} calibration networks, consecutive profiles: median |diff| "
                  f"{100 * statistics.median(diffs):.1f}%, worst {100 * max(diffs):.1f}%")


if __name__ == "__main__":
    main()
