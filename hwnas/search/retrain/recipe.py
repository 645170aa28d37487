"""The training recipe of `hwnas train` (and of every architecture the pick-vs-random benchmark
compares): optimiser, learning-rate schedule, label smoothing and augmentation.

The defaults are the measured ones (docs/accuracy.md has the evidence).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hwnas.errors import UserError

if TYPE_CHECKING:  # torch only where a network is trained: `hwnas --help` stays instant
    import torch

    from hwnas.arch.space import SearchSpace

DEFAULT_EPOCHS = 5  # the README's quick run on 2 cores; a real run wants more (docs/accuracy.md)


# The choices of the string settings: the CLI's options take these enums as they are.
class Init(StrEnum):
    """Where the trained network's weights start."""

    scratch = "scratch"  # fresh weights drawn from the seed
    inherited = "inherited"  # the export's supernet weights


class Augment(StrEnum):
    auto = "auto"  # crop-flip for 32×32 colour input, none otherwise
    none = "none"
    crop_flip = "crop-flip"  # 4-pixel random crop and horizontal flip
    shift = "shift"  # 2-pixel random crop, no flip


class Optimizer(StrEnum):
    adamw = "adamw"
    sgd = "sgd"  # momentum 0.9, Nesterov


INITS = tuple(i.value for i in Init)
AUGMENTATIONS = tuple(a.value for a in Augment)
OPTIMIZERS = tuple(o.value for o in Optimizer)


@dataclass(frozen=True)
class Recipe:
    """How a fixed architecture is trained; recorded with every trained model."""

    optimizer: str = "adamw"  # adamw | sgd (momentum 0.9, Nesterov)
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 0.01  # decoupled (AdamW) or L2 (SGD) weight decay
    warmup_fraction: float = 0.1  # share of all steps with a linear warm-up from 0 to `lr`
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    batch_size: int = 64  # images per step
    augment: str = "auto"  # auto: crop-flip for 32×32 colour input, none otherwise

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}: use one of "
                            f"{', '.join(OPTIMIZERS)}")
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation {self.augment!r}: use one of "
                            f"{', '.join(AUGMENTATIONS)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.batch_size < 1:
            raise UserError("the recipe needs lr > 0, weight decay >= 0 and batch size >= 1")
        if not 0.0 <= self.warmup_fraction < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise UserError("the recipe's warm-up fraction and label smoothing lie in [0, 1)")

    def to_dict(self) -> dict[str, object]:
        return {"schedule": "linear warm-up, cosine to 0", **dataclasses.asdict(self)}

    def augmentation(self, space: SearchSpace) -> str:
        """The augmentation actually applied to `space`'s input (`auto` resolved)."""
        if self.augment != "auto":
            return self.augment
        colour_32 = space.input_channels == 3 and space.input_size == 32
        return "crop-flip" if colour_32 else "none"

    def lr_at(self, step: int, total_steps: int) -> float:
        """Linear warm-up over the first `warmup_fraction` of the steps, then cosine to 0."""
        warmup = math.ceil(self.warmup_fraction * total_steps)
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * progress))

    def make_optimizer(self, network: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimizer; batch-norm and bias parameters (1-D) are not decayed."""
        import torch

        groups = [{"params": [p for p in network.parameters() if p.ndim > 1],
                   "weight_decay": self.weight_decay},
                  {"params": [p for p in network.parameters() if p.ndim <= 1],
                   "weight_decay": 0.0}]
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=0.9, nesterov=True)
        return torch.optim.AdamW(groups, lr=self.lr)
