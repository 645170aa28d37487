"""Data-parallel search under torchrun with gloo on the CPU: one run, one family on every rank.

Each test launches real processes with `python -m torch.distributed.run` (what `torchrun` is),
as a user does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from hwnas.arch.genotypes import random_genotype
from hwnas.latency.model.table import write_table

WORKER = Path(__file__).parent / "workers" / "search_ranks.py"


def _torchrun(nproc: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={nproc}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _on_ranks(mode: str, tmp_path: Path, tiny_table, nproc: int, sampling: str,
              limit_train: int) -> list[dict]:
    table = tmp_path / "tiny.parquet"
    if not table.exists():
        write_table(tiny_table, table)
    dump = tmp_path / f"{mode}{nproc}"
    dump.mkdir()
    done = _torchrun(nproc, str(WORKER), mode, str(table), str(tmp_path / f"runs{nproc}"),
                     str(dump), sampling, str(limit_train), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(dump / f"rank{r}.pt", weights_only=False) for r in range(nproc)]


@pytest.mark.parametrize("sampling", ["soft", "hard"])
def test_two_ranks_hold_bit_identical_weights_and_sweep_the_same_family(
        tmp_path, tiny_table, sampling: str) -> None:
    # 33 training images in batches of 16: the last global batch has one image, so rank 1's
    # shard of it is empty and must still take part in the all-reduce
    rank0, rank1 = _on_ranks("search", tmp_path, tiny_table, 2, sampling, limit_train=33)
    assert rank0["world"] == rank1["world"] == 2
    for part in ("supernet", "hypernet", "buffers"):
        assert rank0[part].keys() == rank1[part].keys()
        for name, value in rank0[part].items():
            assert torch.equal(value, rank1[part][name]), f"{part} {name} differs across ranks"
            assert torch.isfinite(value).all(), f"{part} {name} is not finite"
    assert rank0["family"] == rank1["family"]
    assert rank0["losses"] == rank1["losses"]


@pytest.mark.parametrize("sampling", ["soft", "hard"])
def test_two_ranks_take_the_one_process_steps_when_batch_norm_uses_running_statistics(
        tmp_path, tiny_table, sampling: str) -> None:
    """With batch-norm in eval mode a shard is normalised as the whole batch is, so the
    loss scaling and the gradient all-reduce must reproduce one process's steps exactly (to
    float rounding); 33 images leave rank 1 an empty shard in the last step."""
    (one,) = _on_ranks("steps", tmp_path, tiny_table, 1, sampling, limit_train=33)
    two, _ = _on_ranks("steps", tmp_path, tiny_table, 2, sampling, limit_train=33)
    assert one["losses"] == pytest.approx(two["losses"], rel=1e-5)
    for part in ("supernet", "hypernet"):
        for name, value in one[part].items():
            assert torch.allclose(value, two[part][name], rtol=1e-4, atol=1e-6), name


@pytest.mark.slow
def test_two_ranks_match_one_process_on_the_same_global_batch(tmp_path, tiny_table) -> None:
    """The same global batch, seed and epochs in training mode: the same draws and nearly the
    same per-epoch loss; batch-norm normalises each rank's half-batch by itself, which is the
    only difference (the test above shows the rest is exact)."""
    (one,) = _on_ranks("search", tmp_path, tiny_table, 1, "soft", limit_train=32)
    two, _ = _on_ranks("search", tmp_path, tiny_table, 2, "soft", limit_train=32)
    assert one["losses"] == pytest.approx(two["losses"], rel=0.02)


def _cli(nproc: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _torchrun(nproc, "-m", "hwnas", *args, cwd=cwd)


def _tiny_search_args(table: Path, *more: str) -> list[str]:
    return ["search", "--table", str(table), "--limit-train", "40", "--batch-size", "16",
            "--epochs", "2", "--name", "tiny", *more]


def test_bad_launches_are_refused_in_one_line_with_nothing_written(tmp_path, tiny_table) -> None:
    table = tmp_path / "tiny.parquet"
    write_table(tiny_table, table)
    uneven = _cli(2, *_tiny_search_args(table, "--batch-size", "15"), cwd=tmp_path)
    assert uneven.returncode != 0
    lines = [line for line in uneven.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: --batch-size 15 is the global batch, split evenly across 2 "
                     "ranks: use a multiple of 2"]  # printed by rank 0 alone
    assert not (tmp_path / "runs").exists()
    started = _cli(1, *_tiny_search_args(table, "--epochs", "1"), cwd=tmp_path)
    assert started.returncode == 0, started.stderr[-2000:]
    checked = tmp_path / "runs" / "tiny" / "checkpoint.pt"
    before = checked.read_bytes()
    changed = _cli(2, *_tiny_search_args(table, "--epochs", "1", "--kappa", "0.9", "--resume"),
                   cwd=tmp_path)
    assert changed.returncode != 0
    assert [line for line in changed.stderr.splitlines() if line.startswith("error:")] == [
        "error: run runs/tiny was started with kappa=0.5 (not 0.9): pass "
        "the same options to --resume, or choose another --name"]
    assert checked.read_bytes() == before
    if not torch.cuda.is_available():
        cuda = _cli(2, *_tiny_search_args(table, "--device", "cuda"), cwd=tmp_path)
        assert cuda.returncode != 0
        assert "--device cuda under torchrun uses nccl" in cuda.stderr


@pytest.mark.slow
def test_interrupted_two_rank_run_resumes_to_the_uninterrupted_result(tmp_path,
                                                                      tiny_table) -> None:
    table = tmp_path / "tiny.parquet"
    write_table(tiny_table, table)
    straight = _cli(2, *_tiny_search_args(table, "--out", "straight"), cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert straight.stdout.count("epoch   2/2") == 1  # rank 0 alone prints

    # enough epochs that the interruption lands mid-run on a fast machine too
    args = _tiny_search_args(table, "--out", "cut", "--epochs", "12")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 "--nproc-per-node=2", "-m", "hwnas", *args], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    checkpoint = tmp_path / "cut" / "tiny" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    launcher.send_signal(signal.SIGINT)  # Ctrl-C on the launcher
    launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    saved = torch.load(checkpoint, weights_only=True)
    assert 1 <= saved["epoch"] < 12 and saved["world"] == 2

    one = _cli(1, *args, "--resume", cwd=tmp_path)
    assert one.returncode != 0
    assert "was trained on 2 process(es), this resume has 1" in one.stderr
    resumed = _cli(2, *args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = _cli(2, *_tiny_search_args(table, "--out", "full", "--epochs", "12"), cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-2000:]
    columns = ["epoch", "loss", "task_loss", "val_acc_uniform", "val_acc_dev", "arch_ms_dev"]
    assert (pd.read_csv(tmp_path / "cut" / "tiny" / "metrics.csv")[columns]
            .equals(pd.read_csv(tmp_path / "full" / "tiny" / "metrics.csv")[columns]))


@pytest.mark.slow
def test_train_on_two_ranks_writes_one_model_and_matches_one_process(tmp_path,
                                                                     tiny_table) -> None:
    table = tmp_path / "tiny.parquet"
    write_table(tiny_table, table)
    genotype = tmp_path / "g.json"
    genotype.write_text(random_genotype(tiny_table.space, torch.Generator().manual_seed(1))
                        .to_json())
    args = ["train", "--genotype", str(genotype), "--table", str(table), "--limit-train", "70",
            "--batch-size", "32", "--epochs", "2", "--augment", "shift"]
    one = _cli(1, *args, "--out", "one", cwd=tmp_path)
    two = _cli(2, *args, "--out", "two", cwd=tmp_path)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("epoch   2/2") == 1 and two.stdout.count("model.onnx") == 1
    assert (tmp_path / "two" / "model.onnx").is_file()
    assert torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["world"] == 2
    losses = [pd.read_csv(tmp_path / name / "metrics.csv")["loss"] for name in ("one", "two")]
    print("per-epoch loss, 1 process:", list(losses[0]), "2 ranks:", list(losses[1]))
    assert list(losses[0]) == pytest.approx(list(losses[1]), rel=0.05)
