"""`hwnas profile`: build a latency table for this device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from hwnas.console import PROGRESS_COLUMNS, RichHooks, console, err_console
from hwnas.table_cmd import print_summary


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
    classes: Annotated[int | None, typer.Option(
        help="Classes of your data set, the head's outputs (default: the space's, 10).",
        min=2)] = None,
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
    if classes is not None:
        the_space = dataclasses.replace(the_space, classes=classes)
    config = ProfileConfig(the_space, parse_device(device), chosen, threads, seed=seed,
                           calibration_networks=calibration_networks)
    with Progress(*PROGRESS_COLUMNS, console=err_console, transient=True) as progress:
        table = run_profile(config, out, resume, RichHooks(progress).hooks())
    console.print(f"wrote {out}: {len(table.rows)} entries in "
                  f"{table.meta['profile_wall_s']} s")
    print_summary(table)


