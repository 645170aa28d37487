"""Progress and warning callbacks for long work (the CLI draws them; tests record them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Hooks:
    warn: Callable[[str], None] = lambda message: None
    start: Callable[[str, int], None] = lambda phase, total: None  # phase name, work units
    advance: Callable[[str], None] = lambda label: None  # one unit done
