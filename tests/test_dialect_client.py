"""LivyClient and BatchRun speaking each dialect, against the sandbox's real dialect paths.

Real sockets, real Spark (one job at a time), the real ``msal`` (through ``ServicePrincipalAuth``)
against the sandbox identity endpoint for the audience checks. Listing tests fill pages cheaply
with batches whose file does not exist (no Spark starts). A few decisions that need an exact
request script (an older Apache Livy without ``/version``) use the in-memory Livy beside them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import SandboxHandle
from livy_memory import BASE_URL, MemoryLivy, memory_session, respond

from hdiaks_widgets import dialects
from hdiaks_widgets.auth import ServicePrincipalAuth
from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.errors import (
    BatchFailed,
    BatchNotFound,
    CapacityFull,
    ConfigError,
    LivyHTTPError,
    NotSupported,
)
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.logview import LivyLogReader
from hdiaks_widgets.models import Batch, BatchState
from hdiaks_widgets.monitor import BatchMonitor, follow_batch
from hdiaks_widgets.run import BatchRun, ServiceLogReader, Snapshot, describe_error

FAST = RetryPolicy(total=4, backoff_factor=0.01, backoff_jitter=0.0, backoff_max=0.1)
MISSING = "abfs://examples@sandbox.dfs.core.windows.net/does/not/exist.py"
FABRIC_AUD = "https://api.fabric.microsoft.com"
SYNAPSE_AUD = "https://dev.azuresynapse.net"


# -- clients of each dialect --------------------------------------------------------------------


def fabric(box: SandboxHandle, **kw: Any) -> LivyClient:
    """A client of a fresh Fabric lakehouse (its own scope: its list starts empty)."""
    base = dialects.fabric_base_url(str(uuid.uuid4()), str(uuid.uuid4()), host=box.url)
    return LivyClient(base, dialect="fabric", retry=kw.pop("retry", FAST), **kw)


def synapse(box: SandboxHandle, pool: str | None = None, **kw: Any) -> LivyClient:
    pool = pool or f"p{uuid.uuid4().hex[:12]}"
    base = dialects.synapse_base_url("sandboxws", pool, host=box.url)
    return LivyClient(base, dialect=dialects.dialect_of("synapse"), retry=kw.pop("retry", FAST), **kw)


def hdinsight(box: SandboxHandle, **kw: Any) -> LivyClient:
    return LivyClient(f"{box.url}/livy", dialect="hdinsight", retry=kw.pop("retry", FAST), **kw)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _counts(box: SandboxHandle, needle: str) -> dict[str, int]:
    return {k: v for k, v in box.request_counts().items() if needle in k}


def _wait_until(run: BatchRun, state: BatchState, timeout: float = 180) -> Snapshot:
    deadline = time.monotonic() + timeout
    while True:
        snap = run.poll()
        if snap.state is state:
            return snap
        assert not snap.finished and time.monotonic() < deadline, snap
        time.sleep(0.3)


CLIENTS: dict[str, Callable[[SandboxHandle], LivyClient]] = {
    "fabric": fabric, "synapse": synapse, "hdinsight": hdinsight,
}  # fmt: skip


# -- real Spark jobs per dialect -------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def dialect_client(request: pytest.FixtureRequest, sandbox: SandboxHandle) -> Iterator[LivyClient]:
    with CLIENTS[request.param](sandbox) as client:
        yield client


@pytest.mark.spark
def test_dialect_client_run_succeeds_and_keeps_its_id_as_text(
    dialect_client: LivyClient, sandbox: SandboxHandle
) -> None:
    spec = BatchSpec(file=sandbox.examples["pi_py"], args=("2",), name=_name("pi"))
    run = BatchRun.submit(dialect_client, spec)
    snap = run.wait(timeout=240, interval=0.3)
    assert snap.finished and snap.succeeded, snap.error
    assert isinstance(run.batch_id, str) and snap.batch is not None and snap.batch.id == run.batch_id
    if dialect_client.dialect.id_kind == "uuid":
        assert dialects.is_guid(run.batch_id)
    else:
        assert run.batch_id.isdigit()
    again = dialect_client.get_batch(run.batch_id)
    assert again.id == run.batch_id and again.name == spec.name
    if dialect_client.dialect.has_result:  # Fabric, Synapse: result and livyInfo times
        assert again.result == "Succeeded"
        assert again.submitted_at is not None and again.started_at is not None and again.ended_at is not None
        assert again.submitted_at <= again.started_at <= again.ended_at
    else:  # Apache Livy sends no times
        assert (again.result, again.submitted_at, again.ended_at) == (None, None, None)
    listed = [b.id for b in dialect_client.iter_batches()]
    assert run.batch_id in listed
    # The driver's own output: Livy's view, or the service's log endpoint (logview's reader).
    assert any(line.startswith("Pi is roughly 3.1") for line in snap.lines), snap.log_note
    if not dialect_client.dialect.has_log_endpoint:
        assert {getattr(line, "source", None) for line in snap.lines} <= {"driver stdout", "driver stderr"}


@pytest.mark.spark
def test_dialect_client_failing_job_is_dead_with_its_error(dialect_client: LivyClient, sandbox: SandboxHandle) -> None:
    marker = f"boom-{dialect_client.dialect.name}"
    spec = BatchSpec(file=sandbox.examples["fail_py"], args=(marker,), name=_name("fail"))
    run = BatchRun.submit(dialect_client, spec)
    snap = run.wait(timeout=240, interval=0.3)
    assert snap.finished and snap.state is BatchState.DEAD and snap.error_kind == "failed"
    expected = f"RuntimeError: sandbox example failure: {marker}"
    assert snap.error is not None and expected in snap.error
    with pytest.raises(BatchFailed) as failed:
        snap.raise_for_state()
    assert any(expected in line for line in failed.value.log_lines)
    if dialect_client.dialect.has_result:
        assert snap.batch is not None and snap.batch.result == "Failed"
        assert snap.batch.error is not None and expected in snap.batch.error


@pytest.mark.spark
def test_dialect_client_kill_ends_the_job_killed(dialect_client: LivyClient, sandbox: SandboxHandle) -> None:
    spec = BatchSpec(file=sandbox.examples["sleep_py"], args=("300",), name=_name("sleep"))
    run = BatchRun.submit(dialect_client, spec)
    _wait_until(run, BatchState.RUNNING)
    run.kill()
    snap = run.wait(timeout=60, interval=0.3)
    assert snap.finished
    if dialect_client.dialect.has_result:  # the services keep the record: killed, Cancelled
        assert snap.state is BatchState.KILLED and snap.batch is not None and snap.batch.result == "Cancelled"
        assert dict(snap.batch.state_times).get("killed") is not None
    else:  # Apache Livy forgets a deleted batch at once
        assert snap.purged and snap.error is not None and "was killed" in snap.error


# -- listing at the page limit (no Spark: the files do not exist) ------------------------------------


def test_fabric_list_batches_pages_past_the_limit_of_100(sandbox_faults: SandboxHandle) -> None:
    with fabric(sandbox_faults) as client:
        made = {client.submit_batch(BatchSpec(file=MISSING)).id for _ in range(101)}
        path = client.base_url.removeprefix(sandbox_faults.url) + "/batches"
        sandbox_faults.clear_faults()  # the counts from here on
        page = client.list_batches(size=150)
        assert page.total == 101 and {b.id for b in page.batches} == made and len(page.batches) == 101
        assert sandbox_faults.request_counts()[f"GET {path}"] == 2  # $top=100, then $top=50&$skip=100
        assert all(isinstance(b.id, str) and dialects.is_guid(b.id) for b in page.batches)
        assert {b.id for b in client.iter_batches()} == made
        # Activity summaries carry livyState and result: the file was missing, spark-submit never ran.
        assert client.list_batches(size=1).batches[0].state in (BatchState.DEAD, BatchState.NOT_STARTED,
                                                                BatchState.STARTING)


def test_synapse_list_batches_pages_past_the_limit_of_20(sandbox_faults: SandboxHandle) -> None:
    with synapse(sandbox_faults) as client:
        made = [client.submit_batch(BatchSpec(file=MISSING, name=f"b{i}")).id for i in range(21)]
        path = client.base_url.removeprefix(sandbox_faults.url) + "/batches"
        sandbox_faults.clear_faults()
        page = client.list_batches(size=100)  # Synapse refuses size > 20: two pages of 20 and 1
        assert [b.id for b in page.batches] == made and page.total == 21
        assert sandbox_faults.request_counts()[f"GET {path}"] == 2
        assert [b.id for b in client.list_batches(start=20, size=5).batches] == made[20:]


# -- bodies refused before any request --------------------------------------------------------------


def test_synapse_without_a_name_is_refused_before_any_request(sandbox_faults: SandboxHandle) -> None:
    with synapse(sandbox_faults) as client, pytest.raises(ConfigError) as refused:
        client.submit_batch(BatchSpec(file=MISSING))
    assert refused.value.fields == ("spec.name",) and "Synapse requires a batch name" in str(refused.value)
    assert _counts(sandbox_faults, "/livyApi/") == {}


@pytest.mark.parametrize("field", ["proxy_user", "queue"])
def test_fabric_refuses_proxy_user_and_queue_before_any_request(sandbox_faults: SandboxHandle, field: str) -> None:
    base = BatchSpec(file=MISSING, name=_name("x"))
    spec = replace(base, proxy_user="someone") if field == "proxy_user" else replace(base, queue="someone")
    with fabric(sandbox_faults) as client, pytest.raises(ConfigError) as refused:
        client.submit_batch(spec)
    assert refused.value.fields == (f"spec.{field}",) and "Fabric does not take" in str(refused.value)
    assert _counts(sandbox_faults, "/v1/workspaces/") == {}


def test_fabric_submit_sets_the_lakehouse_of_the_url(sandbox: SandboxHandle) -> None:
    with fabric(sandbox) as client:
        batch = client.submit_batch(BatchSpec(file=MISSING, name=_name("lh")))
        assert batch.state in (BatchState.STARTING, BatchState.NOT_STARTED)  # "submitting" in the 202
        lakehouse = dialects.fabric_lakehouse(client.base_url)
        with sandbox.http() as s:
            raw = s.get(f"{client.base_url}/batches/{batch.id}", timeout=10).json()
    assert raw["livyInfo"]["jobCreationRequest"]["conf"]["spark.targetLakehouse"] == lakehouse


# -- throttling -------------------------------------------------------------------------------------


def test_fabric_capacity_full_is_one_sentence_and_creates_no_batch(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "status", "status": 430, "methods": ["POST"], "path_prefix": "/v1/workspaces/",
                               "count": None})  # fmt: skip
    name = _name("capacity")
    with fabric(sandbox_faults) as client:
        with pytest.raises(CapacityFull) as full:
            BatchRun.submit(client, BatchSpec(file=MISSING, name=name))
        message = str(full.value)
        assert message.startswith("the Fabric capacity is full:") and "retry later" in message
        assert "bigger capacity" in message and full.value.status == 430
        assert describe_error(full.value)[0] == "server"
        posts = {k: v for k, v in _counts(sandbox_faults, "/v1/workspaces/").items() if k.startswith("POST")}
        assert list(posts.values()) == [1]  # refused once, never resent
        assert client.list_batches().total == 0
        sandbox_faults.clear_faults()  # the capacity frees up: the same submit, once
        run = BatchRun.submit(client, BatchSpec(file=MISSING, name=name), reattach=True)
        assert [b.id for b in client.iter_batches() if b.name == name] == [run.batch_id]


def test_fabric_ambiguous_post_is_resolved_by_name_without_a_second_batch(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "drop_after", "methods": ["POST"], "path_prefix": "/v1/workspaces/"})
    name = _name("ambiguous")
    with fabric(sandbox_faults) as client:
        batch = client.submit_batch(BatchSpec(file=MISSING, name=name))
        assert batch.name == name and dialects.is_guid(batch.id)
        assert [b.id for b in client.iter_batches() if b.name == name] == [batch.id]


def test_fabric_get_backs_off_on_430_and_429_retry_after(sandbox_faults: SandboxHandle) -> None:
    with fabric(sandbox_faults) as client:
        path = client.base_url.removeprefix(sandbox_faults.url) + "/batches"
        sandbox_faults.set_faults({"kind": "status", "status": 430, "count": 2, "methods": ["GET"],
                                   "path_prefix": "/v1/workspaces/"})  # fmt: skip
        assert client.list_batches().total == 0
        assert sandbox_faults.request_counts()[f"GET {path}"] == 3
        sandbox_faults.clear_faults()
        sandbox_faults.set_faults({"kind": "status", "status": 429, "retry_after": 1, "methods": ["GET"],
                                   "path_prefix": "/v1/workspaces/"})  # fmt: skip
        started = time.monotonic()
        assert client.list_batches().total == 0
        assert time.monotonic() - started >= 0.9  # the Retry-After, not FAST's 0.01 s back-off
        assert sandbox_faults.request_counts()[f"GET {path}"] == 2


def test_fabric_post_retry_after_beyond_the_budget_is_not_waited_for(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "status", "status": 429, "retry_after": 30, "methods": ["POST"],
                               "path_prefix": "/v1/workspaces/"})  # fmt: skip
    started = time.monotonic()
    with fabric(sandbox_faults, retry=replace(FAST, budget=2.0)) as client, pytest.raises(LivyHTTPError) as refused:
        client.submit_batch(BatchSpec(file=MISSING))
    assert refused.value.status == 429 and time.monotonic() - started < 5
    assert "RequestBlocked" in str(refused.value)  # Fabric's error body, read by dialects.error_message


# -- endpoints the services do not have ---------------------------------------------------------------


def test_fabric_get_log_sends_nothing_and_says_where_logs_are(sandbox_faults: SandboxHandle) -> None:
    with fabric(sandbox_faults) as client:
        batch = client.submit_batch(BatchSpec(file=MISSING))
        sandbox_faults.clear_faults()
        with pytest.raises(NotSupported) as missing:
            client.get_log(batch.id)
        assert missing.value.feature == "log" and "log_location" in str(missing.value)
        assert client.get_batch_state(batch.id) in set(BatchState)
        counts = _counts(sandbox_faults, "/v1/workspaces/")
        assert list(counts) == [f"GET {client.base_url.removeprefix(sandbox_faults.url)}/batches/{batch.id}"]
        assert isinstance(BatchRun(client, batch.id).reader, ServiceLogReader)


def test_synapse_state_comes_from_the_detailed_batch(sandbox_faults: SandboxHandle) -> None:
    with synapse(sandbox_faults) as client:
        batch = client.submit_batch(BatchSpec(file=MISSING, name=_name("s")))
        deadline = time.monotonic() + 60
        while not (current := client.get_batch(batch.id)).state.is_terminal:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        sandbox_faults.clear_faults()
        assert client.get_batch_state(batch.id) is current.state
        assert current.result == "Failed" and current.error  # detailed=true: result and errorInfo
        assert not [k for k in _counts(sandbox_faults, "/livyApi/") if k.endswith(("/state", "/log"))]


def test_service_dialects_find_a_batch_by_name_in_the_list(sandbox: SandboxHandle) -> None:
    for make in (fabric, synapse):
        with make(sandbox) as client:
            name = _name("named")
            batch = client.submit_batch(BatchSpec(file=MISSING, name=name))
            found = client.find_batch(name)
            assert found is not None and found.id == batch.id
            assert BatchRun.attach(client, name).batch_id == batch.id
            assert client.find_batch(_name("nobody")) is None
            with pytest.raises(BatchNotFound):
                client.get_batch(_name("nobody"))


def test_log_location_from_the_clients_own_base_url() -> None:
    ws, lh = str(uuid.uuid4()), str(uuid.uuid4())
    fabric_client = LivyClient(dialects.fabric_base_url(ws, lh), dialect="fabric")
    batch_id = str(uuid.uuid4())
    where = fabric_client.log_location(Batch(id=batch_id, state=BatchState.RUNNING, app_id="application_1_0001"))
    assert (where.source, where.origin, where.workspace_id, where.lakehouse_id) == (
        "fabric-monitoring", "https://api.fabric.microsoft.com", ws, lh)
    assert where.url == (f"https://api.fabric.microsoft.com/v1/workspaces/{ws}/lakehouses/{lh}/livySessions/"
                         f"{batch_id}/applications/application_1_0001/logs")  # fmt: skip
    syn = LivyClient(dialects.synapse_base_url("myws", "pool1"), dialect="synapse")
    where = syn.log_location(Batch(id="12", state=BatchState.RUNNING, app_id="app-1"))
    assert (where.origin, where.pool) == ("https://myws.dev.azuresynapse.net", "pool1")
    assert where.url == ("https://myws.dev.azuresynapse.net/sparkhistory/api/v1/sparkpools/pool1/livyid/12/"
                         "applications/app-1/driverlog")  # fmt: skip
    assert syn.log_location(Batch(id="12", state=BatchState.STARTING)).url is None  # no application yet
    livy = LivyClient("http://127.0.0.1:8998")
    assert livy.log_location(Batch(id="3", state=BatchState.RUNNING)).source == "livy"


# -- wrong audience: real msal tokens for another resource ----------------------------------------------


@pytest.fixture(scope="module")
def token_for(dialect_auth_sandbox: SandboxHandle) -> Callable[[str], ServicePrincipalAuth]:
    endpoints = dialect_auth_sandbox.process.endpoints()
    env = endpoints["environment"]

    def auth(resource: str) -> ServicePrincipalAuth:
        return ServicePrincipalAuth(tenant_id=env["AZURE_TENANT_ID"], client_id=env["AZURE_CLIENT_ID"],
                                    client_secret=env["AZURE_CLIENT_SECRET"], scope=f"{resource}/.default",
                                    authority_host=endpoints["authority_host"], verify=endpoints["ca_pem"])  # fmt: skip

    return auth


@pytest.mark.sandbox
@pytest.mark.parametrize(("make", "wrong", "scope"), [(fabric, SYNAPSE_AUD, dialects.FABRIC_SCOPE),
                                                      (synapse, FABRIC_AUD, dialects.SYNAPSE_SCOPE)],
                         ids=["fabric", "synapse"])  # fmt: skip
def test_wrong_audience_is_an_auth_error_naming_the_scope(
    dialect_auth_sandbox: SandboxHandle, token_for: Callable[[str], ServicePrincipalAuth],
    make: Callable[..., LivyClient], wrong: str, scope: str,
) -> None:  # fmt: skip
    with make(dialect_auth_sandbox, auth=token_for(wrong)) as client, pytest.raises(LivyHTTPError) as refused:
        client.list_batches()
    assert refused.value.status == 401 and refused.value.expected_scope == scope
    assert f"this service takes tokens for scope {scope}" in str(refused.value)
    kind, sentence = describe_error(refused.value)
    assert kind == "auth" and scope in sentence and "audience" in sentence
    right = "https://api.fabric.microsoft.com" if scope == dialects.FABRIC_SCOPE else SYNAPSE_AUD
    with LivyClient(client.base_url, dialect=client.dialect, auth=token_for(right), retry=FAST) as ok:
        assert ok.list_batches().total == 0


# -- Apache Livy: capability detection with GET /version ----------------------------------------------


def test_livy_version_is_asked_once_and_decides_the_name_lookup(sandbox_faults: SandboxHandle) -> None:
    with LivyClient(sandbox_faults.url, retry=FAST) as client:
        assert client.server_version() == (0, 8, 0)
        assert client.find_batch(_name("nobody")) is None
        assert client.find_batch(_name("nobody")) is None
    counts = sandbox_faults.request_counts()
    assert counts["GET /version"] == 1
    assert "GET /batches" not in counts  # 0.8: a name is looked up in /batches/{name}, no list scan


def test_livy_without_version_falls_back_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    livy = MemoryLivy()
    livy.version = None  # GET /version -> 404: not Apache Livy, or an older one
    livy.add("etl", "running")
    with caplog.at_level(logging.DEBUG, logger="hdiaks_widgets.livy"), \
            LivyClient(BASE_URL, session=memory_session(livy), retry=FAST) as client:  # fmt: skip
        found = client.find_batch("etl")
        assert found is not None and found.id == "0"
        assert client.find_batch("etl") is not None
    assert livy.count("GET", "/version") == 1
    assert any("not Apache Livy, or an older one" in r.getMessage() for r in caplog.records)


def test_livy_older_than_0_7_scans_the_list_for_a_name() -> None:
    livy = MemoryLivy()
    livy.version = "0.6.0-incubating"
    livy.add("etl", "running")
    with LivyClient(BASE_URL, session=memory_session(livy), retry=FAST) as client:
        assert client.find_batch("etl") is not None
    assert livy.count("GET", "/batches/etl") == 0 and livy.count("GET", "/batches") == 1


def test_client_takes_a_dialect_by_name_or_refuses_an_unknown_one() -> None:
    assert LivyClient("http://x", dialect="synapse").dialect is dialects.dialect_of("synapse")
    assert LivyClient("http://x").dialect.name == "livy"
    with pytest.raises(ConfigError) as unknown:
        LivyClient("http://x", dialect="lighter")
    assert unknown.value.fields == ("dialect",)


def test_capacity_full_on_a_get_says_the_request_was_refused() -> None:
    livy = MemoryLivy()
    body = {"errorCode": "TooManyRequestsForCapacity", "message": "HTTP Response code 430", "requestId": "r",
            "moreDetails": []}  # fmt: skip
    livy.before.append(lambda r: respond(r, 430, body))
    with LivyClient(BASE_URL, dialect="fabric", session=memory_session(livy)) as client, \
            pytest.raises(CapacityFull) as full:  # fmt: skip
        client.get_batch(str(uuid.uuid4()))
    assert "GET /batches/" in str(full.value) and "nothing was submitted" not in str(full.value)
    assert full.value.detail == "TooManyRequestsForCapacity: HTTP Response code 430"


@pytest.mark.parametrize("make", [fabric, synapse], ids=["fabric", "synapse"])
def test_follow_batch_and_the_monitor_read_a_service_batch_without_log_endpoint(
    sandbox: SandboxHandle, make: Callable[..., LivyClient]
) -> None:
    with make(sandbox) as client:
        batch = client.submit_batch(BatchSpec(file=MISSING, name=_name("follow")))
        final = follow_batch(client, batch.id, poll_interval=0.2, timeout=60)
        assert final.id == batch.id and final.state is BatchState.DEAD and final.result == "Failed"
        monitor = BatchMonitor(client, batch.id)
        assert not isinstance(monitor.run_handle.reader, LivyLogReader)
        snap = monitor.run_handle.wait(timeout=30, interval=0.2)
        assert snap.finished and snap.error is not None and final.error is not None and final.error in snap.error
        assert snap.log_note is not None and "never started a Spark application" in snap.log_note
