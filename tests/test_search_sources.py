"""The user's own data: ImageFolder layouts and .npz files, and every bad input refused with
one line naming the problem (and the file), before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_SPACE, synthetic_table
from PIL import Image
from typer.testing import CliRunner

from hwnas.arch.space import SearchSpace
from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.latency.model.table import write_table
from hwnas.search.data.dataset import load_dataset
from hwnas.search.data.sources import read_source

FIVE = SearchSpace("five", TINY_SPACE.ops, channels=4, input_size=8, nodes=2, classes=5)
RGB = SearchSpace("rgb", TINY_SPACE.ops, channels=4, input_size=8, nodes=2, classes=3,
                  input_channels=3)


def _image_folder(root, classes, per_class: int, size: int = 12, mode: str = "L") -> None:
    """Class `c`'s images are a flat grey level rising with c (so labels can be checked)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((size, size + i % 3), 20 + 200 * c // len(classes), dtype=np.uint8)
            if mode == "RGB":
                pixels = np.stack([pixels, pixels, rng.integers(0, 255, pixels.shape,
                                                                dtype=np.uint8)], axis=-1)
            Image.fromarray(pixels, mode).save(folder / f"{i}.png")


def test_image_folder_with_test_split(tmp_path) -> None:
    names = ["ant", "bee", "cat", "dog", "eel"]
    _image_folder(tmp_path / "train", names, per_class=6)
    _image_folder(tmp_path / "test", names[:4], per_class=2)  # a test split may lack a class
    data = load_dataset(str(tmp_path), FIVE)
    assert data.classes == 5 and data.class_names == tuple(names)
    assert (len(data.train) + len(data.val), len(data.test)) == (30, 8)
    assert data.test.inputs().shape[1:] == (1, 8, 8)
    assert data.preprocessing.scale == 255.0
    # the flat grey level of every test image says its class: labels follow the folders
    levels: dict[int, set[float]] = {}
    for image, label in zip(data.test.inputs(), data.test.labels.tolist(), strict=True):
        levels.setdefault(label, set()).add(round(float(image.mean()), 4))
    assert sorted(levels) == [0, 1, 2, 3] and all(len(v) == 1 for v in levels.values())
    assert sorted(levels, key=lambda label: levels[label].pop()) == [0, 1, 2, 3]


def test_folder_of_class_folders_is_the_training_set(tmp_path) -> None:
    _image_folder(tmp_path, ["a", "b", "c"], per_class=10, mode="RGB")
    data = load_dataset(str(tmp_path), RGB)
    assert (len(data.train), len(data.val), len(data.test)) == (19, 5, 6)  # test held out
    assert data.train.inputs().shape[1:] == (3, 8, 8)
    grey = load_dataset(str(tmp_path), dataclass_replace(RGB, input_channels=1))
    assert grey.train.inputs().shape[1:] == (1, 8, 8)


def dataclass_replace(space: SearchSpace, **changes) -> SearchSpace:
    import dataclasses

    return dataclasses.replace(space, **changes)


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npz_layouts_and_kinds(tmp_path, layout: str, dtype) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 10, 10)).astype(dtype)
    if dtype == np.float32:
        x /= 255.0
    x = {"nhw": x, "nhwc": x[..., None], "nchw": x[:, None]}[layout]
    y = np.arange(40) % 3
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    raw = read_source(str(path), "data", False, 8)
    assert raw.train_images.shape == (40, 1, 10, 10) and raw.test_images.shape == (9, 1, 10, 10)
    assert raw.train_images.dtype == (torch.uint8 if dtype == np.uint8 else torch.float32)
    assert float(raw.train_images.max()) / raw.scale <= 1.0
    assert raw.scale == (255.0 if dtype == np.uint8 else 1.0)
    data = load_dataset(str(path), dataclass_replace(RGB, input_channels=1))
    assert len(data.test) == 9 and len(data.train) + len(data.val) == 40


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


