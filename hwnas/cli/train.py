"""`hwnas train`: options → TrainSource and TrainJob → hwnas.search.retrain.job.train, one line per
epoch, then the accuracy beside the (unchanged) predicted latency."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hwnas.cli.console import console
from hwnas.search.config import Device
from hwnas.search.launch import Launch
from hwnas.search.retrain.recipe import DEFAULT_EPOCHS, Augment, Init, Recipe

if TYPE_CHECKING:
    from hwnas.search.retrain.fit import EpochRow

_R = Recipe()  # the library's defaults: one source for --help and runs
_AUGMENT = Augment(_R.augment)


def train(
    export: Annotated[Path | None, typer.Argument(
        help="A folder `hwnas pick --export` wrote (or give --genotype and --table).",
        show_default=False)] = None,
    genotype: Annotated[Path | None, typer.Option(
        help="Instead of an export: a genotype JSON file ({\"normal\": [...], "
             "\"reduce\": [...]}).")] = None,
    table: Annotated[Path | None, typer.Option(
        help="With --genotype: the latency table giving the space and the latency.")] = None,
    backend: Annotated[str | None, typer.Option(
        help="With --genotype: whose predicted latency to quote (default: the table's "
             "first).")] = None,
    init: Annotated[Init, typer.Option(
        help="scratch: fresh weights; inherited: start from the export's weights.")
    ] = Init.scratch,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = DEFAULT_EPOCHS,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("exports/model"),
    resume: Annotated[bool, typer.Option(
        help="Continue OUT from its last finished epoch.")] = False,
    seed: Annotated[int, typer.Option(help="Initial weights, batch order, augmentation.")] = 0,
    device: Annotated[Device, typer.Option(help="Training device.")] = Device.cpu,
    dataset: Annotated[str | None, typer.Option(
        help="Training data (default: the data set the pick was searched on; with "
             "--genotype: digits).")] = None,
    data_dir: Annotated[Path, typer.Option(
        help="Folder holding fashion-mnist / cifar10.")] = Path("data"),
    download: Annotated[bool, typer.Option(
        help="Download a missing data set (needs internet).")] = False,
    limit_train: Annotated[int | None, typer.Option(
        help="Train on the first N training images only (quick runs).")] = None,
    lr: Annotated[float, typer.Option(help="AdamW peak learning rate.")] = _R.lr,
    batch_size: Annotated[int, typer.Option(
        help="Images per step: the global batch, which torchrun splits evenly across its "
             "ranks.")] = _R.batch_size,
    augment: Annotated[Augment, typer.Option(
        help="auto: random crop and flip for 32×32 colour input, none otherwise.")
    ] = _AUGMENT,
    json_output: Annotated[bool, typer.Option("--json", help="Print record.json's object.")
    ] = False,
) -> None:
    """Train a picked architecture into the model one deploys: model.onnx, model.pt,
    genotype.json, metrics.csv and record.json (validation and test accuracy, provenance,
    the preprocessing the model expects) in --out. Launched by torchrun, it trains on every
    rank (docs/distributed.md)."""
    from hwnas.errors import UserError
    from hwnas.search import distributed
    from hwnas.search.retrain.job import TrainJob
    from hwnas.search.retrain.job import train as run_training
    from hwnas.search.retrain.source import from_export, from_genotype_file

    job = TrainJob(out=out, init=init.value, epochs=epochs, seed=seed, dataset=dataset,
                   data_dir=str(data_dir), download=download, limit_train=limit_train,
                   device=device.value, resume=resume,
                   recipe=Recipe(lr=lr, batch_size=batch_size, augment=augment.value))
    if (export is None) == (genotype is None):
        raise UserError("give exactly one of an export folder (`hwnas train exports/pick`) or "
                        "--genotype FILE --table TABLE")
    if export is not None:
        source = from_export(export)
    elif table is None or genotype is None:  # genotype is set: checked just above
        raise UserError("--genotype needs --table: the latency table of the space it was "
                        "searched in")
    else:
        source = from_genotype_file(genotype, table, backend, dataset or "digits")
    header = (f"train: {source.provenance['source']} ({source.space.name}, "
              f"{job.dataset or source.dataset}), init {job.init}, {job.epochs} epochs, seed "
              f"{job.seed} → {out}")
    writer = Launch.from_environment().is_writer  # under torchrun, rank 0 alone prints
    printer = EpochPrinter(job.epochs, None if json_output or not writer else header)
    result = run_training(source, job, printer.epoch, printer.start)
    distributed.finish()  # under torchrun: every rank is done, leave together
    record = result.record
    if not writer:
        return
    if json_output:
        typer.echo(json.dumps({**record, "files": result.files}))
        return
    console.print(f"validation accuracy {record['val_accuracy']:.4f}, test accuracy "
                  f"{record['test_accuracy']:.4f}; predicted latency "
                  f"{record['predicted_latency_ms']:.3f} ms ({record['backend']}, unchanged: "
                  f"same architecture)")
    for name, path in result.files.items():
        console.print(f"  {name:<10} {path}")


class EpochPrinter:
    """The header once every check has passed, then one line per finished epoch: loss,
    validation accuracy, and the time left at the mean pace of this session's epochs.
    Silent when `header` is None (--json)."""

    def __init__(self, epochs: int, header: str | None) -> None:
        self.epochs, self.header = epochs, header
        self.epoch_s: list[float] = []
        self.last = time.perf_counter()

    def start(self) -> None:
        if self.header is not None:
            console.print(self.header)
        self.last = time.perf_counter()

    def epoch(self, row: EpochRow) -> None:
        now = time.perf_counter()
        self.epoch_s.append(now - self.last)
        self.last = now
        left_s = sum(self.epoch_s) / len(self.epoch_s) * (self.epochs - row.epoch)
        if self.header is not None:
            console.print(f"epoch {row.epoch:>3}/{self.epochs}  loss {row.loss:.3f}  val acc "
                          f"{row.val_acc:.3f}  lr {row.lr:.2e}  [{row.train_s:.1f} s training, "
                          f"about {left_s:.0f} s left]")
