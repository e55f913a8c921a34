"""Start and stop the sandbox: :class:`SandboxServer` (Python API) and :func:`main` (CLI)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.fileio import atomic_write_text
from hdiaks_widgets.sandbox.apps import Examples, build_examples, spark_home
from hdiaks_widgets.sandbox.batches import BatchRegistry
from hdiaks_widgets.sandbox.cluster import ClusterConfig, StandaloneCluster
from hdiaks_widgets.sandbox.dialects import HDINSIGHT_AUTH, Dialect, DialectOptions, build_dialects
from hdiaks_widgets.sandbox.faults import FaultBook
from hdiaks_widgets.sandbox.logbuf import DEFAULT_CACHE_LOG_SIZE, LOG_SHAPES
from hdiaks_widgets.sandbox.server import Authorizer, create_app
from hdiaks_widgets.sandbox.sessions import SessionRegistry
from hdiaks_widgets.sandbox.storage import Storage

__all__ = ["HDINSIGHT_PASSWORD_ENV", "SandboxServer", "default_root", "main", "run_sandbox"]

# The classic HDInsight cluster login's password for ``--hdinsight-auth basic`` (not an argument:
# a command line is visible to every local user).
HDINSIGHT_PASSWORD_ENV = "HDIAKS_SANDBOX_HDINSIGHT_PASSWORD"  # noqa: S105 - a variable name

log = logging.getLogger(__name__)


def default_root() -> Path:
    """``$HDIAKS_SANDBOX_ROOT``, else ``.sandbox`` under the current directory."""
    return Path(os.environ.get("HDIAKS_SANDBOX_ROOT") or Path.cwd() / ".sandbox")


class SandboxServer:
    """The sandbox Livy server on a background thread. ``start()``, ``url``, ``stop()``."""

    def __init__(
        self,
        *,
        root: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        master: str = "local[2]",
        max_running: int = 1,
        retain_seconds: float = 600.0,
        csrf: bool = False,
        authorizer: Authorizer | None = None,
        log_shape: str | None = None,
        cache_log_size: int = DEFAULT_CACHE_LOG_SIZE,
        report_interval: float = 1.0,
        cluster: int = 0,
        dialects: DialectOptions | None = None,
    ) -> None:
        """``cluster=N`` starts a Spark standalone cluster (one master, N workers, the history
        server) and runs jobs on it; its log shape defaults to ``yarn`` (the driver's output is
        behind ``driverLogUrl``), else to ``process`` (Livy in local mode). ``dialects``: the
        options of the Fabric, Synapse and classic HDInsight routes (default: no auth on them)."""
        if log_shape is None:
            log_shape = "yarn" if cluster else "process"
        self.root = Path(root) if root is not None else default_root()
        self.host = host
        self.port = port
        self.csrf = csrf
        self.authorizer = authorizer
        self.storage = Storage(self.root)
        home = spark_home()
        self.batches = BatchRegistry(
            root=self.root,
            storage=self.storage,
            spark_home=home,
            master=master,
            max_running=max_running,
            retain_seconds=retain_seconds,
            log_shape=log_shape,
            cache_log_size=cache_log_size,
            report_interval=report_interval,
        )
        self.sessions = SessionRegistry(
            root=self.root, storage=self.storage, spark_home=home, master=master, retain_seconds=retain_seconds,
            log_shape="append" if log_shape == "append" else "process", cache_log_size=cache_log_size,
        )
        self.faults = FaultBook()
        self.cluster: StandaloneCluster | None = None
        if cluster:
            self.cluster = StandaloneCluster(home, self.root / "cluster", ClusterConfig(workers=cluster))
        self.dialects: list[Dialect] = build_dialects(dialects or DialectOptions())
        self.examples: Examples | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise HdiaksError("the sandbox is not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> SandboxServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.examples = build_examples(self.root, self.storage)
        if self.cluster is not None:
            self.cluster.start()
            self.batches.attach_cluster(self.cluster)
        try:
            return self._serve()
        except BaseException:
            if self.cluster is not None:
                self.cluster.stop()
            raise

    def _serve(self) -> SandboxServer:
        app = create_app(
            batches=self.batches,
            sessions=self.sessions,
            faults=self.faults,
            examples=self.examples,
            csrf=self.csrf,
            authorizer=self.authorizer,
            dialects=self.dialects,
        )
        self._server = make_server(self.host, self.port, app, threaded=True)
        self.batches.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        log.info("sandbox listening on %s (root %s)", self.url, self.root)
        return self

    def stop(self) -> None:
        """Stop answering, then kill every running Spark job and session worker."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.batches.stop_all()
        self.sessions.shutdown()
        if self.cluster is not None:
            self.cluster.stop()

    def ready_info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": os.getpid(),
            "root": str(self.root),
            "csrf": self.csrf,
            "authorizer": self.authorizer is not None,
            "max_running": self.batches.max_running,
            "retain_seconds": self.batches.retain_seconds,
            "master": self.batches.master,
            "log_shape": self.batches.log_shape,
            "cluster": None if self.cluster is None else {
                "master_url": self.cluster.master_url, "master_ui_url": self.cluster.master_ui_url,
                "history_url": self.cluster.history_url, "workers": self.cluster.config.workers,
                "pids": self.cluster.pids, "worker_dirs": [str(d) for d in self.cluster.worker_dirs()],
            },
            "cache_log_size": self.batches.cache_log_size,
            "examples": self.examples.to_json() if self.examples else None,
            "dialects": {d.name: d.describe(self.url) for d in self.dialects},
        }

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_sandbox(**options: Any) -> SandboxServer:
    """Start a sandbox in the background (options as for :class:`SandboxServer`)."""
    return SandboxServer(**options).start()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hdiaks_widgets.sandbox",
        description="Local Livy-compatible server running real spark-submit (local mode).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8998, help="port; 0 picks a free one (default 8998)")
    p.add_argument("--root", type=Path, default=None, help="data folder (default $HDIAKS_SANDBOX_ROOT or ./.sandbox)")
    p.add_argument("--master", default="local[2]", help="Spark master for jobs (default local[2])")
    p.add_argument("--max-running", type=int, default=1, help="Spark jobs running at once (default 1)")
    p.add_argument("--retain-seconds", type=float, default=600.0, help="keep finished batches this long (600)")
    p.add_argument(
        "--log-shape", choices=LOG_SHAPES, default=None,
        help="how /log looks: process (Livy in local mode; the default without --cluster), yarn (the "
             "default with it: launcher output + YARN Diagnostics, the driver log behind driverLogUrl), "
             "kubernetes (a rotating driver-pod window), append (unbounded and append-only: only for tests "
             "that need exact offsets; no real Livy serves this)",
    )
    p.add_argument(
        "--cache-log-size", type=int, default=DEFAULT_CACHE_LOG_SIZE,
        help=f"lines Livy keeps of each spark-submit stream (livy.cache-log.size, default {DEFAULT_CACHE_LOG_SIZE})",
    )
    p.add_argument(
        "--cluster", type=int, default=0, metavar="N",
        help="start a Spark standalone cluster (master, N workers, history server) and run jobs on it: jars in "
             "cluster deploy mode, Python apps in client mode (Spark allows no Python in standalone cluster mode)",
    )
    p.add_argument("--report-interval", type=float, default=1.0,
                   help="yarn/kubernetes shapes: seconds between the launcher's status lines (default 1)")
    p.add_argument("--csrf", action="store_true", help="require X-Requested-By on non-GET requests")
    p.add_argument(
        "--bearer",
        action="store_true",
        help="require a bearer token issued by the sandbox identity endpoint (same --root)",
    )
    p.add_argument("--bearer-audience", default=None, help="with --bearer: the token audience to accept")
    p.add_argument(
        "--hdinsight-auth", choices=HDINSIGHT_AUTH, default="none",
        help="classic HDInsight routes (/livy/...): the cluster's one auth method: none, basic (the cluster "
             f"login: --hdinsight-user, password from ${HDINSIGHT_PASSWORD_ENV}) or entra (bearer tokens of the "
             "sandbox identity endpoint for https://<cluster>.clusteraccess.azurehdinsight.net)",
    )  # fmt: skip
    p.add_argument("--hdinsight-cluster", default="sandbox", help="classic HDInsight cluster name (default sandbox)")
    p.add_argument("--hdinsight-user", default="admin", help="classic HDInsight cluster login (default admin)")
    p.add_argument(
        "--auth",
        action="store_true",
        help="also serve the HTTPS identity + Key Vault endpoints and require their bearer tokens "
        "(endpoints and the vault reader's settings go to <root>/auth/endpoints.json)",
    )
    p.add_argument("--ready-file", type=Path, default=None, help="write JSON {url, pid, root, examples} here")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    root = args.root if args.root is not None else default_root()
    authorizer: Authorizer | None = None
    services = None
    if args.bearer or args.auth:
        # Imported only when asked for: the identity endpoint is a separate, optional component.
        from hdiaks_widgets.sandbox.identity import make_bearer_authorizer, start_auth_services

        if args.auth:
            services = start_auth_services(root, args.host)
        authorizer = make_bearer_authorizer(root, audience=args.bearer_audience)
    try:
        dialect_options = _dialect_options(args, root)
        server = SandboxServer(
            root=root,
            host=args.host,
            port=args.port,
            master=args.master,
            max_running=args.max_running,
            retain_seconds=args.retain_seconds,
            csrf=args.csrf,
            authorizer=authorizer,
            log_shape=args.log_shape,
            cache_log_size=args.cache_log_size,
            report_interval=args.report_interval,
            cluster=args.cluster,
            dialects=dialect_options,
        ).start()
    except (HdiaksError, OSError, ValueError) as exc:
        if services is not None:
            services.shutdown()
        print(f"sandbox: cannot start: {exc}", file=sys.stderr)
        return 1
    print(f"Livy sandbox listening on {server.url} (root {server.root})", flush=True)
    for name, where in server.ready_info()["dialects"].items():
        print(f"  {name}: {where.get('livy')}", flush=True)
    if services is not None:
        endpoints = services.write_endpoints(root)
        print(
            f"identity {services.authority_host}  vault {services.vault_url}  CA {services.ca_pem}\n"
            f"client settings: {endpoints}",
            flush=True,
        )
    if args.ready_file is not None:
        atomic_write_text(args.ready_file, json.dumps(server.ready_info(), indent=2) + "\n")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("sandbox: stopping; killing running Spark jobs", flush=True)
        server.stop()
        if services is not None:
            services.shutdown()
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)
    return 0


def _dialect_options(args: argparse.Namespace, root: Path) -> DialectOptions:
    """Bearer checks on Fabric and Synapse with ``--bearer``/``--auth`` (each pins its own
    audience); classic HDInsight's one auth method from ``--hdinsight-auth``."""
    from hdiaks_widgets.sandbox.tokens import _TokenValidator

    tokens = _TokenValidator(root).validate if (args.bearer or args.auth) else None
    return DialectOptions(
        tokens=tokens,
        hdinsight_tokens=_TokenValidator(root).validate if args.hdinsight_auth == "entra" else None,
        hdinsight_auth=args.hdinsight_auth,
        hdinsight_cluster=args.hdinsight_cluster,
        hdinsight_user=args.hdinsight_user,
        hdinsight_password=os.environ.get(HDINSIGHT_PASSWORD_ENV) or None,
    )
