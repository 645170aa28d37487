"""Peak memory per epoch: the CPU's high-water mark restarts at each epoch where Linux lets
it, so an epoch after a bigger one reports its own peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.search.peak_memory import CLEAR_REFS, peak_mb, reset_peak

CPU = torch.device("cpu")


@pytest.mark.skipif(not CLEAR_REFS.exists(), reason="needs Linux's /proc/self/clear_refs")
def test_the_cpu_peak_restarts_at_each_reset() -> None:
    reset_peak(CPU)
    block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    big = peak_mb(CPU)
    del block
    reset_peak(CPU)
    small = peak_mb(CPU)
    assert 0 < small < big - 150


def test_without_proc_the_lifetime_peak_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import hwnas.search.peak_memory as peak_memory

    monkeypatch.setattr(peak_memory, "CLEAR_REFS", Path("/nonexistent/clear_refs"))
    monkeypatch.setattr(peak_memory, "STATUS", Path("/nonexistent/status"))
    reset_peak(CPU)
    assert peak_mb(CPU) > 0
