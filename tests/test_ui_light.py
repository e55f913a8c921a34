"""A light UI (issue 14 item 2): the batch table re-sends only changed rows, the log view appends only
new lines, collapsed sections draw nothing, and the app's batches share one poller.

Every widget message is counted by wrapping ``Widget._send`` (what ipywidgets hands the comm), so
the tests count what a browser would receive. The client is a small scripted stand-in.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import ipywidgets as w
import pytest
from servers import LoopbackHTTP, QuietHandler

from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.models import AppInfo, Batch, BatchList, BatchState, LogPage
from hdiaks_widgets.widgets import JobApp, app


class ScriptedLivy:
    """Batches whose state and log the test sets; every read answers with what is set now."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: dict[str, str] = {}
        self.logs: dict[str, list[str]] = {}
        self.killed: list[str] = []

    def add(self, bid: int, state: str = "running", log: list[str] | None = None) -> None:
        with self.lock:
            self.states[str(bid)] = state
            self.logs[str(bid)] = ["stdout: ", *(log or []), "\nstderr: "]

    def _batch(self, bid: str) -> Batch:
        info = AppInfo(spark_ui_url=None, driver_log_url=None)
        return Batch(id=int(bid), state=BatchState(self.states[bid]), name=f"job-{bid}", app_id=f"local-{bid}",
                     app_info=info)

    def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch:
        raise AssertionError("not used")

    def get_batch(self, batch_id: int | str) -> Batch:
        with self.lock:
            return self._batch(str(batch_id))

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        with self.lock:
            lines = list(self.logs[str(batch_id)])
        first = 0 if start is None else start
        return LogPage(id=int(batch_id), start=first, total=len(lines), lines=tuple(lines[first:first + size]))

    def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList:
        with self.lock:
            batches = tuple(self._batch(b) for b in sorted(self.states, key=int))
        return BatchList(start=start, total=len(batches), batches=batches[start:start + size])

    def kill_batch(self, batch_id: int | str) -> None:
        self.killed.append(str(batch_id))

    def find_batch(self, name: str) -> Batch | None:
        return None


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int, dict[str, Any]]]]:
    """Every widget message as (model id, bytes of its JSON, state)."""
    log: list[tuple[str, int, dict[str, Any]]] = []

    def record(self: w.Widget, msg: dict[str, Any], buffers: Any = None) -> None:
        log.append((self.model_id, len(json.dumps(msg, default=str)), msg.get("state", {})))

    monkeypatch.setattr(w.Widget, "_send", record)
    yield log


def _watching(livy: ScriptedLivy, count: int) -> JobApp:
    ui = app(client_factory=lambda profile: livy, profiles={}, monitor_interval=0.02, max_interval=0.05)  # type: ignore[arg-type]
    for bid in range(count):
        livy.add(bid)
        ui.watch(bid)
    return ui


def _until(predicate: Any, ui: JobApp, what: str) -> None:
    for _ in range(500):
        ui.settle()
        if predicate():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"never happened: {what}")


def test_app_watches_every_batch_on_one_poller_and_follows_only_the_one_on_show() -> None:
    livy = ScriptedLivy()
    ui = _watching(livy, 12)
    try:
        assert len(ui._pollers) == 1
        poller = next(iter(ui._pollers.values()))
        _until(lambda: poller.stats().batches_watched == 12, ui, "12 batches watched")
        assert poller.stats().followed == (ui.current,) == ("11",)
        ui.batch_selector.value = "3"
        assert poller.stats().followed == ("3",)
        _until(lambda: "12 batches watched" in ui.poller_line.value, ui, "the poller line")
        assert "requests/min" in ui.poller_line.value
    finally:
        ui.close()


