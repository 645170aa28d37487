"""Nodes of ONNX Runtime's optimised graph of a discrete architecture, counted without a session.

ONNX Runtime (CPU, ORT_ENABLE_ALL) rewrites the exported network before running it: it merges
identical parameter-free nodes (common-subexpression elimination), folds batch norm into the
convolution before it, fuses a ReLU into the convolution it alone follows, and then moves the
convolutions, pools and whatever it can around them into a blocked channel layout (NCHWc),
where an Add whose input is a single-use convolution is folded into that convolution and
tensors crossing between the layouts get a ReorderInput or ReorderOutput node. Which Adds
survive and how many reorders appear depend on the whole genotype, not on any one edge, so
the table's per-op entries cannot see them. This module replays those rewrites on the
network the genotype describes (the rules of ONNX Runtime's `nchwc_transformer.cc`, ORT
1.2x–1.3x) and counts the nodes; `tests/test_ort_graph.py` checks the counts against the
graph a real session writes out.

`block` is the NCHWc channel block of the machine's ONNX Runtime: 16 with AVX-512, 8 with
AVX2, 1 (no NCHWc layout at all) elsewhere; `nchwc_block()` asks ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwnas.arch.registry import EDGE_OP_REGISTRY, EdgeOp, OpFamily, edge_op
from hwnas.arch.space import CellPlan, SearchSpace, cell_edges, cell_plans
from hwnas.latency.runner.nchwc import PROBE_CHANNELS
from hwnas.latency.runner.nchwc import nchwc_block as asked_block

if TYPE_CHECKING:
    from hwnas.arch.genotypes import Genotype

TERMS = ("add_nodes", "reorder_nodes")  # the counts, in the order `counts` returns them


def models(space: SearchSpace) -> bool:
    """Whether the replay knows every op of `space`."""
    return set(space.ops) <= SUPPORTED_OPS


@dataclass
class _Node:
    """One node of the graph after ONNX Runtime's level-1 and level-2 rewrites."""

    op: str  # Conv, Relu, Add, Concat, BatchNormalization, MaxPool, AveragePool,
    #          GlobalAveragePool, Slice, Flatten, Gemm
    inputs: list[int]
    output: int
    channels: int  # output channels
    c_in: int = 0  # Conv: input channels per group × groups
    groups: int = 1  # Conv
    activation: bool = False  # Conv: a ReLU fused into it
    has_sum: bool = False  # NCHWc Conv: an Add folded into it
    blocked: bool = False  # rewritten into the NCHWc layout


@dataclass
class _Graph:
    """The exported network as ONNX Runtime sees it after common-subexpression elimination."""

    nodes: list[_Node] = field(default_factory=list)
    channels: dict[int, int] = field(default_factory=dict)  # value -> channels
    _seen: dict[tuple[object, ...], int] = field(default_factory=dict)

    def value(self, channels: int) -> int:
        self.channels[len(self.channels)] = channels
        return len(self.channels) - 1

    def emit(self, op: str, inputs: list[int], channels: int, attributes: tuple[object, ...] = (),
             weighted: bool = False, c_in: int = 0, groups: int = 1) -> int:
        """Add a node and return its output; an identical parameter-free node on the same
        inputs is the same computation, and returns the existing output instead."""
        key = (op, tuple(inputs), attributes)
        if not weighted and key in self._seen:
            return self._seen[key]
        output = self.value(channels)
        self.nodes.append(_Node(op, inputs, output, channels, c_in, groups))
        if not weighted:
            self._seen[key] = output
        return output

    def conv(self, x: int, c_out: int, kernel: int, stride: int, groups: int = 1,
             dilation: int = 1) -> int:
        return self.emit("Conv", [x], c_out, (kernel, stride, dilation), weighted=True,
                         c_in=self.channels[x], groups=groups)


