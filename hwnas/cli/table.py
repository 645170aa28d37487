"""`hwnas table show|import|compare`: summarise a table, make one from a target's bundle
results, and compare two."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hwnas.cli.console import console

if TYPE_CHECKING:
    from hwnas.latency.model.table import LatencyTable


def show(path: Annotated[Path, typer.Argument(help="A table written by `hwnas profile`.")],
         entries: Annotated[bool, typer.Option(help="Also list every entry.")] = False) -> None:
    """Summarise a table: where it was measured, per-op latency per backend, and s_dev."""
    from hwnas.latency.model.table import read_table

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
    from hwnas.latency.targets.import_results import import_results as run_import

    table = run_import(results, bundle, out)
    console.print(f"wrote {out}: {len(table.rows)} entries measured on "
                  f"{table.meta['device_name']} ({table.meta['target']['provider']}, "
                  f"{table.threads} thread(s))", highlight=False)
    print_summary(table)


def compare(
    a: Annotated[Path, typer.Argument(help="Table A.")],
    b: Annotated[Path, typer.Argument(help="Table B, of the same space.")],
    backend_a: Annotated[str | None, typer.Option(
        help="A's backend (default: onnxruntime when both have it, else one they share).")
    ] = None,
    backend_b: Annotated[str | None, typer.Option(help="B's backend (default: as for A).")
                         ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Two tables side by side: per op and per entry, the ratio B/A, each table's s_dev, and
    where the two devices rank the operations differently."""
    import json

    from hwnas.latency.model.table import read_table
    from hwnas.latency.targets.compare import compare as run_compare
    from hwnas.latency.targets.compare import default_backend

    table_a, table_b = read_table(a), read_table(b)
    chosen_a = backend_a or default_backend(table_a, table_b)
    chosen_b = backend_b or default_backend(table_b, table_a)
    result = run_compare(table_a, table_b, chosen_a, chosen_b)
    if json_output:
        typer.echo(json.dumps({"a": str(a), "b": str(b), "backend_a": chosen_a,
                               "backend_b": chosen_b, **result.to_dict()}))
        return
    for name, path, table, backend in (("A", a, table_a, chosen_a), ("B", b, table_b, chosen_b)):
        console.print(f"{name}: {path} — {table.meta.get('device_name')} ({table.device}, "
                      f"{table.threads} thread(s)), {backend}, table {table.fingerprint}",
                      highlight=False)
    ops = Table(title="Each operation on every edge (ms, by the latency model) and s_dev")
    for column in ("op", "A ms", "B ms", "B/A", "A s_dev", "B s_dev"):
        ops.add_column(column, justify="left" if column == "op" else "right")
    for row in result.ops.to_dict("records"):
        ops.add_row(row["op"], f"{row['a_ms']:.3f}", f"{row['b_ms']:.3f}",
                    "—" if row["ratio"] is None else f"{row['ratio']:.2f}",
                    f"{row['a_s_dev']:.3f}", f"{row['b_s_dev']:.3f}")
    console.print(ops)
    entries = Table(title="Entries (latency: the lowest block median, ms)")
    for column in ("entry", "A ms", "B ms", "B/A"):
        entries.add_column(column, justify="left" if column == "entry" else "right")
    for row in result.entries.to_dict("records"):
        entries.add_row(row["entry"], f"{row['a_ms']:.4f}", f"{row['b_ms']:.4f}",
                        f"{row['ratio']:.2f}")
    console.print(entries)
    if result.rank_changes:
        console.print("The devices rank operations differently:")
        for change in result.rank_changes:
            console.print(f"  {change}", highlight=False)
    else:
        console.print("Both devices rank the operations alike, overall and at every shape.")


def print_summary(table: LatencyTable) -> None:
    from hwnas.latency.model.penalty import device_penalty, op_totals_ms

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
            nodes = fit.get("node_ms") or {}
            graph = (", with ONNX Runtime's graph nodes priced ("
                     + ", ".join(f"{1000 * ms:.1f} µs per {term.replace('_nodes', '')}"
                                 for term, ms in nodes.items())
                     + f", NCHWc block {fit.get('nchwc_block')})") if nodes else ""
            left_out = fit.get("left_out") or []
            dropped = (f" ({len(left_out)} more left out as disturbed: "
                       f"{', '.join(map(str, left_out))})") if left_out else ""
            console.print(f"{name} latency model: calibrated on {fit['networks']} whole networks"
                          f"{dropped}{graph}, fit error {fit['fit_mape_pct']}% (check held-out "
                          f"networks with `hwnas validate`)", highlight=False)
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
