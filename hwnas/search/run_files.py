"""The files a training run keeps in its folder, for `hwnas search` and `hwnas train` alike: the
checkpoint after the last finished epoch, the metrics CSV, and the checks that a new run starts
in a fresh folder and a resumed one was started the same way.

Every file is written atomically (temporary file, then rename), so an interrupted run leaves
the last full epoch's checkpoint and metrics usable. Checkpoints hold only tensors and plain
Python values (dicts, lists, str, int, float, bool, None), so `torch.load` reads them with
`weights_only=True`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwnas.errors import UserError
from hwnas.latency.runner.files import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"  # states after the last finished epoch
METRICS_FILE = "metrics.csv"  # one row per finished epoch


def save_checkpoint(folder: Path, checkpoint: Mapping[str, object]) -> None:
    """Write `folder`/checkpoint.pt (tensors and plain Python values only)."""
    import torch  # here, not at the top: `hwnas pick` on a cached family needs no torch

    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    atomic_write(folder / CHECKPOINT_FILE, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """`folder`'s checkpoint on the CPU, or None before the first epoch has finished."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return None
    return load_weights(path)


def load_weights(path: Path) -> dict[str, Any]:
    """A file this project saved with torch.save (a checkpoint, an export's model.pt), read
    without unpickling arbitrary objects."""
    import torch

    loaded: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return loaded


def write_metrics(folder: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Write `folder`/metrics.csv: one row per finished epoch, columns in the rows' order."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(folder / METRICS_FILE, write)


def save_epoch(folder: Path, checkpoint: Mapping[str, object],
               rows: Sequence[Mapping[str, object]]) -> None:
    """After a finished epoch: the checkpoint first (the source of truth on resume), then the
    metrics CSV a reader follows."""
    save_checkpoint(folder, checkpoint)
    write_metrics(folder, rows)


def check_fresh(folder: Path, rename: str) -> None:
    """A new run's folder must not hold anything yet; `rename` is the option that moves it."""
    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"{folder} already exists: pass --resume to continue it, or choose "
                        f"another {rename}")


def check_resumable(marker: Path, rename: str) -> None:
    """A resumed run's folder must hold `marker` (the file a started run writes first)."""
    if not marker.is_file():
        raise UserError(f"cannot resume: {marker} not found; check {rename}, or drop --resume "
                        f"to start afresh")


def check_same_settings(label: str, stored: Mapping[str, object],
                        given: Mapping[str, object], rename: str,
                        ignored: Sequence[str] = ()) -> None:
    """A resumed run (`label` names it) continues only with the settings it was started with:
    every field of `given` (except `ignored`) must equal the `stored` one."""
    changed = [f"{name}={stored.get(name)!r} (not {value!r})" for name, value in given.items()
               if name not in ignored and stored.get(name) != value]
    if changed:
        raise UserError(f"{label} was started with {', '.join(changed)}: pass the same "
                        f"options to --resume, or choose another {rename}")
