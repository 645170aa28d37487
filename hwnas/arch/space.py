"""The search space: a frozen description, its named presets, and every shape it contains.

From a space, `cell_plans` derives each cell's channels and spatial sizes exactly as the
network builds them, and `enumerate_entries` lists every (entry, shape) the profiler must
measure: every candidate op on every edge of every cell, plus the fixed parts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.arch import keys
from hwnas.arch.keys import EntryKey
from hwnas.arch.registry import EDGE_OPS
from hwnas.errors import UserError


class SpaceError(UserError, ValueError):
    """A space description that cannot be built; the message names the field and the fix."""


@dataclass(frozen=True)
class SearchSpace:
    """A DARTS-style space: stem → cells → global pool → linear."""

    name: str
    ops: tuple[str, ...]  # candidate edge operations, in penalty-vector order
    channels: int = 8  # C: channels of the first cell's nodes; doubled at each reduction cell
    input_channels: int = 1
    input_size: int = 28  # input images are input_size × input_size
    classes: int = 10
    cells: int = 3
    nodes: int = 4  # intermediate nodes per cell
    reduction_cells: tuple[int, ...] = (1, 2)  # indices of the stride-2 cells
    stem_multiplier: int = 3  # stem output channels = stem_multiplier × channels
    batch_size: int = 1  # batch of the measured (deployed) network
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _check(self)

    @property
    def edges_per_cell(self) -> int:
        return len(cell_edges(self.nodes))

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of everything that decides the network's shapes and operations."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SearchSpace:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpaceError(f"unknown space field(s) {', '.join(unknown)}; "
                             f"known fields: {', '.join(sorted(known))}")
        if "name" not in data or "ops" not in data:
            raise SpaceError("a space needs at least 'name' and 'ops'")
        values: dict[str, Any] = dict(data)  # checked by __post_init__
        for field in ("ops", "reduction_cells"):
            if field in values:
                values[field] = tuple(values[field])
        return cls(**values)


def _check(space: SearchSpace) -> None:
    if not space.ops:
        raise SpaceError("a space needs at least one operation in 'ops'")
    unknown = [op for op in space.ops if op not in EDGE_OPS]
    if unknown:
        raise SpaceError(f"unknown operation(s) {', '.join(unknown)} in space {space.name!r}; "
                         f"known operations: {', '.join(EDGE_OPS)}")
    if len(set(space.ops)) != len(space.ops):
        raise SpaceError(f"space {space.name!r} lists an operation twice: {space.ops}")
    for field in ("channels", "input_channels", "input_size", "classes", "cells", "nodes",
                  "stem_multiplier", "batch_size"):
        if not isinstance(getattr(space, field), int) or getattr(space, field) < 1:
            raise SpaceError(f"space field {field!r} must be a positive integer, "
                             f"got {getattr(space, field)!r}")
    if space.channels % 2:
        raise SpaceError(f"'channels' must be even (factorized reduce halves it), "
                         f"got {space.channels}")
    if any(not 0 <= i < space.cells for i in space.reduction_cells):
        raise SpaceError(f"'reduction_cells' {space.reduction_cells} must be cell indices "
                         f"in 0..{space.cells - 1}")
    size_at_reduction = space.input_size
    for _ in space.reduction_cells:
        if size_at_reduction % 2:
            raise SpaceError(f"input_size {space.input_size} cannot be halved "
                             f"{len(space.reduction_cells)} times evenly; use a multiple "
                             f"of {2 ** len(space.reduction_cells)}")
        size_at_reduction //= 2
    if space.dtype not in ("float32", "float16", "bfloat16"):
        raise SpaceError(f"'dtype' must be float32, float16 or bfloat16, got {space.dtype!r}")


EXP1_OPS = ("max_pool_3x3", "skip_connect", "conv_3x3")
EXP2_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "conv_3x3", "conv_5x5")
DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")

# The paper's experiments (seed 004): exp1/exp2 on Fashion-MNIST (1×28×28), exp3 on
# CIFAR-10 (3×32×32); `darts` is the DARTS operation set on CIFAR-sized input.
PRESETS: dict[str, SearchSpace] = {
    "exp1": SearchSpace("exp1", EXP1_OPS),
    "exp2": SearchSpace("exp2", EXP2_OPS),
    "exp3": SearchSpace("exp3", EXP1_OPS, channels=16, input_channels=3, input_size=32),
    "darts": SearchSpace("darts", DARTS_OPS, channels=16, input_channels=3, input_size=32),
}
DEFAULT_PRESET = "exp1"


def load_space(name_or_path: str) -> SearchSpace:
    """A preset by name, or a space from a .json or .toml file."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".json", ".toml"):
        raise SpaceError(f"unknown space {name_or_path!r}: use a preset "
                         f"({', '.join(PRESETS)}) or a .json/.toml file")
    if not path.is_file():
        raise SpaceError(f"space file {path} not found: check the path, or use a preset "
                         f"({', '.join(PRESETS)})")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpaceError(f"space file {path} is not valid {path.suffix[1:]}: {exc}") from None
    if not isinstance(data, dict):
        raise SpaceError(f"space file {path} must hold one object of space fields")
    return SearchSpace.from_dict(data)


