"""`hwnas profile`: measure every entry of a space on one device, resumably, into a table.

Measured blocks are appended to a progress file beside the output as they are taken, so an
interruption loses at most the block in flight; `resume=True` reloads them and measures only
what is missing. The table itself is written atomically at the end.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Hashable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, cast

from hwnas.arch.genotypes import Genotype, calibration_genotypes
from hwnas.arch.keys import EntryKey
from hwnas.arch.space import SearchSpace, enumerate_entries, overhead_entries
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.measure.backends import Backend, BackendUnavailable, device_name, make_backend
from hwnas.latency.measure.export_ahead import ExportAhead, spare_core
from hwnas.latency.measure.fresh_networks import NetworkTask, host_processes, launches
from hwnas.latency.model import ort_graph
from hwnas.latency.model.predict import fit_calibration, uncalibrated_model
from hwnas.latency.model.table import (
    CalibrationNetworkRecord,
    CalibrationRecord,
    LatencyTable,
    TableMeta,
    TableRow,
    write_table,
)
from hwnas.latency.runner import phases
from hwnas.latency.runner.forkserver import FreshProcesses, measure_fresh
from hwnas.latency.runner.phases import phase
from hwnas.latency.runner.progress_log import read_log
from hwnas.latency.runner.timing import Measurement, Timed, TimingSettings

if TYPE_CHECKING:
    from hwnas.latency.measure.backends.onnx_backend import OnnxRuntimeBackend

PROGRESS_FORMAT = 2
ONNXRUNTIME = "onnxruntime"


@dataclass(frozen=True)
class ProfileConfig:
    """What to measure, where, and how."""

    space: SearchSpace
    device: str = "cpu"  # canonical: cpu or cuda:N
    backends: tuple[str, ...] = ("torch", "onnxruntime")
    threads: int = 1  # intra-op threads of every backend, fixed for repeatability
    timing: TimingSettings = field(default_factory=TimingSettings)
    seed: int = 0  # order of the interleaved rounds and choice of calibration networks
    calibration_networks: int | None = None  # whole networks per backend; None: 6 × (ops + 1)

    @property
    def network_count(self) -> int:
        """Six networks per fitted parameter (the intercept and one scale per op)."""
        if self.calibration_networks is not None:
            return self.calibration_networks
        return 6 * (len(self.space.ops) + 1)

    def identity(self) -> dict[str, object]:
        """What a resumed profile must share with the interrupted one."""
        return {"space": self.space.to_dict(), "device": self.device, "threads": self.threads,
                "timing": self.timing.to_dict(), "seed": self.seed,
                "calibration_networks": self.network_count}


@dataclass(frozen=True)
class CalibrationNetwork:
    """A timing task: one launch (process) of the index-th calibration network of a backend."""

    index: int
    launch: int = 0


# The profile's timing tasks, which the fork server and the progress log key as Hashable.
Task = tuple[str, EntryKey | CalibrationNetwork]


def progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def check_writable(out: Path) -> None:
    """Fail before measuring anything if `out` cannot be written."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file path such as {out}/cpu.parquet")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}."):
            pass
    except OSError as exc:
        raise UserError(f"cannot write --out {out} ({exc.strerror}); choose a writable "
                        f"path") from None


