"""`hwnas train`'s work: train a source architecture with the recipe into an output folder,
checkpointing every epoch, then write the deployable model and its record.

The folder holds, while training, `checkpoint.pt` and `metrics.csv` (written by
`hwnas.search.run_files`, as a search run's are: atomically after every finished epoch, so
Ctrl-C keeps the last one and `--resume` continues it), and at the end `model.onnx`,
`model.pt`, `genotype.json` (search/family/export.py) and `record.json` (`RECORD_FILE`; its
fields are described in docs/accuracy.md).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hwnas.arch.network import Network, discrete_network
from hwnas.errors import UserError
from hwnas.latency.runner.files import atomic_write
from hwnas.search import distributed, run_files
from hwnas.search.config import DATASETS, resolve_dataset
from hwnas.search.data.dataset import load_dataset
from hwnas.search.family.export import export
from hwnas.search.retrain.fit import EpochRow, evaluate, fit
from hwnas.search.retrain.recipe import DEFAULT_EPOCHS, INITS, Recipe
from hwnas.search.retrain.source import TrainSource

CHECKPOINT_FILE, METRICS_FILE = run_files.CHECKPOINT_FILE, run_files.METRICS_FILE
RECORD_FILE = "record.json"


@dataclass(frozen=True)
class TrainJob:
    """How to train a source; the fields that decide the result are checked on --resume."""

    out: Path  # output folder
    init: str = "scratch"  # scratch: fresh weights from `seed` | inherited: the export's
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0  # initial weights (scratch), batch order and augmentation
    dataset: str | None = None  # default: the data set the source was searched on
    data_dir: str = "data"  # folder holding torchvision data sets
    download: bool = False
    limit_train: int | None = None  # train on the first N training images only (quick runs)
    device: str = "cpu"  # not part of the result's identity
    resume: bool = False
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {self.epochs}")
        if self.init not in INITS:
            raise UserError(f"unknown --init {self.init!r}: use scratch or inherited")
        if self.limit_train is not None and self.limit_train < 1:
            raise UserError(f"--limit-train must be at least 1, got {self.limit_train}")


@dataclass(frozen=True)
class TrainResult:
    record: dict[str, object]  # what record.json holds
    metrics: list[EpochRow]
    files: dict[str, str]  # name -> path of every file written


def train(source: TrainSource, job: TrainJob,
          progress: Callable[[EpochRow], None] | None = None,
          started: Callable[[], None] | None = None) -> TrainResult:
    """Train (or resume) `source` as `job` says; every check comes before anything is written
    and before `started` is called. Under torchrun every rank trains its shard of each batch
    (`hwnas.search.distributed`) and rank 0 alone writes and calls `progress`."""
    if job.init == "inherited" and source.weights is None:
        raise UserError(f"--init inherited: {source.provenance['source']} has no weights "
                        f"(model.pt): use --init scratch, or export the pick again with "
                        f"`hwnas pick --export`")
    device = distributed.start(job.device, job.recipe.batch_size)
    dataset = resolve_dataset(job.dataset) if job.dataset else _searched_dataset(source)
    data = load_dataset(dataset, source.space, str(Path(job.data_dir).resolve()), job.download,
                        limit_train=job.limit_train).to(device)
    identity = _identity(source, job, dataset)
    resume_from = _resume_state(job, identity)
    network = _network(source, job).to(device)
    writer = distributed.is_writer()
    if writer:
        job.out.mkdir(parents=True, exist_ok=True)
    if started is not None and writer:
        started()
    augmentation = job.recipe.augmentation(source.space)

    def save(row: EpochRow, state: dict[str, Any]) -> None:
        if not writer:
            return
        run_files.save_epoch(job.out, {"identity": identity, "state": state,
                                       "world": distributed.world()}, state["metrics"])
        if progress is not None:
            progress(row)

    metrics = fit(network, data, job.recipe, augmentation, job.epochs, job.seed,
                  resume_from, save)
    record = {"val_accuracy": evaluate(network, data, "val"),
              "test_accuracy": evaluate(network, data, "test"),
              "predicted_latency_ms": source.predicted_latency_ms, "backend": source.backend,
              "train_s_per_epoch": statistics.median(row.train_s for row in metrics),
              "preprocessing": data.preprocessing.to_dict(), **identity,
              "source": source.provenance}
    network = network.cpu()
    provenance = {**{k: v for k, v in source.provenance.items() if k != "source"},
                  "space": source.space.to_dict(), "dataset": dataset,
                  "preprocessing": record["preprocessing"],
                  "trained": {k: record[k] for k in ("init", "epochs", "seed", "recipe",
                                                     "val_accuracy", "test_accuracy")}}
    if not writer:
        return TrainResult(record, metrics, {})
    files = export(network, source.space, provenance, job.out)
    text = json.dumps(record, indent=2)
    atomic_write(job.out / RECORD_FILE, lambda tmp: Path(tmp).write_text(text))
    files.update(record=str(job.out / RECORD_FILE), metrics=str(job.out / METRICS_FILE))
    return TrainResult(record, metrics, files)


def _searched_dataset(source: TrainSource) -> str:
    """The data set the source was searched on, refused with the fix when it has moved."""
    dataset = source.dataset
    if dataset not in DATASETS and not Path(dataset).exists():
        raise UserError(f"the data set {dataset} that {source.provenance['source']} was "
                        f"searched on is not there any more: put it back, or pass --dataset "
                        f"with its new place")
    return dataset


def _identity(source: TrainSource, job: TrainJob, dataset: str) -> dict[str, object]:
    """Everything that decides the trained weights: a resumed run must match it."""
    return {"genotype": json.loads(source.genotype.to_json()), "dataset": dataset,
            "limit_train": job.limit_train,
            "init": job.init, "epochs": job.epochs, "seed": job.seed,
            "recipe": {**job.recipe.to_dict(),
                       "augmentation": job.recipe.augmentation(source.space)}}


def _resume_state(job: TrainJob, identity: dict[str, object]) -> dict[str, Any] | None:
    """The state to resume from (None for a fresh start), after checking the folder."""
    if not job.resume:
        run_files.check_fresh(job.out, "--out")
        return None
    run_files.check_resumable(job.out / CHECKPOINT_FILE, "--out")
    stored = run_files.load_weights(job.out / CHECKPOINT_FILE)
    run_files.check_same_settings(str(job.out), stored["identity"], identity, "--out")
    distributed.check_same_world(str(job.out), stored.get("world", 1))
    state: dict[str, Any] = stored["state"]
    return state


def _network(source: TrainSource, job: TrainJob) -> Network:
    """The source's architecture, with fresh weights drawn from the seed or the export's."""
    torch.manual_seed(job.seed)
    network = discrete_network(source.space, source.genotype)
    if job.init == "inherited":
        assert source.weights is not None
        network.load_state_dict(run_files.load_weights(source.weights)["state_dict"])
    return network
