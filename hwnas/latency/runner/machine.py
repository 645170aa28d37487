"""What a measured machine is, read with the standard library only (the bundle runner ships
this file, so a target without torch records itself the way the host does)."""

from __future__ import annotations

import os
import platform
import sys


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what the platform reports."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record() -> dict[str, object]:
    """CPU model, logical cores, OS and Python version of this machine."""
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "os": platform.platform(),
            "python": sys.version.split()[0]}
