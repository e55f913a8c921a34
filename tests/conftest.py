"""Shared fixtures: the real Livy sandbox (real Spark), started as a subprocess.

``sandbox`` (session scope) — one sandbox for the whole pytest session; Spark jobs run one at a
time (``--max-running 1``). It yields a :class:`SandboxHandle`:

- ``url`` (``http://127.0.0.1:<port>``), ``root`` (temp folder), ``pid`` (the server process);
- ``examples``: short name -> ``abfs://examples@sandbox.dfs.core.windows.net/...`` URI
  (``jar``, ``pi_py``, ``wordcount_py``, ``fail_py``, ``lines_py``, ``sleep_py``, ``words_txt``);
  ``example_paths``: the same names -> local files; ``spark_pi_class``, ``word_count_class``;
- ``options``: the ready-file JSON (``csrf``, ``max_running``, ``retain_seconds``, ``master``...);
- ``http()``: a new ``requests.Session`` with ``trust_env=False`` (this machine sets proxy and CA
  variables that must not apply to loopback);
- ``set_faults(*rules)``: POST rules to ``/_sandbox/faults`` (see hdiaks_widgets.sandbox.faults,
  e.g. ``{"kind": "status", "status": 503, "retry_after": 1, "count": 2, "methods": ["GET"],
  "path_prefix": "/batches"}``); ``clear_faults()`` removes rules and request counts;
  ``request_counts()`` -> ``{"POST /batches": 2, ...}`` since the last clear;
- ``wait_for_batch(batch_id, timeout=180)`` -> the final batch JSON (success/dead/killed/error);
- ``processes()``: PIDs of live processes whose command line mentions ``root`` (Spark JVMs,
  spark-submit, session workers).

``sandbox_faults`` (function scope) — the same ``sandbox``, with faults and counts cleared
before and after the test. ``sandbox_factory`` (function scope) — ``sandbox_factory(csrf=True,
max_running=2, retain_seconds=1.0, master="local[1]", bearer=True, bearer_audience=None)``
starts an extra short-lived sandbox in the test's ``tmp_path`` and stops it after the test
(``bearer=True``: only tokens of the sandbox identity endpoint sharing that root are accepted,
see ``hdiaks_widgets.sandbox.identity.make_bearer_authorizer``; the handle's ``root`` is it).

Every sandbox is stopped by its own PID (SIGTERM, SIGKILL after 30 s) and the fixture asserts
that no process mentioning its root (no Spark JVM) is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from hdiaks_widgets.sandbox.launcher import SandboxProcess, processes_mentioning, start_sandbox_process

TERMINAL = ("success", "dead", "killed", "error")


@dataclass
class SandboxHandle:
    url: str
    root: Path
    pid: int
    examples: dict[str, str]
    example_paths: dict[str, Path]
    spark_pi_class: str
    word_count_class: str
    options: dict[str, Any]
    process: SandboxProcess = field(repr=False)

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def http(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        return session

    def set_faults(self, *rules: dict[str, Any]) -> None:
        with self.http() as s:
            s.post(f"{self.url}/_sandbox/faults", json=list(rules), timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        with self.http() as s:
            s.delete(f"{self.url}/_sandbox/faults", timeout=10).raise_for_status()

    def request_counts(self) -> dict[str, int]:
        with self.http() as s:
            answer = s.get(f"{self.url}/_sandbox/faults", timeout=10)
            answer.raise_for_status()
            return dict(answer.json()["requests"])

    def wait_for_batch(self, batch_id: int | str, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.http() as s:
            while True:
                batch = s.get(f"{self.url}/batches/{batch_id}", timeout=10).json()
                if batch.get("state") in TERMINAL:
                    return dict(batch)
                if time.monotonic() > deadline:
                    raise AssertionError(f"batch {batch_id} still {batch.get('state')} after {timeout}s")
                time.sleep(0.3)

    def processes(self) -> list[int]:
        return processes_mentioning(str(self.root))

    def stop(self, timeout: float = 30.0) -> None:
        left = self.process.stop(timeout)
        assert not left, f"processes of the sandbox at {self.root} outlived it: {left}"


def start_sandbox(
    root: Path,
    *,
    max_running: int = 1,
    retain_seconds: float = 600.0,
    csrf: bool = False,
    master: str = "local[2]",
    bearer: bool = False,
    bearer_audience: str | None = None,
    auth: bool = False,
    timeout: float = 120.0,
    **shape: Any,
) -> SandboxHandle:
    """Start ``python -m hdiaks_widgets.sandbox`` on a free port and wait for its ready file.
    ``shape``: ``log_shape``, ``cache_log_size``, ``report_interval`` (the sandbox's defaults
    are Livy's: the process shape, 200 lines per stream)."""
    process = start_sandbox_process(
        root, max_running=max_running, retain_seconds=retain_seconds, csrf=csrf, master=master,
        bearer=bearer, bearer_audience=bearer_audience, auth=auth, timeout=timeout, **shape,
    )  # fmt: skip
    info = process.info
    examples = info["examples"]
    return SandboxHandle(
        url=process.url,
        root=process.root,
        pid=process.pid,
        examples=dict(examples["uris"]),
        example_paths={k: Path(v) for k, v in examples["paths"].items()},
        spark_pi_class=examples["spark_pi_class"],
        word_count_class=examples["word_count_class"],
        options=info,
        process=process,
    )


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """The one shared sandbox of the pytest session (see the module docstring)."""
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def cluster_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A sandbox in front of a one-worker Spark standalone cluster (cluster deploy mode, a History
    Server), shared by the session: its start costs about 20 s, so every module uses this one."""
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox-cluster"), cluster=1)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sandbox_faults(sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The shared sandbox with fault rules and request counts cleared before and after the test."""
    sandbox.clear_faults()
    try:
        yield sandbox
    finally:
        sandbox.clear_faults()


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., SandboxHandle]]:
    """Start extra sandboxes with other options; each is stopped after the test."""
    started: list[SandboxHandle] = []

    def factory(**options: Any) -> SandboxHandle:
        handle = start_sandbox(tmp_path / f"sandbox-{len(started)}", **options)
        started.append(handle)
        return handle

    try:
        yield factory
    finally:
        for handle in started:
            handle.stop()


