"""The supernet: the space's network with a mixed operation, Σ_m γ_m o_m(x), on every edge."""

from __future__ import annotations

import torch
from torch import nn

from latency import ops
from latency.network import Network
from latency.space import CellPlan, SearchSpace


class MixedOp(nn.Module):
    """Every candidate operation of the space on one edge, summed with weights γ (ops,)."""

    def __init__(self, names: tuple[str, ...], channels: int, stride: int) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(ops.make_op(name, channels, stride) for name in names)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(weights[m] * op(x) for m, op in enumerate(self.candidates))  # type: ignore[return-value]


def build_supernet(space: SearchSpace) -> Network:
    """The shared-weight network; call it as `net(x, normal_weights, reduce_weights)`."""

    def make_edge(plan: CellPlan, index: int, edge: tuple[int, int]) -> nn.Module:
        return MixedOp(space.ops, plan.channels, plan.edge_stride(edge))

    return Network(space, make_edge)