def test_batch_table_resends_only_the_row_that_changed(sent: list[tuple[str, int, dict[str, Any]]]) -> None:
    livy = ScriptedLivy()
    ui = _watching(livy, 20)
    try:
        _until(lambda: ui.batches.value.count("hdiaks-state") == 20, ui, "20 rows")
        rows = {r.model_id for r in ui.batches.children[1:]}
        assert len(rows) == 20
        sent.clear()
        with livy.lock:
            livy.states["7"] = "success"
        _until(lambda: 'data-state="success"' in ui.batches.value, ui, "batch 7's row shows success")
        rows_sent = [mid for mid, _, state in sent if mid in rows]
        assert len(set(rows_sent)) == 1  # only batch 7's row went to the browser
        assert ui.batches.header.model_id not in {mid for mid, _, _ in sent}
        whole = sum(len(r.value) for r in ui.batches.children)
        assert sum(size for mid, size, _ in sent if mid in rows) < whole / 5
    finally:
        ui.close()


def test_log_view_appends_only_new_lines(sent: list[tuple[str, int, dict[str, Any]]]) -> None:
    livy = ScriptedLivy()
    ui = _watching(livy, 1)
    try:
        with livy.lock:
            livy.logs["0"][1:1] = [f"25/11/24 08:01:02 INFO Job: early line {i}" for i in range(50)]
        _until(lambda: "early line 49" in ui.log.value, ui, "the first 50 lines")
        first_chunks = list(ui.log.children[1:])
        sent.clear()
        with livy.lock:
            livy.logs["0"][51:51] = ["25/11/24 08:01:03 INFO Job: late line"]
        _until(lambda: "late line" in ui.log.value, ui, "the new line")
        assert ui.log.children[1:len(first_chunks) + 1] == tuple(first_chunks)  # earlier chunks kept
        chunk_ids = {c.model_id for c in first_chunks}
        assert not [mid for mid, _, _ in sent if mid in chunk_ids]  # and never sent again
        new = ui.log.children[-1]  # a new chunk: its value goes out once, when its widget opens
        assert "late line" in new.value and "early line" not in new.value
        assert len(new.value) < sum(len(c.value) for c in first_chunks) / 10
        assert ui.log_panel.appends >= 1
    finally:
        ui.close()


def test_collapsed_batch_section_draws_nothing_until_opened(sent: list[tuple[str, int, dict[str, Any]]]) -> None:
    livy = ScriptedLivy()
    ui = _watching(livy, 5)
    try:
        _until(lambda: ui.batches.value.count("hdiaks-state") == 5, ui, "5 rows")
        ui.batches_section.selected_index = None
        writes = ui.batches.row_writes
        with livy.lock:
            livy.states["2"] = "dead"
        _until(lambda: ui.snapshots["2"].state is BatchState.DEAD, ui, "batch 2 dead")
        ui.settle()
        assert ui.batches.row_writes == writes and 'data-state="dead"' not in ui.batches.value
        ui.batches_section.selected_index = 0
        assert 'data-state="dead"' in ui.batches.value
    finally:
        ui.close()


def test_many_snapshots_are_coalesced_into_few_renders() -> None:
    livy = ScriptedLivy()
    ui = _watching(livy, 50)
    try:
        _until(lambda: ui.batches.value.count("hdiaks-state") == 50, ui, "50 rows")
        before, started = ui.dispatcher.stats(), time.monotonic()
        time.sleep(2.0)  # no settle(): only the dispatcher's own flushes, at most max_rate a second
        after, took = ui.dispatcher.stats(), time.monotonic() - started
        flushes, posted = after.flushes - before.flushes, after.posted - before.posted
        assert flushes <= took * ui.dispatcher.max_rate + 2, (flushes, took)
        assert posted > 3 * flushes and after.coalesced > before.coalesced, (posted, flushes)
    finally:
        ui.close()


def test_app_close_stops_the_poller_and_the_dispatcher() -> None:
    livy = ScriptedLivy()
    ui = _watching(livy, 3)
    poller = next(iter(ui._pollers.values()))
    _until(lambda: poller.running, ui, "the poller runs")
    ui.close()
    assert not poller.running and poller.closed and ui.dispatcher.closed
    alive = {t.ident for t in threading.enumerate()}
    assert ui.dispatcher.owner not in alive and poller.name not in {t.name for t in threading.enumerate()}


# -- progress on a real multi-stage Spark job ------------------------------------------------------


