"""Data sets fitted to the space, split deterministically; missing ones name their files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latency.errors import UserError
from latency.space import PRESETS, SearchSpace
from search.data import load_dataset


@pytest.mark.parametrize("space", [PRESETS["exp1"], PRESETS["exp3"]], ids=lambda s: s.name)
def test_digits_fit_the_space_and_split_deterministically(space: SearchSpace) -> None:
    data = load_dataset("digits", space)
    shape = (space.input_channels, space.input_size, space.input_size)
    assert data.train.images.shape[1:] == data.val.images.shape[1:] == shape
    assert len(data.train) + len(data.val) == 1797
    assert len(data.val) == round(0.2 * 1797)
    assert abs(float(data.train.images.mean())) < 1e-3
    assert set(data.train.labels.tolist()) == set(range(10))
    again = load_dataset("digits", space)
    assert torch.equal(again.val.labels, data.val.labels)


def test_limit_train_keeps_validation_whole(tiny_space) -> None:
    data = load_dataset("digits", tiny_space, limit_train=50)
    assert len(data.train) == 50
    assert len(data.val) == round(0.2 * 1797)


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
    assert (len(data.train), len(data.val)) == (30, 10)
    assert data.train.images.shape[1:] == (space.input_channels, space.input_size,
                                           space.input_size)
