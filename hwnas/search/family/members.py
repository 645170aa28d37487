"""Reading the trained family: the architecture arch(s) = argmax_m α_m^e(s), its operation
counts, and named penalty vectors. A member's accuracy is
`hwnas.search.family.derive.member_accuracy`.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from hwnas.arch.genotypes import Genotype
from hwnas.arch.space import SearchSpace
from hwnas.search.supernet.latency_terms import NORMAL, REDUCE


def one_hot(logits: torch.Tensor) -> torch.Tensor:
    """The discrete architecture's edge weights: 1 on each edge's largest logit."""
    return nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)


def genotype(space: SearchSpace, logits: torch.Tensor) -> Genotype:
    """arch(s) as op names, from the hypernetwork's logits (cell types, edges, ops) at s."""
    picks = logits.argmax(dim=-1).tolist()
    return Genotype.from_picks(space, picks[NORMAL], picks[REDUCE])


def op_counts(space: SearchSpace, genotype: Genotype) -> dict[str, int]:
    """Edges per operation over both cell types (28 in all for the paper's cells)."""
    names = genotype.normal + genotype.reduce
    return {op: names.count(op) for op in space.ops}


def penalty_on(space: SearchSpace, op: str, penalty: float = 0.7) -> torch.Tensor:
    """The paper's probe vector: `penalty` on `op`, the rest shared equally among the others."""
    k = len(space.ops)
    s = torch.full((k,), (1.0 - penalty) / (k - 1))
    s[space.ops.index(op)] = penalty
    return s


def uniform_penalty(space: SearchSpace) -> torch.Tensor:
    return torch.full((len(space.ops),), 1.0 / len(space.ops))


def simplex_grid(k: int, resolution: int) -> torch.Tensor:
    """Every point of Δ^{k-1} whose coordinates are multiples of 1/resolution, (N, k)."""
    points = [p for p in itertools.product(range(resolution + 1), repeat=k)
              if sum(p) == resolution]
    return torch.tensor(points, dtype=torch.float32) / resolution
