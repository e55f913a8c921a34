"""poller: one loop for many batches. The request script against the in-memory Livy (exact counts,
a hand-driven clock), then the sandbox over real sockets (batches whose file is missing: no Spark)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from livy_memory import BASE_URL, MemBatch, MemoryLivy, memory_session, respond

from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.logview import LogDelta
from hdiaks_widgets.monitor import BatchMonitor
from hdiaks_widgets.poller import Poller, shared_poller
from hdiaks_widgets.run import BatchRun, Snapshot
from hdiaks_widgets.sandbox.logbuf import DriverFiles, LogBuffer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_of(livy: MemoryLivy) -> LivyClient:
    return LivyClient(BASE_URL, session=memory_session(livy), sleep=lambda _s: None)


def running(livy: MemoryLivy, count: int, *, lines: int = 3) -> list[MemBatch]:
    batches = []
    for i in range(count):
        buffer = LogBuffer()
        for j in range(lines):
            buffer.append("stdout", f"job {i} line {j}")
        batches.append(livy.add(f"job-{i}", "running", buffer=buffer))
    return batches


def requests_since(livy: MemoryLivy, mark: int) -> list[str]:
    return [f"{m} {p.split('?')[0]}" for m, p in livy.requests[mark:]]


def rounds(poller: Poller, clock: Clock, count: int) -> None:
    """``count`` rounds, each when the poller says the next one is due."""
    for _ in range(count):
        clock.now += poller.due_in()
        poller.poll_once()


@pytest.fixture
def livy() -> MemoryLivy:
    return MemoryLivy()


def test_poller_states_of_many_batches_come_from_one_list_request_per_round(livy: MemoryLivy) -> None:
    batches = running(livy, 20)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    for b in batches:
        poller.watch(b.id)
    mark = len(livy.requests)
    poller.poll_once()
    assert requests_since(livy, mark) == ["GET /batches"]
    assert all(poller.snapshot(b.id).state_label == "running" for b in batches)
    mark = len(livy.requests)
    rounds(poller, clock, 5)
    assert requests_since(livy, mark) == ["GET /batches"] * 5


def test_poller_fifty_batches_fill_a_capped_window_without_reads_of_their_own(livy: MemoryLivy) -> None:
    for i in range(30):
        livy.add(f"other-{i}", "success")
    batches = running(livy, 50)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, list_page=20, max_list_pages=3)  # at most 60 items
    for b in batches:
        poller.watch(b.id)
    rounds(poller, clock, 2)  # the first round learns where the end is
    mark = len(livy.requests)
    rounds(poller, clock, 4)
    assert requests_since(livy, mark) == ["GET /batches"] * 4
    assert all(poller.snapshot(b.id).polls >= 1 for b in batches)


def test_poller_reads_the_log_of_the_followed_batch_only_and_the_others_once_they_end(livy: MemoryLivy) -> None:
    batches = running(livy, 5)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    watches = [poller.watch(b.id) for b in batches]
    watches[0].follow_logs = True
    rounds(poller, clock, 3)
    logs = [p for m, p in livy.requests if p.split("?")[0].endswith("/log")]
    assert logs and {p.split("?")[0] for p in logs} == {"/batches/0/log"}
    assert list(watches[0].snapshot.lines[:3]) == ["job 0 line 0", "job 0 line 1", "job 0 line 2"]
    assert watches[1].snapshot.lines == ()

    ending = batches[3]
    assert ending.buffer is not None
    ending.buffer.append("stderr", "Exception in thread main: java.io.FileNotFoundException: input.csv")
    ending.state = "dead"
    mark = len(livy.requests)
    for _ in range(4):
        if watches[3].finished:
            break
        clock.now += poller.poll_once()
    snap = watches[3].snapshot
    assert snap.finished and snap.state_label == "dead"
    assert snap.error is not None and "FileNotFoundException: input.csv" in snap.error
    later = requests_since(livy, mark)
    assert "GET /batches/3/log" in later
    assert not any(p in later for p in ("GET /batches/1/log", "GET /batches/2/log", "GET /batches/4/log"))



def test_poller_every_end_arrives_a_quarter_interval_after_the_list_first_shows_it(livy: MemoryLivy) -> None:
    """Issue 14: fifty batches end together; the round whose list first shows them ended gives
    each its terminal state, and a short round ``confirm_after`` (0.25 s of a 1 s interval) later
    finishes every one of them: final state, error sentence, and the lines printed in between."""
    batches = running(livy, 50)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0)
    seen: dict[str, list[tuple[float, Snapshot]]] = {}
    for b in batches:
        poller.watch(b.id, on_snapshot=lambda snap: seen.setdefault(snap.batch_id, []).append((clock.now, snap)))
    rounds(poller, clock, 3)
    clock.now += poller.due_in()  # the next regular round is due: end them all just before it
    for b in batches:
        assert b.buffer is not None
        b.state = "dead" if b.id % 2 else "success"
        if b.id % 2:
            b.buffer.append("stderr", f"Exception in thread main: java.io.FileNotFoundException: in-{b.id}.csv")
    mark = len(livy.requests)
    listed_at = clock.now
    poller.poll_once()
    assert requests_since(livy, mark) == ["GET /batches"]  # the states, from the list; no log yet
    assert all(w.snapshot.state is not None and w.snapshot.state.is_terminal for w in poller.watches)
    assert not any(w.finished for w in poller.watches)
    for b in batches:
        assert b.buffer is not None
        b.buffer.append("stdout", f"late line of {b.id}")  # printed while Spark shut down
    mark = len(livy.requests)
    assert poller.due_in() == 0.25
    rounds(poller, clock, 1)
    sent = requests_since(livy, mark)
    assert sent.count("GET /batches") == 1 and len(sent) == 51  # one list for all, one log read each
    assert sorted(sent[1:]) == sorted(f"GET /batches/{b.id}/log" for b in batches)
    for b in batches:
        at, snap = next((t, s) for t, s in seen[str(b.id)] if s.finished)
        assert at - listed_at <= poller.interval and at - listed_at == 0.25
        assert snap.state_label == ("dead" if b.id % 2 else "success")
        assert f"late line of {b.id}" in snap.lines
        if b.id % 2:
            assert snap.error is not None and f"in-{b.id}.csv" in snap.error, snap.error
        else:
            assert snap.error is None
    assert poller.stats().batches_watched == 0


def test_poller_short_round_for_an_end_leaves_the_other_batches_rhythm_alone(livy: MemoryLivy) -> None:
    """One of ten batches ends: its confirming look is a round of its own (the list once, its log
    once); the nine others are not polled in it and their next round comes when it was due."""
    batches = running(livy, 10)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0, max_interval=1.0)
    polls: list[tuple[float, str]] = []
    for b in batches:
        poller.watch(b.id, on_snapshot=lambda snap: polls.append((clock.now, snap.batch_id)))
    rounds(poller, clock, 2)
    batches[3].state = "dead"
    assert batches[3].buffer is not None
    batches[3].buffer.append("stderr", "Exception in thread main: java.lang.IllegalStateException: no input")
    clock.now += poller.due_in()
    regular = clock.now
    poller.poll_once()
    assert not poller.snapshot(3).finished
    mark, before = len(livy.requests), len(polls)
    rounds(poller, clock, 1)
    assert clock.now == regular + 0.25
    assert requests_since(livy, mark) == ["GET /batches", "GET /batches/3/log"]
    assert polls[before:] == [(regular + 0.25, "3")]  # only the ended batch
    snap = poller.snapshot(3)
    assert snap.finished and snap.error is not None and "IllegalStateException: no input" in snap.error
    mark = len(livy.requests)
    rounds(poller, clock, 1)
    assert clock.now == regular + 1.0  # the others' round, on time
    assert requests_since(livy, mark) == ["GET /batches"]
    assert sorted(b for t, b in polls if t == clock.now) == sorted(str(b.id) for b in batches if b.id != 3)


def test_poller_confirming_look_waits_out_a_retry_after(livy: MemoryLivy) -> None:
    """The short round after an end is a round like any other: a 429 with ``Retry-After: 3`` holds
    it (no request at all until then), and the batch finishes at the first look after."""
    batches = running(livy, 4)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0)
    for b in batches:
        poller.watch(b.id)
    rounds(poller, clock, 2)
    batches[1].state = "dead"
    clock.now += poller.due_in()
    poller.poll_once()
    refusals = [0]

    def throttle(request: requests.PreparedRequest) -> requests.Response | None:
        if refusals[0] == 0:
            refusals[0] += 1
            return respond(request, 429, {"msg": "slow down"}, headers={"Retry-After": "3"})
        return None

    livy.before.append(throttle)
    assert poller.due_in() == 0.25
    clock.now += 0.25
    assert poller.poll_once() >= 3.0  # the list was refused: the look failed, nothing finished
    assert not poller.snapshot(1).finished and poller.snapshot(1).transient
    mark = len(livy.requests)
    clock.now += 2.9
    poller.poll_once()
    assert requests_since(livy, mark) == []
    for _ in range(3):
        if poller.snapshot(1).finished:
            break
        clock.now += poller.due_in()
        poller.poll_once()
    assert poller.snapshot(1).finished and poller.snapshot(1).state_label == "dead"
    assert clock.now - 1000.0 < 10.0


class DrainingReader:
    """A log reader whose end takes ``reads_to_end`` reads once the batch ended (Synapse's and
    Fabric's driver logs: read once more to see they stopped growing; a long log paged in)."""

    def __init__(self, reads_to_end: int, clock: Clock) -> None:
        self.reads_to_end = reads_to_end
        self.clock = clock
        self.reads: list[float] = []  # when it was asked after the end

    def read(self, client: Any, batch: Any) -> LogDelta:
        if not batch.state.is_terminal:
            return LogDelta()
        self.reads.append(self.clock.now)
        n = len(self.reads)
        return LogDelta((f"end line {n}",), at_end=n >= self.reads_to_end)


@pytest.mark.parametrize("reads_to_end", [1, 2, 3])
def test_poller_a_log_that_needs_more_reads_after_the_end_gets_them_a_quarter_interval_apart(
    livy: MemoryLivy, reads_to_end: int
) -> None:
    """Each look after the end is ``confirm_after`` from the one before, up to ``confirm_looks``
    (3): a log that needs two or three reads to reach its end (Synapse: once more to see the file
    stopped growing) still finishes well within one interval of the round that first saw the end."""
    batches = running(livy, 3)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0)
    readers = [DrainingReader(reads_to_end, clock) for _ in batches]
    for b, reader in zip(batches, readers, strict=True):
        poller.watch(BatchRun(poller.client, b.id, log_reader=reader, clock=clock))
    rounds(poller, clock, 2)
    batches[0].state = "success"
    clock.now += poller.due_in()
    first = clock.now
    poller.poll_once()
    while not poller.snapshot(0).finished:
        rounds(poller, clock, 1)
    snap = poller.snapshot(0)
    assert readers[0].reads == [first + 0.25 * k for k in range(1, reads_to_end + 1)]
    assert list(snap.lines) == [f"end line {k}" for k in range(1, reads_to_end + 1)]
    assert clock.now - first == 0.25 * reads_to_end <= poller.interval
    assert readers[1].reads == [] and readers[2].reads == []


