"""LivyClient end to end on the sandbox (real Spark), including injected network faults."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from auth_fixtures import closed_port
from conftest import SandboxHandle

from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.errors import BatchNotFound, ConfigError, DuplicateBatchName, LivyError, LivyHTTPError
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.models import Batch, BatchState
from hdiaks_widgets.monitor import follow_batch

# Fast retries: the behaviour under test is *whether* a request is retried, not the wait.
FAST = RetryPolicy(total=4, backoff_factor=0.01, backoff_jitter=0.0, backoff_max=0.1)


def _client(sandbox: SandboxHandle, **kw: Any) -> LivyClient:
    return LivyClient(sandbox.url, retry=kw.pop("retry", FAST), **kw)


def _unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}"


def _batches_named(client: LivyClient, name: str) -> list[Batch]:
    return [b for b in client.iter_batches() if b.name == name]


@pytest.fixture(scope="module")
def client(sandbox: SandboxHandle) -> Iterator[LivyClient]:
    with _client(sandbox) as c:
        yield c


@pytest.fixture(scope="module")
def pi_batch(sandbox: SandboxHandle, client: LivyClient) -> Batch:
    """One SparkPi jar job for the whole module, submitted by the client from an abfs:// path."""
    spec = BatchSpec(
        file=sandbox.examples["jar"],
        class_name=sandbox.spark_pi_class,
        args=(4,),  # an int, as the Azure sample sends: the client must stringify it
        name=_unique("client-pi"),
        driver_memory="512m",
        conf={"spark.sql.shuffle.partitions": "2"},
    )
    batch = client.submit_batch(spec)
    return follow_batch(client, batch.id, poll_interval=0.3, timeout=300)


@pytest.mark.spark
def test_livy_client_jar_job_succeeds(pi_batch: Batch) -> None:
    assert pi_batch.state is BatchState.SUCCESS
    assert pi_batch.app_id and pi_batch.app_id.startswith("local-")


@pytest.mark.spark
def test_livy_client_whole_log_has_pi_result(client: LivyClient, pi_batch: Batch) -> None:
    lines = [line for page in client.iter_log(pi_batch.id) for line in page.lines]
    assert any(line.startswith("Pi is roughly 3.1") for line in lines)


@pytest.mark.spark
def test_livy_client_iter_log_pages_fetch_each_line_once(client: LivyClient, pi_batch: Batch) -> None:
    everything = client.get_log(pi_batch.id, start=0, size=-1)
    pages = list(client.iter_log(pi_batch.id, page_size=7))
    assert [p.start for p in pages] == list(range(0, everything.total, 7))
    assert [line for p in pages for line in p.lines] == list(everything.lines)


@pytest.mark.spark
def test_livy_client_get_log_without_start_is_the_tail(client: LivyClient, pi_batch: Batch) -> None:
    page = client.get_log(pi_batch.id, size=5)
    assert page.start == page.total - 5
    assert page.end == page.total


@pytest.mark.spark
def test_livy_client_get_batch_by_name(client: LivyClient, pi_batch: Batch) -> None:
    assert pi_batch.name is not None
    assert client.get_batch(pi_batch.name).id == pi_batch.id
    assert client.find_batch(pi_batch.name) == client.get_batch(pi_batch.id)


@pytest.mark.spark
def test_livy_client_state_endpoint(client: LivyClient, pi_batch: Batch) -> None:
    assert client.get_batch_state(pi_batch.id) is BatchState.SUCCESS


@pytest.mark.spark
def test_livy_client_duplicate_name_raises(client: LivyClient, pi_batch: Batch, sandbox: SandboxHandle) -> None:
    assert pi_batch.name is not None
    with pytest.raises(DuplicateBatchName) as info:
        client.submit_batch(BatchSpec(file=sandbox.examples["pi_py"], name=pi_batch.name))
    assert info.value.name == pi_batch.name
    assert len(_batches_named(client, pi_batch.name)) == 1


@pytest.mark.spark
def test_livy_client_list_batches_pages_with_total(client: LivyClient, pi_batch: Batch) -> None:
    first = client.list_batches(start=0, size=1)
    assert first.start == 0 and len(first.batches) == 1
    assert first.total >= 1
    assert pi_batch.id in [b.id for b in client.iter_batches(page_size=1)]


def test_livy_client_unknown_id_raises_batch_not_found(client: LivyClient) -> None:
    with pytest.raises(BatchNotFound) as info:
        client.get_batch(987654)
    assert info.value.status == 404
    assert info.value.batch_id == 987654
    assert "987654" in str(info.value)


def test_livy_client_unknown_name_is_not_found(client: LivyClient) -> None:
    assert client.find_batch(_unique("never-submitted")) is None