@pytest.mark.sandbox
@pytest.mark.spark
def test_progress_bar_moves_through_spark_numbers_and_ends_at_100(sandbox: Any) -> None:
    from hdiaks_widgets.config import ClusterProfile, JobConfig

    cfg = JobConfig(profile=ClusterProfile(name="sandbox", flavour="sandbox", url=sandbox.url),
                    spec=BatchSpec(file=sandbox.examples["stages_py"], args=("4", "1.5"), name="ui-progress"))
    ui = app(cfg, profiles={}, monitor_interval=0.2, max_interval=0.5, progress_interval=0.3)
    try:
        batch = ui.submit()
        assert batch is not None, ui.message.value
        snap = ui.wait(timeout=240)
        assert snap is not None and snap.succeeded, snap
        values = ui.progress.values
        assert len(set(values)) >= 3, values  # Spark's own numbers moved the bar
        # Not monotonic: Spark's totals grow as each new job becomes known (1/3 → 2/3 → 2/4 → ...).
        assert values[-1] == 1.0 and ui.progress.bar.bar_style == "success"
        assert "100 %" in ui.progress.percent.value
        assert "finished (last read while running: jobs " in ui.progress.text.value
        assert "elapsed" in ui.progress.elapsed.value
    finally:
        ui.close()


# -- the message budget: at most 2 widget messages a second per view (issue 14) --------------------


