"""`hwnas profile` and `hwnas table show`: build a latency table and summarise one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from hwnas.errors import err_console

if TYPE_CHECKING:
    from latency.hooks import Hooks
    from latency.table import LatencyTable

# Piped output (logs, CI, tests) gets a fixed, readable width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)


PROGRESS_COLUMNS = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), TextColumn("[dim]{task.fields[label]}"))


class RichHooks:
    """Hooks drawn as a rich progress bar, one task per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: int | None = None

    def warn(self, message: str) -> None:
        err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)

    def start(self, phase: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(phase, total=total, label="")

    def advance(self, label: str) -> None:
        assert self.task is not None
        task = self.progress.tasks[self.task]
        if task.total is not None and task.completed + 1 > task.total:
            # noisy entries need more rounds than the minimum: grow the bar, keep the rate
            self.progress.update(self.task, total=task.total + 1)
        self.progress.update(self.task, advance=1, label=label)

    def hooks(self) -> Hooks:
        from latency.hooks import Hooks

        return Hooks(self.warn, self.start, self.advance)


def profile(
    out: Annotated[Path, typer.Option(help="Where to write the table (Parquet).")] = Path(
        "tables/cpu.parquet"),
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    space: Annotated[str, typer.Option(help="A preset (exp1, exp2, exp3, darts) or a .json/.toml "
                                            "space file.")] = "exp1",
    backend: Annotated[list[str] | None, typer.Option(
        help="Backend to measure (repeat for several): torch, onnxruntime. Default: both.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Batch size to measure at (default: the space's, 1).", min=1)] = None,
    threads: Annotated[int, typer.Option(help="Intra-op threads of every backend.", min=1)] = 1,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted profile from its progress file beside --out.")] = False,
    seed: Annotated[int, typer.Option(
        help="Seed of the interleaving order and of the calibration networks.")] = 0,
    calibration_networks: Annotated[int | None, typer.Option(
        help="Whole networks measured per backend to calibrate the latency model (default: "
             "6 × (ops + 1); 0: none).", min=0)] = None,
) -> None:
    """Measure every candidate op at every shape of the space, through PyTorch and ONNX Runtime."""
    import dataclasses

    from latency.backends import BACKENDS, parse_device
    from latency.errors import UserError
    from latency.profile import ProfileConfig
    from latency.profile import profile as run_profile
    from latency.space import load_space

    chosen = tuple(dict.fromkeys(backend or BACKENDS))
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown:
        raise UserError(f"unknown backend {', '.join(unknown)}: use {' and/or '.join(BACKENDS)}")
    the_space = load_space(space)
    if batch_size is not None:
        the_space = dataclasses.replace(the_space, batch_size=batch_size)
    config = ProfileConfig(the_space, parse_device(device), chosen, threads, seed=seed,
                           calibration_networks=calibration_networks)
    with Progress(*PROGRESS_COLUMNS, console=err_console, transient=True) as progress:
        table = run_profile(config, out, resume, RichHooks(progress).hooks())
    console.print(f"wrote {out}: {len(table.rows)} entries in "
                  f"{table.meta['profile_wall_s']} s")
    print_summary(table)


def show(path: Annotated[Path, typer.Argument(help="A table written by `hwnas profile`.")],
         entries: Annotated[bool, typer.Option(help="Also list every entry.")] = False) -> None:
    """Summarise a table: where it was measured, per-op latency per backend, and s_dev."""
    from latency.table import read_table

    table = read_table(path)
    print_summary(table)
    if entries:
        print_entries(table)


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
