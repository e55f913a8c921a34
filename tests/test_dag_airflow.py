"""Exported DAGs on real Apache Airflow (own virtualenvs from mk/airflow.mk) and the real sandbox.

DagBag import: latest 3.x and 2.10.x, both styles, plus hostile values. End to end with
``airflow dags test`` on the sandbox (real Spark) with Variables from the Azure Key Vault secrets
backend pointed at the sandbox vault: the stock ``AzureKeyVaultBackend`` builds its
``ClientSecretCredential`` without ``disable_instance_discovery``, so MSAL would ask
login.microsoftonline.com about the loopback authority; the test backend below replaces only
that credential (names, lookups and ``SecretClient`` stay the provider's).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from auth_fixtures import (
    CANARY,
    PREFIX,
    READER_ID,
    READER_SECRET,
    TENANT,
    AuthSandbox,
    auth_sandbox_fixture,
    closed_port,
)
from conftest import SandboxHandle

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dag_export import write_dag

pytestmark = pytest.mark.airflow
auth_sandbox = auth_sandbox_fixture

ROOT = Path(__file__).resolve().parent.parent
VENVS = {"3": ROOT / ".venv-airflow3", "2": ROOT / ".venv-airflow2"}
HOSTILE = "q'\"\"\"'''\\ \n {{ params.x }} ${HOME} {% raw %} ünï ✓ \u2028 \U0001f680 " + "x" * 10_000

DAGBAG_SCRIPT = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag  # 3.2+
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
json.dump({"errors": dict(bag.import_errors),
           "tasks": {d: [t.task_id for t in dag.tasks] for d, dag in bag.dags.items()},
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
    if not (VENVS[version] / ".installed").exists():
        pytest.fail(f"{VENVS[version].name} is missing; run `make test-deps` (mk/airflow.mk)")
    return python


def base_env(home: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "COV_"))}
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

DAGBAG_CASES = [
    ("taskflow", "plain"),
    ("livy-operator", "plain"),
    ("taskflow", "hostile"),
    ("livy-operator", "hostile"),
]


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


@pytest.fixture(scope="module", params=["3", "2"], ids=["airflow3", "airflow2.10"])
def dagbag(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One DagBag run per Airflow version over all exported files (one subprocess each)."""
    python = venv_python(request.param)
    root = tmp_path_factory.mktemp(f"dagbag{request.param}")
    dags = root / "dags"
    for style, kind in DAGBAG_CASES:
        write_dag(dagbag_config(kind), dags, dag_id=f"{kind}_{style.replace('-', '_')}", style=style)  # type: ignore[arg-type]
    env = base_env(root / "home", dags)
    # Any Variable read at parse time would go to this unreachable vault and fail the import.
    env["AIRFLOW__SECRETS__BACKEND"] = "airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend"
    env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(
        {"variables_prefix": PREFIX, "vault_url": f"https://127.0.0.1:{closed_port()}"}
    )
    proc = subprocess.run(
        [str(python), "-c", DAGBAG_SCRIPT, str(dags)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("style", "kind"), DAGBAG_CASES, ids=[f"{s}-{k}" for s, k in DAGBAG_CASES])
def test_dagbag_imports_exported_dag(dagbag: dict[str, Any], style: str, kind: str) -> None:
    dag_id = f"{kind}_{style.replace('-', '_')}"
    assert dagbag["errors"] == {}
    assert dagbag["tasks"][dag_id] == ["run_spark_batch"]


def test_dagbag_dag_is_unscheduled_without_catchup(dagbag: dict[str, Any]) -> None:
    assert dagbag["catchup"]["plain_taskflow"] is False
    assert dagbag["timetable"]["plain_taskflow"] == "NullTimetable"


# -- airflow dags test on the sandbox -------------------------------------------------------------


@dataclass
class AirflowRig:
    version: str
    python: Path
    env: dict[str, str]
    dags: Path
    sandbox: SandboxHandle
    auth: AuthSandbox

    def export(self, dag_id: str, spec: BatchSpec, **options: Any) -> None:
        profile = ClusterProfile(
            name="sandbox",
            flavour="sandbox",
            url=self.sandbox.url,
            auth="service-principal",
            authority_host=self.auth.authority_host,
            tenant_id=TENANT,
            verify=self.auth.ca_pem,
            secret_source="keyvault",
            vault_url=self.auth.vault_url,
        )
        cfg = JobConfig(profile=profile, spec=spec)
        write_dag(cfg, self.dags, dag_id=dag_id, poll_interval=1, retry_delay=1, **options)

    def dags_test(self, dag_id: str, conf: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.python.parent / "airflow"), "dags", "test", dag_id]
        if conf is not None:
            cmd += ["-c", json.dumps(conf)]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=400, cwd=self.dags)

    def batches(self) -> list[dict[str, Any]]:
        with self.sandbox.http() as s:
            return list(s.get(f"{self.sandbox.url}/batches", params={"size": 1000}, timeout=10).json()["sessions"])


