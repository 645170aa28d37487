"""The bundle on this machine: size, time to write, runner and import wall time, and how the
runner's table agrees with `hwnas profile`'s onnxruntime entries measured here, against the
noise between two profiles.

    python benchmarks/bundle_runner.py [--space exp1] [--work /tmp/hwnas-bundle-bench]

Every step runs as its user would run it (a new process, imports included). The runner runs
with the project off its path: only the bundle's own files. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hwnas.latency.model.table import read_table
from hwnas.latency.targets.compare import compare

HWNAS = [sys.executable, "-m", "hwnas"]


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """Run `command`, fail loudly on error, return its wall time (s)."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def agreement(a: Path, b: Path) -> tuple[float, float]:
    """Median and worst |B/A − 1| (%) over the onnxruntime entries both tables hold."""
    entries = compare(read_table(a), read_table(b), "onnxruntime", "onnxruntime").entries
    differences = [100 * abs(r - 1) for r in entries["ratio"]]
    return statistics.median(differences), max(differences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="exp1")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hwnas-bundle-bench"))
    args = parser.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bundle, results, board = work / "bundle", work / "results.json", work / "board.parquet"
    write_s = timed([*HWNAS, "profile", "--space", args.space, "--bundle", str(bundle)])
    size_mb = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 1e6
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runner_s = timed([sys.executable, str(bundle / "run.py"), "--out", str(results)], bare)
    import_s = timed([*HWNAS, "table", "import", str(results), "--bundle", str(bundle),
                      "--out", str(board)])
    profiles = [work / f"profile-{i}.parquet" for i in (1, 2)]
    profile_s = [timed([*HWNAS, "profile", "--space", args.space, "--backend", "onnxruntime",
                        "--out", str(path)]) for path in profiles]
    runner_vs = [agreement(path, board) for path in profiles]
    noise = agreement(profiles[0], profiles[1])
    print(f"space {args.space}; {read_table(board).meta['device_name']}, "
          f"{os.cpu_count()} cores\n")
    print("| figure | value |\n|---|---|")
    print(f"| bundle size | {size_mb:.1f} MB |")
    print(f"| `hwnas profile --bundle` wall time | {write_s:.1f} s |")
    print(f"| runner wall time (`python run.py`, no project on the path) | {runner_s:.1f} s |")
    print(f"| `hwnas table import` wall time | {import_s:.1f} s |")
    print(f"| `hwnas profile --backend onnxruntime` wall time | "
          f"{', '.join(f'{s:.1f}' for s in profile_s)} s |")
    for index, (median, worst) in enumerate(runner_vs, 1):
        print(f"| runner vs profile {index}, per entry: median / worst difference | "
              f"{median:.1f}% / {worst:.1f}% |")
    print(f"| profile 1 vs profile 2 (re-profile noise): median / worst | "
          f"{noise[0]:.1f}% / {noise[1]:.1f}% |")


if __name__ == "__main__":
    main()
