"""Exported DAGs on real Apache Airflow (own virtualenvs from mk/airflow.mk) and the real sandbox.

The Airflow venvs have this package installed with only its ``[airflow]`` extra: thin DAGs
import the operator from it. Embedded DAGs are run with the package hidden (an import blocker
in ``sitecustomize``), which proves they need nothing but Airflow, requests and msal.

DagBag import: latest 3.x and 2.10.x, thin and embedded, plus hostile values. End to end with
``airflow dags test`` on the sandbox (real Spark; the trigger runs in line, as ``dags test``
does) with Variables from the Azure Key Vault secrets
backend pointed at the sandbox vault: the stock ``AzureKeyVaultBackend`` builds its
``ClientSecretCredential`` without ``disable_instance_discovery``, so MSAL would ask
login.microsoftonline.com about the loopback authority; the test backend below replaces only
that credential (names, lookups and ``SecretClient`` stay the provider's). Both styles also run
on a sandbox started with ``auth=True``, whose Livy answers 401 to requests without a token from
its own identity endpoint. Kill while deferred runs a real scheduler, triggerer, DAG processor
and API server (``airflow standalone``) and clears the deferred task.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from auth_fixtures import (
    APP_ID,
    CANARY,
    PREFIX,
    READER_ID,
    READER_SECRET,
    TENANT,
    AuthSandbox,
    auth_sandbox_fixture,
    closed_port,
)
from conftest import AirflowDb, SandboxHandle, start_sandbox

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dag_export import write_dag

pytestmark = pytest.mark.airflow
auth_sandbox = auth_sandbox_fixture

ROOT = Path(__file__).resolve().parent.parent
VENVS = {"3": ROOT / ".venv-airflow3", "2": ROOT / ".venv-airflow2"}
# Makes ``import hdiaks_widgets`` fail in an Airflow process (for the embedded DAGs).
HIDE_PACKAGE = """
import os, sys
if os.environ.get("HDIAKS_HIDE_PACKAGE"):
    class _HidePackage:
        def find_spec(self, name, path=None, target=None):
            if name == "hdiaks_widgets" or name.startswith("hdiaks_widgets."):
                raise ImportError("hdiaks_widgets is hidden in this test")
            return None
    sys.meta_path.insert(0, _HidePackage())
"""
HOSTILE = "q'\"\"\"'''\\ \n {{ params.x }} ${HOME} {% raw %} ünï ✓ \u2028 \U0001f680 " + "x" * 10_000

DAGBAG_SCRIPT = HIDE_PACKAGE + """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag  # 3.2+
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
json.dump({"errors": dict(bag.import_errors),
           "tasks": {d: [t.task_id for t in dag.tasks] for d, dag in bag.dags.items()},
           "task_types": {d: [type(t).__name__ for t in dag.tasks] for d, dag in bag.dags.items()},
           "timetable": {d: type(dag.timetable).__name__ for d, dag in bag.dags.items()},
           "catchup": {d: dag.catchup for d, dag in bag.dags.items()}}, sys.stdout)
"""

LOOPBACK_BACKEND = '''
"""AzureKeyVaultBackend whose credential may use a loopback authority (no instance discovery)."""
from functools import cached_property

from airflow.providers.microsoft.azure.secrets.key_vault import AzureKeyVaultBackend
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient


class LoopbackKeyVaultBackend(AzureKeyVaultBackend):
    @cached_property
    def client(self):
        credential = ClientSecretCredential(
            self.tenant_id, self.client_id, self.client_secret, disable_instance_discovery=True
        )
        return SecretClient(vault_url=self.vault_url, credential=credential, **self.kwargs)
'''


def venv_python(version: str) -> Path:
    python = VENVS[version] / "bin" / "python"
    if not (VENVS[version] / ".hdiaks").exists():
        pytest.fail(f"{VENVS[version].name} is missing; run `make test-deps` (mk/airflow.mk)")
    return python


def base_env(home: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "COV_"))}
    env.pop("HDIAKS_HIDE_PACKAGE", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONWARNINGS="ignore",
        NO_COLOR="1",
    )
    return env


# -- DagBag import --------------------------------------------------------------------------------

DAGBAG_CASES = [("thin", "plain"), ("embedded", "plain"), ("thin", "hostile"), ("embedded", "hostile")]


def dagbag_config(kind: str) -> JobConfig:
    if kind == "hostile":
        return JobConfig(
            profile=ClusterProfile(name=HOSTILE, flavour="hdinsight-aks", fqdn=HOSTILE, tenant_id=HOSTILE),
            spec=BatchSpec(
                file=HOSTILE, class_name=HOSTILE, args=(HOSTILE, "1"), name=HOSTILE, conf={HOSTILE: HOSTILE}
            ),
        )
    return JobConfig(
        profile=ClusterProfile(name="aks", flavour="hdinsight-aks", fqdn="demo.eastus2.hdinsightaks.net"),
        spec=BatchSpec(
            file="abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar",
            class_name="org.apache.spark.examples.SparkPi",
            args=("10",),
            name="spark-pi",
        ),
    )


def run_dagbag(python: Path, dags: Path, home: Path, *, hide_package: bool) -> dict[str, Any]:
    env = base_env(home, dags)
    # Any Variable read at parse time would go to this unreachable vault and fail the import.
    env["AIRFLOW__SECRETS__BACKEND"] = "airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend"
    env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(
        {"variables_prefix": PREFIX, "vault_url": f"https://127.0.0.1:{closed_port()}"}
    )
    if hide_package:
        env["HDIAKS_HIDE_PACKAGE"] = "1"
    proc = subprocess.run(
        [str(python), "-c", DAGBAG_SCRIPT, str(dags)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module", params=["3", "2"], ids=["airflow3", "airflow2.10"])
def dagbag(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One DagBag run per Airflow version and form (thin; embedded with the package hidden)."""
    python = venv_python(request.param)
    root = tmp_path_factory.mktemp(f"dagbag{request.param}")
    out: dict[str, dict[str, Any]] = {}
    for mode in ("thin", "embedded"):
        dags = root / mode
        for _mode, kind in [c for c in DAGBAG_CASES if c[0] == mode]:
            write_dag(dagbag_config(kind), dags, dag_id=f"{kind}_{mode}", embed=mode == "embedded")
        out[mode] = run_dagbag(python, dags, root / f"home-{mode}", hide_package=mode == "embedded")
    return out


