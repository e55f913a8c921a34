"""monitor: the pure poll step with a small fake client, the thread loop, and a real sandbox job."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Sequence

import pytest

from hdiaks_widgets.errors import AuthError, BatchFailed, BatchNotFound, LivyError, LivyHTTPError
from hdiaks_widgets.models import Batch, BatchState, LogPage
from hdiaks_widgets.monitor import (
    BatchMonitor,
    Snapshot,
    backoff,
    describe_error,
    follow_batch,
    poll,
)


class FakeLivy:
    """Answers get_batch/get_log from a script: one state per get_batch call, log grows with it."""

    def __init__(
        self,
        states: Sequence[str],
        *,
        lines_per_poll: int = 3,
        fail: dict[int, BaseException] | None = None,
        final_lines: Sequence[str] = (),
    ) -> None:
        self.states = list(states)
        self.lines_per_poll = lines_per_poll
        self.fail = fail or {}
        self.final_lines = list(final_lines)
        self.calls = 0
        self.log: list[str] = []
        self.log_requests: list[tuple[int | None, int]] = []
        self.served: list[str] = []

    def get_batch(self, batch_id: int | str) -> Batch:
        self.calls += 1
        if self.calls in self.fail:
            raise self.fail[self.calls]
        state = self.states[min(self.calls, len(self.states)) - 1]
        if state == "404":
            raise BatchNotFound(batch_id, '{"msg":"Session not found."}')
        base = len(self.log)
        self.log.extend([f"line {base + i}" for i in range(self.lines_per_poll)])
        if BatchState(state).is_terminal and self.final_lines:
            self.log.extend(self.final_lines)
            self.final_lines = []
        return Batch(id=int(batch_id), state=BatchState(state), name="job", app_id="local-1")

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        self.log_requests.append((start, size))
        first = max(0, len(self.log) - size) if start is None else start
        lines = tuple(self.log[first : first + size])
        self.served.extend(lines)
        return LogPage(id=int(batch_id), start=first, total=len(self.log), lines=lines)


def _run_polls(client: FakeLivy, count: int, **kw: object) -> list[Snapshot]:
    snap = Snapshot(batch_id=7)
    out = []
    for _ in range(count):
        snap = poll(client, snap, **kw)  # type: ignore[arg-type]
        out.append(snap)
        if snap.finished:
            break
    return out


def test_poll_reads_new_log_lines_by_offset() -> None:
    client = FakeLivy(["running", "running"])
    first, second = _run_polls(client, 2)
    assert first.new_lines == ("line 0", "line 1", "line 2")
    assert second.new_lines == ("line 3", "line 4", "line 5")
    assert [start for start, _ in client.log_requests] == [0, 3]


def test_poll_never_fetches_a_line_twice() -> None:
    client = FakeLivy(["starting", "running", "running", "success"], lines_per_poll=250)
    snaps = _run_polls(client, 10, page_size=100)
    assert snaps[-1].finished
    assert client.served == client.log
    assert snaps[-1].lines == tuple(client.log)


def test_poll_finishes_after_terminal_state_seen_twice() -> None:
    client = FakeLivy(["running", "success"], final_lines=["Pi is roughly 3.14"])
    snaps = _run_polls(client, 5)
    assert [s.finished for s in snaps] == [False, False, True]
    assert snaps[-1].succeeded and snaps[-1].error is None
    assert "Pi is roughly 3.14" in snaps[-1].lines


def test_poll_dead_batch_reports_last_error_lines() -> None:
    client = FakeLivy(["running", "dead"], final_lines=["Traceback (most recent call last):",
                                                        "RuntimeError: sandbox example failure"])
    last = _run_polls(client, 5)[-1]
    assert last.finished and last.error_kind == "failed"
    assert last.error is not None and "ended in state dead" in last.error
    assert "RuntimeError: sandbox example failure" in last.error
    with pytest.raises(BatchFailed):
        last.raise_for_state()


def test_poll_404_after_success_is_purged_not_failure() -> None:
    client = FakeLivy(["success", "404"])
    first, second = _run_polls(client, 3)
    assert second.finished and second.purged
    assert second.succeeded
    assert second.state_label == "success"
    assert second.error is not None and "purged" in second.error
    second.raise_for_state()  # no BatchFailed: the job did succeed


def test_poll_404_of_unseen_batch_is_reported_as_purged() -> None:
    only = _run_polls(FakeLivy(["404"]), 2)[-1]
    assert only.finished and only.purged and only.state_label == "purged"
    assert only.error_kind == "purged"


def test_poll_network_error_is_reported_then_retried() -> None:
    client = FakeLivy(["running", "running"], fail={1: LivyError("Cannot reach Livy at http://x")})
    first, second = _run_polls(client, 2)
    assert first.error_kind == "network" and not first.finished
    assert first.error is not None and "Cannot reach Livy" in first.error
    assert second.error is None and second.errors == 0


def test_poll_gives_up_after_max_consecutive_errors() -> None:
    client = FakeLivy(["running"], fail={i: LivyError("down") for i in range(1, 10)})
    snaps = _run_polls(client, 10, max_errors=3)
    assert len(snaps) == 3 and snaps[-1].finished
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
def test_poll_fatal_errors_stop_at_once_with_a_sentence(exc: BaseException, kind: str) -> None:
    snap = _run_polls(FakeLivy(["running"], fail={1: exc}), 3)[-1]
    assert snap.finished and snap.error_kind == kind
    assert snap.error is not None and "Traceback" not in snap.error


def test_describe_error_server_error_is_retryable_kind() -> None:
    assert describe_error(LivyHTTPError(503, "busy"))[0] == "server"


def test_poll_log_shrink_continues_from_new_end() -> None:
    client = FakeLivy(["running", "running"])
    snap = poll(client, Snapshot(batch_id=1))  # type: ignore[arg-type]
    client.log = client.log[:1]
    client.lines_per_poll = 0
    after = poll(client, snap)  # type: ignore[arg-type]
    assert after.log_offset == 1 and after.error is None


def test_backoff_grows_to_maximum() -> None:
    assert list(itertools.islice(backoff(1.0, factor=2.0, maximum=5.0), 5)) == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_snapshot_is_immutable() -> None:
    snap = Snapshot(batch_id=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.error = "x"  # type: ignore[misc]


def test_monitor_wait_returns_finished_snapshot_and_calls_back() -> None:
    seen: list[Snapshot] = []
    mon = BatchMonitor(FakeLivy(["starting", "running", "success"]), 7, on_snapshot=seen.append, interval=0.01)
    snap = mon.wait(timeout=30)
    assert snap.finished and snap.succeeded
    assert seen[-1] is snap
    assert [s.polls for s in seen] == list(range(1, len(seen) + 1))


def test_monitor_stop_ends_a_long_wait() -> None:
    first = threading.Event()
    mon = BatchMonitor(FakeLivy(["running"]), 7, on_snapshot=lambda s: first.set(), interval=3600.0)
    mon.start()
    assert first.wait(30)
    mon.stop()
    assert mon.join(timeout=30)
    assert not mon.snapshot.finished


def test_monitor_callback_exception_does_not_stop_it() -> None:
    def bad(snap: Snapshot) -> None:
        raise RuntimeError("view broke")

    mon = BatchMonitor(FakeLivy(["running", "success"]), 7, on_snapshot=bad, interval=0.01)
    assert mon.wait(timeout=30).finished
    assert mon.callback_errors and "view broke" in mon.callback_errors[0]


def test_follow_batch_emits_lines_and_returns_final_batch() -> None:
    got: list[str] = []
    batch = follow_batch(FakeLivy(["running", "success"]), 7, on_lines=got.extend, poll_interval=0.01)
    assert batch.state is BatchState.SUCCESS
    assert got == [f"line {i}" for i in range(len(got))] and len(got) >= 6


def test_follow_batch_raises_the_error_that_stopped_it() -> None:
    with pytest.raises(AuthError):
        follow_batch(FakeLivy(["running"], fail={1: AuthError("no token")}), 7, poll_interval=0.01)


# -- real sandbox ------------------------------------------------------------------------------


@pytest.mark.spark
def test_monitor_real_job_keeps_main_thread_free(sandbox) -> None:  # type: ignore[no-untyped-def]
    """While the monitor thread watches a real Spark job, the main thread keeps doing work and
    the monitor keeps producing snapshots; the job's whole log arrives exactly once."""
    from hdiaks_widgets.config import BatchSpec
    from hdiaks_widgets.livy import LivyClient

    with LivyClient(sandbox.url, session=sandbox.http()) as client:
        batch = client.submit_batch(BatchSpec(file=sandbox.examples["sleep_py"], args=("4",), name="mon-sleep"))
        polls_seen: list[int] = []
        mon = BatchMonitor(client, batch.id, on_snapshot=lambda s: polls_seen.append(s.polls), interval=0.2)
        mon.start()
        main_thread_rounds = 0
        polls_at_rounds: list[int] = []
        while not mon.snapshot.finished:
            # main-thread work (what the kernel does for other cells) completes between polls
            sum(i * i for i in range(20000))
            main_thread_rounds += 1
            polls_at_rounds.append(mon.snapshot.polls)
            threading.Event().wait(0.05)
        snap = mon.wait(timeout=180)
        assert snap.succeeded, snap.error
        assert main_thread_rounds > 0
        # the monitor produced several snapshots while the main thread was working
        assert len(set(polls_at_rounds)) >= 3
        full = [ln for page in client.iter_log(batch.id) for ln in page.lines]
        assert list(snap.lines) == full
        assert any("woke up" in ln for ln in snap.lines)
