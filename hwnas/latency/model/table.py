"""The latency lookup table: typed rows in Parquet, file-level metadata, validation, look-ups.

One row per (backend, entry key). The file's metadata holds the schema version, the search
space, how and where it was measured, and a fingerprint of the contents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

import pyarrow as pa
import pyarrow.parquet as pq

from hwnas.arch.keys import KEY_COLUMNS, EntryKey, KeyRow
from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.latency.runner.files import atomic_write
from hwnas.latency.runner.timing import TimingSettings

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
METADATA_KEY = b"hwnas"

# Column name -> arrow type. Key columns come from EntryKey; the rest are the measurement.
COLUMNS: dict[str, pa.DataType] = {
    "backend": pa.string(),  # torch | onnxruntime
    "device": pa.string(),  # cpu | cuda:N
    "op": pa.string(),
    "batch": pa.int64(),
    "c_in": pa.int64(),
    "c_out": pa.int64(),
    "h": pa.int64(),
    "w": pa.int64(),
    "stride": pa.int64(),
    "n_inputs": pa.int64(),
    "dtype": pa.string(),
    "h_out": pa.int64(),
    "w_out": pa.int64(),
    "latency_ms": pa.float64(),  # the table statistic: minimum over rounds of block medians
    "median_ms": pa.float64(),  # median of every timed sample
    "iqr_ms": pa.float64(),  # interquartile range of every timed sample
    "n": pa.int64(),  # timed samples
    "rounds": pa.int64(),  # interleaved rounds (blocks) measured
    "stable": pa.bool_(),  # the lowest block medians agreed within tolerance
}
ROW_KEY = ("backend", *KEY_COLUMNS)


class TableError(UserError, ValueError):
    """A table file that cannot be used; the message names the problem and the fix."""


class MissingEntryError(KeyError):
    """A look-up for an entry the table does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


# A record of named columns (a family member: see search/family). Its columns vary with the
# space and the tables (count_<op>, predicted_ms_<backend>), so values are typed Any.
Record = dict[str, Any]


class TableRow(KeyRow):
    """One row of a table: COLUMNS' names -> plain Python values."""

    backend: str
    device: str
    h_out: int
    w_out: int
    latency_ms: float
    median_ms: float
    iqr_ms: float
    n: int
    rounds: int
    stable: bool


class TableMeta(TypedDict, total=False):
    """A table file's metadata (JSON in the Parquet schema): `profile_metadata` writes the
    first block; calibration, profile timing and target fields are added after it."""

    schema_version: int
    fingerprint: str
    space: dict[str, Any]  # SearchSpace.to_dict()
    space_fingerprint: str
    device: str
    device_name: str | None
    threads: int
    backends: list[str]
    timing: dict[str, Any]  # TimingSettings.to_dict()
    statistic: str
    seed: int
    created: str  # ISO 8601, UTC
    versions: dict[str, Any]  # package -> version (None when not installed)
    # backend -> Calibration.to_dict(), and the whole networks it was fitted on
    calibration: dict[str, CalibrationRecord]
    calibration_networks: dict[str, list[CalibrationNetworkRecord]]
    profile_wall_s: float
    profile_phases_s: dict[str, float]
    # an imported table only: the runner's machine record, the bundle, the runner's wall time
    target: dict[str, Any]
    bundle_id: str
    runner_wall_s: float | None


class CalibrationRecord(TypedDict):
    """`Calibration.to_dict()` (hwnas.latency.model.predict) as stored in a table."""

    intercept_ms: float
    op_scale: dict[str, float]
    networks: int
    fit_mape_pct: float | None
    # absent in tables written before ONNX Runtime's graph terms or the outlier step
    node_ms: NotRequired[dict[str, float]]
    nchwc_block: NotRequired[int]
    node_mean_ms: NotRequired[float]
    left_out: NotRequired[list[int]]


class CalibrationNetworkRecord(TypedDict):
    """One whole network a calibration was fitted on."""

    genotype: dict[str, Any]  # Genotype.to_json(), parsed
    measured_ms: float
    launches_ms: list[float]
    uncalibrated_ms: float

# How each column's values are made plain Python (records from pandas or numpy may hold numpy
# scalars, which would hash differently in the fingerprint).
_CASTS: dict[str, Callable[[Any], object]] = {
    name: bool if kind == pa.bool_() else int if pa.types.is_integer(kind)
          else float if pa.types.is_floating(kind) else str for name, kind in COLUMNS.items()}


