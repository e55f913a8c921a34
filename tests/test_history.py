"""The history panel (issue 12 item 3): filters and paging over the sandbox's list, show log, kill,
clone into the form, resubmit, the timeline; every widget written on the dispatcher's thread.

Batches whose file does not exist are cheap (the sandbox marks them dead without starting Spark); the
kill test runs one real Spark job (``sleep.py``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import SandboxHandle
from livy_memory import BASE_URL, MemoryLivy, memory_session, respond

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.models import Batch, BatchState
from hdiaks_widgets.run import BatchRun
from hdiaks_widgets.widgets import app
from hdiaks_widgets.widgets._dispatch import Dispatcher
from hdiaks_widgets.widgets.form import JobForm
from hdiaks_widgets.widgets.history import (
    BatchHistoryPanel,
    HistoryFilter,
    SpecLedger,
    clone_spec,
    elapsed_seconds,
    me_of,
    read_page,
    timeline_png,
)

MISSING = "abfs://examples@sandbox.dfs.core.windows.net/nope/missing.py"
ENV = "abfs://examples@sandbox.dfs.core.windows.net/nope/env.tar.gz#env"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _batch(bid: str, state: str = "success", *, name: str | None = "job", owner: str | None = None,
           proxy: str | None = None, times: bool = False) -> Batch:  # fmt: skip
    if not times:
        return Batch(id=bid, state=BatchState(state), name=name, owner=owner, proxy_user=proxy)
    n = int(bid)
    return Batch(id=bid, state=BatchState(state), name=name, owner=owner, proxy_user=proxy,
                 submitted_at=T0 + timedelta(minutes=n), started_at=T0 + timedelta(minutes=n, seconds=40),
                 ended_at=None if state == "running" else T0 + timedelta(minutes=n + 3))  # fmt: skip


# -- pure decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flt", "batch", "expected"),
    [
        (HistoryFilter(state="dead"), _batch("1", "dead"), True),
        (HistoryFilter(state="dead"), _batch("1", "success"), False),
        (HistoryFilter(state="active"), _batch("1", "running"), True),
        (HistoryFilter(state="active"), _batch("1", "killed"), False),
        (HistoryFilter(state="finished"), _batch("1", "killed"), True),
        (HistoryFilter(state="finished"), _batch("1", "starting"), False),
        (HistoryFilter(name="ETL"), _batch("1", name="nightly-etl-3"), True),
        (HistoryFilter(name="etl"), _batch("1", name="spark-pi"), False),
        (HistoryFilter(name="etl"), _batch("1", name=None), False),
        (HistoryFilter(mine=True), _batch("1", proxy="alice"), True),
        (HistoryFilter(mine=True), _batch("1", owner="alice"), True),
        (HistoryFilter(mine=True), _batch("1", proxy="bob"), False),
        (HistoryFilter(mine=True), _batch("7"), True),  # submitted from this notebook (the ledger)
        (HistoryFilter(mine=True), _batch("8"), False),
    ],
    ids=["state", "state-no", "active", "active-no", "finished", "finished-no", "name-case", "name-no",
         "name-none", "mine-proxy", "mine-owner", "mine-other", "mine-ledger", "mine-unknown"],
)  # fmt: skip
def test_history_filter_matches(flt: HistoryFilter, batch: Batch, expected: bool) -> None:
    assert flt.matches(batch, me=frozenset({"alice"}), mine_ids=frozenset({"7"})) is expected


def test_history_me_is_the_profile_user_and_the_proxy_user() -> None:
    profile = ClusterProfile(flavour="livy", url="https://livy.example.com", auth="basic", username="alice")
    assert me_of(profile, BatchSpec(proxy_user="etl")) == {"alice", "etl"}
    assert me_of(ClusterProfile()) == frozenset()


def test_history_elapsed_uses_the_service_times_or_none() -> None:
    assert elapsed_seconds(_batch("1", times=True)) == pytest.approx(140.0)
    running = _batch("2", "running", times=True)
    assert elapsed_seconds(running, now=T0 + timedelta(minutes=3)) == pytest.approx(20.0)  # started at 2:40
    assert elapsed_seconds(_batch("3")) is None  # Apache Livy's batch object has no times


def test_history_clone_without_a_record_names_what_the_service_does_not_return() -> None:
    spec, notes = clone_spec(_batch("4", name="etl-101500-ab12", proxy="alice"), None, flavour="livy")
    assert spec == BatchSpec(name="etl", proxy_user="alice")
    assert len(notes) == 1 and "file" in notes[0] and "archives" in notes[0] and "conf" in notes[0]
    spec, notes = clone_spec(_batch("5", name="fab", proxy="alice"), None, flavour="fabric")
    assert spec.proxy_user is None and "proxy_user" in notes[0]


def test_history_clone_with_a_record_is_the_whole_body() -> None:
    recorded = BatchSpec(file=MISSING, args=("1",), name="etl-101500-ab12", archives=("a.tgz#env",), queue="q")
    spec, notes = clone_spec(_batch("6", name="etl-101500-ab12"), recorded, flavour="livy")
    assert notes == [] and spec == BatchSpec(file=MISSING, args=("1",), name="etl", archives=("a.tgz#env",), queue="q")


def test_history_timeline_png_draws_timed_batches_and_names_the_rest(tmp_path: Path) -> None:
    batches = [_batch("1", "success", name="etl", times=True), _batch("2", "dead", name="report", times=True),
               _batch("3", "killed", name="backfill", times=True), _batch("4", "running", name="stream", times=True),
               _batch("9", "success", name="from-livy")]  # fmt: skip
    png = timeline_png(batches, now=T0 + timedelta(minutes=8))
    assert png.startswith(PNG_MAGIC)
    (tmp_path / "timeline.png").write_bytes(png)
    empty = timeline_png([_batch("9")])
    assert empty.startswith(PNG_MAGIC) and empty != png


# -- paging over Apache Livy's list, in memory (oldest first, as SessionServlet slices it) --------------


def _memory(n: int, *, state: str = "success") -> tuple[MemoryLivy, LivyClient]:
    livy = MemoryLivy()
    for i in range(n):
        livy.add(f"old-{i}", state)
    return livy, LivyClient(BASE_URL, session=memory_session(livy), retry=RetryPolicy(total=0))


def _memory_panel(dispatcher: Dispatcher, client: LivyClient, *, page_size: int = 20) -> BatchHistoryPanel:
    profile = ClusterProfile(name="livy", flavour="livy", url=BASE_URL)
    return BatchHistoryPanel(dispatcher, lambda: profile, lambda _p: client, page_size=page_size)


def _ids(batches: Any) -> list[int]:
    return [int(b.id) for b in batches]


def test_history_read_page_newest_is_the_last_page_from_the_first_answers_total() -> None:
    livy, client = _memory(45)
    page = read_page(client, None, 20, newest_first=False)
    assert (page.start, page.total, _ids(page.batches)) == (25, 45, list(range(25, 45)))
    assert [p for m, p in livy.requests if m == "GET"] == ["/batches?from=0&size=20", "/batches?from=25&size=20"]
    livy.requests.clear()
    assert _ids(read_page(client, None, 20, newest_first=False, known_total=45).batches) == list(range(25, 45))
    assert len(livy.requests) == 1  # the total known from the last answer: one request
    small, small_client = _memory(3)
    assert _ids(read_page(small_client, None, 20, newest_first=False).batches) == [0, 1, 2]
    assert len(small.requests) == 1  # the whole list fits the first page
    assert _ids(read_page(client, None, 20, newest_first=True).batches) == list(range(20))  # page 0


def test_history_panel_opens_newest_first_and_pages_older_and_newer(dispatcher: Dispatcher) -> None:
    livy, client = _memory(45)
    panel = _memory_panel(dispatcher, client)
    panel.show()
    assert panel.wait_idle()
    assert _ids(panel.shown) == list(range(44, 24, -1))  # the newest batch first
    assert "batches 1–20 of 45, newest first" in panel.label.value
    assert panel.newer_button.disabled and not panel.older_button.disabled
    assert panel.row.value == "44"
    panel.older_button.click()
    assert panel.wait_idle()
    assert _ids(panel.shown) == list(range(24, 4, -1)) and "batches 21–40 of 45" in panel.label.value
    panel.older_button.click()
    assert panel.wait_idle()
    assert _ids(panel.shown) == [4, 3, 2, 1, 0] and "batches 41–45 of 45" in panel.label.value
    assert panel.older_button.disabled and not panel.newer_button.disabled
    panel.newer_button.click()
    assert panel.wait_idle()
    assert _ids(panel.shown) == list(range(24, 4, -1))
    panel.newer_button.click()
    assert panel.wait_idle()
    assert _ids(panel.shown) == list(range(44, 24, -1)) and panel.newest and panel.newer_button.disabled
    for i in range(3):  # new batches arrive: Refresh on the newest page follows them
        livy.add(f"new-{i}")
    panel.refresh_button.click()
    assert panel.wait_idle()
    assert _ids(panel.shown) == list(range(47, 27, -1)) and "of 48" in panel.label.value


def test_history_panel_second_click_goes_on_from_the_page_asked_for(dispatcher: Dispatcher) -> None:
    """Two clicks on Older before the first page arrives read two pages back (the latest answer wins)."""
    livy, client = _memory(45)
    panel = _memory_panel(dispatcher, client)
    panel.show()
    assert panel.wait_idle()
    gate = threading.Event()

    def hold(_request: requests.PreparedRequest) -> None:
        gate.wait(30)  # every list request waits until both clicks were made

    livy.before.append(hold)
    panel.older_button.click()
    panel.older_button.click()
    gate.set()
    assert panel.wait_idle()
    assert panel.start == 0 and _ids(panel.shown) == [4, 3, 2, 1, 0]


def test_history_panel_filters_apply_to_the_newest_page(dispatcher: Dispatcher) -> None:
    livy, client = _memory(30)
    livy.add("nightly-etl", "dead")
    livy.add("report", "running")
    panel = _memory_panel(dispatcher, client, page_size=10)
    panel.show()
    assert panel.wait_idle()
    panel.state.value = "dead"
    assert panel.wait_idle()
    assert _ids(panel.shown) == [30] and "1 match the filters" in panel.label.value
    panel.state.value = ""
    panel.name.value = "RE"
    assert panel.wait_idle()
    assert _ids(panel.shown) == [31]


def test_history_kill_says_the_batch_is_gone_when_livy_forgets_it(dispatcher: Dispatcher) -> None:
    livy, client = _memory(3, state="running")
    panel = _memory_panel(dispatcher, client)
    panel.show()
    assert panel.wait_idle()
    panel.select(1)
    assert panel.wait_idle()
    panel.kill_button.click()
    assert panel.wait_idle()
    assert _ids(panel.shown) == [2, 0]
    assert "Batch 1 was killed and is no longer listed" in panel.note.value
    assert "Refresh shows" not in panel.note.value


def test_history_kill_says_what_the_list_shows_when_the_service_keeps_it(dispatcher: Dispatcher) -> None:
    """A service that keeps a killed batch's record (Fabric, Synapse): the note names the state listed."""
    livy, client = _memory(2, state="running")
    kept: list[str] = []

    def keep(request: requests.PreparedRequest) -> requests.Response | None:
        if request.method == "DELETE":
            kept.append(str(request.url))
            return respond(request, 200, {"msg": "deleted"})  # answered, the record left as it was
        return None

    livy.before.append(keep)
    panel = _memory_panel(dispatcher, client)
    panel.show()
    assert panel.wait_idle()
    panel.select(0)
    assert panel.wait_idle()
    panel.kill_button.click()
    assert panel.wait_idle()
    assert len(kept) == 1
    assert "Batch 0 was asked to stop; the list still shows it running: Refresh to see it end." in panel.note.value
    livy.batches[0].state = "killed"
    panel.kill_button.click()  # still enabled: the list said running
    assert panel.wait_idle()
    assert "Batch 0 was killed: the list shows it killed." in panel.note.value


