"""`hwnas train`: a tiny pick export trained into a deployable model; resume after Ctrl-C
replays the uninterrupted run; bad input writes nothing; the recipe's schedule and crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import TINY_SPACE, synthetic_table, tiny_run
from typer.testing import CliRunner

from hwnas.arch.space import SearchSpace
from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.latency.model.table import read_table, write_table
from hwnas.search.distributed import shard_start
from hwnas.search.retrain.fit import augment
from hwnas.search.retrain.job import CHECKPOINT_FILE, TrainJob, train
from hwnas.search.retrain.recipe import Recipe
from hwnas.search.retrain.source import from_export

runner = CliRunner()
QUICK = Recipe(batch_size=32)
FEW = 64  # training images: the tiny network trains in well under a second per epoch


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `hwnas pick --export` writes for a tiny one-epoch run on digits."""
    folder = tmp_path_factory.mktemp("train")
    result = runner.invoke(app, ["pick", "--max-latency-ms", "1000", "--run",
                                 str(tiny_run(folder, epochs=1)), "--export",
                                 str(folder / "pick")])
    assert result.exit_code == 0, result.output
    return folder / "pick"


def test_train_writes_a_checked_model_and_its_record(export_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", str(export_dir), "--out", str(out), "--epochs", "2",
                                 "--limit-train", str(FEW), "--batch-size", "32"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "predicted latency" in result.output
    record = json.loads((out / "record.json").read_text())
    picked = json.loads((export_dir / "genotype.json").read_text())
    assert 0.0 <= record["val_accuracy"] <= 1.0 and 0.0 <= record["test_accuracy"] <= 1.0
    assert record["predicted_latency_ms"] == picked["predicted_latency_ms"]
    assert record["genotype"] == picked["genotype"] and record["epochs"] == 2
    assert record["source"]["table_fingerprint"] == picked["table_fingerprint"]
    preprocessing = record["preprocessing"]
    # the export records it too (its mean/std come from the run's own training split)
    assert picked["preprocessing"].keys() == preprocessing.keys()
    assert preprocessing["input_size"] == TINY_SPACE.input_size
    assert len(preprocessing["mean"]) == len(preprocessing["std"]) == TINY_SPACE.input_channels
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 2 and (metrics["peak_memory_mb"] > 0).all()
    # the trained folder is itself a valid source (same architecture, same latency)
    again = from_export(out)
    assert again.genotype == from_export(export_dir).genotype
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 1, TINY_SPACE.input_size, TINY_SPACE.input_size), np.float32)
    assert session.run(None, {"x0": x})[0].shape == (1, TINY_SPACE.classes)


def test_resume_after_interrupt_replays_the_uninterrupted_run(export_dir: Path,
                                                               tmp_path: Path) -> None:
    source = from_export(export_dir)
    whole = train(source, TrainJob(tmp_path / "whole", epochs=2, limit_train=FEW, recipe=QUICK))

    def stop_after_first(row: object) -> None:
        raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(source, TrainJob(cut, epochs=2, limit_train=FEW, recipe=QUICK), stop_after_first)
    assert (cut / CHECKPOINT_FILE).is_file() and not (cut / "model.onnx").exists()
    assert len(pd.read_csv(cut / "metrics.csv")) == 1
    resumed = train(source, TrainJob(cut, epochs=2, limit_train=FEW, recipe=QUICK, resume=True))
    assert [r.loss for r in resumed.metrics] == pytest.approx([r.loss for r in whole.metrics])
    assert resumed.record["test_accuracy"] == whole.record["test_accuracy"]
    for name, tensor in torch.load(cut / "model.pt")["state_dict"].items():
        assert torch.equal(tensor, torch.load(tmp_path / "whole" / "model.pt")["state_dict"][name])


def test_inherited_starts_from_the_exported_weights(export_dir: Path, tmp_path: Path) -> None:
    source = from_export(export_dir)
    scratch = train(source, TrainJob(tmp_path / "s", epochs=1, limit_train=FEW, recipe=QUICK))
    inherited = train(source, TrainJob(tmp_path / "i", epochs=1, init="inherited", limit_train=FEW,
                                          recipe=QUICK))
    assert inherited.metrics[0].loss != scratch.metrics[0].loss
    assert inherited.record["init"] == "inherited"