def test_livy_client_invalid_spec_is_refused_before_any_request(sandbox_faults: SandboxHandle) -> None:
    with _client(sandbox_faults) as c, pytest.raises(ConfigError) as info:
        c.submit_batch(BatchSpec(file="relative/app.jar", driver_memory="lots", name="123"))
    assert {"spec.file", "spec.driver_memory", "spec.name"} <= set(info.value.fields)
    assert sandbox_faults.request_counts().get("POST /batches", 0) == 0


@pytest.mark.spark
def test_livy_client_kill_running_job_leaves_no_spark_process(sandbox: SandboxHandle, client: LivyClient) -> None:
    batch = client.submit_batch(BatchSpec(file=sandbox.examples["sleep_py"], args=("300",), name=_unique("kill")))
    deadline = time.monotonic() + 120
    while client.get_batch_state(batch.id) is not BatchState.RUNNING:
        assert time.monotonic() < deadline, "job never started running"
        time.sleep(0.3)
    client.kill_batch(batch.id)
    with pytest.raises(BatchNotFound):  # Livy forgets a deleted batch at once
        client.get_batch(batch.id)
    with sandbox.http() as s:
        record = s.get(f"{sandbox.url}/_sandbox/batches/{batch.id}", timeout=10).json()
    assert record["batch"]["state"] == "killed"
    assert record["leftover_pids"] == []


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "status", "status": 503, "retry_after": 0},
        {"kind": "status", "status": 429, "retry_after": 0},
        {"kind": "status", "status": 502},
        {"kind": "status", "status": 504},
        {"kind": "drop"},
    ],
    ids=["503-retry-after", "429-retry-after", "502", "504", "dropped-connection"],
)
def test_livy_client_get_succeeds_after_transient_faults(sandbox_faults: SandboxHandle, rule: dict[str, Any]) -> None:
    sandbox_faults.set_faults({**rule, "count": 2, "methods": ["GET"], "path_prefix": "/batches"})
    with _client(sandbox_faults) as c:
        page = c.list_batches()
    assert page.total >= 0
    assert sandbox_faults.request_counts()["GET /batches"] == 3


def test_livy_client_honours_retry_after(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults(
        {"kind": "status", "status": 503, "retry_after": 1, "count": 1, "methods": ["GET"], "path_prefix": "/batches"}
    )
    started = time.monotonic()
    with _client(sandbox_faults) as c:
        c.list_batches()
    # Without Retry-After the FAST policy would wait at most 0.1 s.
    assert time.monotonic() - started >= 0.9


def test_livy_client_gives_up_after_retry_budget(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults(
        {"kind": "status", "status": 503, "retry_after": 0, "count": None, "methods": ["GET"],
         "path_prefix": "/batches"}
    )
    with _client(sandbox_faults, retry=replace(FAST, total=2)) as c, pytest.raises(LivyHTTPError) as info:
        c.list_batches()
    assert info.value.status == 503
    assert sandbox_faults.request_counts()["GET /batches"] == 3


def test_livy_client_read_timeout_is_a_livy_error(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "slow", "seconds": 3, "count": 1, "methods": ["GET"], "path_prefix": "/batches"})
    with (
        _client(sandbox_faults, retry=replace(FAST, total=0), timeout=(2.0, 0.5)) as c,
        pytest.raises(LivyError, match="did not answer"),
    ):
        c.list_batches()


def test_livy_client_unreachable_server_is_a_livy_error() -> None:
    port = closed_port()
    with (
        LivyClient(f"http://127.0.0.1:{port}", retry=replace(FAST, total=1)) as c,
        pytest.raises(LivyError, match="Cannot reach Livy"),
    ):
        c.list_batches()


def _submit_once_then_kill(sandbox: SandboxHandle, rule: dict[str, Any]) -> tuple[Batch, list[Batch], int]:
    name = _unique("fault-post")
    sandbox.set_faults({**rule, "count": 1, "methods": ["POST"], "path_prefix": "/batches"})
    with _client(sandbox) as c:
        batch = c.submit_batch(BatchSpec(file=sandbox.examples["sleep_py"], args=("300",), name=name))
        try:
            same_name = _batches_named(c, name)
        finally:
            c.kill_batch(batch.id)
    return batch, same_name, sandbox.request_counts()["POST /batches"]


@pytest.mark.spark
def test_livy_client_ambiguous_post_failure_submits_exactly_once(sandbox_faults: SandboxHandle) -> None:
    # The server creates the batch, then the connection drops before the answer.
    batch, same_name, posts = _submit_once_then_kill(sandbox_faults, {"kind": "drop_after"})
    assert [b.id for b in same_name] == [batch.id]
    assert posts == 1


@pytest.mark.spark
def test_livy_client_post_dropped_before_handling_is_sent_again(sandbox_faults: SandboxHandle) -> None:
    batch, same_name, posts = _submit_once_then_kill(sandbox_faults, {"kind": "drop"})
    assert [b.id for b in same_name] == [batch.id]
    assert posts == 2


@pytest.mark.spark
def test_livy_client_post_refused_with_503_is_retried(sandbox_faults: SandboxHandle) -> None:
    refusal = {"kind": "status", "status": 503, "retry_after": 0}
    batch, same_name, posts = _submit_once_then_kill(sandbox_faults, refusal)
    assert [b.id for b in same_name] == [batch.id]
    assert posts == 2


def test_livy_client_post_refused_every_time_says_nothing_was_created(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "status", "status": 429, "retry_after": 0, "count": None, "methods": ["POST"],
                               "path_prefix": "/batches"})  # fmt: skip
    name = _unique("refused")
    before = sandbox_faults.request_counts().get("POST /batches", 0)
    with _client(sandbox_faults) as c, pytest.raises(LivyHTTPError) as info:
        c.submit_batch(BatchSpec(file=sandbox_faults.examples["pi_py"], name=name))
    sandbox_faults.set_faults()
    assert info.value.status == 429 and "\n" not in str(info.value)
    assert "refused 4 times, so no batch was created; submitting again later is safe" in str(info.value)
    assert sandbox_faults.request_counts()["POST /batches"] - before == 4
    with _client(sandbox_faults) as c:
        assert c.find_batch(name) is None


