"""The family caches in a run folder, read as plain records (pyarrow: no torch, no pandas), and
the test accuracy of the members `pick` has chosen (`pick_test.json`).

`family.parquet` holds each member's validation accuracy, size, op counts and where it was met:
computed once per checkpoint. `family-latency-<fingerprint>.parquet` holds each member's
predicted latency on one table, one file per table fingerprint, so pricing the family with
another device's table (`pick --table`) needs no network and answers from the cache the second
time. A cache is valid for one checkpoint (its size and modification time) and one table: a
resumed run or a re-profiled table makes it stale, and it is computed again. A test figure is
computed for a pick, after it was chosen, and kept apart so nothing can ever be chosen on it.
`rerank.json` holds the validation accuracy of `pick --rerank`'s finalists after their short
fine-tune (`hwnas.search.family.rerank`), so a repeated pick trains nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hwnas.latency.model.table import Record, read_parquet
from hwnas.latency.runner.files import atomic_write
from hwnas.search.config import SPLITS_VERSION
from hwnas.search.supernet.run_folder import CHECKPOINT_FILE

FAMILY_FILE = "family.parquet"
FAMILY_KEY = b"hwnas-family"
PICK_TEST_FILE = "pick_test.json"  # {"checkpoint": key, "test_accuracy": {genotype: value}}
RERANK_FILE = "rerank.json"  # {"checkpoint": key, "finetuned": {finalist key: result}}


def checkpoint_key(run_dir: Path) -> list[int]:
    checkpoint = (run_dir / CHECKPOINT_FILE).stat()
    return [checkpoint.st_size, checkpoint.st_mtime_ns]


def latency_file(table_fingerprint: str) -> str:
    return f"family-latency-{table_fingerprint}.parquet"


def cache_key(run_dir: Path, table_fingerprint: str) -> dict[str, object]:
    return {"checkpoint": checkpoint_key(run_dir), "table": table_fingerprint,
            "splits": SPLITS_VERSION}


def read_cached(run_dir: Path, table_fingerprint: str) -> list[Record] | None:
    """The members (accuracies) when swept from this checkpoint and the run's table."""
    return _read(run_dir, FAMILY_FILE, table_fingerprint)


def write_cache(run_dir: Path, table_fingerprint: str, members: list[Record]) -> None:
    _write(run_dir, FAMILY_FILE, table_fingerprint, members)


def read_latencies(run_dir: Path, table_fingerprint: str) -> list[Record] | None:
    """Predicted latencies of this checkpoint's members on the table with this fingerprint."""
    return _read(run_dir, latency_file(table_fingerprint), table_fingerprint)


def write_latencies(run_dir: Path, table_fingerprint: str, latencies: list[Record]) -> None:
    _write(run_dir, latency_file(table_fingerprint), table_fingerprint, latencies)


def _read(run_dir: Path, name: str, table_fingerprint: str) -> list[Record] | None:
    path = run_dir / name
    if not path.is_file() or not (run_dir / CHECKPOINT_FILE).is_file():
        return None
    stored = read_parquet(path)
    meta = json.loads((stored.schema.metadata or {}).get(FAMILY_KEY, b"{}"))
    if meta != json.loads(json.dumps(cache_key(run_dir, table_fingerprint))):
        return None
    return stored.to_pylist()


def _write(run_dir: Path, name: str, table_fingerprint: str, records: list[Record]) -> None:
    arrow = pa.Table.from_pylist(records)
    key = json.dumps(cache_key(run_dir, table_fingerprint)).encode()
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), FAMILY_KEY: key})
    atomic_write(run_dir / name, lambda tmp: pq.write_table(arrow, tmp))


def _per_checkpoint(run_dir: Path, name: str, field: str) -> dict[str, Any]:
    """The entries under `field` of the JSON file `name`, stored for this checkpoint (none
    when it has moved on)."""
    path = run_dir / name
    if not path.is_file() or not (run_dir / CHECKPOINT_FILE).is_file():
        return {}
    stored = json.loads(path.read_text())
    if stored.get("checkpoint") != checkpoint_key(run_dir):
        return {}
    entries: dict[str, Any] = stored[field]
    return entries


def _add_per_checkpoint(run_dir: Path, name: str, field: str, entries: dict[str, Any]) -> None:
    stored = {**_per_checkpoint(run_dir, name, field), **entries}
    text = json.dumps({"checkpoint": checkpoint_key(run_dir), field: stored})
    atomic_write(run_dir / name, lambda tmp: Path(tmp).write_text(text))


def read_test_accuracy(run_dir: Path, genotype_json: str) -> float | None:
    """The picked member's test accuracy when it was computed from this checkpoint."""
    value: float | None = _per_checkpoint(run_dir, PICK_TEST_FILE, "test_accuracy").get(
        genotype_json)
    return value


def write_test_accuracy(run_dir: Path, genotype_json: str, value: float) -> None:
    _add_per_checkpoint(run_dir, PICK_TEST_FILE, "test_accuracy", {genotype_json: value})


def read_finetuned(run_dir: Path) -> dict[str, Any]:
    """`pick --rerank`'s fine-tuned finalists stored for this checkpoint, by finalist key."""
    return _per_checkpoint(run_dir, RERANK_FILE, "finetuned")


def write_finetuned(run_dir: Path, entries: dict[str, Any]) -> None:
    _add_per_checkpoint(run_dir, RERANK_FILE, "finetuned", entries)
