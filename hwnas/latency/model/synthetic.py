"""A table as if profiled, with a known, shape-dependent latency on every entry: for tests,
benchmarks and trying the search without measuring a device."""

from __future__ import annotations

from collections.abc import Callable

from hwnas.arch import keys
from hwnas.arch.space import SearchSpace, enumerate_entries, overhead_entries
from hwnas.latency.model.table import LatencyTable, TableMeta, TableRow


def synthetic_latency_ms(key: keys.EntryKey) -> float:
    """A deterministic, shape-dependent latency: grows with the work an entry does."""
    work = key.c_in * key.h * key.w * key.n_inputs * key.batch
    per_op = {"conv_3x3": 9.0, "conv_5x5": 25.0, "skip_connect": 0.5}.get(key.op, 1.0)
    return 0.002 + 1e-6 * work * per_op


def synthetic_table(space: SearchSpace, backends: tuple[str, ...] = ("torch", "onnxruntime"),
                    latency: Callable[[keys.EntryKey], float] = synthetic_latency_ms
                    ) -> LatencyTable:
    """A table for `space` with `latency(key)` on every entry, as if profiled."""
    records: list[TableRow] = []
    entries = [*enumerate_entries(space), *overhead_entries(space)]
    for backend in backends:
        for key in entries:
            value = latency(key)
            records.append({"backend": backend, "device": "cpu", **key.to_row(),
                            "h_out": key.h_out, "w_out": key.w_out, "latency_ms": value,
                            "median_ms": value, "iqr_ms": 0.0, "n": 10, "rounds": 3,
                            "stable": True})
    meta: TableMeta = {"space": space.to_dict(), "device": "cpu", "device_name": "synthetic"}
    return LatencyTable(records, meta)
