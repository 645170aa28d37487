"""Readers of every data source `--dataset` accepts, each returning `RawData`.

Built in: `digits` (bundled with scikit-learn), `fashion-mnist` and `cifar10` (torchvision,
from `--data-dir`). The user's own: a folder in torchvision's ImageFolder layout
(`DIR/train/<class>/<images>`, optionally `DIR/test/<class>/<images>`; a folder of class
folders without `train/` is the training set) or a `.npz` file (`x_train`, `y_train`,
optionally `x_test`, `y_test`). Every problem with the data raises UserError naming it and
the fix; `dataset.py` splits and fits what these return. A folder is listed first
(`list_image_folder`), so that one too large to hold can be streamed (`streaming.py`) by the
very `read_image` that reads one into memory; a .npz (one array, which numpy reads whole)
and the torchvision sets (MNIST- and CIFAR-sized) are always read whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.search.config import DATASETS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff",
                  ".webp")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PIL modes read as one channel
T = TypeVar("T")

# What torchvision looks for under --data-dir, for the error message when it is missing.
EXPECTED_FILES = {
    "fashion-mnist": [f"FashionMNIST/raw/{name}" for name in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte")],
    "cifar10": [f"cifar-10-batches-py/{name}" for name in (
        *(f"data_batch_{i}" for i in range(1, 6)), "test_batch")],
}


@dataclass(frozen=True)
class RawData:
    """A data set as read: images (N, C, H, W) as stored, not yet divided by `scale`: uint8
    for 8-bit images (a quarter of float32's memory; `dataset.py` makes floats one batch at a
    time), float32 for a .npz of other values."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor | None  # None: the data set has no test split of its own
    test_labels: torch.Tensor | None
    scale: float  # what raw pixel values are divided by (255 for 8-bit images)
    class_names: tuple[str, ...]  # label i is class_names[i]


def read_source(name: str, data_dir: str, download: bool, input_size: int,
                hooks: Hooks | None = None) -> RawData:
    """The data `--dataset name` means. `input_size` lets a folder of images of any size be
    resized as it is read, so a big folder never sits in memory at full resolution."""
    if name == "digits":
        return _digits()
    if name in DATASETS:
        return _torchvision(name, Path(data_dir), download)
    path = Path(name)
    if path.suffix == ".npz" and path.is_file():
        return read_npz(path)
    folder = image_folder(name)
    if folder is not None:
        return read_image_folder(list_image_folder(folder), input_size, hooks or Hooks())
    if path.is_absolute() or path.suffix == ".npz":  # a path, as runs record one
        raise UserError(f"data set {name} not found (no such folder or file): check the path, "
                        f"or restore it there (a search run reads the data set its config.json "
                        f"records: write its new place as \"dataset\" there)")
    raise UserError(f"unknown data set {name!r}: use digits, fashion-mnist, cifar10, a folder "
                    f"of class folders (DIR/train/<class>/...) or a .npz file")


def _digits() -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.uint8).unsqueeze(1)  # integers 0..16
    return RawData(images, torch.tensor(bunch.target, dtype=torch.long), None, None, 16.0,
                   tuple(str(n) for n in bunch.target_names))


def _torchvision(name: str, root: Path, download: bool) -> RawData:
    from torchvision import datasets

    kind = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
    try:
        train = kind(str(root), train=True, download=download)
        test = kind(str(root), train=False, download=download)
    except RuntimeError:
        expected = ", ".join(str(root / path) for path in EXPECTED_FILES[name])
        raise UserError(f"{name} not found: expected {expected}; pass --download on a machine "
                        f"online, or copy the files there and set --data-dir") from None
    return RawData(_nchw(np.asarray(train.data), "images"),
                   torch.as_tensor(train.targets, dtype=torch.long),
                   _nchw(np.asarray(test.data), "images"),
                   torch.as_tensor(test.targets, dtype=torch.long), 255.0,
                   tuple(train.classes))


# --- .npz -----------------------------------------------------------------------------------

