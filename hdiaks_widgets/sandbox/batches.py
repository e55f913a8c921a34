"""Batch registry, run queue and ``spark-submit`` runner.

Follows Livy's ``BatchSession`` / ``SessionManager``: ids from a counter, unique names while a
session is live or retained, states ``starting -> running -> success | dead | killed``, finished
batches purged after ``retain_seconds``. At most ``max_running`` Spark applications run at once;
queued batches stay ``starting``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hdiaks_widgets.sandbox.bodies import BadRequest
from hdiaks_widgets.sandbox.logbuf import LogBuffer, Stream
from hdiaks_widgets.sandbox.procs import group_members, kill_group, spark_env, start_in_new_session
from hdiaks_widgets.sandbox.registry import NotFound, Registry, lookup
from hdiaks_widgets.sandbox.storage import Storage

__all__ = ["BatchRecord", "BatchRegistry", "NotFound", "lookup"]

log = logging.getLogger(__name__)

_APP_ID = re.compile(r"(local-\d{10,})\b")
_UI_PORT = re.compile(r"started service 'SparkUI' on port (\d+)")

# Livy body field -> spark-submit flag (lists are comma-joined).
_FLAGS = {
    "className": "--class",
    "jars": "--jars",
    "pyFiles": "--py-files",
    "files": "--files",
    "archives": "--archives",
    "driverMemory": "--driver-memory",
    "driverCores": "--driver-cores",
    "executorMemory": "--executor-memory",
    "executorCores": "--executor-cores",
    "numExecutors": "--num-executors",
}
_FILE_LISTS = ("jars", "pyFiles", "files", "archives")


@dataclass
class BatchRecord:
    id: int
    request: dict[str, Any]
    state: str = "starting"
    app_id: str | None = None
    ui_port: int | None = None
    log: LogBuffer = field(default_factory=LogBuffer)
    proc: subprocess.Popen[bytes] | None = None
    pgid: int | None = None
    kill_requested: bool = False
    finished_at: float | None = None
    leftover_pids: list[int] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        value = self.request.get("name")
        return None if value is None else str(value)

    @property
    def is_finished(self) -> bool:
        return self.state in ("success", "dead", "killed", "error")

    def view(self, base_url: str = "") -> dict[str, Any]:
        """Livy's ``BatchSessionView``."""
        ui = f"http://127.0.0.1:{self.ui_port}" if self.ui_port and not self.is_finished else None
        driver_log = f"{base_url}/batches/{self.id}/log?from=0&size=-1" if base_url else None
        return {
            "id": self.id,
            "name": self.name,
            "owner": None,
            "proxyUser": self.request.get("proxyUser"),
            "state": self.state,
            "appId": self.app_id,
            "appInfo": {"driverLogUrl": driver_log, "sparkUiUrl": ui},
            "log": self.log.tail(10),
        }


