"""The sandbox's service dialects at their real paths: Fabric, Synapse, classic HDInsight.

Real sockets, real ``requests``, real Spark jobs (one at a time, each once, in module-scoped
fixtures), the real ``msal`` against the sandbox identity endpoint for the audience checks.
Listing tests fill a page cheaply with batches whose file does not exist (no Spark starts).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import msal
import pytest
import requests

if TYPE_CHECKING:
    from conftest import SandboxHandle

pytestmark = pytest.mark.sandbox

FABRIC_VERSION = "2023-12-01"
SYNAPSE_VERSION = "2020-12-01"
FABRIC_ERROR_KEYS = {"errorCode", "message", "requestId", "moreDetails"}
MISSING = "abfs://examples@sandbox.dfs.core.windows.net/does/not/exist.py"


# -- helpers ------------------------------------------------------------------------------------


class _Service:
    """What the Fabric and Synapse helpers share: requests with the helper's headers, submit
    (the POST answers ``accepted``), get, wait until finished, run (submit, then wait)."""

    accepted = 200

    def __init__(self, sandbox: SandboxHandle, headers: dict[str, str] | None = None) -> None:
        self.sandbox = sandbox
        self.headers = headers or {}

    @property
    def livy(self) -> str:
        raise NotImplementedError

    def _get_params(self) -> dict[str, str] | None:
        return None

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        with self.sandbox.http() as s:
            return s.request(method, url, headers=self.headers, timeout=30, **kw)

    def submit(self, body: dict[str, Any]) -> requests.Response:
        return self.request("POST", f"{self.livy}/batches", json=body)

    def get(self, batch_id: str | int) -> dict[str, Any]:
        answer = self.request("GET", f"{self.livy}/batches/{batch_id}", params=self._get_params())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait(self, batch_id: str | int, *, until: Callable[[dict[str, Any]], bool] | None = None,
             timeout: float = 180) -> dict[str, Any]:  # fmt: skip
        done = until or (lambda b: b["result"] != "Uncertain")
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get(batch_id)
            if done(batch):
                return batch
            assert time.monotonic() < deadline, f"batch {batch_id} still {batch['state']}"
            time.sleep(0.3)

    def run(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.submit(body)
        assert answer.status_code == self.accepted, answer.text
        return self.wait(answer.json()["id"])


class Fabric(_Service):
    """One lakehouse of the sandbox's Fabric dialect (fresh workspace and lakehouse ids)."""

    accepted = 202

    def __init__(self, sandbox: SandboxHandle, headers: dict[str, str] | None = None) -> None:
        super().__init__(sandbox, headers)
        self.ws, self.lh = str(uuid.uuid4()), str(uuid.uuid4())

    @property
    def livy(self) -> str:
        return f"{self.sandbox.url}/v1/workspaces/{self.ws}/lakehouses/{self.lh}/livyApi/versions/{FABRIC_VERSION}"

    def logs_url(self, livy_id: str, app_id: str) -> str:
        return (f"{self.sandbox.url}/v1/workspaces/{self.ws}/lakehouses/{self.lh}/livySessions/{livy_id}"
                f"/applications/{app_id}/logs")  # fmt: skip

    def log(self, batch: dict[str, Any], **params: Any) -> requests.Response:
        return self.request("GET", self.logs_url(batch["id"], batch["appId"]), params=params)


