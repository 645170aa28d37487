"""run_search: the run folder, checkpoints, resuming exactly, and the refusals."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch

from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable, write_table
from hwnas.search.config import SearchConfig
from hwnas.search.family.sweep import load_run
from hwnas.search.supernet.loop import EpochMetrics, run_search, temperature
from hwnas.search.supernet.run_folder import latest_run


def _config(tmp_path, **changes) -> SearchConfig:
    base = SearchConfig("tiny.parquet", limit_train=32, batch_size=16, epochs=2, val_fraction=0.05,
                        out=str(tmp_path / "runs"), name="tiny")
    return dataclasses.replace(base, **changes)


def test_temperature_anneals_linearly_from_start_to_end(tmp_path) -> None:
    config = _config(tmp_path, epochs=5)
    assert [round(temperature(e, config), 6) for e in range(5)] == [1.0, 0.8, 0.6, 0.4, 0.2]
    assert temperature(0, _config(tmp_path, epochs=1)) == 1.0


def test_run_folder_holds_config_checkpoint_metrics_and_latest(tmp_path, tiny_table) -> None:
    seen = []
    result = run_search(_config(tmp_path), tiny_table, progress=seen.append)
    run = tmp_path / "runs" / "tiny"
    assert result.run_dir == run
    assert [m.epoch for m in seen] == [1, 2]
    record = json.loads((run / "config.json").read_text())
    assert record["table"]["fingerprint"] == tiny_table.fingerprint
    assert record["space"]["name"] == "tiny" and record["config"]["kappa"] == 0.5
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert metrics["val_acc_uniform"].between(0, 1).all()
    assert (metrics["expected_ms_dev"] > 0).all()
    assert (metrics["peak_memory_mb"] > 0).all()  # the process's RSS, all of it
    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == 2
    assert latest_run(tmp_path / "runs") == run


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("sampling", ["soft", "hard"])
def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path, tiny_table,
                                                              sampling: str,
                                                              channels_last: bool) -> None:
    settings = {"sampling": sampling, "channels_last": channels_last}
    straight = run_search(_config(tmp_path, name="straight", **settings), tiny_table)

    def interrupt(metrics: EpochMetrics) -> None:  # Ctrl-C once epoch 1 is saved
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(_config(tmp_path, name="split", **settings), tiny_table, progress=interrupt)
    resumed = run_search(_config(tmp_path, name="split", resume=True, **settings), tiny_table)
    for a, b in zip(straight.state.state_dict().values(), resumed.state.state_dict().values(),
                    strict=True):
        _assert_same(a, b)
    assert [m.epoch for m in resumed.metrics] == [1, 2]
    assert straight.metrics == [dataclasses.replace(m, train_s=s.train_s,
                                                    peak_memory_mb=s.peak_memory_mb)
                                for m, s in zip(resumed.metrics, straight.metrics, strict=True)]


def _assert_same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list):
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def test_existing_run_without_resume_is_refused_and_left_alone(tmp_path, tiny_table) -> None:
    run_search(_config(tmp_path, epochs=1), tiny_table)
    checkpoint = tmp_path / "runs" / "tiny" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    with pytest.raises(UserError, match="already exists: pass --resume"):
        run_search(_config(tmp_path, epochs=1), tiny_table)
    assert checkpoint.read_bytes() == before


def test_resume_with_other_settings_or_table_is_refused(tmp_path, tiny_table) -> None:
    run_search(_config(tmp_path, epochs=1), tiny_table)
    with pytest.raises(UserError, match=r"kappa=0\.5 \(not 1\.0\)"):
        run_search(_config(tmp_path, epochs=1, kappa=1.0, resume=True), tiny_table)
    other = LatencyTable([{**row, "latency_ms": row["latency_ms"] * 2}  # type: ignore[operator]
                          for row in tiny_table.records], tiny_table.meta)
    with pytest.raises(UserError, match="was trained on table"):
        run_search(_config(tmp_path, epochs=1, resume=True), other)


def test_sampling_is_recorded_and_a_resume_with_another_is_refused(tmp_path,
                                                                   tiny_table) -> None:
    run_search(_config(tmp_path, epochs=1, sampling="hard"), tiny_table)
    record = json.loads((tmp_path / "runs" / "tiny" / "config.json").read_text())
    assert record["config"]["sampling"] == "hard"
    with pytest.raises(UserError, match=r"^run \S+ was started with sampling='hard' "
                                        r"\(not 'soft'\): pass the same options[^\n]*$"):
        run_search(_config(tmp_path, epochs=1, sampling="soft", resume=True), tiny_table)


def test_a_run_recorded_before_sampling_existed_resumes_and_loads_as_soft(tmp_path,
                                                                         tiny_table) -> None:
    run_search(_config(tmp_path, epochs=1), tiny_table)
    path = tmp_path / "runs" / "tiny" / "config.json"
    record = json.loads(path.read_text())
    del record["config"]["sampling"]
    path.write_text(json.dumps(record))
    assert SearchConfig.from_dict(record["config"]).sampling == "soft"
    run_search(_config(tmp_path, epochs=1, sampling="soft", resume=True), tiny_table)
    with pytest.raises(UserError, match=r"sampling='soft' \(not 'hard'\)"):
        run_search(_config(tmp_path, epochs=1, sampling="hard", resume=True), tiny_table)


def test_channels_last_trains_the_same_maths_in_the_other_layout(tmp_path, tiny_table) -> None:
    table = str(write_table(tiny_table, tmp_path / "tiny.parquet"))  # load_run reads it
    nchw = run_search(_config(tmp_path, name="nchw", epochs=1), tiny_table)
    last = run_search(_config(tmp_path, name="last", epochs=1, channels_last=True,
                              table_path=table), tiny_table)
    weights = {name: p for name, p in last.state.supernet.named_parameters() if p.dim() == 4}
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last)
                           for p in weights.values())
    for a, b in zip(nchw.state.state_dict().values(), last.state.state_dict().values(),
                    strict=True):
        _assert_close(a, b)
    record = json.loads((tmp_path / "runs" / "last" / "config.json").read_text())
    assert record["config"]["channels_last"] is True
    loaded = load_run(tmp_path / "runs" / "last")  # what pick reads: the same weights
    for name, value in loaded.supernet.state_dict().items():
        assert torch.equal(value, last.state.supernet.state_dict()[name])


def _assert_close(a: object, b: object) -> None:
    """Equal up to float rounding (the layouts sum in different orders)."""
    if isinstance(a, torch.Tensor):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4)
    elif isinstance(a, dict):
        for key in a:
            _assert_close(a[key], b[key])
    elif isinstance(a, list):
        for x, y in zip(a, b, strict=True):
            _assert_close(x, y)


def test_a_run_resumes_in_the_other_layout_and_old_runs_load_as_nchw(tmp_path,
                                                                      tiny_table) -> None:
    def interrupt(metrics: EpochMetrics) -> None:  # Ctrl-C once epoch 1 is saved
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(_config(tmp_path), tiny_table, progress=interrupt)
    path = tmp_path / "runs" / "tiny" / "config.json"
    record = json.loads(path.read_text())
    del record["config"]["channels_last"]  # a run recorded before the setting existed
    path.write_text(json.dumps(record))
    assert SearchConfig.from_dict(record["config"]).channels_last is False
    resumed = run_search(_config(tmp_path, channels_last=True, resume=True), tiny_table)
    assert [m.epoch for m in resumed.metrics] == [1, 2]


def test_resume_without_a_run(tmp_path, tiny_table) -> None:
    with pytest.raises(UserError, match="cannot resume"):
        run_search(_config(tmp_path, resume=True), tiny_table)


def test_finished_run_resumes_to_the_same_result(tmp_path, tiny_table) -> None:
    first = run_search(_config(tmp_path, epochs=1), tiny_table)
    again = run_search(_config(tmp_path, epochs=1, resume=True), tiny_table)
    assert again.metrics == first.metrics


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_before_writing(tmp_path, tiny_table) -> None:
    with pytest.raises(UserError, match="no CUDA GPU.*--device cpu"):
        run_search(_config(tmp_path, device="cuda"), tiny_table)
    assert not (tmp_path / "runs").exists()


def test_unknown_dataset_is_refused_before_writing(tmp_path, tiny_table) -> None:
    """Any name passes the config (a folder or .npz path is a data set too); the reader
    refuses what is none of them, before the run folder exists."""
    with pytest.raises(UserError, match="unknown data set 'mnist'"):
        run_search(_config(tmp_path, dataset="mnist"), tiny_table)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"backend": "tvm"}, "unknown backend 'tvm'"),
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"beta": 1.5}, r"--beta must lie in \[0, 1\]"),
    ({"sigma": 0.0}, "--sigma must be positive"),
    ({"sampling": "gumbel"}, "unknown sampling 'gumbel': use one of soft, hard"),
])
def test_bad_settings_are_user_errors(tmp_path, change: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        _config(tmp_path, **change)