def read_npz(path: Path) -> RawData:
    """`x_train`, `y_train` and optionally `x_test`, `y_test`: integer (0..255; uint8 is kept
    as it is) or float (used as they are) images, N×H×W, N×H×W×C or N×C×H×W; labels 0..N−1."""
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as a .npz file ({exc}): write it with "
                        f"numpy.savez(path, x_train=..., y_train=...)") from None
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise UserError(f"{path} has no {key} (it has {', '.join(arrays) or 'nothing'}): "
                            f"save the training images as x_train and labels as y_train")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise UserError(f"{path} has only one of x_test and y_test: save both or neither")
    split_names = ["train", *(["test"] if "x_test" in arrays else [])]
    for split in split_names:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise UserError(f"{path}: x_{split} has {len(x)} images but y_{split} has {len(y)} "
                            f"labels: give one label per image")
    scales = {255.0 if np.issubdtype(arrays[f"x_{s}"].dtype, np.integer) else 1.0
              for s in split_names}
    if len(scales) > 1:
        raise UserError(f"{path}: x_train and x_test have different kinds of values (integers "
                        f"and floats): store both as uint8 or both as float")
    train_labels = _labels(arrays["y_train"], f"{path}: y_train")
    classes = int(train_labels.max()) + 1
    missing = sorted(set(range(classes)) - set(train_labels.tolist()))
    if missing or int(train_labels.min()) < 0:
        raise UserError(f"{path}: y_train must hold the labels 0..N−1, each at least once "
                        f"(found {_span(train_labels)}, missing {_listed(missing)}): "
                        f"renumber the classes 0..N−1")
    test_images = test_labels = None
    if "x_test" in arrays:
        test_labels = _labels(arrays["y_test"], f"{path}: y_test")
        unknown = sorted(set(test_labels.tolist()) - set(range(classes)))
        if unknown:
            raise UserError(f"{path}: y_test has class {_listed(unknown)}, which y_train "
                            f"(classes 0..{classes - 1}) lacks: drop those test images or add "
                            f"training images of that class")
        test_images = _nchw(arrays["x_test"], f"{path}: x_test")
    scale = scales.pop()
    return RawData(_nchw(arrays["x_train"], f"{path}: x_train"), train_labels, test_images,
                   test_labels, scale, tuple(str(n) for n in range(classes)))


def _nchw(x: np.ndarray, what: str) -> torch.Tensor:
    """N×H×W, N×H×W×C or N×C×H×W (C = 1 or 3) → N×C×H×W, uint8 kept, anything else float32
    (values unchanged: the scale is divided out per batch)."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise UserError(f"{what} has shape {x.shape}: expected N×H×W, N×H×W×C or N×C×H×W "
                        f"with C = 1 or 3 channels")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise UserError(f"{what} holds {x.dtype} values: store images as uint8 or float")
    if x.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(x))
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
        images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    bad = int((~torch.isfinite(images)).flatten(1).any(dim=1).sum())
    if bad:  # one NaN turns every loss, and so every weight, into NaN
        raise UserError(f"{what} has {bad} image(s) with NaN or infinite pixel values (or "
                        f"values too large for float32): replace or drop those images")
    return images


def _labels(y: np.ndarray, what: str) -> torch.Tensor:
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer)
                           or (np.issubdtype(y.dtype, np.floating)
                               and np.array_equal(y, np.round(y)))):
        raise UserError(f"{what} must be one integer label per image (got {y.dtype} of shape "
                        f"{y.shape}): store the class numbers 0..N−1")
    return torch.as_tensor(y.astype(np.int64))


def _span(labels: torch.Tensor) -> str:
    return f"{int(labels.min())}..{int(labels.max())}"


def _listed(values: list[int]) -> str:
    return ", ".join(str(v) for v in values[:5]) + (" …" if len(values) > 5 else "")


# --- image folders --------------------------------------------------------------------------

@dataclass(frozen=True)
class FolderListing:
    """An image folder's files and labels, listed without opening an image: what decides
    whether it is read into memory or streamed (`hwnas.search.data.streaming`)."""

    train_files: list[Path]  # class by class (sorted), each class's files sorted
    train_labels: torch.Tensor
    test_files: list[Path] | None  # None: the folder has no test/ split
    test_labels: torch.Tensor | None
    class_names: tuple[str, ...]  # label i is class_names[i]

    @property
    def files(self) -> list[Path]:
        return self.train_files + (self.test_files or [])


def image_folder(name: str) -> Path | None:
    """The folder `--dataset name` names, or None when it names a built-in set or a file."""
    path = Path(name)
    return path if name not in DATASETS and path.is_dir() else None


def list_image_folder(root: Path) -> FolderListing:
    """ImageFolder layout; class names (sorted folder names) come from the training split and
    the test split's folders must be among them."""
    train_dir = root / "train" if (root / "train").is_dir() else root
    train_files = _class_files(train_dir, root)
    test_files = _class_files(root / "test", root) if (root / "test").is_dir() else None
    class_names = tuple(sorted(train_files))
    if test_files is not None:
        unknown = sorted(set(test_files) - set(class_names))
        if unknown:
            raise UserError(f"{root / 'test' / unknown[0]}: the test split has class "
                            f"{unknown[0]!r}, which the training split ({train_dir}) lacks: "
                            f"add training images of that class or remove the folder")
    train, train_labels = _flat(train_files, class_names)
    if test_files is None:
        return FolderListing(train, train_labels, None, None, class_names)
    return FolderListing(train, train_labels, *_flat(test_files, class_names), class_names)


