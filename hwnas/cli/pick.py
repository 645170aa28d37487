"""`hwnas pick`: options → `hwnas.search.family.choose.pick` → the pick printed (a table, or
one JSON object)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hwnas.cli.console import console, note, progress_hooks


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
    rerank: Annotated[int | None, typer.Option(
        "--rerank", metavar="K",
        help="Fine-tune the K members under the budget with the highest inherited validation "
             "accuracy for --rerank-epochs each (`hwnas train`'s recipe, from their inherited "
             "weights) and choose the one most accurate on validation afterwards; results are "
             "cached in the run folder. The fine-tuned weights only choose: --export writes "
             "the chosen member with its inherited weights. Default 0 (off: measured no gain).",
        show_default=False)] = None,
    rerank_epochs: Annotated[int | None, typer.Option(
        "--rerank-epochs", metavar="E",
        help="Fine-tuning epochs of each --rerank finalist. Default 2.",
        show_default=False)] = None,
) -> None:
    """Pick the most accurate member predicted within --max-latency-ms (or within every
    --budget, or the member at --penalty), optionally re-ranking the best finalists by a short
    fine-tune (--rerank), and optionally export, verify and plot it."""
    from hwnas.search.family.choose import PickRequest
    from hwnas.search.family.choose import pick as choose
    from hwnas.search.family.pick import parse_budget

    request = PickRequest(run=run, runs=runs, max_latency_ms=max_latency_ms,
                          budgets=tuple(map(parse_budget, budget or [])), penalty=penalty,
                          table=table, backend=backend, export=export, verify=verify,
                          recalibrate=recalibrate, plot=plot, rerank=rerank,
                          rerank_epochs=rerank_epochs)
    with progress_hooks() as hooks:
        chosen = choose(request, hooks, note)
    if json_output:
        typer.echo(json.dumps(chosen.to_dict()))
        return
    console.print(f"family of {len(chosen.members)} architectures "
                  f"({'from cache' if chosen.cached else 'swept'} in {chosen.family_s:.1f} s)")
    result = chosen.to_dict()
    _print(result)
    if "finalists" in result:
        _print_finalists(result)


def _print(result: dict[str, Any]) -> None:
    """The pick (`Pick.to_dict()`) as a two-column table."""
    from rich.table import Table

    genotype = result["genotype"]
    listing = Table(title=f"pick ({result['backend']})", show_header=False)
    listing.add_column("what", style="bold")
    listing.add_column("value")
    listing.add_row("normal cell", ", ".join(genotype["normal"]))
    listing.add_row("reduction cell", ", ".join(genotype["reduce"]))
    listing.add_row("penalty s", ", ".join(f"{op}={v:.3f}"
                                           for op, v in result["s"].items()))
    recalibration = result.get("recalibration")
    listing.add_row("predicted latency", f"{result['predicted_latency_ms']:.3f} ms" + (
        f" (table {result['predicted_latency_ms_raw']:.3f} ms × {recalibration['factor']:.3f}"
        f", the drift re-measured now)" if recalibration else ""))
    if "measured_latency_ms" in result:
        listing.add_row("measured latency", f"{result['measured_latency_ms']:.3f} ms "
                        f"({result['error_pct_raw']:+.1f}% prediction error as the table "
                        f"says, {result['error_pct_corrected']:+.1f}% corrected for drift)")
        drift = result.get("machine_drift_pct")
        if drift is not None:
            listing.add_row("machine drift", f"{drift:+.1f}% (the profile's calibration "
                            f"networks now against then; large: the machine moved)")
    if "finetuned_val_accuracy" in result:
        listing.add_row("validation accuracy", f"{result['accuracy']:.4f} (inherited weights: "
                        f"ranked the finalists; the export's)")
        listing.add_row("fine-tuned validation", f"{result['finetuned_val_accuracy']:.4f} "
                        f"(after {_epochs(result['rerank']['epochs'])}: chosen on)")
    else:
        listing.add_row("validation accuracy", f"{result['accuracy']:.4f} (chosen on)")
    listing.add_row("test accuracy", f"{result['test_accuracy']:.4f} (held out: expect this)")
    listing.add_row("parameters", f"{result['params']:,}")
    listing.add_row("operation counts", ", ".join(
        f"{op} {n}" for op, n in result["op_counts"].items()))
    for name, path in (result.get("export") or {}).items():
        listing.add_row(f"export {name}", path)
    if "plot" in result:
        listing.add_row("plot", str(result["plot"]))
    console.print(listing)


def _print_finalists(result: dict[str, Any]) -> None:
    """`--rerank`'s finalists, best inherited accuracy first, and what they cost."""
    from rich.table import Table

    rerank = result["rerank"]
    listing = Table(title=f"--rerank {rerank['k']}: finalists fine-tuned "
                          f"{_epochs(rerank['epochs'])} (seed {rerank['seed']})")
    for column in ("", "predicted latency", "inherited val", "fine-tuned val", "seconds"):
        listing.add_column(column, justify="right")
    for rank, finalist in enumerate(result["finalists"], 1):
        chosen = finalist["genotype"] == result["genotype"]
        listing.add_row(f"{rank}{' chosen' if chosen else ''}",
                        f"{finalist['predicted_latency_ms']:.3f} ms",
                        f"{finalist['inherited_val_accuracy']:.4f}",
                        f"{finalist['finetuned_val_accuracy']:.4f}",
                        f"{finalist['seconds']:.1f}" + (" (cached)" if finalist["cached"] else ""))
    console.print(listing)
    console.print(f"re-ranking cost {rerank['cost_s']:.1f} s of fine-tuning"
                  + (f" ({rerank['reused']} of {len(result['finalists'])} finalists reused from "
                     f"the run folder's cache)" if rerank["reused"] else ""))


def _epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"
