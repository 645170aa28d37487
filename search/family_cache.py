"""The family cache in a run folder (`family.parquet`), readable without torch.

A cache is valid for one checkpoint (its size and modification time) and one table (its
fingerprint): a resumed run or a re-profiled table makes it stale, and the family is swept
again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from latency.table import atomic_write
from search.run_folder import CHECKPOINT_FILE

FAMILY_FILE = "family.parquet"
FAMILY_KEY = b"hwnas-family"


def cache_key(run_dir: Path, table_fingerprint: str) -> dict[str, object]:
    checkpoint = (run_dir / CHECKPOINT_FILE).stat()
    return {"checkpoint": [checkpoint.st_size, checkpoint.st_mtime_ns],
            "table": table_fingerprint}


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
