"""Per-operation totals on a table and the device penalty vector `s_dev`.

`s_dev[m]` is operation m's share of the latency if m sat on every edge of every cell: a
point on the simplex saying which operations are expensive on this device. Edge latencies
come from the latency model (per-call overhead removed on fused backends, calibrated when the
table carries a calibration), so the shares are what the ops cost inside a whole network.
"""

from __future__ import annotations

from hwnas.latency.model.predict import latency_model
from hwnas.latency.model.table import LatencyTable


def op_totals_ms(table: LatencyTable, backend: str) -> dict[str, float]:
    """For each op of the table's space: its latency summed over every edge of every cell."""
    model = latency_model(table, backend, warn=False)
    totals = dict.fromkeys(table.space.ops, 0.0)
    for cell in model.scaled_edge_ms():
        for choices in cell:
            for op, ms in choices.items():
                totals[op] += ms
    return totals


def device_penalty(table: LatencyTable, backend: str) -> dict[str, float]:
    """`s_dev`: each op's share of the per-op totals (sums to 1, in the space's op order)."""
    totals = op_totals_ms(table, backend)
    whole = sum(totals.values())
    return {op: total / whole for op, total in totals.items()}