def test_poller_a_log_that_never_reaches_its_end_is_read_once_an_interval_after_the_short_looks(
    livy: MemoryLivy,
) -> None:
    """A driver log that stays unreadable or keeps growing after the end (a YARN log still being
    aggregated) is not read four times a second for ever: after ``confirm_looks`` short looks, once
    per ``interval``, so the request rate stays the poller's."""
    batches = running(livy, 2)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0, max_interval=1.0)
    reader = DrainingReader(10**6, clock)
    poller.watch(BatchRun(poller.client, batches[0].id, log_reader=reader, clock=clock))
    poller.watch(batches[1].id)
    rounds(poller, clock, 2)
    batches[0].state = "dead"
    clock.now += poller.due_in()
    first = clock.now
    poller.poll_once()
    rounds(poller, clock, 8)
    gaps = [round(b - a, 2) for a, b in zip([first, *reader.reads], reader.reads, strict=False)]
    assert gaps == [0.25, 0.25, 0.25, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert not poller.snapshot(0).finished

def test_poller_followed_yarn_batch_reads_its_driver_log_through_the_run(livy: MemoryLivy, tmp_path: Path) -> None:
    """The run's own reader is used unchanged: on a YARN-shaped batch, the driver's lines come from
    the NodeManager page behind ``driverLogUrl`` (counted as log requests), not Livy's view."""
    buffer = LogBuffer("yarn", 10)
    buffer.driver_files = DriverFiles(tmp_path / "container")
    yarn = livy.add("yarn", "running", buffer=buffer)
    other = running(livy, 1)[0]
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    watch = poller.watch(yarn.id, follow_logs=True)
    poller.watch(other.id)
    for n in range(3):
        buffer.append("stderr", f"INFO Client: Application report for application_1_0001 (state: RUNNING) {n}")
        buffer.driver("stdout", f"driver line {n}")
        rounds(poller, clock, 1)
    yarn.state = "success"
    rounds(poller, clock, 3)
    snap = watch.snapshot
    assert snap.finished and snap.succeeded
    assert [ln for ln in snap.lines if ln.startswith("driver line")] == [f"driver line {n}" for n in range(3)]
    assert any("/node/containerlogs/" in p for _m, p in livy.requests)
    assert poller.stats().log_requests == sum("/log" in p or "/node/" in p for _m, p in livy.requests)


def test_poller_reads_spark_progress_only_for_the_followed_batch(livy: MemoryLivy) -> None:
    from hdiaks_widgets.run import BatchRun

    batches = running(livy, 2)
    client = client_of(livy)
    asked: list[str] = []

    class Progressing:
        def read(self, client: Any, batch: Any) -> Any:
            asked.append(str(batch.id))
            return None

    clock = Clock()
    poller = Poller(client, clock=clock)
    for b in batches:
        poller.watch(BatchRun(client, b.id, progress=Progressing()))  # type: ignore[arg-type]
    rounds(poller, clock, 2)
    assert asked == []
    poller.focus(batches[1].id)
    rounds(poller, clock, 2)
    assert asked == ["1", "1"]


def test_poller_focus_and_unfocus_switch_the_log_reads(livy: MemoryLivy) -> None:
    batches = running(livy, 3)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    for b in batches:
        poller.watch(b.id)
    poller.focus(batches[2].id)
    poller.poll_once()
    assert livy.count("GET", "/batches/2/log") == 1
    poller.unfocus(batches[2].id)
    mark = len(livy.requests)
    rounds(poller, clock, 3)
    assert "GET /batches/2/log" not in requests_since(livy, mark)
    assert poller.stats().followed == ()


def test_poller_holds_every_request_for_the_servers_retry_after(livy: MemoryLivy) -> None:
    batches = running(livy, 4)
    refusals = [0]

    def throttle(request: requests.PreparedRequest) -> requests.Response | None:
        if refusals[0] == 0 and (request.url or "").split("?")[0].endswith("/batches"):
            refusals[0] += 1
            return respond(request, 429, {"msg": "slow down"}, headers={"Retry-After": "30"})
        return None

    livy.before.append(throttle)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    for b in batches:
        poller.watch(b.id)
    delay = poller.poll_once()
    assert delay >= 30.0
    stats = poller.stats()
    assert stats.throttled_for == 30.0 and stats.last_error is not None and "429" in stats.last_error
    assert all(poller.snapshot(b.id).transient for b in batches)  # each run saw the failed poll
    mark = len(livy.requests)
    clock.now += 29.0
    poller.poll_once()
    assert requests_since(livy, mark) == []  # nothing, not even a per-batch read
    clock.now += 1.0
    poller.poll_once()
    assert requests_since(livy, mark) == ["GET /batches"]
    assert all(poller.snapshot(b.id).error is None for b in batches)


def test_poller_a_failed_list_is_each_runs_failed_poll_without_more_requests(livy: MemoryLivy) -> None:
    batches = running(livy, 3)
    livy.before.append(lambda r: respond(r, 502, {"msg": "bad gateway"}) if "/batches?" in (r.url or "") else None)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    for b in batches:
        poller.watch(b.id)
    mark = len(livy.requests)
    poller.poll_once()
    assert requests_since(livy, mark) == ["GET /batches"]
    assert all(poller.snapshot(b.id).errors == 1 for b in batches)


def test_poller_reads_a_batch_gone_from_the_list_on_its_own_and_reports_it_purged(livy: MemoryLivy) -> None:
    batches = running(livy, 3)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock)
    for b in batches:
        poller.watch(b.id)
    poller.poll_once()
    del livy.batches[1]  # deleted by another client, or purged
    mark = len(livy.requests)
    clock.now += 1.0
    poller.poll_once()
    assert requests_since(livy, mark) == ["GET /batches", "GET /batches/1"]
    snap = poller.snapshot(1)
    assert snap.finished and snap.purged and snap.error_kind == "purged"
    assert snap.error is not None and "no longer has it" in snap.error
    assert not poller.snapshot(0).finished


