"""Latency prediction: the model's sum by hand, calibration fitting, and the uncalibrated path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import TINY_SPACE, synthetic_table

from hwnas.arch import keys
from hwnas.arch.genotypes import Genotype, calibration_genotypes, validation_genotypes
from hwnas.arch.space import cell_edges, cell_plans, edge_key, fixed_entries
from hwnas.latency.model.predict import (
    Calibration,
    UncalibratedWarning,
    call_overhead_fit,
    fit_calibration,
    latency_model,
    moved_bytes,
    uncalibrated_model,
)

# tiny space: 2 nodes → 5 edges per cell: (0,2) (1,2) (0,3) (1,3) (2,3)
HAND = Genotype(normal=("max_pool_3x3", "max_pool_3x3", "max_pool_3x3", "conv_3x3",
                        "skip_connect"),
                reduce=("conv_3x3", "skip_connect", "skip_connect", "max_pool_3x3",
                        "max_pool_3x3"))


def _edges(genotype: Genotype) -> list[tuple[int, tuple[int, int], keys.EntryKey]]:
    found = []
    for plan in cell_plans(TINY_SPACE):
        for index, edge in enumerate(cell_edges(TINY_SPACE.nodes)):
            op = genotype.for_cell(plan)[index]
            found.append((plan.index, edge, edge_key(TINY_SPACE, plan, edge, op)))
    return found


def test_eager_prediction_is_the_plain_sum_of_every_part() -> None:
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    model = uncalibrated_model(table, "torch")
    by_hand = sum(table.latency_ms("torch", k) for k in fixed_entries(TINY_SPACE))
    by_hand += sum(table.latency_ms("torch", k) for _, _, k in _edges(HAND))
    assert model.predict_ms(HAND) == pytest.approx(by_hand)


def test_fused_prediction_pays_the_call_once_and_shares_parameter_free_ops() -> None:
    table = synthetic_table(TINY_SPACE, backends=("onnxruntime",))
    per_call, per_byte = call_overhead_fit(table, "onnxruntime")

    def net(key: keys.EntryKey) -> float:
        return max(table.latency_ms("onnxruntime", key) - per_call - per_byte * moved_bytes(key),
                   0.0)

    by_hand = sum(net(k) for k in fixed_entries(TINY_SPACE)) + per_call
    seen = set()
    for cell, edge, key in _edges(HAND):
        # pooling and stride-1 identity have no weights: once per (cell, source node, op)
        parameter_free = key.op == "max_pool_3x3" or (key.op == "skip_connect"
                                                      and key.stride == 1)
        if parameter_free and (cell, edge[0], key.op) in seen:
            continue
        seen.add((cell, edge[0], key.op))
        by_hand += net(key)
    model = uncalibrated_model(table, "onnxruntime")
    assert model.predict_ms(HAND) == pytest.approx(by_hand)
    # normal cell: max-pools on (0,2) and (0,3) share source 0: one of them is not paid
    assert len(seen) < len(_edges(HAND))


def test_overhead_line_goes_through_the_empty_calls() -> None:
    def latency(key: keys.EntryKey) -> float:
        return 0.005 + 1e-7 * moved_bytes(key)

    table = synthetic_table(TINY_SPACE, backends=("onnxruntime",), latency=latency)
    per_call, per_byte = call_overhead_fit(table, "onnxruntime")
    assert per_call == pytest.approx(0.005) and per_byte == pytest.approx(1e-7)


def test_calibrated_prediction_applies_the_intercept_and_op_scales() -> None:
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    base = uncalibrated_model(table, "torch")
    scale = {"max_pool_3x3": 1.5, "skip_connect": 0.5, "conv_3x3": 1.2}
    calibrated = dataclasses.replace(base, calibration=Calibration(0.25, scale))
    sums = base.op_sums_ms(HAND)
    expected = base.fixed_ms + 0.25 + sum(scale[op] * sums[op] for op in sums)
    assert calibrated.predict_ms(HAND) == pytest.approx(expected)
    edge_terms = calibrated.scaled_edge_ms()
    linear = calibrated.constant_ms + sum(
        edge_terms[plan.index][i][HAND.for_cell(plan)[i]]
        for plan in cell_plans(TINY_SPACE) for i in range(TINY_SPACE.edges_per_cell))
    assert linear == pytest.approx(expected)  # eager: no sharing, so the linear form is exact


def test_fit_recovers_a_known_correction() -> None:
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    model = uncalibrated_model(table, "torch")
    truth = dataclasses.replace(model, calibration=Calibration(
        0.1, {"max_pool_3x3": 1.3, "skip_connect": 0.9, "conv_3x3": 1.1}))
    genotypes = calibration_genotypes(TINY_SPACE, 24, seed=0)
    measured = [truth.predict_ms(g) for g in genotypes]
    fitted = dataclasses.replace(model, calibration=fit_calibration(model, genotypes, measured,
                                                                    ridge=1e-6))
    held_out = validation_genotypes(TINY_SPACE, 10, seed=0, exclude=genotypes)
    for genotype in held_out:
        assert fitted.predict_ms(genotype) == pytest.approx(truth.predict_ms(genotype), rel=1e-3)
    assert fitted.calibration.fit_mape_pct < 0.1


def test_a_table_without_calibration_predicts_with_a_warning() -> None:
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    with pytest.warns(UncalibratedWarning, match="uncalibrated"):
        model = latency_model(table, "torch")
    assert not model.calibrated
    assert model.predict_ms(HAND) == pytest.approx(
        uncalibrated_model(table, "torch").predict_ms(HAND))


def test_a_stored_calibration_is_used() -> None:
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    table.meta["calibration"] = {"torch": Calibration(1.0, {"conv_3x3": 2.0}, 5).to_dict()}
    model = latency_model(table, "torch")
    assert model.calibrated and model.calibration.op_scale == {"conv_3x3": 2.0}
    assert model.predict_ms(HAND) > uncalibrated_model(table, "torch").predict_ms(HAND) + 1.0


def test_a_calibration_stored_before_graph_terms_predicts_as_it_did() -> None:
    table = synthetic_table(TINY_SPACE, backends=("onnxruntime",))
    stored = {"intercept_ms": 0.05, "op_scale": {"conv_3x3": 1.2}, "networks": 24,
              "fit_mape_pct": 3.0}  # the dict tables held before the graph terms existed
    table.meta["calibration"] = {"onnxruntime": stored}
    model = latency_model(table, "onnxruntime")
    base = uncalibrated_model(table, "onnxruntime")
    sums = base.op_sums_ms(HAND)
    expected = base.fixed_ms + 0.05 + sum(sums[op] * (1.2 if op == "conv_3x3" else 1.0)
                                          for op in sums)
    assert model.predict_ms(HAND) == expected
    assert model.constant_ms == base.fixed_ms + 0.05


def test_fit_with_graph_terms_recovers_a_known_cost_per_node() -> None:
    table = synthetic_table(TINY_SPACE, backends=("onnxruntime",))
    model = uncalibrated_model(table, "onnxruntime")
    truth = dataclasses.replace(model, calibration=Calibration(
        0.01, {"max_pool_3x3": 1.3, "skip_connect": 0.9, "conv_3x3": 1.1},
        node_ms={"add_nodes": 0.002, "reorder_nodes": 0.004}, nchwc_block=8))
    genotypes = calibration_genotypes(TINY_SPACE, 24, seed=0)
    measured = [truth.predict_ms(g) for g in genotypes]
    fitted = fit_calibration(model, genotypes, measured, ridge=1e-6, nchwc_block=8)
    assert fitted.node_ms == pytest.approx(truth.calibration.node_ms, rel=1e-3)
    assert fitted.fit_mape_pct < 0.1 and fitted.left_out == [] and fitted.networks == 24
    # a network measured during a burst of interference is left out, not fitted
    # (a clean network the disturbed fit pulled far enough may go with it)
    disturbed = [ms * 1.3 if i == 12 else ms for i, ms in enumerate(measured)]
    robust = fit_calibration(model, genotypes, disturbed, ridge=1e-6, nchwc_block=8)
    assert 12 in robust.left_out and robust.networks == 24 - len(robust.left_out) >= 21
    assert robust.node_ms == pytest.approx(truth.calibration.node_ms, rel=1e-3)
    # with fewer than two networks per fitted parameter (here 8 for 6) the first fit's
    # residuals say nothing about noise, so nothing is left out
    few = [ms * 1.3 if i == 3 else ms for i, ms in enumerate(measured[:8])]
    assert fit_calibration(model, genotypes[:8], few, ridge=1e-6, nchwc_block=8).left_out == []
    without = fit_calibration(model, genotypes, measured, ridge=1e-6)
    assert not without.node_ms and without.fit_mape_pct > 1.0  # the nodes' cost is real here
    # the soft (search) latency carries the nodes' mean cost over the calibration networks
    calibrated = dataclasses.replace(model, calibration=fitted)
    mean_nodes = np.mean([calibrated.nodes_ms(g) for g in genotypes])
    assert calibrated.constant_ms == pytest.approx(
        model.fixed_ms + fitted.intercept_ms + mean_nodes)