class BatchRegistry(Registry[BatchRecord]):
    def __init__(
        self,
        *,
        root: Path,
        storage: Storage,
        spark_home: Path,
        master: str = "local[2]",
        max_running: int = 1,
        retain_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(retain_seconds=retain_seconds, clock=clock)
        self.root = root
        self.storage = storage
        self.spark_home = spark_home
        self.master = master
        self.max_running = max(1, max_running)
        self.base_url = ""
        self._deleted: dict[int, BatchRecord] = {}
        self._queue: deque[BatchRecord] = deque()
        self._running: set[int] = set()
        self._closed = False
        self._work = root / "work"
        self._events = root / "spark-events"

    # -- registry -------------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> BatchRecord:
        if not request.get("file"):
            raise BadRequest("File is required.")
        with self._lock:
            if self._closed:
                raise BadRequest("Rejected, the sandbox is shutting down")
            name = request.get("name")
            ident = self._allocate(name)
            rec = BatchRecord(id=ident, request=request)
            self._records[ident] = rec
            self._queue.append(rec)
            log.info("batch %d created (name=%s)", ident, name)
            self._pump()
            return rec

    def deleted(self, ident: int) -> BatchRecord:
        with self._lock:
            if ident in self._deleted:
                return self._deleted[ident]
        raise NotFound(str(ident))

    def delete(self, ident: str) -> None:
        """Kill the batch (the whole process tree) if it runs, then forget it, as Livy does."""
        with self._lock:
            self._purge()
            rec = lookup(self._records, ident)
            rec.kill_requested = True
            if rec in self._queue:
                self._queue.remove(rec)
                self._finish(rec, "killed")
            proc = rec.proc
        if proc is not None:
            left = kill_group(proc)
            if not left:
                rec.leftover_pids = group_members(proc.pid)
            proc.wait()
        with self._lock:
            if not rec.is_finished:
                self._finish(rec, "killed")
            self._records.pop(rec.id, None)
            self._deleted[rec.id] = rec
        log.info("batch %d deleted (state=%s)", rec.id, rec.state)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
            procs = [r.proc for r in self._records.values() if r.proc is not None and not r.is_finished]
            for rec in self._records.values():
                rec.kill_requested = True
        for proc in procs:
            kill_group(proc)

    # -- running --------------------------------------------------------------------------

    def _finish(self, rec: BatchRecord, state: str) -> None:
        rec.state = state
        rec.finished_at = self._clock()
        self._running.discard(rec.id)

    def _pump(self) -> None:
        while self._queue and len(self._running) < self.max_running and not self._closed:
            rec = self._queue.popleft()
            self._running.add(rec.id)
            threading.Thread(target=self._run, args=(rec,), name=f"batch-{rec.id}", daemon=True).start()

    def _resolve(self, uri: str, rec: BatchRecord) -> str | None:
        base, sep, fragment = uri.partition("#")
        path = self.storage.resolve(base)
        if path is None:
            return uri
        if not path.exists():
            rec.log.append(
                "stderr", f'Exception in thread "main" java.io.FileNotFoundException: File {base} does not exist'
            )
            rec.log.append("stderr", f"sandbox: {base} resolves to {path}, which does not exist")
            return None
        return str(path) + sep + fragment

    def command(self, rec: BatchRecord) -> list[str] | None:
        """The spark-submit command line, or ``None`` (and log lines) if a file is missing."""
        req = rec.request
        cmd = [str(self.spark_home / "bin" / "spark-submit"), "--master", self.master]
        cmd += ["--name", str(req.get("name") or f"livy-batch-{rec.id}")]
        ok = True
        for key, flag in _FLAGS.items():
            value = req.get(key)
            if value is None:
                continue
            if key in _FILE_LISTS:
                resolved = [self._resolve(v, rec) for v in value]
                ok = ok and all(r is not None for r in resolved)
                if value:
                    cmd += [flag, ",".join(r or "" for r in resolved)]
            else:
                cmd += [flag, str(value)]
        self._events.mkdir(parents=True, exist_ok=True)
        conf = {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": self._events.as_uri(),
            "spark.ui.showConsoleProgress": "false",
            **req.get("conf", {}),
        }
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        main = self._resolve(str(req["file"]), rec)
        if main is None or not ok:
            return None
        cmd.append(main)
        cmd += [self.storage.map_arg(a) for a in req.get("args", [])]
        return cmd

    def _read(self, rec: BatchRecord, stream: Stream, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            rec.log.append(stream, line)
            if rec.app_id is None:
                match = _APP_ID.search(line)
                if match:
                    rec.app_id = match.group(1)
                    with self._lock:
                        if rec.state == "starting":
                            rec.state = "running"
            if rec.ui_port is None:
                match = _UI_PORT.search(line)
                if match:
                    rec.ui_port = int(match.group(1))
        pipe.close()

    def _run(self, rec: BatchRecord) -> None:
        try:
            self._launch(rec)
        except Exception as exc:  # a crash of the runner must not leave a batch "starting"
            log.exception("batch %d runner failed", rec.id)
            rec.log.append("stderr", f"sandbox: could not run spark-submit: {exc}")
            with self._lock:
                if not rec.is_finished:
                    self._finish(rec, "dead")
        finally:
            with self._lock:
                self._running.discard(rec.id)
                self._pump()

    def _launch(self, rec: BatchRecord) -> None:
        cmd = self.command(rec)
        with self._lock:
            if rec.kill_requested or self._closed:
                if not rec.is_finished:
                    self._finish(rec, "killed")
                return
            if cmd is None:
                self._finish(rec, "dead")
                return
            work = self._work / f"batch-{rec.id}"
            work.mkdir(parents=True, exist_ok=True)
            proc = start_in_new_session(cmd, env=spark_env(self.spark_home), cwd=work)
            rec.proc, rec.pgid = proc, proc.pid
        log.info("batch %d started spark-submit pid %d", rec.id, proc.pid)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=self._read, args=(rec, "stdout", proc.stdout), daemon=True),
            threading.Thread(target=self._read, args=(rec, "stderr", proc.stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        code = proc.wait()
        for reader in readers:
            reader.join(timeout=10)
        # The driver is gone; make sure no child (Python worker, JVM) outlives it.
        if group_members(proc.pid):
            kill_group(proc, grace=2.0)
        with self._lock:
            if rec.is_finished:
                return
            self._finish(rec, "killed" if rec.kill_requested else ("success" if code == 0 else "dead"))
        log.info("batch %d finished: %s (exit %d)", rec.id, rec.state, code)

    def stop_all(self) -> None:
        self.shutdown()
        with contextlib.suppress(Exception):
            for rec in list(self._records.values()):
                if rec.proc is not None:
                    rec.proc.wait(timeout=10)
