"""BatchRun's decisions, driven step by step in memory (no Flask, no Spark).

Two small fakes: ``FakeLivy`` scripts get_batch/get_log answers for the poll step, and
``MemoryLivy`` (tests/livy_memory.py) is Apache Livy's batch routes behind a requests transport,
so the real ``LivyClient`` decides about ambiguous POSTs, names and reused ids. The same
behaviour on the real sandbox is in test_livy_client.py, test_monitor.py and the CLI/DAG tests.
"""

from __future__ import annotations

import dataclasses

import pytest
import requests
from livy_memory import FakeLivy, MemoryLivy, memory_session, respond

from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.errors import (
    AuthError,
    BatchFailed,
    BatchNotFound,
    ConfigError,
    DuplicateBatchName,
    LivyError,
    LivyHTTPError,
)
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.models import BatchState
from hdiaks_widgets.run import BatchRun, LineView, OffsetLogReader, Snapshot, describe_error
from hdiaks_widgets.sandbox.logbuf import LogBuffer
from hdiaks_widgets.wire import batch_path

URL = "http://livy.test"
JAR = "local:///opt/app.jar"


def _polls(client: FakeLivy, count: int, *, page_size: int = 1000, max_errors: int = 8,
           name: str | None = "job") -> list[Snapshot]:
    run = BatchRun(client, 7, name=name, log_reader=OffsetLogReader(page_size=page_size), max_errors=max_errors)
    out = []
    for _ in range(count):
        snap = run.poll()
        out.append(snap)
        if snap.finished:
            break
    return out


def _client(livy: MemoryLivy, **kw: object) -> LivyClient:
    return LivyClient(URL, session=memory_session(livy), sleep=lambda _s: None, **kw)  # type: ignore[arg-type]


# -- the poll step ---------------------------------------------------------------------------


def test_run_poll_reads_new_log_lines_by_offset() -> None:
    client = FakeLivy(["running", "running"])
    first, second = _polls(client, 2)
    assert first.new_lines == ("line 0", "line 1", "line 2")
    assert second.new_lines == ("line 3", "line 4", "line 5")
    assert [start for start, _ in client.log_requests] == [0, 3]


def test_run_poll_snapshots_share_one_line_store_and_keep_their_own_length() -> None:
    client = FakeLivy(["running", "running", "running"], lines_per_poll=3)
    first, second, third = _polls(client, 3)
    assert isinstance(third.lines, LineView)
    assert third.lines._store is first.lines._store  # type: ignore[attr-defined]  # appended, not copied
    assert first.lines == ("line 0", "line 1", "line 2")  # an older snapshot never sees later lines
    assert len(second.lines) == 6 and second.lines[-1] == "line 5" and list(second.lines)[-1] == "line 5"
    assert third.lines[2:4] == ("line 2", "line 3") and isinstance(third.lines[1:], tuple)
    assert third.lines == tuple(client.log) and third.lines == list(client.log) and "line 8" in third.lines


def test_line_view_branch_from_an_older_view_copies_instead_of_overwriting() -> None:
    base = LineView(["a", "b"])
    newer = base.extend(["c"])
    branch = base.extend(["x", "y"])
    assert (newer, branch, base) == (("a", "b", "c"), ("a", "b", "x", "y"), ("a", "b"))
    assert base + ("z",) == ("a", "b", "z") and ("z",) + base == ("z", "a", "b")
    with pytest.raises(IndexError):
        base[2]
    assert base[-1] == "b" and list(reversed(newer)) == ["c", "b", "a"] and repr(newer) == "LineView(3 lines)"


def test_line_view_pickles_only_its_own_lines() -> None:
    import pickle

    base = LineView(["a"])
    base.extend(["b"])
    assert pickle.loads(pickle.dumps(base)) == ("a",)


def test_run_poll_never_fetches_a_line_twice() -> None:
    client = FakeLivy(["starting", "running", "running", "success"], lines_per_poll=250)
    snaps = _polls(client, 10, page_size=100)
    assert snaps[-1].finished
    assert client.served == client.log
    assert snaps[-1].lines == tuple(client.log)


