"""Start Spark processes in their own session and kill the whole tree.

``spark-submit`` execs a JVM, and a PySpark driver is a Python child of that JVM (which may start
Python workers in turn). Every process the sandbox starts gets a new session (``setsid``), so
killing the process group ends all of them; :func:`group_members` scans ``/proc`` to prove it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["group_members", "kill_group", "spark_env", "start_in_new_session"]


def spark_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ``spark-submit`` from the pyspark package of this interpreter."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["SPARK_HOME"] = str(home)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    # pandas >= 3 makes pyspark print a FutureWarning to every job; it is noise in job logs.
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    if extra:
        env.update(extra)
    return env


def start_in_new_session(
    cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, stdin: int | None = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(cmd),
        env=dict(env),
        cwd=str(cwd),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group or session is ``pgid``."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the ")" that closes the command name: state ppid pgrp session ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 4 or fields[0] in ("Z", "X"):
            continue
        if int(fields[2]) == pgid or int(fields[3]) == pgid:
            found.append(int(entry))
    return found


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    # A member may have started its own group inside our session: signal those too.
    for pid in group_members(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_group(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> bool:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds; True if nothing is left."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_members(pgid):
            return True
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_members(pgid):
            return True
        time.sleep(0.05)
    return not group_members(pgid)
