"""What a benchmark report says about the machine: the CPU model and installed versions.

Standard library only: ``bench/peers.py`` workers import it from interpreters (the Airflow
virtualenv's) that do not have this package installed.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def version(dist: str, python: Path | None = None) -> str:
    """``dist``'s installed version, in this interpreter or in ``python``'s; "not installed" if absent."""
    if python is None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except OSError:
        return "not installed"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "not installed"
