"""Table look-ups as tensors: expected latency, s_dev, and tables that do not fit the space."""

from __future__ import annotations

import pytest
import torch
from conftest import synthetic_latency_ms, synthetic_table

from hwnas.arch.genotypes import random_genotype
from hwnas.arch.space import PRESETS, cell_edges, cell_plans, edge_key, fixed_entries
from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable
from hwnas.search.family import members as family
from hwnas.search.supernet.latency_terms import latency_terms


def _one_hot(space, genotype) -> torch.Tensor:
    weights = torch.zeros(2, space.edges_per_cell, len(space.ops))
    for t, names in enumerate((genotype.normal, genotype.reduce)):
        for e, name in enumerate(names):
            weights[t, e, space.ops.index(name)] = 1.0
    return weights


@pytest.mark.parametrize("space", [PRESETS["exp1"], PRESETS["exp2"]], ids=lambda s: s.name)
def test_expected_latency_of_a_discrete_network_is_its_table_sum(space) -> None:
    table = synthetic_table(space, backends=("torch",))
    terms = latency_terms(table, "torch")
    genotype = random_genotype(space, torch.Generator().manual_seed(1))
    by_hand = sum(synthetic_latency_ms(key) for key in fixed_entries(space))
    for plan in cell_plans(space):
        for e, edge in enumerate(cell_edges(space.nodes)):
            by_hand += synthetic_latency_ms(
                edge_key(space, plan, edge, genotype.for_cell(plan)[e]))
    assert float(terms.expected_ms(_one_hot(space, genotype))) == pytest.approx(by_hand,
                                                                               rel=1e-5)


def test_device_penalty_is_each_ops_latency_share(tiny_space, tiny_table) -> None:
    terms = latency_terms(tiny_table, "torch")
    s_dev = terms.s_dev
    every_edge = [sum(synthetic_latency_ms(edge_key(tiny_space, plan, edge, op))
                      for plan in cell_plans(tiny_space) for edge in cell_edges(2))
                  for op in tiny_space.ops]
    expected = torch.tensor(every_edge) / sum(every_edge)
    torch.testing.assert_close(s_dev, expected)
    assert tiny_space.ops[int(s_dev.argmax())] == "conv_3x3"  # the slow op gets the penalty


def test_genotype_reads_the_argmax_of_each_edge(tiny_space) -> None:
    logits = torch.zeros(2, tiny_space.edges_per_cell, 3)
    logits[0, :, 2] = 1.0
    logits[1, :, 1] = 1.0
    genotype = family.genotype(tiny_space, logits)
    assert family.op_counts(tiny_space, genotype) == {
        "max_pool_3x3": 0, "skip_connect": tiny_space.edges_per_cell,
        "conv_3x3": tiny_space.edges_per_cell}


def test_missing_entries_name_the_first_and_the_fix(tiny_space, tiny_table) -> None:
    rows = tiny_table.rows
    rows = rows[~((rows["op"] == "conv_3x3") & (rows["stride"] == 2))]
    with pytest.raises(UserError, match=r"lacks \d+ torch entries .*conv_3x3.*hwnas profile"):
        latency_terms(LatencyTable.from_frame(rows, tiny_table.meta), "torch")


def test_table_profiled_for_another_space_is_refused(tiny_space) -> None:
    other = synthetic_table(PRESETS["exp1"])
    mislabelled = LatencyTable(other.records, {**other.meta, "space": tiny_space.to_dict()})
    with pytest.raises(UserError, match="another space"):
        latency_terms(mislabelled, "torch")


def test_backend_missing_from_the_table(tiny_space) -> None:
    table = synthetic_table(tiny_space, backends=("onnxruntime",))
    with pytest.raises(UserError, match="no torch measurements.*--backend onnxruntime"):
        latency_terms(table, "torch")


def test_fused_backend_needs_the_call_overhead_entry(tiny_table) -> None:
    rows = tiny_table.rows[tiny_table.rows["op"] != "call_overhead"]
    latency_terms(LatencyTable.from_frame(rows, tiny_table.meta), "torch")  # eager: not needed
    with pytest.raises(UserError, match="lacks 1 onnxruntime entry .*call_overhead"):
        latency_terms(LatencyTable.from_frame(rows, tiny_table.meta), "onnxruntime")
