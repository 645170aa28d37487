"""Training one fixed architecture with the recipe (`fit`, the one training loop of `hwnas
train` and of the pick-vs-random benchmark), resumable from the state it hands out per epoch.

Batch-norm statistics are recomputed on training batches before every evaluation, as
`hwnas.search.family.derive` does for family members, so trained and inherited accuracies are
measured
the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.search import distributed
from hwnas.search.data.dataset import Dataset
from hwnas.search.family.derive import accuracy, recalibrate_batch_norm
from hwnas.search.peak_memory import peak_mb, reset_peak
from hwnas.search.retrain.recipe import Recipe
from hwnas.search.supernet.loop import epoch_generator


@dataclass(frozen=True)
class EpochRow:
    """One row of metrics.csv, and what the progress callback receives."""

    epoch: int  # epochs finished, counting from 1
    loss: float  # mean training loss per step (label-smoothed cross-entropy)
    val_acc: float  # validation accuracy after the epoch
    lr: float  # learning rate of the epoch's last step
    train_s: float  # wall time of the epoch's training steps, in seconds
    # peak memory of the epoch (training and validation), in MiB: process RSS on the CPU, the
    # tensors' on CUDA (`hwnas.search.peak_memory`); NaN in runs from before it was recorded
    peak_memory_mb: float = math.nan


# Called after every finished epoch with its row and the state a resumed run starts from.
OnEpoch = Callable[[EpochRow, dict[str, Any]], None]


def fit(network: nn.Module, data: Dataset, recipe: Recipe, augmentation: str, epochs: int,
        seed: int, resume_from: dict[str, Any] | None = None,
        on_epoch: OnEpoch | None = None) -> list[EpochRow]:
    """Train `network` in place for `epochs` (continuing `resume_from`, a state `on_epoch`
    received); every random draw of an epoch comes from (seed, epoch), so a resumed run
    replays what an uninterrupted one would have drawn. Returns every epoch's row."""
    optimizer = recipe.make_optimizer(network)
    rows: list[EpochRow] = []
    if resume_from is not None:
        network.load_state_dict(resume_from["network"])
        optimizer.load_state_dict(resume_from["optimizer"])
        rows = [EpochRow(**row) for row in resume_from["metrics"]]
    steps_per_epoch = math.ceil(len(data.train) / recipe.batch_size)
    total_steps = steps_per_epoch * epochs
    device = data.train.device
    for epoch in range(len(rows), epochs):
        generator = epoch_generator(seed, epoch, device)
        reset_peak(device)
        network.train()
        started = time.perf_counter()
        losses = []
        lr = recipe.lr
        rank, world = distributed.rank(), distributed.world()
        for index, (images, labels) in enumerate(data.train.batches(recipe.batch_size,
                                                                    generator, rank, world)):
            lr = recipe.lr_at(epoch * steps_per_epoch + index, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = distributed.global_count(index, recipe.batch_size, len(data.train))
            offset = distributed.shard_start(batch, rank, world)
            logits = network(augment(images, augmentation, generator, batch, offset))
            loss = distributed.shard_mean(partial(
                F.cross_entropy, logits, labels, label_smoothing=recipe.label_smoothing), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients([network])
            optimizer.step()
            losses.append(loss.detach())
        distributed.average_buffers(network)
        train_s = time.perf_counter() - started
        mean_loss = float(distributed.sum_across(torch.stack(losses)).mean())
        row = EpochRow(epoch + 1, mean_loss, evaluate(network, data, "val"), lr, train_s,
                       peak_mb(device))
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row, {"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                           "metrics": [asdict(r) for r in rows]})
    return rows


def evaluate(network: nn.Module, data: Dataset, split: str) -> float:
    """Accuracy on `split` ("val" or "test") with batch-norm statistics recomputed first."""
    recalibrate_batch_norm(network, data.train)
    return accuracy(network, getattr(data, split))


def augment(images: torch.Tensor, mode: str, generator: torch.Generator,
            batch: int | None = None, offset: int = 0) -> torch.Tensor:
    """A batch (N, C, H, W) randomly cropped from a zero-padded copy (crop-flip: 4 pixels and
    half the images mirrored; shift: 2 pixels, no mirror), or unchanged for `none`. Under
    torchrun `images` are a shard, starting at `offset`, of a global batch of `batch`: the
    draws are made for the whole batch, as one process makes them, and this shard's used."""
    if mode == "none":
        return images
    pad = 4 if mode == "crop-flip" else 2
    n, _, h, w = images.shape
    batch = batch or n
    padded = F.pad(images, (pad, pad, pad, pad))
    draws = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator,
                          device=generator.device)
    dy, dx = draws[:, offset:offset + n].tolist()
    out = torch.stack([padded[i, :, y:y + h, x:x + w]
                       for i, (y, x) in enumerate(zip(dy, dx, strict=True))]) if n else images
    if mode == "crop-flip":
        flip = torch.rand(batch, generator=generator, device=generator.device) < 0.5
        out = torch.where(flip[offset:offset + n, None, None, None], out.flip(-1), out)
    return out
