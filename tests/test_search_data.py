"""Data sets fitted to the space, split three ways deterministically; missing ones name their
files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.arch.space import PRESETS, SearchSpace
from hwnas.errors import UserError
from hwnas.search.data.dataset import load_dataset


@pytest.mark.parametrize("space", [PRESETS["exp1"], PRESETS["exp3"]], ids=lambda s: s.name)
def test_digits_fit_the_space_and_split_deterministically(space: SearchSpace) -> None:
    data = load_dataset("digits", space)
    shape = (space.input_channels, space.input_size, space.input_size)
    assert data.train.images.shape[1:] == data.val.images.shape[1:] == shape
    assert data.test.images.shape[1:] == shape
    assert (len(data.train), len(data.val), len(data.test)) == (1150, 288, 359)
    assert data.train.images.mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert set(data.train.labels.tolist()) == set(range(10)) and data.classes == 10
    again = load_dataset("digits", space)
    assert torch.equal(again.val.labels, data.val.labels)
    assert torch.equal(again.test.images, data.test.images)


def test_splits_are_disjoint(tiny_space) -> None:
    """No image is in two splits: digits has no test split, so one is held out."""
    data = load_dataset("digits", tiny_space)
    rows = [{tuple(image.flatten().tolist()) for image in split.images}
            for split in (data.train, data.val, data.test)]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])


def test_preprocessing_records_the_training_statistics(tiny_space) -> None:
    data = load_dataset("digits", tiny_space)
    record = json.loads(json.dumps(data.preprocessing.to_dict()))
    assert record["input_size"] == tiny_space.input_size
    assert record["channels"] == tiny_space.input_channels
    assert record["scale"] == 16.0
    assert len(record["mean"]) == len(record["std"]) == tiny_space.input_channels
    # re-applying the record to the raw images reproduces the validation split exactly
    from sklearn.datasets import load_digits

    raw = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1)
    x = torch.nn.functional.interpolate(raw / record["scale"], size=(8, 8), mode="bilinear",
                                        align_corners=False)
    x = (x - record["mean"][0]) / record["std"][0]
    found = {tuple(row.flatten().tolist()) for row in x}
    assert all(tuple(image.flatten().tolist()) in found for image in data.val.images[:20])


def test_limit_train_keeps_validation_whole(tiny_space) -> None:
    data = load_dataset("digits", tiny_space, limit_train=50)
    assert len(data.train) == 50
    assert (len(data.val), len(data.test)) == (288, 359)


def test_batches_cover_the_split_once_in_a_seeded_order(tiny_space) -> None:
    split = load_dataset("digits", tiny_space, limit_train=70).train
    batches = list(split.batches(32, torch.Generator().manual_seed(3)))
    assert [len(labels) for _, labels in batches] == [32, 32, 6]
    seen = torch.cat([labels for _, labels in batches])
    assert sorted(seen.tolist()) == sorted(split.labels.tolist())
    again = split.batches(32, torch.Generator().manual_seed(3))
    replay = torch.cat([labels for _, labels in again])
    assert torch.equal(seen, replay)


@pytest.mark.parametrize(("name", "expected"), [
    ("fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ("cifar10", "cifar-10-batches-py/data_batch_1"),
])
def test_missing_torchvision_set_names_the_expected_files(tmp_path, tiny_space, name: str,
                                                          expected: str) -> None:
    with pytest.raises(UserError, match=f"{name} not found: expected .*{expected}.*--download"):
        load_dataset(name, tiny_space, data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or created


def test_unknown_data_set(tiny_space) -> None:
    with pytest.raises(UserError, match="unknown data set 'mnist'"):
        load_dataset("mnist", tiny_space)


def test_space_with_other_class_count(tiny_space) -> None:
    space = SearchSpace("five", tiny_space.ops, channels=4, input_size=8, nodes=2, classes=5)
    with pytest.raises(UserError, match="5 classes"):
        load_dataset("digits", space)


def _write_idx(path, data: np.ndarray) -> None:
    """The MNIST idx format: magic (ubyte, ndim), big-endian sizes, raw bytes."""
    header = bytes([0, 0, 8, data.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in data.shape)
    path.write_bytes(header + data.astype(np.uint8).tobytes())


@pytest.mark.parametrize("space", [PRESETS["exp1"], PRESETS["exp3"]], ids=lambda s: s.name)
def test_fashion_mnist_from_local_files(tmp_path, space: SearchSpace) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 10)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load_dataset("fashion-mnist", space, data_dir=str(tmp_path), val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)  # its own test
    assert data.train.images.shape[1:] == (space.input_channels, space.input_size,
                                           space.input_size)