def test_run_poll_finishes_after_terminal_state_seen_twice() -> None:
    client = FakeLivy(["running", "success"], final_lines=["Pi is roughly 3.14"])
    snaps = _polls(client, 5)
    assert [s.finished for s in snaps] == [False, False, True]
    assert snaps[-1].succeeded and snaps[-1].error is None
    assert "Pi is roughly 3.14" in snaps[-1].lines



def test_run_lines_printed_after_livy_says_dead_are_in_the_end_sentence() -> None:
    """Why a run finishes only at the second look at a terminal state: Livy's state can flip when
    spark-submit exits while its last stderr lines are still being read. A line that appears
    between the two looks is in the final lines and in the error sentence; the first terminal
    look has the state but is not the end (no sentence yet)."""
    livy = MemoryLivy()
    buffer = LogBuffer()
    buffer.append("stdout", "reading input")
    batch = livy.add("job", "running", buffer=buffer)
    run = BatchRun(_client(livy), batch.id, name="job")
    assert not run.poll().finished
    batch.state = "dead"
    buffer.append("stderr", "Traceback (most recent call last):")
    first = run.poll()
    assert first.state_label == "dead" and not first.finished and first.error is None
    buffer.append("stderr", "ValueError: column 'amount' is not numeric")
    last = run.poll()
    assert last.finished and last.polls == first.polls + 1
    assert "ValueError: column 'amount' is not numeric" in last.lines
    assert last.error is not None and "ValueError: column 'amount' is not numeric" in last.error

def test_run_poll_dead_batch_reports_last_error_lines() -> None:
    client = FakeLivy(["running", "dead"], final_lines=["Traceback (most recent call last):",
                                                        "RuntimeError: sandbox example failure"])
    last = _polls(client, 5)[-1]
    assert last.finished and last.error_kind == "failed"
    assert last.error is not None and "ended in state dead" in last.error
    assert "RuntimeError: sandbox example failure" in last.error
    with pytest.raises(BatchFailed):
        last.raise_for_state()


def test_run_poll_404_after_success_is_purged_not_failure() -> None:
    first, second = _polls(FakeLivy(["success", "404"]), 3)
    assert second.finished and second.purged and second.succeeded
    assert second.state_label == "success"
    assert second.error is not None and "purged" in second.error
    second.raise_for_state()  # no BatchFailed: the job did succeed


def test_run_poll_404_of_unseen_batch_is_reported_as_purged() -> None:
    only = _polls(FakeLivy(["404"]), 2)[-1]
    assert only.finished and only.purged and only.state_label == "purged"
    assert only.error_kind == "purged"


def test_run_poll_network_error_is_reported_then_retried() -> None:
    client = FakeLivy(["running", "running"], fail={1: LivyError("Cannot reach Livy at http://x")})
    first, second = _polls(client, 2)
    assert first.error_kind == "network" and first.transient and not first.finished
    assert first.error is not None and "Cannot reach Livy" in first.error
    assert second.error is None and second.errors == 0


def test_run_poll_gives_up_after_max_consecutive_errors() -> None:
    client = FakeLivy(["running"], fail={i: LivyError("down") for i in range(1, 10)})
    snaps = _polls(client, 10, max_errors=3)
    assert len(snaps) == 3 and snaps[-1].finished and snaps[-1].transient
    assert snaps[-1].error is not None and "Stopped watching after 3" in snaps[-1].error


@pytest.mark.parametrize(
    "exc,kind",
    [
        (AuthError("AADSTS7000215: invalid client secret"), "auth"),
        (LivyHTTPError(401, "Unauthorized"), "auth"),
        (LivyHTTPError(400, "bad"), "error"),
        (ZeroDivisionError("division by zero"), "internal"),
    ],
    ids=["auth", "http-401", "http-400", "bug"],
)
def test_run_poll_fatal_errors_stop_at_once_with_a_sentence(exc: BaseException, kind: str) -> None:
    snap = _polls(FakeLivy(["running"], fail={1: exc}), 3)[-1]
    assert snap.finished and snap.error_kind == kind and not snap.transient
    assert snap.error is not None and "Traceback" not in snap.error


