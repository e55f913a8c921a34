"""The Spark standalone cluster (hdiaks_widgets.sandbox.cluster) with real cluster-mode jobs.

One cluster (1 worker, history server) for the module; each cluster-mode job takes ~18 s, so each
job runs once in a module-scoped fixture and several tests read what it left behind.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from hdiaks_widgets.sandbox.apps import build_examples, spark_home
from hdiaks_widgets.sandbox.cluster import ClusterConfig, ClusterError, DriverState, StandaloneCluster
from hdiaks_widgets.sandbox.procs import kill_group, spark_env
from hdiaks_widgets.sandbox.storage import Storage

pytestmark = [pytest.mark.spark]

EXAMPLES = "org.apache.spark.examples"


@dataclass(frozen=True)
class Submitted:
    returncode: int
    stdout: str
    stderr: str
    driver_id: str


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class _SparkSubmit:
    """spark-submit in cluster mode, its output in files (so a test can read it while it runs)."""

    def __init__(self, cluster: StandaloneCluster, jar: Path, folder: Path, main_class: str, *args: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.out, self.err = folder / "stdout", folder / "stderr"
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", cluster.master_url, "--deploy-mode", "cluster"]
        for key, value in cluster.submit_conf().items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += ["--class", main_class, str(jar), *args]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, env=spark_env(spark_home()), cwd=str(folder), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip

    def driver_id(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.err.read_text(errors="replace").splitlines():
                found = StandaloneCluster.driver_id(line)
                if found:
                    return found
            assert self.proc.poll() is None, f"spark-submit exited without a driver id:\n{self.err.read_text()}"
            time.sleep(0.2)
        raise AssertionError("spark-submit printed no driver id")

    def wait(self, timeout: float = 120) -> Submitted:
        try:
            code = self.proc.wait(timeout)
        finally:
            kill_group(self.proc, grace=2)
        return Submitted(code, self.out.read_text(), self.err.read_text(), self.driver_id())


@pytest.fixture(scope="module")
def jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    return build_examples(root, Storage(root)).paths["jar"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    handle = StandaloneCluster(spark_home(), tmp_path_factory.mktemp("cluster"), ClusterConfig(workers=1))
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def pi_run(cluster: StandaloneCluster, jar: Path, tmp_path_factory: pytest.TempPathFactory) -> Submitted:
    return _SparkSubmit(cluster, jar, tmp_path_factory.mktemp("pi"), f"{EXAMPLES}.SparkPi", "2").wait()


@pytest.fixture(scope="module")
def failing_run(cluster: StandaloneCluster, jar: Path, tmp_path_factory: pytest.TempPathFactory) -> Submitted:
    folder = tmp_path_factory.mktemp("failing")
    return _SparkSubmit(cluster, jar, folder, f"{EXAMPLES}.FailingJob", "on purpose").wait()


# -- without a running cluster ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("26/12/02 01:36:26 INFO ClientEndpoint: Driver successfully submitted as driver-20261202013625-0000",
         "driver-20261202013625-0000"),
        ("26/12/02 01:36:30 INFO ClientEndpoint: State of driver-20261202013625-0012 is RUNNING",
         "driver-20261202013625-0012"),
        ("INFO ClientEndpoint: ... waiting before polling master for driver state", None),
        ("driver-2026-0000 is not an id", None),
        ("", None),
    ],
    ids=["submitted", "state", "no-id", "short", "empty"],
)  # fmt: skip
def test_driver_id_parses_spark_submit_line(line: str, expected: str | None) -> None:
    assert StandaloneCluster.driver_id(line) == expected


@pytest.mark.parametrize("bad", ["../driver-20261202013625-0000", "driver-x", "driver-20261202013625-0000/..", ""])
def test_driver_dir_refuses_non_id(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ClusterError, match="not a standalone driver id"):
        StandaloneCluster(spark_home(), tmp_path).driver_dir(bad)


def test_cluster_start_failure_names_daemon_and_quotes_log(tmp_path: Path) -> None:
    broken = StandaloneCluster(spark_home(), tmp_path, ClusterConfig(worker_memory="lots", history=False))
    with pytest.raises(ClusterError) as caught:
        broken.start(timeout=60)
    assert caught.value.daemon == "worker-0"
    assert "worker-0" in str(caught.value)
    assert caught.value.log_tail and "\n".join(caught.value.log_tail) in str(caught.value)
    assert broken.pids == []
    assert (tmp_path / "logs" / "worker-0.log").exists()  # kept for diagnosis


# -- the shared cluster -------------------------------------------------------------------------


def test_cluster_start_lists_worker_alive(cluster: StandaloneCluster) -> None:
    with _http() as http:
        state = http.get(f"{cluster.master_ui_url}/json/", timeout=10).json()
    assert [w["state"] for w in state["workers"]] == ["ALIVE"]
    assert state["workers"][0]["cores"] == 2
    assert cluster.master_url.startswith("spark://127.0.0.1:")
    assert all(_alive(pid) for pid in cluster.pids) and len(cluster.pids) == 3


def test_spark_pi_driver_id_is_parsed_and_finished(cluster: StandaloneCluster, pi_run: Submitted) -> None:
    assert pi_run.returncode == 0
    info = cluster.driver_info(pi_run.driver_id)
    assert info is not None
    assert info.state is DriverState.FINISHED
    assert info.main_class == f"{EXAMPLES}.SparkPi"
    assert info.worker_host is not None and info.worker_host.startswith("127.0.0.1:")
    assert info.app_id is not None and info.app_id.startswith("app-")
    assert info.app_state == "FINISHED"


def test_spark_pi_output_is_in_driver_dir_not_spark_submit(cluster: StandaloneCluster, pi_run: Submitted) -> None:
    folder = cluster.driver_dir(pi_run.driver_id)
    assert folder is not None and folder.parent in cluster.worker_dirs()
    assert "Pi is roughly" in (folder / "stdout").read_text()
    assert "Pi is roughly" not in pi_run.stdout + pi_run.stderr
    assert f"State of driver {pi_run.driver_id} is FINISHED" in pi_run.stderr


def test_failing_job_driver_failed_though_spark_submit_exits_zero(
    cluster: StandaloneCluster, failing_run: Submitted
) -> None:
    info = cluster.driver_info(failing_run.driver_id)
    assert info is not None and info.state is DriverState.FAILED
    # Spark's ClientEndpoint exits 0 for every terminal driver state (see the module docstring).
    assert failing_run.returncode == 0
    assert f"State of driver {failing_run.driver_id} is FAILED" in failing_run.stderr


def test_failing_job_exception_is_in_driver_stderr(cluster: StandaloneCluster, failing_run: Submitted) -> None:
    folder = cluster.driver_dir(failing_run.driver_id)
    assert folder is not None
    stderr = (folder / "stderr").read_text()
    assert "java.lang.IllegalStateException: sandbox failing job: on purpose" in stderr
    assert "FailingJob: starting" in (folder / "stdout").read_text()


def test_history_shows_finished_app(cluster: StandaloneCluster, pi_run: Submitted) -> None:
    info = cluster.driver_info(pi_run.driver_id)
    assert info is not None and info.app_id is not None
    url = cluster.app_ui_url(info.app_id)
    assert url == f"{cluster.history_url}/history/{info.app_id}/"
    deadline = time.monotonic() + 30
    with _http() as http:
        while True:
            answer = http.get(url, timeout=10)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text[:500]
        assert "Spark Pi" in answer.text
        listed = http.get(f"{cluster.history_url}/api/v1/applications", timeout=10).json()
    assert info.app_id in [app["id"] for app in listed]


def test_kill_driver_mid_run_leaves_no_java(cluster: StandaloneCluster, jar: Path, tmp_path: Path) -> None:
    submit = _SparkSubmit(cluster, jar, tmp_path, f"{EXAMPLES}.LogStorm", "200000")
    try:
        driver_id = submit.driver_id()
        deadline = time.monotonic() + 60
        stdout: Path | None = None
        while stdout is None or "out 000001 of 200000" not in stdout.read_text(errors="replace")[:100]:
            assert time.monotonic() < deadline, "LogStorm printed nothing"
            folder = cluster.driver_dir(driver_id)
            stdout = None if folder is None or not (folder / "stdout").exists() else folder / "stdout"
            time.sleep(0.1)
        assert cluster.java_pids(), "the driver JVM should be running"
        assert cluster.kill_driver(driver_id)
        info = cluster.driver_info(driver_id)
        assert info is not None and info.state is DriverState.KILLED
        assert cluster.java_pids() == []
        assert "out 200000 of 200000" not in stdout.read_text(errors="replace")
        done = submit.wait()
        assert done.returncode == 0
        assert f"State of driver {driver_id} is KILLED" in done.stderr
    finally:
        kill_group(submit.proc, grace=2)


def test_no_driver_or_executor_is_left_after_jobs(cluster: StandaloneCluster, pi_run: Submitted) -> None:
    assert cluster.java_pids() == []


def test_stop_leaves_no_daemon(cluster: StandaloneCluster) -> None:
    pids = cluster.pids
    assert pids
    cluster.stop()
    cluster.stop()  # idempotent
    assert [pid for pid in pids if _alive(pid)] == []
    assert cluster.pids == []
    assert cluster.java_pids() == []
    assert os.listdir(cluster.events_dir)
