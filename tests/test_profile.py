"""`hwnas profile` end to end on a tiny space: CLI, resume after interruption, error paths."""

from __future__ import annotations

import dataclasses
import json
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import torch
from conftest import TINY_SPACE
from typer.testing import CliRunner

from hwnas.arch import keys
from hwnas.arch.space import enumerate_entries, overhead_entries
from hwnas.cli import app
from hwnas.cli.table import table_age
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.measure import profile as profile_module
from hwnas.latency.measure.backends import BackendUnavailable
from hwnas.latency.measure.fresh_networks import launches
from hwnas.latency.measure.profile import ProfileConfig, profile, progress_path
from hwnas.latency.model.table import read_table
from hwnas.latency.runner.timing import TimingSettings

QUICK = TimingSettings(warmup_s=0.002, block_s=0.0005, min_calls=3, max_calls=20,
                       min_rounds=2, max_rounds=3)
runner = CliRunner()


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SPACE.to_dict()))
    return path


def test_cli_profiles_a_tiny_space_with_both_backends(tmp_path: Path, space_file: Path) -> None:
    out = tmp_path / "tables" / "tiny.parquet"
    result = runner.invoke(app, ["profile", "--space", str(space_file), "--out", str(out),
                                 "--calibration-networks", "2", "--classes", "5"])
    assert result.exit_code == 0, result.output
    table = read_table(out)
    space = dataclasses.replace(TINY_SPACE, classes=5)  # --classes sizes the head
    expected = {*enumerate_entries(space), *overhead_entries(space)}
    for backend in ("torch", "onnxruntime"):
        rows = table.rows[table.rows["backend"] == backend]
        assert {keys.EntryKey.from_row(r) for r in rows.to_dict("records")} == expected
    assert (table.rows["latency_ms"] > 0).all()
    assert (table.rows["latency_ms"] <= table.rows["median_ms"] + 1e-12).all()
    assert table.meta["space"] == json.loads(json.dumps(space.to_dict()))
    assert table.meta["threads"] == 1 and table.meta["versions"]["torch"]
    assert not progress_path(out).exists()
    assert "s_dev" in result.output and "conv_3x3" in result.output
    shown = runner.invoke(app, ["table", "show", str(out), "--entries"])
    assert shown.exit_code == 0 and "preprocess_reduce" in shown.output
    assert f"profiled {table.meta['created']}, " in shown.output
    # only onnxruntime's calibration prices its optimised graph's nodes, at this host's block
    calibration = table.meta["calibration"]
    assert set(calibration["onnxruntime"]["node_ms"]) == {"add_nodes", "reorder_nodes"}
    assert not calibration["torch"]["node_ms"]
    assert "graph nodes priced" in shown.output


@pytest.mark.parametrize(("seconds", "words"), [(40, "40 s"), (125, "2 min"),
                                                (3 * 3600 + 300, "3 h 5 min"),
                                                (2 * 86400 + 7200, "2 d 2 h")])
def test_table_age_in_words(seconds: int, words: str) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert table_age(created.isoformat(), created + timedelta(seconds=seconds)) == words


class Interrupt(Hooks):
    """Raises KeyboardInterrupt after `after` measured blocks, like Ctrl-C would."""

    def __init__(self, after: int) -> None:
        self.blocks = 0
        self.phase = ""

        def start(phase: str, total: int) -> None:
            self.phase = phase

        def advance(label: str) -> None:
            if self.phase.startswith("measuring"):
                self.blocks += 1
                if self.blocks == after:
                    raise KeyboardInterrupt

        super().__init__(start=start, advance=advance)


