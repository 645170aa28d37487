"""The host's whole networks, each built and timed in its own new process: the tasks the
fork server (`hwnas.latency.runner.forkserver`) runs for `hwnas profile` and `validate`,
and what the server imports before forking them (torch, and ONNX Runtime's exporter)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwnas.latency.runner.forkserver import FreshProcesses, measure_fresh
from hwnas.latency.runner.timing import Blocked, TimingSettings

if TYPE_CHECKING:
    from hwnas.arch.genotypes import Genotype
    from hwnas.arch.space import SearchSpace

# What the host's server imports once: the backends and networks every child builds with,
# and ONNX Runtime's exporter (`preload_exporter`).
HOST_PRELOAD = ("hwnas.latency.measure.backends.torch_backend", "hwnas.latency.measure.networks",
                f"{__name__}:preload_exporter")


def launches(backend: str) -> int:
    """Processes each whole network is measured in; its latency is the median over them.

    Eager PyTorch runs the same network 4–24% apart in different processes even when they are
    measured interleaved in the same seconds (eight launches each of three exp1 networks on
    this 2-core CPU; 4–8% with address randomisation off, so memory layout is most of it):
    a deployed model's latency is a spread over launches, and one launch is a noisy sample
    of it. ONNX Runtime's launches agree within ~1%, so one suffices.
    """
    return 3 if backend == "torch" else 1


def host_processes() -> FreshProcesses:
    """A fork server for the host's networks (`NetworkTask`); use as a context manager."""
    return FreshProcesses(preload=HOST_PRELOAD)


def preload_exporter() -> None:
    """In the server: import ONNX Runtime's exporter when onnxruntime is installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    from hwnas.latency.measure.backends.onnx_backend import load_exporter

    load_exporter()


@dataclass(frozen=True)
class NetworkTask:
    """One whole network of the space to build in a child: everything it needs, picklable."""

    backend: str
    device: str
    threads: int
    space: SearchSpace
    genotype: Genotype
    onnx: bytes | None = None  # onnxruntime: the network exported ahead (export_ahead.py)

    def build(self) -> Blocked:
        from hwnas.latency.measure.backends import make_backend
        from hwnas.latency.measure.networks import network_inputs, prepare_network

        backend = make_backend(self.backend, self.device, self.threads)
        if self.onnx is not None:
            _, inputs = network_inputs(self.space, self.genotype)
            from hwnas.latency.measure.backends.onnx_backend import OnnxRuntimeBackend

            # only the onnxruntime backend takes a model exported ahead
            assert isinstance(backend, OnnxRuntimeBackend), self.backend
            return backend.prepare_onnx(self.onnx, inputs)
        return prepare_network(backend, self.space, self.genotype)


def deployed_latency_ms(fresh: FreshProcesses, backend: str, device: str, threads: int,
                        space: SearchSpace, genotypes: list[Genotype], settings: TimingSettings,
                        seed: int = 0,
                        on_block: Callable[[Hashable, list[float]], None] = lambda k, b: None,
                        ) -> list[float]:
    """Each genotype's latency as deployed: the median over `launches(backend)` processes."""
    tasks: dict[Hashable, NetworkTask] = {
        (index, launch): NetworkTask(backend, device, threads, space, genotype)
        for index, genotype in enumerate(genotypes) for launch in range(launches(backend))}
    measured = measure_fresh(fresh, tasks, settings, seed=seed, on_block=on_block)
    return [statistics.median(measured[(index, launch)].latency_ms
                              for launch in range(launches(backend)))
            for index in range(len(genotypes))]
