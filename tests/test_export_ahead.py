"""ONNX models exported ahead in their own process (hwnas.latency.measure.export_ahead) and
measured from
the bytes, in a child and in the profile's own process."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import time

import onnx
import torch
from conftest import TINY_SPACE

from hwnas.arch.genotypes import random_genotype
from hwnas.arch.space import enumerate_entries
from hwnas.latency.measure.backends import make_backend
from hwnas.latency.measure.export_ahead import ExportAhead, spare_core
from hwnas.latency.measure.fresh_networks import NetworkTask, host_processes
from hwnas.latency.runner import phases
from hwnas.latency.runner.forkserver import measure_fresh
from hwnas.latency.runner.timing import TimingSettings

QUICK = TimingSettings(warmup_s=0.002, block_s=0.0005, min_calls=3, max_calls=20,
                       min_rounds=2, max_rounds=3)


def test_the_exporting_process_answers_every_item_networks_first() -> None:
    entry = enumerate_entries(TINY_SPACE)[0]
    network = random_genotype(TINY_SPACE, torch.Generator().manual_seed(0))
    done = subprocess.run([sys.executable, "-m", "hwnas.latency.measure.export_ahead"],
                          input=pickle.dumps((TINY_SPACE, [entry, network])),
                          capture_output=True, check=True)
    stream = io.BytesIO(done.stdout)
    answers = [pickle.load(stream), pickle.load(stream)]
    assert [index for index, _ in answers] == [1, 0]
    for _, model in answers:
        onnx.checker.check_model(onnx.load_from_string(model))


def test_models_made_ahead_are_measured_without_exporting_again() -> None:
    entry = enumerate_entries(TINY_SPACE)[0]
    network = random_genotype(TINY_SPACE, torch.Generator().manual_seed(1))
    ahead = ExportAhead(TINY_SPACE, [entry, network])
    ahead._process.wait(timeout=300)  # a profile never waits; here every model must come
    models = ahead.take()
    assert set(models) == {entry, network}
    backend = make_backend("onnxruntime", "cpu", 1)
    backend.exported = models  # type: ignore[attr-defined]
    phases.take()
    timed = backend.prepare(entry)
    timed.start(QUICK, time.perf_counter)
    assert all(ms > 0 for ms in timed.block(QUICK, time.perf_counter))
    task = NetworkTask("onnxruntime", "cpu", 1, TINY_SPACE, network, models[network])
    with host_processes() as fresh:
        measured = measure_fresh(fresh, {0: task}, QUICK)
    assert measured[0].latency_ms > 0
    assert not [name for name in phases.take() if "onnx export" in name]


def test_taking_early_stops_the_process_and_keeps_what_came() -> None:
    entries = enumerate_entries(TINY_SPACE)
    ahead = ExportAhead(TINY_SPACE, entries)
    models = ahead.take()  # at once: most likely nothing yet
    assert set(models) <= set(entries)
    assert ahead._process.returncode is not None
    assert spare_core(0) and not spare_core(10_000)
