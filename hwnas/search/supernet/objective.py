"""The search objective: Gumbel-softmax edge weights, the latency-weighted penalty cost, and
the optional FBNet-style latency term.

Cost(γ̃; s) = Σ_cells Σ_e Σ_m γ̃_m^e s_m w_m^e with w_m^e = (1−β) + β·k·ℓ_m^e / Σ_m' ℓ_m'^e.
"""

from __future__ import annotations

import torch

from hwnas.search.supernet.latency_terms import LatencyTerms


def sample_penalty(k: int, generator: torch.Generator) -> torch.Tensor:
    """s ~ Dirichlet(1, …, 1), uniform on the simplex (normalised unit exponentials), on the
    generator's device."""
    uniform = torch.rand(k, generator=generator, device=generator.device)
    exponentials = -torch.log(uniform.clamp_min(1e-12))
    return exponentials / exponentials.sum()


def gumbel_softmax(logits: torch.Tensor, temperature: float,
                   generator: torch.Generator) -> torch.Tensor:
    """γ ~ GumbelSoftmax(logits, t) along the last axis, with noise from `generator` (drawn on
    its device: the training device's generator keeps the step free of host copies)."""
    uniform = torch.rand(logits.shape, generator=generator, device=generator.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-7))).to(logits.device)
    return torch.softmax((logits + gumbel) / temperature, dim=-1)


def cost_weights(edge_ms: torch.Tensor, beta: float) -> torch.Tensor:
    """w_m^e (cells, edges, ops): 1 everywhere at β = 0, k × op m's latency share at β = 1."""
    k = edge_ms.shape[-1]
    # An overhead-corrected edge can cost ~0 for every op: its share is then 0, not NaN.
    share = edge_ms / edge_ms.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return (1.0 - beta) + beta * k * share


def penalty_cost(soft_weights: torch.Tensor, s: torch.Tensor, terms: LatencyTerms,
                 weights: torch.Tensor) -> torch.Tensor:
    """Cost(γ̃; s): `soft_weights` (cell types, edges, ops), `weights` from cost_weights."""
    return (terms.per_cell(soft_weights) * s * weights).sum()


class Objective:
    """κ·Cost + latency_weight·log(expected ms), given the edge logits at s."""

    def __init__(self, terms: LatencyTerms, kappa: float, beta: float,
                 latency_weight: float) -> None:
        self.terms = terms
        self.kappa = kappa
        self.latency_weight = latency_weight
        self.weights = cost_weights(terms.edge_ms, beta)  # once per run, not per step

    def penalty(self, logits: torch.Tensor, s: torch.Tensor,
                temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(the penalty to add to the task loss, the expected latency in ms at γ̃)."""
        soft = torch.softmax(logits / temperature, dim=-1)  # γ̃ = E[γ] (paper, Theorem 1)
        expected_ms = self.terms.expected_ms(soft)
        total = self.kappa * penalty_cost(soft, s, self.terms, self.weights)
        if self.latency_weight:
            total = total + self.latency_weight * torch.log(expected_ms)
        return total, expected_ms
