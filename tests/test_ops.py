"""Every registered op and fixed part maps its key's input shape to its key's output shape."""

from __future__ import annotations

import pytest
import torch

from hwnas.arch import keys, ops
from hwnas.arch.keys import EntryKey
from hwnas.latency.measure import entries


@pytest.mark.parametrize("name", list(ops.OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_edge_op_keeps_channels_and_strides(name: str, stride: int) -> None:
    op = ops.make_op(name, 8, stride).eval()
    out = op(torch.randn(2, 8, 12, 12))
    assert out.shape == (2, 8, 12 // stride, 12 // stride)


def test_unknown_op_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known operations: .*conv_3x3"):
        ops.make_op("conv_9x9", 8, 1)


@pytest.mark.parametrize("key", [
    EntryKey(keys.STEM, 2, 3, 24, 16, 16, 1),
    EntryKey(keys.PREPROCESS, 2, 24, 8, 16, 16, 1),
    EntryKey(keys.PREPROCESS_REDUCE, 2, 32, 16, 16, 16, 2),
    EntryKey(keys.NODE_SUM, 2, 8, 8, 16, 16, 1, n_inputs=3),
    EntryKey(keys.CONCAT, 2, 8, 32, 16, 16, 1, n_inputs=4),
    EntryKey(keys.HEAD, 2, 64, 10, 4, 4, 1),
    keys.call_overhead_key(2),
    EntryKey("conv_5x5", 2, 8, 8, 16, 16, 2),
], ids=lambda key: key.op)
def test_built_entry_produces_the_keys_output_shape(key: EntryKey) -> None:
    module, inputs = entries.build(key)
    assert len(inputs) == key.n_inputs
    out = module(*inputs)
    expected = (key.batch, key.c_out) if key.op == keys.HEAD else (
        key.batch, key.c_out, key.h_out, key.w_out)
    assert tuple(out.shape) == expected


def test_node_sum_adds_its_inputs() -> None:
    a, b, c = (torch.full((1, 2, 3, 3), float(v)) for v in (1, 2, 4))
    assert torch.equal(ops.NodeSum()(a, b, c), torch.full((1, 2, 3, 3), 7.0))


def test_key_round_trips_through_a_row() -> None:
    key = EntryKey(keys.CONCAT, 1, 8, 32, 7, 7, 1, n_inputs=4, dtype="float16")
    assert EntryKey.from_row(key.to_row()) == key


def test_the_torch_free_op_names_match_the_registry() -> None:
    assert tuple(ops.OPS) == keys.EDGE_OPS
