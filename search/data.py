"""Training and validation images as tensors shaped for the space's input.

`digits` ships with scikit-learn (1,797 8×8 images), so the default run needs no download;
Fashion-MNIST and CIFAR-10 load through torchvision from a local folder. Every set is
resized to the space's input size and channel count and normalised with the training
split's statistics; the validation split is a fixed share of the training set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from latency.errors import UserError
from latency.space import SearchSpace

SPLIT_SEED = 0  # the train/validation split does not move with the run's seed
CLASSES = 10  # all three data sets

# What torchvision looks for under --data-dir, for the error message when it is missing.
EXPECTED_FILES = {
    "fashion-mnist": [f"FashionMNIST/raw/{name}" for name in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte")],
    "cifar10": [f"cifar-10-batches-py/{name}" for name in (
        *(f"data_batch_{i}" for i in range(1, 6)), "test_batch")],
}


@dataclass(frozen=True)
class Split:
    """Images (N, C, H, W) float32 and labels (N,) long."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def batches(self, batch_size: int,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
        """Mini-batches, shuffled by `generator` when one is given."""
        order = (torch.randperm(len(self), generator=generator, device=generator.device)
                 if generator is not None else torch.arange(len(self)))
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size].to(self.labels.device)
            yield self.images[index], self.labels[index]


@dataclass(frozen=True)
class Dataset:
    train: Split
    val: Split


def load_dataset(name: str, space: SearchSpace, data_dir: str = "data",
                 download: bool = False, val_fraction: float = 0.2,
                 limit_train: int | None = None) -> Dataset:
    """The named data set fitted to `space`; every problem raises UserError with the fix."""
    if space.classes != CLASSES:
        raise UserError(f"space {space.name!r} has {space.classes} classes but the data sets "
                        f"have {CLASSES}: profile a space with classes = {CLASSES}")
    if name == "digits":
        images, labels = _digits()
    elif name in EXPECTED_FILES:
        images, labels = _torchvision(name, Path(data_dir), download)
    else:
        raise UserError(f"unknown data set {name!r}: use digits, fashion-mnist or cifar10")
    images = _fit(images, space)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = max(1, round(val_fraction * len(labels)))
    val_index, train_index = order[:n_val], order[n_val:]
    if limit_train is not None:
        train_index = train_index[:limit_train]
    mean, std = images[train_index].mean(), images[train_index].std()
    images = (images - mean) / std
    return Dataset(Split(images[train_index], labels[train_index]),
                   Split(images[val_index], labels[val_index]))


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(bunch.target, dtype=torch.long)


def _torchvision(name: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision import datasets

    kind = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
    try:
        data = kind(str(root), train=True, download=download)
    except RuntimeError:
        expected = ", ".join(str(root / path) for path in EXPECTED_FILES[name])
        raise UserError(f"{name} not found: expected {expected}; pass --download on a machine "
                        f"online, or copy the files there and set --data-dir") from None
    images = torch.as_tensor(data.data).float() / 255.0
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(data.targets, dtype=torch.long)


def _fit(images: torch.Tensor, space: SearchSpace) -> torch.Tensor:
    """Resize to the space's input size; average to grey or repeat grey to its channels."""
    if images.shape[-1] != space.input_size:
        images = F.interpolate(images, size=(space.input_size, space.input_size),
                               mode="bilinear", align_corners=False)
    channels = images.shape[1]
    if channels == space.input_channels:
        return images
    if space.input_channels == 1:
        return images.mean(dim=1, keepdim=True)
    if channels == 1:
        return images.repeat(1, space.input_channels, 1, 1)
    raise UserError(f"cannot fit {channels}-channel images to space {space.name!r} with "
                    f"{space.input_channels} input channels: use a 1- or 3-channel space")