def test_run_describe_error_server_error_is_retryable_kind() -> None:
    assert describe_error(LivyHTTPError(503, "busy"))[0] == "server"


def test_run_log_shrink_continues_from_new_end() -> None:
    client = FakeLivy(["running", "running"])
    reader = OffsetLogReader()
    run = BatchRun(client, 1, log_reader=reader)
    run.poll()
    client.log = client.log[:1]
    client.lines_per_poll = 0
    after = run.poll()
    assert reader.offset == 1 and after.error is None


def test_run_poll_notices_a_reused_id_and_stops() -> None:
    """Ids restart at 0 after a Livy restart without recovery: never follow a stranger's job."""
    snaps = _polls(FakeLivy(["running", "running"], name="someone-else"), 3, name="my-job")
    only = snaps[-1]
    assert len(snaps) == 1 and only.finished and only.error_kind == "replaced"
    assert only.state_label == "replaced" and only.lines == ()
    assert only.error is not None and "'someone-else'" in only.error and "'my-job'" in only.error


def test_run_attached_by_id_learns_the_name_then_notices_a_reused_id() -> None:
    livy = MemoryLivy()
    livy.add("mine", "running")
    with _client(livy) as client:
        run = BatchRun(client, 0)  # by id only, as `hdiaks logs 0 --follow` or app.watch(0) do
        assert run.poll().name == "mine"
        livy.restart()
        livy.add("theirs", "running")
        snap = run.poll()
    assert snap.finished and snap.error_kind == "replaced" and run.name == "mine"