def test_livy_client_post_500_is_not_retried(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults(
        {"kind": "status", "status": 500, "count": 1, "methods": ["POST"], "path_prefix": "/batches"}
    )
    with _client(sandbox_faults) as c, pytest.raises(LivyHTTPError) as info:
        c.submit_batch(BatchSpec(file=sandbox_faults.examples["pi_py"], name=_unique("five-hundred")))
    assert info.value.status == 500
    assert sandbox_faults.request_counts()["POST /batches"] == 1


def test_livy_client_passes_csrf_check(sandbox_factory: Callable[..., SandboxHandle]) -> None:
    strict = sandbox_factory(csrf=True)
    missing = "abfs://examples@sandbox.dfs.core.windows.net/py/not-there.py"
    with _client(strict) as c:
        batch = c.submit_batch(BatchSpec(file=missing, name=_unique("csrf")))
        final = follow_batch(c, batch.id, poll_interval=0.2, timeout=60)
        log = [line for page in c.iter_log(batch.id) for line in page.lines]
    assert final.state is BatchState.DEAD
    assert any("not-there.py" in line for line in log)


@pytest.mark.spark
def test_livy_client_session_statement_round_trip(sandbox: SandboxHandle, client: LivyClient) -> None:
    session = client.create_session("pyspark", name=_unique("explore"))
    try:
        deadline = time.monotonic() + 180
        while not client.get_session(session.id).is_ready:
            assert time.monotonic() < deadline, "session never became idle"
            time.sleep(0.5)
        stmt = client.run_statement(session.id, "spark.range(5).count() * 2")
        while not stmt.state.is_terminal:
            time.sleep(0.3)
            stmt = client.get_statement(session.id, stmt.id)
        assert stmt.output is not None and stmt.output.ok
        assert stmt.output.text == "10"
        assert [s.id for s in client.list_statements(session.id)] == [stmt.id]
    finally:
        client.delete_session(session.id)
    with pytest.raises(BatchNotFound):
        client.get_session(session.id)


@pytest.mark.parametrize("content_type", ["text/plain", "text/html", "text/plain; charset=utf-8"])
def test_get_text_reads_a_log_page_without_a_charset_as_utf8(content_type: str) -> None:
    from servers import PlainServer

    text = "Größe ✓ 日本語 line\n"
    server = PlainServer(200, content_type, text)
    try:
        with LivyClient(server.url) as client:
            assert client.get_text(f"{server.url}/logs/stdout") == text
    finally:
        server.close()


@pytest.mark.parametrize("ident", [0, 7, "7", "0012", 10**17, "nightly+etl@team", "a" * 30, "١٢", "9" * 19],
                         ids=["0", "7", "str-7", "leading-zeros", "big", "name", "long-name", "arabic-digits",
                              "19-digits"])  # fmt: skip
def test_livy_client_batch_path_fast_path_matches_wire(ident: int | str) -> None:
    from hdiaks_widgets import wire
    from hdiaks_widgets.errors import ConfigError
    from hdiaks_widgets.livy import _batch

    try:
        expected = wire.batch_path(ident, "state")
    except ValueError:
        with pytest.raises(ConfigError):
            _batch(ident, "state")
        return
    assert _batch(ident, "state") == expected and _batch(ident) == wire.batch_path(ident)
