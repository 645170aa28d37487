"""An image folder too large to hold streams through DataLoader workers: the same splits,
batches, statistics, search, training and family as the folder read into memory, bit for
bit; where the switch lies; and a bad file named in one line from a worker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_SPACE
from PIL import Image

from hwnas.arch.genotypes import single_op
from hwnas.arch.network import discrete_network
from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.latency.model.synthetic import synthetic_table
from hwnas.latency.model.table import write_table
from hwnas.search.config import SearchConfig
from hwnas.search.data import streaming
from hwnas.search.data.dataset import Dataset, Split, StreamedSplit, load_dataset
from hwnas.search.family.sweep import load_run, sweep
from hwnas.search.retrain.fit import fit
from hwnas.search.retrain.recipe import Recipe
from hwnas.search.supernet.loop import EpochMetrics, run_search

GREY = SearchSpace("three", TINY_SPACE.ops, channels=4, input_size=8, nodes=2, classes=3)
RGB = dataclasses.replace(GREY, name="three-rgb", input_channels=3)
MODES = {"grey": ("L",), "colour": ("RGB",), "mixed": ("L", "L", "RGB", "P")}


def _folder(root: Path, modes: str, test: bool, per_class: int = 20) -> Path:
    """3 classes of noise images of sizes around and far from 8×8, in PIL `MODES[modes]` in
    turn; under train/ and test/ (4 a class) when `test`, else class folders at the top."""
    rng = np.random.default_rng(0)
    splits = {"train": per_class, "test": 4} if test else {"": per_class}
    for split, count in splits.items():
        for c in range(3):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                mode = MODES[modes][i % len(MODES[modes])]
                shape = (5 + (7 * i) % 13, 4 + (5 * i) % 17, 3)
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                image = Image.fromarray(pixels).convert(mode)
                image.save(folder / f"{i}.png")
    return root


def _load(root: Path, space: SearchSpace, streamed: bool, monkeypatch) -> Dataset:
    monkeypatch.setattr(streaming, "NODE_BUDGET", 0 if streamed else 2**40)
    data = load_dataset(str(root), space)
    assert isinstance(data.train, StreamedSplit if streamed else Split)
    return data


def _batches(split, batch_size: int, seed: int | None, rank: int, world: int):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return list(split.batches(batch_size, generator, rank, world))


@pytest.mark.parametrize(("modes", "test", "space", "workers"), [
    ("mixed", False, GREY, 0),  # stored as colour, averaged to grey per batch
    ("grey", True, GREY, 0),  # stored grey: the header scan must not say colour
    ("grey", False, RGB, 0),  # stored grey, repeated to colour per batch
    ("colour", True, RGB, 2),  # decoded in two worker processes
])
def test_every_split_streams_the_in_memory_batches_bit_for_bit(tmp_path, monkeypatch,
                                                               modes: str, test: bool,
                                                               space: SearchSpace,
                                                               workers: int) -> None:
    monkeypatch.setattr(streaming, "WORKERS", workers)
    folder = _folder(tmp_path, modes, test)
    memory = _load(folder, space, False, monkeypatch)
    streamed = _load(folder, space, True, monkeypatch)
    assert streamed.preprocessing == memory.preprocessing  # statistics to the last bit
    assert streamed.class_names == memory.class_names
    for name in ("train", "val", "test"):
        a, b = getattr(memory, name), getattr(streamed, name)
        assert len(a) == len(b)
        # the last batch of len − 1 holds one image: rank 1 of 2 gets an empty shard
        for batch_size in (7, len(a) - 1):
            for seed in (None, 3):
                for rank, world in ((0, 1), (0, 2), (1, 2)):
                    expected = _batches(a, batch_size, seed, rank, world)
                    got = _batches(b, batch_size, seed, rank, world)
                    assert len(got) == len(expected)
                    for (x, y), (x_s, y_s) in zip(expected, got, strict=True):
                        assert torch.equal(x, x_s) and torch.equal(y, y_s)
    with pytest.raises(TypeError, match="batches"):
        streamed.train.inputs()


def _config(tmp_path: Path, folder: Path, name: str, **changes) -> SearchConfig:
    return SearchConfig(str(tmp_path / "three.parquet"), dataset=str(folder), batch_size=16,
                        epochs=2,
                        out=str(tmp_path / "runs"), name=name, **changes)


def test_a_streamed_search_resumed_is_the_in_memory_search(tmp_path, monkeypatch) -> None:
    """Search (train steps, per-epoch member accuracies), interrupted and resumed, and the
    family swept from the run: the same figures with the folder streamed as read whole."""
    folder = _folder(tmp_path / "data", "mixed", test=False)
    table = synthetic_table(GREY)
    write_table(table, tmp_path / "three.parquet")  # load_run reads it
    monkeypatch.setattr(streaming, "NODE_BUDGET", 2**40)
    memory = run_search(_config(tmp_path, folder, "memory"), table)
    family = sweep(load_run(memory.run_dir))

    def interrupt(metrics: EpochMetrics) -> None:  # Ctrl-C once epoch 1 is saved
        raise KeyboardInterrupt

    monkeypatch.setattr(streaming, "NODE_BUDGET", 0)
    monkeypatch.setattr(streaming, "WORKERS", 2)
    with pytest.raises(KeyboardInterrupt):
        run_search(_config(tmp_path, folder, "streamed"), table, progress=interrupt)
    streamed = run_search(_config(tmp_path, folder, "streamed", resume=True), table)
    assert memory.metrics == [dataclasses.replace(s, train_s=m.train_s,
                                                  peak_memory_mb=m.peak_memory_mb)
                              for s, m in zip(streamed.metrics, memory.metrics, strict=True)]
    for a, b in zip(memory.state.supernet.state_dict().values(),
                    streamed.state.supernet.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    monkeypatch.setattr(streaming, "WORKERS", 0)
    assert sweep(load_run(streamed.run_dir)) == family


def test_training_on_a_streamed_folder_is_training_in_memory(tmp_path, monkeypatch) -> None:
    folder = _folder(tmp_path, "colour", test=True)
    monkeypatch.setattr(streaming, "WORKERS", 0)
    rows, weights = [], []
    for streamed in (False, True):
        data = _load(folder, RGB, streamed, monkeypatch)
        torch.manual_seed(0)
        network = discrete_network(RGB, single_op("conv_3x3", RGB.edges_per_cell))
        rows.append([dataclasses.replace(row, train_s=0.0, peak_memory_mb=0.0) for row in
                     fit(network, data, Recipe(batch_size=16), "crop-flip", 2, seed=1)])
        weights.append(network.state_dict())
    assert rows[0] == rows[1]
    assert all(torch.equal(a, b) for a, b in zip(*(w.values() for w in weights), strict=True))


def test_a_folder_streams_when_it_would_hold_more_than_a_rank_may(tmp_path,
                                                                 monkeypatch) -> None:
    folder = _folder(tmp_path, "grey", test=False)
    monkeypatch.setattr(streaming, "WORKERS", 0)
    held = streaming.held_bytes(60, 8)  # 60 images as uint8 3×8×8
    for budget, ranks, streams in ((held, 1, False), (held - 1, 1, True),
                                   (2 * held, 2, False), (2 * held - 1, 2, True)):
        monkeypatch.setattr(streaming, "NODE_BUDGET", budget)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(ranks))
        data = load_dataset(str(folder), GREY)
        assert isinstance(data.train, StreamedSplit) == streams
    # unset, the node's budget is a share of MemAvailable, divided by the ranks on the node
    monkeypatch.setattr(streaming, "NODE_BUDGET", None)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n")
    monkeypatch.setattr(streaming, "MEMINFO", meminfo)
    assert streaming.memory_budget() == int(streaming.MEMORY_SHARE * 4_096_000_000) // 2
    monkeypatch.setattr(streaming, "MEMINFO", tmp_path / "absent")  # not Linux
    assert streaming.available_memory() > 0


def test_a_bad_file_read_by_a_worker_is_named_in_one_line(tmp_path, monkeypatch) -> None:
    folder = _folder(tmp_path, "colour", test=False)
    bad = folder / "class1" / "3.png"
    bad.write_bytes(bad.read_bytes()[:60])  # its header still reads: the pixels do not
    monkeypatch.setattr(streaming, "WORKERS", 2)
    with pytest.raises(UserError, match=r"cannot read image .*3\.png") as error:
        data = _load(folder, RGB, True, monkeypatch)  # the statistics read the training images
        for split in (data.val, data.test):
            list(split.batches(16))
    assert "\n" not in str(error.value)
