"""monitor: the thread loop around BatchRun with a small fake client, and a real sandbox job.

The poll step's decisions are tested in test_run.py."""

from __future__ import annotations

import dataclasses
import itertools
import threading

import pytest
from livy_memory import FakeLivy

from hdiaks_widgets.errors import AuthError
from hdiaks_widgets.models import BatchState
from hdiaks_widgets.monitor import (
    BatchMonitor,
    Snapshot,
    backoff,
    follow_batch,
)


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


def test_monitor_concurrent_starts_and_waits_run_one_loop() -> None:
    seen_threads: list[int] = []
    mon = BatchMonitor(FakeLivy(["running"] * 5 + ["success"]), 7, interval=0.01,
                       on_snapshot=lambda s: seen_threads.append(
                           sum(t.name == "hdiaks-monitor-7" for t in threading.enumerate())))
    callers = [threading.Thread(target=mon.start) for _ in range(6)]
    callers += [threading.Thread(target=mon.wait, args=(30,)) for _ in range(6)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(30)
    snap = mon.wait(30)
    assert snap.finished and seen_threads and max(seen_threads) == 1
    assert snap.polls == len(seen_threads)


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
        view = [ln for page in client.iter_log(batch.id) for ln in page.lines]
        cut = view.index("\nstderr: ")  # Livy's view: "stdout: ", stdout..., "\nstderr: ", stderr...
        assert len(view) < 2 * 200 + 2  # nothing rotated out: every line is still in the view
        # Each stream arrived exactly once and in order (the streams interleave by poll).
        assert [ln for ln in snap.lines if ln.source == "livy stdout"] == view[1:cut]
        assert [ln for ln in snap.lines if ln.source == "livy stderr"] == view[cut + 1 :]
        assert any("woke up" in ln for ln in snap.lines)
