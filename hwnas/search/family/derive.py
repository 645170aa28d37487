"""A family member as a standalone network: the discrete architecture with the supernet's
weights for its chosen ops, batch-norm statistics recomputed for it, and its accuracy.

The supernet's running batch-norm statistics average over every architecture it sampled and
fit none of them, so each member's statistics are re-estimated on a few training batches
before it is evaluated (as one-shot NAS tools do). The network evaluated is the network
exported: the accuracy `pick` reports is the exported model's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from hwnas.arch.genotypes import Genotype
from hwnas.arch.network import Network, discrete_network
from hwnas.arch.space import SearchSpace, cell_plans
from hwnas.search import distributed
from hwnas.search.data.dataset import AnySplit, Dataset

RECALIBRATION_BATCHES = 4  # training batches that re-estimate batch-norm statistics
RECALIBRATION_BATCH_SIZE = 64
EVAL_BATCH = 256

_EDGE = re.compile(r"^(cells\.(\d+)\.edges\.(\d+)\.)(.*)$")


def inherit(space: SearchSpace, genotype: Genotype, supernet: Network) -> Network:
    """The discrete network of `genotype`, every weight copied from the supernet: shared
    parts by name, each edge from the candidate op the genotype chose there."""
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten below;
        network = discrete_network(space, genotype)  # leave a training run's RNG alone
    plans = cell_plans(space)
    source = supernet.state_dict()
    state = {}
    for name in network.state_dict():
        match = _EDGE.match(name)
        if match is None:
            state[name] = source[name]
            continue
        prefix, cell, edge, rest = match.groups()
        choice = space.ops.index(genotype.for_cell(plans[int(cell)])[int(edge)])
        state[name] = source[f"{prefix}candidates.{choice}.{rest}"]
    network.load_state_dict(state)
    return network.to(next(supernet.parameters()).device)


@contextmanager
def evaluation_layout(network: nn.Module, device: torch.device) -> Iterator[torch.memory_format]:
    """Run `network` in the layout that evaluates it fastest (channels-last on the CPU, where
    pooling and depthwise convolutions are much faster in it: the same maths), and hand it
    back in the usual layout, as it is exported and trained."""
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    network.to(memory_format=layout)
    try:
        yield layout
    finally:
        network.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def recalibrate_batch_norm(network: nn.Module, train: AnySplit, seed: int = 0) -> None:
    """Replace every running mean and variance with the average over a few training batches."""
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    network.train()
    generator = torch.Generator().manual_seed(seed)
    with evaluation_layout(network, train.device) as layout:
        for index, (images, _) in enumerate(train.batches(RECALIBRATION_BATCH_SIZE,
                                                          generator)):
            if index == RECALIBRATION_BATCHES:
                break
            network(images.contiguous(memory_format=layout))
    network.eval()


@torch.no_grad()
def accuracy(network: nn.Module, split: AnySplit) -> float:
    """Share of `split` the network (in eval mode) classifies right; under torchrun each rank
    counts its shard of every batch and the counts are summed."""
    network.eval()
    correct = torch.zeros((), dtype=torch.long, device=split.device)
    with evaluation_layout(network, split.device) as layout:
        for images, labels in split.batches(EVAL_BATCH, rank=distributed.rank(),
                                            world=distributed.world()):
            outputs = network(images.contiguous(memory_format=layout))
            correct += (outputs.argmax(dim=1) == labels).sum()
    return int(distributed.sum_across(correct)) / len(split)


def member(space: SearchSpace, genotype: Genotype, supernet: Network, train: AnySplit) -> Network:
    """The exportable member: inherited weights, batch-norm statistics from `train`."""
    network = inherit(space, genotype, supernet)
    recalibrate_batch_norm(network, train)
    return network


def member_network(space: SearchSpace, genotype: Genotype, supernet: Network,
                   data: Dataset) -> tuple[Network, float]:
    """The exportable member and its validation accuracy: the one definition of a member's
    accuracy, used by `pick` and by the per-epoch figures of `search` alike."""
    network = member(space, genotype, supernet, data.train)
    return network, accuracy(network, data.val)


def member_accuracy(space: SearchSpace, genotype: Genotype, supernet: Network,
                    data: Dataset) -> float:
    return member_network(space, genotype, supernet, data)[1]


def parameter_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())
