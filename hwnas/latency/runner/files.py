"""Atomic file writes: a reader never sees a half-written results file, table or checkpoint.
Standard library only, so the bundle runner and the host write files the same way."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Run `write(temporary_path)` beside `path`, then rename over it; no half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: object) -> None:
    """`data` as JSON in `path`, written atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data)))