def make_rig(version: str, root: Path, sandbox: SandboxHandle, auth: AuthSandbox) -> AirflowRig:
    python = venv_python(version)
    dags, pylib = root / "dags", root / "pylib"
    dags.mkdir(parents=True)
    pylib.mkdir()
    (pylib / "loopback_kv.py").write_text(LOOPBACK_BACKEND, encoding="utf-8")
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
                "tenant_id": TENANT,
                "client_id": READER_ID,
                "client_secret": READER_SECRET,
                "verify_challenge_resource": False,
            }
        ),
    )
    migrate = subprocess.run(
        [str(python.parent / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return AirflowRig(version, python, env, dags, sandbox, auth)


@pytest.fixture(scope="module")
def rig3(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxHandle, auth_sandbox: AuthSandbox) -> AirflowRig:
    return make_rig("3", tmp_path_factory.mktemp("airflow3"), sandbox, auth_sandbox)


@pytest.fixture(scope="module")
def pi_run(rig3: AirflowRig) -> Iterator[tuple[subprocess.CompletedProcess[str], dict[str, int], dict[str, int]]]:
    """SparkPi through the DAG with a trigger conf; returns the run and identity/vault stats."""
    before_id, before_kv = rig3.auth.stats(), rig3.auth.vault_stats()
    rig3.export("hdiaks_pi", BatchSpec(file=rig3.sandbox.examples["pi_py"], args=("2",), name="pi"))
    run = rig3.dags_test("hdiaks_pi", conf={"job_name": "pi-from-conf"})
    after_id, after_kv = rig3.auth.stats(), rig3.auth.vault_stats()
    yield (
        run,
        {k: after_id[k] - before_id.get(k, 0) for k in after_id},
        {k: after_kv[k] - before_kv.get(k, 0) for k in after_kv},
    )


@pytest.mark.spark
def test_dags_test_success_puts_driver_log_in_task_log(pi_run: Any) -> None:
    run = pi_run[0]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "Pi is roughly" in run.stdout + run.stderr


@pytest.mark.spark
def test_dags_test_trigger_conf_overrides_job_name(pi_run: Any, rig3: AirflowRig) -> None:
    assert pi_run[0].returncode == 0
    names = [b["name"] for b in rig3.batches() if (b.get("name") or "").startswith("pi-from-conf-")]
    assert len(names) == 1


@pytest.mark.spark
def test_dags_test_variables_come_from_key_vault_and_token_from_msal(pi_run: Any) -> None:
    run, identity, _vault = pi_run
    assert run.returncode == 0
    assert identity["client_credentials"] >= 2  # the vault reader and the DAG's service principal
    assert CANARY not in run.stdout + run.stderr


@pytest.mark.spark
def test_dags_test_retry_reattaches_instead_of_submitting_again(rig3: AirflowRig) -> None:
    sandbox = rig3.sandbox
    rig3.export("hdiaks_retry", BatchSpec(file=sandbox.examples["pi_py"], args=("2",), name="retry"))
    sandbox.clear_faults()
    # The batch is created, then the connection drops before the answer: try 1 fails not knowing
    # the batch id; try 2 must find the batch by its deterministic name.
    sandbox.set_faults({"kind": "drop_after", "methods": ["POST"], "path_prefix": "/batches", "count": 1})
    try:
        run = rig3.dags_test("hdiaks_retry")
        counts = sandbox.request_counts()
    finally:
        sandbox.clear_faults()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert counts.get("POST /batches") == 1
    assert "Reattaching to Livy batch" in out and "Pi is roughly" in out


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


@pytest.fixture(scope="module")
def rig2(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxHandle, auth_sandbox: AuthSandbox) -> AirflowRig:
    return make_rig("2", tmp_path_factory.mktemp("airflow2"), sandbox, auth_sandbox)


@pytest.mark.spark
def test_dags_test_success_on_airflow_2_10(rig2: AirflowRig) -> None:
    rig2.export("hdiaks_pi2", BatchSpec(file=rig2.sandbox.examples["pi_py"], args=("2",), name="pi2"))
    run = rig2.dags_test("hdiaks_pi2")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "Pi is roughly" in out


def test_airflow_venvs_run_the_dag_without_hdiaks_widgets(tmp_path: Path) -> None:
    # The exported DAG is self-contained: the Airflow venvs never install this package.
    for version in VENVS:
        python = venv_python(version)
        proc = subprocess.run(
            [str(python), "-c", "import hdiaks_widgets"], capture_output=True, timeout=60, cwd=tmp_path
        )
        assert proc.returncode != 0
