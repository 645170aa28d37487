"""Image folders too large to hold: where the switch from reading into memory to streaming
lies, and the worker processes that decode a streamed folder one batch at a time.

The switch. Listing a folder opens no image, and after resizing every image is uint8
C×S×S (S: the space's input size), so the listing tells what reading it would hold:
N × 3 × S² bytes (C = 3: the listing cannot tell grey files from colour ones without opening
them, and a large folder is usually colour). The folder is read into memory when that fits
the budget, `MEMORY_SHARE` of the memory the machine has available now, divided by the
ranks torchrun starts on this node (each holds its own copy); otherwise it streams.
Only folders stream: a .npz is one array numpy reads whole, and the torchvision sets are
CIFAR- and MNIST-sized.

Streaming. The main process draws an epoch's order and cuts each rank's shards of it, as an
in-memory split does (`dataset.Split.batches`); DataLoader workers receive those index lists
one at a time and only decode: they hold no order, so an epoch's batches follow from the
seed and the epoch alone and a resumed run reads what an uninterrupted one would have.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from hwnas.errors import UserError
from hwnas.search.data.sources import FolderListing, image_channels, read_image, to_channels
from hwnas.search.launch import Launch

# A quarter of the available memory: reading a folder peaks at about twice what it then holds
# (the decoded images and their stacked tensor, then the whole set and its cut splits), so
# the peak stays within half, and the other half is left to training (activations, the
# float batches, the optimiser) and to the rest of the machine.
MEMORY_SHARE = 0.25
NODE_BUDGET: int | None = None  # bytes for this node's ranks together; None: measured
MEMINFO = Path("/proc/meminfo")
MAX_WORKERS = 4  # decoding processes per rank at most (`worker_count`)
WORKERS: int | None = None  # None: chosen from the cores (`worker_count`)


def memory_budget() -> int:
    """Bytes of images one rank may hold in memory."""
    node = NODE_BUDGET if NODE_BUDGET is not None else int(MEMORY_SHARE * available_memory())
    return node // Launch.from_environment().local_world


def available_memory() -> int:
    """Memory the machine can give without swapping: MemAvailable on Linux; elsewhere half the
    physical memory (a guess: no portable call says what is free), or 4 GiB if even that is
    unknown."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return 4 * 2**30


def held_bytes(images: int, size: int) -> int:
    """What `images` read into memory would hold at most: uint8, three channels, size²."""
    return images * 3 * size * size


def streams(listing: FolderListing, size: int) -> bool:
    return held_bytes(len(listing.files), size) > memory_budget()


def worker_count(device: torch.device) -> int:
    """Decoding processes for a rank training on `device`: its share of the cores that the
    training leaves free, up to MAX_WORKERS; 0 decodes in the rank's own process.

    On CUDA the rank's process needs one core to drive the GPU. On the CPU the training step
    already runs on `torch.get_num_threads()` cores (all of them unless told otherwise), and
    workers beside it oversubscribe them: the step's threads wait for each other at every
    parallel region, so one whose core a worker holds stalls the rest (a tiny search's epoch
    took 20–130 s instead of 3 s with two workers on a busy 2-core VM). So a CPU run decodes
    in workers only on cores its threads leave free (torchrun with several ranks sets
    OMP_NUM_THREADS=1 for each unless it is set; setting it lowers the threads by hand)."""
    if WORKERS is not None:
        return WORKERS
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_rank = (cores or 1) // Launch.from_environment().local_world
    busy = 1 if device.type == "cuda" else torch.get_num_threads()
    return max(0, min(MAX_WORKERS, per_rank - busy))


def folder_channels(paths: Iterable[Path]) -> int:
    """The channels the in-memory reader would store the folder with: 3 if any image is
    colour, else 1. Headers only, and it stops at the first colour image, so a colour folder
    costs one file; only an all-grey folder is opened whole (about 20 µs a file)."""
    return 3 if any(image_channels(path) == 3 for path in paths) else 1


class FolderImages(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor] | UserError]):
    """Some of a folder's files and labels, decoded in DataLoader workers by index lists:
    `self[index]` is those images as stored (uint8 N×C×size×size, as the in-memory reader
    holds them) and their labels. Paths are one numpy array of bytes rather than a list of
    Path objects: workers touching Python objects' reference counts would copy the pages
    that hold them, a list of 10⁵ paths into every worker."""

    def __init__(self, paths: list[Path] | np.ndarray, labels: torch.Tensor, channels: int,
                 size: int) -> None:
        self.paths = (paths if isinstance(paths, np.ndarray)
                      else np.array([os.fsencode(path) for path in paths]))
        self.labels = labels
        self.channels = channels
        self.size = size

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> FolderImages:
        """The images at `index`, in that order."""
        return FolderImages(self.paths[index.numpy()], self.labels[index], self.channels,
                            self.size)

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, torch.Tensor] | UserError:
        """A bad file comes back as its UserError, raised by `read` in the main process: a
        worker's exception would reach it wrapped in the worker's traceback."""
        try:
            images = [to_channels(read_image(Path(os.fsdecode(self.paths[i])), self.size)[None],
                                  self.channels) for i in index]
        except UserError as error:
            return error
        empty = torch.empty(0, self.channels, self.size, self.size, dtype=torch.uint8)
        return torch.cat(images) if images else empty, self.labels[index]

    def read(self, index_lists: Iterable[list[int]],
             device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(stored images, labels) of each index list in turn, on `device`; the lists are
        iterated here, in the calling process, and each is decoded by a worker."""
        loader = DataLoader(self, batch_size=None, sampler=index_lists,
                            num_workers=worker_count(device),
                            pin_memory=device.type == "cuda")
        for item in loader:
            if isinstance(item, UserError):
                raise item
            stored, labels = item
            yield stored.to(device, non_blocking=True), labels.to(device, non_blocking=True)
