"""Bundle → runner on a target without torch → `hwnas table import`, and every refusal."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BUNDLE_NETWORKS, QUICK, TINY_SPACE, run_without_torch, runner_without_torch
from typer.testing import CliRunner

from hwnas.arch import keys
from hwnas.arch.space import enumerate_entries, overhead_entries
from hwnas.cli import app
from hwnas.errors import UserError
from hwnas.latency.model.table import read_table
from hwnas.latency.runner import measure_bundle as target
from hwnas.latency.targets.bundle import RUNNER_MODULES, write_bundle
from hwnas.latency.targets.import_results import import_results

runner = CliRunner()


def test_the_shadow_really_hides_torch(shadow: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, cwd=shadow,
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "no torch on the target" in probe.stderr


def test_the_bundle_ships_the_profilers_own_timing_code(measured: tuple[Path, Path]) -> None:
    bundle, _ = measured
    here = Path(target.__file__).parent
    for name in RUNNER_MODULES:
        assert (bundle / "lib" / "latency" / name).read_bytes() == (here / name).read_bytes()


def test_runner_measures_every_entry_and_network_without_torch(
        measured: tuple[Path, Path]) -> None:
    bundle, path = measured
    results = json.loads(path.read_text())
    manifest = target.read_manifest(bundle)
    entries = {*enumerate_entries(TINY_SPACE), *overhead_entries(TINY_SPACE)}
    assert {keys.EntryKey.from_row(e["key"]) for e in manifest["entries"]} == entries
    assert len(results["blocks_ms"]) == len(entries) + BUNDLE_NETWORKS * manifest["launches"]
    for blocks in results["blocks_ms"].values():
        assert QUICK.min_rounds <= len(blocks) <= QUICK.max_rounds
        assert all(t > 0 for block in blocks for t in block)
    machine = results["machine"]
    assert machine["provider"] == "CPUExecutionProvider" and machine["threads"] == 1
    assert machine["cores"] >= 1 and machine["cpu_model"] and machine["onnxruntime"]
    assert not target.progress_path(path).exists()


def test_import_makes_a_calibrated_table_of_the_target(measured: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    bundle, results = measured
    out = tmp_path / "board.parquet"
    done = runner.invoke(app, ["table", "import", str(results), "--bundle", str(bundle),
                               "--out", str(out)])
    assert done.exit_code == 0, done.output
    table = read_table(out)
    assert table.backends == ["onnxruntime"] and table.space == TINY_SPACE
    stored = json.loads(results.read_text())
    assert table.meta["device_name"] == stored["machine"]["cpu_model"]
    assert table.meta["versions"]["onnxruntime"] == stored["machine"]["onnxruntime"]
    assert table.calibration("onnxruntime")["networks"] == BUNDLE_NETWORKS
    first = target.read_manifest(bundle)["entries"][0]
    blocks = stored["blocks_ms"][first["id"]]
    lowest_median = min(statistics.median(block) for block in blocks)
    assert table.latency_ms("onnxruntime", keys.EntryKey.from_row(first["key"])) == \
        pytest.approx(lowest_median)
    assert "s_dev" in done.output


def test_resume_keeps_the_blocks_of_an_interrupted_run(measured: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    bundle, results = measured
    out = tmp_path / "again.json"
    manifest = target.read_manifest(bundle)
    kept_task = manifest["entries"][0]["id"]
    kept_block = [123.0, 124.0, 125.0]  # far slower than anything real: recognisable
    log = target.progress_path(out)
    log.write_text(json.dumps({"hwnas_target_progress": 1,
                               "identity": target.identity(manifest, 1, "CPUExecutionProvider")})
                   + "\n" + json.dumps({"task": kept_task, "block_ms": kept_block}) + "\n"
                   + '{"task": "torn')
    with pytest.raises(UserError, match="pass --resume"):
        target.measure(bundle, out)
    again = target.measure(bundle, out, resume=True)
    assert again["blocks_ms"][kept_task][0] == kept_block
    assert not log.exists()
    log.write_text(json.dumps({"hwnas_target_progress": 1,
                               "identity": target.identity(manifest, 2, "CPUExecutionProvider")}))
    with pytest.raises(UserError, match="other --threads"):
        target.measure(bundle, tmp_path / "again.json", resume=True)


def test_a_runner_stopped_by_ctrl_c_resumes_and_keeps_what_it_measured(
        measured: tuple[Path, Path], tmp_path: Path, shadow: Path) -> None:
    bundle, _ = measured
    out = tmp_path / "results.json"
    log = target.progress_path(out)
    # its own process group, signalled as a terminal's Ctrl-C signals one: the runner and its
    # fresh-process server alike. SIGINT is reset to its default in the child, as a terminal's
    # foreground job has it: a test run started in the background (`cmd &` without job
    # control) ignores SIGINT, every child inherits that, and the runner would finish.
    process = subprocess.Popen(**runner_without_torch(bundle, out, shadow=shadow),
                               stderr=subprocess.PIPE, start_new_session=True,
                               preexec_fn=_sigint_default)
    try:
        _wait_for_blocks(log, process, at_least=3)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    messages = [line for line in stderr.splitlines() if line and not line.startswith("measured")]
    assert process.returncode == 130, stderr
    assert messages == ["interrupted: what was measured is kept; run the same command with "
                        "--resume to continue"], stderr
    assert not out.exists() and log.exists()
    taken = _blocks_in(log)
    assert sum(len(blocks) for blocks in taken.values()) >= 3
    done = run_without_torch(bundle, out, "--resume", shadow=shadow)
    assert done.returncode == 0, done.stderr
    assert not log.exists()
    results = json.loads(out.read_text())
    for task, blocks in taken.items():
        assert results["blocks_ms"][task][:len(blocks)] == blocks
    import_results(out, bundle, tmp_path / "t.parquet")
    table = read_table(tmp_path / "t.parquet")
    assert len(table.records) == len(target.read_manifest(bundle)["entries"])


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_blocks(log: Path, process: subprocess.Popen, at_least: int) -> None:
    """Return once the runner's progress file holds `at_least` blocks (a header line, then one
    line per block); fail if the runner ends first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) > at_least:
            return
        time.sleep(0.005)
    raise AssertionError(f"the runner ended (exit {process.poll()}) before {at_least} blocks")


