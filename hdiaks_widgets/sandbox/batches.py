"""Batch registry, run queue and ``spark-submit`` runner.

Follows Livy's ``BatchSession`` / ``SessionManager``: ids from a counter, unique names while a
session is live or retained, states ``starting -> running -> success | dead | killed``, finished
batches purged after ``retain_seconds``. At most ``max_running`` Spark applications run at once;
queued batches stay ``starting``.

The log follows :mod:`~hdiaks_widgets.sandbox.logbuf`'s shape. In the ``yarn`` and ``kubernetes``
shapes a local-mode job plays a cluster-mode one: spark-submit's real output is the *driver's*
output (YARN container files served at ``driverLogUrl`` / the driver pod's log window), and the
launcher lines Livy's queues hold are those a YARN ``Client`` or Kubernetes
``LoggingPodStatusWatcher`` prints: a few submission lines, then one status report per
``report_interval`` seconds while the job runs, then the final status (see ``docs/fidelity.md``).
"""

from __future__ import annotations

import contextlib
import functools
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
from hdiaks_widgets.sandbox.cluster import ClusterError, DriverState, StandaloneCluster
from hdiaks_widgets.sandbox.logbuf import DEFAULT_CACHE_LOG_SIZE, DriverFiles, LogBuffer, Stream
from hdiaks_widgets.sandbox.procs import group_members, kill_group, spark_env, start_in_new_session
from hdiaks_widgets.sandbox.registry import NotFound, Registry, lookup
from hdiaks_widgets.sandbox.reports import ClusterReports
from hdiaks_widgets.sandbox.storage import Storage

__all__ = ["BatchRecord", "BatchRegistry", "NotFound", "lookup"]

log = logging.getLogger(__name__)

_APP_ID = re.compile(r"(local-\d{10,}|app-\d{14}-\d{4,})\b")
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

# What spark-submit (Hadoop 3's FileSystem) throws for a path whose file system it cannot open,
# as pyspark's own spark-submit prints it: a connector that is not on the classpath is a
# ClassNotFoundException of the class core-default.xml names, any other scheme has no FileSystem.
_CONNECTORS = {"s3a": "org.apache.hadoop.fs.s3a.S3AFileSystem", "gs": "org.apache.hadoop.fs.gs.GoogleHadoopFileSystem"}
_URI_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?://(?P<host>[^/?#]*))?")


def _require_absolute(request: dict[str, Any]) -> None:
    """Livy's ``Session.resolveURI``: a path without a scheme must be absolute (it is then read
    from ``fs.defaultFS``), else the POST is refused with 400."""
    for key in ("file", *_FILE_LISTS):
        value = request.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item and not _URI_SCHEME.match(item) and not item.startswith("/"):
                raise BadRequest(f"requirement failed: Path '{item.partition('#')[0]}' is not absolute.")