def test_poller_a_batch_outside_the_list_window_is_read_on_its_own(livy: MemoryLivy) -> None:
    old = livy.add("old-job", "running")
    for i in range(300):  # retained batches of other people, all after ours
        livy.add(f"other-{i}", "success")
    fresh = running(livy, 2)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, list_page=50, max_list_pages=1)
    for b in (old, *fresh):
        poller.watch(b.id)
    rounds(poller, clock, 3)
    assert livy.count("GET", f"/batches/{old.id}") >= 2  # not in the tail the list window reads
    assert livy.count("GET", f"/batches/{fresh[0].id}") == 0
    assert poller.snapshot(old.id).state_label == "running"
    assert poller.snapshot(fresh[1].id).state_label == "running"


def test_poller_ids_are_opaque_strings(livy: MemoryLivy) -> None:
    batches = running(livy, 2)
    poller = Poller(client_of(livy), clock=Clock())
    first = poller.watch(batches[1].id)
    assert poller.watch(str(batches[1].id)) is first and first.batch_id == "1"
    poller.watch("0")
    poller.poll_once()
    assert poller.snapshot(1).batch_id == "1" and poller.snapshot("0").state_label == "running"


def test_poller_quiet_batches_back_off_and_a_change_brings_them_back(livy: MemoryLivy) -> None:
    batches = running(livy, 3)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0, max_interval=5.0, factor=2.0)
    for b in batches:
        poller.watch(b.id)
    delays = []
    for _ in range(5):
        delay = poller.poll_once()
        delays.append(delay)
        clock.now += delay
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    batches[0].state = "success"
    assert poller.poll_once() == 0.25  # an end is looked at again soon: the run finishes with its log
    assert not poller.snapshot(0).finished
    clock.now += 0.25
    poller.poll_once()
    assert poller.snapshot(0).finished and poller.snapshot(0).succeeded


