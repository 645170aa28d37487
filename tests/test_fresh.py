"""Whole networks measured each in its own process: the fork server
(hwnas.latency.runner.forkserver) and the host's networks it runs
(hwnas.latency.measure.fresh_networks)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
from conftest import TINY_SPACE

from hwnas.arch.genotypes import Genotype, random_genotype
from hwnas.errors import UserError
from hwnas.latency.measure.fresh_networks import (
    NetworkTask,
    deployed_latency_ms,
    host_processes,
    launches,
)
from hwnas.latency.runner.forkserver import FreshProcesses, measure_fresh
from hwnas.latency.runner.timing import Clock, TimingSettings

QUICK = TimingSettings(warmup_s=0.002, block_s=0.0005, min_calls=3, max_calls=20,
                       min_rounds=2, max_rounds=3)


def genotypes(count: int) -> list[Genotype]:
    generator = torch.Generator().manual_seed(0)
    return [random_genotype(TINY_SPACE, generator) for _ in range(count)]


class PidReporter:
    """Timed like a network, but every sample it reports is the id of its process."""

    def start(self, settings: TimingSettings, clock: Clock) -> None:
        pass

    def block(self, settings: TimingSettings, clock: Clock) -> list[float]:
        return [float(os.getpid())]


@dataclass(frozen=True)
class PidTask:
    """A task whose child reports its process id (the server imports this module)."""

    def build(self) -> PidReporter:
        return PidReporter()


def test_each_network_is_built_and_timed_in_its_own_child_process() -> None:
    with FreshProcesses(preload=(__name__,)) as fresh:
        measured = measure_fresh(fresh, {key: PidTask() for key in range(3)}, QUICK)
        server = fresh._server.pid
    reported = {key: {t for block in m.blocks_ms for t in block} for key, m in measured.items()}
    assert all(len(pids) == 1 for pids in reported.values())  # every block: the same process
    children = {int(pids.pop()) for pids in reported.values()}
    assert len(children) == 3  # one process per network
    assert not children & {os.getpid(), server}  # neither this process nor the server


def test_host_networks_of_both_backends_are_timed_in_blocks() -> None:
    first, second = genotypes(2)
    tasks = {0: NetworkTask("torch", "cpu", 1, TINY_SPACE, first),
             1: NetworkTask("onnxruntime", "cpu", 1, TINY_SPACE, second)}
    with host_processes() as fresh:
        measured = measure_fresh(fresh, tasks, QUICK)
    assert set(measured) == {0, 1}
    for m in measured.values():
        assert QUICK.min_rounds <= m.rounds <= QUICK.max_rounds
        assert m.latency_ms > 0


def test_deployed_latency_is_one_median_per_network() -> None:
    nets = genotypes(2)
    with host_processes() as fresh:
        figures = deployed_latency_ms(fresh, "torch", "cpu", 1, TINY_SPACE, nets, QUICK)
    assert len(figures) == 2 and all(ms > 0 for ms in figures)
    assert launches("torch") == 3 and launches("onnxruntime") == 1


def test_a_failure_in_the_child_is_one_line_in_the_parent() -> None:
    task = NetworkTask("tensorrt", "cpu", 1, TINY_SPACE, genotypes(1)[0])
    with host_processes() as fresh, pytest.raises(UserError, match="unknown backend"):
        measure_fresh(fresh, {0: task}, QUICK)


def test_a_server_never_used_is_stopped_on_exit() -> None:
    """The server starts on entry (its imports overlap the caller's); unused, it is killed
    rather than waited for."""
    with host_processes() as fresh:
        assert measure_fresh(fresh, {}, QUICK) == {}
        server = fresh._server
        assert server.poll() is None
    assert server.returncode is not None
