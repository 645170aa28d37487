"""`hwnas profile`: build a latency table for this device."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hwnas.cli.console import console, progress_hooks
from hwnas.cli.table import print_summary

if TYPE_CHECKING:
    from hwnas.arch.space import SearchSpace


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
    bundle: Annotated[Path | None, typer.Option(
        help="Measure nothing here: write a folder that measures the space on another device "
             "with only Python, numpy and onnxruntime (`python DIR/run.py --out "
             "results.json`), for `hwnas table import`.")] = None,
) -> None:
    """Measure every candidate op at every shape of the space, through PyTorch and ONNX Runtime."""
    from hwnas.errors import UserError
    from hwnas.latency.measure.fresh_networks import host_processes

    if bundle is not None:
        if backend or resume:
            raise UserError("--bundle measures onnxruntime on the target and cannot be resumed:"
                            " drop --backend and --resume")
        write_bundle(bundle, _space(space, batch_size, classes), seed, calibration_networks)
        return
    # The whole networks' server starts first, so that its imports (torch, onnxruntime)
    # overlap this process's own instead of following them: about 3 s of a 2-core profile.
    with host_processes() as fresh:
        from hwnas.latency.measure.backends import BACKENDS, parse_device
        from hwnas.latency.measure.profile import ProfileConfig
        from hwnas.latency.measure.profile import profile as run_profile

        chosen = tuple(dict.fromkeys(backend or BACKENDS))
        unknown = [name for name in chosen if name not in BACKENDS]
        if unknown:
            raise UserError(f"unknown backend {', '.join(unknown)}: use "
                            f"{' and/or '.join(BACKENDS)}")
        config = ProfileConfig(_space(space, batch_size, classes), parse_device(device), chosen,
                               threads, seed=seed, calibration_networks=calibration_networks)
        with progress_hooks() as hooks:
            table = run_profile(config, out, resume, hooks, fresh)
    console.print(f"wrote {out}: {len(table.rows)} entries in "
                  f"{table.meta['profile_wall_s']} s")
    print_summary(table)


def _space(name_or_path: str, batch_size: int | None, classes: int | None) -> SearchSpace:
    """The space named, with the batch size and class count the options override."""
    import dataclasses

    from hwnas.arch.space import load_space

    the_space = load_space(name_or_path)
    if batch_size is not None:
        the_space = dataclasses.replace(the_space, batch_size=batch_size)
    if classes is not None:
        the_space = dataclasses.replace(the_space, classes=classes)
    return the_space


def write_bundle(folder: Path, the_space: SearchSpace, seed: int,
                 calibration_networks: int | None) -> None:
    """`profile --bundle`: export the space's models and the runner into `folder`."""
    import time

    from hwnas.latency.targets.bundle import write_bundle as write

    started = time.perf_counter()
    with progress_hooks() as hooks:
        manifest = write(the_space, folder, seed, calibration_networks, hooks=hooks)
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    console.print(f"wrote bundle {folder} ({size_mb:.1f} MB, {len(manifest['entries'])} entries,"
                  f" {len(manifest['networks'])} calibration networks, space "
                  f"{the_space.name}) in {time.perf_counter() - started:.1f} s. On the target: "
                  f"`python {folder}/run.py --out results.json`; then here: `hwnas table "
                  f"import results.json --bundle {folder} --out tables/TARGET.parquet`",
                  highlight=False)
