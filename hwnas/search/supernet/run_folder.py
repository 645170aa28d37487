"""The run folder `<out>/<name>/`: configuration, per-epoch checkpoint and metrics, and the
`<out>/LATEST` pointer that `hwnas pick` follows by default.

Every file is written atomically (temporary file, then rename), so an interrupted run leaves
the last full epoch's checkpoint and metrics usable.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable, TableError, atomic_write, read_table
from hwnas.search.config import LEGACY_VALUES, RESUMABLE_CHANGES, SPLITS_VERSION, SearchConfig

CONFIG_FILE = "config.json"  # {"config": SearchConfig fields, "table": provenance, "space": ...}
CHECKPOINT_FILE = "checkpoint.pt"  # states after the last finished epoch
METRICS_FILE = "metrics.csv"  # one row per finished epoch
LATEST_FILE = "LATEST"  # in the runs root: the name of the run last checkpointed


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def save_checkpoint(self, state: dict[str, object]) -> None:
        import torch  # here, not at the top: `hwnas pick` on a cached family needs no torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.checkpoint_path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))

    def load_checkpoint(self) -> dict[str, object] | None:
        """The last checkpoint, or None before the first epoch has finished."""
        if not self.checkpoint_path.is_file():
            return None
        import torch

        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)

    def write_metrics(self, rows: list[dict[str, object]]) -> None:
        import pandas as pd

        frame = pd.DataFrame.from_records(rows)
        atomic_write(self.metrics_path, lambda tmp: frame.to_csv(tmp, index=False))

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
        if run.path.exists():
            raise UserError(f"run folder {run.path} already exists: pass --resume to continue "
                            f"it, or choose another --name")
        run.path.mkdir(parents=True)
        text = json.dumps(run_record(config, table), indent=2)
        atomic_write(config_path, lambda tmp: Path(tmp).write_text(text))
        return run
    if not config_path.is_file():
        raise UserError(f"cannot resume: {config_path} not found; check --out and --name, "
                        f"or drop --resume to start a new run")
    _check_same_run(json.loads(config_path.read_text()), run_record(config, table), run.path)
    return run


def _check_same_run(stored: dict, given: dict, path: Path) -> None:
    if stored["table"]["fingerprint"] != given["table"]["fingerprint"]:
        raise UserError(f"run {path} was trained on table {stored['table']['path']} "
                        f"(fingerprint {stored['table']['fingerprint']}), not on "
                        f"{given['table']['path']} ({given['table']['fingerprint']}): pass the "
                        f"same --table, or start a new run with another --name")
    if stored.get("splits", 1) != given["splits"]:
        raise UserError(f"run {path} was trained before the data's test split existed, on images "
                        f"that are now validation: start a new run with another --name")
    ignored = {*RESUMABLE_CHANGES, "table_path"}
    recorded = {**LEGACY_VALUES, **stored["config"]}
    changed = [f"{field}={recorded.get(field)!r} (not {value!r})"
               for field, value in given["config"].items()
               if field not in ignored and recorded.get(field) != value]
    if changed:
        raise UserError(f"run {path} was started with {', '.join(changed)}: pass the same "
                        f"options to --resume, or start a new run with another --name")


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
    record = json.loads(config_path.read_text())
    table_info = record["table"]
    try:
        table = read_table(table_info["path"])
    except TableError as exc:
        raise UserError(f"the run's table is unusable ({exc}); restore {table_info['path']} or "
                        f"search again") from None
    if table.fingerprint != table_info["fingerprint"]:
        raise UserError(f"the table {table_info['path']} changed since run {path} was trained "
                        f"(fingerprint {table.fingerprint}, run has {table_info['fingerprint']}):"
                        f" restore it, or run `hwnas search` again on the new table")
    return record, table
