"""`hwnas table import`: a target's runner results and its bundle → a normal latency table.

The runner stores raw blocks; here they become `Measurement`s keyed as `hwnas profile` keys
them, and `hwnas.latency.measure.profile.table_from_results` makes the table, so rows,
statistic, calibration and metadata are computed by the very code a profile uses. Only the
device fields differ: they describe the target, from the machine record the runner wrote.
That record holds the target's ONNX Runtime NCHWc block (`runner/nchwc.py`), so the
calibration prices ONNX Runtime's graph nodes as a profile's does; results of a runner older
than that are calibrated without them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from pathlib import Path

from hwnas.arch.genotypes import Genotype
from hwnas.arch.keys import EntryKey
from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.latency.measure.profile import (
    CalibrationNetwork,
    ProfileConfig,
    check_writable,
    profile_metadata,
    table_from_results,
)
from hwnas.latency.model.table import LatencyTable, TableMeta, write_table
from hwnas.latency.runner.measure_bundle import RESULTS_FORMAT, read_json, read_manifest
from hwnas.latency.runner.timing import Measurement, TimingSettings
from hwnas.latency.targets.bundle import BACKEND

# The table's `device` for each execution provider a target may run.
PROVIDER_DEVICES = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda:0"}


def read_results(path: Path) -> dict:
    """The runner's results file; UserError when it is not one or is cut short."""
    if not path.is_file():
        raise UserError(f"results file {path} not found: run `python BUNDLE/run.py --out "
                        f"{path.name}` on the target and copy the file here")
    results = read_json(path, f"{path} is truncated or not JSON: copy it from the target "
                              f"again, or re-run the runner there")
    if not isinstance(results, dict) or results.get("hwnas_results") != RESULTS_FORMAT:
        raise UserError(f"{path} is not a bundle runner's results file (format "
                        f"{RESULTS_FORMAT}): pass the file `run.py --out` wrote")
    return results


def measurements(results: dict, manifest: dict, where: Path) -> dict[Hashable, Measurement]:
    """Blocks keyed (backend, EntryKey | CalibrationNetwork); every model of the bundle must
    be measured, every time positive and finite."""
    tasks: dict[str, Hashable] = {
        item["id"]: (BACKEND, EntryKey.from_row(item["key"])) for item in manifest["entries"]}
    for index, item in enumerate(manifest["networks"]):
        tasks.update({f"{item['id']}/{launch}": (BACKEND, CalibrationNetwork(index, launch))
                      for launch in range(manifest["launches"])})
    blocks = results.get("blocks_ms")
    if not isinstance(blocks, dict):
        raise UserError(f"{where} holds no measurements: re-run the runner on the target")
    missing = [task for task in tasks if not blocks.get(task)]
    if missing:
        raise UserError(f"{where} lacks {len(missing)} of {len(tasks)} measurements (first: "
                        f"{missing[0]}): it is truncated; finish it on the target with "
                        f"`python run.py --out {where.name} --resume`")
    measured: dict[Hashable, Measurement] = {}
    for task, key in tasks.items():
        for block in blocks[task]:
            if not block or not all(isinstance(t, int | float) and math.isfinite(t) and t > 0
                                    for t in block):
                raise UserError(f"{where}: {task} has a non-positive or non-finite time: the "
                                f"file is damaged; re-run the runner on the target")
        measured[key] = Measurement([list(map(float, block)) for block in blocks[task]])
    return measured


def import_results(results_path: Path, bundle: Path, out: Path) -> LatencyTable:
    """Check the results belong to the bundle, build the table, write it atomically."""
    manifest = read_manifest(bundle)
    results = read_results(results_path)
    if results.get("bundle_id") != manifest["bundle_id"]:
        if results.get("space_fingerprint") != manifest["space_fingerprint"]:
            raise UserError(f"{results_path} measured space {results.get('space')!r} "
                            f"({results.get('space_fingerprint')}), bundle {bundle} is for space "
                            f"{manifest['space']['name']!r} ({manifest['space_fingerprint']}): "
                            f"pass the bundle the target ran")
        raise UserError(f"{results_path} comes from another bundle ({results.get('bundle_id')}"
                        f", {bundle} is {manifest['bundle_id']}): pass the bundle the target ran")
    check_writable(out)
    measured = measurements(results, manifest, results_path)
    machine = results["machine"]
    provider = str(machine["provider"])
    config = ProfileConfig(SearchSpace.from_dict(manifest["space"]),
                           PROVIDER_DEVICES.get(provider, provider), (BACKEND,),
                           int(machine["threads"]), TimingSettings(**manifest["timing"]),
                           int(manifest["seed"]), len(manifest["networks"]))
    name = machine["cpu_model"] if config.device == "cpu" else provider
    # the exporter's versions are the host's; the runtime, Python and OS are the target's
    versions = {**manifest["host_versions"], "python": machine["python"],
                "platform": machine["os"], "onnxruntime": machine["onnxruntime"]}
    meta: TableMeta = {**profile_metadata(config, [BACKEND], name, versions),
            "target": machine, "bundle_id": manifest["bundle_id"],
            "runner_wall_s": results.get("wall_s")}
    genotypes = [Genotype.from_json(json.dumps(item["genotype"]))
                 for item in manifest["networks"]]
    block = machine.get("nchwc_block")
    table = table_from_results(measured, config, genotypes, meta,
                               int(block) if block is not None else None)
    write_table(table, out)
    return table
