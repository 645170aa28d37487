"""The bundle runner: measures a bundle's ONNX models on a target with only Python, numpy and
onnxruntime (`python BUNDLE/run.py --out results.json`).

This file's folder (`hwnas/latency/runner/`) is copied whole into every bundle's
`lib/hwnas_runner/` by `hwnas/latency/targets/bundle.py`, so the target runs the very code
`hwnas profile` runs: the same interleaved rounds, statistic, session settings, fresh-process
calibration networks and NCHWc probe. Nothing in the folder may import anything outside the
standard library, numpy, onnxruntime and the folder itself (`tests/test_bundle.py` checks the
imports, and runs the runner in an interpreter that sees only numpy and onnxruntime). The
runner writes raw blocks; `hwnas table import` turns them into a table with the host's code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Hashable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from .errors import UserError
from .files import write_json
from .forkserver import FreshProcesses, measure_fresh
from .machine import machine_record
from .nchwc import nchwc_block
from .progress_log import read_log
from .timing import Blocked, Measurement, Timed, TimingSettings

BUNDLE_FORMAT = 1
RESULTS_FORMAT = 1
MANIFEST_FILE = "manifest.json"
NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16}


def read_json(path: Path, broken: str) -> object:
    """The JSON in `path`; UserError(`broken`) when it is cut short or not JSON."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(broken) from None


def read_manifest(bundle: Path) -> dict:
    """The bundle's manifest; UserError when the folder is not a bundle."""
    path = bundle / MANIFEST_FILE
    if not path.is_file():
        raise UserError(f"{bundle} is not an hwnas bundle (no {MANIFEST_FILE}): write one with "
                        f"`hwnas profile --bundle {bundle}`")
    manifest = read_json(path, f"{path} is not valid JSON: copy the bundle again")
    if not isinstance(manifest, dict) or manifest.get("hwnas_bundle") != BUNDLE_FORMAT:
        raise UserError(f"{path} is not an hwnas bundle manifest of format {BUNDLE_FORMAT}: "
                        f"write the bundle again with this hwnas")
    return manifest


def check_models(bundle: Path, manifest: dict) -> None:
    """Every model the manifest names is there, unchanged (sha256)."""
    probe = [manifest["nchwc_probe"]] if "nchwc_probe" in manifest else []
    for item in [*manifest["entries"], *manifest["networks"], *probe]:
        path = bundle / item["model"]
        if not path.is_file():
            raise UserError(f"bundle {bundle} lacks {item['model']} ({item['label']}): copy "
                            f"the whole bundle folder again")
        if hashlib.sha256(path.read_bytes()).hexdigest() != item["sha256"]:
            raise UserError(f"bundle {bundle}: {item['model']} differs from the one the "
                            f"manifest names: copy the whole bundle folder again")


