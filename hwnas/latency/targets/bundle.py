"""`hwnas profile --bundle DIR`: everything a target needs to measure a space without torch.

The bundle holds one ONNX model per table entry (exported exactly as the onnxruntime backend
exports it), the calibration networks `hwnas profile` would measure, the probe that asks the
target's ONNX Runtime its NCHWc block (for the latency model's graph terms), a manifest naming
each model's entry key, inputs and checksum with the timing settings, and the runner: `run.py`
plus `lib/hwnas_runner/`, a copy of the whole `hwnas/latency/runner/` folder (its modules
import only the standard library, numpy, onnxruntime and each other, relatively, so they run
under any package name). Plain files rather than a zipapp: the forked processes that time
whole networks start with `python -m hwnas_runner.forkserver`, which needs the modules on a
path, and a reader can see exactly what runs on their device.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hwnas.arch.genotypes import calibration_genotypes
from hwnas.arch.space import SearchSpace, enumerate_entries, overhead_entries
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency import runner
from hwnas.latency.measure.backends.onnx_backend import entry_onnx, export_onnx
from hwnas.latency.measure.fresh_networks import launches
from hwnas.latency.measure.networks import network_inputs
from hwnas.latency.model.ort_graph import probe_model
from hwnas.latency.runner.measure_bundle import BUNDLE_FORMAT, MANIFEST_FILE, NUMPY_DTYPES
from hwnas.latency.runner.timing import TimingSettings

RUNNER_PACKAGE = "hwnas_runner"  # the runner folder's name inside a bundle's lib/
BACKEND = "onnxruntime"  # the runtime a bundle measures

RUN_PY = '''"""Measure this hwnas bundle here: python run.py --out results.json [--threads N]
[--provider NAME] [--resume]. Needs Python 3.11+, numpy and onnxruntime only."""

import sys
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent
sys.path.insert(0, str(BUNDLE / "lib"))

from hwnas_runner.measure_bundle import main  # noqa: E402

if __name__ == "__main__":
    main(BUNDLE)
'''


def write_bundle(space: SearchSpace, out: Path, seed: int = 0,
                 calibration_networks: int | None = None,
                 timing: TimingSettings | None = None, hooks: Hooks | None = None) -> dict:
    """Write the bundle folder `out` (atomically: built beside it, then renamed) and return
    its manifest. `calibration_networks` defaults to what `hwnas profile` uses."""
    hooks = hooks or Hooks()
    if space.dtype not in NUMPY_DTYPES:
        raise UserError(f"a bundle cannot measure dtype {space.dtype} (numpy has no such "
                        f"type): use float32 or float16")
    if out.exists():
        raise UserError(f"--bundle {out} already exists: choose a new folder, or delete it")
    count = 6 * (len(space.ops) + 1) if calibration_networks is None else calibration_networks
    entries = [*enumerate_entries(space), *overhead_entries(space)]
    genotypes = calibration_genotypes(space, count, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (building / "models").mkdir()
        hooks.start("exporting entries and calibration networks", len(entries) + len(genotypes))
        listed = []
        for index, key in enumerate(entries):
            inputs = [_input(f"x{i}", (key.batch, key.c_in, key.h, key.w), key.dtype)
                      for i in range(key.n_inputs)]
            listed.append({"id": f"e{index:03d}", "key": key.to_row(), "label": key.label(),
                           "inputs": inputs,
                           **_model(building, f"e{index:03d}", entry_onnx(key))})
            hooks.advance(key.label())
        networks = []
        for index, genotype in enumerate(genotypes):
            shape = (space.batch_size, space.input_channels, space.input_size, space.input_size)
            networks.append({"id": f"n{index:03d}", "genotype": json.loads(genotype.to_json()),
                             "label": f"calibration network {index}",
                             "inputs": [_input("x0", shape, space.dtype)],
                             **_model(building, f"n{index:03d}",
                                      export_onnx(*network_inputs(space, genotype)))})
            hooks.advance(f"calibration network {index}")
        probe = {"label": "NCHWc probe", **_model(building, "nchwc_probe", probe_model())}
        manifest = _manifest(space, seed, timing or TimingSettings(), listed, networks, probe)
        (building / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        (building / "run.py").write_text(RUN_PY)
        shutil.copytree(Path(runner.__file__).parent, building / "lib" / RUNNER_PACKAGE,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        building.rename(out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return manifest


def _input(name: str, shape: tuple[int, ...], dtype: str) -> dict[str, object]:
    return {"name": name, "shape": list(shape), "dtype": dtype}


def _model(folder: Path, name: str, model: bytes) -> dict[str, str]:
    path = Path("models") / f"{name}.onnx"
    (folder / path).write_bytes(model)
    return {"model": str(path), "sha256": hashlib.sha256(model).hexdigest()}


def _manifest(space: SearchSpace, seed: int, timing: TimingSettings, entries: list[dict],
              networks: list[dict], probe: dict[str, str]) -> dict[str, object]:
    """The manifest; its id hashes everything measured and how, so results name their bundle."""
    from importlib import metadata

    body = {"hwnas_bundle": BUNDLE_FORMAT, "backend": BACKEND, "space": space.to_dict(),
            "space_fingerprint": space.fingerprint(), "timing": timing.to_dict(), "seed": seed,
            "launches": launches(BACKEND), "entries": entries, "networks": networks,
            "nchwc_probe": probe}
    bundle_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return {**body, "bundle_id": bundle_id,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "host_versions": {name: metadata.version(name)
                              for name in ("hwnas", "torch", "onnx", "onnxruntime")}}