@pytest.mark.parametrize(("mode", "kind"), DAGBAG_CASES, ids=[f"{m}-{k}" for m, k in DAGBAG_CASES])
def test_dagbag_imports_exported_dag(dagbag: dict[str, dict[str, Any]], mode: str, kind: str) -> None:
    assert dagbag[mode]["errors"] == {}
    assert dagbag[mode]["tasks"][f"{kind}_{mode}"] == ["run_spark_batch"]
    assert dagbag[mode]["task_types"][f"{kind}_{mode}"] == ["SparkBatchOperator"]


def test_dagbag_dag_is_unscheduled_without_catchup(dagbag: dict[str, dict[str, Any]]) -> None:
    assert dagbag["thin"]["catchup"]["plain_thin"] is False
    assert dagbag["thin"]["timetable"]["plain_thin"] == "NullTimetable"


# -- airflow dags test on the sandbox -------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The identity + Key Vault endpoints a rig uses: the shared auth sandbox, or the ones of a
    sandbox started with ``auth=True`` (its Livy accepts only their tokens)."""

    authority_host: str
    vault_url: str
    ca_pem: str
    tenant_id: str
    reader_id: str
    reader_secret: str = field(repr=False)

    @classmethod
    def of_auth_sandbox(cls, auth: AuthSandbox) -> Identity:
        return cls(auth.authority_host, auth.vault_url, auth.ca_pem, TENANT, READER_ID, READER_SECRET)

    @classmethod
    def of_sandbox(cls, sandbox: SandboxHandle) -> Identity:
        endpoints = sandbox.process.endpoints()
        reader = endpoints["environment"]
        return cls(
            endpoints["authority_host"],
            endpoints["vault_url"],
            endpoints["ca_pem"],
            endpoints["tenant_id"],
            reader["AZURE_CLIENT_ID"],
            reader["AZURE_CLIENT_SECRET"],
        )

    def stats(self) -> dict[str, int]:
        resp = requests.get(self.authority_host + "/_identity/stats", verify=self.ca_pem, timeout=10)
        resp.raise_for_status()
        return {k: int(v) for k, v in resp.json().items()}

    def vault_stats(self) -> dict[str, int]:
        resp = requests.get(self.vault_url + "/_vault/stats", verify=self.ca_pem, timeout=10)
        resp.raise_for_status()
        return {k: int(v) for k, v in resp.json().items()}


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


@dataclass
class AirflowRig:
    version: str
    python: Path
    env: dict[str, str]
    dags: Path
    sandbox: SandboxHandle
    auth: Identity

    def export(self, dag_id: str, spec: BatchSpec, **options: Any) -> None:
        profile = ClusterProfile(
            name="sandbox",
            flavour="sandbox",
            url=self.sandbox.url,
            auth="service-principal",
            authority_host=self.auth.authority_host,
            tenant_id=self.auth.tenant_id,
            verify=self.auth.ca_pem,
            secret_source="keyvault",
            vault_url=self.auth.vault_url,
        )
        cfg = JobConfig(profile=profile, spec=spec)
        write_dag(cfg, self.dags, dag_id=dag_id, **{"poll_interval": 1, "retry_delay": 1, **options})

    def run_env(self, hide_package: bool) -> dict[str, str]:
        return dict(self.env, HDIAKS_HIDE_PACKAGE="1") if hide_package else self.env

    def dags_test(
        self, dag_id: str, conf: dict[str, Any] | None = None, *, hide_package: bool = False
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.python.parent / "airflow"), "dags", "test", dag_id]
        if conf is not None:
            cmd += ["-c", json.dumps(conf)]
        env = self.run_env(hide_package)
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=self.dags)

    def dags_test_started(self, dag_id: str, log: Path, *, hide_package: bool = False) -> subprocess.Popen[bytes]:
        """``airflow dags test`` left running, its output in ``log`` (a pipe could fill up)."""
        with log.open("wb") as out:
            return subprocess.Popen(
                [str(self.python.parent / "airflow"), "dags", "test", dag_id],
                env=self.run_env(hide_package), stdout=out, stderr=subprocess.STDOUT, cwd=self.dags,
            )  # fmt: skip

    def batches(self) -> list[dict[str, Any]]:
        with self.sandbox.http() as s:
            return list(s.get(f"{self.sandbox.url}/batches", params={"size": 1000}, timeout=10).json()["sessions"])


def make_rig(version: str, root: Path, sandbox: SandboxHandle, auth: Identity, db: AirflowDb) -> AirflowRig:
    """An Airflow home of its own in ``root`` (its metadata database a copy of the session's migrated
    one, ``airflow_db``), Variables from ``auth``'s vault, Livy at ``sandbox``."""
    python = venv_python(version)
    dags, pylib = root / "dags", root / "pylib"
    dags.mkdir(parents=True)
    pylib.mkdir()
    (pylib / "loopback_kv.py").write_text(LOOPBACK_BACKEND, encoding="utf-8")
    (pylib / "sitecustomize.py").write_text(HIDE_PACKAGE, encoding="utf-8")
    env = base_env(root / "home", dags)
    env.update(
        PYTHONPATH=str(pylib),
        # azure-identity's transport takes no CA argument from the backend: it honours this.
        REQUESTS_CA_BUNDLE=auth.ca_pem,
        CURL_CA_BUNDLE=auth.ca_pem,
        AZURE_AUTHORITY_HOST=auth.authority_host,
        AIRFLOW__SECRETS__BACKEND="loopback_kv.LoopbackKeyVaultBackend",
        AIRFLOW__SECRETS__BACKEND_KWARGS=json.dumps(
            {
                "connections_prefix": "airflow-connections",
                "variables_prefix": PREFIX,
                "vault_url": auth.vault_url,
                "tenant_id": auth.tenant_id,
                "client_id": auth.reader_id,
                "client_secret": auth.reader_secret,
                "verify_challenge_resource": False,
            }
        ),
    )
    (root / "home").mkdir()
    shutil.copyfile(db(python.parent / "airflow", env), root / "home" / "airflow.db")
    return AirflowRig(version, python, env, dags, sandbox, auth)


