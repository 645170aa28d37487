"""Training, validation and test images, made into the space's input one batch at a time.

Three splits with fixed roles: train (the supernet and the hypernetwork learn on it),
validation (a share of the training images; `pick` chooses members on it) and test (the data
set's own test split, or for data without one a fixed held-out share that search and pick
never see). The splits depend on `SPLIT_SEED` only, never on a run's seed. Every split holds
its images as read (uint8 for 8-bit images: a quarter of float32's memory) and its batches
are divided by the scale, resized to the space's input size and channel count and normalised
with the training split's per-channel statistics (`Transform`), so a float copy exists for
one batch at a time only; `Preprocessing` records that recipe so a deployed model can be fed.

The readers of every source (digits, Fashion-MNIST, CIFAR-10, the user's own folders and
.npz files) live in `search/sources.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.search.data.sources import RawData, read_source

SPLIT_SEED = 0  # the splits do not move with the run's seed
TEST_FRACTION = 0.2  # share held out as the test split by data without a test split of its own
STATS_VALUES = 2**22  # float64 values per chunk of the training statistics (32 MB)


@dataclass(frozen=True)
class Transform:
    """Stored images (N, C, H, W) → the model's float32 input: divide by `scale`, resize to
    `size`² (bilinear), average to grey or repeat grey to `channels`, then normalise."""

    scale: float
    size: int
    channels: int
    mean: torch.Tensor  # (channels,) float32, of the training split after resizing
    std: torch.Tensor

    def __call__(self, stored: torch.Tensor) -> torch.Tensor:
        x = _fit(stored, self.scale, self.size, self.channels)
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]

    def to(self, device: torch.device) -> Transform:
        return replace(self, mean=self.mean.to(device), std=self.std.to(device))


@dataclass(frozen=True)
class Split:
    """Images as stored (N, C, H, W: uint8 for 8-bit data, else float32), labels (N,) long,
    and the transform that makes the model's input of them."""

    stored: torch.Tensor
    labels: torch.Tensor
    transform: Transform

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def to(self, device: torch.device) -> Split:
        return Split(self.stored.to(device), self.labels.to(device), self.transform.to(device))

    def inputs(self) -> torch.Tensor:
        """Every image as the model's input at once (float32, so 4× uint8's memory)."""
        return self.transform(self.stored)

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(model input, labels) per mini-batch, shuffled by `generator` when one is given.
        Process `rank` of `world` gets its shard `tensor_split(world)[rank]` of each global
        batch of `batch_size`, so the ranks together see what one process would; every rank
        yields as many batches (a shard may be empty when the last batch is shorter than
        `world`)."""
        order = (torch.randperm(len(self), generator=generator, device=generator.device)
                 if generator is not None else torch.arange(len(self)))
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size].tensor_split(world)[rank].to(self.device)
            yield self.transform(self.stored[index]), self.labels[index]


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
    """The three fixed splits of `raw`, to be fitted to `space` and normalised by the training
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
    for channels in (images.shape[1], test_images.shape[1]):
        if channels != space.input_channels and 1 not in (channels, space.input_channels):
            raise UserError(f"cannot fit {channels}-channel images to space {space.name!r} "
                            f"with {space.input_channels} input channels: use a 1- or "
                            f"3-channel space")
    train_images = images[train_index]
    mean, std = _statistics(train_images, raw.scale, space)
    transform = Transform(raw.scale, space.input_size, space.input_channels, mean, std)
    preprocessing = Preprocessing(space.input_size, space.input_channels,
                                  tuple(mean.tolist()), tuple(std.tolist()), raw.scale)
    return Dataset(Split(train_images, labels[train_index], transform),
                   Split(images[val_index], labels[val_index], transform),
                   Split(test_images, test_labels, transform),
                   classes, preprocessing, raw.class_names)


def _fit(stored: torch.Tensor, scale: float, size: int, channels: int) -> torch.Tensor:
    """Divide by `scale`, resize to `size`²; average to grey or repeat grey to `channels`."""
    images = stored.float() / scale
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return images.mean(dim=1, keepdim=True)
    return images.repeat(1, channels, 1, 1)


def _statistics(stored: torch.Tensor, scale: float,
                space: SearchSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (unbiased) of the fitted images, as float32, from chunks
    accumulated in float64 (Chan et al.'s pairwise update), so the split is never copied
    whole to float."""
    size, channels = space.input_size, space.input_channels
    step = max(1, STATS_VALUES // (channels * size * size))
    count = 0
    mean = m2 = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(stored), step):
        x = _fit(stored[start:start + step], scale, size, channels).double()
        n = x.numel() // channels
        chunk_mean = x.mean(dim=(0, 2, 3))
        chunk_m2 = ((x - chunk_mean[None, :, None, None]) ** 2).sum(dim=(0, 2, 3))
        delta = chunk_mean - mean
        mean = mean + delta * (n / (count + n))
        m2 = m2 + chunk_m2 + delta**2 * (count * n / (count + n))
        count += n
    std = (m2 / (count - 1)).sqrt().float().clamp_min(1e-6)  # a constant channel stays finite
    return mean.float(), std
