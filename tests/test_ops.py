"""The op registry against the modules it builds: every registered op's metadata (shape,
parameters, kernel), and every fixed part's key shape."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwnas.arch import keys, ops, registry
from hwnas.arch.keys import EntryKey
from hwnas.latency.measure import entries


@pytest.mark.parametrize("name", registry.EDGE_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_edge_op_gives_the_output_shape_its_key_predicts(name: str, stride: int) -> None:
    key = EntryKey(name, 2, 8, 8, 14, 14, stride)
    out = ops.OPS[name](8, stride).eval()(torch.randn(2, 8, 14, 14))
    assert out.shape == (2, 8, key.h_out, key.w_out)


@pytest.mark.parametrize("name", registry.EDGE_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_parameter_free_means_no_parameters(name: str, stride: int) -> None:
    weights = list(ops.make_op(name, 8, stride).parameters())
    assert registry.edge_op(name).parameter_free(stride) == (not weights)


def _windows(module: nn.Module) -> list[tuple[int, int]]:
    """(kernel, dilation) of every convolution and pooling inside `module`."""
    found = []
    for part in module.modules():
        if isinstance(part, nn.Conv2d):
            found.append((part.kernel_size[0], part.dilation[0]))
        elif isinstance(part, nn.MaxPool2d | nn.AvgPool2d):
            kernel = part.kernel_size
            found.append((kernel if isinstance(kernel, int) else kernel[0], 1))
    return found


@pytest.mark.parametrize("name", registry.EDGE_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_kernel_and_dilation_are_the_modules_widest_window(name: str, stride: int) -> None:
    op = registry.edge_op(name)
    assert max(_windows(ops.make_op(name, 8, stride)), default=(1, 1)) == (op.kernel,
                                                                           op.dilation)


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


def test_op_names_and_order_stay_as_tables_and_penalty_vectors_know_them() -> None:
    assert registry.EDGE_OPS == tuple(ops.OPS) == (
        "zero", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "conv_3x3", "conv_5x5",
        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
