"""Table round trip, look-ups, and every validation error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TINY_SPACE, synthetic_latency_ms, synthetic_table

from hwnas.arch import keys
from hwnas.arch.space import cell_edges, cell_plans, edge_key, enumerate_entries
from hwnas.latency.model.penalty import device_penalty, op_totals_ms
from hwnas.latency.model.table import (
    METADATA_KEY,
    LatencyTable,
    MissingEntryError,
    TableError,
    read_table,
    write_table,
)


def test_round_trip_keeps_rows_metadata_and_lookups(tmp_path: Path) -> None:
    table = synthetic_table(TINY_SPACE)
    path = write_table(table, tmp_path / "t.parquet")
    back = read_table(path)
    assert back.space == TINY_SPACE
    assert back.backends == ["onnxruntime", "torch"]
    assert back.fingerprint == table.fingerprint == back.meta["fingerprint"]
    for key in enumerate_entries(TINY_SPACE):
        assert back.latency_ms("torch", key) == pytest.approx(synthetic_latency_ms(key))
    schema = pq.read_schema(path)
    assert schema.field("latency_ms").type == pa.float64()
    assert schema.field("stable").type == pa.bool_()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_missing_entry_names_the_key_and_the_fix() -> None:
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    key = enumerate_entries(TINY_SPACE)[0]
    with pytest.raises(MissingEntryError, match=r"no onnxruntime entry for stem .*hwnas profile"):
        table.latency_ms("onnxruntime", key)


def test_device_penalty_is_each_ops_share_on_every_edge() -> None:
    # eager torch, uncalibrated: the model's edge latencies are the table's own entries
    table = synthetic_table(TINY_SPACE, backends=("torch",))
    totals = op_totals_ms(table, "torch")
    expected = {op: sum(synthetic_latency_ms(edge_key(TINY_SPACE, plan, edge, op))
                        for plan in cell_plans(TINY_SPACE) for edge in cell_edges(2))
                for op in TINY_SPACE.ops}
    assert totals == pytest.approx(expected)
    s_dev = device_penalty(table, "torch")
    assert list(s_dev) == list(TINY_SPACE.ops)
    assert sum(s_dev.values()) == pytest.approx(1.0)
    assert max(s_dev, key=s_dev.get) == "conv_3x3"


def _rewrite(path: Path, mutate_rows=None, mutate_meta=None, drop: str | None = None) -> None:
    arrow = pq.read_table(path)
    meta = json.loads(arrow.schema.metadata[METADATA_KEY])
    rows = arrow.to_pandas()
    if mutate_rows:
        rows = mutate_rows(rows)
    if mutate_meta:
        mutate_meta(meta)
    if drop:
        rows = rows.drop(columns=[drop])
    out = pa.Table.from_pandas(rows, preserve_index=False)
    out = out.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    pq.write_table(out, path)


def _set_first(column: str, value: object):
    def mutate(rows):
        rows.loc[0, column] = value
        return rows
    return mutate


def _duplicate_first(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([rows, rows.iloc[[0]]], ignore_index=True)


@pytest.mark.parametrize(("change", "message"), [
    ({"drop": "latency_ms"}, "lacks column.*latency_ms"),
    ({"mutate_meta": lambda m: m.update(schema_version=99)}, "schema version 99"),
    ({"mutate_meta": lambda m: m.pop("space")}, "no space description"),
    ({"mutate_rows": _set_first("latency_ms", float("nan"))}, "NaN or non-positive"),
    ({"mutate_rows": _set_first("latency_ms", 0.0)}, "NaN or non-positive"),
    ({"mutate_rows": _set_first("latency_ms", -1.0)}, "NaN or non-positive"),
    ({"mutate_rows": _duplicate_first}, "duplicate rows for"),
    ({"mutate_rows": _set_first("latency_ms", 123.0)}, "modified after it was written"),
])
def test_reader_rejects_broken_tables(tmp_path: Path, change: dict, message: str) -> None:
    path = write_table(synthetic_table(TINY_SPACE), tmp_path / "t.parquet")
    _rewrite(path, **change)
    with pytest.raises(TableError, match=message):
        read_table(path)


def test_reader_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="not found: make one with `hwnas profile"):
        read_table(tmp_path / "none.parquet")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet")
    with pytest.raises(TableError, match="not a readable Parquet table"):
        read_table(garbage)
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    with pytest.raises(TableError, match="no hwnas metadata"):
        read_table(foreign)


def test_writer_refuses_invalid_rows_and_leaves_no_file(tmp_path: Path) -> None:
    good = synthetic_table(TINY_SPACE)
    table = LatencyTable([*good.records[:3], {**good.records[3], "latency_ms": float("nan")},
                          *good.records[4:]], good.meta)
    with pytest.raises(TableError, match="NaN"):
        write_table(table, tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


def test_call_overhead_is_a_regular_row() -> None:
    table = synthetic_table(TINY_SPACE)
    assert table.latency_ms("torch", keys.call_overhead_key(1)) > 0
