"""Does a network run slower in a process that has built many other models?

    .venv/bin/python benchmarks/process_state.py [--networks 6] [--backend torch]

Measures the same networks three ways, with the table's timing statistic:
  fresh   each in its own new process (forked from a server that only imported the
          libraries), interleaved, the way a deployed model runs (twice, before and after
          the others; the lower of the two);
  crowded in this process, after building the modules a profile builds (every entry and the
          calibration networks), all still alive;
  freed   in this process, after those were released.
Prints each network's figures and the median ratio crowded/fresh and freed/fresh. A ratio
above 1 means a single long-lived measuring process overstates the deployed latency.
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Hashable

from hwnas.arch.genotypes import calibration_genotypes
from hwnas.arch.space import enumerate_entries, load_space
from hwnas.latency.measure.backends import make_backend
from hwnas.latency.measure.fresh_networks import NetworkTask, host_processes
from hwnas.latency.measure.networks import prepare_network
from hwnas.latency.runner.forkserver import measure_fresh
from hwnas.latency.runner.timing import TimingSettings, measure_interleaved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--space", default="exp1")
    args = parser.parse_args()
    space = load_space(args.space)
    settings = TimingSettings()
    genotypes = calibration_genotypes(space, 24, seed=5)[-args.networks:]
    tasks = {i: NetworkTask(args.backend, "cpu", 1, space, g) for i, g in enumerate(genotypes)}
    fresh = fresh_ms(tasks, settings)

    crowd = []
    for name in ("torch", "onnxruntime"):  # what a profile holds before it calibrates
        builder = make_backend(name, "cpu", 1)
        crowd += [builder.prepare(key) for key in enumerate_entries(space)]
        crowd += [prepare_network(builder, space, g) for g in calibration_genotypes(space, 24, 0)]
    backend = make_backend(args.backend, "cpu", 1)
    timed = {i: prepare_network(backend, space, g) for i, g in enumerate(genotypes)}
    crowded = [m.latency_ms for m in measure_interleaved(timed, settings).values()]
    again = fresh_ms(tasks, settings)
    fresh = [min(a, b) for a, b in zip(fresh, again, strict=True)]
    del crowd, timed
    gc.collect()
    timed = {i: prepare_network(backend, space, g) for i, g in enumerate(genotypes)}
    freed = [m.latency_ms for m in measure_interleaved(timed, settings).values()]

    print(f"{args.backend}, {args.space}: ms per network (fresh / crowded / freed)")
    for i in range(len(genotypes)):
        print(f"  network {i}: {fresh[i]:.3f} / {crowded[i]:.3f} / {freed[i]:.3f}")
    for name, values in (("crowded", crowded), ("freed", freed)):
        ratio = statistics.median(v / f for v, f in zip(values, fresh, strict=True))
        print(f"median {name}/fresh: {ratio:.3f}")


def fresh_ms(tasks: dict[Hashable, NetworkTask], settings: TimingSettings) -> list[float]:
    with host_processes() as fresh:
        return [m.latency_ms for m in measure_fresh(fresh, tasks, settings).values()]


if __name__ == "__main__":
    main()
