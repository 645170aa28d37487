"""The family cache in a run folder (`family.parquet`), readable without torch, and the test
accuracy of the members `pick` has chosen (`pick_test.json`).

A family cache is valid for one checkpoint (its size and modification time) and one table
(its fingerprint): a resumed run or a re-profiled table makes it stale, and the family is
swept again. The family holds validation accuracies only: a test figure is computed for a
pick, after it was chosen, and kept apart so nothing can ever be chosen on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from latency.table import atomic_write
from search.config import SPLITS_VERSION
from search.run_folder import CHECKPOINT_FILE

FAMILY_FILE = "family.parquet"
FAMILY_KEY = b"hwnas-family"
PICK_TEST_FILE = "pick_test.json"  # {"checkpoint": key, "test_accuracy": {genotype: value}}


def checkpoint_key(run_dir: Path) -> list[int]:
    checkpoint = (run_dir / CHECKPOINT_FILE).stat()
    return [checkpoint.st_size, checkpoint.st_mtime_ns]


def cache_key(run_dir: Path, table_fingerprint: str) -> dict[str, object]:
    return {"checkpoint": checkpoint_key(run_dir), "table": table_fingerprint,
            "splits": SPLITS_VERSION}


def read_cached(run_dir: Path, table_fingerprint: str) -> pd.DataFrame | None:
    """The cached family when it was made from this checkpoint and table, else None."""
    path = run_dir / FAMILY_FILE
    if not path.is_file() or not (run_dir / CHECKPOINT_FILE).is_file():
        return None
    stored = pq.read_table(path)
    meta = json.loads((stored.schema.metadata or {}).get(FAMILY_KEY, b"{}"))
    if meta != json.loads(json.dumps(cache_key(run_dir, table_fingerprint))):
        return None
    return stored.to_pandas()


def write_cache(run_dir: Path, table_fingerprint: str, members: pd.DataFrame) -> None:
    arrow = pa.Table.from_pandas(members, preserve_index=False)
    key = json.dumps(cache_key(run_dir, table_fingerprint)).encode()
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), FAMILY_KEY: key})
    atomic_write(run_dir / FAMILY_FILE, lambda tmp: pq.write_table(arrow, tmp))


def _pick_tests(run_dir: Path) -> dict[str, float]:
    """The test accuracies stored for this checkpoint (none when it has moved on)."""
    path = run_dir / PICK_TEST_FILE
    if not path.is_file() or not (run_dir / CHECKPOINT_FILE).is_file():
        return {}
    stored = json.loads(path.read_text())
    if stored.get("checkpoint") != checkpoint_key(run_dir):
        return {}
    return stored["test_accuracy"]


def read_test_accuracy(run_dir: Path, genotype_json: str) -> float | None:
    """The picked member's test accuracy when it was computed from this checkpoint."""
    return _pick_tests(run_dir).get(genotype_json)


def write_test_accuracy(run_dir: Path, genotype_json: str, value: float) -> None:
    stored = {**_pick_tests(run_dir), genotype_json: value}
    text = json.dumps({"checkpoint": checkpoint_key(run_dir), "test_accuracy": stored})
    atomic_write(run_dir / PICK_TEST_FILE, lambda tmp: Path(tmp).write_text(text))
