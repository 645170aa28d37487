"""The hypernetwork u_a(s): edge logits as an RBF interpolation of learned reference logits.

α^e(s) = Σ_r w_r(s) α_ref,r^e with w_r(s) = softmax_r(−‖s − s_ref,r‖² / σ²), the paper's
sign: the nearest reference point dominates. References sit at the simplex's vertices (one
operation penalised), the midpoints of its edges (two operations penalised) and its centre
(uniform penalty); docs/search.md says why.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def reference_points(k: int) -> torch.Tensor:
    """(R, k) points on the simplex Δ^{k-1}: k vertices, k(k−1)/2 edge midpoints, the centre."""
    eye = torch.eye(k)
    midpoints = [(eye[i] + eye[j]) / 2 for i, j in itertools.combinations(range(k), 2)]
    return torch.stack([*eye, *midpoints, torch.full((k,), 1.0 / k)])


class Hypernetwork(nn.Module):
    """Maps a penalty vector s (k,) to logits (cell types, edges, k) for the whole network."""

    references: torch.Tensor  # (R, k) buffer, registered in __init__

    def __init__(self, references: torch.Tensor, cell_types: int, edges: int,
                 sigma: float) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"the RBF bandwidth sigma must be positive, got {sigma}")
        self.sigma = sigma
        self.register_buffer("references", references)
        k = references.shape[1]
        # All references start equal (no preference); the penalty pulls them apart.
        self.reference_logits = nn.Parameter(torch.zeros(len(references), cell_types, edges, k))

    def interpolation_weights(self, s: torch.Tensor) -> torch.Tensor:
        """w(s) (R,): a softmax over references of −squared distance / σ²."""
        distance2 = ((s - self.references) ** 2).sum(dim=-1)
        return torch.softmax(-distance2 / self.sigma**2, dim=0)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.einsum("r,rtek->tek", self.interpolation_weights(s), self.reference_logits)