def test_poller_a_single_batch_is_read_by_id_not_by_list(livy: MemoryLivy) -> None:
    (batch,) = running(livy, 1)
    poller = Poller(client_of(livy), clock=Clock())
    poller.watch(batch.id)
    poller.poll_once()
    assert requests_since(livy, 0) == ["GET /batches/0"]


def test_poller_stats_count_requests_by_kind_over_the_window(livy: MemoryLivy) -> None:
    batches = running(livy, 10)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, interval=1.0, max_interval=1.0, window=60.0)
    for b in batches:
        poller.watch(b.id)
    poller.focus(batches[0].id)
    rounds(poller, clock, 60)
    stats = poller.stats()
    assert stats.list_requests == 60 and stats.log_requests == livy.count("GET", "/batches/0/log")
    assert stats.batch_requests == 0 and stats.batches_watched == 10 and stats.followed == ("0",)
    assert stats.requests == len(livy.requests)
    assert stats.requests_per_minute == pytest.approx(stats.requests_in_window, rel=0.05)
    assert "Livy requests/min" in str(stats) and "1 log followed" in str(stats)


def test_poller_runs_one_thread_for_many_batches_and_close_joins_it(livy: MemoryLivy) -> None:
    batches = running(livy, 30)
    poller = Poller(client_of(livy), interval=0.01, max_interval=0.02)
    seen = threading.Event()
    for b in batches:
        poller.watch(b.id, on_snapshot=lambda s: seen.set())
    starters = [threading.Thread(target=poller.start) for _ in range(8)]
    for t in starters:
        t.start()
    for t in starters:
        t.join(30)
    assert seen.wait(30)
    assert sum(t.name == poller.name for t in threading.enumerate()) == 1
    for b in batches:
        b.state = "success"
    assert all(poller.watch(b.id).wait(30).finished for b in batches)
    # thirty batches ended together: their log reads ran on the few helpers, never one thread each
    mine = [t for t in threading.enumerate() if t.name == poller.name or t.name.startswith(f"{poller.name}-io")]
    assert 1 <= len(mine) <= 1 + poller.workers
    assert poller.close() and not poller.running
    assert not any(t.is_alive() for t in mine)


