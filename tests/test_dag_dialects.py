"""Exported DAGs against the sandbox's service dialects (Fabric, Synapse, classic HDInsight with
Entra ID) on real Apache Airflow 3 (and one Fabric run on 2.10), and the setup sheet of each flavour.

End to end: ``airflow dags test`` of a DAG exported from a ``fabric`` / ``synapse`` /
``hdinsight`` (auth ``entra``) profile whose ``url`` points at a sandbox started with
``auth=True`` (``dialect_auth_sandbox``): every dialect path there takes only bearer tokens of the
sandbox identity endpoint for its own audience, and the service principal's id, secret and tenant
are read from the sandbox vault through Airflow's Key Vault secrets backend, under the names the
setup sheet lists (the Airflow rig of ``test_dag_airflow``). One Spark job per DAG run, one DAG
run at a time: success (the XCom holds the id the service gave, a UUID on Fabric; the task log
has the driver's own output read through the dialect's log API), failure (the job's error lines
in the task log) and "retry reattaches" (the first try loses the batch to a burst of 503s after
the submit, as in ``test_dag_airflow``; the retry follows the same batch: one POST in all).

The setup-sheet tests need no server: per flavour, the Key Vault secret names in Airflow's
backend naming, the role the service principal needs and the admin switch to turn on, and no
secret value.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from auth_fixtures import CANARY
from conftest import AirflowDb, SandboxHandle
from test_dag_airflow import AirflowRig, Identity, make_rig, venv_python, wait_for_text

from hdiaks_widgets.airflow.runtime import (
    VARIABLES,
    MissingVariables,
    Variables,
    build_client,
    trigger_keys_for,
    variables_for,
)
from hdiaks_widgets.auth import vault_token_provider
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dag_export import render_setup_sheet, write_dag
from hdiaks_widgets.dag_export.sheet import access_of
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.secrets import CLIENT_SECRET_KEY, store_for_profile

WS, LH = "6f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f", "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a"
DIALECTS = ["fabric", "synapse"]


def dialect_profile(box: SandboxHandle, flavour: str) -> ClusterProfile:
    """A ``flavour`` profile on the sandbox's origin, signed in as the sandbox's service principal
    (id, secret and tenant from its vault, token from its identity endpoint)."""
    ep = box.process.endpoints()
    common: dict[str, Any] = dict(url=box.url, authority_host=ep["authority_host"], secret_source="keyvault",
                                  vault_url=ep["vault_url"], verify=ep["ca_pem"])  # fmt: skip
    if flavour == "fabric":
        return ClusterProfile(name="fab", flavour="fabric", workspace_id=WS, lakehouse_id=LH, **common)
    if flavour == "synapse":
        return ClusterProfile(name="syn", flavour="synapse", workspace="sandboxws", pool="dagpool", **common)
    return ClusterProfile(name="hdi", flavour="hdinsight", fqdn="mycluster", auth="entra",
                          tenant_id=ep["environment"]["AZURE_TENANT_ID"], **common)  # fmt: skip


@dataclass
class DialectRig:
    """The Airflow 3 rig on the dialect sandbox, exporting DAGs from a dialect profile."""

    rig: AirflowRig
    box: SandboxHandle

    def export(self, flavour: str, dag_id: str, spec: BatchSpec, **options: Any) -> None:
        cfg = JobConfig(profile=dialect_profile(self.box, flavour), spec=spec)
        write_dag(cfg, self.rig.dags, dag_id=dag_id, **{"poll_interval": 1, "retry_delay": 1, **options})

    def client(self, flavour: str) -> LivyClient:
        env = self.box.process.endpoints()["environment"]
        return LivyClient.from_profile(dialect_profile(self.box, flavour), environ=env)

    def batches(self, flavour: str, prefix: str) -> list[dict[str, Any]]:
        """The dialect's batches named ``prefix...`` (through its own list, with a token)."""
        with self.client(flavour) as client:
            found = client.list_batches(start=0, size=20).batches
        named = [b for b in found if (b.name or "").startswith(prefix)]
        return [{"id": b.id, "name": b.name, "state": b.state.value} for b in named]

    def posts(self, flavour: str, counts: dict[str, int]) -> int:
        path = "POST " + dialect_profile(self.box, flavour).base_url.removeprefix(self.box.url) + "/batches"
        return counts.get(path, 0)

    def xcom(self, dag_id: str, key: str) -> Any:
        """An XCom of the last run of ``dag_id`` from the rig's metadata database (JSON on Airflow 3)."""
        db = Path(self.rig.env["AIRFLOW_HOME"]) / "airflow.db"
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND key = ? ORDER BY timestamp DESC LIMIT 1", (dag_id, key)
            ).fetchone()
        assert row is not None, f"no XCom {key!r} for {dag_id}"
        value = row[0]
        return json.loads(value) if isinstance(value, (str, bytes)) else value


