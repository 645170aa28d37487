"""The edge-operation registry: every candidate op of a cell edge, with what each op is.

One frozen entry per op, in registry order, torch-free so a table or a cached pick can read it.
The torch modules (`hwnas.arch.ops.OPS`), the edge-op name list, the latency model's sharing of
parameter-free ops and the ONNX Runtime graph replay all read it; `tests/test_ops.py` checks
every entry against the module it builds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class OpFamily(enum.Enum):
    """How an op is built, in PyTorch and in the graph ONNX Runtime makes of its export."""

    ZERO = "zero"  # zeros of the output shape (exports a Mul the graph replay does not model)
    MAX_POOL = "max_pool"  # k×k max pooling
    AVG_POOL = "avg_pool"  # k×k average pooling, padding not counted
    SKIP = "skip"  # identity; a factorized reduce (two 1×1 convolutions) when it strides
    CONV = "conv"  # ReLU, k×k convolution, batch norm (folded into the convolution by ORT)
    SEP_CONV = "sep_conv"  # two stacked ReLU, depthwise k×k, pointwise 1×1, batch norm blocks
    DIL_CONV = "dil_conv"  # one ReLU, dilated depthwise k×k, pointwise 1×1, batch norm block


@dataclass(frozen=True)
class EdgeOp:
    """One candidate operation of a cell edge: (N, C, H, W) -> (N, C, ⌈H/s⌉, ⌈W/s⌉)."""

    name: str  # the table's `op` column and the space's `ops` entries: never rename
    family: OpFamily
    kernel: int = 1  # spatial window of its widest convolution or pooling (1: pointwise)
    dilation: int = 1  # of that window
    # Strides at which it has no weights. ONNX Runtime's common-subexpression elimination
    # merges such identical nodes on one input, so edges leaving one node with the same
    # parameter-free op are computed once in a fused network.
    parameter_free_strides: tuple[int, ...] = ()

    @property
    def padding(self) -> int:
        """Padding that keeps the size at stride 1 (odd kernels)."""
        return self.dilation * (self.kernel - 1) // 2

    def parameter_free(self, stride: int) -> bool:
        return stride in self.parameter_free_strides


_ANY_STRIDE = (1, 2)

# Registry order is the order of `EDGE_OPS` and of the historic `OPS` dict: keep it.
EDGE_OP_REGISTRY: dict[str, EdgeOp] = {op.name: op for op in (
    EdgeOp("zero", OpFamily.ZERO, parameter_free_strides=_ANY_STRIDE),
    EdgeOp("max_pool_3x3", OpFamily.MAX_POOL, 3, parameter_free_strides=_ANY_STRIDE),
    EdgeOp("avg_pool_3x3", OpFamily.AVG_POOL, 3, parameter_free_strides=_ANY_STRIDE),
    EdgeOp("skip_connect", OpFamily.SKIP, parameter_free_strides=(1,)),
    EdgeOp("conv_3x3", OpFamily.CONV, 3),
    EdgeOp("conv_5x5", OpFamily.CONV, 5),
    EdgeOp("sep_conv_3x3", OpFamily.SEP_CONV, 3),
    EdgeOp("sep_conv_5x5", OpFamily.SEP_CONV, 5),
    EdgeOp("dil_conv_3x3", OpFamily.DIL_CONV, 3, dilation=2),
    EdgeOp("dil_conv_5x5", OpFamily.DIL_CONV, 5, dilation=2),
)}

EDGE_OPS = tuple(EDGE_OP_REGISTRY)  # every edge-op name, in registry order


def edge_op(name: str) -> EdgeOp:
    """The registered op `name`; an unknown name raises with the known ones listed."""
    try:
        return EDGE_OP_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown operation {name!r}; known operations: "
                         f"{', '.join(EDGE_OPS)}") from None