def test_poller_subscribe_and_unsubscribe_from_other_threads_while_it_polls(livy: MemoryLivy) -> None:
    batches = running(livy, 4)
    poller = Poller(client_of(livy), interval=0.01, max_interval=0.01)
    watch = poller.watch(batches[0].id)
    for b in batches[1:]:
        poller.watch(b.id)
    got: list[tuple[int, Snapshot]] = []
    callbacks = [lambda s, k=k: got.append((k, s)) for k in range(50)]
    poller.start()
    try:
        stops: list[Any] = [None] * 50

        def subscribe(ks: range) -> None:
            for k in ks:
                stops[k] = poller.subscribe(batches[0].id, callbacks[k])

        def unsubscribe(ks: range) -> None:
            for k in ks:
                stops[k]()

        for work, groups in ((subscribe, range(0, 50, 10)), (unsubscribe, range(10, 50, 10))):
            threads = [threading.Thread(target=work, args=(range(g, g + 10),)) for g in groups]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        unsubscribe(range(1, 10))
        polls = watch.snapshot.polls
        while watch.snapshot.polls < polls + 2:  # a round that began before the last unsubscribe is over
            threading.Event().wait(0.01)
        mark = len(got)
        batches[0].state = "success"
        assert watch.wait(30).finished
    finally:
        poller.close()
    later = got[mark:]
    assert later and later[-1][1].finished and {k for k, _ in later} == {0}
    assert len({id(s) for _, s in later}) == len(later)  # one callback left: each snapshot once


