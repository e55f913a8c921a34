"""Third-party Livy clients work against the sandbox unchanged: that is how we know it speaks Livy.

Airflow's ``LivyHook`` (apache-airflow-providers-apache-livy) runs in the Airflow virtualenvs
that ``make test`` builds (mk/airflow.mk); the ``livy`` package from PyPI runs in this venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SandboxHandle, start_sandbox
from livy import LivyBatch, SessionState

ROOT = Path(__file__).resolve().parent.parent
VENVS = {"3": ROOT / ".venv-airflow3", "2": ROOT / ".venv-airflow2"}

HOOK_SCRIPT = """
import json, sys, time
from airflow.providers.apache.livy.hooks.livy import LivyHook

file, class_name, name, out = sys.argv[1], sys.argv[2] or None, sys.argv[3], sys.argv[4]
hook = LivyHook(livy_conn_id="sandbox", extra_headers={"X-Requested-By": "airflow"})
if len(sys.argv) > 5:  # follow a batch another client submitted
    batch_id = int(sys.argv[5])
else:
    batch_id = hook.post_batch(file=file, class_name=class_name, args=[3], name=name)
deadline = time.monotonic() + 300
while True:
    state = hook.get_batch_state(batch_id)
    if state in hook.TERMINAL_STATES or time.monotonic() > deadline:
        break
    time.sleep(0.5)
lines, start = [], 0
while True:
    page = hook.get_batch_logs(batch_id, start, 100)
    lines += page["log"]
    start += len(page["log"])
    if not page["log"] or start >= page["total"]:
        break
app_id = hook.get_batch(batch_id).get("appId")
with open(out, "w") as f:
    json.dump({"id": batch_id, "state": state.value, "lines": lines, "app_id": app_id}, f)
"""


def _airflow_env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW_CONN_SANDBOX=url,
               PYTHONWARNINGS="ignore")  # fmt: skip
    return env


def _airflow_python(version: str) -> Path:
    venv = VENVS[version]
    if not (venv / ".installed").exists():
        pytest.fail(f"{venv.name} is missing; `make test` builds it (mk/airflow.mk)")
    return venv / "bin" / "python"


@pytest.mark.spark
@pytest.mark.airflow
@pytest.mark.parametrize(
    ("version", "app"),
    [("3", "jar"), ("2", "pi_py")],
    ids=["airflow3-livyhook-jar", "airflow2-livyhook-pyspark"],
)
def test_compat_airflow_livy_hook_submits_polls_and_reads_logs(
    sandbox_faults: SandboxHandle, tmp_path: Path, version: str, app: str
) -> None:
    env = _airflow_env(tmp_path, sandbox_faults.url)
    class_name = sandbox_faults.spark_pi_class if app == "jar" else ""
    name = f"livyhook-{version}-{time.monotonic_ns()}"
    done = subprocess.run(
        [str(_airflow_python(version)), "-c", HOOK_SCRIPT, sandbox_faults.examples[app], class_name, name,
         str(tmp_path / "result.json")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["state"] == "success"
    assert any("Pi is roughly" in line for line in result["lines"])
    assert str(result["app_id"]).startswith("local-")
    assert sandbox_faults.request_counts()["POST /batches"] == 1


@pytest.mark.spark
def test_compat_pypi_livy_batch_submits_polls_and_reads_logs(sandbox: SandboxHandle) -> None:
    batch = LivyBatch.create(
        sandbox.url,
        file=sandbox.examples["jar"],
        class_name=sandbox.spark_pi_class,
        args=["3"],
        name=f"pylivy-{time.monotonic_ns()}",
        requests_session=sandbox.http(),
    )
    assert batch.wait() is SessionState.SUCCESS
    lines = batch.log(from_=0, size=-1)
    assert any("Pi is roughly" in line for line in lines)


# -- the same clients against Livy's other log shapes --------------------------------------------
# One sandbox and one quick PySpark job (pi.py) per shape: pylivy submits it and waits, then
# Airflow's LivyHook follows the same batch (its state, its log pages, its appId). Submitting does
# not depend on the shape; what changes is the log view, whose section headers both must return
# unchanged (the driver's output is behind driverLogUrl in the yarn shape, in the stdout section
# as the driver pod's log in the kubernetes one).

SHAPE_HEADERS = {
    "yarn": ["stdout: ", "\nstderr: ", "\nYARN Diagnostics: "],
    "kubernetes": ["stdout: ", "\nstderr: ", "\nKubernetes Diagnostics: "],
}


@dataclass(frozen=True)
class ShapeBatch:
    shape: str
    sandbox: SandboxHandle
    batch_id: int
    state: SessionState
    lines: list[str]


@pytest.fixture(scope="module", params=sorted(SHAPE_HEADERS))
def shape_batch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShapeBatch]:
    shape = str(request.param)
    handle = start_sandbox(tmp_path_factory.mktemp(f"sandbox-{shape}"), log_shape=shape, report_interval=0.2)
    try:
        batch = LivyBatch.create(
            handle.url,
            file=handle.examples["pi_py"],
            args=["3"],
            name=f"pylivy-{shape}-{time.monotonic_ns()}",
            requests_session=handle.http(),
        )
        state = batch.wait()
        yield ShapeBatch(shape, handle, batch.batch_id, state, batch.log(from_=0, size=-1))
    finally:
        handle.stop()


@pytest.mark.spark
@pytest.mark.sandbox
def test_compat_pypi_livy_batch_reads_each_log_shape(shape_batch: ShapeBatch) -> None:
    assert shape_batch.state is SessionState.SUCCESS
    for header in SHAPE_HEADERS[shape_batch.shape]:
        assert header in shape_batch.lines, (shape_batch.shape, header)
    if shape_batch.shape == "kubernetes":
        assert any("Pi is roughly" in line for line in shape_batch.lines)


@pytest.mark.spark
@pytest.mark.sandbox
@pytest.mark.airflow
def test_compat_airflow_livy_hook_reads_each_log_shape(shape_batch: ShapeBatch, tmp_path: Path) -> None:
    url = shape_batch.sandbox.url
    done = subprocess.run(
        [str(_airflow_python("3")), "-c", HOOK_SCRIPT, "", "", "", str(tmp_path / "result.json"),
         str(shape_batch.batch_id)],
        env=_airflow_env(tmp_path, url), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["state"] == "success"
    assert result["id"] == shape_batch.batch_id
    for header in SHAPE_HEADERS[shape_batch.shape]:
        assert header in result["lines"], (shape_batch.shape, header)
    assert result["lines"] == shape_batch.lines  # the finished batch's view, paged by 100: the same lines
    assert result["app_id"]