@pytest.fixture(scope="module")
def drig(
    tmp_path_factory: pytest.TempPathFactory, dialect_auth_sandbox: SandboxHandle, airflow_db: AirflowDb
) -> DialectRig:
    box = dialect_auth_sandbox
    root = tmp_path_factory.mktemp("airflow3-dialects")
    return DialectRig(make_rig("3", root, box, Identity.of_sandbox(box), airflow_db), box)


def output(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout + run.stderr


@dataclass
class Success:
    flavour: str
    run: subprocess.CompletedProcess[str]
    counts: dict[str, int]  # the sandbox's requests during the run


@pytest.fixture(scope="module", params=[*DIALECTS, "hdinsight"], ids=[*DIALECTS, "hdinsight-entra"])
def success(request: pytest.FixtureRequest, drig: DialectRig) -> Success:
    """SparkPi through the DAG of one flavour (one Spark job), its name from the trigger conf."""
    flavour = request.param
    drig.export(flavour, f"pi_{flavour}", BatchSpec(file=drig.box.examples["pi_py"], args=("2",), name="exported"))
    drig.box.clear_faults()  # resets the request counts
    run = drig.rig.dags_test(f"pi_{flavour}", conf={"job_name": f"pi-{flavour}"})
    return Success(flavour, run, drig.box.request_counts())


# Where each flavour's driver log is read (logview: Fabric's monitoring API, Synapse's Spark
# history server, Livy's own /log on classic HDInsight).
LOG_PATHS = {"fabric": "/livySessions/", "synapse": "/sparkhistory/api/v1/sparkpools/", "hdinsight": "/livy/batches/"}


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
def test_dialect_dag_success_puts_the_driver_output_in_the_task_log(success: Success) -> None:
    out = output(success.run)
    assert success.run.returncode == 0, out[-4000:]
    assert "Pi is roughly" in out
    assert "running trigger in line" in out  # deferred while the batch ran
    gets = [k for k in success.counts if k.startswith("GET ")]
    assert any(LOG_PATHS[success.flavour] in k and (success.flavour != "hdinsight" or k.endswith("/log")) for k in gets)
    if success.flavour != "hdinsight":  # no Livy /log or /state there: never asked for
        assert not [k for k in gets if k.endswith(("/log", "/state"))], gets


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
def test_dialect_dag_xcom_holds_the_id_the_service_gave(success: Success, drig: DialectRig) -> None:
    flavour = success.flavour
    assert success.run.returncode == 0, output(success.run)[-4000:]
    [batch] = drig.batches(flavour, f"pi-{flavour}-")
    batch_id = drig.xcom(f"pi_{flavour}", "batch_id")
    assert batch_id == batch["id"] and isinstance(batch_id, str)
    if flavour == "fabric":
        assert str(uuid.UUID(batch_id)) == batch_id  # the UUID as Fabric wrote it, not a number
    assert drig.xcom(f"pi_{flavour}", "return_value")["batch_id"] == batch_id


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
def test_dialect_dag_logs_no_secret(success: Success, drig: DialectRig) -> None:
    assert success.run.returncode == 0, output(success.run)[-4000:]
    profile = dialect_profile(drig.box, success.flavour)
    env = drig.box.process.endpoints()["environment"]
    store = store_for_profile(profile, token_provider=vault_token_provider(profile, environ=env))
    secret = store.get(CLIENT_SECRET_KEY)  # the service principal's, as the DAG read it from the vault
    assert secret and secret not in output(success.run)
    assert env["AZURE_CLIENT_SECRET"] not in output(success.run)  # nor the vault reader's


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
@pytest.mark.parametrize("flavour", DIALECTS)
def test_dialect_dag_failing_job_fails_the_task_with_its_error_lines(drig: DialectRig, flavour: str) -> None:
    dag_id = f"fail_{flavour}"
    spec = BatchSpec(file=drig.box.examples["fail_py"], args=("boom-7f3a",), name=f"fail-{flavour}")
    drig.export(flavour, dag_id, spec, retries=0)
    run = drig.rig.dags_test(dag_id)
    out = output(run)
    assert "ended in state dead; last error lines:" in out, out[-4000:]
    assert "sandbox example failure: boom-7f3a" in out.split("last error lines:", 1)[1]
    [batch] = drig.batches(flavour, f"fail-{flavour}-")
    assert batch["state"] == "dead"


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
@pytest.mark.parametrize("flavour", DIALECTS)
def test_dialect_dag_retry_reattaches_to_the_batch_of_the_first_try(
    drig: DialectRig, flavour: str, tmp_path: Path
) -> None:
    """The first try submits, then every poll of its batch answers 503 for longer than the client's
    retries times ``max_poll_errors``: the try fails and leaves the batch running; the retry finds
    the same batch by its name through the dialect's list and follows it to success. One POST.

    The twin of ``test_dag_airflow``'s Livy test, which counts two failed polls in the worker and on
    the triggerer; here one failed poll (``max_poll_errors=1``) is enough to lose the batch, so the
    burst and the job are shorter: what this test adds is the dialect's paths and list."""
    box, rig = drig.box, drig.rig
    dag_id, prefix = f"burst_{flavour}", f"burst-{flavour}"
    drig.export(flavour, dag_id, BatchSpec(file=box.examples["sleep_py"], args=("18",), name=prefix), retries=2,
                max_poll_errors=1)  # fmt: skip
    box.clear_faults()  # resets the request counts
    log = tmp_path / "dags-test.log"
    proc = rig.dags_test_started(dag_id, log)
    try:
        batch = running(drig, flavour, f"{prefix}-", proc, log)
        path = dialect_profile(box, flavour).base_url.removeprefix(box.url) + f"/batches/{batch['id']}"
        box.set_faults({"kind": "status", "status": 503, "methods": ["GET"], "path_prefix": path, "count": None})
        wait_for_text(log, "Lost track of Livy batch", proc)
        first = box.request_counts()
        box.clear_faults()  # the gateway is back; the request counts start again here
        proc.wait(timeout=300)
        second = box.request_counts()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        box.clear_faults()
    out = log.read_text(errors="replace")
    assert proc.returncode == 0, out[-4000:]
    assert "was left running; a retry of this task reattaches to it" in out
    assert f"Reattaching to Livy batch {batch['id']}" in out
    assert first.get(f"GET {path}", 0) > 0  # the burst really hit the batch's path
    assert drig.posts(flavour, first) + drig.posts(flavour, second) == 1
    assert [(b["id"], b["state"]) for b in drig.batches(flavour, f"{prefix}-")] == [(batch["id"], "success")]


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
def test_fabric_dag_timeout_deletes_the_batch_which_ends_cancelled(drig: DialectRig) -> None:
    """The task's own deadline passes while the trigger watches: ``execute_complete`` sends one
    DELETE to Fabric's batch path, and Fabric keeps the record as killed with result Cancelled."""
    box = drig.box
    spec = BatchSpec(file=box.examples["sleep_py"], args=("120",), name="sleepy-fabric")
    drig.export("fabric", "timeout_fabric", spec, retries=0, timeout=3)
    box.clear_faults()  # resets the request counts
    run = drig.rig.dags_test("timeout_fabric")
    counts = box.request_counts()
    out = output(run)
    assert "still" in out and "after 3 s" in out, out[-4000:]
    [batch] = drig.batches("fabric", "sleepy-fabric-")
    base = dialect_profile(box, "fabric").base_url.removeprefix(box.url)
    assert counts.get(f"DELETE {base}/batches/{batch['id']}") == 1, counts
    with drig.client("fabric") as client:
        final = client.get_batch(batch["id"])
    assert final.state.value == "killed" and final.result == "Cancelled"


@pytest.fixture(scope="module")
def drig2(
    tmp_path_factory: pytest.TempPathFactory, dialect_auth_sandbox: SandboxHandle, airflow_db: AirflowDb
) -> DialectRig:
    box = dialect_auth_sandbox
    root = tmp_path_factory.mktemp("airflow2-dialects")
    return DialectRig(make_rig("2", root, box, Identity.of_sandbox(box), airflow_db), box)


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.sandbox
def test_fabric_embedded_dag_on_airflow_2_10_runs_without_the_package_with_the_uuid_in_xcom(drig2: DialectRig) -> None:
    """The self-contained file carries the dialect code it needs (ids, list shape, the monitoring
    API's log reader): it runs on Fabric with hdiaks_widgets hidden from Airflow, here on Airflow 2.10
    (Airflow 3 runs the thin DAGs above; one Spark run covers both the embedding and the old Airflow)."""
    spec = BatchSpec(file=drig2.box.examples["pi_py"], args=("2",), name="emb2-fabric")
    drig2.export("fabric", "emb2_fabric", spec, embed=True)
    run = drig2.rig.dags_test("emb2_fabric", hide_package=True)
    out = output(run)
    assert run.returncode == 0, out[-4000:]
    assert "Pi is roughly" in out
    [batch] = drig2.batches("fabric", "emb2-fabric-")
    assert batch["state"] == "success"
    assert drig2.xcom("emb2_fabric", "batch_id") == batch["id"] == str(uuid.UUID(batch["id"]))


def running(drig: DialectRig, flavour: str, prefix: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """The dialect's batch named ``prefix...`` once it is ``running`` (a wait, not a timing)."""
    deadline = time.monotonic() + 240
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = drig.batches(flavour, prefix)
        if found and found[0]["state"] == "running":
            return found[0]
        if proc.poll() is not None or (found and found[0]["state"] in ("success", "dead", "killed", "error")):
            break
        time.sleep(0.5)
    raise AssertionError(f"no running batch {prefix}*: {found}\n" + log.read_text(errors="replace")[-4000:])


# -- the setup sheet per flavour (no server) -------------------------------------------------------

SHEET_WS = "6f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f"
SHEET_PROFILES = {
    "fabric": ClusterProfile(name="f", flavour="fabric", workspace_id=SHEET_WS, lakehouse_id=LH),
    "synapse": ClusterProfile(name="s", flavour="synapse", workspace="myws", pool="pool1"),
    "hdinsight-entra": ClusterProfile(name="h", flavour="hdinsight", fqdn="mycluster", auth="entra", tenant_id="t"),
    "hdinsight-basic": ClusterProfile(name="b", flavour="hdinsight", fqdn="mycluster", auth="basic", username="admin"),
    "livy": ClusterProfile(name="l", flavour="livy", url="https://livy.example:8998", auth="none"),
}
ENTRA_SECRETS = ["api-client-id", "api-secret"]
# flavour: (secrets that must be set, secrets never listed, what the roles say, what the switches say)
SHEET_FACTS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "fabric": (ENTRA_SECRETS, ["livy-password"], ["Workspace role **Contributor** or higher", SHEET_WS],
               ["**Service principals can use Fabric APIs**", "**Livy API**", "not verified"]),
    "synapse": (ENTRA_SECRETS, ["livy-password"], ["**Synapse Compute Operator**", "`myws`", "`pool1`",
                                                   "**Storage Blob Data Contributor**"],
                ["No tenant switch is documented", "myws.dev.azuresynapse.net"]),
    "hdinsight-entra": (ENTRA_SECRETS, ["livy-password"], ["**object id**", "**Cluster Administrator**"],
                        ["authentication method is **Entra ID**", "clusteraccess.azurehdinsight.net"]),
    "hdinsight-basic": (["livy-password"], ["api-client-id", "api-secret", "tenant-id"],
                        ["cluster login (HTTP) user `admin`"], ["authentication method is **Basic**"]),
    "livy": ([], ["api-client-id", "api-secret", "livy-password"], ["None: the server asks for no credentials"],
             ["livy.server.csrf-protection.enabled"]),
}  # fmt: skip


def sheet_of(flavour: str) -> str:
    cfg = JobConfig(profile=SHEET_PROFILES[flavour], spec=BatchSpec(file="abfss://c@a.dfs.core.windows.net/app.py"))
    return render_setup_sheet(cfg, dag_id="spark_job")


def sheet_section(sheet: str, title: str) -> str:
    return sheet.split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("flavour", list(SHEET_FACTS))
def test_setup_sheet_names_the_key_vault_secrets_of_the_flavour(flavour: str) -> None:
    required, absent, _roles, _switches = SHEET_FACTS[flavour]
    secrets = sheet_section(sheet_of(flavour), "Key Vault secrets the DAG reads")
    for key in required:  # Airflow's AzureKeyVaultBackend name: <variables_prefix>-<key>
        assert f"| `{key}` | `hdinsight-aks-variables-{key}` | yes |" in secrets
        assert f"--name hdinsight-aks-variables-{key} --value '<{key}>'" in secrets
    for key in absent:
        assert f"`{key}`" not in secrets
    if not required:
        assert "az keyvault secret set" not in secrets and "needs no secret" in secrets


@pytest.mark.parametrize("flavour", list(SHEET_FACTS))
def test_setup_sheet_names_the_role_and_the_admin_switch_of_the_flavour(flavour: str) -> None:
    _required, _absent, roles, switches = SHEET_FACTS[flavour]
    service = access_of(SHEET_PROFILES[flavour]).service
    needs = sheet_section(sheet_of(flavour), f"What {service} needs")
    head, tail = needs.split("Admin switches:", 1)
    assert all(text in head for text in roles), head
    assert all(text in tail for text in switches), tail
    assert "(http" in needs or "([" in needs  # each fact carries its source


@pytest.mark.parametrize("flavour", list(SHEET_FACTS))
def test_setup_sheet_holds_no_secret_from_the_environment(flavour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_VAR_API_SECRET", "AIRFLOW_VAR_API-SECRET", "AIRFLOW_VAR_LIVY_PASSWORD", "AZURE_CLIENT_SECRET",
                 "HDIAKS_SANDBOX_HDINSIGHT_PASSWORD"):  # fmt: skip
        monkeypatch.setenv(name, CANARY)
    assert CANARY not in sheet_of(flavour)


@pytest.mark.parametrize("flavour", list(SHEET_FACTS))
def test_build_client_asks_for_exactly_the_variables_the_sheet_lists(flavour: str) -> None:
    profile = SHEET_PROFILES[flavour]
    listed = variables_for(profile)
    required = [key for key, must, _what in listed if must]
    cfg = JobConfig(profile=profile, spec=BatchSpec(file="abfss://c@a.dfs.core.windows.net/app.py"))
    values = {key: f"<{key}>" for key in required}
    build_client(cfg, Variables(values.get)).close()  # everything it needs is listed as required
    for key in required:
        with pytest.raises(MissingVariables, match=f"not set: {key}$"):
            build_client(cfg, Variables({k: v for k, v in values.items() if k != key}.get))
    assert {key for key, _must, _what in listed} <= {key for key, _r, _w in VARIABLES}


@pytest.mark.parametrize(
    ("flavour", "has_fqdn"), [("fabric", False), ("synapse", False), ("livy", False), ("hdinsight", True),
                              ("hdinsight-aks", True)],
)  # fmt: skip
def test_trigger_keys_offer_a_cluster_fqdn_only_where_the_flavour_has_one(flavour: str, has_fqdn: bool) -> None:
    keys = trigger_keys_for(flavour)
    assert ("spark_cluster_fqdn" in keys) is has_fqdn
    assert {"app_jar_path", "job_name", "class_name", "args"} <= set(keys)


TRIGGER_FORM = """
import json, sys
from hdiaks_widgets.airflow.operator import trigger_params
print(json.dumps({f: sorted(trigger_params({"profile": {"flavour": f}, "spec": {"file": "/x.py"}}))
                  for f in sys.argv[1:]}))
"""


@pytest.mark.airflow
def test_trigger_form_of_a_service_dag_has_no_cluster_fqdn(tmp_path: Path) -> None:
    python = venv_python("3")
    proc = subprocess.run([str(python), "-W", "ignore", "-c", TRIGGER_FORM, "fabric", "synapse", "hdinsight"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    forms = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "spark_cluster_fqdn" not in forms["fabric"] and "spark_cluster_fqdn" not in forms["synapse"]
    assert "spark_cluster_fqdn" in forms["hdinsight"] and "app_jar_path" in forms["fabric"]


@pytest.mark.parametrize("flavour", list(SHEET_FACTS))
def test_setup_sheet_lists_the_trigger_keys_of_the_flavour(flavour: str) -> None:
    keys = sheet_section(sheet_of(flavour), "Trigger with config")
    assert ("`spark_cluster_fqdn`" in keys) is flavour.startswith("hdinsight")
    assert "`app_jar_path`" in keys
