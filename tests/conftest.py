"""Shared fixtures: small spaces and synthetic tables with known latencies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from hwnas.arch.space import SearchSpace

# The synthetic table moved into the package (benchmarks use it too); tests import it from here.
from hwnas.latency.model.synthetic import synthetic_latency_ms as synthetic_latency_ms
from hwnas.latency.model.synthetic import synthetic_table
from hwnas.latency.model.table import LatencyTable, read_table, write_table
from hwnas.latency.runner.timing import TimingSettings

# Timing short enough for tests: a handful of tiny blocks per entry.
QUICK = TimingSettings(warmup_s=0.002, block_s=0.0005, min_calls=3, max_calls=20,
                       min_rounds=2, max_rounds=3)
BUNDLE_NETWORKS = 3  # calibration networks in the test bundle
TINY_SPACE = SearchSpace("tiny", ("max_pool_3x3", "skip_connect", "conv_3x3"), channels=4,
                         input_size=8, nodes=2)


@pytest.fixture
def tiny_space() -> SearchSpace:
    return TINY_SPACE


@pytest.fixture
def tiny_table() -> LatencyTable:
    return synthetic_table(TINY_SPACE)


def tiny_run(folder: Path, epochs: int) -> Path:
    """A tiny search on digits (64 training images, a small validation split so evaluating
    every member stays quick) over a synthetic table written beside it: the run folder that
    the pick, rerank and train tests start from."""
    from hwnas.search.config import SearchConfig
    from hwnas.search.supernet.loop import run_search

    table = write_table(synthetic_table(TINY_SPACE), folder / "tiny.parquet")
    config = SearchConfig(str(table), epochs=epochs, limit_train=64, batch_size=16,
                          val_fraction=0.05, out=str(folder / "runs"), name="tiny")
    return run_search(config, read_table(table)).run_dir


def heavy_imports(args: list[str]) -> list[str]:
    """Which of torch and pandas `hwnas ARGS` imports, run in a new process (it must succeed)."""
    code = ("import json, sys; from typer.testing import CliRunner; from hwnas.cli import app; "
            f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
            "print(json.dumps([m for m in ('torch', 'pandas') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# What a target needs besides the standard library: all that `target_python` can import.
TARGET_PACKAGES = ("numpy", "numpy.libs", "onnxruntime")


def runner_on_target(bundle: Path, out: Path, *args: str, python: Path) -> dict[str, object]:
    """subprocess arguments for `python -I BUNDLE/run.py` under `target_python`, from an empty
    folder: only the standard library, numpy, onnxruntime and the bundle's own files can be
    used (the project, torch and pandas are not on its path)."""
    cwd = out.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {"args": [str(python), "-I", str(bundle / "run.py"), "--out", str(out), *args],
            "env": env, "cwd": cwd, "text": True}


def run_on_target(bundle: Path, out: Path, *args: str,
                  python: Path) -> subprocess.CompletedProcess[str]:
    """The bundle's runner run to the end (`runner_on_target`)."""
    return subprocess.run(**runner_on_target(bundle, out, *args, python=python),
                          capture_output=True, timeout=120)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def target_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a venv without pip whose site-packages holds only links to this
    venv's copies of `TARGET_PACKAGES`: a target with nothing but numpy and onnxruntime."""
    folder = tmp_path_factory.mktemp("target") / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(folder),
                                                    "platbase": str(folder)}))
    here = Path(sysconfig.get_path("purelib"))
    for name in TARGET_PACKAGES:
        if (here / name).exists():
            (site / name).symlink_to(here / name)
    return folder / "bin" / "python"


@pytest.fixture(scope="session")
def measured(tmp_path_factory: pytest.TempPathFactory, target_python: Path) -> tuple[Path, Path]:
    """A tiny bundle, and the results its runner wrote from a copy of it in another folder
    under `target_python`."""
    from hwnas.latency.targets.bundle import write_bundle

    folder = tmp_path_factory.mktemp("bundle")
    bundle = folder / "tiny"
    write_bundle(TINY_SPACE, bundle, calibration_networks=BUNDLE_NETWORKS, timing=QUICK)
    copy = tmp_path_factory.mktemp("elsewhere") / "tiny"
    shutil.copytree(bundle, copy)
    results = folder / "results.json"
    done = run_on_target(copy, results, python=target_python)
    assert done.returncode == 0, done.stderr
    return bundle, results
