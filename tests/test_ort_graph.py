"""The replay of ONNX Runtime's graph rewrites against the graph a real session makes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_SPACE

from hwnas.arch.network import Genotype
from hwnas.arch.space import PRESETS
from hwnas.latency.model import ort_graph
from hwnas.latency.model.predict import mixture_genotypes

pytest.importorskip("onnxruntime")

EXP1 = PRESETS["exp1"]


def _cases() -> list[tuple[str, Genotype]]:
    edges = EXP1.edges_per_cell
    pure = [(f"exp1 all {op}", Genotype((op,) * edges, (op,) * edges)) for op in EXP1.ops]
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
    edges = EXP1.edges_per_cell
    pools = Genotype(("max_pool_3x3",) * edges, ("max_pool_3x3",) * edges)
    convs = Genotype(("conv_3x3",) * edges, ("conv_3x3",) * edges)
    # every node sum of all-conv cells folds into a convolution; pools keep theirs
    assert ort_graph.counts(EXP1, convs, 16)[0] == 0 < ort_graph.counts(EXP1, pools, 16)[0]
    assert ort_graph.counts(EXP1, convs, 1)[1] == 0  # no blocked layout: no reorders


def test_the_probe_finds_a_block_size(block: int) -> None:
    assert block == 1 or block in ort_graph.PROBE_CHANNELS or block > 64


def test_an_op_the_replay_does_not_model_is_refused() -> None:
    space = PRESETS["exp1"].__class__("z", ("zero", "conv_3x3"))
    assert not ort_graph.models(space) and ort_graph.models(TINY_SPACE)
    edges = space.edges_per_cell
    with pytest.raises(ValueError, match="zero"):
        ort_graph.counts(space, Genotype(("zero",) * edges, ("zero",) * edges), 16)
