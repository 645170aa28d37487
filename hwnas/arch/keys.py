"""What one table row measured: a frozen, hashable key, and the names it may carry.

The key's fields are the table's shape columns, so a key is both a dict key in memory and a
row address on disk. This module imports no torch, so reading a table stays light;
`latency/entries.py` builds the module a key stands for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict, cast

# Entries that are not edge operations (those are `hwnas.arch.registry.EDGE_OPS`): the
# network's fixed parts and the empty call.
STEM = "stem"
PREPROCESS = "preprocess"  # 1×1 ReLU-Conv-BN adapting a cell input
PREPROCESS_REDUCE = "preprocess_reduce"  # factorized reduce adapting a 2× larger cell input
NODE_SUM = "node_sum"  # sum of `n_inputs` edge outputs into one node
CONCAT = "concat"  # cell output: `n_inputs` nodes concatenated along channels
HEAD = "head"  # global pool + linear classifier; c_out is the class count
CALL_OVERHEAD = "call_overhead"  # an empty call: what the backend costs per invocation
STRUCTURAL = (STEM, PREPROCESS, PREPROCESS_REDUCE, NODE_SUM, CONCAT, HEAD, CALL_OVERHEAD)


@dataclass(frozen=True, order=True)
class EntryKey:
    """One measurable thing at one shape: an edge op or a fixed part of the network."""

    op: str  # a registry.EDGE_OPS name or one of STRUCTURAL
    batch: int
    c_in: int  # channels of each input
    c_out: int
    h: int  # input height and width
    w: int
    stride: int  # 1, or 2 for a reducing edge or part
    n_inputs: int = 1  # inputs of a node_sum or concat
    dtype: str = "float32"

    @property
    def h_out(self) -> int:
        return _out_size(self.op, self.h, self.stride)

    @property
    def w_out(self) -> int:
        return _out_size(self.op, self.w, self.stride)

    def label(self) -> str:
        """Short human-readable form for progress bars and errors."""
        inputs = f"{self.n_inputs}×" if self.n_inputs > 1 else ""
        return (f"{self.op} {inputs}{self.c_in}×{self.h}×{self.w}→{self.c_out}"
                f"×{self.h_out}×{self.w_out} b{self.batch}")

    def to_row(self) -> KeyRow:
        return cast(KeyRow, dataclasses.asdict(self))  # asdict is typed dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> EntryKey:
        return cls(**{f.name: f.type_cast(row[f.name]) for f in _FIELDS})


class KeyRow(TypedDict):
    """An EntryKey as a row's (or a progress record's) key columns."""

    op: str
    batch: int
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int
    n_inputs: int
    dtype: str


def _out_size(op: str, size: int, stride: int) -> int:
    if op == HEAD:
        return 1
    return (size + stride - 1) // stride


@dataclass(frozen=True)
class _Field:
    name: str
    type_cast: type


_FIELDS = tuple(_Field(f.name, str if f.type in ("str", str) else int)
                for f in dataclasses.fields(EntryKey))
KEY_COLUMNS = tuple(f.name for f in _FIELDS)


def call_overhead_key(batch: int, dtype: str = "float32") -> EntryKey:
    """The empty call: identity on a one-element tensor."""
    return EntryKey(CALL_OVERHEAD, batch, 1, 1, 1, 1, 1, dtype=dtype)
