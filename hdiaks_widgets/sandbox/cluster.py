"""A Spark standalone cluster (master, workers, history server) run from the pyspark package.

Each daemon is started with ``spark-class <MainClass>`` in its own session (``exec`` makes the
shell the JVM, so the PID we hold is the daemon's), on free loopback ports, with its output in
``root/logs/<daemon>.log``. Drivers and executors are children of a worker JVM and share its
process group; :meth:`StandaloneCluster.stop` kills each daemon's group and then any java process
left with its working directory under ``root``.

Measured on this machine (pyspark 4.3.0, JDK 17, 2 cores) with ``spark-submit --master
<master_url> --deploy-mode cluster`` and :meth:`StandaloneCluster.submit_conf` (which sets
``spark.standalone.submit.waitAppCompletion=true``):

- spark-submit prints nothing on stdout. Its stderr has ~15 lines: two JVM/log4j notices, Hadoop's
  native-library WARN, SecurityManager and port INFO lines, then from ``ClientEndpoint``::

    INFO ClientEndpoint: ... waiting before polling master for driver state
    INFO ClientEndpoint: Driver successfully submitted as driver-20261202013625-0000
    INFO ClientEndpoint: State of driver-20261202013625-0000 is RUNNING
    INFO ClientEndpoint: Driver running on 127.0.0.1:59873 (worker-20261202013620-127.0.0.1-59873)
    INFO ClientEndpoint: State of driver driver-20261202013625-0000 is FINISHED, exiting spark-submit JVM.

  It asks the master for the state 5 s after submitting and then every 10 s
  (``REPORT_DRIVER_STATUS_INTERVAL`` in Spark's ``deploy/Client.scala``), but prints only the
  first answer and the terminal one: there is no periodic state line at INFO, and it notices the
  end up to 10 s late. SparkPi: spark-submit exits after ~18 s, the driver's SparkContext lives ~8 s.
- The exit code is 0 for FINISHED, FAILED and KILLED alike (the client calls ``System.exit(0)`` for
  every terminal state); it is non-zero only when the client itself fails (master unreachable,
  driver unknown). Read the outcome from :meth:`StandaloneCluster.driver_info`. For a driver that
  throws after ``spark.stop()`` the master's application state is FINISHED too: only the driver
  state says FAILED.
- The driver's working directory ``<worker dir>/<driver id>/`` holds a copy of the application jar,
  ``stdout`` (the application's stdout, nothing else) and ``stderr``: first a ``Launch Command:``
  line with the whole java command, every ``-Dspark.*`` conf value included, then log4j output and
  the application's stderr, ending with an uncaught exception's stack trace
  (``InvocationTargetException`` ... ``Caused by: java.lang.IllegalStateException: ...``).
  Executors run in ``<worker dir>/<app id>/<executor id>/`` (jar copy, ``stdout``, ``stderr``).
- The master's ``/json/`` does not link drivers to applications; the driver's stderr line
  ``StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-...`` does.
- Killing: the master UI's ``POST /driver/kill`` refuses requests without the page's CSRF token
  (403), so the master's REST server runs on a port of its own and :meth:`StandaloneCluster.kill_driver`
  uses ``POST /v1/submissions/kill/<id>``: the driver is KILLED, its JVM gone, within ~0.3 s;
  spark-submit prints ``State of driver <id> is KILLED, exiting spark-submit JVM.`` at its next
  poll and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

from hdiaks_widgets.errors import HdiaksError, trim_body
from hdiaks_widgets.sandbox.procs import group_members, kill_group, spark_env

__all__ = ["ClusterConfig", "ClusterError", "DriverInfo", "DriverState", "StandaloneCluster"]

log = logging.getLogger(__name__)

_DRIVER_ID = re.compile(r"\b(driver-\d{14}-\d{4,})\b")
_APP_ID = re.compile(r"\b(app-\d{14}-\d{4,})\b")
_APP_CONNECTED = re.compile(r"Connected to Spark cluster with app ID (app-\d{14}-\d{4,})")
_HTTP_TIMEOUT = 5.0
_TAIL_LINES = 20


class ClusterError(HdiaksError):
    """A cluster daemon did not start or died; names it and quotes the end of its log."""

    def __init__(self, message: str, *, daemon: str | None = None, log_tail: tuple[str, ...] = ()) -> None:
        self.daemon = daemon
        self.log_tail = log_tail
        if log_tail:
            message += "; last lines of its log:\n" + "\n".join(log_tail)
        super().__init__(message)


class DriverState(StrEnum):
    """Spark's ``deploy.master.DriverState``."""

    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    RELAUNCHING = "RELAUNCHING"
    UNKNOWN = "UNKNOWN"
    KILLED = "KILLED"
    FAILED = "FAILED"
    ERROR = "ERROR"

    @property
    def is_terminal(self) -> bool:
        return self in (DriverState.FINISHED, DriverState.KILLED, DriverState.FAILED, DriverState.ERROR)


