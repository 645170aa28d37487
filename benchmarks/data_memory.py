"""Peak memory (RSS) of `load_dataset` on a made-up CIFAR-shaped .npz: 50,000 random images of
32×32×3 uint8, 10 classes, fitted to a 3-channel 32×32 space (`exp3`).

    .venv/bin/python benchmarks/data_memory.py [--baseline REV] [--npz /tmp/cifar-shaped.npz]

Each figure comes from a fresh process (VmHWM of /proc/self/status, so Linux only): once
after importing hwnas and torch alone, once after `load_dataset` too. `--baseline REV` also
measures that git revision's code (its `hwnas/` extracted with `git archive` into a temporary
folder put first on PYTHONPATH), for before and after figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
from pathlib import Path
import hwnas
from hwnas.arch.space import PRESETS
from hwnas.search.data.dataset import load_dataset

def peak_mb():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines()
                if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

imported = peak_mb()
data = load_dataset(sys.argv[1], PRESETS["exp3"])
print(hwnas.__file__, f"{imported:.0f}", f"{peak_mb():.0f}")
"""


def made_up(path: Path) -> None:
    if path.is_file():
        return
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(50_000) % 10)


def measure(code: Path, npz: Path) -> tuple[str, float, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(npz.resolve())], env=env,
                         cwd=code, check=True, capture_output=True, text=True).stdout.split()
    return out[0], float(out[1]), float(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git revision to measure as well")
    parser.add_argument("--npz", type=Path, default=Path(tempfile.gettempdir(),
                                                         "cifar-shaped.npz"))
    args = parser.parse_args()
    made_up(args.npz)
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"this checkout": ROOT}
        if args.baseline:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "hwnas"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            codes[args.baseline] = Path(tmp)
        print(f"{'code':<16} {'imports MB':>10} {'+ load_dataset MB':>18} {'data MB':>8}")
        for name, code in codes.items():
            module, imported, loaded = measure(code, args.npz)
            assert module.startswith(str(code)), module  # the code meant, not the installed
            print(f"{name:<16} {imported:>10.0f} {loaded:>18.0f} {loaded - imported:>8.0f}")


if __name__ == "__main__":
    main()
