"""The settings of one search run: a frozen dataclass whose fields say their units.

The defaults are the measured ones (docs/search.md has the evidence); the CLI builds one
of these from its options and hands it to `hwnas.search.supernet.loop.run_search`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from hwnas.errors import UserError

DATASETS = ("digits", "fashion-mnist", "cifar10")  # built in; a folder or .npz path also works
# How search/data.py cuts train / validation / test; bumped when the cut changes, recorded in
# every run and in the family cache, so figures of runs cut another way are never mixed.
SPLITS_VERSION = 2  # 1: train/validation only (before the test split)


# The choices of the string settings: the CLI's options take these enums as they are.
class Backend(StrEnum):
    torch = "torch"
    onnxruntime = "onnxruntime"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class Sampling(StrEnum):
    soft = "soft"
    hard = "hard"


BACKENDS = tuple(b.value for b in Backend)
DEVICES = tuple(d.value for d in Device)
SAMPLINGS = tuple(s.value for s in Sampling)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a search run's result, plus where it is written."""

    table_path: str  # the latency table the cost is built from (recorded resolved)
    # Which of the table's backends prices the operations. ONNX Runtime by default: a pick is
    # exported to ONNX and deployed on it, and eager PyTorch's per-call overhead would put a
    # slow host's whole family above a few-ms budget (docs/pick.md, "Which backend").
    backend: str = "onnxruntime"
    dataset: str = "digits"  # digits (bundled) | fashion-mnist | cifar10 | a folder | a .npz
    data_dir: str = "data"  # folder holding torchvision data sets (not used by digits)
    download: bool = False  # let torchvision download a missing data set
    limit_train: int | None = None  # use only the first N training images (quick runs)
    val_fraction: float = 0.2  # share of the training images held out for validation
    epochs: int = 10
    batch_size: int = 64  # images per step; one penalty vector s is drawn per step
    lr_weights: float = 3e-3  # Adam learning rate of the supernet's operation weights
    lr_hypernet: float = 3e-2  # Adam learning rate of the hypernetwork's reference logits
    kappa: float = 0.5  # κ: weight of the penalty cost against the cross-entropy
    beta: float = 0.05  # β: 0 = the paper's equal cost terms, 1 = terms ∝ the op's latency share
    sigma: float = 0.3  # σ: RBF bandwidth on the simplex (distances there are ≤ √2)
    latency_weight: float = 0.0  # FBNet-style term: weight of log(expected latency in ms)
    temperature_start: float = 1.0  # Gumbel-softmax temperature at the first epoch
    temperature_end: float = 0.2  # ... and at the last; linear in between
    sampling: str = "soft"  # soft: every op mixed, Σ γ_m o_m; hard: one sampled op per edge
    # Train the supernet in the channels-last memory layout: the same maths (float rounding
    # aside), 1.5-2x faster steps on a CPU, where pooling and depthwise convolutions are much
    # faster in it; its picks trained to the same test accuracy as the other layout's within
    # one standard error at 3 budgets x 3 seeds on two settings (docs/search.md), so it is
    # the default. Runs from before it existed trained without it.
    channels_last: bool = True
    seed: int = 0  # decides the initial weights and every per-epoch random stream
    device: str = "cpu"  # cpu | cuda (training device; not part of the result's identity)
    out: str = "runs"  # runs root: the run is written to <out>/<name>/
    name: str = "search"  # run folder name under `out`
    resume: bool = False  # continue the run in <out>/<name>/ from its last checkpoint

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def resolved(self) -> SearchConfig:
        """The same settings with the table, a data set path and the data folder made
        absolute, as a run records them: `pick` and `train` then find them from anywhere."""
        return dataclasses.replace(self, table_path=str(Path(self.table_path).resolve()),
                                   dataset=resolve_dataset(self.dataset),
                                   data_dir=str(Path(self.data_dir).resolve()))

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SearchConfig:
        """A run's recorded settings; fields older runs lack take the value those runs used."""
        values: dict[str, Any] = {**LEGACY_VALUES, **data}  # a recorded SearchConfig.to_dict()
        return cls(**values)


def _check(config: SearchConfig) -> None:
    """One UserError per bad setting, naming the option and what it accepts."""
    choices = {"backend": BACKENDS, "device": DEVICES, "sampling": SAMPLINGS}  # data: sources.py
    for field, allowed in choices.items():
        if getattr(config, field) not in allowed:
            raise UserError(f"unknown {field} {getattr(config, field)!r}: use one of "
                            f"{', '.join(allowed)}")
    for field in ("epochs", "batch_size"):
        if getattr(config, field) < 1:
            raise UserError(f"--{field.replace('_', '-')} must be at least 1, "
                            f"got {getattr(config, field)}")
    if config.limit_train is not None and config.limit_train < 1:
        raise UserError(f"--limit-train must be at least 1, got {config.limit_train}")
    if not 0.0 <= config.beta <= 1.0:
        raise UserError(f"--beta must lie in [0, 1], got {config.beta}")
    if config.sigma <= 0 or config.kappa < 0 or config.latency_weight < 0:
        raise UserError("--sigma must be positive and --kappa, --latency-weight non-negative")
    if not 0.0 < config.val_fraction < 1.0:
        raise UserError(f"the validation fraction must lie in (0, 1), got {config.val_fraction}")


# Fields that may differ between a run and its resumption: where and how it runs, not what.
RESUMABLE_CHANGES = ("device", "resume", "data_dir", "download", "channels_last")

# Fields added after runs were first written, with the value every older run used.
LEGACY_VALUES: dict[str, object] = {"sampling": "soft", "channels_last": False}


def resolve_dataset(dataset: str) -> str:
    """A built-in name as it is; an existing folder or file as an absolute path; anything else
    as typed (reading it says what is wrong)."""
    return dataset if dataset in DATASETS or not Path(dataset).exists() else str(
        Path(dataset).resolve())


def dataset_label(dataset: str) -> str:
    """A short name of `--dataset` for run folders: the built-in name, or the file's or the
    folder's stem."""
    return dataset if dataset in DATASETS else Path(dataset).stem or "data"