X = np.zeros((6, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"y_train": np.arange(6) % 2}, "has no x_train"),
    ({"x_train": X}, "has no y_train"),
    ({"x_train": X, "y_train": np.array([1, 2, 1, 2, 1, 2])}, r"labels 0..N−1.*missing 0"),
    ({"x_train": X, "y_train": np.array([0, 1, 3, 0, 1, 3])}, "missing 2"),
    ({"x_train": X, "y_train": np.array([0, 1, -1, 0, 1, 0])}, "labels 0..N−1"),
    ({"x_train": X, "y_train": np.array([0.5] * 6)}, "integer label"),
    ({"x_train": X, "y_train": np.arange(5) % 2}, "x_train has 6 images but y_train has 5"),
    ({"x_train": X, "y_train": np.arange(6) % 2, "x_test": X, "y_test": np.arange(4) % 2},
     "x_test has 6 images but y_test has 4"),
    ({"x_train": X, "y_train": np.arange(6) % 2, "x_test": X[:2], "y_test": np.array([0, 2])},
     "y_test has class 2, which y_train"),
    ({"x_train": X, "y_train": np.arange(6) % 2, "x_test": X}, "only one of x_test"),
    ({"x_train": np.zeros((6, 8, 8, 5)), "y_train": np.arange(6) % 2}, "C = 1 or 3"),
])
def test_bad_npz(tmp_path, arrays, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_source(_npz(tmp_path, **arrays), "data", False, 8)


def test_npz_that_is_not_one(tmp_path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="cannot read .*broken.npz"):
        read_source(str(path), "data", False, 8)


def test_a_data_path_that_is_gone(tmp_path) -> None:
    for name in (str(tmp_path / "moved"), "nowhere.npz"):
        with pytest.raises(UserError, match="not found .*restore it"):
            read_source(name, "data", False, 8)


def test_empty_folder(tmp_path) -> None:
    with pytest.raises(UserError, match="has no class folders"):
        read_source(str(tmp_path), "data", False, 8)


def test_class_folder_without_images(tmp_path) -> None:
    _image_folder(tmp_path / "train", ["a"], per_class=2)
    (tmp_path / "train" / "b").mkdir()
    (tmp_path / "train" / "b" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=r"class folder .*train/b has no images"):
        read_source(str(tmp_path), "data", False, 8)


def test_corrupt_image_is_named(tmp_path) -> None:
    _image_folder(tmp_path / "train", ["a", "b"], per_class=2)
    (tmp_path / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(UserError, match=r"cannot read image .*train/b/broken.jpg"):
        read_source(str(tmp_path), "data", False, 8)


def test_test_class_the_training_split_lacks(tmp_path) -> None:
    _image_folder(tmp_path / "train", ["a", "b"], per_class=2)
    _image_folder(tmp_path / "test", ["a", "zebra"], per_class=1)
    with pytest.raises(UserError, match="test split has class 'zebra'"):
        read_source(str(tmp_path), "data", False, 8)


def test_space_with_another_class_count_names_the_fix(tmp_path) -> None:
    _image_folder(tmp_path, ["a", "b", "c"], per_class=4)
    with pytest.raises(UserError, match=r"has 5 classes but .* has 3.*--classes 3"):
        load_dataset(str(tmp_path), FIVE)


def test_search_refuses_bad_data_before_writing(tmp_path) -> None:
    """Through the CLI: one line, exit 2, no run folder."""
    table = write_table(synthetic_table(TINY_SPACE), tmp_path / "tiny.parquet")
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["search", "--table", str(table), "--dataset",
                                      str(tmp_path / "empty"), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "has no class folders" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_search_and_pick_on_an_image_folder(tmp_path) -> None:
    """A folder goes through search and pick: the run is named after it, test figures come
    from its own test split."""
    _image_folder(tmp_path / "pets" / "train", [str(c) for c in range(10)], per_class=5)
    _image_folder(tmp_path / "pets" / "test", [str(c) for c in range(10)], per_class=1)
    table = write_table(synthetic_table(TINY_SPACE), tmp_path / "tiny.parquet")
    runs = tmp_path / "runs"
    searched = CliRunner().invoke(app, ["search", "--table", str(table), "--dataset",
                                        str(tmp_path / "pets"), "--out", str(runs),
                                        "--epochs", "1", "--batch-size", "16"])
    assert searched.exit_code == 0, searched.output
    assert (runs / "tiny-pets-seed0").is_dir()
    picked = CliRunner().invoke(app, ["pick", "--runs", str(runs), "--max-latency-ms", "1000",
                                      "--json"])
    assert picked.exit_code == 0, picked.output
    import json

    test_accuracy = json.loads(picked.stdout)["test_accuracy"]
    assert test_accuracy * 10 == pytest.approx(round(test_accuracy * 10))  # 10 test images
