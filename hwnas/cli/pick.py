"""`hwnas pick`: the best architecture of a trained family under a latency budget."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hwnas.cli.console import console, note, progress_hooks, warn

if TYPE_CHECKING:
    from hwnas.latency.model.table import LatencyTable, Record
    from hwnas.search.family.pick import Budget
    from hwnas.search.family.sweep import LoadedRun


def pick(
    max_latency_ms: Annotated[float | None, typer.Option(
        help="Latency budget on the table's device, in ms.", min=0.0)] = None,
    run: Annotated[Path | None, typer.Option(
        help="A run folder, or a runs root to use its latest run (default: the latest "
             "run under --runs).")] = None,
    runs: Annotated[Path, typer.Option(help="Runs root `hwnas search` wrote to.")] = Path("runs"),
    backend: Annotated[str | None, typer.Option(
        help="Whose latency counts: torch or onnxruntime (default: the search's, or the "
             "table's only backend).")] = None,
    table: Annotated[Path | None, typer.Option(
        help="Price the family with this table (the run's space, measured on any device, e.g. "
             "by `hwnas table import`) instead of the run's own.")] = None,
    budget: Annotated[list[str] | None, typer.Option(
        help="TABLE=MS: a budget on the device that TABLE measured; repeat for several "
             "devices: the most accurate member that fits every budget.")] = None,
    penalty: Annotated[str | None, typer.Option(
        help="Query mode: the member at this penalty vector s, as op=value,... or values in "
             "the order `hwnas table show` lists the ops.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    export: Annotated[Path | None, typer.Option(
        help="Write the pick here: model.onnx, model.pt, genotype.json.")] = None,
    verify: Annotated[bool, typer.Option(
        help="Measure the pick's real latency on this device and print it beside the "
             "prediction, raw and corrected by the machine's drift.")] = False,
    recalibrate: Annotated[bool, typer.Option(
        help="Re-measure the table's reference networks now (a few seconds) and scale every "
             "prediction by their drift since the profile before choosing.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Draw the trade-off plot (PNG).")] = None,
) -> None:
    """Pick the most accurate member predicted within --max-latency-ms (or within every
    --budget, or the member at --penalty), and optionally export, verify and plot it."""
    from hwnas.errors import UserError
    from hwnas.search.config import SPLITS_VERSION
    from hwnas.search.family.cache import read_cached
    from hwnas.search.family.pick import (
        best_within,
        latency_column,
        parse_budget,
        rescaled,
        summary,
    )
    from hwnas.search.family.pricing import priced, with_devices
    from hwnas.search.supernet.run_folder import latest_run, read_run_record, resolve_run

    if sum([max_latency_ms is not None, penalty is not None, bool(budget)]) != 1:
        raise UserError("give exactly one of --max-latency-ms (best under a budget), --budget "
                        "(best under a budget on each of several devices) or --penalty (the "
                        "member at a penalty vector)")
    if budget and table is not None:
        raise UserError("--budget names its own tables: drop --table, or use it with "
                        "--max-latency-ms")
    started = time.perf_counter()
    run_dir, root_note = resolve_run(run) if run is not None else (latest_run(runs), None)
    if root_note:
        note(root_note)
    record, run_table = read_run_record(run_dir)
    config: dict = record["config"]  # type: ignore[assignment]
    if budget:
        devices = [_device(name, backend, config, run_table, run_dir, ms, index)
                   for index, (name, ms) in enumerate(map(parse_budget, budget))]
    else:
        name = str(table) if table is not None else str(record["table"]["path"])  # type: ignore
        devices = [_device(name, backend, config, run_table, run_dir, max_latency_ms)]
    main = devices[0]
    if record.get("splits", 1) != SPLITS_VERSION:
        warn(f"run {run_dir} was trained before the data had a test split: its supernet saw "
             f"today's validation images, so its accuracies are optimistic; search again")
    # A budget on a cached family (its pick's test accuracy stored) needs no network and no
    # torch; anything else loads the run.
    members = read_cached(run_dir, run_table.fingerprint)
    cached = members is not None
    loaded = None
    if members is None or penalty is not None or export is not None or verify:
        from hwnas.search.family.sweep import family, load_run

        loaded = load_run(run_dir)
        with progress_hooks() as hooks:
            members, cached = family(loaded, hooks, main.table)
    else:
        members = priced(run_dir, members, main.table)
    members = with_devices(run_dir, members, [(d.table, d.backend) for d in devices])
    if not json_output:
        console.print(f"family of {len(members)} architectures "
                      f"({'from cache' if cached else 'swept'} in "
                      f"{time.perf_counter() - started:.1f} s)")
    # --recalibrate scales the first device's predictions (the one measured here) by the drift
    recalibration = _recalibrate(main) if recalibrate else None
    factor = recalibration["factor"] if recalibration else 1.0
    now = [latency_column(main.backend), main.budget.column]
    members = rescaled(members, now, factor)
    if penalty is None:
        row = best_within(members, [d.budget for d in devices])
    else:
        row = _at_penalty(loaded, members, penalty, devices, now, factor)  # type: ignore[arg-type]
    the_table = main.table
    result = {**summary(row, the_table.space, main.backend), "run": str(run_dir),
              "table_fingerprint": the_table.fingerprint, "device": the_table.device,
              "test_accuracy": _test_accuracy(run_dir, row, loaded),
              "devices": [d.describe(row) for d in devices]}
    if recalibration:
        result["predicted_latency_ms_raw"] = result["predicted_latency_ms"] / factor  # type: ignore[operator]
        result["recalibration"] = recalibration
    if export is not None:
        from hwnas.search.family.derive import member_network
        from hwnas.search.family.export import export as write_export
        from hwnas.search.family.pick import genotype_of

        data = loaded.data()
        network, _ = member_network(the_table.space, genotype_of(row), loaded.supernet, data)
        provenance = {**_provenance(record, main.name, the_table, result),
                      "preprocessing": data.preprocessing.to_dict()}
        result["export"] = write_export(network, the_table.space, provenance, export)
    if verify:
        result.update(_verify(main, row, factor))
    if plot is not None:
        from hwnas.search.family.plot import plot_family

        plot_family(members, the_table.space, [d.panel() for d in devices], row, plot,
                    run_dir.name)
        result["plot"] = str(plot)
    if json_output:
        typer.echo(json.dumps(result))
    else:
        _print(result)


@dataclass(frozen=True)
class Device:
    """One table pricing the family: the device it measured, whose latency counts, a budget."""

    name: str  # the table's path as given
    table: LatencyTable
    backend: str
    budget_ms: float | None
    index: int = 0  # its place among --budget's devices

    @property
    def budget(self) -> Budget:
        from hwnas.search.family.pick import Budget
        from hwnas.search.family.pricing import device_column

        return Budget(self.name, self.backend, self.budget_ms or math.inf,
                      device_column(self.index))

    def describe(self, row: Record) -> dict[str, object]:
        """What --json lists for each device."""
        return {"table": self.name, "table_fingerprint": self.table.fingerprint,
                "device": self.table.device, "device_name": self.table.meta.get("device_name"),
                "backend": self.backend, "budget_ms": self.budget_ms,
                "predicted_latency_ms": float(row[self.budget.column])}

    def panel(self) -> tuple[str, str, float | None]:
        """(title, members' column, budget) of this device's trade-off plot."""
        return (f"{self.table.meta.get('device_name')} ({self.backend})", self.budget.column,
                self.budget_ms)


def _device(name: str, backend: str | None, config: dict, run_table: LatencyTable,
            run_dir: Path, budget_ms: float | None, index: int = 0) -> Device:
    """A table of the run's space and the backend whose latency counts on it: --backend, else
    the search's when the table has it, else the table's only one."""
    from hwnas.errors import UserError
    from hwnas.latency.model.table import TableError, read_table
    from hwnas.search.family.pricing import check_same_space

    try:
        table = run_table if name == str(config["table_path"]) else read_table(name)
    except TableError as exc:
        raise UserError(f"{name}: {exc}") from None
    check_same_space(table, run_table, name, run_dir)
    searched = str(config["backend"])
    chosen = backend or (searched if searched in table.backends or len(table.backends) != 1
                         else table.backends[0])
    if chosen not in table.backends:
        raise UserError(f"{name} has no {chosen} entries (it has "
                        f"{', '.join(table.backends)}): pass --backend with one of them")
    if table.calibration(chosen) is None:
        warn(f"{name} has no calibration for {chosen}: latencies are the uncalibrated sum of "
             f"entries")
    return Device(name, table, chosen, budget_ms, index)


def _measured_here(device: Device, option: str) -> LatencyTable:
    """The device's table, refused when it was measured elsewhere (through a bundle)."""
    from hwnas.errors import UserError

    table = device.table
    if "bundle_id" in table.meta:
        raise UserError(f"{option} measures on this machine, but {device.name} was measured on "
                        f"{table.meta.get('device_name')} through a bundle: drop {option}, and "
                        f"measure the export there")
    return table


def _recalibrate(device: Device) -> dict[str, float]:
    """The drift of the table's reference networks measured now, and the factor it scales
    predictions by."""
    from hwnas.errors import UserError
    from hwnas.latency.validate import drift_factor, measure_now, reference_networks

    table = _measured_here(device, "--recalibrate")
    references, _ = reference_networks(table, device.backend)
    if not references:
        raise UserError(f"--recalibrate: {device.name} has no {device.backend} calibration "
                        f"networks to re-measure; re-profile with `hwnas profile`")
    _, drift = measure_now(table, device.backend, [])
    return {"drift_pct": drift, "factor": drift_factor(drift),  # type: ignore[dict-item]
            "references": len(references)}


def _verify(device: Device, row: Record, factor: float) -> dict[str, object]:
    """The pick measured as deployed, its prediction's error raw (as the table says) and
    corrected by the drift the reference networks show during the same measurement."""
    from hwnas.latency.validate import NOISY_PCT, drift_factor, error_pct, measure_now
    from hwnas.search.family.pick import genotype_of

    table = _measured_here(device, "--verify")
    (measured,), drift = measure_now(table, device.backend, [genotype_of(row)])
    raw_ms = float(row[device.budget.column]) / factor
    if drift is not None and abs(drift) > NOISY_PCT:
        pace = "slower" if drift > 0 else "faster"
        warn(f"this machine runs the profile's calibration networks {abs(drift):.1f}% "
             f"{pace} than when it was profiled: the corrected error accounts for it; "
             f"re-profile, pick with --recalibrate, or leave that much headroom in the budget")
    return {"measured_latency_ms": measured, "machine_drift_pct": drift,
            "error_pct_raw": error_pct(raw_ms, measured),
            "error_pct_corrected": error_pct(raw_ms * drift_factor(drift), measured)}


def _at_penalty(loaded: LoadedRun, members: list[Record], penalty: str,
                devices: list[Device], now: list[str], factor: float) -> Record:
    """The member at the --penalty vector (swept before, or described and priced now, its
    `now` columns scaled by `factor` like the family's)."""
    from hwnas.search.family.pick import latency_column, member_row, parse_penalty, rescaled
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
        row = rescaled([described], now, factor)[0]
    return {**row, "s": [float(v) for v in s]}


def _test_accuracy(run_dir: Path, row: Record, loaded: LoadedRun | None) -> float:
    """The chosen member's test accuracy: stored in the run folder once computed, so a
    repeated pick needs no torch."""
    from hwnas.search.family.cache import read_test_accuracy

    stored = read_test_accuracy(run_dir, str(row["genotype"]))
    if stored is not None:
        return stored
    from hwnas.search.family.pick import genotype_of
    from hwnas.search.family.sweep import load_run, member_test_accuracy

    return member_test_accuracy(loaded or load_run(run_dir), genotype_of(row))


def _provenance(record: dict[str, object], table_path: str, table: LatencyTable,
                result: dict[str, object]) -> dict[str, object]:
    """What an export carries so a result can be traced and reproduced."""
    from importlib import metadata

    config: dict = record["config"]  # type: ignore[assignment]
    return {**{k: result[k] for k in ("genotype", "s", "backend", "predicted_latency_ms",
                                      "accuracy", "val_accuracy", "test_accuracy",
                                      "params", "run", "table_fingerprint",
                                      "device")},
            "recalibration": result.get("recalibration"),
            "device_name": table.meta.get("device_name"),
            "table_path": table_path,
            "seed": config["seed"], "dataset": config["dataset"],
            "space": table.space.to_dict(), "hwnas": metadata.version("hwnas")}


def _print(result: dict[str, object]) -> None:
    from rich.table import Table

    genotype = result["genotype"]
    listing = Table(title=f"pick ({result['backend']})", show_header=False)
    listing.add_column("what", style="bold")
    listing.add_column("value")
    listing.add_row("normal cell", ", ".join(genotype["normal"]))  # type: ignore[index]
    listing.add_row("reduction cell", ", ".join(genotype["reduce"]))  # type: ignore[index]
    listing.add_row("penalty s", ", ".join(f"{op}={v:.3f}"
                                           for op, v in result["s"].items()))  # type: ignore
    recalibration = result.get("recalibration")
    listing.add_row("predicted latency", f"{result['predicted_latency_ms']:.3f} ms" + (
        f" (table {result['predicted_latency_ms_raw']:.3f} ms × {recalibration['factor']:.3f}"
        f", the drift re-measured now)" if recalibration else ""))  # type: ignore[index]
    if "measured_latency_ms" in result:
        listing.add_row("measured latency", f"{result['measured_latency_ms']:.3f} ms "
                        f"({result['error_pct_raw']:+.1f}% prediction error as the table "
                        f"says, {result['error_pct_corrected']:+.1f}% corrected for drift)")
        drift = result.get("machine_drift_pct")
        if drift is not None:
            listing.add_row("machine drift", f"{drift:+.1f}% (the profile's calibration "  # type: ignore[str-format]
                            f"networks now against then; large: the machine moved)")
    listing.add_row("validation accuracy", f"{result['accuracy']:.4f} (chosen on)")
    listing.add_row("test accuracy", f"{result['test_accuracy']:.4f} (held out: expect this)")
    listing.add_row("parameters", f"{result['params']:,}")
    listing.add_row("operation counts", ", ".join(
        f"{op} {n}" for op, n in result["op_counts"].items()))  # type: ignore[union-attr]
    for name, path in (result.get("export") or {}).items():  # type: ignore[union-attr]
        listing.add_row(f"export {name}", path)
    if "plot" in result:
        listing.add_row("plot", str(result["plot"]))
    console.print(listing)