@dataclass(frozen=True)
class ClusterConfig:
    workers: int = 1
    # A cluster-mode driver holds one core for its whole life; the executor needs another one,
    # or the job waits forever ("Initial job has not accepted any resources").
    worker_cores: int = 2
    worker_memory: str = "1g"
    history: bool = True


@dataclass(frozen=True)
class DriverInfo:
    """A driver as the master's ``/json/`` shows it, plus the application it started."""

    driver_id: str
    state: DriverState
    worker_id: str | None
    worker_host: str | None  # "host:port" of the worker's RPC endpoint
    main_class: str | None
    app_id: str | None
    app_state: str | None  # the master's ApplicationState (RUNNING, FINISHED, KILLED, ...)


@dataclass
class _Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = _TAIL_LINES) -> tuple[str, ...]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(text.splitlines()[-lines:])


def _properties_value(value: str) -> str:
    # java.util.Properties syntax: backslash escapes, a leading space would be dropped.
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
    return "\\" + escaped if escaped.startswith(" ") else escaped


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return (fields[0], int(fields[1])) if len(fields) >= 2 else None


def _live_pids() -> Iterator[tuple[int, int]]:
    """(pid, ppid) of every live, non-zombie process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and stat[0] not in ("Z", "X"):
            yield int(entry), stat[1]


def _is_java(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return os.path.basename(argv0) == b"java"


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _is_alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


class StandaloneCluster:
    """Start, query and stop a local Spark standalone cluster that owns the directory ``root``.

    ``root`` holds ``worker-<i>/`` (work dirs), ``spark-events/`` (event logs, for
    ``spark.eventLog.dir``), ``logs/`` (the daemons' output) and ``conf/``.
    """

    def __init__(
        self,
        spark_home: Path,
        root: Path,
        config: ClusterConfig = ClusterConfig(),  # noqa: B008 - frozen dataclass, immutable
        *,
        session: requests.Session | None = None,
    ) -> None:
        self.spark_home = spark_home
        self.root = root.resolve()
        self.config = config
        self.events_dir = self.root / "spark-events"
        self._logs = self.root / "logs"
        self._conf = self.root / "conf"
        owns_session = session is None
        if session is None:
            # Loopback only: proxy and CA variables of the environment must not apply.
            session = requests.Session()
            session.trust_env = False
        self._http = session
        self._owns_session = owns_session
        self._lock = threading.Lock()
        self._daemons: list[_Daemon] = []
        self._master_port: int | None = None
        self._master_ui_port: int | None = None
        self._history_port: int | None = None
        self._rest_port: int | None = None
        self._app_ids: dict[str, str] = {}

    # -- addresses --------------------------------------------------------------------------

    def _require(self, port: int | None) -> int:
        if port is None:
            raise ClusterError("the cluster is not started")
        return port

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self._require(self._master_port)}"

    @property
    def master_ui_url(self) -> str:
        return f"http://127.0.0.1:{self._require(self._master_ui_port)}"

    @property
    def history_url(self) -> str | None:
        return None if self._history_port is None else f"http://127.0.0.1:{self._history_port}"

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [d.proc.pid for d in self._daemons]

    def worker_dirs(self) -> list[Path]:
        return [self.root / f"worker-{i}" for i in range(self.config.workers)]

    def submit_conf(self) -> dict[str, str]:
        """``--conf`` pairs for ``spark-submit --master <master_url> --deploy-mode cluster``."""
        return {
            "spark.standalone.submit.waitAppCompletion": "true",
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": self.events_dir.as_uri(),
            "spark.driver.memory": "512m",
            "spark.driver.cores": "1",
            "spark.executor.memory": "512m",
            "spark.executor.cores": "1",
            "spark.cores.max": "1",
            "spark.ui.showConsoleProgress": "false",
        }

    # -- start / stop -----------------------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        """Start the daemons; return when the master lists every worker ALIVE and the history
        server answers. On failure stop everything started and raise :class:`ClusterError`."""
        with self._lock:
            if self._daemons:
                raise ClusterError("the cluster is already started")
        started = time.monotonic()
        deadline = started + timeout
        try:
            self._start(deadline)
        except BaseException:
            self.stop()
            raise
        log.info(
            "standalone cluster up in %.1fs: master %s, %d worker(s), history %s",
            time.monotonic() - started, self.master_url, self.config.workers, self.history_url,
        )  # fmt: skip

    def _start(self, deadline: float) -> None:
        for path in (self.events_dir, self._logs, self._conf, self.root / "local", *self.worker_dirs()):
            path.mkdir(parents=True, exist_ok=True)
        self._master_port, self._master_ui_port, self._rest_port = _free_port(), _free_port(), _free_port()
        self._history_port = _free_port() if self.config.history else None
        props = self._write_properties()
        deploy = "org.apache.spark.deploy"
        self._spawn("master", [
            f"{deploy}.master.Master", "--host", "127.0.0.1", "--port", str(self._master_port),
            "--webui-port", str(self._master_ui_port), "--properties-file", str(props),
        ])  # fmt: skip
        if self.config.history:
            self._spawn("history", [f"{deploy}.history.HistoryServer", "--properties-file", str(props)])
        # A worker that finds no master retries only after 5-15 s: start workers once it answers.
        self._wait(deadline, "master", lambda: self._master_json().get("status") == "ALIVE")
        for i, work_dir in enumerate(self.worker_dirs()):
            self._spawn(f"worker-{i}", [
                f"{deploy}.worker.Worker", self.master_url, "--host", "127.0.0.1",
                "--port", str(_free_port()), "--webui-port", str(_free_port()),
                "--cores", str(self.config.worker_cores), "--memory", self.config.worker_memory,
                "--work-dir", str(work_dir), "--properties-file", str(props),
            ])  # fmt: skip
        self._wait(deadline, "worker-0", lambda: self._alive_workers() >= self.config.workers)
        if self.config.history:
            self._wait(deadline, "history", self._history_answers)

    def _write_properties(self) -> Path:
        props = {
            # The REST submission server, on a port of its own, is how drivers are killed: the UI's
            # kill form needs a CSRF token from its HTML page. spark-submit uses REST only when its
            # own conf says so, so it keeps using the RPC client documented above.
            "spark.master.rest.enabled": "true",
            "spark.master.rest.host": "127.0.0.1",
            "spark.master.rest.port": str(self._rest_port),
            "spark.ui.killEnabled": "true",
            "spark.history.fs.logDirectory": self.events_dir.as_uri(),
            "spark.history.fs.update.interval": "1s",
        }
        if self._history_port is not None:
            props["spark.history.ui.port"] = str(self._history_port)
        path = self._conf / "spark-defaults.conf"
        path.write_text("".join(f"{k} {_properties_value(v)}\n" for k, v in props.items()), encoding="utf-8")
        return path

    def _spawn(self, name: str, args: list[str]) -> None:
        log_path = self._logs / f"{name}.log"
        log_file = log_path.open("ab")
        env = spark_env(self.spark_home, {
            "SPARK_CONF_DIR": str(self._conf),
            # Executors' block manager scratch dirs; under root so stop() leaves nothing in /tmp.
            "SPARK_LOCAL_DIRS": str(self.root / "local"),
        })  # fmt: skip
        cmd = [str(self.spark_home / "bin" / "spark-class"), *args]
        try:
            proc = subprocess.Popen(
                cmd, env=env, cwd=str(self._logs), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            log_file.close()
            raise ClusterError(f"could not start the Spark {name}: {exc}", daemon=name) from exc
        with self._lock:
            self._daemons.append(_Daemon(name, proc, log_path, log_file))
        log.info("spark %s started, pid %d", name, proc.pid)

    def _wait(self, deadline: float, name: str, ready: Callable[[], bool]) -> None:
        while True:
            self._check_alive()
            with contextlib.suppress(requests.RequestException, ValueError):
                if ready():
                    return
            if time.monotonic() > deadline:
                daemon = self._daemon(name)
                raise ClusterError(
                    f"the Spark {name} was not ready in time",
                    daemon=name,
                    log_tail=_tail(daemon.log_path) if daemon else (),
                )
            time.sleep(0.25)

    def _daemon(self, name: str) -> _Daemon | None:
        with self._lock:
            return next((d for d in self._daemons if d.name == name), None)

    def _check_alive(self) -> None:
        with self._lock:
            daemons = list(self._daemons)
        for daemon in daemons:
            code = daemon.proc.poll()
            if code is not None:
                raise ClusterError(
                    f"the Spark {daemon.name} (pid {daemon.proc.pid}) exited with code {code}",
                    daemon=daemon.name,
                    log_tail=_tail(daemon.log_path),
                )

    def _history_answers(self) -> bool:
        answer = self._http.get(f"{self.history_url}/api/v1/applications", timeout=_HTTP_TIMEOUT)
        return answer.status_code == 200

    def _alive_workers(self) -> int:
        workers = self._master_json().get("workers", [])
        return sum(1 for w in workers if w.get("state") == "ALIVE")

    def stop(self) -> None:
        """Kill every daemon's process group, then any java process left under ``root``.

        Idempotent and never raises (safe in ``finally`` and ``atexit``)."""
        with self._lock:
            daemons, self._daemons = self._daemons, []
        # Workers first: their process groups hold the drivers and executors.
        daemons.sort(key=lambda d: 0 if d.name.startswith("worker-") else 1)
        for daemon in daemons:
            try:
                if not kill_group(daemon.proc):
                    log.warning(
                        "spark %s pid %d: group members left: %s",
                        daemon.name,
                        daemon.proc.pid,
                        group_members(daemon.proc.pid),
                    )
                daemon.proc.wait(timeout=5)
            except Exception:
                log.exception("stopping spark %s pid %d failed", daemon.name, daemon.proc.pid)
            finally:
                with contextlib.suppress(OSError):
                    daemon.log_file.close()
        try:
            self._kill_strays()
        except Exception:
            log.exception("killing leftover Spark processes under %s failed", self.root)
        if self._owns_session:
            with contextlib.suppress(Exception):
                self._http.close()  # a closed Session still works: it opens new connections
        if daemons:
            log.info("standalone cluster at %s stopped", self.root)

    def _kill_strays(self) -> None:
        # A driver or executor whose worker died without killing it is re-parented away from the
        # worker's process group, but its working directory is still a worker dir.
        strays = self._java_under_root()
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while strays and time.monotonic() < deadline:
            strays = [p for p in strays if _is_alive(p)]
            time.sleep(0.05)
        if strays:
            log.warning("java processes under %s survived SIGKILL: %s", self.root, strays)

    # -- processes --------------------------------------------------------------------------

    def _java_under_root(self, exclude: frozenset[int] = frozenset()) -> list[int]:
        found: list[int] = []
        for pid, _ppid in _live_pids():
            if pid in exclude or pid == os.getpid() or not _is_java(pid):
                continue
            cwd = _cwd(pid)
            if cwd is not None and cwd.is_relative_to(self.root):
                found.append(pid)
        return found

    def java_pids(self) -> list[int]:
        """Live drivers and executors of this cluster: java descendants of a worker, or java
        processes working under ``root``; the daemons themselves are not listed."""
        daemons = frozenset(self.pids)
        with self._lock:
            workers = {d.proc.pid for d in self._daemons if d.name.startswith("worker-")}
        table = dict(_live_pids())
        found = set(self._java_under_root(exclude=daemons))
        for pid, ppid in table.items():
            if pid in daemons or pid in found:
                continue
            seen: set[int] = set()
            parent = ppid
            while parent > 1 and parent not in seen:
                if parent in workers:
                    if _is_java(pid):
                        found.add(pid)
                    break
                seen.add(parent)
                parent = table.get(parent, 0)
        return sorted(found)

    # -- drivers ----------------------------------------------------------------------------

    @staticmethod
    def driver_id(line: str) -> str | None:
        """The driver id in a line spark-submit prints in cluster mode, e.g.
        ``INFO ClientEndpoint: Driver successfully submitted as driver-20261202013300-0000``."""
        match = _DRIVER_ID.search(line)
        return match.group(1) if match else None

    def _master_json(self) -> dict[str, Any]:
        answer = self._http.get(f"{self.master_ui_url}/json/", timeout=_HTTP_TIMEOUT)
        answer.raise_for_status()
        data = answer.json()
        if not isinstance(data, dict):
            raise ValueError("the master's /json/ is not an object")
        return data

    def driver_info(self, driver_id: str) -> DriverInfo | None:
        """The driver's state on the master, or None if the master does not know the id."""
        _check_driver_id(driver_id)
        try:
            state = self._master_json()
        except (requests.RequestException, ValueError) as exc:
            raise ClusterError(f"the Spark master at {self.master_ui_url} did not answer: {exc}") from exc
        drivers = [*state.get("activedrivers", []), *state.get("completeddrivers", [])]
        entry = next((d for d in drivers if d.get("id") == driver_id), None)
        if entry is None:
            return None
        try:
            driver_state = DriverState(str(entry.get("state")))
        except ValueError:
            driver_state = DriverState.UNKNOWN
        worker_id = entry.get("worker")
        worker_id = None if worker_id in (None, "None") else str(worker_id)
        worker_host = None
        for worker in state.get("workers", []):
            if worker.get("id") == worker_id:
                worker_host = f"{worker.get('host')}:{worker.get('port')}"
        app_id = self._driver_app_id(driver_id)
        app_state = None
        if app_id is not None:
            for app in [*state.get("activeapps", []), *state.get("completedapps", [])]:
                if app.get("id") == app_id:
                    app_state = str(app.get("state"))
        main_class = entry.get("mainclass")
        return DriverInfo(
            driver_id=driver_id,
            state=driver_state,
            worker_id=worker_id,
            worker_host=worker_host,
            main_class=None if main_class is None else str(main_class),
            app_id=app_id,
            app_state=app_state,
        )

    def _driver_app_id(self, driver_id: str) -> str | None:
        if driver_id in self._app_ids:
            return self._app_ids[driver_id]
        folder = self.driver_dir(driver_id)
        if folder is None:
            return None
        try:
            with (folder / "stderr").open("r", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    match = _APP_CONNECTED.search(line)
                    if match:
                        self._app_ids[driver_id] = match.group(1)
                        return match.group(1)
        except OSError:
            return None
        return None

    def driver_dir(self, driver_id: str) -> Path | None:
        """``<worker dir>/<driver id>``, holding the driver's ``stdout``, ``stderr`` and jar."""
        _check_driver_id(driver_id)
        for work_dir in self.worker_dirs():
            folder = work_dir / driver_id
            if folder.is_dir():
                return folder
        return None

    def _driver_jvms(self, driver_id: str, app_id: str | None) -> list[int]:
        folders = [d / driver_id for d in self.worker_dirs()]
        if app_id is not None:
            folders += [d / app_id for d in self.worker_dirs()]
        found = []
        for pid in self.java_pids():
            cwd = _cwd(pid)
            if cwd is not None and any(cwd.is_relative_to(f) for f in folders):
                found.append(pid)
        return found

    def kill_driver(self, driver_id: str, timeout: float = 30) -> bool:
        """Ask the master to kill the driver; True once it is in a terminal state and neither its
        JVM nor its application's executors are left (also when it had already ended)."""
        _check_driver_id(driver_id)
        started = time.monotonic()
        deadline = started + timeout
        app_id = self._driver_app_id(driver_id)
        url = f"http://127.0.0.1:{self._require(self._rest_port)}/v1/submissions/kill/{quote(driver_id, safe='')}"
        try:
            answer = self._http.post(url, timeout=_HTTP_TIMEOUT)
            reply = answer.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("kill of %s: the master's REST server did not answer: %s", driver_id, exc)
            return False
        # success is false for a driver that has already ended; the wait below settles it.
        log.info("kill of %s requested: %s", driver_id, trim_body(str(reply.get("message", ""))))
        while time.monotonic() < deadline:
            info = self.driver_info(driver_id)
            if info is None:
                return False
            app_id = app_id or info.app_id
            if info.state.is_terminal and not self._driver_jvms(driver_id, app_id):
                log.info("driver %s %s after %.1fs", driver_id, info.state, time.monotonic() - started)
                return True
            time.sleep(0.25)
        log.warning("driver %s still alive %.0fs after the kill request", driver_id, timeout)
        return False

    def app_ui_url(self, app_id: str) -> str:
        """The history server's page for a (finished) application."""
        if self.history_url is None:
            raise ClusterError("this cluster runs no history server (ClusterConfig.history=False)")
        if not _APP_ID.fullmatch(app_id):
            raise ClusterError(f"not a standalone application id: {app_id!r}")
        return f"{self.history_url}/history/{quote(app_id, safe='')}/"


def _check_driver_id(driver_id: str) -> None:
    # The id becomes a path under the worker dirs: refuse anything that is not an id.
    if not _DRIVER_ID.fullmatch(driver_id):
        raise ClusterError(f"not a standalone driver id: {driver_id!r}")
