"""Timing with a fake clock: known costs give exact figures, bursts do not, order interleaves."""

from __future__ import annotations

import gc

import pytest

from hwnas.latency.runner.timing import (
    Measurement,
    Timed,
    TimingSettings,
    measure_interleaved,
    time_block,
    warm_up,
)

FAST = TimingSettings(warmup_s=0.001, block_s=0.0005, min_calls=5, max_calls=50,
                      min_rounds=3, max_rounds=8, rel_tol=0.02)


class FakeClock:
    """Seconds that advance only when a fake entry runs."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_entry(clock: FakeClock, cost_s: float, log: list[str] | None = None,
               name: str = "", burst_every: int = 0) -> Timed:
    """Each call costs `cost_s`; every `burst_every`-th call costs ten times more."""
    calls = [0]

    def call() -> None:
        calls[0] += 1
        slow = burst_every and calls[0] % burst_every == 0
        clock.now += cost_s * (10 if slow else 1)
        if log is not None:
            log.append(name)

    return Timed(call)


def test_known_costs_are_measured_exactly() -> None:
    clock = FakeClock()
    entries = {"a": fake_entry(clock, 100e-6), "b": fake_entry(clock, 20e-6)}
    results = measure_interleaved(entries, FAST, clock=clock)
    assert results["a"].latency_ms == pytest.approx(0.1)
    assert results["b"].latency_ms == pytest.approx(0.02)
    assert results["a"].rounds == FAST.min_rounds  # agreed at once: no extra rounds
    assert results["a"].is_stable(FAST.rel_tol)


def test_block_size_follows_the_warm_up_estimate() -> None:
    clock = FakeClock()
    timed = fake_entry(clock, 50e-6)
    warm_up(timed, FAST, clock)
    assert timed.calls_per_block == 10  # 0.5 ms / 50 µs
    slow = fake_entry(clock, 1e-3)
    warm_up(slow, FAST, clock)
    assert slow.calls_per_block == FAST.min_calls


def test_interference_bursts_do_not_move_the_statistic() -> None:
    clock = FakeClock()
    # one call in 7 is ten times slower: the mean is inflated by 2.3x, the figure is not
    entries = {"noisy": fake_entry(clock, 40e-6, burst_every=7)}
    result = measure_interleaved(entries, FAST, clock=clock)["noisy"]
    assert result.latency_ms == pytest.approx(0.04)
    assert sum(result.samples_ms) / result.n > 1.5 * result.latency_ms


def test_rounds_interleave_entries() -> None:
    clock, log = FakeClock(), []
    entries = {name: fake_entry(clock, 1e-4, log, name) for name in "abc"}
    settings = TimingSettings(warmup_s=0.0, block_s=0.0, min_calls=1, max_calls=1,
                              min_rounds=3, max_rounds=3)
    measure_interleaved(entries, settings, clock=clock, seed=1)
    timed = log[6:]  # after two warm-up calls per entry
    rounds = [set(timed[i:i + 3]) for i in range(0, 9, 3)]
    assert rounds == [{"a", "b", "c"}] * 3


def test_disagreeing_blocks_run_to_the_cap_and_are_flagged() -> None:
    clock = FakeClock()
    cost = [1e-4]

    def drifting() -> None:
        clock.now += cost[0]
        cost[0] *= 0.99  # each block ~5% faster than the last: blocks never agree

    result = measure_interleaved({"drift": Timed(drifting)}, FAST, clock=clock)["drift"]
    assert result.rounds == FAST.max_rounds
    assert not result.is_stable(FAST.rel_tol)


def test_kept_blocks_count_towards_the_rounds() -> None:
    clock = FakeClock()
    kept = {"a": Measurement([[0.1] * 5, [0.1] * 5])}
    blocks: list[str] = []
    results = measure_interleaved({"a": fake_entry(clock, 100e-6)}, FAST, kept,
                                  on_block=lambda key, block: blocks.append(key), clock=clock)
    assert results["a"].rounds == FAST.min_rounds
    assert blocks == ["a"]  # only the missing third block was timed


def test_measurement_statistics() -> None:
    m = Measurement([[1.0, 2.0, 3.0], [0.5, 0.6, 0.7], [4.0, 4.0, 4.0]])
    assert m.block_medians_ms == [2.0, 0.6, 4.0]
    assert m.latency_ms == 0.6
    assert m.n == 9 and m.rounds == 3
    assert m.median_ms == 2.0
    assert not m.is_stable(0.1)
    assert Measurement([[1.0], [1.01]]).is_stable(0.02)


def test_the_garbage_collector_is_paused_during_a_block_and_restored() -> None:
    states: list[bool] = []
    timed = Timed(lambda: states.append(gc.isenabled()), calls_per_block=FAST.min_calls)
    assert gc.isenabled()
    time_block(timed, FAST)
    assert states == [False] * FAST.min_calls
    assert gc.isenabled()