class Synapse(_Service):
    """One Spark pool of the sandbox's Synapse dialect (batches read with ``detailed=true``)."""

    def __init__(self, sandbox: SandboxHandle, pool: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(sandbox, headers)
        self.pool = pool

    @property
    def livy(self) -> str:
        return f"{self.sandbox.url}/livyApi/versions/{SYNAPSE_VERSION}/sparkPools/{self.pool}"

    def _get_params(self) -> dict[str, str] | None:
        return {"detailed": "true"}

    def driver_log(self, batch: dict[str, Any], name: str) -> requests.Response:
        url = (f"{self.sandbox.url}/sparkhistory/api/v1/sparkpools/{self.pool}/livyid/{batch['id']}"
               f"/applications/{batch['appId']}/driverlog/{name}/")  # fmt: skip
        return self.request("GET", url, params={"isDownload": "true"})


def _text(answer: requests.Response) -> str:
    assert answer.status_code == 200, answer.text
    return answer.content.decode("utf-8", errors="replace")


# -- Microsoft Fabric: real Spark jobs ------------------------------------------------------------


@pytest.fixture(scope="module")
def fabric(sandbox: SandboxHandle) -> Fabric:
    return Fabric(sandbox)


@pytest.fixture(scope="module")
def fabric_pi(fabric: Fabric) -> dict[str, Any]:
    sb = fabric.sandbox
    return fabric.run({"file": sb.examples["jar"], "className": sb.spark_pi_class, "args": [2], "name": "fabric-pi",
                       "conf": {"spark.targetLakehouse": fabric.lh}})  # fmt: skip


@pytest.fixture(scope="module")
def fabric_failed(fabric: Fabric) -> dict[str, Any]:
    return fabric.run({"file": fabric.sandbox.examples["fail_py"], "args": ["boom-fabric"]})


def test_fabric_submit_answers_202_with_a_uuid_and_submitting(fabric: Fabric) -> None:
    answer = fabric.submit({"file": MISSING})
    assert answer.status_code == 202
    batch = answer.json()
    assert str(uuid.UUID(batch["id"])) == batch["id"]
    assert batch["state"] == "submitting" and batch["result"] == "Uncertain"
    assert answer.headers["Location"].endswith(f"/batches/{batch['id']}")


@pytest.mark.spark
def test_fabric_spark_pi_succeeds_with_livy_info(fabric_pi: dict[str, Any]) -> None:
    assert fabric_pi["state"] == "success" and fabric_pi["result"] == "Succeeded"
    info = fabric_pi["livyInfo"]
    assert info["currentState"] == "success"
    assert info["startingAt"] <= info["runningAt"] <= info["successAt"]
    assert info["jobCreationRequest"]["className"] == "org.apache.spark.examples.SparkPi"
    assert fabric_pi["errorInfo"] == [] and fabric_pi["jobType"] == "SparkBatch"


@pytest.mark.spark
def test_fabric_driver_log_serves_the_jobs_output(fabric: Fabric, fabric_pi: dict[str, Any]) -> None:
    out = _text(fabric.log(fabric_pi, type="driver", fileName="stdout", isDownload="true"))
    assert any(line.startswith("Pi is roughly 3.1") for line in out.splitlines())


@pytest.mark.spark
def test_fabric_driver_log_byte_ranges_add_up_to_the_file(fabric: Fabric, fabric_pi: dict[str, Any]) -> None:
    meta = fabric.log(fabric_pi, type="driver", fileName="stderr", meta="true").json()
    length = meta["containerLogMeta"]["length"]
    assert meta["containerLogMeta"]["fileName"] == "stderr" and length > 0
    whole = fabric.log(fabric_pi, type="driver", fileName="stderr", isDownload="true").content
    parts = b"".join(
        fabric.log(fabric_pi, type="driver", fileName="stderr", isDownload="true", isPartial="true",
                   offset=offset, size=1000).content  # fmt: skip
        for offset in range(0, length, 1000)
    )
    assert parts == whole and len(whole) == length


@pytest.mark.spark
def test_fabric_livy_log_is_at_applications_none(fabric: Fabric, fabric_pi: dict[str, Any]) -> None:
    url = fabric.logs_url(fabric_pi["id"], "none")
    meta = fabric.request("GET", url, params={"type": "livy", "meta": "true"}).json()
    assert meta["fileName"] == "livy.log" and meta["length"] > 0
    text = _text(fabric.request("GET", url, params={"type": "livy", "isDownload": "true"}))
    assert text.startswith("stdout: ")


@pytest.mark.spark
def test_fabric_failing_job_has_error_info_and_its_error_in_the_driver_log(
    fabric: Fabric, fabric_failed: dict[str, Any]
) -> None:
    assert fabric_failed["state"] == "dead" and fabric_failed["result"] == "Failed"
    (error,) = fabric_failed["errorInfo"]
    assert "RuntimeError: sandbox example failure: boom-fabric" in error["message"]
    assert error["errorCode"] == "Spark_Unknown_Unknown_RuntimeError" and error["source"] == "Unknown"
    text = "".join(_text(fabric.log(fabric_failed, type="driver", fileName=name)) for name in ("stdout", "stderr"))
    assert "RuntimeError: sandbox example failure: boom-fabric" in text


@pytest.mark.spark
def test_fabric_kill_gives_result_cancelled(fabric: Fabric) -> None:
    answer = fabric.submit({"file": fabric.sandbox.examples["sleep_py"], "args": ["300"]})
    batch_id = answer.json()["id"]
    fabric.wait(batch_id, until=lambda b: b["state"] == "running")
    assert fabric.request("DELETE", f"{fabric.livy}/batches/{batch_id}").status_code == 200
    batch = fabric.get(batch_id)
    assert batch["state"] == "killed" and batch["result"] == "Cancelled"
    assert batch["livyInfo"]["killedAt"] is not None


# -- Fabric: the API's shape ------------------------------------------------------------------------


def test_fabric_list_pages_at_the_page_limit(sandbox: SandboxHandle) -> None:
    fabric = Fabric(sandbox)
    made = [fabric.submit({"file": MISSING, "name": f"n{i}"}).json()["id"] for i in range(101)]
    first = fabric.request("GET", f"{fabric.livy}/batches", params={"$top": 500}).json()
    assert first["pageSize"] == 100 and first["totalCountOfMatchedItems"] == 101 and len(first["items"]) == 100
    rest = fabric.request("GET", f"{fabric.livy}/batches", params={"$top": 100, "$skip": 100}).json()
    assert len(rest["items"]) == 1
    seen = [item["id"] for item in first["items"] + rest["items"]]
    assert sorted(seen) == sorted(made)
    assert seen[0] == made[-1]  # newest first


def test_fabric_list_items_are_activity_summaries(sandbox: SandboxHandle) -> None:
    fabric = Fabric(sandbox)
    batch_id = fabric.submit({"file": MISSING}).json()["id"]
    fabric.wait(batch_id)
    (item,) = fabric.request("GET", f"{fabric.livy}/batches").json()["items"]
    assert item["id"] == batch_id and item["workspaceId"] == fabric.ws
    assert item["livyState"] == "not_submitted" and item["result"] == "Failed" and "state" not in item


@pytest.mark.parametrize("field", ["proxyUser", "queue", "executorCount"])
def test_fabric_refuses_fields_of_no_batch_request(sandbox: SandboxHandle, field: str) -> None:
    fabric = Fabric(sandbox)
    answer = fabric.submit({"file": MISSING, field: "x"})
    assert answer.status_code == 400
    assert set(answer.json()) == FABRIC_ERROR_KEYS and field in answer.json()["message"]
    assert fabric.request("GET", f"{fabric.livy}/batches").json()["totalCountOfMatchedItems"] == 0


def test_fabric_refuses_another_target_lakehouse(sandbox: SandboxHandle) -> None:
    fabric = Fabric(sandbox)
    answer = fabric.submit({"file": MISSING, "conf": {"spark.targetLakehouse": str(uuid.uuid4())}})
    assert answer.status_code == 400 and "spark.targetLakehouse" in answer.json()["message"]


@pytest.mark.parametrize("suffix", ["/state", "/log"])
def test_fabric_has_no_state_or_log_endpoint(sandbox: SandboxHandle, suffix: str) -> None:
    fabric = Fabric(sandbox)
    batch_id = fabric.submit({"file": MISSING}).json()["id"]
    answer = fabric.request("GET", f"{fabric.livy}/batches/{batch_id}{suffix}")
    assert answer.status_code == 404 and set(answer.json()) == FABRIC_ERROR_KEYS


@pytest.mark.parametrize("ids", [("not-a-guid", None), (None, "12345")], ids=["workspace", "lakehouse"])
def test_fabric_ids_in_the_path_must_be_guids(sandbox: SandboxHandle, ids: tuple[str | None, str | None]) -> None:
    fabric = Fabric(sandbox)
    fabric.ws, fabric.lh = ids[0] or fabric.ws, ids[1] or fabric.lh
    answer = fabric.request("GET", f"{fabric.livy}/batches")
    assert answer.status_code == 400 and answer.json()["errorCode"] == "InvalidInput"


def test_fabric_unknown_batch_is_404(sandbox: SandboxHandle) -> None:
    fabric = Fabric(sandbox)
    answer = fabric.request("GET", f"{fabric.livy}/batches/{uuid.uuid4()}")
    assert answer.status_code == 404 and answer.json()["errorCode"] == "EntityNotFound"


def test_fabric_capacity_full_answers_430_and_creates_no_batch(sandbox_faults: SandboxHandle) -> None:
    fabric = Fabric(sandbox_faults)
    sandbox_faults.set_faults({"kind": "status", "status": 430, "methods": ["POST"], "path_prefix": "/v1/workspaces/"})
    answer = fabric.submit({"file": MISSING})
    assert answer.status_code == 430 and "Retry-After" not in answer.headers
    body = answer.json()
    assert set(body) == FABRIC_ERROR_KEYS and body["errorCode"] == "TooManyRequestsForCapacity"
    assert fabric.request("GET", f"{fabric.livy}/batches").json()["totalCountOfMatchedItems"] == 0


def test_fabric_list_throttled_answers_429_with_retry_after(sandbox_faults: SandboxHandle) -> None:
    fabric = Fabric(sandbox_faults)
    sandbox_faults.set_faults({"kind": "status", "status": 429, "retry_after": 7, "methods": ["GET"],
                               "path_prefix": "/v1/workspaces/"})  # fmt: skip
    answer = fabric.request("GET", f"{fabric.livy}/batches")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert answer.json()["errorCode"] == "RequestBlocked"
    assert fabric.request("GET", f"{fabric.livy}/batches").status_code == 200  # one shot


# -- Azure Synapse: real Spark jobs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def synapse(sandbox: SandboxHandle) -> Synapse:
    return Synapse(sandbox, "pool1")


@pytest.fixture(scope="module")
def synapse_pi(synapse: Synapse) -> dict[str, Any]:
    return synapse.run({"name": "synapse-pi", "file": synapse.sandbox.examples["pi_py"], "args": ["2"]})


@pytest.fixture(scope="module")
def synapse_failed(synapse: Synapse) -> dict[str, Any]:
    return synapse.run({"name": "synapse-fail", "file": synapse.sandbox.examples["fail_py"], "args": ["boom-syn"]})


@pytest.mark.spark
def test_synapse_spark_pi_succeeds_with_livy_info(synapse_pi: dict[str, Any]) -> None:
    assert isinstance(synapse_pi["id"], int)
    assert synapse_pi["state"] == "success" and synapse_pi["result"] == "Succeeded"
    assert synapse_pi["livyInfo"]["successAt"] is not None and synapse_pi["sparkPoolName"] == "pool1"


@pytest.mark.spark
def test_synapse_driver_log_serves_the_jobs_output(synapse: Synapse, synapse_pi: dict[str, Any]) -> None:
    out = _text(synapse.driver_log(synapse_pi, "stdout"))
    assert any(line.startswith("Pi is roughly 3.1") for line in out.splitlines())


@pytest.mark.spark
def test_synapse_plain_answer_has_only_livys_fields(synapse: Synapse, synapse_pi: dict[str, Any]) -> None:
    plain = synapse.request("GET", f"{synapse.livy}/batches/{synapse_pi['id']}").json()
    assert "result" not in plain and "livyInfo" not in plain and plain["state"] == "success"


@pytest.mark.spark
def test_synapse_failing_job_has_error_info_and_its_error_in_the_driver_log(
    synapse: Synapse, synapse_failed: dict[str, Any]
) -> None:
    assert synapse_failed["result"] == "Failed"
    assert "sandbox example failure: boom-syn" in synapse_failed["errorInfo"][0]["message"]
    text = _text(synapse.driver_log(synapse_failed, "stdout")) + _text(synapse.driver_log(synapse_failed, "stderr"))
    assert "RuntimeError: sandbox example failure: boom-syn" in text


@pytest.mark.spark
def test_synapse_kill_gives_result_cancelled(synapse: Synapse) -> None:
    answer = synapse.submit({"name": "synapse-sleep", "file": synapse.sandbox.examples["sleep_py"], "args": ["300"]})
    batch_id = answer.json()["id"]
    synapse.wait(batch_id, until=lambda b: b["state"] == "running")
    assert synapse.request("DELETE", f"{synapse.livy}/batches/{batch_id}").status_code == 200
    batch = synapse.get(batch_id)
    assert batch["state"] == "killed" and batch["result"] == "Cancelled"


# -- Synapse: the API's shape -------------------------------------------------------------------


def test_synapse_list_pages_at_most_20(sandbox: SandboxHandle) -> None:
    synapse = Synapse(sandbox, "listpool")
    made = [synapse.submit({"name": f"b{i}", "file": MISSING}).json()["id"] for i in range(21)]
    first = synapse.request("GET", f"{synapse.livy}/batches", params={"size": 20}).json()
    assert first["total"] == 21 and len(first["sessions"]) == 20
    rest = synapse.request("GET", f"{synapse.livy}/batches", params={"from": 20, "size": 20}).json()
    assert [b["id"] for b in first["sessions"] + rest["sessions"]] == made
    assert synapse.request("GET", f"{synapse.livy}/batches").json()["sessions"] == first["sessions"]


def test_synapse_list_refuses_size_above_20(sandbox: SandboxHandle) -> None:
    answer = Synapse(sandbox, "pool1").request("GET", f"{sandbox.url}/livyApi/versions/{SYNAPSE_VERSION}"
                                               "/sparkPools/pool1/batches", params={"size": 21})  # fmt: skip
    assert answer.status_code == 400 and set(answer.json()) == {"TraceId", "Message"}


@pytest.mark.parametrize("missing", ["name", "file"])
def test_synapse_requires_name_and_file(sandbox: SandboxHandle, missing: str) -> None:
    synapse = Synapse(sandbox, "reqpool")
    body = {"name": "x", "file": MISSING}
    del body[missing]
    answer = synapse.submit(body)
    assert answer.status_code == 400 and missing in answer.json()["Message"]
    assert synapse.request("GET", f"{synapse.livy}/batches").json()["total"] == 0


@pytest.mark.parametrize("suffix", ["/state", "/log"])
def test_synapse_has_no_state_or_log_endpoint(sandbox: SandboxHandle, suffix: str) -> None:
    synapse = Synapse(sandbox, "nopool")
    batch_id = synapse.submit({"name": f"s{suffix[1:]}", "file": MISSING}).json()["id"]
    answer = synapse.request("GET", f"{synapse.livy}/batches/{batch_id}{suffix}")
    assert answer.status_code == 404 and set(answer.json()) == {"TraceId", "Message"}


def test_synapse_refuses_a_malformed_pool_name(sandbox: SandboxHandle) -> None:
    answer = Synapse(sandbox, "no_such-pool").request(
        "GET", f"{sandbox.url}/livyApi/versions/{SYNAPSE_VERSION}/sparkPools/no_such-pool/batches")
    assert answer.status_code == 400


def test_synapse_batches_are_not_apache_livys(sandbox: SandboxHandle) -> None:
    synapse = Synapse(sandbox, "ownpool")
    batch_id = synapse.submit({"name": "own", "file": MISSING}).json()["id"]
    with sandbox.http() as s:
        assert s.get(f"{sandbox.url}/batches/{batch_id}", timeout=10).status_code == 404


# -- classic HDInsight: Apache Livy under /livy with CSRF -------------------------------------------


@pytest.mark.spark
def test_hdinsight_pyspark_pi_succeeds_under_livy(sandbox: SandboxHandle) -> None:
    with sandbox.http() as s:
        answer = s.post(f"{sandbox.url}/livy/batches", json={"file": sandbox.examples["pi_py"], "args": ["2"]},
                        headers={"X-Requested-By": "admin"}, timeout=30)  # fmt: skip
        assert answer.status_code == 201, answer.text
        batch_id = answer.json()["id"]
        deadline = time.monotonic() + 180
        while (state := s.get(f"{sandbox.url}/livy/batches/{batch_id}/state", timeout=10).json()["state"]) not in (
            "success", "dead", "killed"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert state == "success"
        log = s.get(f"{sandbox.url}/livy/batches/{batch_id}/log", params={"size": -1}, timeout=10).json()["log"]
    assert any(line.startswith("Pi is roughly 3.1") for line in log)


def test_hdinsight_requires_x_requested_by(sandbox: SandboxHandle) -> None:
    with sandbox.http() as s:
        answer = s.post(f"{sandbox.url}/livy/batches", json={"file": MISSING}, timeout=30)
    assert answer.status_code == 400 and answer.json() == {"msg": "Missing Required Header for CSRF protection."}


def test_hdinsight_basic_auth_takes_only_the_cluster_login(sandbox_factory: Callable[..., SandboxHandle]) -> None:
    box = sandbox_factory(hdinsight_auth="basic", hdinsight_password="pw-not-a-secret")
    with box.http() as s:
        url = f"{box.url}/livy/batches"
        missing = s.get(url, timeout=10)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Basic ")
        assert s.get(url, auth=("admin", "wrong"), timeout=10).status_code == 401
        assert s.get(url, auth=("admin", "pw-not-a-secret"), timeout=10).json()["total"] == 0
        assert s.get(f"{box.url}/batches", timeout=10).status_code == 200  # Apache Livy's routes: no auth


# -- per-audience tokens (real msal against the sandbox identity endpoint) ----------------------------


@pytest.fixture(scope="module")
def tokens(dialect_auth_sandbox: SandboxHandle) -> Iterator[Callable[[str], dict[str, str]]]:
    """``tokens(resource)`` -> an Authorization header for that resource, from the sandbox
    identity endpoint through ``msal`` (the vault reader is a confidential client there)."""
    endpoints = dialect_auth_sandbox.process.endpoints()
    env = endpoints["environment"]
    http = requests.Session()
    http.trust_env = False  # this machine's proxy and CA variables must not apply to loopback
    http.verify = endpoints["ca_pem"]
    app = msal.ConfidentialClientApplication(
        env["AZURE_CLIENT_ID"], client_credential=env["AZURE_CLIENT_SECRET"],
        authority=f"{endpoints['authority_host']}/{env['AZURE_TENANT_ID']}", instance_discovery=False, http_client=http,
    )  # fmt: skip

    def token(resource: str) -> dict[str, str]:
        result = app.acquire_token_for_client(scopes=[f"{resource}/.default"])
        assert "access_token" in result, result
        return {"Authorization": f"Bearer {result['access_token']}"}

    yield token
    http.close()


FABRIC_AUD = "https://api.fabric.microsoft.com"
SYNAPSE_AUD = "https://dev.azuresynapse.net"
HDI_AUD = "https://mycluster.clusteraccess.azurehdinsight.net"


def test_fabric_takes_its_own_audience(dialect_auth_sandbox: SandboxHandle, tokens: Callable[..., Any]) -> None:
    fabric = Fabric(dialect_auth_sandbox, tokens(FABRIC_AUD))
    assert fabric.request("GET", f"{fabric.livy}/batches").status_code == 200


def test_fabric_takes_the_power_bi_audience(dialect_auth_sandbox: SandboxHandle, tokens: Callable[..., Any]) -> None:
    fabric = Fabric(dialect_auth_sandbox, tokens("https://analysis.windows.net/powerbi/api"))
    assert fabric.request("GET", f"{fabric.livy}/batches").status_code == 200


def test_fabric_refuses_a_synapse_token_naming_its_audience(
    dialect_auth_sandbox: SandboxHandle, tokens: Callable[..., Any]
) -> None:
    fabric = Fabric(dialect_auth_sandbox, tokens(SYNAPSE_AUD))
    answer = fabric.submit({"file": MISSING})
    assert answer.status_code == 401 and set(answer.json()) == FABRIC_ERROR_KEYS
    assert FABRIC_AUD in answer.json()["message"]
    fabric.headers = tokens(FABRIC_AUD)
    assert fabric.request("GET", f"{fabric.livy}/batches").json()["totalCountOfMatchedItems"] == 0


def test_synapse_refuses_a_fabric_token_naming_its_audience(
    dialect_auth_sandbox: SandboxHandle, tokens: Callable[..., Any]
) -> None:
    synapse = Synapse(dialect_auth_sandbox, "authpool", tokens(FABRIC_AUD))
    answer = synapse.request("GET", f"{synapse.livy}/batches")
    assert answer.status_code == 401 and answer.json()["code"] == "InvalidTokenAuthenticationAudience"
    assert SYNAPSE_AUD in answer.json()["message"]
    synapse.headers = tokens(SYNAPSE_AUD)
    assert synapse.request("GET", f"{synapse.livy}/batches").status_code == 200


def test_synapse_refuses_a_request_without_token(dialect_auth_sandbox: SandboxHandle) -> None:
    answer = Synapse(dialect_auth_sandbox, "authpool").request(
        "GET", f"{dialect_auth_sandbox.url}/livyApi/versions/{SYNAPSE_VERSION}/sparkPools/authpool/batches")
    assert answer.status_code == 401


def test_hdinsight_entra_takes_only_the_cluster_audience(
    dialect_auth_sandbox: SandboxHandle, tokens: Callable[..., Any]
) -> None:
    with dialect_auth_sandbox.http() as s:
        url = f"{dialect_auth_sandbox.url}/livy/batches"
        wrong = s.get(url, headers=tokens(FABRIC_AUD), timeout=10)
        assert wrong.status_code == 401 and HDI_AUD in wrong.json()["msg"]
        assert s.get(url, headers=tokens(HDI_AUD), timeout=10).status_code == 200


def test_apache_livy_routes_keep_their_audience_rule(
    dialect_auth_sandbox: SandboxHandle, tokens: Callable[..., Any]
) -> None:
    # --auth without --bearer-audience: any token of the sandbox identity endpoint, as before.
    with dialect_auth_sandbox.http() as s:
        assert s.get(f"{dialect_auth_sandbox.url}/batches", headers=tokens(SYNAPSE_AUD), timeout=10).status_code == 200
        assert s.get(f"{dialect_auth_sandbox.url}/batches", timeout=10).status_code == 401


def test_sandbox_info_names_the_dialect_paths(sandbox: SandboxHandle) -> None:
    with sandbox.http() as s:
        info = s.get(f"{sandbox.url}/_sandbox/info", timeout=10).json()["dialects"]
    assert info["fabric"]["livy"].endswith("/livyApi/versions/{v}")
    assert info["synapse"]["max_page_size"] == 20 and info["hdinsight"]["livy"] == f"{sandbox.url}/livy"
    assert sandbox.options["dialects"] == info