def _blocks_in(log: Path) -> dict[str, list[list[float]]]:
    """Each task's blocks in a progress file, in order; a torn last line is skipped."""
    blocks: dict[str, list[list[float]]] = {}
    for line in log.read_text().splitlines()[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        blocks.setdefault(str(record["task"]), []).append(record["block_ms"])
    return blocks


def _results_with(results: Path, tmp_path: Path, change) -> Path:
    data = json.loads(results.read_text())
    change(data)
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(data))
    return path


def _first_time(value: float):
    def change(data: dict) -> None:
        next(iter(data["blocks_ms"].values()))[0][0] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda data: data["blocks_ms"].popitem(), "lacks 1 of"),
    (_first_time(0.0), "non-positive or non-finite"),
    (_first_time(-1.0), "non-positive or non-finite"),
    (_first_time(math.nan), "non-positive or non-finite"),
    (_first_time(math.inf), "non-positive or non-finite"),
    (lambda data: data.update(bundle_id="0123456789abcdef"), "comes from another bundle"),
    (lambda data: data.update(space_fingerprint="ffff", bundle_id="0"), "measured space"),
    (lambda data: data.pop("hwnas_results"), "not a bundle runner's results"),
])
def test_import_refuses_bad_results_and_writes_nothing(
        measured: tuple[Path, Path], tmp_path: Path, change, message: str) -> None:
    bundle, results = measured
    out = tmp_path / "t.parquet"
    done = runner.invoke(app, ["table", "import", str(_results_with(results, tmp_path, change)),
                               "--bundle", str(bundle), "--out", str(out)])
    assert done.exit_code == 2 and message in done.output, done.output
    assert "Traceback" not in done.output and len(done.output.strip().splitlines()) == 1
    assert not out.exists()


def test_import_refuses_truncated_results_and_a_missing_manifest(
        measured: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, results = measured
    cut = tmp_path / "cut.json"
    cut.write_text(results.read_text()[:-200])
    with pytest.raises(UserError, match="truncated or not JSON"):
        import_results(cut, bundle, tmp_path / "t.parquet")
    with pytest.raises(UserError, match="not an hwnas bundle"):
        import_results(results, tmp_path, tmp_path / "t.parquet")


def test_results_of_a_bundle_of_another_space_are_refused(measured: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    _, results = measured
    other = tmp_path / "other"
    write_bundle(dataclasses.replace(TINY_SPACE, name="tiny2", channels=2), other,
                 calibration_networks=0, timing=QUICK)
    with pytest.raises(UserError, match="measured space 'tiny'.*space 'tiny2'"):
        import_results(results, other, tmp_path / "t.parquet")


def test_runner_refuses_a_missing_model_an_unknown_provider_and_a_non_bundle(
        measured: tuple[Path, Path], tmp_path: Path, shadow: Path) -> None:
    bundle, _ = measured
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(bundle), str(copy)], check=True)
    (copy / "models" / "e001.onnx").unlink()
    # the provider is refused before any model is read or hashed (else: "lacks e001")
    with pytest.raises(UserError, match="this onnxruntime has .*CPUExecutionProvider"):
        target.measure(copy, tmp_path / "r.json", provider="TensorrtExecutionProvider")
    done = run_without_torch(copy, tmp_path / "r.json", shadow=shadow)
    assert done.returncode == 2 and "lacks models/e001.onnx" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    (copy / "manifest.json").unlink()
    with pytest.raises(UserError, match="not an hwnas bundle"):
        target.measure(copy, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_profile_bundle_cli_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    done = runner.invoke(app, ["profile", "--bundle", str(tmp_path / "b")])
    assert done.exit_code == 2 and "already exists" in done.output