def cell_edges(nodes: int) -> list[tuple[int, int]]:
    """Edges (i, j) of a cell, in DARTS order: for each intermediate node j, every earlier i.

    Nodes 0 and 1 are the two cell inputs; 2..nodes+1 are intermediate.
    """
    return [(i, j) for j in range(2, nodes + 2) for i in range(j)]


@dataclass(frozen=True)
class CellPlan:
    """The shapes inside one cell of the network."""

    index: int
    reduction: bool
    reduction_prev: bool  # input 0 is twice the size of input 1: preprocess with a reduce
    c_prev_prev: int  # channels of input 0 (the cell before the previous)
    c_prev: int  # channels of input 1 (the previous cell)
    channels: int  # channels of every node inside the cell
    size_in: int  # spatial size of input 1 (and of input 0 after preprocessing)
    size_out: int
    c_out: int  # channels of the cell output: the intermediate nodes concatenated

    def edge_stride(self, edge: tuple[int, int]) -> int:
        """Edges leaving the two cell inputs stride 2 in a reduction cell."""
        return 2 if self.reduction and edge[0] < 2 else 1

    def edge_size(self, edge: tuple[int, int]) -> int:
        """Spatial size of an edge's input."""
        return self.size_in if edge[0] < 2 else self.size_out


def cell_plans(space: SearchSpace) -> list[CellPlan]:
    """Channels and sizes of every cell, as the DARTS network builds them."""
    c_stem = space.stem_multiplier * space.channels
    c_prev_prev, c_prev, c = c_stem, c_stem, space.channels
    size, reduction_prev = space.input_size, False
    plans = []
    for index in range(space.cells):
        reduction = index in space.reduction_cells
        if reduction:
            c *= 2
        size_out = size // 2 if reduction else size
        plans.append(CellPlan(index, reduction, reduction_prev, c_prev_prev, c_prev, c, size,
                              size_out, space.nodes * c))
        c_prev_prev, c_prev = c_prev, space.nodes * c
        size, reduction_prev = size_out, reduction
    return plans


def edge_key(space: SearchSpace, plan: CellPlan, edge: tuple[int, int], op: str) -> EntryKey:
    """The table entry of operation `op` on `edge` of the cell described by `plan`."""
    size = plan.edge_size(edge)
    return EntryKey(op, space.batch_size, plan.channels, plan.channels, size, size,
                    plan.edge_stride(edge), dtype=space.dtype)


def fixed_entries(space: SearchSpace) -> list[EntryKey]:
    """The network's fixed parts, once per occurrence: stem, each cell's two preprocessing
    blocks, node sums and concatenation, and the head. Same for every architecture."""
    b, dt = space.batch_size, space.dtype
    c_stem = space.stem_multiplier * space.channels
    entries = [EntryKey(keys.STEM, b, space.input_channels, c_stem, space.input_size,
                        space.input_size, 1, dtype=dt)]
    plans = cell_plans(space)
    for plan in plans:
        c, size_in, size_out = plan.channels, plan.size_in, plan.size_out
        if plan.reduction_prev:
            entries.append(EntryKey(keys.PREPROCESS_REDUCE, b, plan.c_prev_prev, c, 2 * size_in,
                                    2 * size_in, 2, dtype=dt))
        else:
            entries.append(EntryKey(keys.PREPROCESS, b, plan.c_prev_prev, c, size_in, size_in,
                                    1, dtype=dt))
        entries.append(EntryKey(keys.PREPROCESS, b, plan.c_prev, c, size_in, size_in, 1,
                                dtype=dt))
        for node in range(2, space.nodes + 2):
            entries.append(EntryKey(keys.NODE_SUM, b, c, c, size_out, size_out, 1,
                                    n_inputs=node, dtype=dt))
        entries.append(EntryKey(keys.CONCAT, b, c, plan.c_out, size_out, size_out, 1,
                                n_inputs=space.nodes, dtype=dt))
    last = plans[-1]
    entries.append(EntryKey(keys.HEAD, b, last.c_out, space.classes, last.size_out,
                            last.size_out, 1, dtype=dt))
    return entries


def enumerate_entries(space: SearchSpace) -> list[EntryKey]:
    """Every distinct entry the network contains, for every candidate op on every edge."""
    found = dict.fromkeys(fixed_entries(space))
    for plan in cell_plans(space):
        for edge in cell_edges(space.nodes):
            for op in space.ops:
                found.setdefault(edge_key(space, plan, edge, op))
    return list(found)


def overhead_entries(space: SearchSpace) -> list[EntryKey]:
    """Empty calls (identity) at three sizes: one element, a first-cell node, and a first-cell
    output. A backend's per-call cost grows with the bytes it moves in and out; these three
    let the latency model subtract the right overhead from every entry."""
    b, dt, size = space.batch_size, space.dtype, space.input_size
    node = space.channels
    return [keys.call_overhead_key(b, dt),
            EntryKey(keys.CALL_OVERHEAD, b, node, node, size, size, 1, dtype=dt),
            EntryKey(keys.CALL_OVERHEAD, b, space.nodes * node, space.nodes * node, size, size,
                     1, dtype=dt)]
