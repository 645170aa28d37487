"""Whole networks measured in their own processes (hwnas.latency.runner.forkserver)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_SPACE

from hwnas.arch.genotypes import Genotype, random_genotype
from hwnas.errors import UserError
from hwnas.latency.runner.forkserver import (
    FreshProcesses,
    NetworkTask,
    deployed_latency_ms,
    launches,
    measure_fresh,
)
from hwnas.latency.runner.timing import TimingSettings

QUICK = TimingSettings(warmup_s=0.002, block_s=0.0005, min_calls=3, max_calls=20,
                       min_rounds=2, max_rounds=3)


def genotypes(count: int) -> list[Genotype]:
    generator = torch.Generator().manual_seed(0)
    return [random_genotype(TINY_SPACE, generator) for _ in range(count)]


def test_each_network_is_timed_in_blocks_by_its_own_process() -> None:
    first, second = genotypes(2)
    tasks = {0: NetworkTask("torch", "cpu", 1, TINY_SPACE, first),
             1: NetworkTask("onnxruntime", "cpu", 1, TINY_SPACE, second)}
    with FreshProcesses() as fresh:
        measured = measure_fresh(fresh, tasks, QUICK)
    assert set(measured) == {0, 1}
    for m in measured.values():
        assert QUICK.min_rounds <= m.rounds <= QUICK.max_rounds
        assert m.latency_ms > 0


def test_deployed_latency_is_one_median_per_network() -> None:
    nets = genotypes(2)
    with FreshProcesses() as fresh:
        figures = deployed_latency_ms(fresh, "torch", "cpu", 1, TINY_SPACE, nets, QUICK)
    assert len(figures) == 2 and all(ms > 0 for ms in figures)
    assert launches("torch") == 3 and launches("onnxruntime") == 1


def test_a_failure_in_the_child_is_one_line_in_the_parent() -> None:
    task = NetworkTask("tensorrt", "cpu", 1, TINY_SPACE, genotypes(1)[0])
    with FreshProcesses() as fresh, pytest.raises(UserError, match="unknown backend"):
        measure_fresh(fresh, {0: task}, QUICK)


def test_a_server_never_used_is_stopped_on_exit() -> None:
    """The server starts on entry (its imports overlap the caller's); unused, it is killed
    rather than waited for."""
    with FreshProcesses() as fresh:
        assert measure_fresh(fresh, {}, QUICK) == {}
        server = fresh._server
        assert server.poll() is None
    assert server.returncode is not None