def profile(config: ProfileConfig, out: Path, resume: bool = False,
            hooks: Hooks | None = None, fresh: FreshProcesses | None = None) -> LatencyTable:
    """Measure, write `out` atomically, remove the progress file, and return the table.

    `fresh`: the server for whole networks, when the caller started it early (see
    `FreshProcesses`); by default one is started here.
    """
    hooks = hooks or Hooks()
    started = time.perf_counter()
    check_writable(out)
    log = progress_path(out)
    kept = _load_progress(log, config) if resume else {}
    if log.exists() and not resume:
        raise UserError(f"an interrupted profile's progress is at {log}: pass --resume to "
                        f"continue it, or delete it to start over")
    backends = _available_backends(config, hooks)
    entries = [*enumerate_entries(config.space), *overhead_entries(config.space)]
    genotypes = calibration_genotypes(config.space, config.network_count, config.seed)
    if not kept:
        _write_header(log, config)
    results = {task: m for task, m in kept.items() if m.done(config.timing)}
    with log.open("a") as sink:
        def persist(task: Hashable, block: list[float]) -> None:
            backend, item = cast(Task, task)
            where = ({"network": item.index, "launch": item.launch}
                     if isinstance(item, CalibrationNetwork)
                     else {"key": item.to_row()})
            sink.write(json.dumps({"backend": backend, **where, "block_ms": block}) + "\n")
            sink.flush()
            hooks.advance(f"{backend} {_label(item)}")

        # Per backend, the entries and the calibration networks (each in its own process,
        # see hwnas.latency.runner.forkserver) are measured interleaved, in the same stretch of
        # time, so a
        # slow minute on a shared machine moves both alike instead of skewing the fit.
        # The onnxruntime models are exported on the spare core while torch is measured.
        ahead = _export_ahead(config, list(backends), entries, genotypes, kept)
        try:
            with nullcontext(fresh) if fresh is not None else host_processes() as fresh:
                for name, backend in backends.items():
                    exported: dict[EntryKey | Genotype, bytes] = {}
                    if ahead is not None and name == ONNXRUNTIME:
                        exported = ahead.take()
                        cast("OnnxRuntimeBackend", backend).exported = exported
                    with phase(f"{name} entries: build"):
                        timed = _prepare_entries(name, backend, entries, kept, config.timing,
                                                 hooks)
                    tasks: dict[Hashable, NetworkTask] = {
                        (name, CalibrationNetwork(index, launch)): NetworkTask(
                            name, config.device, config.threads, config.space, genotype,
                            exported.get(genotype))
                        for index, genotype in enumerate(genotypes)
                        for launch in range(launches(name))}
                    hooks.start(f"measuring {name}: entries and whole networks",
                                _expected_blocks([*timed, *tasks], kept, config.timing))
                    with phase(f"{name} measuring: entries and whole networks"):
                        results.update(measure_fresh(fresh, tasks, config.timing, kept, persist,
                                                     seed=config.seed, alongside=timed))
                    del timed
        finally:
            if ahead is not None:
                ahead.cancel()
    block = ort_graph.nchwc_block() if ONNXRUNTIME in backends else None
    table = table_from_results(results, config, genotypes,
                               profile_metadata(config, sorted(backends)), block)
    table.meta["profile_wall_s"] = round(time.perf_counter() - started, 2)
    table.meta["profile_phases_s"] = {name: round(seconds, 2)
                                      for name, seconds in phases.take().items()}
    write_table(table, out)
    log.unlink()
    return table


def _available_backends(config: ProfileConfig, hooks: Hooks) -> dict[str, Backend]:
    backends = {}
    for name in config.backends:
        try:
            backends[name] = make_backend(name, config.device, config.threads)
        except BackendUnavailable as exc:
            hooks.warn(f"skipping backend {name}: {exc}")
    if not backends:
        raise UserError(f"no backend can run on {config.device} here; see the warnings above")
    return backends


def _export_ahead(config: ProfileConfig, backends: list[str], entries: list[EntryKey],
                  genotypes: list[Genotype], kept: dict[Hashable, Measurement],
                  ) -> ExportAhead | None:
    """Start exporting what the onnxruntime phase will need, when another backend is measured
    before it and a core is free meanwhile."""
    if ONNXRUNTIME not in backends[1:] or not spare_core(config.threads):
        return None
    todo = [key for key in entries
            if not kept.get((ONNXRUNTIME, key), Measurement()).done(config.timing)]
    return ExportAhead(config.space, [*todo, *genotypes])


def _prepare_entries(name: str, backend: Backend, entries: list[EntryKey], kept:
                     dict[Hashable, Measurement], settings: TimingSettings,
                     hooks: Hooks) -> dict[Hashable, Timed]:
    """Build every entry on one backend that is not measured yet."""
    todo = [key for key in entries if not kept.get((name, key), Measurement()).done(settings)]
    hooks.start(f"preparing {name} entries", len(todo))
    timed: dict[Hashable, Timed] = {}
    for key in todo:
        timed[(name, key)] = backend.prepare(key)
        hooks.advance(f"{name} {key.label()}")
    return timed


def _label(item: EntryKey | CalibrationNetwork) -> str:
    if isinstance(item, CalibrationNetwork):
        return f"calibration network {item.index} (launch {item.launch})"
    return item.label()


def table_from_results(results: dict[Hashable, Measurement], config: ProfileConfig,
                       genotypes: list[Genotype], meta: TableMeta,
                       nchwc_block: int | None = None) -> LatencyTable:
    """The table of measured blocks keyed (backend, EntryKey | CalibrationNetwork), calibrated
    on the networks: what `hwnas profile` writes, and what `hwnas table import` writes from a
    target's results. `nchwc_block`: the measuring machine's ONNX Runtime NCHWc block, which
    lets its calibration price the optimised graph's nodes (an imported target's runner records
    it; None for results of a runner that did not)."""
    table = LatencyTable(_rows(results, config), meta)
    return _calibrated(table, genotypes, results, nchwc_block) if genotypes else table