@pytest.fixture(scope="module")
def rig3(
    tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxHandle, auth_sandbox: AuthSandbox, airflow_db: AirflowDb
) -> AirflowRig:
    root = tmp_path_factory.mktemp("airflow3")
    return make_rig("3", root, sandbox, Identity.of_auth_sandbox(auth_sandbox), airflow_db)


@dataclass
class PiRun:
    run: subprocess.CompletedProcess[str]
    identity: dict[str, int]  # requests to the identity endpoint during the run
    vault: dict[str, int]  # requests to the vault during the run
    counts: dict[str, int]  # the sandbox's requests during the run


@pytest.fixture(scope="module")
def pi_run(rig3: AirflowRig) -> PiRun:
    """SparkPi through the DAG with a trigger conf, its POST answered by a dropped connection after
    the sandbox created the batch (an ambiguous POST): one run for the success, trigger-conf,
    Key Vault/MSAL, deferral and exactly-once tests below (each needs a whole Airflow + Spark run;
    the plain success path also runs on Airflow 2.10, the bearer sandbox and the embedded DAGs)."""
    sandbox = rig3.sandbox
    before_id, before_kv = rig3.auth.stats(), rig3.auth.vault_stats()
    rig3.export("hdiaks_pi", BatchSpec(file=sandbox.examples["pi_py"], args=("2",), name="pi"))
    sandbox.clear_faults()  # resets the request counts
    sandbox.set_faults({"kind": "drop_after", "methods": ["POST"], "path_prefix": "/batches", "count": 1})
    try:
        run = rig3.dags_test("hdiaks_pi", conf={"job_name": "pi-from-conf"})
        counts = sandbox.request_counts()
    finally:
        sandbox.clear_faults()
    after_id, after_kv = rig3.auth.stats(), rig3.auth.vault_stats()
    return PiRun(run, stats_delta(before_id, after_id), stats_delta(before_kv, after_kv), counts)


@pytest.mark.spark
def test_dags_test_success_puts_driver_log_in_task_log(pi_run: PiRun) -> None:
    run = pi_run.run
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "Pi is roughly" in run.stdout + run.stderr


