"""Backends behind one protocol: `prepare(key) -> Timed`, a zero-argument callable to time.

A backend is built for one device and thread count; `make_backend` raises
BackendUnavailable (the caller skips that backend with a warning) when its runtime or
execution provider is missing on this machine.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from hwnas.arch.keys import EntryKey
from hwnas.errors import UserError
from hwnas.latency.runner.timing import Timed

BACKENDS = ("torch", "onnxruntime")


class BackendUnavailable(Exception):
    """This backend cannot run on this machine; the message says what is missing."""


class Backend(Protocol):
    name: str
    device: str

    def prepare(self, key: EntryKey) -> Timed:
        """The entry's module built, loaded and ready to call at the key's shape."""
        ...

    def prepare_module(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Timed:
        """Any module (a whole network) ready to call, run the way this backend deploys it."""
        ...


def parse_device(device: str) -> str:
    """Check `cpu`, `cuda` or `cuda:N` against this machine; returns the canonical name."""
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        index_text = device.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise UserError(f"bad device {device!r}: use cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA GPU is visible to PyTorch here; "
                            f"use --device cpu")
        index = int(index_text)
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                            f"device(s) here; use cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return f"cuda:{index}"
    raise UserError(f"unknown device {device!r}: use cpu, cuda or cuda:N")


def make_backend(name: str, device: str, threads: int) -> Backend:
    """A backend by name; UserError for an unknown name, BackendUnavailable when missing."""
    if name == "torch":
        from hwnas.latency.measure.backends.torch_backend import TorchBackend

        return TorchBackend(device, threads)
    if name == "onnxruntime":
        from hwnas.latency.measure.backends.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(device, threads)
    raise UserError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model (latency/machine.py)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from hwnas.latency.runner.machine import cpu_model

    return cpu_model()
