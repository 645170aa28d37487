"""`hwnas pick`: the best architecture of a trained family under a latency budget."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from hwnas.console import PROGRESS_COLUMNS, RichHooks, console, err_console, note, warn

if TYPE_CHECKING:
    import pandas as pd

    from latency.table import LatencyTable
    from search.sweep import LoadedRun


def pick(
    max_latency_ms: Annotated[float | None, typer.Option(
        help="Latency budget on the table's device, in ms.", min=0.0)] = None,
    run: Annotated[Path | None, typer.Option(
        help="A run folder, or a runs root to use its latest run (default: the latest "
             "run under --runs).")] = None,
    runs: Annotated[Path, typer.Option(help="Runs root `hwnas search` wrote to.")] = Path("runs"),
    backend: Annotated[str | None, typer.Option(
        help="Whose latency counts: torch or onnxruntime (default: the search's).")] = None,
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
    """Pick the most accurate member predicted within --max-latency-ms (or the member at
    --penalty), and optionally export, verify and plot it."""
    from latency.errors import UserError
    from search.config import SPLITS_VERSION
    from search.family_cache import read_cached
    from search.pick import best_under, rescaled, summary
    from search.run_folder import latest_run, read_run_record, resolve_run

    if (max_latency_ms is None) == (penalty is None):
        raise UserError("give exactly one of --max-latency-ms (best under a budget) or "
                        "--penalty (the member at a penalty vector)")
    started = time.perf_counter()
    run_dir, root_note = resolve_run(run) if run is not None else (latest_run(runs), None)
    if root_note:
        note(root_note)
    record, table = read_run_record(run_dir)
    config: dict = record["config"]  # type: ignore[assignment]
    chosen_backend = backend or str(config["backend"])
    if chosen_backend not in table.backends:
        raise UserError(f"--backend {chosen_backend}: the run's table has "
                        f"{', '.join(table.backends)}")
    if table.calibration(chosen_backend) is None:
        warn(f"the table has no calibration for {chosen_backend}: latencies are the "
             f"uncalibrated sum of entries")
    if record.get("splits", 1) != SPLITS_VERSION:
        warn(f"run {run_dir} was trained before the data had a test split: its supernet saw "
             f"today's validation images, so its accuracies are optimistic; search again")
    # A budget on a cached family (its pick's test accuracy stored) needs no network and no
    # torch; anything else loads the run.
    members = read_cached(run_dir, table.fingerprint)
    cached = members is not None
    loaded = None
    if members is None or penalty is not None or export is not None or verify:
        from search.sweep import family, load_run

        loaded = load_run(run_dir)
        with Progress(*PROGRESS_COLUMNS, console=err_console, transient=True) as progress:
            members, cached = family(loaded, RichHooks(progress).hooks())
    if not json_output:
        console.print(f"family of {len(members)} architectures "
                      f"({'from cache' if cached else 'swept'} in "
                      f"{time.perf_counter() - started:.1f} s)")
    recalibration = _recalibrate(table, chosen_backend) if recalibrate else None
    factor = recalibration["factor"] if recalibration else 1.0
    members = rescaled(members, chosen_backend, factor)
    if max_latency_ms is not None:
        row = best_under(members, max_latency_ms, chosen_backend)
    else:
        row = _at_penalty(loaded, members, penalty, chosen_backend, factor)  # type: ignore
    result = {**summary(row, table.space, chosen_backend), "run": str(run_dir),
              "table_fingerprint": table.fingerprint, "device": table.device,
              "test_accuracy": _test_accuracy(run_dir, row, loaded)}
    if recalibration:
        result["predicted_latency_ms_raw"] = result["predicted_latency_ms"] / factor  # type: ignore[operator]
        result["recalibration"] = recalibration
    if export is not None:
        from search.derive import member_network
        from search.export import export as write_export
        from search.pick import genotype_of

        data = loaded.data()
        network, _ = member_network(table.space, genotype_of(row), loaded.supernet, data)
        provenance = {**_provenance(record, table, result),
                      "preprocessing": data.preprocessing.to_dict()}
        result["export"] = write_export(network, table.space, provenance, export)
    if verify:
        result.update(_verify(table, chosen_backend, row, factor))
    if plot is not None:
        from search.plot import plot_family

        plot_family(members, table.space, chosen_backend, row, max_latency_ms, plot,
                    f"{table.meta.get('device_name')}: {run_dir.name}")
        result["plot"] = str(plot)
    if json_output:
        typer.echo(json.dumps(result))
    else:
        _print(result)


def _recalibrate(table: LatencyTable, backend: str) -> dict[str, float]:
    """The drift of the table's reference networks measured now, and the factor it scales
    predictions by."""
    from latency.errors import UserError
    from latency.validate import drift_factor, measure_now, reference_networks

    references, _ = reference_networks(table, backend)
    if not references:
        raise UserError(f"--recalibrate: the table has no {backend} calibration networks to "
                        f"re-measure; re-profile with `hwnas profile`")
    _, drift = measure_now(table, backend, [])
    return {"drift_pct": drift, "factor": drift_factor(drift),  # type: ignore[dict-item]
            "references": len(references)}


def _verify(table: LatencyTable, backend: str, row: pd.Series,
            factor: float) -> dict[str, object]:
    """The pick measured as deployed, its prediction's error raw (as the table says) and
    corrected by the drift the reference networks show during the same measurement."""
    from latency.validate import NOISY_PCT, drift_factor, error_pct, measure_now
    from search.pick import genotype_of, latency_column

    (measured,), drift = measure_now(table, backend, [genotype_of(row)])
    raw_ms = float(row[latency_column(backend)]) / factor
    if drift is not None and abs(drift) > NOISY_PCT:
        pace = "slower" if drift > 0 else "faster"
        warn(f"this machine runs the profile's calibration networks {abs(drift):.1f}% "
             f"{pace} than when it was profiled: the corrected error accounts for it; "
             f"re-profile, pick with --recalibrate, or leave that much headroom in the budget")
    return {"measured_latency_ms": measured, "machine_drift_pct": drift,
            "error_pct_raw": error_pct(raw_ms, measured),
            "error_pct_corrected": error_pct(raw_ms * drift_factor(drift), measured)}


def _at_penalty(loaded: LoadedRun, members: pd.DataFrame, penalty: str, backend: str,
                factor: float) -> pd.Series:
    """The member at the --penalty vector (swept before, or described now, its prediction
    scaled like the family's)."""
    from search.pick import latency_column, member_row, parse_penalty
    from search.sweep import describe

    s, normalised = parse_penalty(penalty, loaded.space)
    if normalised:
        note(normalised)
    genotype = loaded.arch(s)
    row = member_row(members, genotype)
    if row is None:  # a point the sweep did not visit gave a new architecture
        import pandas as pd

        row = pd.Series(describe(loaded, genotype, s, loaded.data()))
        row[latency_column(backend)] *= factor
    row = row.copy()
    row["s"] = [float(v) for v in s]
    return row


def _test_accuracy(run_dir: Path, row: pd.Series, loaded: LoadedRun | None) -> float:
    """The chosen member's test accuracy: stored in the run folder once computed, so a
    repeated pick needs no torch."""
    from search.family_cache import read_test_accuracy

    stored = read_test_accuracy(run_dir, str(row["genotype"]))
    if stored is not None:
        return stored
    from search.pick import genotype_of
    from search.sweep import load_run, member_test_accuracy

    return member_test_accuracy(loaded or load_run(run_dir), genotype_of(row))


def _provenance(record: dict[str, object], table: LatencyTable,
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
            "table_path": record["table"]["path"],  # type: ignore[index]
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
