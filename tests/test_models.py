"""Unit tests of hdiaks_widgets.models, fed with the Livy JSON samples of PROTOCOL.md §2.3."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from hdiaks_widgets.errors import HdiaksError, LivyError
from hdiaks_widgets.models import (
    TERMINAL_STATES,
    AppInfo,
    Batch,
    BatchList,
    BatchState,
    ListedBatches,
    LogLine,
    LogPage,
    Session,
    SessionList,
    Statement,
    StatementOutput,
    StatementState,
    id_sort_key,
)

ALL_STATES = [
    "not_started", "starting", "recovering", "idle", "running", "busy",
    "shutting_down", "error", "dead", "killed", "success",
]

BATCH_JSON: dict[str, Any] = {
    "id": 7,
    "name": "spark-pi",
    "owner": "alice",
    "proxyUser": "bob",
    "state": "running",
    "appId": "application_1700000000000_0007",
    "appInfo": {
        "driverLogUrl": "http://nm:8042/node/containerlogs/container_1/alice",
        "sparkUiUrl": "http://rm:8088/proxy/application_1700000000000_0007/",
    },
    "log": ["stdout: ", "\nstderr: ", "23/11/29 10:00:00 INFO SparkContext: Running Spark version 3.3.1"],
}


def test_batch_from_json_reads_every_field() -> None:
    batch = Batch.from_json(BATCH_JSON)
    assert batch == Batch(
        id=7,
        state=BatchState.RUNNING,
        name="spark-pi",
        owner="alice",
        proxy_user="bob",
        app_id="application_1700000000000_0007",
        app_info=AppInfo(
            driver_log_url="http://nm:8042/node/containerlogs/container_1/alice",
            spark_ui_url="http://rm:8088/proxy/application_1700000000000_0007/",
        ),
        log=tuple(BATCH_JSON["log"]),
    )


def test_batch_from_json_reads_post_answer() -> None:
    batch = Batch.from_json({"id": 0, "state": "starting", "log": []})
    assert (batch.id, batch.state, batch.log, batch.app_id) == ("0", BatchState.STARTING, (), None)


def test_batch_from_json_tolerates_nulls() -> None:
    batch = Batch.from_json({"id": 1, "name": None, "state": "dead", "appId": None, "appInfo": None, "log": None})
    assert (batch.name, batch.app_info, batch.log) == (None, AppInfo(), ())


def test_batch_from_json_reads_executor_log_urls() -> None:
    batch = Batch.from_json({"id": 1, "state": "success", "appInfo": {"executorLogUrls": "1: http://x"}})
    assert batch.app_info.executor_log_urls == "1: http://x"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"state": "running"}, id="missing-id"),
        pytest.param({"id": True, "state": "running"}, id="bool-id"),
        pytest.param({"id": 1.5, "state": "running"}, id="float-id"),
        pytest.param({"id": "", "state": "running"}, id="empty-id"),
        pytest.param({"id": ["7"], "state": "running"}, id="list-id"),
        pytest.param({"id": None}, id="null-id"),
        pytest.param(["id", 1], id="not-object"),
    ],
)
def test_batch_from_json_malformed_raises_livy_error(data: Any) -> None:
    with pytest.raises(LivyError):
        Batch.from_json(data)


def test_batchlist_from_json_empty_hdinsight_list() -> None:
    assert BatchList.from_json({"from": 0, "total": 0, "sessions": []}) == BatchList(start=0, total=0, batches=())


def test_batchlist_from_json_total_counts_all_sessions() -> None:
    page = BatchList.from_json({"from": 1, "total": 5, "sessions": [BATCH_JSON]})
    assert (page.start, page.total, [b.id for b in page.batches]) == (1, 5, ["7"])


def test_batch_state_endpoint_answer_parses() -> None:
    answer = {"id": 7, "state": "success"}
    assert BatchState.parse(answer["state"]) is BatchState.SUCCESS


def test_logpage_from_json_uses_total() -> None:
    page = LogPage.from_json({"id": 7, "from": 100, "total": 250, "log": ["a", "b"]})
    assert page == LogPage(id=7, start=100, total=250, lines=("a", "b"))
    assert page.end == 102


def test_logpage_from_json_accepts_documented_size_key() -> None:
    assert LogPage.from_json({"id": 7, "from": 0, "size": 3, "log": ["a"]}).total == 3


def test_logpage_from_json_without_total_counts_lines() -> None:
    assert LogPage.from_json({"id": 7, "from": 0, "log": ["a", "b"]}).total == 2


@pytest.mark.parametrize("state", ALL_STATES)
def test_batchstate_parses_every_livy_state(state: str) -> None:
    assert BatchState.parse(state).value == state


def test_batchstate_has_all_eleven_states() -> None:
    assert sorted(s.value for s in BatchState) == sorted(ALL_STATES)


def test_batchstate_terminal_set() -> None:
    assert {s.value for s in BatchState if s.is_terminal} == {"success", "dead", "killed", "error"}
    assert {s.value for s in TERMINAL_STATES} == {"success", "dead", "killed", "error"}


def test_batchstate_unknown_state_is_tolerated_and_not_terminal() -> None:
    state = BatchState.parse("paused_by_operator")
    assert not state.is_terminal
    assert Batch.from_json({"id": 1, "state": "paused_by_operator"}).state is state


def test_batchstate_compares_and_prints_as_text() -> None:
    assert BatchState.SUCCESS == "success"
    assert f"{BatchState.DEAD}" == "dead"
    assert BatchState.SUCCESS.is_success and not BatchState.DEAD.is_success


def test_session_from_json_reads_kind_and_readiness() -> None:
    session = Session.from_json({"id": 3, "kind": "pyspark", "state": "idle", "appInfo": {}, "log": []})
    assert (session.id, session.kind, session.is_ready) == ("3", "pyspark", True)


def test_session_id_is_opaque_text_like_a_batch_id() -> None:
    uid = "5f2b3c0e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
    assert Session.from_json({"id": uid, "state": "idle"}).id == uid
    with pytest.raises(LivyError, match="session has no id"):
        Session.from_json({"id": True, "state": "idle"})


def test_sessionlist_from_json() -> None:
    sessions = SessionList.from_json({"from": 0, "total": 1, "sessions": [{"id": 3, "state": "busy"}]})
    assert [s.state for s in sessions.sessions] == [BatchState.BUSY]


def test_statement_from_json_ok_output() -> None:
    stmt = Statement.from_json(
        {
            "id": 0,
            "code": "1 + 1",
            "state": "available",
            "output": {"status": "ok", "execution_count": 0, "data": {"text/plain": "2"}},
            "progress": 1.0,
        }
    )
    assert stmt.state is StatementState.AVAILABLE and stmt.state.is_terminal
    assert stmt.output is not None and stmt.output.ok
    assert (stmt.output.text, stmt.output.execution_count, stmt.progress) == ("2", 0, 1.0)


def test_statement_from_json_error_output() -> None:
    stmt = Statement.from_json(
        {
            "id": 1,
            "code": "x",
            "state": "available",
            "output": {
                "status": "error",
                "execution_count": 1,
                "ename": "NameError",
                "evalue": "name 'x' is not defined",
                "traceback": ["Traceback ...", "NameError: name 'x' is not defined"],
            },
        }
    )
    assert stmt.output is not None and not stmt.output.ok
    assert stmt.output.text == "NameError: name 'x' is not defined"
    assert len(stmt.output.traceback) == 2


def test_statement_from_json_waiting_without_output() -> None:
    stmt = Statement.from_json({"id": 2, "code": "x", "state": "waiting", "output": None, "progress": None})
    assert (stmt.output, stmt.progress, stmt.state.is_terminal) == (None, 0.0, False)


def test_statement_from_json_unknown_state_is_waiting() -> None:
    assert Statement.from_json({"id": 2, "state": "queued"}).state is StatementState.WAITING


@pytest.mark.parametrize("state", [s.value for s in StatementState])
def test_statementstate_parses_every_state(state: str) -> None:
    assert StatementState(state).value == state


def test_statementoutput_from_json_empty_is_none() -> None:
    assert StatementOutput.from_json({}) is None


def test_livy_error_from_models_is_hdiaks_error() -> None:
    with pytest.raises(HdiaksError):
        LogPage.from_json({"id": 1, "from": "start"})


# -- the dialects' batch objects (PROTOCOL.md §8) -----------------------------------------------

FABRIC_UUID = "0b6f2c7e-8d3a-4c2e-9a43-1f0e6a7b8c9d"


def test_batch_from_json_keeps_a_uuid_id_and_numbers_become_text() -> None:
    assert Batch.from_json({"id": FABRIC_UUID, "state": "running"}).id == FABRIC_UUID
    assert Batch.from_json({"id": 12, "state": "running"}).id == "12"
    assert Batch(id=3, state=BatchState.RUNNING).id == "3"  # type: ignore[arg-type]


def test_batch_from_json_reads_fabric_livy_info_times_and_result() -> None:
    batch = Batch.from_json({
        "id": FABRIC_UUID, "state": "success", "result": "Succeeded",
        "livyInfo": {"notStartedAt": "2025-03-05T12:00:00.000Z", "startingAt": "2025-03-05T12:00:01.500Z",
                     "runningAt": "2025-03-05T12:00:03.1234567+00:00", "successAt": "2025-03-05T12:01:00Z",
                     "deadAt": None, "killedAt": None, "currentState": "success"},
    })  # fmt: skip
    assert batch.state is BatchState.SUCCESS and batch.result == "Succeeded"
    assert batch.submitted_at == datetime(2025, 3, 5, 12, 0, 0, tzinfo=UTC)
    assert batch.started_at == datetime(2025, 3, 5, 12, 0, 3, 123456, tzinfo=UTC)
    assert batch.ended_at == datetime(2025, 3, 5, 12, 1, 0, tzinfo=UTC)
    assert [s for s, _ in batch.state_times] == ["not_started", "starting", "running", "success"]


def test_batch_from_json_apache_livy_has_no_times() -> None:
    batch = Batch.from_json({"id": 0, "state": "running"})
    assert (batch.result, batch.submitted_at, batch.started_at, batch.ended_at, batch.errors) == (
        None, None, None, None, ())  # fmt: skip


@pytest.mark.parametrize(
    ("state", "result", "expected"),
    [
        ("submitting", None, BatchState.STARTING),
        ("not_submitted", "Uncertain", BatchState.NOT_STARTED),
        ("not_submitted", "Failed", BatchState.DEAD),
        ("dead", "Cancelled", BatchState.KILLED),
        ("killed", "Cancelled", BatchState.KILLED),
    ],
)
def test_batch_from_json_maps_extra_states_and_results(state: str, result: str | None, expected: BatchState) -> None:
    assert Batch.from_json({"id": FABRIC_UUID, "state": state, "result": result}).state is expected


def test_batch_from_json_error_info_is_the_batch_error() -> None:
    batch = Batch.from_json({"id": 5, "state": "dead", "result": "Failed", "errorInfo": [
        {"message": "RuntimeError: boom", "errorCode": "Spark_Unknown_Unknown_RuntimeError", "source": "Unknown"},
        {"message": "RuntimeError: boom", "errorCode": "Spark_Unknown_Unknown_RuntimeError"},
        "not an object", {"source": "nothing useful"},
    ]})  # fmt: skip
    assert batch.error == "RuntimeError: boom"
    assert batch.errors[0].code == "Spark_Unknown_Unknown_RuntimeError" and batch.errors[0].source == "Unknown"


def test_batch_from_json_reads_a_fabric_list_activity() -> None:
    item = {"id": FABRIC_UUID, "name": "n", "livyState": "not_submitted", "result": "Failed",
            "submittedAt": "2025-03-05T12:00:00.000Z", "endedAt": "2025-03-05T12:00:02.000Z",
            "errorCode": "LIVY_JOB_STATE_DEAD", "errorSource": "Unknown"}  # fmt: skip
    batch = Batch.from_json(item, state_key="livyState")
    assert (batch.id, batch.state, batch.name) == (FABRIC_UUID, BatchState.DEAD, "n")
    assert batch.error == "LIVY_JOB_STATE_DEAD"
    assert batch.submitted_at is not None and batch.ended_at is not None and batch.started_at is None


@pytest.mark.parametrize(
    "info",
    [
        pytest.param("not an object", id="string"),
        pytest.param({"runningAt": "yesterday"}, id="bad-time"),
        pytest.param({"runningAt": 17}, id="number"),
        pytest.param({"runningAt": ""}, id="empty"),
    ],
)
def test_batch_from_json_malformed_dialect_fields_are_not_given(info: Any) -> None:
    batch = Batch.from_json({"id": 1, "state": "running", "livyInfo": info, "errorInfo": "boom", "result": None})
    assert (batch.started_at, batch.errors, batch.result) == (None, (), None)


def test_id_sort_key_orders_numbers_by_value_then_other_ids() -> None:
    ids = ["10", FABRIC_UUID, "9", 2, "a-name"]
    assert sorted(ids, key=id_sort_key) == [2, "9", "10", FABRIC_UUID, "a-name"]


def test_logline_has_no_per_line_dict() -> None:
    line = LogLine("Pi is roughly 3.14", "driver stdout")
    assert not hasattr(line, "__dict__") and line.source == "driver stdout" and line == "Pi is roughly 3.14"


@pytest.mark.parametrize("data", [
    {"id": 3, "state": "running", "name": "n", "owner": "o", "proxyUser": "p", "appId": "app",
     "appInfo": {"driverLogUrl": "http://d", "sparkUiUrl": "http://u"}, "log": ["a", "b"]},
    {"id": "f0", "state": "dead", "result": "Cancelled", "log": "one line", "appInfo": None,
     "livyInfo": {"startingAt": "2025-03-05T12:11:17Z", "deadAt": "2025-03-05T12:12:00Z"},
     "errorInfo": [{"message": "boom", "errorCode": "E1"}]},
    {"id": 4, "state": ["hostile"], "name": 5, "log": [1, "x"], "appInfo": {"sparkUiUrl": 7}},
], ids=["livy", "fabric", "odd-types"])  # fmt: skip
def test_batch_from_json_fast_path_builds_the_same_model_as_the_constructor(data: dict[str, Any]) -> None:
    batch = Batch.from_json(data)
    rebuilt = Batch(**{f: getattr(batch, f) for f in Batch.__dataclass_fields__})
    assert batch == rebuilt and hash(batch.app_info) == hash(rebuilt.app_info)
    assert all(isinstance(x, str) for x in batch.log) and type(batch.log) is tuple
    assert batch.app_info.spark_ui_url in (None, "http://u", "7")


# -- ListedBatches: a list answer's batches, built when read (S2 in docs/benchmarks.md) -----------

LIST_ITEMS: list[Any] = [
    {"id": 0, "name": "pi", "owner": "alice", "proxyUser": None, "state": "success", "appId": "application_1_0001",
     "appInfo": {"driverLogUrl": "http://d/0", "sparkUiUrl": "http://u/0"}, "queue": None, "log": ["a", "b"]},
    {"id": 1, "state": "running", "appInfo": None},
    {"id": "f0e1", "state": "dead", "result": "Cancelled", "appInfo": {}},
    {"id": 2, "state": "starting", "name": 5, "owner": 6, "appId": 7, "appInfo": {"sparkUiUrl": 8, "driverLogUrl": 9}},
    {"id": 3, "state": ["hostile"], "log": [1, "x"]},  # not on the plain path: built at once
    {"id": 4, "state": "brand-new-state"},  # an unknown state: not final, as from_json says
    {"id": 5, "state": "running", "appInfo": "not an object"},
    {"id": 6, "state": "success", "livyInfo": {"successAt": "2025-03-05T12:12:00Z"}, "errorInfo": []},
    {"id": 7, "livyState": "running", "state": None},
]  # fmt: skip


def _row_of(b: Batch) -> tuple[str, ...]:
    info = b.app_info
    return (b.id, b.name or "", b.state.value, b.app_id or "", info.spark_ui_url or "", info.driver_log_url or "",
            b.owner or "")  # fmt: skip


@pytest.mark.parametrize("state_key", ["state", "livyState"])
def test_listed_batches_are_the_models_from_json_builds_and_their_rows(state_key: str) -> None:
    listed = ListedBatches(LIST_ITEMS, state_key=state_key)
    expected = tuple(Batch.from_json(item, state_key=state_key) for item in LIST_ITEMS)
    assert listed.rows() == [_row_of(b) for b in expected]  # rows read before any batch is built
    assert tuple(listed) == expected and listed == expected and listed == list(expected)
    assert [listed[i] for i in range(len(listed))] == list(expected)


def test_listed_batches_behave_as_a_read_only_tuple() -> None:
    listed = ListedBatches(LIST_ITEMS)
    expected = tuple(Batch.from_json(item) for item in LIST_ITEMS)
    assert len(listed) == len(LIST_ITEMS) and listed[-1] == expected[-1] and listed[1:3] == expected[1:3]
    assert type(listed[1:3]) is tuple and listed + (expected[0],) == (*expected, expected[0])
    assert listed[0] is listed[0]  # built once, then kept
    assert hash(listed) == hash(expected) and repr(listed) == repr(expected)
    assert pickle.loads(pickle.dumps(listed)) == expected and type(pickle.loads(pickle.dumps(listed))) is tuple
    assert listed != ListedBatches(LIST_ITEMS[:-1]) and listed != "text"
    with pytest.raises(IndexError):
        listed[len(LIST_ITEMS)]
    with pytest.raises(TypeError):
        listed[0] = expected[0]  # type: ignore[index]
    assert ListedBatches() == () and ListedBatches().rows() == []


@pytest.mark.parametrize("bad", [{"state": "running"}, {"id": True, "state": "running"}, ["id", 1], {"id": ""}])
def test_listed_batches_raise_for_a_malformed_item_where_the_list_is_read(bad: Any) -> None:
    with pytest.raises(LivyError):
        ListedBatches([LIST_ITEMS[0], bad])
    with pytest.raises(LivyError):
        BatchList.from_json({"from": 0, "total": 2, "sessions": [LIST_ITEMS[0], bad]})


def test_batchlist_from_json_keeps_listed_batches_and_compares_with_tuples() -> None:
    page = BatchList.from_json({"from": 0, "total": 9, "sessions": LIST_ITEMS})
    assert type(page.batches) is ListedBatches
    assert page == BatchList(start=0, total=9, batches=tuple(Batch.from_json(i) for i in LIST_ITEMS))
    assert repr(page) == ("BatchList(start=0, total=9, 9 batches: 3 not_started, 2 success, 2 running, 1 killed, "
                          "1 starting; ids 0…7)")
