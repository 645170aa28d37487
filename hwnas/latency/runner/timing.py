"""Interleaved, adaptive timing with a robust statistic and an injectable clock.

Every entry is timed in rounds; a round visits all unfinished entries in a shuffled order and
times one block of calls for each, so bursts of interference from other tenants spread over
all entries instead of landing on one. An entry's figure is the minimum over rounds of its
block medians: interference only ever adds time, so the quietest block is the most
repeatable estimate (DESIGN.md: the plain median of 100 runs moved 15% between repeats,
min-of-block-medians 7%). An entry is done when its two lowest block medians agree within
`rel_tol`, or at `max_rounds` (then flagged unstable).
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

Clock = Callable[[], float]  # seconds, monotonic


@dataclass(frozen=True)
class TimingSettings:
    """How long and how hard to measure each entry."""

    warmup_s: float = 0.02  # spent calling an entry before its first timed block
    block_s: float = 0.02  # target length of one timed block
    # Calls per block, at least. Three, not five: a whole torch network takes 5–8 ms on a
    # 2-core CPU, so five calls made its blocks 2× `block_s` and the profile's whole
    # networks 70% of its time (docs/profiling.md).
    min_calls: int = 3
    max_calls: int = 200  # calls per block, at most
    min_rounds: int = 6  # blocks before an entry may stop
    max_rounds: int = 16  # blocks at most; an entry still disagreeing then is unstable
    rel_tol: float = 0.02  # the two lowest block medians must agree this closely
    group: int = 1  # calls per timed sample (CUDA: several calls between two syncs)

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class Measurement:
    """Raw per-sample times of one entry, block by block, with the statistics on demand."""

    blocks_ms: list[list[float]] = field(default_factory=list)

    @property
    def block_medians_ms(self) -> list[float]:
        return [statistics.median(block) for block in self.blocks_ms]

    @property
    def latency_ms(self) -> float:
        """The table statistic: the lowest block median."""
        return min(self.block_medians_ms)

    @property
    def samples_ms(self) -> list[float]:
        return [t for block in self.blocks_ms for t in block]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def iqr_ms(self) -> float:
        samples = self.samples_ms
        if len(samples) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(samples, n=4)
        return q3 - q1

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def rounds(self) -> int:
        return len(self.blocks_ms)

    def is_stable(self, rel_tol: float) -> bool:
        lowest = sorted(self.block_medians_ms)[:2]
        return len(lowest) == 2 and lowest[1] - lowest[0] <= rel_tol * lowest[0]

    def done(self, settings: TimingSettings) -> bool:
        if self.rounds >= settings.max_rounds:
            return True
        return self.rounds >= settings.min_rounds and self.is_stable(settings.rel_tol)


class Blocked(Protocol):
    """What `measure_interleaved` times: a local `Timed`, or a network in another process."""

    def start(self, settings: TimingSettings, clock: Clock) -> None:
        """Warm up and size the blocks, before the first block."""
        ...

    def block(self, settings: TimingSettings, clock: Clock) -> list[float]:
        """One timed block: per-sample times in ms."""
        ...


@dataclass
class Timed:
    """A callable ready to time: `call()` runs once; `sync()` waits for the device."""

    call: Callable[[], object]
    sync: Callable[[], None] = lambda: None
    calls_per_block: int = 0  # set by warm-up

    def start(self, settings: TimingSettings, clock: Clock) -> None:
        warm_up(self, settings, clock)

    def block(self, settings: TimingSettings, clock: Clock) -> list[float]:
        return time_block(self, settings, clock)


def warm_up(timed: Timed, settings: TimingSettings, clock: Clock = time.perf_counter) -> None:
    """Run until `warmup_s` has passed (at least twice), and size the blocks from it."""
    calls = 0
    start = clock()
    while True:
        timed.call()
        calls += 1
        timed.sync()
        elapsed = clock() - start
        if calls >= 2 and elapsed >= settings.warmup_s:
            break
    per_call_s = max(elapsed / calls, 1e-9)
    wanted = round(settings.block_s / per_call_s)
    timed.calls_per_block = max(settings.min_calls, min(settings.max_calls, wanted))


def time_block(timed: Timed, settings: TimingSettings,
               clock: Clock = time.perf_counter) -> list[float]:
    """One block: per-sample times in ms, each sample the mean of `group` calls.

    The garbage collector is paused during the block (as `timeit` does): its pauses depend on
    how many objects the whole process holds, not on the entry, and would make the same
    network slower inside a profile that holds a hundred others than in a deployed process.
    """
    samples = []
    group = settings.group
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(max(1, timed.calls_per_block // group)):
            timed.sync()
            start = clock()
            for _ in range(group):
                timed.call()
            timed.sync()
            samples.append((clock() - start) * 1e3 / group)
    finally:
        if collecting:
            gc.enable()
    return samples


def measure_interleaved(
    entries: Mapping[Hashable, Blocked],
    settings: TimingSettings,
    measured: dict[Hashable, Measurement] | None = None,
    on_block: Callable[[Hashable, list[float]], None] = lambda key, block: None,
    clock: Clock = time.perf_counter,
    seed: int = 0,
) -> dict[Hashable, Measurement]:
    """Time every entry in interleaved rounds until each is done.

    `measured` holds blocks kept from an earlier, interrupted run (resume); `on_block` is
    called after every block, so the caller can persist it before the next one starts.
    """
    results = {key: (measured or {}).get(key, Measurement()) for key in entries}
    rng = random.Random(seed)
    for key in pending(results, settings):
        entries[key].start(settings, clock)
    while todo := pending(results, settings):
        rng.shuffle(todo)
        for key in todo:
            block = entries[key].block(settings, clock)
            results[key].blocks_ms.append(block)
            on_block(key, block)
    return results


def pending(results: dict[Hashable, Measurement], settings: TimingSettings) -> list[Hashable]:
    return [key for key, m in results.items() if not m.done(settings)]


def total_blocks(results: Iterable[Measurement], settings: TimingSettings) -> int:
    """An upper bound on the blocks still to time (for progress bars)."""
    return sum(settings.max_rounds - m.rounds for m in results if not m.done(settings))
