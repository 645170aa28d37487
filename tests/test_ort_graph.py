"""The replay of ONNX Runtime's graph rewrites against the graph a real session makes."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_SPACE

from hwnas.arch.genotypes import (
    ALL_CONV_3X3,
    ALL_MAX_POOL_3X3,
    Genotype,
    mixture_genotypes,
    pure_genotypes,
    single_op,
)
from hwnas.arch.registry import edge_op
from hwnas.arch.space import PRESETS, SearchSpace
from hwnas.latency.model import ort_graph

pytest.importorskip("onnxruntime")

EXP1 = PRESETS["exp1"]


def _cases() -> list[tuple[str, Genotype]]:
    pure = [(f"exp1 all {g.normal[0]}", g) for g in pure_genotypes(EXP1)]
    mixed = mixture_genotypes(EXP1, 3, np.random.default_rng(11), include_pure=False)
    darts = mixture_genotypes(PRESETS["darts"], 1, np.random.default_rng(11), False)
    return [*pure, *((f"exp1 mixture {i}", g) for i, g in enumerate(mixed)),
            ("darts mixture", darts[0])]


@pytest.fixture(scope="module")
def block() -> int:
    return ort_graph.nchwc_block()


@pytest.mark.parametrize(("name", "genotype"), _cases(), ids=[name for name, _ in _cases()])
def test_replayed_counts_equal_a_real_sessions(name: str, genotype: Genotype,
                                               block: int) -> None:
    from hwnas.latency.measure.backends.onnx_backend import export_onnx
    from hwnas.latency.measure.networks import network_inputs

    space = PRESETS["darts"] if name.startswith("darts") else EXP1
    model = export_onnx(*network_inputs(space, genotype))
    assert ort_graph.counts(space, genotype, block) == ort_graph.session_counts(model)


def test_the_counts_depend_on_the_whole_genotype() -> None:
    pools, convs = ALL_MAX_POOL_3X3, ALL_CONV_3X3
    # every node sum of all-conv cells folds into a convolution; pools keep theirs
    assert ort_graph.counts(EXP1, convs, 16)[0] == 0 < ort_graph.counts(EXP1, pools, 16)[0]
    assert ort_graph.counts(EXP1, convs, 1)[1] == 0  # no blocked layout: no reorders


def _x86_64_cpu_flags() -> set[str]:
    """This machine's CPU flags as Linux reports them; skips elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() not in ("x86_64", "AMD64") or not cpuinfo.is_file():
        pytest.skip("the expected block is derived from x86-64 Linux CPU flags only")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("flags")), None)
    if flags is None:
        pytest.skip("/proc/cpuinfo lists no CPU flags")
    return set(flags)


def test_the_probe_finds_the_block_the_cpu_implies(block: int) -> None:
    """ONNX Runtime's MLAS blocks channels by 16 on an x86-64 CPU with AVX-512F (the width of
    one 512-bit register of floats) and by 8 on every other x86-64 CPU (its default there):
    what the probe reads from a real session must be that."""
    assert block == (16 if "avx512f" in _x86_64_cpu_flags() else 8)


def test_an_op_the_replay_does_not_model_is_refused() -> None:
    space = PRESETS["exp1"].__class__("z", ("zero", "conv_3x3"))
    assert not ort_graph.models(space) and ort_graph.models(TINY_SPACE)
    with pytest.raises(ValueError, match="zero"):
        ort_graph.counts(space, single_op("zero", space.edges_per_cell), 16)


@pytest.mark.parametrize("name", sorted(ort_graph.SUPPORTED_OPS))
def test_each_replayed_registry_op_matches_a_real_session(name: str, block: int) -> None:
    """Every op the replay models, alone on every edge (so at both strides), gives the node
    counts a real session's graph has."""
    from hwnas.latency.measure.backends.onnx_backend import export_onnx
    from hwnas.latency.measure.networks import network_inputs

    space = SearchSpace(name, (name,), channels=16, input_size=8, nodes=2)
    genotype = single_op(name, space.edges_per_cell)
    model = export_onnx(*network_inputs(space, genotype))
    assert ort_graph.counts(space, genotype, block) == ort_graph.session_counts(model)


@pytest.mark.parametrize("name", sorted(ort_graph.SUPPORTED_OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_the_replay_merges_exactly_the_ops_the_registry_calls_parameter_free(
        name: str, stride: int) -> None:
    """What the latency model shares per source node (registry) is what the replay's common-
    subexpression elimination merges."""
    graph = ort_graph._Graph()
    x = graph.value(16)
    first, second = (ort_graph._edge(graph, name, x, stride) for _ in range(2))
    assert (first == second) == edge_op(name).parameter_free(stride)