def _calibrated(table: LatencyTable, genotypes: list[Genotype],
                results: dict[Hashable, Measurement], nchwc_block: int | None) -> LatencyTable:
    """The table with each backend's calibration (and the networks it was fitted on)."""
    calibration: dict[str, CalibrationRecord] = {}
    networks: dict[str, list[CalibrationNetworkRecord]] = {}
    for backend in table.backends:
        launched: dict[int, list[float]] = {}
        for task, m in results.items():
            name, item = cast(Task, task)
            if name == backend and isinstance(item, CalibrationNetwork):
                launched.setdefault(item.index, []).append(m.latency_ms)
        measured = [statistics.median(launched[i]) for i in range(len(genotypes))]
        model = uncalibrated_model(table, backend)
        block = nchwc_block if backend == ONNXRUNTIME else None
        calibration[backend] = fit_calibration(model, genotypes, measured,
                                               nchwc_block=block).to_dict()
        networks[backend] = [{"genotype": json.loads(g.to_json()), "measured_ms": m,
                              "launches_ms": launched[i], "uncalibrated_ms": model.predict_ms(g)}
                             for i, (g, m) in enumerate(zip(genotypes, measured, strict=True))]
    return LatencyTable(table.records, {**table.meta, "calibration": calibration,
                                     "calibration_networks": networks})


def _expected_blocks(tasks: list[Hashable], kept: dict[Hashable, Measurement],
                     timing: TimingSettings) -> int:
    """Blocks to the minimum round count for every task (more if some are noisy)."""
    return sum(max(0, timing.min_rounds - kept[t].rounds) if t in kept else timing.min_rounds
               for t in tasks)


def _write_header(log: Path, config: ProfileConfig) -> None:
    header = {"hwnas_progress": PROGRESS_FORMAT, "config": config.identity()}
    log.write_text(json.dumps(header) + "\n")


def _load_progress(log: Path, config: ProfileConfig) -> dict[Hashable, Measurement]:
    """Blocks measured by an interrupted run with the same settings; a torn last line is
    dropped (it was being written when the run stopped)."""
    if not log.exists():
        return {}
    header, records = read_log(log)
    if header.get("hwnas_progress") != PROGRESS_FORMAT:
        raise UserError(f"{log} is not an hwnas progress file: delete it and run without "
                        f"--resume")
    if header["config"] != json.loads(json.dumps(config.identity())):
        raise UserError(f"{log} was measured with other settings (space, device, threads or "
                        f"timing): delete it, or resume with the same options")
    kept: dict[Hashable, Measurement] = {}
    for record in records:
        item = (CalibrationNetwork(record["network"], record["launch"]) if "network" in record
                else EntryKey.from_row(record["key"]))
        task = (record["backend"], item)
        kept.setdefault(task, Measurement()).blocks_ms.append(record["block_ms"])
    return kept


def _rows(results: dict[Hashable, Measurement], config: ProfileConfig) -> list[TableRow]:
    records: list[TableRow] = []
    for task, m in results.items():
        backend, key = cast(Task, task)
        if isinstance(key, CalibrationNetwork):
            continue
        records.append({"backend": backend, "device": config.device, **key.to_row(),
                        "h_out": key.h_out, "w_out": key.w_out, "latency_ms": m.latency_ms,
                        "median_ms": m.median_ms, "iqr_ms": m.iqr_ms, "n": m.n,
                        "rounds": m.rounds, "stable": m.is_stable(config.timing.rel_tol)})
    return records


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def profile_metadata(config: ProfileConfig, backends: list[str], name: str | None = None,
                     versions: dict[str, object] | None = None) -> TableMeta:
    """A table's metadata; `name` and `versions` default to this machine's (an imported
    table gives the target's)."""
    return {
        "space": config.space.to_dict(),
        "space_fingerprint": config.space.fingerprint(),
        "device": config.device,
        "device_name": name if name is not None else device_name(config.device),
        "threads": config.threads,
        "backends": backends,
        "timing": config.timing.to_dict(),
        "statistic": "minimum over interleaved rounds of per-block median latency",
        "seed": config.seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions or {
            "hwnas": _version("hwnas"), "torch": _version("torch"),
            "onnxruntime": _version("onnxruntime"), "onnx": _version("onnx"),
            "python": sys.version.split()[0], "platform": platform.platform()},
    }
