"""Whole networks measured the way a deployed model runs, for calibration and validation."""

from __future__ import annotations

import numpy as np
import torch

from hwnas.arch.network import Genotype, discrete_network
from hwnas.arch.space import SearchSpace
from hwnas.latency.measure.backends import Backend
from hwnas.latency.model.predict import mixture_genotypes
from hwnas.latency.runner.timing import Timed

# Calibration and validation draw architectures from separate streams of the same seed.
CALIBRATION_STREAM = 0xCA11B
VALIDATION_STREAM = 0x7A11D


def calibration_genotypes(space: SearchSpace, count: int, seed: int) -> list[Genotype]:
    """The networks `hwnas profile` calibrates on: one per op, then varied mixtures."""
    rng = np.random.default_rng([seed, CALIBRATION_STREAM])
    return mixture_genotypes(space, count, rng, include_pure=True)


def validation_genotypes(space: SearchSpace, count: int, seed: int,
                         exclude: list[Genotype]) -> list[Genotype]:
    """`count` varied architectures, none of them one that calibration used."""
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    found: list[Genotype] = []
    while len(found) < count:
        for genotype in mixture_genotypes(space, count, rng, include_pure=False):
            if genotype not in exclude and genotype not in found and len(found) < count:
                found.append(genotype)
    return found


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
