"""Peak memory of one epoch, metrics.csv's `peak_memory_mb` for `hwnas search` and `hwnas
train`: what a user looks at to choose a batch size.

On CUDA it is the most memory PyTorch's tensors held on the device (`max_memory_allocated`),
on the CPU the process's peak resident set size, both in MiB. Call `reset_peak` at the start
of the epoch and `peak_mb` at its end.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def reset_peak(device: torch.device) -> None:
    """Start measuring a new peak from what is held now."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: "5" sets the process's high-water mark (VmHWM) back to its current RSS
        CLEAR_REFS.write_text("5")
    except OSError:
        pass  # elsewhere (macOS, a kernel refusing it) `peak_mb` is the process's lifetime peak


def peak_mb(device: torch.device) -> float:
    """The peak since `reset_peak`, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    # No /proc: the lifetime peak, not the epoch's (it cannot be reset), in kB on Linux and
    # in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
