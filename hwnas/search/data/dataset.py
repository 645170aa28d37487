"""Training, validation and test images as tensors shaped for the space's input.

Three splits with fixed roles: train (the supernet and the hypernetwork learn on it),
validation (a share of the training images; `pick` chooses members on it) and test (the data
set's own test split, or for data without one a fixed held-out share that search and pick
never see). The splits depend on `SPLIT_SEED` only, never on a run's seed. Every split is
resized to the space's input size and channel count and normalised with the training split's
per-channel statistics; `Preprocessing` records that recipe so a deployed model can be fed.

The readers of every source (digits, Fashion-MNIST, CIFAR-10, the user's own folders and
.npz files) live in `search/sources.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.search.data.sources import RawData, read_source

SPLIT_SEED = 0  # the splits do not move with the run's seed
TEST_FRACTION = 0.2  # share held out as the test split by data without a test split of its own


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
class Preprocessing:
    """What the model expects, from a raw image array: divide by `scale`, resize to
    `input_size`² (`resize`), average to grey or repeat grey to `channels`, then subtract
    `mean[c]` and divide by `std[c]` per channel; feed NCHW float32."""

    input_size: int
    channels: int
    mean: tuple[float, ...]  # per channel, of the training split after resizing
    std: tuple[float, ...]
    scale: float  # raw pixel values are divided by this first (255 for 8-bit images)
    resize: str = "bilinear"
    layout: str = "NCHW"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class Dataset:
    """The three splits, the class count, and the preprocessing they went through."""

    train: Split  # trains the supernet and the hypernetwork
    val: Split  # chooses members (a share of the training images)
    test: Split  # reported only: nothing is chosen on it
    classes: int
    preprocessing: Preprocessing
    class_names: tuple[str, ...]  # label i is class_names[i]

    def to(self, device: torch.device) -> Dataset:
        return Dataset(self.train.to(device), self.val.to(device), self.test.to(device),
                       self.classes, self.preprocessing, self.class_names)


def load_dataset(name: str, space: SearchSpace, data_dir: str = "data",
                 download: bool = False, val_fraction: float = 0.2,
                 limit_train: int | None = None, hooks: Hooks | None = None) -> Dataset:
    """The data `--dataset name` means (`search/sources.py`) fitted to `space`; every problem
    raises UserError with the fix; `hooks` see a big folder being read."""
    raw = read_source(name, data_dir, download, space.input_size, hooks)
    return split_and_fit(raw, name, space, val_fraction, limit_train)


def split_and_fit(raw: RawData, name: str, space: SearchSpace, val_fraction: float = 0.2,
                  limit_train: int | None = None) -> Dataset:
    """The three fixed splits of `raw`, fitted to `space` and normalised by the training
    split's statistics (`limit_train` shortens the training split only)."""
    classes = len(raw.class_names)
    if space.classes != classes:
        raise UserError(f"space {space.name!r} has {space.classes} classes but data set "
                        f"{name} has {classes}: profile a table for {classes} classes "
                        f"(`hwnas profile --classes {classes}`) and search with it")
    images, labels = raw.train_images, raw.train_labels
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    if raw.test_images is None or raw.test_labels is None:
        n_test = max(1, round(TEST_FRACTION * len(labels)))
        test_index, order = order[:n_test], order[n_test:]
        test_images, test_labels = images[test_index], labels[test_index]
    else:
        test_images, test_labels = raw.test_images, raw.test_labels
    n_val = max(1, round(val_fraction * len(order)))
    if len(order) - n_val < 1:
        raise UserError(f"data set {name} has only {len(labels)} training images, too few for "
                        f"a training, a validation and a test split: add images")
    val_index, train_index = order[:n_val], order[n_val:]
    if limit_train is not None:
        train_index = train_index[:limit_train]
    train = _fit(images[train_index], space)
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3)).clamp_min(1e-6)  # a constant channel stays finite

    def normalised(x: torch.Tensor) -> torch.Tensor:
        return (x - mean[None, :, None, None]) / std[None, :, None, None]

    preprocessing = Preprocessing(space.input_size, space.input_channels,
                                  tuple(mean.tolist()), tuple(std.tolist()), raw.scale)
    return Dataset(Split(normalised(train), labels[train_index]),
                   Split(normalised(_fit(images[val_index], space)), labels[val_index]),
                   Split(normalised(_fit(test_images, space)), test_labels),
                   classes, preprocessing, raw.class_names)


def _fit(images: torch.Tensor, space: SearchSpace) -> torch.Tensor:
    """Resize to the space's input size; average to grey or repeat grey to its channels."""
    if images.shape[-1] != space.input_size or images.shape[-2] != space.input_size:
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
