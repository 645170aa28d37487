"""The network the space describes: stem → cells → head, with the edge modules left pluggable.

The same Cell and Network serve the searched supernet (a mixed op on every edge), the
discrete architecture a genotype names, and the whole networks that calibrate and validate
latency prediction, so what is measured, trained and exported is one piece of code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, cast

import torch
from torch import nn

from hwnas.arch import ops
from hwnas.arch.genotypes import Genotype
from hwnas.arch.space import CellPlan, SearchSpace, cell_edges, cell_plans

# (cell plan, edge index within the cell, edge (i, j)) -> the module on that edge.
EdgeFactory = Callable[[CellPlan, int, tuple[int, int]], nn.Module]


class EdgeWeights(Protocol):
    """What a cell hands its edge modules, indexed by edge: an (edges × ops) tensor of mixing
    weights, or the search's per-edge samples."""

    def __getitem__(self, edge: int, /) -> object: ...


class Cell(nn.Module):
    """A DARTS cell: two preprocessed inputs, `nodes` intermediate nodes, concatenated output."""

    def __init__(self, space: SearchSpace, plan: CellPlan, make_edge: EdgeFactory) -> None:
        super().__init__()
        self.plan = plan
        self.nodes = space.nodes
        self.preprocess0 = ops.preprocess(plan.c_prev_prev, plan.channels, plan.reduction_prev)
        self.preprocess1 = ops.preprocess(plan.c_prev, plan.channels, reduce=False)
        self.edges = nn.ModuleList(
            make_edge(plan, index, edge) for index, edge in enumerate(cell_edges(space.nodes)))
        self.node_sum = ops.NodeSum()
        self.concat = ops.Concat()

    def forward(self, s0: torch.Tensor, s1: torch.Tensor,
                edge_weights: EdgeWeights | None = None) -> torch.Tensor:
        """`edge_weights[e]` is passed to edge module e when given (mixed ops)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        index = 0
        for _ in range(self.nodes):
            inputs = []
            for state in states:
                edge = self.edges[index]
                inputs.append(edge(state) if edge_weights is None
                              else edge(state, edge_weights[index]))
                index += 1
            states.append(self.node_sum(*inputs))
        return self.concat(*states[2:])


class Network(nn.Module):
    """Stem, the space's cells, global pool and linear head."""

    def __init__(self, space: SearchSpace, make_edge: EdgeFactory) -> None:
        super().__init__()
        self.space = space
        self.stem = ops.stem(space.input_channels, space.stem_multiplier * space.channels)
        plans = cell_plans(space)
        self.cells = nn.ModuleList(Cell(space, plan, make_edge) for plan in plans)
        self.head = ops.Head(plans[-1].c_out, space.classes)

    def forward(self, x: torch.Tensor, normal_weights: EdgeWeights | None = None,
                reduce_weights: EdgeWeights | None = None) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in cast("Iterable[Cell]", self.cells):  # ModuleList yields plain Modules
            weights = reduce_weights if cell.plan.reduction else normal_weights
            s0, s1 = s1, cell(s0, s1, weights)
        return self.head(s1)


def discrete_network(space: SearchSpace, genotype: Genotype) -> Network:
    """The network with the genotype's one operation on every edge."""
    genotype.check(space)

    def make_edge(plan: CellPlan, index: int, edge: tuple[int, int]) -> nn.Module:
        return ops.make_op(genotype.for_cell(plan)[index], plan.channels, plan.edge_stride(edge))

    return Network(space, make_edge)