@pytest.mark.spark
def test_dags_test_trigger_conf_overrides_job_name(pi_run: PiRun, rig3: AirflowRig) -> None:
    assert pi_run.run.returncode == 0
    names = [b["name"] for b in rig3.batches() if (b.get("name") or "").startswith("pi-from-conf-")]
    assert len(names) == 1


@pytest.mark.spark
def test_dags_test_variables_come_from_key_vault_and_token_from_msal(pi_run: PiRun) -> None:
    run = pi_run.run
    assert run.returncode == 0
    assert pi_run.identity["client_credentials"] >= 2  # the vault reader and the DAG's service principal
    assert CANARY not in run.stdout + run.stderr


@pytest.mark.spark
def test_dags_test_task_deferred_while_the_batch_ran(pi_run: PiRun) -> None:
    run = pi_run.run
    assert run.returncode == 0
    assert "running trigger in line" in run.stdout + run.stderr  # dags test's stand-in triggerer


@pytest.mark.spark
def test_dags_test_ambiguous_post_submits_exactly_once(pi_run: PiRun) -> None:
    # The batch is created, then the connection drops before the answer (pi_run's fault): the
    # task finds the batch by its run-scoped name instead of posting again.
    out = pi_run.run.stdout + pi_run.run.stderr
    assert pi_run.run.returncode == 0, out[-4000:]
    assert pi_run.counts.get("POST /batches") == 1
    assert "Pi is roughly" in out


def wait_for_text(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared:\n" + log.read_text(errors="replace")[-4000:])


@pytest.mark.spark
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "in-worker"])
def test_dags_test_503_burst_fails_the_try_without_killing_and_the_retry_reattaches(
    rig3: AirflowRig, tmp_path: Path, deferrable: bool
) -> None:
    """Livy answers 503 to every poll for longer than the client's retry budget (4 retries per
    request) times MAX_POLL_ERRORS: the try fails, the batch is NOT deleted, and the retry finds
    the same batch by name and follows it to success: one POST, no DELETE."""
    sandbox = rig3.sandbox
    dag_id, prefix = f"hdiaks_burst_{deferrable}", f"burst{int(deferrable)}"
    spec = BatchSpec(file=sandbox.examples["sleep_py"], args=("25",), name=prefix)
    rig3.export(dag_id, spec, retries=2, max_poll_errors=2, deferrable=deferrable)
    sandbox.clear_faults()  # resets the request counts
    log = tmp_path / "dags-test.log"
    proc = rig3.dags_test_started(dag_id, log)
    try:
        batch = running_batch(rig3, f"{prefix}-", proc, log)
        path = f"/batches/{batch['id']}"
        sandbox.set_faults({"kind": "status", "status": 503, "methods": ["GET"], "path_prefix": path, "count": None})
        wait_for_text(log, "Lost track of Livy batch", proc)
        sandbox.clear_faults()  # the gateway is back; the request counts start again here
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sandbox.clear_faults()
    out = log.read_text(errors="replace")
    assert proc.returncode == 0, out[-4000:]
    assert "was left running; a retry of this task reattaches to it" in out
    assert "Stopped watching after 2 failed attempts." in out  # max_poll_errors, in the worker as on the triggerer
    assert f"Reattaching to Livy batch {batch['id']}" in out
    final = sandbox_batch(sandbox, batch["id"])
    assert final["deleted"] is False and final["batch"]["state"] == "success", final
    names = [b["name"] for b in rig3.batches() if (b.get("name") or "").startswith(f"{prefix}-")]
    assert names == [batch["name"]]  # one batch (one POST) for both tries


@pytest.mark.spark
def test_dags_test_failing_job_fails_task_with_error_lines(rig3: AirflowRig) -> None:
    spec = BatchSpec(file=rig3.sandbox.examples["fail_py"], args=("boom-7f3a",), name="fail")
    rig3.export("hdiaks_fail", spec, retries=0)
    run = rig3.dags_test("hdiaks_fail")
    out = run.stdout + run.stderr
    assert "ended in state dead; last error lines:" in out, out[-4000:]
    assert "sandbox example failure: boom-7f3a" in out.split("last error lines:", 1)[1]
    assert "DagRun Finished" not in out or "state=failed" in out


@pytest.mark.spark
def test_dags_test_timeout_kills_the_batch(rig3: AirflowRig) -> None:
    sandbox = rig3.sandbox
    spec = BatchSpec(file=sandbox.examples["sleep_py"], args=("120",), name="sleepy")
    rig3.export("hdiaks_timeout", spec, retries=0, timeout=3)
    sandbox.clear_faults()  # resets the request counts
    run = rig3.dags_test("hdiaks_timeout")
    counts = sandbox.request_counts()
    out = run.stdout + run.stderr
    assert "still" in out and "after 3 s" in out, out[-4000:]
    assert [k for k in counts if k.startswith("DELETE /batches/")], counts


