"""The module a table entry measures, and example inputs of its shape."""

from __future__ import annotations

import torch
from torch import nn

from hwnas.arch import ops
from hwnas.arch.keys import (
    CALL_OVERHEAD,
    CONCAT,
    HEAD,
    NODE_SUM,
    PREPROCESS,
    PREPROCESS_REDUCE,
    STEM,
    STRUCTURAL,
    EntryKey,
)


def build(key: EntryKey) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module a key measures, in eval mode, and example inputs of the key's shape."""
    module = _module(key)
    dtype = getattr(torch, key.dtype)
    shape = (key.batch, key.c_in, key.h, key.w)
    inputs = tuple(torch.randn(shape, dtype=dtype) for _ in range(key.n_inputs))
    return module.to(dtype).eval(), inputs


def _module(key: EntryKey) -> nn.Module:
    if key.op in ops.OPS:
        return ops.make_op(key.op, key.c_in, key.stride)
    if key.op == STEM:
        return ops.stem(key.c_in, key.c_out)
    if key.op in (PREPROCESS, PREPROCESS_REDUCE):
        return ops.preprocess(key.c_in, key.c_out, reduce=key.op == PREPROCESS_REDUCE)
    if key.op == NODE_SUM:
        return ops.NodeSum()
    if key.op == CONCAT:
        return ops.Concat()
    if key.op == HEAD:
        return ops.Head(key.c_in, key.c_out)
    if key.op == CALL_OVERHEAD:
        return nn.Identity()
    known = ", ".join([*ops.OPS, *STRUCTURAL])
    raise ValueError(f"unknown table entry {key.op!r}; known: {known}")
