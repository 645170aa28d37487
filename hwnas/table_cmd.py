"""`hwnas table show|import`: summarise a latency table; make one from a target's results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hwnas.console import console

if TYPE_CHECKING:
    from latency.table import LatencyTable


def show(path: Annotated[Path, typer.Argument(help="A table written by `hwnas profile`.")],
         entries: Annotated[bool, typer.Option(help="Also list every entry.")] = False) -> None:
    """Summarise a table: where it was measured, per-op latency per backend, and s_dev."""
    from latency.table import read_table

    table = read_table(path)
    print_summary(table)
    if entries:
        print_entries(table)


def import_results(
    results: Annotated[Path, typer.Argument(help="The results file the bundle's run.py wrote.")],
    bundle: Annotated[Path, typer.Option(help="The bundle folder the target ran.")],
    out: Annotated[Path, typer.Option(help="Where to write the table (Parquet).")],
) -> None:
    """Turn a target's bundle results into a latency table, calibrated on the networks the
    target measured; then `hwnas pick --table` prices a run's family with it."""
    from latency.table_import import import_results as run_import

    table = run_import(results, bundle, out)
    console.print(f"wrote {out}: {len(table.rows)} entries measured on "
                  f"{table.meta['device_name']} ({table.meta['target']['provider']}, "  # type: ignore[index]
                  f"{table.threads} thread(s))", highlight=False)
    print_summary(table)


def print_summary(table: LatencyTable) -> None:
    from latency.penalty import device_penalty, op_totals_ms

    meta = table.meta
    space = table.space
    unstable = int((~table.rows["stable"]).sum())
    console.print(
        f"[bold]{meta.get('device_name')}[/] ({meta.get('device')}, {meta.get('threads')} "
        f"thread(s)); space [bold]{space.name}[/] ({space.fingerprint()}), batch "
        f"{space.batch_size}; table {table.fingerprint}; "
        f"{len(table.rows)} entries, {unstable} unstable", highlight=False)
    if meta.get("created"):
        console.print(f"profiled {meta['created']}, {table_age(str(meta['created']))} ago: "
                      f"the machine may have moved since (`hwnas validate` measures its drift, "
                      f"`hwnas pick --recalibrate` corrects for it)", highlight=False)
    summary = Table(title="Each operation on every edge (ms, by the latency model) and the "
                          "device penalty s_dev")
    summary.add_column("op")
    backends = table.backends
    for name in backends:
        summary.add_column(f"{name} ms", justify="right")
        summary.add_column(f"{name} s_dev", justify="right")
    totals = {name: op_totals_ms(table, name) for name in backends}
    shares = {name: device_penalty(table, name) for name in backends}
    for op in space.ops:
        cells = []
        for name in backends:
            cells += [f"{totals[name][op]:.3f}", f"{shares[name][op]:.3f}"]
        summary.add_row(op, *cells)
    console.print(summary)
    calibration = meta.get("calibration") or {}
    for name in backends:
        if name in calibration:
            fit = calibration[name]
            console.print(f"{name} latency model: calibrated on {fit['networks']} whole networks,"
                          f" fit error {fit['fit_mape_pct']}% (check held-out networks with "
                          f"`hwnas validate`)", highlight=False)
        else:
            console.print(f"{name} latency model: [yellow]uncalibrated[/] (profile with "
                          f"--calibration-networks > 0 to calibrate)", highlight=False)


def print_entries(table: LatencyTable) -> None:
    listing = Table(title="Entries (latency: the lowest block median)")
    for column in ("backend", "op", "in", "out", "latency ms", "median ms", "IQR ms", "n",
                   "stable"):
        listing.add_column(column, justify="left" if column in ("backend", "op") else "right")
    for row in table.rows.to_dict("records"):
        inputs = f"{row['n_inputs']}×" if row["n_inputs"] > 1 else ""
        listing.add_row(row["backend"], row["op"],
                        f"{inputs}{row['c_in']}×{row['h']}×{row['w']}",
                        f"{row['c_out']}×{row['h_out']}×{row['w_out']}",
                        f"{row['latency_ms']:.4f}", f"{row['median_ms']:.4f}",
                        f"{row['iqr_ms']:.4f}", str(row["n"]), "yes" if row["stable"] else "NO")
    console.print(listing)


def table_age(created: str, now: datetime | None = None) -> str:
    """How long ago an ISO time was, in words: '3 d 4 h', '2 h 5 min', '40 s'."""
    seconds = int(((now or datetime.now(UTC)) - datetime.fromisoformat(created))
                  .total_seconds())
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"