def _factorized_reduce(graph: _Graph, x: int, c_out: int) -> int:
    relu = graph.emit("Relu", [x], graph.channels[x])
    first = graph.conv(relu, c_out // 2, 1, 2)
    shifted = graph.emit("Slice", [graph.emit("Slice", [relu], graph.channels[x], (2,))],
                         graph.channels[x], (3,))
    second = graph.conv(shifted, c_out // 2, 1, 2)
    joined = graph.emit("Concat", [first, second], c_out, weighted=True)
    return graph.emit("BatchNormalization", [joined], c_out, weighted=True)


def _dil_conv(graph: _Graph, x: int, c_out: int, kernel: int, stride: int,
              dilation: int) -> int:
    c = graph.channels[x]
    depthwise = graph.conv(graph.emit("Relu", [x], c), c, kernel, stride, groups=c,
                           dilation=dilation)
    return graph.conv(depthwise, c_out, 1, 1)


def _pool(graph: _Graph, node: str, op: EdgeOp, x: int, stride: int) -> int:
    return graph.emit(node, [x], graph.channels[x], (op.kernel, stride))


def _max_pool(graph: _Graph, op: EdgeOp, x: int, stride: int) -> int:
    return _pool(graph, "MaxPool", op, x, stride)


def _avg_pool(graph: _Graph, op: EdgeOp, x: int, stride: int) -> int:
    return _pool(graph, "AveragePool", op, x, stride)


def _skip(graph: _Graph, op: EdgeOp, x: int, stride: int) -> int:
    return x if stride == 1 else _factorized_reduce(graph, x, graph.channels[x])


def _conv(graph: _Graph, op: EdgeOp, x: int, stride: int) -> int:
    c = graph.channels[x]
    return graph.conv(graph.emit("Relu", [x], c), c, op.kernel, stride, dilation=op.dilation)


def _sep_conv(graph: _Graph, op: EdgeOp, x: int, stride: int) -> int:
    c = graph.channels[x]
    return _dil_conv(graph, _dil_conv(graph, x, c, op.kernel, stride, 1), c, op.kernel, 1, 1)


def _dil_conv_edge(graph: _Graph, op: EdgeOp, x: int, stride: int) -> int:
    return _dil_conv(graph, x, graph.channels[x], op.kernel, stride, op.dilation)


# The exported nodes of each registered op family (batch norm already folded into the
# convolution before it); `zero` exports a Mul the replay does not model.
_REPLAYS: dict[OpFamily, Callable[[_Graph, EdgeOp, int, int], int]] = {
    OpFamily.MAX_POOL: _max_pool, OpFamily.AVG_POOL: _avg_pool, OpFamily.SKIP: _skip,
    OpFamily.CONV: _conv, OpFamily.SEP_CONV: _sep_conv, OpFamily.DIL_CONV: _dil_conv_edge,
}
# Registered ops whose exported form the replay knows.
SUPPORTED_OPS = frozenset(name for name, op in EDGE_OP_REGISTRY.items() if op.family in _REPLAYS)


def _edge(graph: _Graph, name: str, x: int, stride: int) -> int:
    op = edge_op(name)
    return _REPLAYS[op.family](graph, op, x, stride)


def _cell(graph: _Graph, space: SearchSpace, plan: CellPlan, ops: tuple[str, ...], s0: int,
          s1: int) -> int:
    c = plan.channels
    states = [_factorized_reduce(graph, s0, c) if plan.reduction_prev
              else graph.conv(graph.emit("Relu", [s0], graph.channels[s0]), c, 1, 1),
              graph.conv(graph.emit("Relu", [s1], graph.channels[s1]), c, 1, 1)]
    edges = cell_edges(space.nodes)
    index = 0
    for _ in range(space.nodes):
        total = None
        for source in range(len(states)):
            out = _edge(graph, ops[index], states[source], plan.edge_stride(edges[index]))
            total = out if total is None else graph.emit("Add", [total, out], c)
            index += 1
        assert total is not None  # every node sums at least the two cell inputs' edges
        states.append(total)
    return graph.emit("Concat", states[2:], plan.c_out)


def exported_graph(space: SearchSpace, genotype: Genotype) -> _Graph:
    """The network after common-subexpression elimination, batch-norm folding and Conv+ReLU
    fusion (ONNX Runtime's basic and extended rewrites)."""
    unknown = sorted(set(genotype.normal + genotype.reduce) - SUPPORTED_OPS)
    if unknown:
        raise ValueError(f"the ONNX Runtime graph replay does not model {', '.join(unknown)}")
    graph = _Graph()
    x = graph.value(space.input_channels)
    s0 = s1 = graph.conv(x, space.stem_multiplier * space.channels, 3, 1)
    for plan in cell_plans(space):
        s0, s1 = s1, _cell(graph, space, plan, genotype.for_cell(plan), s0, s1)
    pooled = graph.emit("GlobalAveragePool", [s1], graph.channels[s1])
    flat = graph.emit("Flatten", [pooled], graph.channels[s1])
    graph.emit("Gemm", [flat], space.classes, weighted=True)
    _fuse_conv_relu(graph)
    return graph


def _uses(graph: _Graph) -> dict[int, int]:
    uses = dict.fromkeys(graph.channels, 0)
    for node in graph.nodes:
        for value in node.inputs:
            uses[value] += 1
    uses[graph.nodes[-1].output] += 1  # the graph output
    return uses


def _fuse_conv_relu(graph: _Graph) -> None:
    """A ReLU that alone consumes a convolution's output becomes the convolution's
    activation (ONNX Runtime's Conv+activation fusion)."""
    uses = _uses(graph)
    producer = {node.output: node for node in graph.nodes}
    kept = []
    for node in graph.nodes:
        source = producer.get(node.inputs[0]) if node.inputs else None
        if (node.op == "Relu" and source is not None and source.op == "Conv"
                and uses[source.output] == 1 and not source.activation):
            source.activation = True
            _rename(graph, node.output, source.output)
            continue
        kept.append(node)
    graph.nodes = kept


def _rename(graph: _Graph, old: int, new: int) -> None:
    for node in graph.nodes:
        node.inputs = [new if value == old else value for value in node.inputs]


@dataclass
class _Blocked:
    """A value ONNX Runtime holds in the NCHWc layout (its NchwcArgument)."""

    producer: _Node
    starting_uses: int
    remaining_uses: int  # consumers still reading the plain layout: a ReorderOutput if > 0
    channels: int


def counts(space: SearchSpace, genotype: Genotype, block: int) -> tuple[int, int]:
    """(Add nodes, ReorderInput + ReorderOutput nodes) of ONNX Runtime's optimised graph."""
    graph = exported_graph(space, genotype)
    adds = sum(node.op == "Add" for node in graph.nodes)
    if block <= 1:
        return adds, 0
    layout = _Nchwc(block, _uses(graph))
    for node in graph.nodes:
        layout.rewrite(node)
    return adds - layout.folded_adds, layout.reorders()


class _Nchwc:
    """ONNX Runtime's NCHWc rewrite, node by node in topological order: which nodes move to
    the blocked layout, which Adds fold into a convolution, where the layouts meet."""

    def __init__(self, block: int, uses: dict[int, int]) -> None:
        self.block = block
        self.uses = uses  # consumers of each value (a graph output counts as one)
        self.blocked: dict[int, _Blocked] = {}  # value -> its blocked form
        self.reordered_inputs: set[int] = set()  # plain values a ReorderInput blocks
        self.folded_adds = 0

    def reorders(self) -> int:
        """ReorderInputs, plus a ReorderOutput per blocked value some consumer reads plain."""
        outputs = sum(arg.remaining_uses > 0 for arg in self.blocked.values())
        return len(self.reordered_inputs) + outputs

    def _block(self, node: _Node, producer: _Node, channels: int) -> None:
        node.blocked = True
        self.blocked[node.output] = _Blocked(producer, self.uses[node.output],
                                             self.uses[node.output], channels)

    def _take(self, value: int) -> None:
        """A blocked node reads `value`: in its blocked form, or through a ReorderInput."""
        if value in self.blocked:
            self.blocked[value].remaining_uses -= 1
        else:
            self.reordered_inputs.add(value)

    def rewrite(self, node: _Node) -> None:
        if node.op == "Conv":
            self._conv(node)
        elif node.op in ("MaxPool", "AveragePool"):
            if node.channels % self.block == 0:
                self._take(node.inputs[0])
                self._block(node, node, node.channels)
        elif node.inputs and all(value in self.blocked for value in node.inputs):
            # the other rewrites apply only when every input is already blocked
            self._consumer(node, [self.blocked[value] for value in node.inputs])

    def _conv(self, node: _Node) -> None:
        if node.groups > 1:
            if node.channels % 4 or node.c_in != node.groups:
                return  # of grouped convolutions only depthwise ones occur here
            self._take(node.inputs[0])
        elif node.c_in >= self.block:
            if node.c_in % 4:
                return
            self._take(node.inputs[0])
        # with fewer input channels than a block it reads the plain layout directly
        self._block(node, node, node.channels)

    def _consumer(self, node: _Node, inputs: list[_Blocked]) -> None:
        if node.op == "GlobalAveragePool" and node.channels % self.block:
            return
        if node.op == "Concat" and any(arg.channels % self.block for arg in inputs):
            return
        if node.op not in ("GlobalAveragePool", "Concat", "Add", "Relu", "BatchNormalization"):
            return
        for arg in inputs:
            arg.remaining_uses -= 1
        producer = node
        if node.op == "Add":  # folds into a single-use convolution that has no Add yet
            target = next((arg.producer for arg in inputs if _open_conv(arg)
                           and not arg.producer.has_sum), None)
            if target is not None:
                target.has_sum = True
                self.folded_adds += 1
                producer = target
        elif node.op == "Relu" and _open_conv(inputs[0]):  # becomes the activation
            inputs[0].producer.activation = True
            producer = inputs[0].producer
        elif node.op == "BatchNormalization":
            node.op = "Conv"  # a depthwise 1×1 convolution in the blocked layout
        channels = node.channels if node.op in ("Concat", "GlobalAveragePool") else \
            inputs[0].channels
        self._block(node, producer, channels)


def _open_conv(arg: _Blocked) -> bool:
    """A blocked convolution read by one consumer only, with no activation fused yet."""
    return (arg.producer.op == "Conv" and arg.starting_uses == 1
            and not arg.producer.activation)


def optimised_ops(model: bytes) -> list[tuple[str, str]]:
    """(op type, first input) of every node of the graph ONNX Runtime makes of an ONNX model
    (CPU, every optimisation, as hwnas sessions run): what the replay is checked against."""
    import os
    import tempfile

    import onnx

    from hwnas.latency.runner.ort_session import CPU_PROVIDER, ort, session_options

    options = session_options(1)
    with tempfile.TemporaryDirectory() as folder:
        options.optimized_model_filepath = os.path.join(folder, "optimised.onnx")
        ort.InferenceSession(model, options, providers=[CPU_PROVIDER])
        graph = onnx.load(options.optimized_model_filepath).graph
    return [(node.op_type, node.input[0] if node.input else "") for node in graph.node]


def session_counts(model: bytes) -> tuple[int, int]:
    """What `counts` replays, read from a real session's optimised graph of `model`."""
    ops = [op for op, _ in optimised_ops(model)]
    return ops.count("Add"), ops.count("ReorderInput") + ops.count("ReorderOutput")


def nchwc_block() -> int:
    """This machine's NCHWc block, asked of ONNX Runtime (`hwnas.latency.runner.nchwc`, the
    very code a bundle runner asks a target's with)."""
    return asked_block(probe_model())


def probe_model() -> bytes:
    """The ONNX model `runner.nchwc` probes with: a 1×1 convolution per channel count of
    `PROBE_CHANNELS`, from input `x{c}` (1×c×8×8) to 16 channels."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes, inputs, outputs, weights = [], [], [], []
    for c in PROBE_CHANNELS:
        inputs.append(helper.make_tensor_value_info(f"x{c}", TensorProto.FLOAT, [1, c, 8, 8]))
        outputs.append(helper.make_tensor_value_info(f"y{c}", TensorProto.FLOAT, [1, 16, 8, 8]))
        weights.append(numpy_helper.from_array(np.ones((16, c, 1, 1), np.float32), f"w{c}"))
        nodes.append(helper.make_node("Conv", [f"x{c}", f"w{c}"], [f"y{c}"]))
    graph = helper.make_graph(nodes, "probe", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()
