"""Start the sandbox as a child process and stop it by its own PID.

Used by ``hdiaks demo``, ``hdiaks lab`` and the test fixtures: the server runs in its own
process (``python -m hdiaks_widgets.sandbox``), reports readiness through a ready file, and is
stopped with SIGTERM (SIGKILL after a grace period), which kills its running Spark jobs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdiaks_widgets.config import ClusterProfile

__all__ = ["SandboxProcess", "processes_mentioning", "start_sandbox_process"]


def _ancestors() -> set[int]:
    """This process and its ancestors (a caller's own command line may mention the root)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text`` (e.g. a sandbox root),
    other than this process and its ancestors."""
    found = []
    needle = text.encode()
    mine = _ancestors()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(entry))
    return found


@dataclass
class SandboxProcess:
    """A running sandbox child process: its URL, PID, root and ready-file information."""

    url: str
    root: Path
    pid: int
    info: dict[str, Any]
    proc: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)

    @property
    def examples(self) -> dict[str, str]:
        """Short name -> ``abfs://examples@sandbox.dfs.core.windows.net/...`` URI."""
        return dict(self.info["examples"]["uris"])

    def endpoints(self) -> dict[str, Any]:
        """With ``auth=True``: identity/vault URLs, CA path and the vault reader's settings."""
        path = self.root / "auth" / "endpoints.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def auth_profile(self, *, name: str = "sandbox-auth") -> ClusterProfile:
        """With ``auth=True``: the client profile for this sandbox (service principal from its
        vault; the vault reader's settings are ``endpoints()["environment"]``)."""
        from hdiaks_widgets.sandbox.identity import sandbox_auth_profile

        ep = self.endpoints()
        return sandbox_auth_profile(
            self.url, authority_host=ep["authority_host"], vault_url=ep["vault_url"], ca_pem=ep["ca_pem"], name=name
        )

    def processes(self) -> list[int]:
        return processes_mentioning(str(self.root))

    def stop(self, timeout: float = 30.0) -> list[int]:
        """Stop the server by its PID; return PIDs of its processes still alive afterwards."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.processes()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox_process(
    root: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_running: int = 1,
    retain_seconds: float = 600.0,
    csrf: bool = False,
    master: str = "local[2]",
    auth: bool = False,
    bearer: bool = False,
    bearer_audience: str | None = None,
    log_shape: str | None = None,
    cache_log_size: int = 200,
    report_interval: float = 1.0,
    cluster: int = 0,
    hdinsight_auth: str | None = None,
    hdinsight_cluster: str | None = None,
    hdinsight_password: str | None = None,
    timeout: float = 180.0,
) -> SandboxProcess:
    """Start ``python -m hdiaks_widgets.sandbox`` and wait until it is listening.

    ``hdinsight_auth`` (``none|basic|entra``), ``hdinsight_cluster`` and ``hdinsight_password``
    (the Basic login's, passed through the environment) set up the classic HDInsight routes."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    ready = root / "ready.json"
    ready.unlink(missing_ok=True)
    log_path = root / "sandbox.log"
    cmd = [
        sys.executable, "-m", "hdiaks_widgets.sandbox",
        "--host", host, "--port", str(port), "--root", str(root),
        "--max-running", str(max_running), "--retain-seconds", str(retain_seconds),
        "--master", master, "--ready-file", str(ready),
        "--cache-log-size", str(cache_log_size), "--report-interval", str(report_interval),
    ]  # fmt: skip
    if log_shape is not None:
        cmd += ["--log-shape", log_shape]
    if cluster:
        cmd += ["--cluster", str(cluster)]
    if csrf:
        cmd.append("--csrf")
    if auth:
        cmd.append("--auth")
    if bearer:
        cmd.append("--bearer")
    if bearer_audience is not None:
        cmd += ["--bearer-audience", bearer_audience]
    if hdinsight_auth is not None:
        cmd += ["--hdinsight-auth", hdinsight_auth]
    if hdinsight_cluster is not None:
        cmd += ["--hdinsight-cluster", hdinsight_cluster]
    env = None
    if hdinsight_password is not None:
        env = dict(os.environ, HDIAKS_SANDBOX_HDINSIGHT_PASSWORD=hdinsight_password)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited with {proc.returncode}:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            raise RuntimeError(f"sandbox not ready after {timeout:g}s:\n{log_path.read_text()}")
        time.sleep(0.1)
    info = json.loads(ready.read_text(encoding="utf-8"))
    return SandboxProcess(url=info["url"], root=root, pid=proc.pid, info=info, proc=proc, log_path=log_path)