def running_batch(rig: AirflowRig, prefix: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """The batch named ``prefix...`` once the sandbox reports it ``running`` (a wait, not a timing)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = [b for b in rig.batches() if (b.get("name") or "").startswith(prefix)]
        if found and found[0].get("state") == "running":
            return found[0]
        if proc.poll() is not None or (found and found[0].get("state") in ("success", "dead", "killed", "error")):
            break
        time.sleep(0.5)
    raise AssertionError(f"no running batch {prefix}*: {found}\n" + log.read_text(errors="replace")[-4000:])


def sandbox_batch(sandbox: SandboxHandle, batch_id: int) -> dict[str, Any]:
    """GET /_sandbox/batches/{id}: the batch even after a DELETE, with its leftover processes."""
    with sandbox.http() as s:
        answer = s.get(f"{sandbox.url}/_sandbox/batches/{batch_id}", timeout=10)
        answer.raise_for_status()
        return dict(answer.json())


@pytest.mark.spark
@pytest.mark.parametrize("version", ["3", "2"], ids=["airflow3", "airflow2.10"])
def test_dags_test_sigterm_to_the_task_kills_the_batch(
    version: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A task killed while its batch runs deletes the batch (``on_kill``), on real Airflow
    (``deferrable=False``: the task waits on the worker).

    In production a kill (task marked failed or cleared while running, a worker shutting down)
    reaches the task as SIGTERM: Airflow 3's supervisor sends it to the task process, where the
    Task SDK's handler (task_runner ``_run_task_and_map_outcome``) calls ``ti.task.on_kill()`` and
    nothing else; Airflow 2.10's task runner sends it to the ``airflow tasks run --raw``
    process, where ``TaskInstance._execute_task_with_callbacks`` installed a handler that calls
    ``task.on_kill()`` and raises ``AirflowTaskTerminated``. ``airflow dags test`` runs the task
    through the same code in its own (main) thread, so SIGTERM to the ``dags test`` process
    goes through the same handler as in production; only the supervisor that sends it is
    replaced by the test. The sandbox keeps the deleted batch visible under /_sandbox/batches.
    """
    rig: AirflowRig = request.getfixturevalue(f"rig{version}")
    sandbox = rig.sandbox
    dag_id = f"hdiaks_kill{version}"
    spec = BatchSpec(file=sandbox.examples["sleep_py"], args=("300",), name=f"kill{version}")
    rig.export(dag_id, spec, retries=0, deferrable=False)
    sandbox.clear_faults()  # resets the request counts
    log = tmp_path / "dags-test.log"
    proc = rig.dags_test_started(dag_id, log)
    try:
        batch = running_batch(rig, f"kill{version}-", proc, log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text(errors="replace")
    counts = sandbox.request_counts()
    assert counts.get(f"DELETE /batches/{batch['id']}") == 1, (counts, out[-4000:])
    assert "Killing Livy batch " + str(batch["id"]) in out
    final = sandbox_batch(sandbox, batch["id"])
    assert final["deleted"] is True
    assert final["batch"]["state"] == "killed"
    assert final["leftover_pids"] == []


@pytest.fixture(scope="module")
def rig2(
    tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxHandle, auth_sandbox: AuthSandbox, airflow_db: AirflowDb
) -> AirflowRig:
    root = tmp_path_factory.mktemp("airflow2")
    return make_rig("2", root, sandbox, Identity.of_auth_sandbox(auth_sandbox), airflow_db)


@pytest.mark.spark
def test_dags_test_success_on_airflow_2_10(rig2: AirflowRig) -> None:
    rig2.export("hdiaks_pi2", BatchSpec(file=rig2.sandbox.examples["pi_py"], args=("2",), name="pi2"))
    run = rig2.dags_test("hdiaks_pi2")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "Pi is roughly" in out


# -- embedded DAGs, with the package hidden ------------------------------------------------------


@pytest.mark.spark
@pytest.mark.parametrize("version", ["3", "2"], ids=["airflow3", "airflow2.10"])
def test_dags_test_embedded_dag_runs_without_the_package(version: str, request: pytest.FixtureRequest) -> None:
    rig: AirflowRig = request.getfixturevalue(f"rig{version}")
    dag_id = f"hdiaks_embedded{version}"
    rig.export(dag_id, BatchSpec(file=rig.sandbox.examples["pi_py"], args=("2",), name=f"emb{version}"), embed=True)
    run = rig.dags_test(dag_id, hide_package=True)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "Pi is roughly" in out
    assert "running trigger in line" not in out  # an embedded DAG never defers


# -- against a bearer-protected Livy ---------------------------------------------------------


@dataclass
class BearerRuns:
    thin: subprocess.CompletedProcess[str]
    embedded: subprocess.CompletedProcess[str]
    identity: dict[str, int]  # requests to the sandbox identity endpoint during the two runs


@pytest.fixture(scope="module")
def bearer_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A sandbox with its own identity + vault endpoints; its Livy requires their bearer tokens.

    Module scope, so it is started directly rather than through the per-test ``sandbox_factory``.
    """
    handle = start_sandbox(tmp_path_factory.mktemp("bearer-sandbox"), auth=True)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def bearer_runs(
    tmp_path_factory: pytest.TempPathFactory, bearer_sandbox: SandboxHandle, airflow_db: AirflowDb
) -> BearerRuns:
    """SparkPi through a thin (deferrable: the trigger reads the Variables too) and an embedded DAG
    on Airflow 3; Variables from the bearer sandbox's vault."""
    root = tmp_path_factory.mktemp("airflow3-bearer")
    rig = make_rig("3", root, bearer_sandbox, Identity.of_sandbox(bearer_sandbox), airflow_db)
    pi = bearer_sandbox.examples["pi_py"]
    rig.export("bearer_thin", BatchSpec(file=pi, args=("2",), name="pi-thin"))
    rig.export("bearer_embedded", BatchSpec(file=pi, args=("2",), name="pi-embedded"), embed=True)
    before = rig.auth.stats()
    thin = rig.dags_test("bearer_thin")
    embedded = rig.dags_test("bearer_embedded", hide_package=True)
    return BearerRuns(thin, embedded, stats_delta(before, rig.auth.stats()))


def livy_status(sandbox: SandboxHandle, headers: dict[str, str]) -> int:
    with sandbox.http() as s:
        return s.get(f"{sandbox.url}/batches", headers=headers, timeout=10).status_code


def test_bearer_sandbox_refuses_missing_and_foreign_tokens(
    bearer_sandbox: SandboxHandle, auth_sandbox: AuthSandbox
) -> None:
    # A real token, but from another identity endpoint (the shared auth sandbox's signing key).
    foreign = requests.post(
        f"{auth_sandbox.authority_host}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": CANARY, "scope": "x/.default"},
        verify=auth_sandbox.ca_pem,
        timeout=10,
    ).json()["access_token"]
    assert livy_status(bearer_sandbox, {}) == 401
    assert livy_status(bearer_sandbox, {"Authorization": f"Bearer {foreign}"}) == 401


@pytest.mark.spark
@pytest.mark.parametrize("form", ["thin", "embedded"])
def test_dags_test_on_bearer_protected_livy(bearer_runs: BearerRuns, form: str) -> None:
    run: subprocess.CompletedProcess[str] = getattr(bearer_runs, form)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "Pi is roughly" in out


@pytest.mark.spark
def test_dags_test_bearer_tokens_come_from_the_sandbox_identity_endpoint(bearer_runs: BearerRuns) -> None:
    # Per run: one token for the vault reader (Variables) and one for the DAG's service principal.
    assert bearer_runs.identity["client_credentials"] >= 4
    assert bearer_runs.identity["token_errors"] == 0


# -- what the Airflow venvs hold -----------------------------------------------------------------

IMPORT_CHECK = """
import sys
import hdiaks_widgets.airflow.operator
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pandas", "numpy", "ipywidgets", "IPython", "jupyter_client"})
print(",".join(heavy))
"""


@pytest.mark.parametrize("version", ["3", "2"], ids=["airflow3", "airflow2.10"])
def test_operator_imports_in_airflow_without_pandas_or_jupyter(version: str, tmp_path: Path) -> None:
    python = venv_python(version)
    proc = subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""
    for name in ("pandas", "ipywidgets"):  # not installed at all: only the [airflow] extra was
        probe = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True, timeout=60, cwd=tmp_path)
        assert probe.returncode != 0, name


