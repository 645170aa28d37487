"""Two latency tables of one space side by side: per op and per entry, their ratio, each
table's `s_dev`, and where the two devices rank the operations differently."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from hwnas.arch import keys
from hwnas.arch.registry import EDGE_OPS
from hwnas.errors import UserError
from hwnas.latency.model.penalty import device_penalty, op_totals_ms
from hwnas.latency.model.table import LatencyTable


@dataclass(frozen=True)
class Comparison:
    ops: pd.DataFrame  # op, a_ms, b_ms, ratio (b / a), a_s_dev, b_s_dev
    entries: pd.DataFrame  # entry, op, a_ms, b_ms, ratio (b / a)
    rank_changes: list[str]  # each: where A and B order two ops the other way round

    def to_dict(self) -> dict[str, object]:
        return {"ops": self.ops.to_dict("records"), "entries": self.entries.to_dict("records"),
                "rank_changes": self.rank_changes}


def default_backend(table: LatencyTable, other: LatencyTable) -> str:
    """The backend to compare when none is named: onnxruntime when both tables have it (the
    runtime every device can run), else one they share, else the table's only one."""
    shared = [b for b in table.backends if b in other.backends]
    if "onnxruntime" in shared:
        return "onnxruntime"
    if shared:
        return shared[0]
    if len(table.backends) == 1:
        return table.backends[0]
    raise UserError(f"the tables share no backend (A has {', '.join(table.backends)}, B has "
                    f"{', '.join(other.backends)}): pass --backend-a and --backend-b")


def compare(a: LatencyTable, b: LatencyTable, backend_a: str, backend_b: str) -> Comparison:
    """A against B; UserError when they measured other spaces or lack the backend."""
    if a.space.fingerprint() != b.space.fingerprint():
        raise UserError(f"the tables measured different spaces: A {a.space.name!r} "
                        f"({a.space.fingerprint()}), B {b.space.name!r} "
                        f"({b.space.fingerprint()}); compare tables of one space")
    for name, table, backend in (("A", a, backend_a), ("B", b, backend_b)):
        if backend not in table.backends:
            raise UserError(f"table {name} has no {backend} entries (it has "
                            f"{', '.join(table.backends)}): pass --backend-{name.lower()}")
    totals_a, totals_b = op_totals_ms(a, backend_a), op_totals_ms(b, backend_b)
    share_a, share_b = device_penalty(a, backend_a), device_penalty(b, backend_b)
    ops = pd.DataFrame([{"op": op, "a_ms": totals_a[op], "b_ms": totals_b[op],
                         "ratio": totals_b[op] / totals_a[op] if totals_a[op] else None,
                         "a_s_dev": share_a[op], "b_s_dev": share_b[op]}
                        for op in a.space.ops])
    entries = _entries(a, b, backend_a, backend_b)
    return Comparison(ops, entries, _op_order_changes(totals_a, totals_b, "on every edge")
                      + _shape_changes(entries))


def _entries(a: LatencyTable, b: LatencyTable, backend_a: str, backend_b: str) -> pd.DataFrame:
    rows = []
    for record in (row for row in a.records if row["backend"] == backend_a):
        key = keys.EntryKey.from_row(record)
        if b.has(backend_b, key):
            a_ms, b_ms = float(record["latency_ms"]), b.latency_ms(backend_b, key)
            rows.append({"entry": key.label(), "op": key.op, "shape": _shape(key),
                         "a_ms": a_ms, "b_ms": b_ms, "ratio": b_ms / a_ms})
    return pd.DataFrame(rows)


def _shape(key: keys.EntryKey) -> str:
    return f"{key.c_in}×{key.h}×{key.w} stride {key.stride}"


def _op_order_changes(a_ms: dict[str, float], b_ms: dict[str, float], where: str) -> list[str]:
    """Pairs of ops that A and B order the other way round."""
    changes = []
    for first, second in itertools.combinations(a_ms, 2):
        if (a_ms[first] - a_ms[second]) * (b_ms[first] - b_ms[second]) < 0:
            cheap_a, cheap_b = ((first, second) if a_ms[first] < a_ms[second]
                                else (second, first))
            changes.append(f"{where}: {cheap_a} is cheaper on A, {cheap_b} on B")
    return changes


def _shape_changes(entries: pd.DataFrame) -> list[str]:
    """At each edge shape, the ops the two tables order differently."""
    changes: list[str] = []
    if entries.empty:
        return changes
    edges = entries[entries["op"].isin(EDGE_OPS)]
    for shape, group in edges.groupby("shape", sort=False):
        changes += _op_order_changes(dict(zip(group["op"], group["a_ms"], strict=True)),
                                     dict(zip(group["op"], group["b_ms"], strict=True)),
                                     f"edges at {shape}")
    return changes