def test_run_snapshot_is_immutable_and_short_in_repr() -> None:
    snap = Snapshot(batch_id=1, lines=tuple(f"line {i}" for i in range(10_000)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.polls = 3  # type: ignore[misc]
    assert len(repr(snap)) < 120 and "lines=10000" in repr(snap)


def test_run_wait_timeout_returns_unfinished_and_never_kills() -> None:
    livy = MemoryLivy()
    livy.add("slow", "running")
    with _client(livy) as client:
        run = BatchRun.attach(client, "slow")
        snap = run.wait(timeout=0.05, interval=0.01)
    assert not snap.finished and snap.state is BatchState.RUNNING
    assert livy.count("DELETE", "/batches/0") == 0 and 0 in livy.batches


# -- submit, attach, kill through the real LivyClient ---------------------------------------------


def test_run_submit_refuses_a_name_that_already_exists_before_any_post() -> None:
    """A retained older batch (or another user's) with the same name is never adopted."""
    livy = MemoryLivy()
    livy.add("nightly", "success")
    with _client(livy) as client, pytest.raises(DuplicateBatchName) as err:
        BatchRun.submit(client, BatchSpec(file=JAR, name="nightly"))
    assert livy.count("POST", "/batches") == 0
    assert "batch 0 (success) already has this name" in str(err.value)


def test_run_submit_after_dropped_answer_adopts_only_its_own_batch() -> None:
    livy = MemoryLivy()
    livy.add("older-job", "success")

    def drop_answer(_batch: object) -> None:
        livy.after_post.clear()
        raise requests.exceptions.ConnectionError("connection reset by peer")

    livy.after_post.append(drop_answer)
    with _client(livy) as client:
        run = BatchRun.submit(client, BatchSpec(file=JAR, name="fresh-job"))
    assert livy.count("POST", "/batches") == 1 and len(livy.batches) == 2
    assert run.name == "fresh-job" and run.batch_id == "1"


def test_run_submit_with_generated_name_skips_the_name_check() -> None:
    livy = MemoryLivy()
    with _client(livy) as client:
        run = BatchRun.submit(client, BatchSpec(file=JAR))
    assert run.name is not None and run.name.startswith("hdiaks-")
    assert [m for m, _ in livy.requests] == ["POST"]


def test_run_submit_reattach_follows_the_existing_batch_without_posting() -> None:
    livy = MemoryLivy()
    livy.add("dag-run-abc", "running", ("line 0",))
    with _client(livy) as client:
        run = BatchRun.submit(client, BatchSpec(file=JAR, name="dag-run-abc"), reattach=True)
        snap = run.poll()
    assert livy.count("POST", "/batches") == 0
    assert run.reattached and run.batch_id == "0" and snap.lines == ("line 0",)


def test_run_submit_reattach_without_a_batch_looks_the_name_up_once_then_posts() -> None:
    livy = MemoryLivy()
    with _client(livy) as client:
        run = BatchRun.submit(client, BatchSpec(file=JAR, name="dag-run-new"), reattach=True)
    assert not run.reattached
    # GET /version once per client (Apache Livy 0.7+ looks names up), then the name, then the POST.
    assert livy.requests == [("GET", "/version"), ("GET", "/batches/dag-run-new"), ("POST", "/batches")]


def test_run_transient_outage_longer_than_retries_never_kills_and_a_retry_reattaches() -> None:
    livy = MemoryLivy()
    with _client(livy) as client:
        run = BatchRun.submit(client, BatchSpec(file=JAR, name="etl"), max_errors=3)
        livy.batches[0].state = "running"
        outage = [lambda r: respond(r, 503, {"msg": "gateway busy"}) if r.method == "GET" else None]
        livy.before.extend(outage)
        snap = run.wait(interval=0.001, max_interval=0.001)
        assert snap.finished and snap.transient and snap.error_kind == "server"
        assert livy.count("DELETE", "/batches/0") == 0 and livy.batches[0].state == "running"
        livy.before.clear()
        again = BatchRun.submit(client, BatchSpec(file=JAR, name="etl"), reattach=True)
    assert again.batch_id == "0" and livy.count("POST", "/batches") == 1


def test_run_kill_deletes_once_and_a_gone_batch_is_fine() -> None:
    livy = MemoryLivy()
    livy.add("doomed", "running")
    with _client(livy) as client:
        run = BatchRun.attach(client, 0)
        run.kill()
        run.kill()  # already gone: 404, not an error
        snap = run.poll()
    assert livy.count("DELETE", "/batches/0") == 2 and livy.batches == {}
    assert snap.finished and snap.purged and snap.error is not None and "was killed" in snap.error


def test_run_attach_by_name_with_the_wrong_expected_name_is_not_found() -> None:
    livy = MemoryLivy()
    livy.add("a", "running")
    with _client(livy) as client, pytest.raises(BatchNotFound):
        BatchRun.attach(client, 0, expected_name="b")


def test_run_find_batch_trusts_a_404_for_a_name_and_does_not_scan_the_list() -> None:
    livy = MemoryLivy()
    for i in range(250):
        livy.add(f"job-{i}", "success")
    with _client(livy) as client:
        assert client.find_batch("missing") is None
    assert livy.count("GET", "/batches") == 0


@pytest.mark.parametrize(
    "hostile",
    ["../sessions/0", "0?doAs=admin", "0/log", "0#x", "a b", "%2e%2e", "..", "", "0\n1", "x" * 300],
    ids=["traversal", "doAs", "subpath", "fragment", "space", "encoded", "dotdot", "empty", "newline", "long"],
)
def test_run_hostile_batch_ids_never_reach_the_server(hostile: str) -> None:
    livy = MemoryLivy()
    with _client(livy) as client:
        for call in (client.kill_batch, client.get_batch, client.get_batch_state,
                     lambda b: client.get_log(b)):
            with pytest.raises(ConfigError) as err:
                call(hostile)
            assert err.value.problems[0].field == "batch"
    assert livy.requests == []
    with pytest.raises(ValueError, match="may hold only"):
        batch_path(hostile)


def test_run_valid_ids_and_uuids_are_percent_encoded_paths() -> None:
    assert batch_path(12) == "/batches/12"
    uuid = "1f0e7b9c-aaaa-4bbb-8ccc-0123456789ab"
    assert batch_path(uuid, "log") == f"/batches/{uuid}/log"
    assert batch_path("job+1@team:x") == "/batches/job%2B1%40team%3Ax"


def test_run_retry_policy_is_not_mounted_on_a_callers_session() -> None:
    session = requests.Session()
    before = dict(session.adapters)
    LivyClient(URL, session=session, retry=RetryPolicy(total=9))
    assert session.adapters == before and "X-Requested-By" not in session.headers