def test_poller_callback_failure_is_kept_and_does_not_stop_the_others(livy: MemoryLivy) -> None:
    batches = running(livy, 2)
    poller = Poller(client_of(livy), clock=Clock())
    seen: list[str] = []

    def bad(snap: Snapshot) -> None:
        raise RuntimeError("view broke")

    first = poller.watch(batches[0].id, on_snapshot=bad)
    poller.watch(batches[1].id, on_snapshot=lambda s: seen.append(s.batch_id))
    poller.poll_once()
    assert first.callback_errors == ["RuntimeError: view broke"] and seen == ["1"]


def test_poller_unknown_batch_to_focus_names_the_fix(livy: MemoryLivy) -> None:
    poller = Poller(client_of(livy))
    with pytest.raises(KeyError, match="not watched by this poller; watch"):
        poller.focus("9")


def test_shared_poller_is_one_per_client_until_closed(livy: MemoryLivy) -> None:
    client = client_of(livy)
    first = shared_poller(client)
    try:
        assert shared_poller(client) is first and first.running
    finally:
        first.close()
    second = shared_poller(client)
    try:
        assert second is not first
    finally:
        second.close()


def test_batch_monitor_on_a_poller_keeps_its_api(livy: MemoryLivy) -> None:
    batches = running(livy, 3)
    client = client_of(livy)
    poller = Poller(client, interval=0.01, max_interval=0.02)
    seen: list[Snapshot] = []
    monitors = [BatchMonitor(client, b.id, poller=poller, follow_logs=False) for b in batches]
    monitors[0].add_callback(seen.append)
    try:
        for mon in monitors:
            mon.start()
        assert all(mon.running for mon in monitors)
        monitors[0].follow_logs = True
        batches[0].state = "success"
        snap = monitors[0].wait(timeout=30)
        assert snap.finished and snap.succeeded and seen[-1] is snap and monitors[0].snapshot is snap
        assert list(snap.lines[:1]) == ["job 0 line 0"]
        assert [s.polls for s in seen] == list(range(1, len(seen) + 1))
        monitors[1].stop()
        assert monitors[1].join(timeout=30) and not monitors[1].running
        assert "1" not in {w.batch_id for w in poller.watches}
        assert sum(t.name.startswith("hdiaks-monitor") for t in threading.enumerate()) == 0
    finally:
        poller.close()


def test_batch_monitor_wait_returns_once_its_poller_is_closed(livy: MemoryLivy) -> None:
    batches = running(livy, 2)
    client = client_of(livy)
    poller = Poller(client, interval=0.01, max_interval=0.02)
    mon = BatchMonitor(client, batches[0].id, poller=poller).start()
    poller.close()
    snap = mon.wait(timeout=30)
    assert not snap.finished and not mon.running
    with pytest.raises(RuntimeError, match="this poller is closed; make a new one"):
        BatchMonitor(client, batches[1].id, poller=poller).start()


# -- real sockets: the sandbox -----------------------------------------------------------------


def _missing(sandbox: Any, i: int) -> BatchSpec:
    return BatchSpec(file=f"abfs://examples@sandbox.dfs.core.windows.net/nope/poller-missing-{i}.py",
                     name=f"poller-missing-{i}")  # fmt: skip


