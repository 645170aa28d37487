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
.npz files) live in `sources.py`. An image folder too large to hold is streamed instead
(`StreamedSplit`; where the switch lies and why: `streaming.py`), with the same three roles,
the same batches and, up to `STATS_SAMPLE` training images, the same statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.search.data import streaming
from hwnas.search.data.sources import (
    FolderListing,
    RawData,
    image_folder,
    list_image_folder,
    read_image_folder,
    read_source,
)
from hwnas.search.data.streaming import FolderImages

SPLIT_SEED = 0  # the splits do not move with the run's seed
TEST_FRACTION = 0.2  # share held out as the test split by data without a test split of its own
STATS_VALUES = 2**22  # float64 values per chunk of the training statistics (32 MB)
# A streamed folder's statistics come from this many training images (the first of the
# training split, whose order is a random permutation fixed by SPLIT_SEED): a pass over all
# of them would cost an epoch's decoding every time the data is loaded (search, pick, train,
# on every rank), while 10⁴ images put the per-channel mean within about std/100 of the
# whole split's (counting each image as one sample), a shift batch-norm absorbs.
# A training split no larger is passed over whole, as in memory: the same figures exactly.
STATS_SAMPLE = 10_000


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
        for shard in _shards(_order(len(self), generator), batch_size, rank, world):
            index = shard.to(self.device)
            yield self.transform(self.stored[index]), self.labels[index]


@dataclass(frozen=True)
class StreamedSplit:
    """A split of an image folder too large to hold (`streaming.py`): its files and labels,
    decoded by DataLoader workers one batch at a time; batches land on `device`."""

    images: FolderImages
    transform: Transform
    device: torch.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> StreamedSplit:
        return StreamedSplit(self.images, self.transform.to(device), device)

    def inputs(self) -> torch.Tensor:
        raise TypeError("a streamed split is too large to make into one tensor: iterate its "
                        "batches()")

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """`Split.batches`: the same order from the same generator, the same shards, the same
        tensors bit for bit. The order is drawn here before any image is read; the workers
        get index lists only."""
        # on the CPU at once: one wait for a CUDA generator's device an epoch, not one a batch
        order = _order(len(self), generator).cpu()
        shards = (shard.tolist() for shard in _shards(order, batch_size, rank, world))
        for stored, labels in self.images.read(shards, self.device):
            yield self.transform(stored), labels


AnySplit = Split | StreamedSplit


def _order(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """An epoch's order: a permutation drawn from `generator` (on its device), or as stored."""
    return (torch.randperm(n, generator=generator, device=generator.device)
            if generator is not None else torch.arange(n))


def _shards(order: torch.Tensor, batch_size: int, rank: int,
            world: int) -> Iterator[torch.Tensor]:
    """Rank `rank`'s shard `tensor_split(world)[rank]` of each global batch of `order`."""
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size].tensor_split(world)[rank]


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

    train: AnySplit  # trains the supernet and the hypernetwork
    val: AnySplit  # chooses members (a share of the training images)
    test: AnySplit  # reported only: nothing is chosen on it
    classes: int
    preprocessing: Preprocessing
    class_names: tuple[str, ...]  # label i is class_names[i]

    def to(self, device: torch.device) -> Dataset:
        return Dataset(self.train.to(device), self.val.to(device), self.test.to(device),
                       self.classes, self.preprocessing, self.class_names)


def load_dataset(name: str, space: SearchSpace, data_dir: str = "data",
                 download: bool = False, val_fraction: float = 0.2,
                 limit_train: int | None = None, hooks: Hooks | None = None) -> Dataset:
    """The data `--dataset name` means (`sources.py`) fitted to `space`; every problem
    raises UserError with the fix; `hooks` see a big folder being read, or told it streams.
    A folder streams when reading it would hold more than `streaming.memory_budget()`."""
    hooks = hooks or Hooks()
    folder = image_folder(name)
    if folder is None:
        raw = read_source(name, data_dir, download, space.input_size, hooks)
    else:
        listing = list_image_folder(folder)
        if streaming.streams(listing, space.input_size):
            return _streamed(listing, name, space, val_fraction, limit_train, hooks)
        raw = read_image_folder(listing, space.input_size, hooks)
    return split_and_fit(raw, name, space, val_fraction, limit_train)


def split_and_fit(raw: RawData, name: str, space: SearchSpace, val_fraction: float = 0.2,
                  limit_train: int | None = None) -> Dataset:
    """The three fixed splits of `raw`, to be fitted to `space` and normalised by the training
    split's statistics (`limit_train` shortens the training split only)."""
    classes = _classes(raw.class_names, name, space)
    images, labels = raw.train_images, raw.train_labels
    own_test = raw.test_images is not None and raw.test_labels is not None
    train_index, val_index, test_index = _roles(len(labels), own_test, val_fraction,
                                                limit_train, name)
    if raw.test_images is not None and raw.test_labels is not None:
        test_images, test_labels = raw.test_images, raw.test_labels
    else:
        test_images, test_labels = images[test_index], labels[test_index]
    _check_channels((images.shape[1], test_images.shape[1]), space)
    train_images = images[train_index]
    step = _statistics_step(space)
    mean, std = _statistics((train_images[start:start + step]
                             for start in range(0, len(train_images), step)), raw.scale, space)
    transform, preprocessing = _fitting(raw.scale, space, mean, std)
    return Dataset(Split(train_images, labels[train_index], transform),
                   Split(images[val_index], labels[val_index], transform),
                   Split(test_images, test_labels, transform),
                   classes, preprocessing, raw.class_names)


