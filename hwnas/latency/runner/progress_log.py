"""Progress logs of resumable measurements: a JSON header line, then one JSON record per
measured block, appended as blocks are taken (`hwnas profile` and the bundle runner)."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(log: Path) -> tuple[dict, list[dict]]:
    """The header ({} when unreadable) and the records. A torn line is dropped: it was being
    written when the run stopped."""
    parsed = []
    for line in log.read_text().splitlines():
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            parsed.append(None)
    header = parsed[0] if parsed and isinstance(parsed[0], dict) else {}
    return header, [record for record in parsed[1:] if record is not None]
