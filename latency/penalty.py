"""Per-operation totals on a table and the device penalty vector `s_dev`.

`s_dev[m]` is operation m's share of the latency if m sat on every edge of every cell: a
point on the simplex saying which operations are expensive on this device.
"""

from __future__ import annotations

from latency.space import cell_edges, cell_plans, edge_key
from latency.table import LatencyTable


def op_totals_ms(table: LatencyTable, backend: str) -> dict[str, float]:
    """For each op of the table's space: summed latency with that op on every edge."""
    space = table.space
    totals = dict.fromkeys(space.ops, 0.0)
    for plan in cell_plans(space):
        for edge in cell_edges(space.nodes):
            for op in space.ops:
                totals[op] += table.latency_ms(backend, edge_key(space, plan, edge, op))
    return totals


def device_penalty(table: LatencyTable, backend: str) -> dict[str, float]:
    """`s_dev`: each op's share of the per-op totals (sums to 1, in the space's op order)."""
    totals = op_totals_ms(table, backend)
    whole = sum(totals.values())
    return {op: total / whole for op, total in totals.items()}
