"""The supernet: the space's network with a mixed operation on every edge, either Σ_m γ_m o_m(x)
over every candidate (soft sampling) or the one sampled candidate o_m(x) times its
straight-through weight (hard sampling, GDAS: a step costs one op per edge, not all k)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.arch import ops
from hwnas.arch.network import Network
from hwnas.arch.space import CellPlan, SearchSpace


@dataclass(frozen=True)
class SampledOp:
    """One edge's sampled operation: its index and its weight (value 1, gradient to logits)."""

    index: int
    weight: torch.Tensor  # a 0-d tensor


@dataclass(frozen=True)
class SampledOps:
    """A cell type's hard sample: straight-through weights (edges, ops), one-hot in value,
    and the sampled op of every edge as host ints (so an edge runs one op without a sync)."""

    weights: torch.Tensor
    picks: tuple[int, ...]

    def __getitem__(self, edge: int) -> SampledOp:
        return SampledOp(self.picks[edge], self.weights[edge, self.picks[edge]])


def hard_sample(gamma: torch.Tensor) -> list[SampledOps]:
    """Per cell type of γ (types, edges, ops): each edge's argmax op, with straight-through
    weights one_hot + (γ − γ.detach()): exactly one-hot forward, ∂/∂γ backward (GDAS)."""
    index = gamma.argmax(dim=-1)
    weights = F.one_hot(index, gamma.shape[-1]).to(gamma.dtype) + (gamma - gamma.detach())
    picks = index.tolist()  # the hard step's one host sync: which op each edge runs
    return [SampledOps(w, tuple(p)) for w, p in zip(weights, picks, strict=True)]


class MixedOp(nn.Module):
    """Every candidate operation of the space on one edge; which run depends on the weights."""

    def __init__(self, names: tuple[str, ...], channels: int, stride: int) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(ops.make_op(name, channels, stride) for name in names)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | SampledOp) -> torch.Tensor:
        """`weights` (ops,) mixes every candidate; a SampledOp runs only the sampled one."""
        if isinstance(weights, SampledOp):
            return weights.weight * self.candidates[weights.index](x)
        return sum(weights[m] * op(x) for m, op in enumerate(self.candidates))


def build_supernet(space: SearchSpace) -> Network:
    """The shared-weight network; call it as `net(x, normal_weights, reduce_weights)` with
    (edges, ops) tensors (soft) or SampledOps (hard)."""

    def make_edge(plan: CellPlan, index: int, edge: tuple[int, int]) -> nn.Module:
        return MixedOp(space.ops, plan.channels, plan.edge_stride(edge))

    return Network(space, make_edge)