def test_resume_after_interruption_keeps_every_measured_block(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    # no calibration networks: their blocks are not rows, and this test counts rows' blocks
    config = ProfileConfig(TINY_SPACE, backends=("torch",), timing=QUICK,
                           calibration_networks=0)
    with pytest.raises(KeyboardInterrupt):
        profile(config, out, hooks=Interrupt(after=7))
    assert not out.exists()
    log = progress_path(out)
    kept = log.read_text().splitlines()[1:]
    assert len(kept) == 7
    with pytest.raises(UserError, match="pass --resume"):
        profile(config, out)
    blocks_after = []
    hooks = Hooks(advance=blocks_after.append)
    table = profile(config, out, resume=True, hooks=hooks)
    entries = len(enumerate_entries(TINY_SPACE)) + len(overhead_entries(TINY_SPACE))
    measured = len(blocks_after) - entries  # the prepare phase advances once per entry too
    assert int(table.rows["rounds"].sum()) == 7 + measured
    assert not log.exists()


def test_resume_refuses_progress_from_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    config = ProfileConfig(TINY_SPACE, backends=("torch",), timing=QUICK,
                           calibration_networks=0)
    with pytest.raises(KeyboardInterrupt):
        profile(config, out, hooks=Interrupt(after=2))
    other = ProfileConfig(TINY_SPACE, backends=("torch",), threads=2, timing=QUICK,
                          calibration_networks=0)
    with pytest.raises(UserError, match="measured with other settings"):
        profile(other, out, resume=True)


def test_a_missing_backend_is_skipped_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    real = profile_module.make_backend

    def no_onnxruntime(name: str, device: str, threads: int):
        if name == "onnxruntime":
            raise BackendUnavailable("onnxruntime here has no CPUExecutionProvider")
        return real(name, device, threads)

    monkeypatch.setattr(profile_module, "make_backend", no_onnxruntime)
    warnings: list[str] = []
    config = ProfileConfig(TINY_SPACE, timing=QUICK, calibration_networks=0)
    table = profile(config, tmp_path / "t.parquet", hooks=Hooks(warn=warnings.append))
    assert table.backends == ["torch"]
    assert warnings == ["skipping backend onnxruntime: onnxruntime here has no "
                        "CPUExecutionProvider"]


def test_an_interrupted_calibration_resumes_with_its_launches(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    config = ProfileConfig(TINY_SPACE, backends=("torch",), timing=QUICK,
                           calibration_networks=2)
    entries = len(enumerate_entries(TINY_SPACE)) + len(overhead_entries(TINY_SPACE))
    with pytest.raises(KeyboardInterrupt):  # entries and networks are measured interleaved
        profile(config, out, hooks=Interrupt(after=2 * entries))
    records = [json.loads(line) for line in progress_path(out).read_text().splitlines()[1:]]
    assert {(r["network"], r["launch"]) for r in records if "network" in r}
    table = profile(config, out, resume=True)
    networks = table.meta["calibration_networks"]["torch"]
    assert len(networks) == 2
    for network in networks:  # each network measured in launches("torch") processes
        assert len(network["launches_ms"]) == launches("torch") == 3
        assert network["measured_ms"] == statistics.median(network["launches_ms"])


@pytest.mark.parametrize(("args", "message"), [
    (["--space", "nope"], "unknown space 'nope'"),
    (["--backend", "tensorrt"], "unknown backend tensorrt"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda:x"], "bad device"),
])
def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, args: list[str],
                                             message: str) -> None:
    out = tmp_path / "t.parquet"
    result = runner.invoke(app, ["profile", "--out", str(out), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_cli_refuses_cuda_without_a_gpu(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = runner.invoke(app, ["profile", "--device", "cuda", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "no CUDA GPU is visible" in result.output and "--device cpu" in result.output


def test_cli_refuses_an_unknown_op_in_a_space_file(tmp_path: Path) -> None:
    space = tmp_path / "bad.json"
    space.write_text(json.dumps({"name": "bad", "ops": ["conv_3x3", "warp_drive"]}))
    result = runner.invoke(app, ["profile", "--space", str(space), "--out",
                                 str(tmp_path / "t.parquet")])
    assert result.exit_code == 2 and "unknown operation(s) warp_drive" in result.output


@pytest.mark.parametrize("where", ["under_a_file", "a_folder"])
def test_cli_refuses_an_unwritable_out(tmp_path: Path, space_file: Path, where: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "t.parquet" if where == "under_a_file" else tmp_path
    result = runner.invoke(app, ["profile", "--space", str(space_file), "--out", str(out)])
    assert result.exit_code == 2
    assert "--out" in result.output and "Traceback" not in result.output


def test_cli_table_show_rejects_a_missing_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["table", "show", str(tmp_path / "none.parquet")])
    assert result.exit_code == 2 and "hwnas profile" in result.output


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_profile_on_cuda(tmp_path: Path) -> None:
    config = ProfileConfig(TINY_SPACE, device="cuda:0", backends=("torch",),
                           timing=TimingSettings(group=10, min_rounds=2, max_rounds=4))
    table = profile(config, tmp_path / "cuda.parquet")
    assert table.device == "cuda:0"
    assert (table.rows["latency_ms"] > 0).all()