@pytest.fixture
def comm_msgs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every comm message a widget sends a browser, as (msg type, comm id): opens and closes as well
    as updates (``Widget._send`` alone misses a new widget's open)."""
    import comm as comm_module

    log: list[tuple[str, str]] = []
    dummy = type(comm_module.create_comm(target_name="hdiaks-test-probe"))

    def record(self: Any, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
               **keys: Any) -> None:  # fmt: skip
        log.append((msg_type, self.comm_id))

    monkeypatch.setattr(dummy, "publish_msg", record)
    yield log


class SteppedClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def _stepped(livy: ScriptedLivy, count: int, clock: SteppedClock, **options: Any) -> JobApp:
    """An app watching ``count`` running batches whose poller reads them once and then sleeps for an
    hour: the test hands it each poll's snapshots (``ui.apply``) and each tick of the clock."""
    ui = app(client_factory=lambda profile: livy, profiles={}, monitor_interval=3600, max_interval=3600,  # type: ignore[arg-type]
             clock=clock, **options)  # fmt: skip
    for bid in range(count):
        livy.add(bid, log=["25/11/24 08:00:00 INFO Job: started"])
        ui.watch(bid)
    _until(lambda: ui.batches.value.count("hdiaks-state") == count and all(s.polls for s in ui.snapshots.values()),
           ui, f"{count} batches read once")  # fmt: skip
    ui.dispatcher.cancel("tick")  # the test ticks the clock itself
    _second(ui, clock, [])
    _second(ui, clock, [])
    assert "started" in ui.log.value
    return ui


def _second(ui: JobApp, clock: SteppedClock, snaps: list[Any]) -> None:
    """One simulated second: a poll's snapshots, then the clock's tick, applied."""
    for snap in snaps:
        ui.apply(snap)
    clock.now += 1.0
    ui.dispatcher.post(ui._tick, key=("every", "tick"), hold=(ui.progress.elapsed, ui.poller_line, ui.log))
    assert ui.settle()


def _poll(ui: JobApp, second: int, *, lines: int = 2) -> list[Any]:
    """What one poll of the poller hands the app: every batch polled once more, the followed
    batch's log grown by ``lines``."""
    from dataclasses import replace

    snaps = []
    for key, snap in list(ui.snapshots.items()):
        new = tuple(f"25/11/24 08:00:{second % 60:02d} INFO Job: second {second} line {i}" for i in range(lines))
        grown = (*snap.lines, *new) if key == ui.current else tuple(snap.lines)  # a snapshot's lines only grow
        snaps.append(replace(snap, lines=grown, new_lines=new if key == ui.current else (), polls=snap.polls + 1,
                             updated_at=snap.updated_at + 1.0))  # fmt: skip
    return snaps


def test_app_sends_at_most_two_messages_a_second_while_fifty_batches_run(
        comm_msgs: list[tuple[str, str]]) -> None:  # fmt: skip
    livy, clock = ScriptedLivy(), SteppedClock()
    ui = _stepped(livy, 50, clock)
    try:
        clock_id = ui.progress.elapsed.comm.comm_id
        rows = {r.comm.comm_id for r in ui.batches.children}
        seconds, per_second, clock_texts = 24, [], []
        for second in range(seconds):
            comm_msgs.clear()
            _second(ui, clock, _poll(ui, second))
            per_second.append(list(comm_msgs))
            clock_texts.append(ui.progress.elapsed.value)
        total = sum(len(m) for m in per_second)
        # The clock ticked every second, one message each; nothing for 49 quiet batches' rows.
        assert [sum(1 for _, cid in m if cid == clock_id) for m in per_second] == [1] * seconds
        assert len(set(clock_texts)) == seconds
        assert not [cid for m in per_second for _, cid in m if cid in rows]
        # The log's new lines: one message per two seconds (the last chunk, with the count in it),
        # two when a new chunk opens (its open and the view's list of chunks).
        log_msgs = [len(m) - 1 for m in per_second]
        assert all(n <= 2 for n in log_msgs), log_msgs
        assert all(a + b <= 2 for a, b in zip(log_msgs[::2], log_msgs[1::2], strict=True)), log_msgs
        assert total <= 2 * seconds, (total, log_msgs)
        # ... and every line is on show, with the count (the last second's within one more tick).
        missing = [f"second {s} line {i}" for s in range(seconds) for i in range(2)
                   if f"second {s} line {i}" not in ui.log.value]  # fmt: skip
        assert missing in ([], [f"second {seconds - 1} line 0", f"second {seconds - 1} line 1"]), missing
        _second(ui, clock, _poll(ui, seconds, lines=0))
        shown = ui.log.value
        assert all(f"second {s} line {i}" in shown for s in range(seconds) for i in range(2))
        assert f"{1 + 2 * seconds} of {1 + 2 * seconds} lines shown" in shown
        assert shown.count("lines shown") == 1
    finally:
        ui.close()


def test_one_poll_and_one_tick_cost_at_most_two_messages_even_when_a_row_changes(
        comm_msgs: list[tuple[str, str]]) -> None:  # fmt: skip
    livy, clock = ScriptedLivy(), SteppedClock()
    ui = _stepped(livy, 20, clock, log_every=1.0)
    try:
        _second(ui, clock, _poll(ui, 0))
        comm_msgs.clear()
        _second(ui, clock, _poll(ui, 1, lines=0))  # a quiet second: the clock alone
        assert len(comm_msgs) == 1, comm_msgs
        comm_msgs.clear()
        _second(ui, clock, _poll(ui, 2))  # new lines in the tail chunk: the clock and that chunk
        assert sorted(cid for _, cid in comm_msgs) == sorted([ui.progress.elapsed.comm.comm_id,
                                                              ui.log.children[-1].comm.comm_id])  # fmt: skip
        from dataclasses import replace

        comm_msgs.clear()
        snaps = _poll(ui, 3, lines=0)
        done = next(s for s in snaps if s.batch_id == "7")
        row = next(r for r in ui.batches.children[1:] if 'title="7"' in r.value)
        ended = replace(done, batch=replace(done.batch, state=BatchState.SUCCESS), finished=True)
        _second(ui, clock, [ended if s is done else s for s in snaps])  # batch 7 ended: its row, by row
        assert sorted(cid for _, cid in comm_msgs) == sorted([ui.progress.elapsed.comm.comm_id, row.comm.comm_id])
        assert 'data-state="success"' in row.value
    finally:
        ui.close()


def test_collapsed_log_and_unselected_batches_send_nothing_but_the_clock(
        comm_msgs: list[tuple[str, str]]) -> None:  # fmt: skip
    livy, clock = ScriptedLivy(), SteppedClock()
    ui = _stepped(livy, 5, clock, log_every=1.0)
    try:
        ui.log_section.selected_index = None
        ui.settle()
        comm_msgs.clear()
        for second in range(6):
            _second(ui, clock, _poll(ui, second))
        assert {cid for _, cid in comm_msgs} == {ui.progress.elapsed.comm.comm_id}, comm_msgs
        assert len(comm_msgs) == 6
        ui.log_section.selected_index = 0  # opened again: the lines that came meanwhile are drawn
        ui.settle()
        assert "second 5 line 1" in ui.log.value and "13 of 13 lines shown" in ui.log.value
    finally:
        ui.close()


# -- two services, one batch id: the app keys its batches by (endpoint, id) ------------------------


class TinyLivy(LoopbackHTTP):
    """A loopback Apache Livy holding one running batch 3 named ``name``; records what it deletes."""

    def __init__(self, name: str) -> None:
        self.deleted: list[str] = []
        batch = {"id": 3, "name": name, "owner": None, "proxyUser": None, "state": "running", "appId": f"app-{name}",
                 "appInfo": {"driverLogUrl": None, "sparkUiUrl": None}, "log": []}  # fmt: skip
        lines = ["stdout: ", f"25/11/24 08:00:00 INFO Job: hello from {name}", "\nstderr: "]
        deleted = self.deleted

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/batches":
                    self.reply(200, json.dumps({"from": 0, "total": 1, "sessions": [batch]}).encode())
                elif path == "/batches/3":
                    self.reply(200, json.dumps(batch).encode())
                elif path == "/batches/3/log":
                    self.reply(200, json.dumps({"id": 3, "from": 0, "total": len(lines), "log": lines}).encode())
                else:
                    self.reply(404, json.dumps({"msg": f"{path} not found"}).encode())

            def do_DELETE(self) -> None:  # noqa: N802
                deleted.append(self.path)
                self.reply(200, b'{"msg": "deleted"}')

        super().__init__(Handler)


def test_app_keys_batches_by_endpoint_and_id_so_two_services_batch_3_do_not_clash() -> None:
    from hdiaks_widgets.config import ClusterProfile
    from hdiaks_widgets.widgets.app import BatchKey

    with TinyLivy("job-on-a") as a, TinyLivy("job-on-b") as b:
        pa, pb = (ClusterProfile(name=n, flavour="livy", url=s.url) for n, s in (("a", a), ("b", b)))
        ui = app(profiles={"a": pa, "b": pb}, monitor_interval=0.05, max_interval=0.1)
        try:
            first, second = ui.watch(3, profile=pa), ui.watch(3, profile=pb)
            assert first is not second and len(ui.monitors) == 2 and len(ui._pollers) == 2
            _until(lambda: all(s.batch is not None and s.polls for s in ui.snapshots.values())
                   and ui.batches.value.count("hdiaks-state") == 2, ui, "both batches 3 read")  # fmt: skip
            assert first.running and second.running  # the second did not replace the first
            names = {key.endpoint: snap.batch.name for key, snap in ui.snapshots.items() if snap.batch}
            assert names == {a.url: "job-on-a", b.url: "job-on-b"}
            with pytest.raises(KeyError, match="batch 3: watched on 2 endpoints"):
                ui.snapshots["3"]
            assert ui.snapshots[BatchKey(3, a.url)].batch.name == "job-on-a"  # type: ignore[union-attr]
            # Two rows, one per endpoint, each labelled; two choices in the selector.
            assert "job-on-a" in ui.batches.value and "job-on-b" in ui.batches.value
            assert len(ui.batches.children) == 3  # the header and two rows
            labels = [label for label, _ in ui.batch_selector.options]
            assert len(labels) == 2 and labels[0] != labels[1] and all(label.startswith("3 (livy ") for label in labels)
            # The batch on show is b's (watched last); choose a's: its log is shown, and Kill reaches a only.
            assert ui.current == BatchKey(3, b.url)
            ui.batch_selector.value = BatchKey(3, a.url)
            _until(lambda: "hello from job-on-a" in ui.log.value, ui, "a's log on show")
            assert "job-on-b" not in ui.log.value
            ui.kill_button.click()
            ui.kill_yes.click()
            _until(lambda: bool(a.deleted), ui, "a's batch 3 killed")
            assert a.deleted == ["/batches/3"] and b.deleted == []
        finally:
            ui.close()
