"""The launcher output of a cluster-mode spark-submit, for a local job playing a cluster job.

In YARN or Kubernetes cluster mode, what Livy's two queues read from spark-submit is not the
job's output but the launcher's: a few submission lines, then one status report per
``spark.yarn.report.interval`` / ``spark.kubernetes.report.interval`` (1 s by default) while the
application runs, then its final status, all through log4j on stderr (Spark's
``log4j2.properties.template`` logs to ``SYSTEM_ERR`` with ``%d{yy/MM/dd HH:mm:ss} %p %c{1}: %m``).
The messages follow Spark's ``yarn/Client.scala`` (``Application report for ... (state: RUNNING)``)
and ``k8s/submit/LoggingPodStatusWatcher.scala`` (``Application status for ... (phase: Running)``).
A long job therefore rotates Livy's 200-line stderr queue with near-identical report lines, the
harshest case for a reader that aligns views by content.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ClusterReports", "log4j_time"]


def log4j_time(now: float | None = None) -> str:
    return time.strftime("%y/%m/%d %H:%M:%S", time.localtime(time.time() if now is None else now))


_FINAL = {"success": "SUCCEEDED", "dead": "FAILED", "killed": "KILLED", "error": "FAILED"}
_PHASE = {"success": "Succeeded", "dead": "Failed", "killed": "Failed", "error": "Failed"}


@dataclass
class ClusterReports:
    """Launcher lines and diagnostics for one batch in the ``yarn`` or ``kubernetes`` shape."""

    shape: str  # "yarn" | "kubernetes"
    batch_id: int
    name: str
    cluster_started_ms: int
    emit: Callable[[str], None]  # writes one line to spark-submit's stderr queue
    emulate: bool = True  # False: a real cluster-mode spark-submit prints its own launcher lines
    app_id: str = field(init=False)
    pod: str = field(init=False)

    def __post_init__(self) -> None:
        if self.shape == "yarn":
            self.app_id = f"application_{self.cluster_started_ms}_{self.batch_id + 1:04d}"
        else:
            self.app_id = "spark-" + uuid.uuid4().hex
        self.pod = f"{_dns_label(self.name)}-{uuid.uuid4().hex[:16]}-driver"

    @property
    def container_id(self) -> str:
        return f"container_{self.cluster_started_ms}_{self.batch_id + 1:04d}_01_000001"

    def _log(self, level: str, logger: str, message: str) -> None:
        self.emit(f"{log4j_time()} {level} {logger}: {message}")

    def submitted(self) -> None:
        if not self.emulate:
            return
        if self.shape == "yarn":
            self._log("INFO", "Client", "Requesting a new application from cluster with 1 NodeManagers")
            self._log("INFO", "Client", f"Submitting application {self.app_id} to ResourceManager")
            self._log("INFO", "YarnClientImpl", f"Submitted application {self.app_id}")
            self._log("INFO", "Client", f"Application report for {self.app_id} (state: ACCEPTED)")
        else:
            self._log("INFO", "LoggingPodStatusWatcherImpl", "State changed, new state: ")
            for line in (f"pod name: {self.pod}", "namespace: default", "phase: Pending"):
                self.emit("\t " + line)
            self._log("INFO", "LoggingPodStatusWatcherImpl", f"Deployed Spark application {self.name} with "
                      f"application ID {self.app_id} into Kubernetes")  # fmt: skip

    def running(self) -> None:
        if not self.emulate:
            return
        if self.shape == "yarn":
            self._log("INFO", "Client", f"Application report for {self.app_id} (state: RUNNING)")
        else:
            self._log("INFO", "LoggingPodStatusWatcherImpl", f"Application status for {self.app_id} (phase: Running)")

    def finished(self, state: str, diagnostics: list[str]) -> None:
        if not self.emulate:
            return
        if self.shape == "yarn":
            final = _FINAL.get(state, "FAILED")
            yarn_state = "KILLED" if state == "killed" else ("FINISHED" if state == "success" else "FAILED")
            self._log("INFO", "Client", f"Application report for {self.app_id} (state: {yarn_state})")
            self._log("INFO", "Client", "")
            for line in (
                "client token: N/A",
                "diagnostics: " + (diagnostics[0] if diagnostics else "N/A"),
                "ApplicationMaster host: 127.0.0.1",
                f"final status: {final}",
                "user: livy",
            ):
                self.emit("\t " + line)
            if state != "success":
                self.emit(f'Exception in thread "main" org.apache.spark.SparkException: Application '
                          f"{self.app_id} finished with failed status")  # fmt: skip
        else:
            phase = _PHASE.get(state, "Failed")
            self._log("INFO", "LoggingPodStatusWatcherImpl", "State changed, new state: ")
            for line in (f"pod name: {self.pod}", "namespace: default", f"phase: {phase}"):
                self.emit("\t " + line)
            self._log("INFO", "LoggingPodStatusWatcherImpl", f"Application {self.name} with application ID "
                      f"{self.app_id} and submission ID default:{self.pod} finished")  # fmt: skip
        self._log("INFO", "ShutdownHookManager", "Shutdown hook called")

    def diagnostics(self, state: str, exit_code: int | None, error_line: str | None, is_jar: bool) -> list[str]:
        """YARN's or Kubernetes' diagnostics for the finished application (empty on success)."""
        if self.shape == "yarn":
            if state == "success":
                return []
            if state == "killed":
                return ["Application killed by user."]
            if is_jar and error_line:
                return [f"User class threw exception: {error_line}"]
            return [f"User application exited with status {exit_code if exit_code is not None else 1}"]
        phase = _PHASE.get(state, "Failed")
        reason = "Completed" if state == "success" else "Error"
        code = 0 if state == "success" else (exit_code or 1)
        return [self.pod, f"\tphase: {phase}", "\tcontainer name: spark-kubernetes-driver",
                f"\texit code: {code}", f"\ttermination reason: {reason}"]  # fmt: skip


def _dns_label(name: str) -> str:
    label = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return (label or "spark")[:40]