def test_hidden_package_cannot_be_imported(tmp_path: Path) -> None:
    # The blocker the embedded-DAG tests rely on really hides the installed package.
    for version in VENVS:
        python = venv_python(version)
        env = dict(os.environ, HDIAKS_HIDE_PACKAGE="1")
        proc = subprocess.run(
            [str(python), "-c", HIDE_PACKAGE + "\nimport hdiaks_widgets"], capture_output=True, timeout=60,
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert proc.returncode != 0 and b"hidden in this test" in proc.stderr


OPERATOR_CHECK = """
import copy, json
from hdiaks_widgets.airflow.operator import SparkBatchOperator
from hdiaks_widgets.airflow.trigger import SparkBatchTrigger
job = {"version": 1, "profile": {"flavour": "sandbox", "url": "http://127.0.0.1:1", "auth": "service-principal"},
       "spec": {"file": "/x.py", "name": "pi"}}
op = SparkBatchOperator(task_id="t", job_config=job, retries=2)
copy.deepcopy(op)  # Airflow copies operators (partial_subset, task runner)
trigger = SparkBatchTrigger(batch_id=3, name="pi-x", job_config=job, deadline=1.0)
path, kwargs = trigger.serialize()
again = SparkBatchTrigger(**json.loads(json.dumps(kwargs)))
assert again.serialize() == (path, kwargs)
print(path, json.dumps(sorted(kwargs)))
"""


@pytest.mark.parametrize("version", ["3", "2"], ids=["airflow3", "airflow2.10"])
def test_operator_copies_and_trigger_round_trips_without_secrets(version: str, tmp_path: Path) -> None:
    python = venv_python(version)
    proc = subprocess.run([str(python), "-W", "ignore", "-c", OPERATOR_CHECK], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    path, keys = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert path == "hdiaks_widgets.airflow.trigger.SparkBatchTrigger"
    assert json.loads(keys) == [
        "batch_id", "deadline", "job_config", "livy_retries", "max_poll_errors", "name", "poll_interval",
    ]  # fmt: skip  # the job's non-secret config only: credentials are Variables read on the triggerer


# -- kill while deferred, clear: a real scheduler, triggerer and DAG processor (last in the module) --


def airflow_cli(rig: AirflowRig, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(rig.python.parent / "airflow"), *args], env=env, capture_output=True, text=True, timeout=180, cwd=rig.dags
    )


def wait_for_ti_state(rig: AirflowRig, env: dict[str, str], dag_id: str, run_id: str, want: str) -> None:
    deadline = time.monotonic() + 240
    state = ""
    while time.monotonic() < deadline:
        proc = airflow_cli(rig, env, "tasks", "state", dag_id, "run_spark_batch", run_id)
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        state = lines[-1] if lines else proc.stderr[-300:]
        if state == want:
            return
        time.sleep(1)
    raise AssertionError(f"task never {want}: last state {state!r}")


@dataclass
class Standalone:
    """``airflow standalone`` (scheduler, triggerer, DAG processor, API server or webserver)."""

    rig: AirflowRig
    env: dict[str, str]
    port: int
    log: Path
    server: subprocess.Popen[bytes]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return airflow_cli(self.rig, self.env, *args)

    def trigger(self, dag_id: str, run_id: str) -> None:
        deadline = time.monotonic() + 240
        while True:  # the DAG processor has to see the file first
            proc = self.cli("dags", "trigger", dag_id, "-r", run_id)
            if proc.returncode == 0:
                return
            assert time.monotonic() < deadline and self.server.poll() is None, proc.stderr[-3000:]
            time.sleep(3)

    def set_ti_state(self, dag_id: str, run_id: str, state: str) -> None:
        """What the UI's "Mark as failed/success" calls: PATCH the task instance's state."""
        version = self.rig.version
        api = f"http://127.0.0.1:{self.port}/api/{'v2' if version == '3' else 'v1'}"
        login = None
        if version == "2":
            password = Path(self.rig.env["AIRFLOW_HOME"]) / "standalone_admin_password.txt"
            login = ("admin", password.read_text(encoding="utf-8").strip())
        answer = requests.patch(
            f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/run_spark_batch",
            # Airflow 2's API defaults to a dry run.
            json={"new_state": state, **({"dry_run": False} if version == "2" else {})}, auth=login, timeout=60,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text[-2000:]

    def wait_ready(self, timeout: float = 240) -> None:
        """Until the API server answers its health check with a healthy scheduler and triggerer: a
        task queued before the API server is up fails (Airflow 3's task runner reaches it through the
        execution API and gives up on a read timeout when it is slow to start). The paths: Airflow 3's
        ``/api/v2/monitor/health`` (apache/airflow#51497, check-health.rst), 2.x's ``/health``."""
        path = "/api/v2/monitor/health" if self.rig.version == "3" else "/health"
        deadline, last = time.monotonic() + timeout, ""
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)
                health = answer.json() if answer.status_code == 200 else {}
                if all((health.get(part) or {}).get("status") == "healthy" for part in ("scheduler", "triggerer")):
                    return
                last = answer.text[-500:]
            except (requests.RequestException, ValueError) as exc:
                last = repr(exc)
            alive = self.server.poll() is None
            assert time.monotonic() < deadline and alive, f"not ready: {last}\n{self.logs()[-3000:]}"
            time.sleep(1)

    def logs(self) -> str:
        """The standalone output and every task log (trigger logs go to the task's files)."""
        files = sorted((Path(self.rig.env["AIRFLOW_HOME"]) / "logs").rglob("*.log"))
        return self.log.read_text(errors="replace") + "".join(p.read_text(errors="replace") for p in files)


@contextlib.contextmanager
def standalone(rig: AirflowRig, tmp: Path) -> Iterator[Standalone]:
    port = closed_port()
    env = dict(
        rig.env,
        PATH=f"{rig.python.parent}{os.pathsep}{rig.env.get('PATH', '')}",  # standalone runs `airflow ...`
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__WEBSERVER__WEB_SERVER_PORT=str(port),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",  # 3.x API without a login
        AIRFLOW__API__AUTH_BACKENDS="airflow.api.auth.backend.basic_auth",  # 2.10: standalone's admin
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
    )
    log = tmp / "standalone.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(rig.python.parent / "airflow"), "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
            cwd=rig.dags, start_new_session=True,
        )  # fmt: skip
    try:
        af = Standalone(rig, env, port, log, server)
        af.wait_ready()
        yield af
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the group this test started, by its id
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def wait_until(what: str, check: Any, timeout: float, af: Standalone) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline and af.server.poll() is None, f"{what}:\n{af.logs()[-4000:]}"
        time.sleep(1)