def read_image_folder(listing: FolderListing, input_size: int, hooks: Hooks) -> RawData:
    """Every image of `listing`, resized to `input_size` as it is read."""
    hooks.start("reading", len(listing.files))
    names = listing.class_names
    train_images = _read_split(listing.train_files, listing.train_labels, names, input_size,
                               hooks)
    test_images = None
    if listing.test_files is not None and listing.test_labels is not None:
        test_images = _read_split(listing.test_files, listing.test_labels, names, input_size,
                                  hooks)
    channels = max(train_images.shape[1], 0 if test_images is None else test_images.shape[1])
    return RawData(to_channels(train_images, channels), listing.train_labels,
                   None if test_images is None else to_channels(test_images, channels),
                   listing.test_labels, 255.0, names)


def _class_files(split_dir: Path, root: Path) -> dict[str, list[Path]]:
    """{class name: image files} of one split folder; empty folders are refused."""
    classes = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{split_dir} has no class folders: put the images in "
                        f"{root}/train/<class>/ (or {root}/<class>/), one folder per class")
    files = {}
    for folder in classes:
        images = sorted(p for p in folder.rglob("*") if p.is_file()
                        and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not images:
            raise UserError(f"class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}):"
                            f" add images or remove the folder")
        files[folder.name] = images
    return files


def _flat(files: dict[str, list[Path]],
          class_names: tuple[str, ...]) -> tuple[list[Path], torch.Tensor]:
    """(every file, its label), class by class."""
    paths = [path for name in files for path in files[name]]
    counts = [len(files[name]) for name in files]
    labels = torch.tensor([class_names.index(name) for name in files], dtype=torch.long)
    return paths, labels.repeat_interleave(torch.tensor(counts))


def _read_split(paths: list[Path], labels: torch.Tensor, class_names: tuple[str, ...],
                input_size: int, hooks: Hooks) -> torch.Tensor:
    images = []
    for path, label in zip(paths, labels.tolist(), strict=True):
        images.append(read_image(path, input_size))
        hooks.advance(class_names[label])
    channels = max(image.shape[0] for image in images)
    return torch.stack([to_channels(image[None], channels)[0] for image in images])


def image_channels(path: Path) -> int:
    """The channels `read_image` gives `path` (1: grey, 3: RGB), from its header alone."""
    return 1 if _open(path, lambda image: image.mode) in GREY_MODES else 3


def read_image(path: Path, input_size: int) -> torch.Tensor:
    """One image as uint8 C×size×size: grey stays one channel, the rest RGB. Resizing rounds
    to 8 bits again (up to half a level off the float result), so a big folder is held at a
    quarter of float32's memory. A streamed folder's images are read by this very function,
    so they match an in-memory folder's bit for bit."""
    pixels = _open(path, lambda image: np.asarray(
        image.convert("L" if image.mode in GREY_MODES else "RGB"), dtype=np.uint8))
    x = torch.from_numpy(pixels.copy())
    x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
    resized = F.interpolate(x[None].float(), size=(input_size, input_size), mode="bilinear",
                            align_corners=False)[0]
    return resized.round().clamp(0, 255).to(torch.uint8)


def _open(path: Path, read: Callable[[Any], T]) -> T:
    """`read(image)` of the image at `path`; an unreadable file raises UserError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return read(image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UserError(f"cannot read image {path} ({type(exc).__name__}): replace or remove "
                        f"the file") from None


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey images repeated to three channels when the split also holds colour ones."""
    return images if images.shape[1] == channels else images.repeat(1, channels, 1, 1)
