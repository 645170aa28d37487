"""The objective: s on the simplex, Gumbel-softmax weights, the latency-weighted cost, and
gradients reaching both the supernet and the hypernetwork."""

from __future__ import annotations

import pytest
import torch
from conftest import synthetic_table

from hwnas.arch.space import cell_plans
from hwnas.search.config import SearchConfig
from hwnas.search.supernet.latency_terms import LatencyTerms, latency_terms
from hwnas.search.supernet.loop import build_state, train_step
from hwnas.search.supernet.objective import (
    Objective,
    cost_weights,
    gumbel_softmax,
    penalty_cost,
    sample_penalty,
)


def test_penalty_samples_lie_on_the_simplex() -> None:
    generator = torch.Generator().manual_seed(0)
    samples = torch.stack([sample_penalty(5, generator) for _ in range(2000)])
    assert torch.all(samples >= 0)
    torch.testing.assert_close(samples.sum(dim=1), torch.ones(2000))
    # Dirichlet(1..1) has mean 1/k in every coordinate.
    torch.testing.assert_close(samples.mean(dim=0), torch.full((5,), 0.2), atol=0.02, rtol=0)


def test_gumbel_softmax_is_a_distribution_that_sharpens_as_t_falls() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]]).repeat(500, 1)
    hot = gumbel_softmax(logits, 0.05, torch.Generator().manual_seed(0))
    warm = gumbel_softmax(logits, 5.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(hot.sum(dim=-1), torch.ones(500))
    assert hot.max(dim=-1).values.mean() > 0.95 > warm.max(dim=-1).values.mean()
    # Argmax frequencies follow softmax(logits): op 0 wins most often.
    assert torch.bincount(hot.argmax(dim=-1), minlength=3).argmax() == 0


def _random_soft(cell_types: int, edges: int, k: int) -> torch.Tensor:
    return torch.softmax(torch.randn(cell_types, edges, k), dim=-1)


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
def test_cost_is_the_papers_sum_when_latencies_are_equal(tiny_space, beta: float) -> None:
    table = synthetic_table(tiny_space, latency=lambda key: 0.25)
    terms = latency_terms(table, "torch")
    torch.manual_seed(0)
    soft = _random_soft(2, tiny_space.edges_per_cell, 3)
    s = torch.tensor([0.5, 0.3, 0.2])
    paper = sum((soft[int(t)] * s).sum() for t in terms.cell_types)  # Σ_cells Σ_e Σ_m γ s
    cost = penalty_cost(soft, s, terms, cost_weights(terms.edge_ms, beta))
    torch.testing.assert_close(cost, paper)


def test_cost_at_beta_zero_ignores_latency(tiny_space, tiny_table) -> None:
    terms = latency_terms(tiny_table, "torch")
    assert torch.all(cost_weights(terms.edge_ms, 0.0) == 1.0)


def test_cost_at_beta_one_weighs_ops_by_their_latency_share() -> None:
    edge_ms = torch.tensor([[[1.0, 1.0, 6.0]]])  # one cell, one edge: conv costs 3/4
    weights = cost_weights(edge_ms, 1.0)
    torch.testing.assert_close(weights, torch.tensor([[[0.375, 0.375, 2.25]]]))
    torch.testing.assert_close(weights.mean(dim=-1), torch.ones(1, 1))  # k·share averages 1


def test_penalty_on_an_op_lowers_its_weight_under_gradient_descent() -> None:
    terms = LatencyTerms(torch.ones(1, 4, 3), torch.tensor([0]), 0.0, torch.full((3,), 1 / 3))
    objective = Objective(terms, kappa=1.0, beta=0.0, latency_weight=0.0)
    logits = torch.zeros(2, 4, 3, requires_grad=True)
    penalty, _ = objective.penalty(logits, torch.tensor([0.1, 0.1, 0.8]), 1.0)
    penalty.backward()
    assert torch.all(logits.grad[0, :, 2] > 0)  # descent moves away from the penalised op
    assert torch.all(logits.grad[1] == 0)  # no reduction cell in this network


def test_latency_term_adds_log_expected_ms(tiny_space, tiny_table) -> None:
    terms = latency_terms(tiny_table, "torch")
    logits = torch.zeros(2, tiny_space.edges_per_cell, 3)
    s = torch.full((3,), 1 / 3)
    plain, expected_ms = Objective(terms, 0.5, 0.0, 0.0).penalty(logits, s, 1.0)
    with_latency, _ = Objective(terms, 0.5, 0.0, 2.0).penalty(logits, s, 1.0)
    torch.testing.assert_close(with_latency - plain, 2.0 * torch.log(expected_ms))


def test_one_step_reaches_the_hypernetwork_and_every_trained_weight(tiny_space,
                                                                      tiny_table) -> None:
    config = SearchConfig("t.parquet")
    state = build_state(config, tiny_space, torch.device("cpu"))
    objective = Objective(latency_terms(tiny_table, "torch"), 0.5, 0.5, 0.1)
    images, labels = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    before = state.hypernet.reference_logits.detach().clone()
    loss, task = train_step(state, objective, images, labels, 1.0,
                            torch.Generator().manual_seed(0), "soft").tolist()
    assert loss > task > 0
    assert state.hypernet.reference_logits.grad.abs().sum() > 0
    assert not torch.equal(state.hypernet.reference_logits, before)
    weights = list(state.supernet.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_hard_step_reaches_every_reference_logit_the_sampled_s_weights(tiny_space,
                                                                      tiny_table) -> None:
    """Straight-through: the cross-entropy alone (κ = 0) moves every logit of every edge of
    every reference point, though each edge ran one op; and only the sampled ops train."""
    state = build_state(SearchConfig("t.parquet"), tiny_space, torch.device("cpu"))
    objective = Objective(latency_terms(tiny_table, "torch"), 0.0, 0.0, 0.0)
    images, labels = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    train_step(state, objective, images, labels, 1.0, torch.Generator().manual_seed(0), "hard")
    assert (state.hypernet.reference_logits.grad != 0).all()
    trained = [p.grad is not None for p in state.supernet.parameters()]
    assert any(trained) and not all(trained)  # 3 candidates per edge, one ran


def test_cost_counts_each_cell_of_a_type(tiny_space, tiny_table) -> None:
    """Two reduction cells share one set of logits but each adds its own cost terms."""
    terms = latency_terms(tiny_table, "torch")
    assert terms.edge_ms.shape == (len(cell_plans(tiny_space)), tiny_space.edges_per_cell, 3)
    soft = torch.zeros(2, tiny_space.edges_per_cell, 3)
    soft[1, :, 0] = 1.0  # reduction cells all on op 0; normal cell weights left at zero
    cost = penalty_cost(soft, torch.tensor([1.0, 0.0, 0.0]), terms, torch.ones(1))
    assert float(cost) == 2 * tiny_space.edges_per_cell