@dataclass
class LatencyTable:
    """Rows (one record per entry) and the file-level metadata. The rows are read-only once
    built: the look-up index and the DataFrame view are derived once. The rows are plain
    records, not a DataFrame, so that reading a table (and a cached `pick`) needs no pandas."""

    records: list[TableRow]
    meta: TableMeta = field(default_factory=lambda: TableMeta())

    def __post_init__(self) -> None:
        # `records` may come from arrow, pandas or numpy; `cast` only tells the checker that
        # the comprehension rebuilds each row with exactly COLUMNS' names.
        self.records = [cast(TableRow, {name: None if row[name] is None else convert(row[name])
                                        for name, convert in _CASTS.items()})
                        for row in cast(list[dict[str, object]], self.records)]
        self._index = {(row["backend"], EntryKey.from_row(row)): float(row["latency_ms"])
                       for row in self.records}

    @classmethod
    def from_frame(cls, rows: pd.DataFrame, meta: TableMeta) -> LatencyTable:
        return cls(cast(list[TableRow], rows.to_dict("records")), meta)

    @cached_property
    def rows(self) -> pd.DataFrame:
        """The rows as a DataFrame with COLUMNS (pandas is imported on first use)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records, columns=list(COLUMNS))

    @property
    def space(self) -> SearchSpace:
        return SearchSpace.from_dict(self.meta["space"])

    @property
    def backends(self) -> list[str]:
        return sorted({str(row["backend"]) for row in self.records})

    @property
    def device(self) -> str:
        return str(self.meta.get("device", ""))

    @property
    def fingerprint(self) -> str:
        return content_fingerprint(self.records, self.meta)

    @property
    def threads(self) -> int:
        """Intra-op threads every backend was measured with."""
        return int(self.meta.get("threads", 1))

    @property
    def timing(self) -> TimingSettings:
        """How the entries were timed; whole networks compared with them are timed alike."""
        return TimingSettings(**self.meta.get("timing", {}))

    def calibration(self, backend: str) -> CalibrationRecord | None:
        """The stored latency-model calibration of `backend` (see latency/predict.py)."""
        return (self.meta.get("calibration") or {}).get(backend)

    def has(self, backend: str, key: EntryKey) -> bool:
        return (backend, key) in self._index

    def latency_ms(self, backend: str, key: EntryKey) -> float:
        """The measured latency of `key` on `backend`; raises MissingEntryError naming both."""
        try:
            return self._index[(backend, key)]
        except KeyError:
            raise MissingEntryError(
                f"the table has no {backend} entry for {key.label()}; re-run `hwnas profile` "
                f"for this space and backend") from None


def _row_key(row: Mapping[str, object]) -> tuple[object, ...]:
    return tuple(row[name] for name in ROW_KEY)


def content_fingerprint(records: list[TableRow], meta: TableMeta) -> str:
    """A hash of what was measured and for which space (not when): 16 hex digits."""
    payload = json.dumps({"space": meta.get("space"), "device": meta.get("device"),
                          "calibration": meta.get("calibration"),
                          "rows": sorted(records, key=_row_key)},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_table(table: LatencyTable, path: Path) -> Path:
    """Validate, then write atomically (temporary file in the same folder, then rename)."""
    validate_rows(table.records, str(path))
    meta: TableMeta = {**table.meta, "schema_version": SCHEMA_VERSION,
                       "fingerprint": table.fingerprint}
    schema = pa.schema([pa.field(name, kind) for name, kind in COLUMNS.items()],
                       metadata={METADATA_KEY: json.dumps(meta, default=str).encode()})
    arrow = pa.Table.from_pylist(table.records, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: pq.write_table(arrow, tmp))
    return path


def read_table(path: Path | str) -> LatencyTable:
    """Read and validate a table; every problem raises TableError with the fix."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"table {path} not found: make one with "
                         f"`hwnas profile --device cpu --out {path}`")
    try:
        arrow = read_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"{path} is not a readable Parquet table ({exc}); "
                         f"re-run `hwnas profile`") from None
    raw_meta = (arrow.schema.metadata or {}).get(METADATA_KEY)
    if raw_meta is None:
        raise TableError(f"{path} has no hwnas metadata: it was not written by `hwnas profile`")
    meta = json.loads(raw_meta)
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TableError(f"{path} has table schema version {version}, this hwnas reads "
                         f"version {SCHEMA_VERSION}: re-run `hwnas profile` to rebuild it")
    missing = [c for c in COLUMNS if c not in arrow.column_names]
    if missing:
        raise TableError(f"{path} lacks column(s) {', '.join(missing)}: re-run `hwnas profile`")
    records = arrow.select(list(COLUMNS)).to_pylist()
    validate_rows(records, str(path))
    if "space" not in meta:
        raise TableError(f"{path} has no space description in its metadata: "
                         f"re-run `hwnas profile`")
    table = LatencyTable(records, meta)
    if meta.get("fingerprint") not in (None, table.fingerprint):
        raise TableError(f"{path} was modified after it was written (fingerprint mismatch): "
                         f"re-run `hwnas profile`")
    return table


def read_parquet(path: Path) -> pa.Table:
    """A Parquet file as one arrow table, read by the file reader: `pq.read_table` goes
    through pyarrow's dataset layer, which imports pandas (half a second a cached pick saves)."""
    with pq.ParquetFile(path) as parquet:
        return parquet.read()


def validate_rows(records: list[TableRow], where: str) -> None:
    """Reject NaN or non-positive latencies and duplicate keys, naming the first offender."""
    bad = [row for row in records if not _positive(row["latency_ms"])]
    if bad:
        row = bad[0]
        raise TableError(f"{where}: {len(bad)} row(s) with NaN or non-positive latency_ms, "
                         f"first: {row['backend']} {EntryKey.from_row(row).label()} = "
                         f"{row['latency_ms']}; re-run `hwnas profile`")
    seen: set[tuple[object, ...]] = set()
    for row in records:
        key = _row_key(row)
        if key in seen:
            raise TableError(f"{where}: duplicate rows for {row['backend']} "
                             f"{EntryKey.from_row(row).label()}; re-run `hwnas profile`")
        seen.add(key)


def _positive(value: object) -> bool:
    """A latency a table may hold: a number above 0 (NaN and None are not)."""
    return isinstance(value, int | float) and value > 0