def test_history_frame_is_the_newest_page_newest_first() -> None:
    _livy, client = _memory(25)
    dispatcher = Dispatcher(mode="thread", max_rate=50)
    try:
        frame = _memory_panel(dispatcher, client, page_size=10).frame()
    finally:
        dispatcher.close()
    assert [int(i) for i in frame["id"]] == list(range(24, 14, -1))


# -- on the sandbox ----------------------------------------------------------------------------


class Recorder:
    """A client whose session keeps every POST /batches body as it went over the socket."""

    def __init__(self, sandbox: SandboxHandle, profile: ClusterProfile) -> None:
        self.bodies: list[dict[str, Any]] = []
        session = requests.Session()
        session.trust_env = False
        session.hooks["response"].append(self._hook)
        self.client = LivyClient.from_profile(profile, session=session)
        self.profile = profile

    def _hook(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        request = response.request
        if request.method == "POST" and str(request.url).rstrip("/").endswith("/batches") and request.body:
            self.bodies.append(json.loads(request.body))


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    d = Dispatcher(mode="thread", max_rate=50)
    yield d
    d.close()


def _profile(sandbox: SandboxHandle) -> ClusterProfile:
    return ClusterProfile(name="sandbox", flavour="sandbox", url=sandbox.url)


def _panel(dispatcher: Dispatcher, rec: Recorder, *, form: JobForm | None = None, ledger: SpecLedger | None = None,
           page_size: int = 100) -> BatchHistoryPanel:  # fmt: skip
    return BatchHistoryPanel(dispatcher, lambda: rec.profile, lambda _p: rec.client, form=form, ledger=ledger,
                             page_size=page_size)  # fmt: skip


def _submit_missing(rec: Recorder, sandbox: SandboxHandle, name: str, **fields: Any) -> str:
    run = BatchRun.submit(rec.client, BatchSpec(file=MISSING, name=name, **fields), name_checked=True)
    sandbox.wait_for_batch(run.batch_id, timeout=60)
    return run.batch_id


def _writes_off_owner(panel: BatchHistoryPanel, dispatcher: Dispatcher) -> list[str]:
    """Observe every trait of the panel's widgets; name each change made on another thread."""
    bad: list[str] = []

    def check(change: Any) -> None:
        if threading.get_ident() != dispatcher.owner:
            bad.append(f"{type(change['owner']).__name__}.{change['name']} on {threading.current_thread().name}")

    for widget in (panel.label, panel.table, panel.row, panel.note, panel.log_view, panel.image, panel.newer_button,
                   panel.older_button, *panel._actions):  # fmt: skip
        widget.observe(check)
    return bad


def test_history_filters_state_name_and_mine_on_the_sandbox(sandbox: SandboxHandle, dispatcher: Dispatcher) -> None:
    rec = Recorder(sandbox, _profile(sandbox))
    tag = f"hist-{uuid.uuid4().hex[:6]}"
    alice = _submit_missing(rec, sandbox, f"{tag}-a", proxy_user="alice")
    bob = _submit_missing(rec, sandbox, f"{tag}-b", proxy_user="bob")
    other = _submit_missing(rec, sandbox, f"other-{uuid.uuid4().hex[:6]}", proxy_user="alice")
    form = JobForm(JobConfig(profile=rec.profile, spec=BatchSpec(file=MISSING, proxy_user="alice")), profiles={})
    panel = _panel(dispatcher, rec, form=form)
    bad = _writes_off_owner(panel, dispatcher)
    panel.show()
    assert panel.wait_idle()
    ids = {str(b.id) for b in panel.shown}
    assert {alice, bob, other} <= ids
    panel.name.value = tag
    assert panel.wait_idle()
    assert [str(b.id) for b in panel.shown] == [bob, alice]  # newest first
    panel.mine.value = True
    assert panel.wait_idle()
    assert [str(b.id) for b in panel.shown] == [alice]
    panel.mine.value = False
    panel.state.value = "success"
    assert panel.wait_idle()
    assert panel.shown == ()
    assert "no batch on this page matches" in panel.table.value
    panel.state.value = "dead"
    assert panel.wait_idle()
    assert [str(b.id) for b in panel.shown] == [bob, alice]
    assert "2 match the filters" in panel.label.value
    assert bad == []


def test_history_pages_are_the_services_list(sandbox: SandboxHandle, dispatcher: Dispatcher) -> None:
    """The panel opens at the sandbox's last page (Apache Livy lists oldest first), newest row first;
    Older reads the page before it in Livy's list, Newer comes back; each page is what GET answers."""
    rec = Recorder(sandbox, _profile(sandbox))
    mine = [_submit_missing(rec, sandbox, f"page-{uuid.uuid4().hex[:6]}-{i}") for i in range(5)]
    panel = _panel(dispatcher, rec, page_size=2)
    panel.show()
    assert panel.wait_idle()
    with sandbox.http() as s:
        total = s.get(f"{sandbox.url}/batches", params={"from": 0, "size": 0}, timeout=10).json()["total"]
        last = s.get(f"{sandbox.url}/batches", params={"from": total - 2, "size": 2}, timeout=10).json()
        before = s.get(f"{sandbox.url}/batches", params={"from": total - 4, "size": 2}, timeout=10).json()
    assert panel.total == total and panel.start == total - 2
    assert [str(b.id) for b in panel.page] == [str(b["id"]) for b in last["sessions"]] == mine[-2:]
    assert [str(b.id) for b in panel.shown] == mine[:-3:-1]  # newest first
    assert panel.newer_button.disabled and not panel.older_button.disabled
    assert f"batches 1–2 of {total}, newest first" in panel.label.value
    panel.older_button.click()
    assert panel.wait_idle()
    assert panel.start == total - 4
    assert [str(b.id) for b in panel.page] == [str(b["id"]) for b in before["sessions"]] == mine[1:3]
    assert f"batches 3–4 of {total}" in panel.label.value and not panel.newer_button.disabled
    panel.newer_button.click()
    assert panel.wait_idle()
    assert panel.start == total - 2 and panel.newest


def test_history_clone_then_submit_posts_the_same_body(sandbox: SandboxHandle, dispatcher: Dispatcher) -> None:
    rec = Recorder(sandbox, _profile(sandbox))
    ledger = SpecLedger()
    base = f"clone-{uuid.uuid4().hex[:6]}"
    spec = BatchSpec(  # named as JobApp names a job with "unique suffix" ticked: -HHMMSS-xxxx
        file=MISSING, args=("--day", "2026-12-02", "two words"), name=f"{base}-101500-ab12",
        proxy_user="alice", jars=("abfs://examples@sandbox.dfs.core.windows.net/nope/a.jar",),
        py_files=("abfs://examples@sandbox.dfs.core.windows.net/nope/h.zip",),
        files=("abfs://examples@sandbox.dfs.core.windows.net/nope/app.conf",),
        archives=("abfs://examples@sandbox.dfs.core.windows.net/nope/env.tar.gz#env",),
        driver_memory="1g", driver_cores=1, executor_memory="1g", executor_cores=1, num_executors=1, queue="etl",
        conf={"spark.sql.shuffle.partitions": "4"},
    )  # fmt: skip
    run = BatchRun.submit(rec.client, spec, name_checked=True)
    ledger.record(rec.profile, run.batch_id, spec)  # what JobApp does for a batch it submitted
    sandbox.wait_for_batch(run.batch_id, timeout=60)
    form = JobForm(JobConfig(profile=rec.profile, spec=BatchSpec(file="abfs://examples@sandbox.dfs.core.windows.net/x.py")),
                   profiles={})  # fmt: skip
    panel = _panel(dispatcher, rec, form=form, ledger=ledger)
    panel.show()
    assert panel.wait_idle()
    panel.select(run.batch_id)
    assert panel.wait_idle()
    panel.clone_button.click()
    assert panel.wait_idle()
    assert "every field as submitted" in panel.note.value
    cfg, problems = form.config()
    assert problems == [] and form.name.value == base
    # Submit the form's job as JobApp does: the name gets its unique suffix again.
    cloned = BatchRun.submit(rec.client, replace(cfg.batch_spec, name=f"{base}-111500-cd34"))
    sandbox.wait_for_batch(cloned.batch_id, timeout=60)
    panel.resubmit_button.click()
    assert panel.wait_idle()
    assert panel.last_submitted is not None, panel.note.value
    sandbox.wait_for_batch(panel.last_submitted.batch_id, timeout=60)
    assert len(rec.bodies) == 3, rec.bodies
    original, from_clone, resubmitted = rec.bodies
    assert all(body["name"].startswith(base + "-") for body in rec.bodies)
    assert len({body["name"] for body in rec.bodies}) == 3  # Livy keeps a retained batch's name taken
    strip = [{k: v for k, v in body.items() if k != "name"} for body in rec.bodies]
    assert strip[0] == strip[1] == strip[2]
    assert set(original) == {"file", "args", "name", "proxyUser", "jars", "pyFiles", "files", "archives",
                             "driverMemory", "driverCores", "executorMemory", "executorCores", "numExecutors",
                             "queue", "conf"}  # fmt: skip
    # The sandbox's view of the clone carries what Livy returns of a body: name and proxyUser.
    with sandbox.http() as s:
        seen = s.get(f"{sandbox.url}/batches/{panel.last_submitted.batch_id}", timeout=10).json()
    assert seen["name"] == resubmitted["name"] and seen["proxyUser"] == "alice"


def test_history_clone_of_a_batch_from_elsewhere_says_what_is_missing(sandbox: SandboxHandle,
                                                                       dispatcher: Dispatcher) -> None:  # fmt: skip
    rec = Recorder(sandbox, _profile(sandbox))
    bid = _submit_missing(rec, sandbox, f"elsewhere-{uuid.uuid4().hex[:6]}", proxy_user="carol", queue="q")
    form = JobForm(JobConfig(profile=rec.profile, spec=BatchSpec(file="abfs://examples@sandbox.dfs.core.windows.net/x.py")),
                   profiles={})  # fmt: skip
    panel = _panel(dispatcher, rec, form=form)
    panel.show()
    assert panel.wait_idle()
    panel.select(bid)
    assert panel.wait_idle()
    panel.clone_button.click()
    assert panel.wait_idle()
    assert form.proxy_user.value == "carol" and form.name.value.startswith("elsewhere-")
    assert form.queue.value == "" and form.file.value == ""
    assert "returns only name and proxy_user" in panel.note.value and "queue" in panel.note.value
    panel.resubmit_button.click()
    assert panel.wait_idle()
    assert "Not resubmitted" in panel.note.value and len(rec.bodies) == 1


def test_history_show_log_reads_the_batchs_log(sandbox: SandboxHandle, dispatcher: Dispatcher) -> None:
    rec = Recorder(sandbox, _profile(sandbox))
    bid = _submit_missing(rec, sandbox, f"log-{uuid.uuid4().hex[:6]}")
    panel = _panel(dispatcher, rec)
    panel.show()
    assert panel.wait_idle()
    panel.select(bid)
    assert panel.wait_idle()
    panel.log_button.click()
    assert panel.wait_idle()
    assert f"Log of batch {bid}" in panel.log_view.value
    assert "does not exist" in panel.log_view.value


@pytest.mark.spark
def test_history_kill_stops_a_running_batch(sandbox: SandboxHandle, dispatcher: Dispatcher) -> None:
    rec = Recorder(sandbox, _profile(sandbox))
    run = BatchRun.submit(rec.client, BatchSpec(file=sandbox.examples["sleep_py"], args=("120",),
                                                name=f"kill-{uuid.uuid4().hex[:6]}"), name_checked=True)  # fmt: skip
    panel = _panel(dispatcher, rec)
    bad = _writes_off_owner(panel, dispatcher)
    deadline = datetime.now(UTC) + timedelta(seconds=180)
    while rec.client.get_batch(run.batch_id).state.value != "running":
        assert datetime.now(UTC) < deadline
        threading.Event().wait(0.3)
    panel.state.value = "active"
    panel.show()
    assert panel.wait_idle()
    panel.select(run.batch_id)
    assert panel.wait_idle()
    assert not panel.kill_button.disabled
    panel.kill_button.click()
    assert panel.wait_idle()
    # The sandbox, as Apache Livy, drops a deleted batch's record before it answers the DELETE.
    assert f"Batch {run.batch_id} was killed and is no longer listed" in panel.note.value
    assert run.batch_id not in {str(b.id) for b in panel.page}
    # Livy forgets a batch once it is deleted (DELETE kills it; GET is 404 afterwards); the sandbox
    # keeps it under /_sandbox/batches/{id} with the Spark processes still alive.
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    with sandbox.http() as s:
        while True:
            seen = s.get(f"{sandbox.url}/_sandbox/batches/{run.batch_id}", timeout=10).json()
            if seen["deleted"] and not seen["live_pids"]:
                break
            assert datetime.now(UTC) < deadline, seen
            threading.Event().wait(0.3)
    assert seen["batch"]["state"] == "killed"
    panel.state.value = ""
    panel.refresh_button.click()
    assert panel.wait_idle()
    assert run.batch_id not in {str(b.id) for b in panel.shown}
    assert bad == []


def test_history_timeline_renders_fabric_times(sandbox: SandboxHandle, dispatcher: Dispatcher,
                                               tmp_path: Path) -> None:  # fmt: skip
    profile = ClusterProfile(name="fab", flavour="fabric", url=sandbox.url, auth="none",
                             workspace_id=str(uuid.uuid4()), lakehouse_id=str(uuid.uuid4()))  # fmt: skip
    rec = Recorder(sandbox, profile)
    ids = []
    for i in range(3):
        run = BatchRun.submit(rec.client, profile_spec(profile, f"fab-{i}"), name_checked=True)
        ids.append(run.batch_id)
    for bid in ids:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not rec.client.get_batch(bid).state.is_terminal:
            assert datetime.now(UTC) < deadline
            threading.Event().wait(0.3)
    panel = _panel(dispatcher, rec)
    panel.show()
    assert panel.wait_idle()
    assert [str(b.id) for b in panel.shown] == ids[::-1]  # Fabric (here) lists newest first: page 0
    assert panel.start == 0 and "batches 1–3 of 3, newest first" in panel.label.value
    assert all(b.submitted_at is not None and b.ended_at is not None for b in panel.shown), panel.shown
    assert panel.timeline is not None and panel.timeline.startswith(PNG_MAGIC)
    assert panel.image.value == panel.timeline
    (tmp_path / "fabric-timeline.png").write_bytes(panel.timeline)


def profile_spec(profile: ClusterProfile, name: str) -> BatchSpec:
    return JobConfig(profile=profile, spec=BatchSpec(file="abfss://x@onelake.dfs.fabric.microsoft.com/nope/missing.py",
                                                     name=f"{name}-{uuid.uuid4().hex[:6]}")).batch_spec  # fmt: skip


def test_history_in_the_app_clones_what_the_app_submitted(sandbox: SandboxHandle, tmp_path: Path) -> None:
    """JobApp records each body it submits; its history panel clones every field back and watches a resubmit."""
    spec = BatchSpec(file=MISSING, args=("a", "b"), name=f"app-{uuid.uuid4().hex[:6]}", proxy_user="alice",
                     archives=("abfs://examples@sandbox.dfs.core.windows.net/nope/env.tar.gz#env",),
                     conf={"spark.sql.shuffle.partitions": "4"}, queue="etl", num_executors=1)  # fmt: skip
    ui = app(JobConfig(profile=_profile(sandbox), spec=spec), profiles={}, monitor_interval=0.2, max_interval=1.0,
             download_dir=tmp_path)  # fmt: skip
    try:
        batch = ui.submit()
        assert batch is not None, ui.message.value
        sandbox.wait_for_batch(batch.id, timeout=60)
        panel = ui.batch_history
        assert panel.widget in ui.history_section.children
        ui.form.set_config(JobConfig(profile=_profile(sandbox), spec=BatchSpec(file=MISSING)))
        panel.show()
        assert panel.wait_idle()
        panel.select(batch.id)
        assert panel.wait_idle()
        # The sandbox, as Apache Livy, sends no times: the row has those the app's monitor saw.
        ui.wait(timeout=60)
        panel.refresh_button.click()
        assert panel.wait_idle()
        row = next(b for b in panel.shown if str(b.id) == str(batch.id))
        assert row.submitted_at is not None and row.ended_at is not None and row.ended_at >= row.submitted_at, row
        assert row.state.is_terminal and panel.timeline is not None
        panel.select(batch.id)
        assert panel.wait_idle()
        panel.clone_button.click()
        assert panel.wait_idle()
        cloned, problems = ui.form.config()
        assert problems == [] and cloned.spec == spec  # the app's unique suffix is taken off again
        panel.resubmit_button.click()
        assert panel.wait_idle()
        assert panel.last_submitted is not None, panel.note.value
        assert panel.last_submitted.batch_id in ui.monitors  # the app watches the resubmitted batch
    finally:
        ui.close()


@pytest.mark.notebook
def test_history_panel_in_a_real_kernel(sandbox: SandboxHandle, tmp_path: Path) -> None:
    """nbclient runs the app in a real ipykernel: the panel opens at the newest page (in the full suite
    the shared sandbox holds hundreds of batches, listed oldest first), filters and clones there, its
    widgets written on the kernel's own thread (the dispatcher's kernel mode), and its view is shown."""
    import nbformat  # noqa: PLC0415 - notebook tier only
    from nbclient import NotebookClient  # noqa: PLC0415

    # As in the full suite, whichever way this test runs: more than two pages (20) of older batches
    # before the notebook's own, so page 0 of Livy's oldest-first list cannot hold it.
    rec = Recorder(sandbox, _profile(sandbox))
    while rec.client.list_batches(start=0, size=0).total < 45:
        BatchRun.submit(rec.client, BatchSpec(file=MISSING, name=f"older-{uuid.uuid4().hex[:8]}"), name_checked=True)
    name = f"nb-{uuid.uuid4().hex[:6]}"
    cells = [
        "import threading\n"
        "from hdiaks_widgets import JobConfig, ClusterProfile, BatchSpec, app\n"
        f"profile = ClusterProfile(name='sandbox', flavour='sandbox', url={sandbox.url!r})\n"
        f"spec = BatchSpec(file={MISSING!r}, name={name!r}, proxy_user='alice', archives=({ENV!r},))\n"
        "ui = app(JobConfig(profile=profile, spec=spec), profiles={})\n"
        "panel = ui.batch_history\n"
        "writers = set()\n"
        "for widget in (panel.table, panel.label, panel.row, panel.note, panel.image):\n"
        "    widget.observe(lambda change: writers.add(threading.get_ident()))\n"
        "print('mode', ui.dispatcher.mode)\n"
        "batch = ui.submit()\n"
        "print('submitted', batch.id if batch else ui.message.value)",
        "import time\n"
        "while ui.snapshots[batch.id].state_label not in ('dead', 'success'):\n"
        "    ui.dispatcher.flush(); time.sleep(0.2)\n"
        f"panel.name.value = {name!r}\n"
        "panel.show()  # the newest page: the shared sandbox may hold hundreds of earlier batches\n"
        "assert panel.wait_idle(60)\n"
        "print('shown', [str(b.id) for b in panel.shown], panel.timeline[:4] if panel.timeline else None)",
        "panel.select(batch.id); panel.wait_idle(30)\n"
        "ui.form.name.value = ''\n"
        "panel.clone_button.click(); panel.wait_idle(30)\n"
        "print('cloned', ui.form.name.value, ui.form.archives.value, ui.form.proxy_user.value)\n"
        "print('writers', writers == {threading.get_ident()}, len(writers))",
        "panel.widget",
        "ui.close()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    nbformat.write(nb, tmp_path / "history.ipynb")
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "mode kernel" in text
    bid = text.split("submitted ", 1)[1].split()[0]
    assert f"shown ['{bid}']" in text and "b'\\x89PNG'" in text
    assert f"cloned {name} {ENV} alice" in text
    assert "writers True 1" in text
    view = nb.cells[3].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in view


@pytest.mark.spark
def test_app_kill_from_its_button_or_the_history_panel_ends_killed_not_deleted_by_another_client(
    sandbox: SandboxHandle,
) -> None:
    """Apache Livy (and the sandbox) forgets a batch it deletes: after the app's own Kill, or a Kill
    from its history panel, the watched batch's end says this app killed it, not that it "was deleted
    by another client, or lost when the server restarted" (what a batch gone for no known reason reads)."""
    profile = _profile(sandbox)
    tag = uuid.uuid4().hex[:6]
    cfg = JobConfig(profile=profile, spec=BatchSpec(file=sandbox.examples["sleep_py"], args=("120",),
                                                    name=f"appkill-{tag}"))  # fmt: skip
    ui = app(cfg, monitor_interval=0.2, max_interval=0.5)
    try:
        def running(key: Any) -> bool:
            ui.dispatcher.flush()
            snap = ui.snapshots.get(key)
            return snap is not None and snap.batch is not None and snap.batch.state is BatchState.RUNNING

        def until(check: Any, what: str) -> None:
            deadline = datetime.now(UTC) + timedelta(seconds=180)
            while not check():
                assert datetime.now(UTC) < deadline, what
                threading.Event().wait(0.2)

        first = ui.submit()
        assert first is not None
        key = ui.current
        until(lambda: running(key), "the first batch running")
        ui.kill_button.click()
        ui.kill_yes.click()
        snap = ui.wait(timeout=120, batch_id=key)
        assert snap is not None and snap.finished and snap.error is not None
        assert f"Batch {first.id} was killed; the Livy server no longer lists it." in snap.error, snap.error
        assert "another client" not in snap.error and "another client" not in ui.status.value

        client = ui._client(profile)
        second = BatchRun.submit(client, replace(cfg.spec, name=f"appkill2-{tag}"), name_checked=True)
        monitor = ui.watch(second.batch_id, profile=profile)
        key2 = ui.current
        until(lambda: running(key2), "the second batch running")
        panel = ui.batch_history
        panel.refresh_button.click()
        assert panel.wait_idle()
        panel.select(second.batch_id)
        assert panel.wait_idle() and not panel.kill_button.disabled
        panel.kill_button.click()
        assert panel.wait_idle()
        snap = ui.wait(timeout=120, batch_id=key2)
        assert snap is not None and snap.finished and monitor.snapshot.finished
        assert f"Batch {second.batch_id} was killed; the Livy server no longer lists it." in (snap.error or ""), snap
        assert "another client" not in (snap.error or "")
    finally:
        ui.close()


# -- times this notebook saw, where the service's batch object has none (Apache Livy) -----------


def test_ledger_keeps_the_first_submitted_running_and_ended_times_it_saw() -> None:
    ticks = iter(T0 + timedelta(seconds=s) for s in range(0, 100, 10))
    ledger = SpecLedger(clock=lambda: next(ticks))
    profile = ClusterProfile(name="livy", flavour="livy", url=BASE_URL)
    ledger.record(profile, 7, BatchSpec(file=MISSING))  # T0
    for state in ("starting", "running", "running", "success", "success"):  # +10 … +50 s
        ledger.observe(profile, 7, BatchState(state))
    seen = ledger.with_seen_times(profile, _batch("7"))
    assert (seen.submitted_at, seen.started_at, seen.ended_at) == (T0, T0 + timedelta(seconds=20),
                                                                  T0 + timedelta(seconds=40))  # fmt: skip
    assert elapsed_seconds(seen) == 20.0
    # Watched, not submitted here: its first read is its "submitted" time; running has no end yet.
    ledger.observe(profile, "8", BatchState.RUNNING)  # +60 s
    eight = ledger.with_seen_times(profile, _batch("8", "running"))
    assert (eight.submitted_at, eight.started_at, eight.ended_at) == (T0 + timedelta(seconds=60),) * 2 + (None,)
    # The service's own times win; another profile's batch 7 or an unseen batch is left as it is.
    timed = _batch("9", times=True)
    assert ledger.with_seen_times(profile, timed) is timed
    other = ClusterProfile(name="other", flavour="livy", url="http://127.0.0.1:1")
    plain = _batch("7")
    assert ledger.with_seen_times(other, plain) is plain
    assert ledger.with_seen_times(profile, _batch("5")).started_at is None


def test_history_panel_draws_the_times_this_notebook_saw_for_apache_livy(dispatcher: Dispatcher) -> None:
    livy, client = _memory(3)
    mine = livy.add("mine", "success")
    profile = ClusterProfile(name="livy", flavour="livy", url=BASE_URL)
    ticks = iter(T0 + timedelta(seconds=s) for s in range(0, 100, 15))
    ledger = SpecLedger(clock=lambda: next(ticks))
    ledger.record(profile, mine.id, BatchSpec(file=MISSING, name="mine"))
    ledger.observe(profile, mine.id, BatchState.RUNNING)
    ledger.observe(profile, mine.id, BatchState.SUCCESS)
    panel = BatchHistoryPanel(dispatcher, lambda: profile, lambda _p: client, ledger=ledger)
    panel.show()
    assert panel.wait_idle()
    by_id = {str(b.id): b for b in panel.shown}
    assert by_id[str(mine.id)].started_at == T0 + timedelta(seconds=15)
    assert by_id[str(mine.id)].ended_at == T0 + timedelta(seconds=30)
    assert all(by_id[str(i)].started_at is None for i in range(3))  # not seen here: no times made up
    assert panel.timeline is not None and panel.timeline[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<td>0:15</td>" in panel.table.value  # the elapsed column: 15 s from seen running to seen ended
