"""`hwnas validate`: how well the table predicts whole networks measured on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hwnas.cli.console import console, progress_hooks

if TYPE_CHECKING:  # the validation module (pandas, torch) loads only when the command runs
    from hwnas.latency.validate import ValidationSummary

    class _Row(ValidationSummary):
        """One backend's summary and where its CSV and plot were written."""

        csv: str
        plot: str


def validate(
    table: Annotated[Path, typer.Option(help="A table written by `hwnas profile`.")] = Path(
        "tables/cpu.parquet"),
    backend: Annotated[list[str] | None, typer.Option(
        help="Backend to validate (repeat for several). Default: every backend of the table.")
    ] = None,
    n: Annotated[int, typer.Option(help="Held-out random architectures to measure.", min=2)] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the architectures drawn.")] = 1,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per backend instead of the table.")] = False,
    csv: Annotated[Path | None, typer.Option(
        help="CSV of every network (default: beside the table, "
             "TABLE.validate-BACKEND.csv).")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Predicted-versus-measured plot (default: TABLE.validate-BACKEND.png).")] = None,
) -> None:
    """Measure held-out random architectures twice and compare them with the prediction."""
    from hwnas.latency.model.table import read_table
    from hwnas.latency.validate import plot as draw
    from hwnas.latency.validate import validate as run_validate
    from hwnas.latency.validate import write_csv

    the_table = read_table(table)
    backends = list(dict.fromkeys(backend or the_table.backends))
    rows: list[_Row] = []
    for name in backends:
        with progress_hooks() as hooks:
            report = run_validate(the_table, name, n, seed, hooks)
        several = len(backends) > 1
        csv_path = _per_backend(csv, table, name, ".csv", several)
        plot_path = _per_backend(plot, table, name, ".png", several)
        write_csv(report, csv_path)
        draw(report, plot_path, f"{the_table.meta.get('device_name')} — {name}")
        summary: _Row = {**report.summary(), "csv": str(csv_path), "plot": str(plot_path)}
        rows.append(summary)
        if json_output:
            typer.echo(json.dumps(summary))
    if not json_output:
        _print(rows)


def _per_backend(given: Path | None, table: Path, backend: str, suffix: str,
                 several: bool) -> Path:
    """The output path for one backend: a given path gets `-BACKEND` when there are several."""
    if given is None:
        return table.with_name(f"{table.name}.validate-{backend}{suffix}")
    return given.with_name(f"{given.stem}-{backend}{given.suffix}") if several else given


def _print(rows: list[_Row]) -> None:
    listing = Table(title="Predicted vs measured end-to-end latency (held-out networks)")
    for column in ("backend", "n", "within ±5%", "within ±10%", "MAPE", "worst",
                   "±10% corrected", "MAPE corrected", "rank corr.", "repeatability", "drift",
                   "measured ms"):
        listing.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        low, high = row["measured_range_ms"]
        listing.add_row(str(row["backend"]) + ("" if row["calibrated"] else " (uncalibrated)"),
                        str(row["n"]), f"{100 * row['within_5pct']:.0f}%",
                        f"{100 * row['within_10pct']:.0f}%",
                        f"{row['mape']:.1f}%", f"{row['worst_pct']:+.1f}%",
                        f"{100 * row['within_10pct_corrected']:.0f}%",
                        f"{row['mape_corrected']:.1f}%",
                        "—" if row["rank_correlation"] is None else
                        f"{row['rank_correlation']:.3f}", f"{row['repeatability_pct']:.1f}%",
                        "—" if row["drift_pct"] is None else f"{row['drift_pct']:+.1f}%",
                        f"{low:.3f}–{high:.3f}")
    console.print(listing)
    for row in rows:
        console.print(f"{row['backend']}: CSV {row['csv']}, plot {row['plot']}",
                      highlight=False)
    console.print("repeatability: median disagreement between the two measurements of each "
                  "network (the noise floor of the figures above); drift: how much slower "
                  "(+) or faster the calibration networks run now than in the profile (the "
                  "machine's own change since then); corrected: each prediction scaled by "
                  "that drift")
