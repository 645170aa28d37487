"""The torch modules of every registered edge operation and of the network's fixed parts.

`OPS` is built from `hwnas.arch.registry`, one factory per op family, and iterated everywhere
(profiler, supernet, exported model), so what is measured, what is trained and what is
deployed can never disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from hwnas.arch.registry import EDGE_OPS, EdgeOp, OpFamily, edge_op

# An edge operation factory: (channels, stride) -> module mapping (N, C, H, W) to
# (N, C, H/stride, W/stride). Affine batch norm everywhere: the searched supernet and the
# exported network use the same modules.
OpFactory = Callable[[int, int], nn.Module]


class ReLUConvBN(nn.Module):
    """ReLU, then a k×k convolution, then batch norm (the DARTS convolution block)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int = 1) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, depthwise dilated k×k convolution, pointwise convolution, batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked dilation-1 DilConv blocks; only the first one strides (as in DARTS)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel, stride, padding, dilation=1),
            DilConv(c_in, c_out, kernel, 1, padding, dilation=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halves H and W with two offset stride-2 1×1 convolutions, concatenated (needs even H, W)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even output channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # a contiguous copy: PyTorch's CPU convolution on the strided view is ~5x slower
        shifted = x[:, :, 1:, 1:].contiguous()
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """The 'no connection' op: zeros of the output shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def _zero(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return Zero(stride)


def _max_pool(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return nn.MaxPool2d(op.kernel, stride=stride, padding=op.padding)


def _avg_pool(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return nn.AvgPool2d(op.kernel, stride=stride, padding=op.padding, count_include_pad=False)


def _skip(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)


def _conv(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return ReLUConvBN(channels, channels, op.kernel, stride, op.padding, op.dilation)


def _sep_conv(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return SepConv(channels, channels, op.kernel, stride, op.padding)


def _dil_conv(op: EdgeOp, channels: int, stride: int) -> nn.Module:
    return DilConv(channels, channels, op.kernel, stride, op.padding, op.dilation)


# The module of each op family, shaped by the registry entry's kernel and dilation.
_BUILDERS: dict[OpFamily, Callable[[EdgeOp, int, int], nn.Module]] = {
    OpFamily.ZERO: _zero, OpFamily.MAX_POOL: _max_pool, OpFamily.AVG_POOL: _avg_pool,
    OpFamily.SKIP: _skip, OpFamily.CONV: _conv, OpFamily.SEP_CONV: _sep_conv,
    OpFamily.DIL_CONV: _dil_conv,
}


def make_op(name: str, channels: int, stride: int) -> nn.Module:
    """Build edge operation `name`; an unknown name raises with the known ones listed."""
    op = edge_op(name)
    return _BUILDERS[op.family](op, channels, stride)


# Every registered edge op's factory, in registry order (the DARTS `OPS` dict).
OPS: dict[str, OpFactory] = {name: functools.partial(make_op, name) for name in EDGE_OPS}


class NodeSum(nn.Module):
    """Sum of a cell node's k incoming edge outputs."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Concat(nn.Module):
    """Concatenation of a cell's intermediate nodes along channels (the cell output)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


class Head(nn.Module):
    """Global average pooling, then the linear classifier."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(x).flatten(1))


def stem(c_in: int, c_out: int) -> nn.Module:
    """3×3 convolution and batch norm on the input image."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))


def preprocess(c_in: int, c_out: int, reduce: bool) -> nn.Module:
    """Cell input adapter: 1×1 ReLU-Conv-BN, or a factorized reduce when the input is 2× larger."""
    return FactorizedReduce(c_in, c_out) if reduce else ReLUConvBN(c_in, c_out, 1, 1, 0)