_token_cache_dirs = iter(range(1_000_000))


@pytest.fixture(autouse=True)
def private_token_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Device-code sign-ins are kept on disk (``hdiaks_widgets.auth.cache``): each test gets its own
    cache directory (created only when used), never the user's; processes and kernels it starts inherit it."""
    directory = tmp_path_factory.getbasetemp() / "token-caches" / str(next(_token_cache_dirs))
    monkeypatch.setenv("HDIAKS_TOKEN_CACHE_DIR", str(directory))
    monkeypatch.delenv("HDIAKS_TOKEN_CACHE", raising=False)
    return directory


# Tests that start a sandbox (Livy, identity or vault servers) carry the ``sandbox`` marker, so
# ``make test-fast`` can leave them out; tests that start one by other means mark themselves.
_SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_faults", "sandbox_factory", "auth_sandbox", "auth_sandbox_factory"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``hdiaks`` in-process: ``run(*argv)`` -> (exit code, stdout, stderr)."""
    from hdiaks_widgets.cli import main

    def _run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture(scope="module")
def dialect_auth_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A sandbox with its own identity + vault endpoints (``auth=True``): every Livy dialect
    checks bearer tokens for its own audience; classic HDInsight uses Entra for cluster
    ``mycluster`` (audience ``https://mycluster.clusteraccess.azurehdinsight.net``)."""
    handle = start_sandbox(tmp_path_factory.mktemp("dialect-auth"), auth=True, hdinsight_auth="entra",
                           hdinsight_cluster="mycluster")  # fmt: skip
    try:
        yield handle
    finally:
        handle.stop()


# -- helpers the CLI tests share -------------------------------------------------------------------

import subprocess  # noqa: E402 - appended section
import sys  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from servers import RecordingServer  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover - typing only
    from livy_memory import MemoryLivy

# The installed ``hdiaks`` script beside this interpreter (console_scripts entry point).
HDIAKS = str(Path(sys.executable).parent / "hdiaks")


def hdiaks(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``hdiaks <argv>`` as a process (stdout, stderr captured as text; 10 minutes at most)."""
    return subprocess.run([HDIAKS, *argv], capture_output=True, text=True, timeout=600, cwd=cwd)


def memory_cli(livy: MemoryLivy, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``hdiaks <argv> --url http://livy.test`` in-process, its client on the in-memory Livy."""
    from livy_memory import BASE_URL, memory_session

    from hdiaks_widgets.cli import main
    from hdiaks_widgets.livy import LivyClient, RetryPolicy

    client = LivyClient(BASE_URL, session=memory_session(livy), retry=RetryPolicy(total=0))
    code = main([*argv, "--url", BASE_URL], connect=lambda profile: client)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_usage_error(code: int, out: str, err: str) -> str:
    """``err`` of a run refused as a usage error: exit 2, nothing on stdout, one line, no traceback."""
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, (code, out, err)
    return err


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    """A loopback server recording each request line (it answers 404): ``recorder.lines == []``
    shows that nothing was sent."""
    with RecordingServer() as server:
        yield server


# -- Apache Airflow rigs (tests/test_dag_airflow.py, tests/test_dag_dialects.py) ------------------

AirflowDb = Callable[[Path, dict[str, str]], Path]


@pytest.fixture(scope="session")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> AirflowDb:
    """``airflow_db(airflow, env)`` -> an ``airflow.db`` that ``airflow db migrate`` made, once per
    Airflow installation (``airflow``: its CLI) per session; each Airflow rig copies it into its
    own fresh ``AIRFLOW_HOME`` instead of migrating again (about 8 s per rig). The file holds no
    path of its home; ``env``'s ``AIRFLOW_*`` settings are used except the home and DAG folder."""
    made: dict[Path, Path] = {}

    def migrated(airflow: Path, env: dict[str, str]) -> Path:
        if airflow not in made:
            home = tmp_path_factory.mktemp("airflow-db")
            (home / "dags").mkdir()
            run_env = dict(env, AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"))
            done = subprocess.run([str(airflow), "db", "migrate"], env=run_env, capture_output=True, text=True,
                                  timeout=300)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            made[airflow] = home / "airflow.db"
        return made[airflow]

    return migrated


# -- the session's Spark JVMs ----------------------------------------------------------------------

import os  # noqa: E402 - appended section

# The JVM of every spark-submit the session starts (the sandboxes', the demo's, the README's): the
# client JIT only and the serial collector. A job here lives for seconds, so C2 compilation and the
# parallel collector's threads only compete for the machine's two cores; with these a SparkPi
# job used about 40% less CPU (13-15 s -> 8-9 s, wall 16-25 s -> 15-18 s on the loaded machine).
# spark-class puts SPARK_SUBMIT_OPTS on the java command line: nothing is printed, Spark's output
# and behaviour are unchanged. A value already set (even empty) is kept.
SPARK_SUBMIT_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("SPARK_SUBMIT_OPTS", SPARK_SUBMIT_OPTS)