def feeds(inputs: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the manifest's names, shapes and dtypes."""
    rng = np.random.default_rng(seed)
    return {spec["name"]: rng.standard_normal(spec["shape"]).astype(NUMPY_DTYPES[spec["dtype"]])
            for spec in inputs}


@dataclass(frozen=True)
class SessionTask:
    """One model to time: locally (an entry) or in a fresh process (a whole network)."""

    path: str
    inputs: tuple[dict, ...]
    threads: int
    provider: str

    def build(self) -> Timed:
        from . import ort_session

        return ort_session.timed_session(
            self.path, ort_session.session_options(self.threads),
            ort_session.providers_for(self.provider), feeds(list(self.inputs)))


def check_provider(provider: str) -> None:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider not in available:
        raise UserError(f"--provider {provider}: this onnxruntime has {', '.join(available)}; "
                        f"pass one of them")


def progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def identity(manifest: dict, threads: int, provider: str) -> dict[str, object]:
    """What a resumed run must share with the interrupted one."""
    return {"bundle_id": manifest["bundle_id"], "threads": threads, "provider": provider}


def load_progress(log: Path, wanted: dict[str, object]) -> dict[Hashable, Measurement]:
    """Blocks of an interrupted run with the same bundle and settings; a torn last line (the
    one being written when it stopped) is dropped."""
    header, records = read_log(log)
    if header.get("hwnas_target_progress") != RESULTS_FORMAT:
        raise UserError(f"{log} is not a runner progress file: delete it and run without "
                        f"--resume")
    if header.get("identity") != wanted:
        raise UserError(f"{log} was measured from another bundle or with other --threads or "
                        f"--provider: delete it, or resume with the same options")
    kept: dict[Hashable, Measurement] = {}
    for record in records:
        kept.setdefault(record["task"], Measurement()).blocks_ms.append(record["block_ms"])
    return kept


class ProgressLine:
    """`measured N/M blocks` on stderr, redrawn at most twice a second."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started, self.drawn = total, 0, time.perf_counter(), 0.0

    def advance(self, label: str) -> None:
        self.done += 1
        self.total = max(self.total, self.done)
        now = time.perf_counter()
        if now - self.drawn >= 0.5:
            self.drawn = now
            sys.stderr.write(f"\rmeasured {self.done}/{self.total} blocks, "
                             f"{now - self.started:.0f} s  {label[:40]:<40}")
            sys.stderr.flush()


def measure(bundle: Path, out: Path, threads: int = 1, provider: str = "CPUExecutionProvider",
            resume: bool = False) -> dict[str, object]:
    """Measure every model of the bundle, as `hwnas profile` measures the onnxruntime backend;
    write `out` atomically (raw blocks, timing settings and this machine) and return it."""
    started = time.perf_counter()
    manifest = read_manifest(bundle)
    if threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    check_provider(provider)  # the options first: hashing every model takes a while
    check_models(bundle, manifest)
    log = progress_path(out)
    wanted = identity(manifest, threads, provider)
    if log.exists() and not resume:
        raise UserError(f"an interrupted run's progress is at {log}: pass --resume to continue "
                        f"it, or delete it to start over")
    kept = load_progress(log, wanted) if resume and log.exists() else {}
    settings = TimingSettings(**manifest["timing"])

    def task(item: dict) -> SessionTask:
        return SessionTask(str(bundle / item["model"]), tuple(item["inputs"]), threads, provider)

    labels = {item["id"]: item["label"] for item in manifest["entries"]}
    entries: dict[Hashable, Blocked] = {
        item["id"]: task(item).build() for item in manifest["entries"]
        if not kept.get(item["id"], Measurement()).done(settings)}
    networks: dict[Hashable, SessionTask] = {
        f"{item['id']}/{launch}": task(item) for item in manifest["networks"]
                for launch in range(manifest["launches"])}
    for item in manifest["networks"]:
        labels.update({f"{item['id']}/{launch}": item["label"]
                       for launch in range(manifest["launches"])})
    expected = sum(max(0, settings.min_rounds - kept[t].rounds) if t in kept
                   else settings.min_rounds for t in [*labels])
    line = ProgressLine(expected)
    if not kept:
        out.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps({"hwnas_target_progress": RESULTS_FORMAT,
                                   "identity": wanted}) + "\n")
    done = {t: m for t, m in kept.items() if m.done(settings)}
    with log.open("a") as sink:
        def persist(key: Hashable, block: list[float]) -> None:
            sink.write(json.dumps({"task": key, "block_ms": block}) + "\n")
            sink.flush()
            line.advance(labels[key])

        with FreshProcesses(preload=(f"{__package__}.measure_bundle",)) as fresh:
            done.update(measure_fresh(fresh, networks, settings, kept, persist,
                                      seed=manifest["seed"], alongside=entries))
    sys.stderr.write("\n")
    import onnxruntime as ort

    results = {"hwnas_results": RESULTS_FORMAT, "bundle_id": manifest["bundle_id"],
               "space": manifest["space"]["name"],
               "space_fingerprint": manifest["space_fingerprint"],
               "machine": {**machine_record(), "onnxruntime": ort.__version__,
                           "provider": provider, "threads": threads,
                           **graph_record(bundle, manifest)},
               "timing": manifest["timing"], "wall_s": round(time.perf_counter() - started, 2),
               "blocks_ms": {str(key): m.blocks_ms for key, m in done.items()}}
    write_json(out, results)
    log.unlink()
    return results


def graph_record(bundle: Path, manifest: dict) -> dict[str, int]:
    """What the latency model's ONNX Runtime graph terms need of this machine: its NCHWc
    block, asked of ONNX Runtime with the bundle's probe (none in a bundle made before it)."""
    probe = manifest.get("nchwc_probe")
    return {"nchwc_block": nchwc_block(str(bundle / probe["model"]))} if probe else {}


def main(bundle: Path, argv: list[str] | None = None) -> None:
    """`run.py`'s command line: one line and exit 2 on a user mistake, 130 on Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="run.py", description="Measure this hwnas bundle's ONNX models on this machine; "
                                   "then `hwnas table import` the results on the host.")
    parser.add_argument("--out", type=Path, required=True, help="results file to write (JSON)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--provider", default="CPUExecutionProvider",
                        help="onnxruntime execution provider (default CPUExecutionProvider)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUT.partial")
    args = parser.parse_args(argv)
    try:
        results = measure(bundle, args.out, args.threads, args.provider, args.resume)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: what was measured is kept; run the same command with "
                         "--resume to continue\n")
        sys.exit(130)
    measured = cast("Sized", results["blocks_ms"])  # one entry per measured model
    print(f"wrote {args.out}: {len(measured)} measurements in "
          f"{results['wall_s']} s; import it on the host with `hwnas table import "
          f"{args.out} --bundle {bundle} --out tables/TARGET.parquet`")