DEFERKILL_RUN, CLEAR_RUN = "deferkill", "clearrun"


@pytest.fixture(scope="module", params=["3", "2"], ids=["airflow3", "airflow2.10"])
def scheduled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxHandle,
    auth_sandbox: AuthSandbox, airflow_db: AirflowDb,
) -> Iterator[Standalone]:
    """One ``airflow standalone`` per Airflow version, shared by the two tests that need a real
    scheduler (its start, the DAG processor's first parse and the home cost tens of seconds).
    Both DAGs are in the folder before it starts: the DAG processor lists the folder only every
    few minutes. Each test triggers its own DAG (no schedule, so nothing else runs there) and
    resets the sandbox's request counts first. The section is the last of the module, so the
    second version's server is stopped when the module ends rather than idling beside other tests."""
    version = request.param
    root = tmp_path_factory.mktemp(f"airflow{version}-standalone")
    rig = make_rig(version, root / "rig", sandbox, Identity.of_auth_sandbox(auth_sandbox), airflow_db)
    sleep = BatchSpec(file=sandbox.examples["sleep_py"], args=("300",), name=f"dk{version}")
    rig.export(f"hdiaks_deferkill{version}", sleep, retries=0)
    rig.export(f"hdiaks_clear{version}", BatchSpec(file=sandbox.examples["pi_py"], args=("2",), name=f"clr{version}"))
    with standalone(rig, root) as af:
        yield af


