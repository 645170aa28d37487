"""Data sets fitted to the space, split three ways deterministically; missing ones name their
files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.arch.space import PRESETS, SearchSpace
from hwnas.errors import UserError
from hwnas.search.data.dataset import Split, load_dataset


@pytest.mark.parametrize("space", [PRESETS["exp1"], PRESETS["exp3"]], ids=lambda s: s.name)
def test_digits_fit_the_space_and_split_deterministically(space: SearchSpace) -> None:
    data = load_dataset("digits", space)
    shape = (space.input_channels, space.input_size, space.input_size)
    assert data.train.inputs().shape[1:] == data.val.inputs().shape[1:] == shape
    assert data.test.inputs().shape[1:] == shape
    assert (len(data.train), len(data.val), len(data.test)) == (1150, 288, 359)
    assert data.train.inputs().mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert set(data.train.labels.tolist()) == set(range(10)) and data.classes == 10
    again = load_dataset("digits", space)
    assert torch.equal(again.val.labels, data.val.labels)
    assert torch.equal(again.test.inputs(), data.test.inputs())


def test_splits_are_disjoint(tiny_space) -> None:
    """No image is in two splits: digits has no test split, so one is held out."""
    data = load_dataset("digits", tiny_space)
    rows = [{tuple(image.flatten().tolist()) for image in split.inputs()}
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
    assert all(tuple(image.flatten().tolist()) in found for image in data.val.inputs()[:20])


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


def _npz(tmp_path, x: np.ndarray) -> str:
    path = tmp_path / "set.npz"
    np.savez(path, x_train=x, y_train=np.arange(len(x)) % 10)
    return str(path)


def _up_front(stored: torch.Tensor, train: torch.Tensor, scale: float,
              space: SearchSpace) -> torch.Tensor:
    """The pipeline as it was before batches were made one at a time: every split fitted to
    the space as float32 at once, normalised by the whole training split's float32 mean/std."""
    def fit(x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(x.float() / scale, size=(space.input_size,) * 2,
                                            mode="bilinear", align_corners=False)
        if x.shape[1] == space.input_channels:
            return x
        return (x.mean(dim=1, keepdim=True) if space.input_channels == 1
                else x.repeat(1, space.input_channels, 1, 1))

    fitted = fit(train)
    mean, std = fitted.mean(dim=(0, 2, 3)), fitted.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return (fit(stored) - mean[None, :, None, None]) / std[None, :, None, None]


@pytest.mark.parametrize("case", ["digits-grey", "digits-rgb", "rgb-to-grey", "float"])
def test_batches_equal_the_splits_fitted_up_front(tmp_path, case: str) -> None:
    """Per-batch inputs are the old up-front pipeline's, up to the order of the mean/std sums:
    resizing (8→28, 10→32, 10→28), repeating and averaging channels, uint8 and float data."""
    rng = np.random.default_rng(0)
    name, space = {
        "digits-grey": ("digits", PRESETS["exp1"]),
        "digits-rgb": ("digits", PRESETS["exp3"]),
        "rgb-to-grey": (_npz(tmp_path, rng.integers(0, 256, (300, 10, 10, 3), np.uint8)),
                        PRESETS["exp1"]),
        "float": (_npz(tmp_path, rng.normal(5.0, 2.0, (300, 10, 10)).astype(np.float32)),
                  PRESETS["exp3"]),
    }[case]
    data = load_dataset(name, space)
    for split in (data.train, data.val, data.test):
        batched = torch.cat([images for images, _ in split.batches(64)])
        expected = _up_front(split.stored, data.train.stored, data.preprocessing.scale, space)
        assert batched.dtype == torch.float32 and batched.shape == expected.shape
        torch.testing.assert_close(batched, expected, rtol=0, atol=1e-5)
    assert torch.equal(data.val.inputs(), torch.cat([x for x, _ in data.val.batches(64)]))


def test_8_bit_images_are_held_as_uint8(tmp_path, tiny_space) -> None:
    from PIL import Image

    folder = tmp_path / "folder"
    for c in range(10):
        (folder / str(c)).mkdir(parents=True)
        for i in range(3):
            image = Image.fromarray(np.full((12, 12), 20 * c + i, np.uint8))
            image.save(folder / str(c) / f"{i}.png")
    x = np.random.default_rng(0).integers(0, 256, (30, 8, 8), np.uint8)
    for name in ("digits", str(folder), _npz(tmp_path, x)):
        data = load_dataset(name, tiny_space)
        assert {s.stored.dtype for s in (data.train, data.val, data.test)} == {torch.uint8}
        assert data.train.inputs().dtype == torch.float32
    floats = load_dataset(_npz(tmp_path, x.astype(np.float32) / 255), tiny_space)
    assert floats.train.stored.dtype == torch.float32


@pytest.mark.parametrize("world", [2, 3])
def test_each_rank_gets_its_shard_of_every_global_batch(tiny_space, world: int) -> None:
    """Batches of 32 (not divisible by 3; the last one, 6, by neither): the ranks' shards,
    joined in rank order, are the one-process batch, in order."""
    split: Split = load_dataset("digits", tiny_space, limit_train=70).train
    whole = list(split.batches(32, torch.Generator().manual_seed(3)))
    shards = [list(split.batches(32, torch.Generator().manual_seed(3), rank, world))
              for rank in range(world)]
    assert all(len(batches) == len(whole) for batches in shards)
    for step, (images, labels) in enumerate(whole):
        parts = [shards[rank][step] for rank in range(world)]
        assert [len(part[1]) for part in parts] == [len(t) for t in labels.tensor_split(world)]
        assert torch.equal(torch.cat([part[1] for part in parts]), labels)
        assert torch.equal(torch.cat([part[0] for part in parts]), images)


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
    assert data.train.inputs().shape[1:] == (space.input_channels, space.input_size,
                                           space.input_size)
