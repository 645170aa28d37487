"""Whole networks measured the way a deployed model runs, for calibration and validation
(`hwnas.arch.genotypes` draws which)."""

from __future__ import annotations

import torch

from hwnas.arch.genotypes import Genotype
from hwnas.arch.network import discrete_network
from hwnas.arch.space import SearchSpace
from hwnas.latency.measure.backends import Backend
from hwnas.latency.runner.timing import Timed


def network_inputs(space: SearchSpace, genotype: Genotype,
                   ) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The discrete network (fresh weights, eval mode) and a random input of the space's shape:
    what a backend measures as a whole network, and what a bundle exports."""
    generator = torch.Generator().manual_seed(0)
    network = discrete_network(space, genotype).eval()
    x = torch.randn(space.batch_size, space.input_channels, space.input_size, space.input_size,
                    generator=generator, dtype=getattr(torch, space.dtype))
    return network.to(x.dtype), (x,)


def prepare_network(backend: Backend, space: SearchSpace, genotype: Genotype) -> Timed:
    """The whole network ready to time on `backend`."""
    return backend.prepare_module(*network_inputs(space, genotype))
