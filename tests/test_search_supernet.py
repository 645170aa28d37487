"""The supernet: a mixed op over the space's registry on every edge of latency/'s Network."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hwnas.arch.genotypes import Genotype
from hwnas.arch.network import Network
from hwnas.arch.space import PRESETS, SearchSpace
from hwnas.search.family.derive import inherit
from hwnas.search.supernet.mixed_network import MixedOp, build_supernet, hard_sample


@pytest.mark.parametrize("preset", list(PRESETS.values()), ids=lambda s: s.name)
def test_supernet_maps_images_to_class_scores(preset: SearchSpace) -> None:
    space = dataclasses.replace(preset, channels=4, input_size=8)  # every op, small shapes
    torch.manual_seed(0)
    net = build_supernet(space)
    assert isinstance(net, Network)
    weights = torch.softmax(torch.randn(2, space.edges_per_cell, len(space.ops)), dim=-1)
    x = torch.randn(2, space.input_channels, space.input_size, space.input_size)
    assert net(x, weights[0], weights[1]).shape == (2, space.classes)
    edges = [m for m in net.modules() if isinstance(m, MixedOp)]
    assert len(edges) == space.cells * space.edges_per_cell
    assert all(len(edge.candidates) == len(space.ops) for edge in edges)


@pytest.mark.parametrize("stride", [1, 2])
def test_one_hot_weights_select_one_operation(stride: int) -> None:
    torch.manual_seed(0)
    ops = PRESETS["exp2"].ops
    mixed = MixedOp(ops, channels=4, stride=stride).eval()
    x = torch.randn(2, 4, 8, 8)
    for m, op in enumerate(mixed.candidates):
        torch.testing.assert_close(mixed(x, torch.eye(len(ops))[m]), op(x))



@pytest.mark.parametrize("preset", ["exp1", "exp2"])
def test_hard_forward_is_the_discrete_network_of_the_sampled_genotype(preset: str) -> None:
    """Same weights (inherited from the supernet), same images: the same class scores, and
    the straight-through weights are exactly one-hot."""
    space = dataclasses.replace(PRESETS[preset], channels=4, input_size=8)
    torch.manual_seed(0)
    supernet = build_supernet(space)
    gamma = torch.softmax(torch.randn(2, space.edges_per_cell, len(space.ops)), dim=-1)
    normal, reduce = hard_sample(gamma)
    genotype = Genotype.from_picks(space, normal.picks, reduce.picks)
    assert normal.picks == tuple(gamma[0].argmax(dim=-1).tolist())
    assert torch.equal(normal.weights, torch.eye(len(space.ops))[list(normal.picks)])
    x = torch.randn(4, space.input_channels, space.input_size, space.input_size)
    discrete = inherit(space, genotype, supernet)
    torch.testing.assert_close(supernet(x, normal, reduce), discrete(x), rtol=0, atol=0)
