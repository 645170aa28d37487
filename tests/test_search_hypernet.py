"""The hypernetwork: reference points on the simplex, RBF weights, interpolated logits."""

from __future__ import annotations

import pytest
import torch

from hwnas.search.supernet.hypernet import Hypernetwork, reference_points


@pytest.mark.parametrize("k", [3, 5, 7])
def test_reference_points_lie_on_the_simplex(k: int) -> None:
    points = reference_points(k)
    assert points.shape == (k + k * (k - 1) // 2 + 1, k)
    assert torch.all(points >= 0)
    torch.testing.assert_close(points.sum(dim=1), torch.ones(len(points)))
    assert len(torch.unique(points, dim=0)) == len(points)


def _hypernet(k: int, sigma: float) -> Hypernetwork:
    torch.manual_seed(0)
    net = Hypernetwork(reference_points(k), cell_types=2, edges=5, sigma=sigma)
    with torch.no_grad():
        net.reference_logits.normal_()
    return net


@pytest.mark.parametrize("sigma", [0.05, 0.3, 2.0])
def test_interpolation_weights_sum_to_one(sigma: float) -> None:
    net = _hypernet(3, sigma)
    for s in (torch.tensor([0.2, 0.3, 0.5]), torch.tensor([1.0, 0.0, 0.0])):
        weights = net.interpolation_weights(s)
        assert torch.all(weights >= 0)
        torch.testing.assert_close(weights.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("k", [3, 5])
def test_small_bandwidth_reduces_to_the_nearest_reference(k: int) -> None:
    net = _hypernet(k, sigma=0.05)
    for r, point in enumerate(net.references):
        near = point + 0.01 * (torch.full((k,), 1.0 / k) - point)  # a step towards the centre
        torch.testing.assert_close(net(near), net.reference_logits[r], atol=1e-4, rtol=0)


def test_nearest_reference_dominates() -> None:
    """The paper's sign: weight falls with distance (the authors' code had it reversed)."""
    net = _hypernet(3, sigma=0.3)
    weights = net.interpolation_weights(torch.tensor([0.9, 0.05, 0.05]))
    assert int(weights.argmax()) == 0  # the vertex (1, 0, 0)


def test_logits_have_the_network_shape_and_vary_with_s() -> None:
    net = _hypernet(3, sigma=0.3)
    a, b = net(torch.tensor([0.7, 0.15, 0.15])), net(torch.tensor([0.15, 0.15, 0.7]))
    assert a.shape == (2, 5, 3)
    assert not torch.allclose(a, b)


def test_non_positive_bandwidth_is_rejected() -> None:
    with pytest.raises(ValueError, match="sigma"):
        Hypernetwork(reference_points(3), 2, 5, sigma=0.0)