def _streamed(listing: FolderListing, name: str, space: SearchSpace, val_fraction: float,
              limit_train: int | None, hooks: Hooks) -> Dataset:
    """`split_and_fit` for a folder that streams: the same roles from the same listing, the
    images stored with the channels the in-memory reader would give them (`folder_channels`),
    the statistics from the first `STATS_SAMPLE` training images."""
    classes = _classes(listing.class_names, name, space)
    channels = streaming.folder_channels(listing.files)
    _check_channels((channels,), space)
    size = space.input_size
    folder = FolderImages(listing.train_files, listing.train_labels, channels, size)
    own_test = listing.test_files is not None and listing.test_labels is not None
    train_index, val_index, test_index = _roles(len(folder), own_test, val_fraction,
                                                limit_train, name)
    if listing.test_files is not None and listing.test_labels is not None:
        test = FolderImages(listing.test_files, listing.test_labels, channels, size)
    else:
        test = folder.subset(test_index)
    train = folder.subset(train_index)
    hooks.warn(f"data set {name}: its {len(listing.files)} images would hold "
               f"{streaming.held_bytes(len(listing.files), size) / 2**30:.2f} GiB, over the "
               f"{streaming.memory_budget() / 2**30:.2f} GiB a process may hold (a share of the "
               f"available memory, divided by the ranks on this node): streaming them from "
               f"disk, one batch at a time")
    sample = min(len(train), STATS_SAMPLE)
    step = _statistics_step(space)
    chunks = [list(range(start, min(start + step, sample))) for start in range(0, sample, step)]
    hooks.start("statistics", len(chunks))

    def read() -> Iterator[torch.Tensor]:
        for images, _ in train.read(chunks, torch.device("cpu")):
            hooks.advance("")
            yield images

    mean, std = _statistics(read(), 255.0, space)
    transform, preprocessing = _fitting(255.0, space, mean, std)
    return Dataset(StreamedSplit(train, transform),
                   StreamedSplit(folder.subset(val_index), transform),
                   StreamedSplit(test, transform), classes, preprocessing, listing.class_names)


def _classes(class_names: tuple[str, ...], name: str, space: SearchSpace) -> int:
    classes = len(class_names)
    if space.classes != classes:
        raise UserError(f"space {space.name!r} has {space.classes} classes but data set "
                        f"{name} has {classes}: profile a table for {classes} classes "
                        f"(`hwnas profile --classes {classes}`) and search with it")
    return classes


def _roles(n: int, own_test: bool, val_fraction: float, limit_train: int | None,
           name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions of the training, validation and test images among the `n` training images,
    from SPLIT_SEED alone; the test positions are empty when the data has a test split of its
    own (`own_test`)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    test_index = order[:0]
    if not own_test:
        n_test = max(1, round(TEST_FRACTION * n))
        test_index, order = order[:n_test], order[n_test:]
    n_val = max(1, round(val_fraction * len(order)))
    if len(order) - n_val < 1:
        raise UserError(f"data set {name} has only {n} training images, too few for "
                        f"a training, a validation and a test split: add images")
    val_index, train_index = order[:n_val], order[n_val:]
    if limit_train is not None:
        train_index = train_index[:limit_train]
    return train_index, val_index, test_index


def _check_channels(stored: Iterable[int], space: SearchSpace) -> None:
    for channels in stored:
        if channels != space.input_channels and 1 not in (channels, space.input_channels):
            raise UserError(f"cannot fit {channels}-channel images to space {space.name!r} "
                            f"with {space.input_channels} input channels: use a 1- or "
                            f"3-channel space")


def _fitting(scale: float, space: SearchSpace, mean: torch.Tensor,
             std: torch.Tensor) -> tuple[Transform, Preprocessing]:
    transform = Transform(scale, space.input_size, space.input_channels, mean, std)
    preprocessing = Preprocessing(space.input_size, space.input_channels,
                                  tuple(mean.tolist()), tuple(std.tolist()), scale)
    return transform, preprocessing


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


def _statistics_step(space: SearchSpace) -> int:
    """Images per chunk of `_statistics`: about STATS_VALUES float64 values once fitted."""
    return max(1, STATS_VALUES // (space.input_channels * space.input_size ** 2))


def _statistics(chunks: Iterable[torch.Tensor], scale: float,
                space: SearchSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (unbiased) of the fitted images, as float32, from chunks of
    `_statistics_step` stored images accumulated in float64 (Chan et al.'s pairwise update),
    so the split is never copied whole to float. The chunks set the order of the sums: the
    same chunks give the same figures to the last bit."""
    size, channels = space.input_size, space.input_channels
    count = 0
    mean = m2 = torch.zeros(channels, dtype=torch.float64)
    for stored in chunks:
        x = _fit(stored, scale, size, channels).double()
        n = x.numel() // channels
        chunk_mean = x.mean(dim=(0, 2, 3))
        chunk_m2 = ((x - chunk_mean[None, :, None, None]) ** 2).sum(dim=(0, 2, 3))
        delta = chunk_mean - mean
        mean = mean + delta * (n / (count + n))
        m2 = m2 + chunk_m2 + delta**2 * (count * n / (count + n))
        count += n
    std = (m2 / (count - 1)).sqrt().float().clamp_min(1e-6)  # a constant channel stays finite
    return mean.float(), std
