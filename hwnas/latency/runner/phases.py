"""Where a profile's time goes: wall seconds summed per named phase, in this process.

Phases nest: a phase entered inside another is recorded as `outer / inner`, so the tally
reads as a tree (`onnxruntime entries / onnx export`). A child process's tally is added
under the phase that launched it. `hwnas profile` stores the tally in the table's metadata
(`profile_phases_s`) and `benchmarks/profile_repeatability.py` prints it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_totals: dict[str, float] = {}
_open: list[str] = []  # the phases entered and not yet left, outermost first


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the wall time of the `with` block to `name` (under the phases around it)."""
    _open.append(name)
    path = " / ".join(_open)
    start = time.perf_counter()
    try:
        yield
    finally:
        _open.pop()
        _totals[path] = _totals.get(path, 0.0) + time.perf_counter() - start


def add(seconds: Mapping[str, float]) -> None:
    """Add another process's tally under the phases open here."""
    for name, value in seconds.items():
        path = " / ".join([*_open, name])
        _totals[path] = _totals.get(path, 0.0) + value


def take() -> dict[str, float]:
    """The tally so far, which then starts again from nothing."""
    taken = dict(_totals)
    _totals.clear()
    return taken
