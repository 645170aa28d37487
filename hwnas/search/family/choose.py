"""`pick`'s whole work as one call: price a trained family on one or several devices' tables,
choose under their budgets (or at a penalty vector), optionally after fine-tuning the best
finalists (`--rerank`), and optionally recalibrate, verify, export and plot the choice. A budget
pick on a cached family imports neither torch nor pandas."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.model.table import LatencyTable, Record, TableError, read_table
from hwnas.search.family.pick import (
    Budget,
    genotype_of,
    latency_column,
    ranked_within,
    rescaled,
    summary,
)
from hwnas.search.family.pricing import check_same_space, device_column, priced, with_devices

if TYPE_CHECKING:
    from hwnas.arch.genotypes import Genotype
    from hwnas.search.family.rerank import Rerank
    from hwnas.search.family.sweep import LoadedRun

# `pick --rerank`: finalists fine-tuned before choosing (0: choose on inherited accuracy) and
# their epochs. K = 0 by measurement: --rerank 3 gained nothing beyond one standard error over
# 2 settings × 3 budgets × 3 seeds (docs/pick.md); `hwnas pick --help`, docs/pick.md and
# docs/cli.md quote both values.
DEFAULT_RERANK = 0
DEFAULT_RERANK_EPOCHS = 2


@dataclass(frozen=True)
class PickRequest:
    """What to pick and what to do with it. Exactly one of `max_latency_ms`, `budgets` and
    `penalty` says how to choose."""

    run: Path | None = None  # a run folder, or a runs root (its latest run); None: `runs`'s
    runs: Path = Path("runs")  # the runs root `hwnas search` wrote to
    max_latency_ms: float | None = None  # budget on the table's device, in ms
    budgets: tuple[tuple[str, float], ...] = ()  # (table path, ms): fit every device at once
    penalty: str | None = None  # query mode: the member at s, `op=value,...` or bare values
    table: Path | None = None  # price on this table of the run's space instead of the run's
    backend: str | None = None  # whose latency counts (default: the search's, or the only one)
    export: Path | None = None  # write model.onnx, model.pt and genotype.json here
    verify: bool = False  # measure the pick on this machine beside its prediction
    recalibrate: bool = False  # scale predictions by the reference networks' drift, re-measured
    plot: Path | None = None  # the trade-off plot (PNG)
    rerank: int | None = None  # finalists to fine-tune before choosing; None: DEFAULT_RERANK
    rerank_epochs: int | None = None  # their epochs; None: DEFAULT_RERANK_EPOCHS

    @property
    def finalists(self) -> int:
        return DEFAULT_RERANK if self.rerank is None else self.rerank

    @property
    def finetune_epochs(self) -> int:
        return DEFAULT_RERANK_EPOCHS if self.rerank_epochs is None else self.rerank_epochs


@dataclass(frozen=True)
class Device:
    """One table pricing the family: the device it measured, whose latency counts, a budget."""

    name: str  # the table's path as given
    table: LatencyTable
    backend: str
    budget_ms: float | None
    index: int = 0  # its place among the budgets' devices

    @property
    def budget(self) -> Budget:
        return Budget(self.name, self.backend, self.budget_ms or math.inf,
                      device_column(self.index))

    def describe(self, row: Record) -> dict[str, object]:
        """What `pick --json` lists for each device."""
        return {"table": self.name, "table_fingerprint": self.table.fingerprint,
                "device": self.table.device, "device_name": self.table.meta.get("device_name"),
                "backend": self.backend, "budget_ms": self.budget_ms,
                "predicted_latency_ms": _ms(row, self.budget.column)}

    def panel(self) -> tuple[str, str, float | None]:
        """(title, members' column, budget) of this device's trade-off plot."""
        return (f"{self.table.meta.get('device_name')} ({self.backend})", self.budget.column,
                self.budget_ms)


@dataclass(frozen=True)
class Recalibration:
    """The drift of the table's reference networks re-measured now, and the factor it scales
    every prediction by."""

    drift_pct: float
    factor: float
    references: int  # reference networks re-measured


@dataclass(frozen=True)
class Verification:
    """The pick measured as deployed, and its prediction's error raw (as the table says) and
    corrected by the drift the reference networks showed during the same measurement."""

    measured_latency_ms: float
    machine_drift_pct: float | None  # None: the table has no calibration networks
    error_pct_raw: float
    error_pct_corrected: float


@dataclass(frozen=True)
class Pick:
    """The chosen member, the family it was chosen from, and what was done with it."""

    run_dir: Path
    member: Record  # the chosen member (predictions scaled by any recalibration)
    members: list[Record]  # the family, priced on every device (`device_ms_<i>`)
    devices: list[Device]  # the first is the one `predicted_latency_ms` speaks of
    cached: bool  # the family came from the run folder's cache
    family_s: float  # time to read or sweep and price the family
    test_accuracy: float  # held out: what to expect (chosen on validation accuracy)
    recalibration: Recalibration | None = None
    verification: Verification | None = None
    export: dict[str, str] | None = None  # file kind -> path
    plot: Path | None = None
    rerank: Rerank | None = None  # the finalists fine-tuned to choose (`--rerank`)

    @property
    def genotype(self) -> Genotype:
        return genotype_of(self.member)

    @property
    def predicted_latency_ms(self) -> float:
        return _ms(self.member, latency_column(self.devices[0].backend))

    def to_dict(self) -> dict[str, Any]:
        """What `pick --json` prints: a JSON object."""
        main = self.devices[0]
        result: dict[str, Any] = {**summary(self.member, main.table.space, main.backend),
                  "run": str(self.run_dir), "table_fingerprint": main.table.fingerprint,
                  "device": main.table.device, "test_accuracy": self.test_accuracy,
                  "devices": [device.describe(self.member) for device in self.devices]}
        if self.recalibration:
            result["predicted_latency_ms_raw"] = (self.predicted_latency_ms
                                                  / self.recalibration.factor)
            result["recalibration"] = dataclasses.asdict(self.recalibration)
        if self.rerank:
            result["finetuned_val_accuracy"] = self.rerank.chosen.finetuned_val_accuracy
            result["finalists"] = [finalist.to_dict() for finalist in self.rerank.finalists]
            result["rerank"] = self.rerank.to_dict()
        if self.export is not None:
            result["export"] = self.export
        if self.verification:
            result.update(dataclasses.asdict(self.verification))
        if self.plot is not None:
            result["plot"] = str(self.plot)
        return result


def pick(request: PickRequest, hooks: Hooks | None = None,
         note: Callable[[str], None] = lambda message: None) -> Pick:
    """Choose from a run's family as `request` says. Warnings and the sweep's progress go to
    `hooks`; `note` hears what the user should know that is no problem (which run a runs root
    meant, a penalty normalised). Every user mistake raises UserError naming the fix."""
    hooks = hooks or Hooks()
    _check_modes(request)
    from hwnas.search.config import SPLITS_VERSION
    from hwnas.search.supernet.run_folder import latest_run, read_run_record, resolve_run

    started = time.perf_counter()
    if request.run is None:
        run_dir = latest_run(request.runs)
    else:
        run_dir, root_note = resolve_run(request.run)
        if root_note:
            note(root_note)
    record, run_table = read_run_record(run_dir)
    devices = _devices(request, record, run_table, run_dir, hooks)
    main = devices[0]
    if record.get("splits", 1) != SPLITS_VERSION:
        hooks.warn(f"run {run_dir} was trained before the data had a test split: its supernet "
                   f"saw today's validation images, so its accuracies are optimistic; search "
                   f"again")
    members, cached, loaded = _family(request, run_dir, run_table, main.table, hooks)
    members = with_devices(run_dir, members, [(d.table, d.backend) for d in devices])
    family_s = time.perf_counter() - started
    recalibration = _recalibrate(main) if request.recalibrate else None
    factor = recalibration.factor if recalibration else 1.0
    now = [latency_column(main.backend), main.budget.column]
    members = rescaled(members, now, factor)

    def load() -> LoadedRun:  # only when a finalist must be fine-tuned, read once
        nonlocal loaded
        if loaded is None:
            from hwnas.search.family.sweep import load_run

            loaded = load_run(run_dir)
        loaded.data(hooks)  # read now: a finalist's seconds are its fine-tune's alone
        return loaded

    reranked = None
    if request.penalty is not None:
        assert loaded is not None  # `_family` loads the run for query mode
        row = _at_penalty(loaded, members, request.penalty, devices, factor, note)
    else:
        ranked = ranked_within(members, [device.budget for device in devices])
        row = ranked[0]
        if request.finalists:
            reranked = _rerank(request, ranked, main, run_dir, record, load, hooks, note)
            row = next(m for m in ranked if m["genotype"] == reranked.chosen.genotype)
    chosen = Pick(run_dir, row, members, devices, cached, family_s,
                  _test_accuracy(run_dir, row, loaded), recalibration, rerank=reranked)
    if request.export is not None:
        assert loaded is not None  # `_family` loads the run for an export
        chosen = dataclasses.replace(chosen, export=_export(chosen, loaded, record,
                                                            request.export))
    if request.verify:
        chosen = dataclasses.replace(chosen, verification=_verify(main, row, factor, hooks))
    if request.plot is not None:
        from hwnas.search.family.plot import plot_family

        plot_family(members, main.table.space, [d.panel() for d in devices], row,
                    request.plot, run_dir.name)
        chosen = dataclasses.replace(chosen, plot=request.plot)
    return chosen


def _check_modes(request: PickRequest) -> None:
    modes = [request.max_latency_ms is not None, request.penalty is not None,
             bool(request.budgets)]
    if sum(modes) != 1:
        raise UserError("give exactly one of --max-latency-ms (best under a budget), --budget "
                        "(best under a budget on each of several devices) or --penalty (the "
                        "member at a penalty vector)")
    if request.budgets and request.table is not None:
        raise UserError("--budget names its own tables: drop --table, or use it with "
                        "--max-latency-ms")
    if request.finalists < 0:
        raise UserError(f"--rerank must be 0 (off) or a number of finalists, got "
                        f"{request.finalists}")
    if request.finetune_epochs < 1:
        raise UserError(f"--rerank-epochs must be at least 1, got {request.finetune_epochs}")
    if request.finalists and request.penalty is not None:
        raise UserError("--rerank chooses among the members under a budget, --penalty names "
                        "one member: drop one of them")


def _rerank(request: PickRequest, ranked: list[Record], main: Device, run_dir: Path,
            record: Record, load: Callable[[], LoadedRun], hooks: Hooks,
            note: Callable[[str], None]) -> Rerank:
    """Fine-tune the best finalists under the budget (with the run's seed) and choose among
    them; notes say when fewer members fit than asked for and which results came from the run
    folder's cache."""
    from hwnas.search.family.cache import RERANK_FILE
    from hwnas.search.family.rerank import rerank

    k = request.finalists
    if len(ranked) < k:
        note(f"--rerank {k}: only {len(ranked)} members fit, all of them are finalists")
    seed = int(record["config"]["seed"])
    reranked = rerank(ranked, k, request.finetune_epochs, seed, latency_column(main.backend),
                      run_dir, main.table.space, load, hooks)
    if reranked.reused:
        note(f"--rerank: {reranked.reused} of {len(reranked.finalists)} finalists' fine-tuned "
             f"accuracies reused from {run_dir / RERANK_FILE}")
    return reranked


def _devices(request: PickRequest, record: Record, run_table: LatencyTable, run_dir: Path,
             hooks: Hooks) -> list[Device]:
    """The tables pricing the family, the first the one a single budget speaks of."""
    config: dict[str, object] = record["config"]
    if request.budgets:
        return [_device(name, request.backend, config, run_table, run_dir, ms, hooks, index)
                for index, (name, ms) in enumerate(request.budgets)]
    table_info: dict[str, object] = record["table"]
    name = str(request.table if request.table is not None else table_info["path"])
    return [_device(name, request.backend, config, run_table, run_dir,
                    request.max_latency_ms, hooks)]


def _device(name: str, backend: str | None, config: dict[str, object], run_table: LatencyTable,
            run_dir: Path, budget_ms: float | None, hooks: Hooks, index: int = 0) -> Device:
    """A table of the run's space and the backend whose latency counts on it."""
    try:
        table = run_table if name == str(config["table_path"]) else read_table(name)
    except TableError as exc:
        raise UserError(f"{name}: {exc}") from None
    check_same_space(table, run_table, name, run_dir)
    chosen = table_backend(table, name, backend, str(config["backend"]), hooks)
    return Device(name, table, chosen, budget_ms, index)


def table_backend(table: LatencyTable, name: str, backend: str | None, preferred: str,
                  hooks: Hooks) -> str:
    """Whose latency counts on `table`: `backend`, else `preferred` (the search's) when the
    table has it, else the table's only one. Warns when its predictions are uncalibrated."""
    chosen = backend or (preferred if preferred in table.backends or len(table.backends) != 1
                         else table.backends[0])
    if chosen not in table.backends:
        raise UserError(f"{name} has no {chosen} entries (it has "
                        f"{', '.join(table.backends)}): pass --backend with one of them")
    if table.calibration(chosen) is None:
        hooks.warn(f"{name} has no calibration for {chosen}: latencies are the uncalibrated "
                   f"sum of entries")
    return chosen


def _family(request: PickRequest, run_dir: Path, run_table: LatencyTable, table: LatencyTable,
            hooks: Hooks) -> tuple[list[Record], bool, LoadedRun | None]:
    """The family priced on `table`, whether it came from the cache, and the loaded run when
    the request needs networks (no cache, query mode, export); else None, and no torch."""
    from hwnas.search.family.cache import read_cached

    members = read_cached(run_dir, run_table.fingerprint)
    if members is not None and request.penalty is None and request.export is None:
        return priced(run_dir, members, table), True, None
    from hwnas.search.family.sweep import family, load_run

    loaded = load_run(run_dir)
    members, cached = family(loaded, hooks, table)
    return members, cached, loaded


def _measured_here(device: Device, option: str) -> LatencyTable:
    """The device's table, refused when it was measured elsewhere (through a bundle)."""
    table = device.table
    if "bundle_id" in table.meta:
        raise UserError(f"{option} measures on this machine, but {device.name} was measured on "
                        f"{table.meta.get('device_name')} through a bundle: drop {option}, and "
                        f"measure the export there")
    return table


def _recalibrate(device: Device) -> Recalibration:
    from hwnas.latency.validate import drift_factor, measure_now, reference_networks

    table = _measured_here(device, "--recalibrate")
    references, _ = reference_networks(table, device.backend)
    drift = measure_now(table, device.backend, [])[1] if references else None
    if drift is None:  # nothing to re-measure
        raise UserError(f"--recalibrate: {device.name} has no {device.backend} calibration "
                        f"networks to re-measure; re-profile with `hwnas profile`")
    return Recalibration(drift, drift_factor(drift), len(references))


def _verify(device: Device, row: Record, factor: float, hooks: Hooks) -> Verification:
    from hwnas.latency.validate import NOISY_PCT, drift_factor, error_pct, measure_now

    table = _measured_here(device, "--verify")
    (measured,), drift = measure_now(table, device.backend, [genotype_of(row)])
    raw_ms = _ms(row, device.budget.column) / factor
    if drift is not None and abs(drift) > NOISY_PCT:
        pace = "slower" if drift > 0 else "faster"
        hooks.warn(f"this machine runs the profile's calibration networks {abs(drift):.1f}% "
                   f"{pace} than when it was profiled: the corrected error accounts for it; "
                   f"re-profile, pick with --recalibrate, or leave that much headroom in the "
                   f"budget")
    return Verification(measured, drift, error_pct(raw_ms, measured),
                        error_pct(raw_ms * drift_factor(drift), measured))


def _at_penalty(loaded: LoadedRun, members: list[Record], penalty: str, devices: list[Device],
                factor: float, note: Callable[[str], None]) -> Record:
    """The member at the penalty vector (swept before, or described and priced now, its main
    columns scaled by `factor` like the family's)."""
    from hwnas.search.family.pick import member_row, parse_penalty
    from hwnas.search.family.pricing import latencies
    from hwnas.search.family.sweep import describe

    s, normalised = parse_penalty(penalty, loaded.space)
    if normalised:
        note(normalised)
    genotype = loaded.arch(s)
    row = member_row(members, genotype)
    if row is None:  # a point the sweep did not visit gave a new architecture
        described = describe(loaded, genotype, s, loaded.data())
        for device in devices:
            column = latency_column(device.backend)
            described[column] = described[device.budget.column] = latencies(
                [genotype.to_json()], device.table)[0][column]
        main = devices[0]
        row = rescaled([described], [latency_column(main.backend), main.budget.column],
                       factor)[0]
    return {**row, "s": [float(v) for v in s]}


def _test_accuracy(run_dir: Path, row: Record, loaded: LoadedRun | None) -> float:
    """The chosen member's test accuracy: stored in the run folder once computed, so a
    repeated pick needs no torch."""
    from hwnas.search.family.cache import read_test_accuracy

    stored = read_test_accuracy(run_dir, str(row["genotype"]))
    if stored is not None:
        return stored
    from hwnas.search.family.sweep import load_run, member_test_accuracy

    return member_test_accuracy(loaded or load_run(run_dir), genotype_of(row))


def _export(chosen: Pick, loaded: LoadedRun, record: Record, folder: Path) -> dict[str, str]:
    """The pick's network with its inherited weights, written with its provenance."""
    from hwnas.search.family.derive import member_network
    from hwnas.search.family.export import export

    space = chosen.devices[0].table.space
    data = loaded.data()
    network, _ = member_network(space, chosen.genotype, loaded.supernet, data)
    provenance = {**_provenance(chosen, record),
                  "preprocessing": data.preprocessing.to_dict()}
    return export(network, space, provenance, folder)


def _provenance(chosen: Pick, record: Record) -> dict[str, object]:
    """What an export carries so a result can be traced and reproduced."""
    from importlib import metadata

    config: dict[str, object] = record["config"]
    result = chosen.to_dict()
    main = chosen.devices[0]
    return {**{k: result[k] for k in ("genotype", "s", "backend", "predicted_latency_ms",
                                      "accuracy", "val_accuracy", "test_accuracy",
                                      "params", "run", "table_fingerprint", "device")},
            "recalibration": result.get("recalibration"),
            **({"rerank": result["rerank"]} if chosen.rerank else {}),  # how it was chosen
            "device_name": main.table.meta.get("device_name"),
            "table_path": main.name,
            "seed": config["seed"], "dataset": config["dataset"],
            "space": main.table.space.to_dict(), "hwnas": metadata.version("hwnas")}


def _ms(row: Record, column: str) -> float:
    return float(row[column])