def test_poller_on_the_sandbox_final_states_and_error_lines_arrive(sandbox_faults: Any) -> None:
    """Four batches whose file does not exist (the sandbox makes them dead at once, no Spark):
    each one's end and its error line arrive through the list and one log read at its end."""
    with LivyClient(sandbox_faults.url, session=sandbox_faults.http()) as client:
        ids = [client.submit_batch(_missing(sandbox_faults, i)).id for i in range(4)]
        sandbox_faults.clear_faults()  # count only what the poller sends
        with Poller(client, interval=0.2, max_interval=0.5) as poller:
            watches = [poller.watch(i) for i in ids]
            snaps = [w.wait(timeout=120) for w in watches]
            stats = poller.stats()
        counts = sandbox_faults.request_counts()
    for i, snap in zip(range(4), snaps, strict=True):
        assert snap.finished and snap.state_label == "dead", snap
        assert snap.error is not None and f"poller-missing-{i}.py does not exist" in snap.error
    assert counts.get("GET /batches", 0) == stats.list_requests >= 1
    per_batch = {k: v for k, v in counts.items() if k.startswith("GET /batches/")}
    assert all(k.endswith("/log") for k in per_batch), per_batch  # states came from the list
    assert stats.batches_finished == 4 and stats.batch_requests == 0 and not poller.running


def test_poller_learns_a_newest_first_list_from_its_ids(livy: MemoryLivy) -> None:
    """Some Livy builds sort the list newest first (``sortWith(_.id > _.id)``): the new batches
    are then at the head, and the window follows them there."""
    for i in range(300):
        livy.add(f"other-{i}", "success")
    fresh = running(livy, 2)

    def newest_first(request: requests.PreparedRequest) -> requests.Response | None:
        parts = urlsplit(request.url or "")
        if parts.path != "/batches" or request.method != "GET":
            return None
        query = parse_qs(parts.query)
        start, size = int(query["from"][0]), int(query["size"][0])
        rows = sorted(livy.batches.values(), key=lambda b: -b.id)
        return respond(request, 200, {"from": start, "total": len(rows),
                                      "sessions": [b.view() for b in rows[start:start + size]]})  # fmt: skip

    livy.before.append(newest_first)
    clock = Clock()
    poller = Poller(client_of(livy), clock=clock, list_page=50, max_list_pages=1)
    for b in fresh:
        poller.watch(b.id)
    rounds(poller, clock, 3)
    assert [p for m, p in livy.requests] == ["/batches?from=0&size=50"] + ["/batches?from=0&size=18"] * 2
    assert all(poller.snapshot(b.id).state_label == "running" for b in fresh)


@pytest.mark.parametrize("flavour", ["fabric", "synapse"])
def test_poller_on_the_service_dialects_reads_their_list_and_the_full_batch_at_the_end(
    sandbox_faults: Any, flavour: str
) -> None:
    """Fabric (UUID ids, ``$top``/``$skip``, activity summaries) and Synapse (pages of at most 20,
    ``detailed=true`` for ``result``/``errorInfo``) on the sandbox's paths: 25 batches whose file
    is missing end dead, each with its own error, from list pages plus the full batch read on its
    own only at its start and its end."""
    from uuid import uuid4

    from hdiaks_widgets import dialects

    if flavour == "fabric":
        base = dialects.fabric_base_url(str(uuid4()), str(uuid4()), host=sandbox_faults.url)
    else:
        base = dialects.synapse_base_url("sandboxws", f"p{uuid4().hex[:12]}", host=sandbox_faults.url)
    with LivyClient(base, dialect=flavour, session=sandbox_faults.http()) as client:
        ids = [client.submit_batch(_missing(sandbox_faults, i)).id for i in range(25)]
        path = client.base_url.removeprefix(sandbox_faults.url) + "/batches"
        sandbox_faults.clear_faults()
        with Poller(client, interval=0.2, max_interval=0.5) as poller:
            watches = [poller.watch(i) for i in ids]
            snaps = [w.wait(timeout=120) for w in watches]
            stats = poller.stats()
        counts = sandbox_faults.request_counts()
    assert all(isinstance(i, str) for i in ids)
    for i, snap in enumerate(snaps):
        assert snap.finished and snap.state_label == "dead", snap
        assert snap.error is not None and f"poller-missing-{i}.py" in snap.error, snap.error
    lists = counts.get(f"GET {path}", 0)
    assert lists == stats.list_requests >= 1
    singles = {k: v for k, v in counts.items() if k.startswith(f"GET {path}/")}
    assert len(singles) == 25 and max(singles.values()) <= 2, singles  # the start and the end, no more