@pytest.mark.spark
@pytest.mark.timeout(900)
def test_marking_a_deferred_task_failed_deletes_the_batch(scheduled: Standalone, sandbox: SandboxHandle) -> None:
    """A user marks the task failed while it is deferred (the REST API call behind the UI's
    "Mark as failed"): the triggerer's kill path deletes the batch and no Spark process is left.

    Real Airflow, no stand-ins: ``airflow standalone`` runs the scheduler, the triggerer, the DAG
    processor and the API server (3.x) / webserver (2.10). The triggerer's ``clean_unused``
    drops the trigger of a task instance that is no longer deferred; the triggerer then cancels
    it: on 3.3+ with "user-action", and calls ``SparkBatchTrigger.on_kill``; on 2.10 the
    cancelled trigger finds its task instance no longer deferred in the metadata database.
    """
    af = scheduled
    rig, version = af.rig, af.rig.version
    dag_id, run_id = f"hdiaks_deferkill{version}", DEFERKILL_RUN
    sandbox.clear_faults()  # resets the request counts
    af.trigger(dag_id, run_id)
    wait_for_ti_state(rig, af.env, dag_id, run_id, "deferred")
    batch = running_batch(rig, f"dk{version}-", af.server, af.log)
    af.set_ti_state(dag_id, run_id, "failed")
    delete = f"DELETE /batches/{batch['id']}"
    wait_until("no DELETE", lambda: delete in sandbox.request_counts(), 180, af)

    def gone() -> dict[str, Any] | None:
        final = sandbox_batch(sandbox, batch["id"])
        return final if final["deleted"] and not final["leftover_pids"] else None

    final = wait_until("batch not gone", gone, 60, af)
    logs = af.logs()
    assert sandbox.request_counts().get(delete) == 1
    assert final["batch"]["state"] == "killed", final
    assert f"Killing Livy batch {batch['id']}" in logs
    if version == "3":
        assert "Trigger cancelled by user action, invoking on_kill" in logs
    else:
        assert "the task is no longer deferred" in logs


@pytest.mark.spark
@pytest.mark.timeout(900)
def test_clearing_a_succeeded_task_runs_the_job_again(scheduled: Standalone, sandbox: SandboxHandle) -> None:
    """``airflow tasks clear`` on a succeeded task: the scheduler runs it again and it submits a
    new batch under a new name (two POSTs in all), instead of reattaching to the finished one."""
    af = scheduled
    rig, version = af.rig, af.rig.version
    dag_id, run_id, prefix = f"hdiaks_clear{version}", CLEAR_RUN, f"clr{version}-"
    sandbox.clear_faults()  # resets the request counts

    def batches() -> list[dict[str, Any]]:
        return [b for b in rig.batches() if (b.get("name") or "").startswith(prefix)]

    af.trigger(dag_id, run_id)
    wait_for_ti_state(rig, af.env, dag_id, run_id, "success")
    cleared = af.cli("tasks", "clear", dag_id, "-y")
    assert cleared.returncode == 0, cleared.stderr[-3000:]
    wait_until("no second batch", lambda: len(batches()) == 2, 240, af)
    wait_for_ti_state(rig, af.env, dag_id, run_id, "success")
    first, second = sorted(batches(), key=lambda b: int(b["id"]))
    assert second["name"] == first["name"] + "-try2"
    assert [first["state"], second["state"]] == ["success", "success"]
    assert sandbox.request_counts().get("POST /batches") == 2
