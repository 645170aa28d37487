"""The training recipe of `hwnas train` (and of every architecture the pick-vs-random benchmark
compares): optimiser, learning-rate schedule, label smoothing and augmentation.

The defaults are the measured ones (docs/accuracy.md has the evidence).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from latency.errors import UserError
from latency.space import SearchSpace

AUGMENTATIONS = ("auto", "none", "crop-flip", "shift")


@dataclass(frozen=True)
class Recipe:
    """How a fixed architecture is trained; recorded with every trained model."""

    lr: float = 3e-3  # AdamW peak learning rate
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    warmup_fraction: float = 0.1  # share of all steps with a linear warm-up from 0 to `lr`
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    batch_size: int = 64  # images per step
    augment: str = "auto"  # auto: crop-flip for 32×32 colour input, none otherwise

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation {self.augment!r}: use one of "
                            f"{', '.join(AUGMENTATIONS)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.batch_size < 1:
            raise UserError("the recipe needs lr > 0, weight decay >= 0 and batch size >= 1")
        if not 0.0 <= self.warmup_fraction < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise UserError("the recipe's warm-up fraction and label smoothing lie in [0, 1)")

    def to_dict(self) -> dict[str, object]:
        return {"optimizer": "adamw", "schedule": "linear warm-up, cosine to 0",
                **dataclasses.asdict(self)}

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

    def optimizer(self, network: torch.nn.Module) -> torch.optim.Optimizer:
        """AdamW; batch-norm and bias parameters (1-D) are not decayed."""
        decayed = [p for p in network.parameters() if p.ndim > 1]
        plain = [p for p in network.parameters() if p.ndim <= 1]
        return torch.optim.AdamW([{"params": decayed, "weight_decay": self.weight_decay},
                                  {"params": plain, "weight_decay": 0.0}], lr=self.lr)


def augment(images: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """A batch (N, C, H, W) randomly cropped from a zero-padded copy (crop-flip: 4 pixels and
    half the images mirrored; shift: 2 pixels, no mirror), or unchanged for `none`."""
    if mode == "none":
        return images
    pad = 4 if mode == "crop-flip" else 2
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).tolist()
    out = torch.stack([padded[i, :, y:y + h, x:x + w]
                       for i, (y, x) in enumerate(zip(dy, dx, strict=True))])
    if mode == "crop-flip":
        flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out
