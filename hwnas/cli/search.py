"""`hwnas search`: options → SearchConfig → hwnas.search.supernet.loop.run_search, with rich
progress."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.console import console, progress_hooks
from hwnas.search.config import Backend, Device, Sampling, SearchConfig, dataset_label
from hwnas.search.launch import Launch

_D = SearchConfig(table_path="")  # the library's defaults: one source for --help and runs
_BACKEND, _DEVICE = Backend(_D.backend), Device(_D.device)
_SAMPLING = Sampling(_D.sampling)
_DATA_DIR, _OUT = Path(_D.data_dir), Path(_D.out)


def search(
    table: Annotated[Path, typer.Option(help="Latency table from `hwnas profile`.")],
    dataset: Annotated[str, typer.Option(
        help="digits (ships with scikit-learn), fashion-mnist, cifar10, a folder of class "
             "folders (DIR/train/<class>/..., optional DIR/test/<class>/...) or a .npz file "
             "(x_train, y_train, optional x_test, y_test).")] = _D.dataset,
    data_dir: Annotated[Path, typer.Option(
        help="Folder holding fashion-mnist / cifar10.")] = _DATA_DIR,
    download: Annotated[bool, typer.Option(
        help="Download a missing data set (needs internet).")] = _D.download,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = _D.epochs,
    batch_size: Annotated[int, typer.Option(
        help="Images per step: the global batch, which torchrun splits evenly across its "
             "ranks, so a run on N ranks matches a one-process run.")] = _D.batch_size,
    kappa: Annotated[float, typer.Option(help="κ: weight of the penalty cost.")] = _D.kappa,
    beta: Annotated[float, typer.Option(
        help="β in [0, 1]: 0 = the paper's cost, 1 = terms weighted by latency share.")
    ] = _D.beta,
    sigma: Annotated[float, typer.Option(
        help="σ: RBF bandwidth of the hypernetwork on the simplex.")] = _D.sigma,
    latency_weight: Annotated[float, typer.Option(
        help="Weight of an FBNet-style log(expected latency ms) term.")] = _D.latency_weight,
    backend: Annotated[Backend, typer.Option(
        help="Which of the table's backends prices the operations.")] = _BACKEND,
    sampling: Annotated[Sampling, typer.Option(
        help="soft: every op on every edge, mixed; hard: one sampled op per edge "
             "(straight-through Gumbel, faster steps).")] = _SAMPLING,
    channels_last: Annotated[bool, typer.Option(
        help="Train in the channels-last memory layout: the same maths, 1.5-2x faster steps "
             "on a CPU (pooling and depthwise convolutions); measured on CPUs only, so on a "
             "GPU compare with --no-channels-last.")] = _D.channels_last,
    device: Annotated[Device, typer.Option(help="Training device.")] = _DEVICE,
    seed: Annotated[int, typer.Option(help="Random seed.")] = _D.seed,
    limit_train: Annotated[int | None, typer.Option(
        help="Train on the first N training images only (quick runs).")] = _D.limit_train,
    out: Annotated[Path, typer.Option(help="Runs root; the run goes to OUT/NAME.")] = _OUT,
    name: Annotated[str | None, typer.Option(
        help="Run name (default: <table stem>-<dataset>-seed<seed>).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue OUT/NAME from its last finished epoch.")] = False,
) -> None:
    """Train the supernet and the hypernetwork over penalty vectors, in one run (on several
    processes or GPUs when launched by torchrun: docs/distributed.md)."""
    from rich.table import Table

    from hwnas.latency.model.table import read_table
    from hwnas.search import distributed
    from hwnas.search.supernet.loop import EpochMetrics, run_search

    config = SearchConfig(
        table_path=str(table), backend=backend.value, dataset=dataset,
        data_dir=str(data_dir), download=download, limit_train=limit_train, epochs=epochs,
        batch_size=batch_size, kappa=kappa, beta=beta, sigma=sigma,
        latency_weight=latency_weight, sampling=sampling.value, channels_last=channels_last,
        seed=seed, device=device.value, out=str(out),
        name=name or f"{table.stem}-{dataset_label(dataset)}-seed{seed}", resume=resume)
    lut = read_table(table)
    writer = Launch.from_environment().is_writer  # under torchrun, rank 0 alone prints
    if writer:
        console.print(f"search: space {lut.space.name}, table {table} ({lut.device}, "
                      f"{config.backend}), {config.dataset}, {config.sampling} sampling"
                      f"{', channels-last' if config.channels_last else ''}, "
                      f"{config.epochs} epochs → "
                      f"{Path(config.out) / config.name}")

    def show(m: EpochMetrics) -> None:
        console.print(f"epoch {m.epoch:>3}/{config.epochs}  loss {m.loss:.3f}  val acc "
                      f"{m.val_acc_uniform:.3f} (uniform s) {m.val_acc_dev:.3f} (s_dev)  "
                      f"t {m.temperature:.2f}  latency at s_dev {m.expected_ms_dev:.3f} ms  "
                      f"[{m.train_s:.1f} s]")

    with progress_hooks() if writer else nullcontext(None) as hooks:  # Ctrl-C: cli/errors.py
        result = run_search(config, lut, progress=show, hooks=hooks)
    distributed.finish()  # under torchrun: every rank is done, leave together
    if not writer:
        return
    last = result.metrics[-1]
    summary = Table(title=f"run {result.run_dir}")
    for column in ("epochs", "val acc (uniform s)", "val acc (s_dev)", "arch(s_dev) ms"):
        summary.add_column(column, justify="right")
    summary.add_row(str(last.epoch), f"{last.val_acc_uniform:.3f}", f"{last.val_acc_dev:.3f}",
                    f"{last.arch_ms_dev:.3f}")
    console.print(summary)

