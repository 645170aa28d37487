"""Shared fixtures: small spaces and synthetic tables with known latencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.arch.space import SearchSpace

# The synthetic table moved into the package (benchmarks use it too); tests import it from here.
from hwnas.latency.model.synthetic import synthetic_latency_ms as synthetic_latency_ms
from hwnas.latency.model.synthetic import synthetic_table
from hwnas.latency.model.table import LatencyTable
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


def heavy_imports(args: list[str]) -> list[str]:
    """Which of torch and pandas `hwnas ARGS` imports, run in a new process (it must succeed)."""
    code = ("import json, sys; from typer.testing import CliRunner; from hwnas.cli import app; "
            f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
            "print(json.dumps([m for m in ('torch', 'pandas') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def runner_without_torch(bundle: Path, out: Path, *args: str,
                         shadow: Path) -> dict[str, object]:
    """subprocess arguments for `python BUNDLE/run.py` in a process where torch and pandas
    raise ImportError and the project itself is not on the path: only the bundle's own files
    can be used."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(shadow)
    return {"args": [sys.executable, str(bundle / "run.py"), "--out", str(out), *args],
            "env": env, "cwd": shadow, "text": True}


def run_without_torch(bundle: Path, out: Path, *args: str,
                      shadow: Path) -> subprocess.CompletedProcess[str]:
    """The bundle's runner run to the end (`runner_without_torch`)."""
    return subprocess.run(**runner_without_torch(bundle, out, *args, shadow=shadow),
                          capture_output=True, timeout=120)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def shadow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A path entry whose torch and pandas raise ImportError."""
    folder = tmp_path_factory.mktemp("shadow")
    for module in ("torch", "pandas"):
        (folder / f"{module}.py").write_text(f"raise ImportError('no {module} on the target')\n")
    return folder


@pytest.fixture(scope="session")
def measured(tmp_path_factory: pytest.TempPathFactory, shadow: Path) -> tuple[Path, Path]:
    """A tiny bundle and the results its runner wrote in a process without torch."""
    from hwnas.latency.targets.bundle import write_bundle

    folder = tmp_path_factory.mktemp("bundle")
    bundle = folder / "tiny"
    write_bundle(TINY_SPACE, bundle, calibration_networks=BUNDLE_NETWORKS, timing=QUICK)
    results = folder / "results.json"
    done = run_without_torch(bundle, results, shadow=shadow)
    assert done.returncode == 0, done.stderr
    return bundle, results
