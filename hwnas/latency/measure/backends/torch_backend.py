"""PyTorch eager: each call is one forward under inference mode, as a deployed model runs."""

from __future__ import annotations

import torch
from torch import nn

from hwnas.arch.keys import EntryKey
from hwnas.latency.measure.entries import build
from hwnas.latency.runner.timing import Timed


class TorchBackend:
    name = "torch"

    def __init__(self, device: str, threads: int) -> None:
        self.device = device
        torch.set_num_threads(threads)

    def prepare(self, key: EntryKey) -> Timed:
        module, inputs = build(key)
        return self.prepare_module(module, inputs)

    def prepare_module(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Timed:
        module = module.to(self.device).eval()
        inputs = tuple(x.to(self.device) for x in inputs)

        def call() -> torch.Tensor:
            with torch.inference_mode():
                return module(*inputs)

        if self.device.startswith("cuda"):
            device = torch.device(self.device)
            return Timed(call, sync=lambda: torch.cuda.synchronize(device))
        return Timed(call)
