"""Interactive ``pyspark`` / ``sql`` sessions backed by one worker process each.

States follow Livy's ``InteractiveSession``: ``starting -> idle -> busy -> idle``, ``dead`` when
the worker dies. Statements run one at a time in order: ``waiting -> running -> available |
error | cancelled``; a running statement is cancelled with SIGINT to the worker.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hdiaks_widgets.sandbox.bodies import BadRequest
from hdiaks_widgets.sandbox.logbuf import DEFAULT_CACHE_LOG_SIZE, LogBuffer
from hdiaks_widgets.sandbox.procs import kill_group, spark_env
from hdiaks_widgets.sandbox.registry import NotFound, Registry
from hdiaks_widgets.sandbox.storage import Storage

__all__ = ["SessionRecord", "SessionRegistry", "StatementRecord"]

log = logging.getLogger(__name__)

SESSION_KINDS = ("pyspark", "sql")
STATEMENT_KINDS = ("pyspark", "python", "sql")


class StatementNotFound(NotFound):
    """Livy answers 404 ``Statement not found`` for an unknown statement id."""

    def __init__(self) -> None:
        Exception.__init__(self, "Statement not found")
        self.ident = ""


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class StatementRecord:
    id: int
    code: str
    kind: str
    state: str = "waiting"
    output: dict[str, Any] | None = None
    started: int = 0
    completed: int = 0

    def view(self) -> dict[str, Any]:
        done = self.state in ("available", "error", "cancelled")
        return {
            "id": self.id,
            "code": self.code,
            "state": self.state,
            "output": self.output,
            "progress": 1.0 if done else 0.0,
            "started": self.started,
            "completed": self.completed,
        }


@dataclass
class SessionRecord:
    id: int
    request: dict[str, Any]
    kind: str
    state: str = "starting"
    app_id: str | None = None
    ui_url: str | None = None
    log: LogBuffer = field(default_factory=LogBuffer)
    proc: subprocess.Popen[bytes] | None = None
    statements: list[StatementRecord] = field(default_factory=list)
    pending: queue.Queue[StatementRecord | None] = field(default_factory=queue.Queue)
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str | None:
        value = self.request.get("name")
        return None if value is None else str(value)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "appId": self.app_id,
            "owner": None,
            "proxyUser": self.request.get("proxyUser"),
            "state": self.state,
            "kind": self.kind,
            "appInfo": {"driverLogUrl": None, "sparkUiUrl": self.ui_url if self.state != "dead" else None},
            "log": self.log.tail(10),
        }


class SessionRegistry(Registry[SessionRecord]):
    def __init__(
        self,
        *,
        root: Path,
        storage: Storage,
        spark_home: Path,
        master: str = "local[2]",
        retain_seconds: float = 600.0,
        log_shape: str = "process",
        cache_log_size: int = DEFAULT_CACHE_LOG_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(retain_seconds=retain_seconds, clock=clock)
        LogBuffer(log_shape, cache_log_size)  # validates both
        self.log_shape = log_shape
        self.cache_log_size = cache_log_size
        self.root = root
        self.storage = storage
        self.spark_home = spark_home
        self.master = master

    def create(self, request: dict[str, Any]) -> SessionRecord:
        kind = str(request.get("kind") or "pyspark")
        if kind not in SESSION_KINDS:
            raise BadRequest(f"Rejected, Reason: the sandbox supports only {' and '.join(SESSION_KINDS)} sessions")
        with self._lock:
            ident = self._allocate(request.get("name"))
            rec = SessionRecord(id=ident, request=request, kind=kind,
                                log=LogBuffer(self.log_shape, self.cache_log_size))
            self._records[ident] = rec
        threading.Thread(target=self._run, args=(rec,), name=f"session-{ident}", daemon=True).start()
        return rec

    def delete(self, ident: str) -> None:
        with self._lock:
            rec = self.get(ident)
            self._records.pop(rec.id, None)
        self._stop(rec)

    def shutdown(self) -> None:
        with self._lock:
            records = list(self._records.values())
        for rec in records:
            self._stop(rec)

    def _stop(self, rec: SessionRecord) -> None:
        rec.pending.put(None)
        with rec.lock:
            rec.state = "dead" if rec.state != "dead" else rec.state
            proc = rec.proc
            for stmt in rec.statements:
                if stmt.state in ("waiting", "running", "cancelling"):
                    stmt.state = "cancelled"
        if proc is not None:
            kill_group(proc)

    # -- statements -----------------------------------------------------------------------

    def submit(self, rec: SessionRecord, code: str, kind: str | None) -> StatementRecord:
        kind = kind or rec.kind
        if kind not in STATEMENT_KINDS:
            raise BadRequest(f"Rejected, Reason: unsupported statement kind {kind!r} in a {rec.kind} session")
        with rec.lock:
            if rec.state in ("dead", "error", "killed", "shutting_down"):
                raise BadRequest(f"Session {rec.id} is in state {rec.state}, it cannot run statements")
            stmt = StatementRecord(id=len(rec.statements), code=code, kind=kind)
            rec.statements.append(stmt)
        rec.pending.put(stmt)
        return stmt

    def statement(self, rec: SessionRecord, ident: str) -> StatementRecord:
        with rec.lock:
            if ident.isdigit() and int(ident) < len(rec.statements):
                return rec.statements[int(ident)]
        raise StatementNotFound()

    def cancel(self, rec: SessionRecord, stmt: StatementRecord) -> None:
        with rec.lock:
            if stmt.state == "waiting":
                stmt.state = "cancelled"
                stmt.completed = _now_ms()
            elif stmt.state == "running" and rec.proc is not None:
                stmt.state = "cancelling"
                os.kill(rec.proc.pid, signal.SIGINT)

    # -- the worker -----------------------------------------------------------------------

    def _read_log(self, rec: SessionRecord, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            rec.log.append("stderr", raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        pipe.close()

    def _died(self, rec: SessionRecord) -> None:
        with rec.lock:
            rec.state = "dead"
            rec.finished_at = self._clock()
            for stmt in rec.statements:
                if stmt.state in ("waiting", "running", "cancelling"):
                    stmt.state = "cancelled" if stmt.state == "cancelling" else "error"
        log.info("session %d is dead", rec.id)

    def _run(self, rec: SessionRecord) -> None:
        conf = dict(rec.request.get("conf", {}))
        jars = [str(self.storage.resolve(j) or j) for j in rec.request.get("jars", [])]
        if jars:
            conf["spark.jars"] = ",".join(jars)
        env = spark_env(
            self.spark_home,
            {
                "HDIAKS_SANDBOX_MASTER": self.master,
                "HDIAKS_SANDBOX_APP_NAME": rec.name or f"livy-session-{rec.id}",
                "HDIAKS_SANDBOX_CONF": json.dumps(conf),
            },
        )
        work = self.root / "work" / f"session-{rec.id}"
        work.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "hdiaks_widgets.sandbox._session_worker"]
        proc = subprocess.Popen(  # noqa: S603 - fixed command line
            cmd,
            env=env,
            cwd=str(work),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with rec.lock:
            rec.proc = proc
            if rec.state == "dead":  # deleted while starting
                kill_group(proc)
                return
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=self._read_log, args=(rec, proc.stderr), daemon=True).start()
        ready = json.loads(proc.stdout.readline() or b'{"event": "eof"}')
        if ready.get("event") != "ready":
            self._died(rec)
            return
        with rec.lock:
            rec.app_id, rec.ui_url = ready.get("appId"), ready.get("sparkUiUrl")
            if rec.state == "starting":
                rec.state = "idle"
        while True:
            stmt = rec.pending.get()
            if stmt is None:
                break
            with rec.lock:
                if stmt.state != "waiting":
                    continue
                stmt.state, stmt.started, rec.state = "running", _now_ms(), "busy"
            try:
                proc.stdin.write((json.dumps({"id": stmt.id, "code": stmt.code, "kind": stmt.kind}) + "\n").encode())
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline() or b"{}")
            except (OSError, ValueError):
                answer = {}
            with rec.lock:
                if not answer:
                    break
                stmt.completed = _now_ms()
                if answer.get("cancelled"):
                    stmt.state = "cancelled"
                else:
                    stmt.output = answer["output"]
                    # As in Livy's repl Session: an error *result* still makes the statement available.
                    stmt.state = "available"
                if rec.state == "busy":
                    rec.state = "idle"
        if proc.poll() is None and rec.state != "dead":
            kill_group(proc)
        self._died(rec)
