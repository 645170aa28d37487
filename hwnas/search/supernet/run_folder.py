"""The run folder `<out>/<name>/`: configuration (with every path resolved), the per-epoch
checkpoint and metrics (`hwnas.search.run_files`, shared with `hwnas train`), and the
`<out>/LATEST` pointer that `hwnas pick` follows by default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable, TableError, read_table
from hwnas.latency.runner.files import atomic_write
from hwnas.search import run_files
from hwnas.search.config import (
    DATASETS,
    LEGACY_VALUES,
    RESUMABLE_CHANGES,
    SPLITS_VERSION,
    SearchConfig,
)

CONFIG_FILE = "config.json"  # {"config": SearchConfig fields, "table": provenance, "space": ...}
CHECKPOINT_FILE = run_files.CHECKPOINT_FILE
LATEST_FILE = "LATEST"  # in the runs root: the name of the run last checkpointed


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def save_epoch(self, checkpoint: dict[str, object], rows: list[dict[str, object]]) -> None:
        """The checkpoint, the metrics CSV, then the LATEST pointer; each atomically."""
        run_files.save_epoch(self.path, checkpoint, rows)
        self.mark_latest()

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, or None before the first epoch has finished."""
        return run_files.load_checkpoint(self.path)

    def mark_latest(self) -> None:
        """Point `<out>/LATEST` at this run."""
        latest = self.path.parent / LATEST_FILE
        atomic_write(latest, lambda tmp: Path(tmp).write_text(self.path.name + "\n"))


def run_record(config: SearchConfig, table: LatencyTable) -> dict[str, object]:
    """What config.json holds: the settings and the table's provenance and space."""
    return {"config": config.to_dict(),
            "table": {"path": config.table_path, "fingerprint": table.fingerprint,
                      "device": table.device, "backend": config.backend},
            "space": table.space.to_dict(), "splits": SPLITS_VERSION}


def open_run(config: SearchConfig, table: LatencyTable) -> RunFolder:
    """Create the run folder, or check that a resumed one was started the same way."""
    run = RunFolder(Path(config.out) / config.name)
    config_path = run.path / CONFIG_FILE
    if not config.resume:
        run_files.check_fresh(run.path, "--name")
        run.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps(run_record(config, table), indent=2)
        atomic_write(config_path, lambda tmp: Path(tmp).write_text(text))
        return run
    run_files.check_resumable(config_path, "--out and --name")
    _check_same_run(json.loads(config_path.read_text()), run_record(config, table), run.path)
    return run


def _check_same_run(stored: dict[str, Any], given: dict[str, Any], path: Path) -> None:
    if stored["table"]["fingerprint"] != given["table"]["fingerprint"]:
        raise UserError(f"run {path} was trained on table {stored['table']['path']} "
                        f"(fingerprint {stored['table']['fingerprint']}), not on "
                        f"{given['table']['path']} ({given['table']['fingerprint']}): pass the "
                        f"same --table, or start a new run with another --name")
    if stored.get("splits", 1) != given["splits"]:
        raise UserError(f"run {path} was trained before the data's test split existed, on images "
                        f"that are now validation: start a new run with another --name")
    run_files.check_same_settings(f"run {path}", {**LEGACY_VALUES, **stored["config"]},
                                  given["config"], "--name",
                                  ignored=(*RESUMABLE_CHANGES, "table_path"))


def latest_run(out: str | Path) -> Path:
    """The run folder `<out>/LATEST` names; UserError when there is none."""
    latest = Path(out) / LATEST_FILE
    if not latest.is_file():
        raise UserError(f"no search run found in {out} (no {latest}): run `hwnas search` first")
    return Path(out) / latest.read_text().strip()


def resolve_run(path: Path) -> tuple[Path, str | None]:
    """The run folder `path` names: itself, or, for a runs root (what `hwnas search --out`
    took), the root's latest run, with a note saying which run that is."""
    if (path / CONFIG_FILE).is_file() or not (path / LATEST_FILE).is_file():
        return path, None
    run = latest_run(path)
    return run, f"{path} is a runs root: using its latest run, {run}"


def read_run_record(path: Path) -> tuple[dict[str, object], LatencyTable]:
    """A run's config.json and its table, checked: not a run, a table gone or changed since
    the run was trained each raise UserError with the fix."""
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        runs = sorted(str(found.parent) for found in path.glob(f"*/{CONFIG_FILE}"))
        if runs:
            raise UserError(f"{path} is a runs root, not a search run: pass --run with one of "
                            f"{', '.join(runs)}")
        raise UserError(f"{path} is not a search run (no {CONFIG_FILE}): pass --run with a "
                        f"folder `hwnas search` wrote")
    record = _with_resolved_paths(json.loads(config_path.read_text()), path)
    table_info = record["table"]
    table_path = Path(table_info["path"])
    if not table_path.is_file():
        raise UserError(f"the run's table {table_path} was not found: put it back there, or "
                        f"write its new place as \"path\" under \"table\" in {config_path}")
    try:
        table = read_table(table_path)
    except TableError as exc:
        raise UserError(f"the run's table is unusable ({exc}); restore {table_path} or "
                        f"search again") from None
    if table.fingerprint != table_info["fingerprint"]:
        raise UserError(f"the table {table_path} changed since run {path} was trained "
                        f"(fingerprint {table.fingerprint}, run has {table_info['fingerprint']}):"
                        f" restore it, or run `hwnas search` again on the new table")
    return record, table


def _with_resolved_paths(record: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """`record` with its table, data set and data folder as absolute paths. Runs record them
    resolved; older ones recorded them as typed, relative to the folder `hwnas search` ran in:
    such a path is read from the working directory when it is there (as before), else from the
    folder the run's --out places it in."""
    config = dict(record["config"])
    search_dir = _search_dir(run_dir, str(config.get("out", "")))
    table_path = _resolved(str(record["table"]["path"]), search_dir)
    config["table_path"] = table_path
    config["data_dir"] = _resolved(str(config.get("data_dir", "data")), search_dir)
    if config.get("dataset") not in DATASETS:
        config["dataset"] = _resolved(str(config["dataset"]), search_dir)
    return {**record, "config": config, "table": {**record["table"], "path": table_path}}


def _search_dir(run_dir: Path, out: str) -> Path | None:
    """The folder `hwnas search` ran in, from the run folder `<out>/<name>` and a relative
    --out; None when --out does not say (absolute, or climbing out with `..`)."""
    parts = Path(out).parts
    if Path(out).is_absolute() or ".." in parts:
        return None
    parents = run_dir.resolve().parents
    return parents[len(parts)] if len(parts) < len(parents) else None


def _resolved(recorded: str, search_dir: Path | None) -> str:
    path = Path(recorded)
    if path.is_absolute() or path.exists() or search_dir is None:
        return str(path.resolve())
    return str(search_dir / path)