def _unreadable(uri: str) -> str:
    """The exception spark-submit would die with on ``uri``, which the sandbox does not map."""
    match = _URI_SCHEME.match(uri)
    if match is None:
        return f"java.io.FileNotFoundException: File {uri} does not exist"
    scheme, host = match["scheme"].lower(), match["host"]
    if scheme in _CONNECTORS:
        return f"java.lang.RuntimeException: java.lang.ClassNotFoundException: Class {_CONNECTORS[scheme]} not found"
    if scheme == "hdfs":
        if not host:
            return f"java.io.IOException: Incomplete HDFS URI, no host: {uri}"
        return f"java.lang.IllegalArgumentException: java.net.UnknownHostException: {host.rsplit(':', 1)[0]}"
    if scheme in ("abfs", "abfss", "wasb", "wasbs", "file", "local"):
        return f"java.io.FileNotFoundException: File {uri} does not exist"
    return f'org.apache.hadoop.fs.UnsupportedFileSystemException: No FileSystem for scheme "{scheme}"'


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
    reports: ClusterReports | None = None  # yarn/kubernetes shape: the launcher it plays
    reports_closed: bool = False
    exit_code: int | None = None
    cluster_mode: bool = False  # a jar on the standalone cluster: --deploy-mode cluster
    driver_id: str | None = None
    ui_url: str | None = None  # cluster mode: the history server's page once the application ended
    scope: str | None = None  # set by a dialect front end (Fabric, Synapse); None = Apache Livy's
    external_id: str | None = None  # the id that front end shows (e.g. Fabric's UUID)
    created_at: float = field(default_factory=time.time)  # wall clock, for the dialects' timestamps
    state_times: dict[str, float] = field(default_factory=dict)  # wall clock when each state began
    output: DriverFiles | None = None  # spark-submit's whole output where no driver files hold it

    def enter(self, state: str) -> None:
        """Move to ``state``, remembering when it was first entered (``starting`` at launch)."""
        self.state = state
        self.state_times.setdefault(state, time.time())

    @property
    def launched(self) -> bool:
        """Whether spark-submit was started for this batch (a queued or refused one never was)."""
        return "starting" in self.state_times

    def driver_output(self) -> DriverFiles | None:
        """The driver's own stdout/stderr files, complete: the (played or real) YARN container or
        cluster driver files, else spark-submit's output (in local mode the driver *is* it)."""
        return self.log.driver_files if self.log.driver_files is not None else self.output

    @property
    def name(self) -> str | None:
        value = self.request.get("name")
        return None if value is None else str(value)

    @property
    def is_finished(self) -> bool:
        return self.state in ("success", "dead", "killed", "error")

    @property
    def is_jar(self) -> bool:
        return str(self.request.get("file", "")).split("#")[0].endswith(".jar")

    @property
    def user(self) -> str:
        return str(self.request.get("proxyUser") or "livy")

    @property
    def container_id(self) -> str | None:
        if self.cluster_mode:
            return self.driver_id if self.log.driver_files is not None else None
        return self.reports.container_id if self.reports is not None and self.reports.shape == "yarn" else None

    @property
    def shown_app_id(self) -> str | None:
        """The application id the batch shows (a played cluster job shows the played id)."""
        if self.reports is not None and self.reports.emulate and self.app_id is not None:
            return self.reports.app_id
        return self.app_id

    def spark_ui_url(self, base_url: str = "") -> str | None:
        """``appInfo.sparkUiUrl``: the application's UI behind the server's own web proxy while it
        runs (``{base}/proxy/{appId}/``, the shape of YARN's tracking URL that Livy reports), the
        History Server's page once a cluster-mode application ended; ``None`` before the
        application has an id. Without a base URL, the driver's own UI (tests of the view)."""
        if self.is_finished and (self.cluster_mode or self.ui_url is not None):
            return self.ui_url  # the history server's page (None without one)
        if self.app_id is None or not (self.ui_port or self.cluster_mode):
            return None
        if not base_url:
            return None if self.is_finished or not self.ui_port else f"http://127.0.0.1:{self.ui_port}"
        return f"{base_url}/proxy/{self.shown_app_id}/"

    def view(self, base_url: str = "") -> dict[str, Any]:
        """Livy's ``BatchSessionView``. ``driverLogUrl`` exists only in the YARN shape (Livy's
        local-mode and Kubernetes apps report none), and only once the application has an id."""
        ui = self.spark_ui_url(base_url)
        driver_log = None
        if base_url and self.container_id and self.app_id:
            driver_log = f"{base_url}/node/containerlogs/{self.container_id}/{self.user}"
        app_id = self.shown_app_id
        return {
            "id": self.id,
            "name": self.name,
            "owner": None,
            "proxyUser": self.request.get("proxyUser"),
            "state": self.state,
            "appId": app_id,
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
        log_shape: str = "process",
        cache_log_size: int = DEFAULT_CACHE_LOG_SIZE,
        report_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(retain_seconds=retain_seconds, clock=clock)
        LogBuffer(log_shape, cache_log_size)  # validates both
        self.log_shape = log_shape
        self.cache_log_size = cache_log_size
        self.report_interval = report_interval
        self._started_ms = int(time.time() * 1000)
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
        self.cluster: StandaloneCluster | None = None  # set by attach_cluster

    def attach_cluster(self, cluster: StandaloneCluster) -> None:
        """Run jobs on a started standalone cluster: jars in cluster deploy mode (the driver on a
        worker), Python apps in client mode (Spark refuses Python in standalone cluster mode)."""
        self.cluster = cluster
        self.master = cluster.master_url
        self._events = cluster.events_dir

    # -- registry -------------------------------------------------------------------------

    def create(
        self, request: dict[str, Any], *, scope: str | None = None, external_id: str | None = None
    ) -> BatchRecord:
        """A new batch, queued. ``scope``/``external_id``: see :mod:`~hdiaks_widgets.sandbox.registry`."""
        if not request.get("file"):
            raise BadRequest("File is required.")
        _require_absolute(request)
        with self._lock:
            if self._closed:
                raise BadRequest("Rejected, the sandbox is shutting down")
            name = request.get("name")
            ident = self._allocate(name, scope)
            rec = BatchRecord(id=ident, request=request, log=LogBuffer(self.log_shape, self.cache_log_size),
                              scope=scope, external_id=external_id)  # fmt: skip
            rec.cluster_mode = self.cluster is not None and rec.is_jar
            if self.log_shape in ("yarn", "kubernetes"):
                rec.reports = ClusterReports(
                    self.log_shape, ident, rec.name or f"livy-batch-{ident}", self._started_ms,
                    emit=functools.partial(rec.log.append, "stderr"), emulate=not rec.cluster_mode,
                )
                if self.log_shape == "yarn" and not rec.cluster_mode:
                    rec.log.driver_files = DriverFiles(self._work / f"batch-{ident}" / "container")
            if rec.log.driver_files is None and not rec.cluster_mode:
                rec.output = DriverFiles(self._work / f"batch-{ident}" / "output")
            self._records[ident] = rec
            self._queue.append(rec)
            log.info("batch %d created (name=%s)", ident, name)
            self._pump()
            return rec

    def container(self, container_id: str) -> BatchRecord:
        """The batch whose (played) YARN container this is, for the NodeManager log pages."""
        with self._lock:
            for rec in [*self._records.values(), *self._deleted.values()]:
                if rec.container_id == container_id:
                    return rec
        raise NotFound(container_id)

    def by_app(self, app_id: str) -> BatchRecord:
        """The batch showing application ``app_id`` (the web proxy's ``/proxy/{appId}/``)."""
        with self._lock:
            for rec in self._records.values():
                if app_id and rec.shown_app_id == app_id:
                    return rec
        raise NotFound(app_id)

    def driver_ui_port(self, rec: BatchRecord) -> int | None:
        """The port of the driver's UI: from spark-submit's output, or (cluster mode, the driver
        on a worker) from the driver's own stderr file."""
        if rec.ui_port is None and rec.cluster_mode and rec.log.driver_files is not None:
            data, _, _ = rec.log.driver_files.read("stderr", 0, 512 * 1024)
            match = _UI_PORT.search(data.decode("utf-8", errors="replace"))
            if match:
                rec.ui_port = int(match.group(1))
        return rec.ui_port

    def deleted(self, ident: int) -> BatchRecord:
        with self._lock:
            if ident in self._deleted:
                return self._deleted[ident]
        raise NotFound(str(ident))

    def delete(self, ident: str, *, scope: str | None = None, forget: bool = True) -> BatchRecord:
        """Kill the batch (the whole process tree) if it runs, then forget it, as Livy does.

        ``forget=False`` keeps the killed record until it is purged like any finished one (a
        service that shows cancelled jobs, as Fabric's and Synapse's monitoring do)."""
        with self._lock:
            self._purge()
            rec = lookup(self._records, ident, scope)
            rec.kill_requested = True
            if rec in self._queue:
                self._queue.remove(rec)
                self._finish(rec, "killed")
            proc = rec.proc
        if rec.driver_id is not None and self.cluster is not None:
            self.cluster.kill_driver(rec.driver_id)
        if proc is not None:
            left = kill_group(proc)
            if not left:
                rec.leftover_pids = group_members(proc.pid)
            proc.wait()
        with self._lock:
            if not rec.is_finished:
                self._finish(rec, "killed")
            if forget:
                self._records.pop(rec.id, None)
                self._deleted[rec.id] = rec
        log.info("batch %d %s (state=%s)", rec.id, "deleted" if forget else "cancelled", rec.state)
        return rec

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
        rec.enter(state)
        rec.finished_at = self._clock()
        self._running.discard(rec.id)
        self._close_reports(rec)

    def _pump(self) -> None:
        while self._queue and len(self._running) < self.max_running and not self._closed:
            rec = self._queue.popleft()
            self._running.add(rec.id)
            threading.Thread(target=self._run, args=(rec,), name=f"batch-{rec.id}", daemon=True).start()

    def _resolve(self, uri: str, rec: BatchRecord) -> str | None:
        base, sep, fragment = uri.partition("#")
        path = self.storage.resolve(base)
        if path is None:
            refusal = self.storage.refusal(uri)
            if refusal is None:  # http(s)://: spark-submit downloads it itself
                return uri
            # Real Livy hands the path to spark-submit, which dies on it (BatchSession.create);
            # the sandbox says it the way spark-submit would, without starting one, so a path
            # like hdfs://namenode/... never makes a connection off this machine.
            rec.log.append("stderr", f'Exception in thread "main" {_unreadable(base)}')
            rec.log.append("stderr", refusal)
            return None
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
        if rec.cluster_mode:
            cmd += ["--deploy-mode", "cluster"]
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
            # Any free port for the driver's UI (Spark's default 4040+ collides with other
            # drivers on a shared machine after spark.port.maxRetries); the job's conf may say.
            "spark.ui.port": "0",
        }
        if self.cluster is not None:
            cluster_conf = self.cluster.submit_conf()
            if not rec.cluster_mode:  # client mode: only what the executors need to fit the workers
                cluster_conf = {k: v for k, v in cluster_conf.items() if not k.startswith("spark.driver.")
                                and k != "spark.standalone.submit.waitAppCompletion"}  # fmt: skip
            conf.update(cluster_conf)
        conf.update(req.get("conf", {}))
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        main = self._resolve(str(req["file"]), rec)
        if main is None or not ok:
            return None
        cmd.append(main)
        cmd += [self.storage.map_arg(a) for a in req.get("args", [])]
        return cmd

    def _read(self, rec: BatchRecord, stream: Stream, pipe: IO[bytes]) -> None:
        # A local job playing a cluster one: spark-submit's output is the driver's.
        write = rec.log.driver if rec.reports is not None and rec.reports.emulate else rec.log.append
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            write(stream, line)
            if rec.output is not None:
                rec.output.write(stream, line)
            if rec.cluster_mode:
                if rec.driver_id is None and self.cluster is not None:
                    rec.driver_id = self.cluster.driver_id(line)
                continue  # launcher output: the application id and UI come from the driver
            if rec.app_id is None:
                match = _APP_ID.search(line)
                if match:
                    rec.app_id = match.group(1)
                    with self._lock:
                        if rec.state == "starting":
                            rec.enter("running")
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
            rec.enter("starting")
            rec.log.start()
        log.info("batch %d started spark-submit pid %d", rec.id, proc.pid)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=self._read, args=(rec, "stdout", proc.stdout), daemon=True),
            threading.Thread(target=self._read, args=(rec, "stderr", proc.stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        done = threading.Event()
        reporter = None
        if rec.cluster_mode:
            reporter = threading.Thread(target=self._watch_driver, args=(rec, done), daemon=True)
            reporter.start()
        elif rec.reports is not None:
            rec.reports.submitted()
            reporter = threading.Thread(target=self._report, args=(rec, done), daemon=True)
            reporter.start()
        code = proc.wait()
        for reader in readers:
            reader.join(timeout=10)
        done.set()
        if reporter is not None:
            reporter.join(timeout=5)
        # The driver is gone; make sure no child (Python worker, JVM) outlives it.
        if group_members(proc.pid):
            kill_group(proc, grace=2.0)
        with self._lock:
            rec.exit_code = code
        if rec.cluster_mode and not rec.is_finished:
            self._poll_driver(rec)  # spark-submit exits 0 whatever the driver did: ask the master
        with self._lock:
            cluster = self.cluster
            if not rec.cluster_mode and cluster is not None and cluster.history_url is not None and rec.app_id:
                rec.ui_url = cluster.app_ui_url(rec.app_id)  # a client-mode app's events went there too
            if not rec.is_finished:
                state = "killed" if rec.kill_requested else ("success" if code == 0 else "dead")
                if rec.cluster_mode and not rec.kill_requested:
                    state = "dead"  # the master never said the driver finished
                self._finish(rec, state)
        log.info("batch %d finished: %s (exit %d)", rec.id, rec.state, code)

    def _watch_driver(self, rec: BatchRecord, done: threading.Event) -> None:
        """Cluster mode: follow the driver on the master (as Livy follows a YARN application)."""
        while not done.wait(0.5):
            if self._poll_driver(rec):
                return

    def _poll_driver(self, rec: BatchRecord) -> bool:
        """One look at the driver; True once it has ended (the batch is then finished)."""
        cluster = self.cluster
        if cluster is None or rec.driver_id is None:
            return False
        try:
            info = cluster.driver_info(rec.driver_id)
        except ClusterError as exc:
            log.warning("batch %d: %s", rec.id, exc)
            return False
        if info is None:
            return False
        if rec.log.driver_files is None:
            folder = cluster.driver_dir(rec.driver_id)
            if folder is not None:
                rec.log.driver_files = DriverFiles(folder, writable=False)
        if info.app_id and rec.app_id is None:
            rec.app_id = info.app_id
        with self._lock:
            if info.state == DriverState.RUNNING and rec.state == "starting" and rec.app_id is not None:
                rec.enter("running")
            if not info.state.is_terminal:
                return False
            if rec.app_id is not None and cluster.history_url is not None:
                rec.ui_url = cluster.app_ui_url(rec.app_id)
            if not rec.is_finished:
                state = {DriverState.FINISHED: "success", DriverState.KILLED: "killed"}.get(info.state, "dead")
                self._finish(rec, "killed" if rec.kill_requested else state)
        return True

    def _report(self, rec: BatchRecord, done: threading.Event) -> None:
        """Play the YARN client / Kubernetes pod watcher: one status line per interval."""
        assert rec.reports is not None
        while not done.wait(self.report_interval):
            if rec.app_id is not None:
                rec.reports.running()

    def _close_reports(self, rec: BatchRecord) -> None:
        if rec.reports is None or rec.reports_closed:
            return
        rec.reports_closed = True
        error = _last_exception(rec.log.driver_files) if rec.log.driver_files is not None else None
        diagnostics = rec.reports.diagnostics(rec.state, rec.exit_code, error, rec.is_jar)
        rec.reports.finished(rec.state, diagnostics)
        rec.log.set_diagnostics(diagnostics)

    def stop_all(self) -> None:
        self.shutdown()
        with contextlib.suppress(Exception):
            for rec in list(self._records.values()):
                if rec.proc is not None:
                    rec.proc.wait(timeout=10)


_EXCEPTION = re.compile(r"^(?:Exception in thread \"[^\"]*\" )?((?:[\w$]+\.)+[\w$]*(?:Exception|Error)\b.*)$")


def _last_exception(files: DriverFiles, limit: int = 256 * 1024) -> str | None:
    """The last Java exception line in the driver's stderr (YARN's "User class threw exception")."""
    data, _, _ = files.read("stderr", -limit, None)
    for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
        match = _EXCEPTION.match(line.strip())
        if match:
            return match.group(1)
    return None