def test_genotype_file_with_a_table(export_dir: Path, tmp_path: Path) -> None:
    table = write_table(synthetic_table(TINY_SPACE), tmp_path / "t.parquet")
    genotype = tmp_path / "g.json"
    genotype.write_text(json.dumps(json.loads((export_dir / "genotype.json").read_text())
                                   ["genotype"]))
    out = tmp_path / "m"
    result = runner.invoke(app, ["train", "--genotype", str(genotype), "--table", str(table),
                                 "--backend", "onnxruntime", "--out", str(out), "--epochs", "1",
                                 "--limit-train", str(FEW), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["backend"] == "onnxruntime" and record["predicted_latency_ms"] > 0
    assert record["source"]["table_fingerprint"] == read_table(table).fingerprint


@pytest.mark.parametrize("case", ["not-export", "no-weights", "epochs-0", "out-not-empty",
                                  "resume-changed", "resume-missing"])
def test_bad_input_one_line_nothing_written(case: str, export_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    source, extra = str(export_dir), []
    if case == "not-export":
        (tmp_path / "plain").mkdir()
        source = str(tmp_path / "plain")
    elif case == "no-weights":
        stripped = tmp_path / "stripped"
        stripped.mkdir()
        (stripped / "genotype.json").write_text((export_dir / "genotype.json").read_text())
        source, extra = str(stripped), ["--init", "inherited"]
    elif case == "epochs-0":
        extra = ["--epochs", "0"]
    elif case == "out-not-empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "resume-changed":
        train(from_export(export_dir), TrainJob(out, epochs=1, limit_train=FEW, recipe=QUICK))
        extra = ["--resume", "--seed", "7", "--epochs", "1", "--limit-train", str(FEW),
                 "--batch-size", "32"]
    elif case == "resume-missing":
        extra = ["--resume"]
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    result = runner.invoke(app, ["train", source, "--out", str(out), *extra])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
    after = sorted(p.name for p in out.iterdir()) if out.exists() else None
    assert after == before


def test_lr_warms_up_then_decays_to_zero() -> None:
    recipe = Recipe(lr=1.0, warmup_fraction=0.1)
    lrs = [recipe.lr_at(step, 100) for step in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] < 1e-3


@pytest.mark.parametrize("mode", ["crop-flip", "shift"])
def test_crops_move_an_image_without_losing_it(mode: str) -> None:
    images = torch.zeros(16, 1, 16, 16)
    images[:, :, 6:10, 6:10] = 1.0  # a block far enough from the border to survive any crop
    out = augment(images, mode, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert torch.equal(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))
    assert not torch.equal(out, images)
    assert torch.equal(augment(images, "none", torch.Generator()), images)


def test_auto_augmentation_only_for_32_by_32_colour() -> None:
    colour = SearchSpace("c", ("conv_3x3",), input_channels=3, input_size=32)
    assert Recipe().augmentation(colour) == "crop-flip"
    assert Recipe().augmentation(TINY_SPACE) == "none"
    with pytest.raises(UserError):
        Recipe(augment="mixup")


@pytest.mark.parametrize("world", [2, 3])
def test_shards_draw_the_whole_batchs_augmentation(world: int) -> None:
    """Under torchrun each rank augments its shard with the draws one process makes for the
    whole batch, so the shards together are the one-process batch (an empty shard included)."""
    images = torch.arange(5 * 16 * 16, dtype=torch.float32).reshape(5, 1, 16, 16)
    whole = augment(images, "crop-flip", torch.Generator().manual_seed(0))
    shards = [augment(part, "crop-flip", torch.Generator().manual_seed(0), 5,
                      shard_start(5, rank, world))
              for rank, part in enumerate(images.tensor_split(world))]
    assert torch.equal(torch.cat(shards), whole)
    empty = augment(images[:0], "crop-flip", torch.Generator().manual_seed(0), 1, 1)
    assert empty.shape == (0, 1, 16, 16)
