"""widgets._dispatch and the app on it: one owner for UI state, network calls off the kernel thread.

The dispatcher tests run without a kernel (its ``hdiaks-dispatch`` thread owns the widgets); the app
tests drive ``JobApp`` against the sandbox over real sockets; the kernel tests run a real ipykernel.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import ipywidgets as w
import pytest
from auth_fixtures import (
    PUBLIC_ID,
    TENANT,
    auth_sandbox_fixture,  # noqa: F401 - fixture "auth_sandbox"
)

from hdiaks_widgets.models import Batch, BatchList, BatchState, LogPage
from hdiaks_widgets.widgets import JobApp, app
from hdiaks_widgets.widgets._dispatch import Dispatcher


@pytest.fixture
def dispatcher() -> Any:
    d = Dispatcher(mode="thread", max_rate=4.0)
    yield d
    d.close()


def _hold_owner(d: Dispatcher) -> threading.Event:
    """Keep the owner thread busy inside a flush until the returned event is set."""
    gate, running = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        gate.wait(10)

    d.post(hold)
    assert running.wait(10)
    return gate


def test_dispatcher_applies_posts_on_its_own_thread_in_order(dispatcher: Dispatcher) -> None:
    seen: list[tuple[int, int]] = []
    for i in range(5):
        dispatcher.post(lambda i=i: seen.append((i, threading.get_ident())))
    assert dispatcher.flush()
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {t for _, t in seen} == {dispatcher.owner}
    assert dispatcher.owner != threading.get_ident()


def test_dispatcher_latest_post_per_key_wins(dispatcher: Dispatcher) -> None:
    gate = _hold_owner(dispatcher)  # the keyed posts pile up behind it
    seen: list[int] = []
    for i in range(100):
        dispatcher.post(lambda i=i: seen.append(i), key="batch-1")
    gate.set()
    assert dispatcher.flush()
    assert seen == [99]
    assert dispatcher.stats().coalesced >= 98


def test_dispatcher_coalesces_a_burst_into_few_flushes(dispatcher: Dispatcher) -> None:
    seen: list[int] = []
    for i in range(2000):
        dispatcher.post(lambda i=i: seen.append(i), key=i % 50)
    assert dispatcher.flush()
    # 2000 events for 50 keys: every key shows its latest value, in far fewer flushes than events.
    assert sorted(seen[-50:]) == list(range(1950, 2000))
    assert dispatcher.stats().flushes < 100


def test_dispatcher_holds_sync_so_a_flush_sends_one_message_per_widget(dispatcher: Dispatcher) -> None:
    widget = w.HTML()
    sent: list[dict[str, Any]] = []
    widget.send_state = lambda key=None: sent.append({"key": key})  # type: ignore[method-assign]

    def three_writes() -> None:
        widget.value = "a"
        widget.placeholder = "b"
        widget.description = "c"

    dispatcher.post(three_writes, hold=(widget,))
    assert dispatcher.flush()
    assert len(sent) == 1 and widget.value == "a"


def test_dispatcher_run_calls_off_the_callers_thread_and_reports_through_post(dispatcher: Dispatcher) -> None:
    caller = threading.get_ident()
    where: dict[str, int] = {}

    def call() -> int:
        where["call"] = threading.get_ident()
        return 42

    result: list[int] = []
    dispatcher.run(call, lambda value: (result.append(value), where.update(done=threading.get_ident())))
    deadline = time.monotonic() + 10
    while not result and time.monotonic() < deadline:
        dispatcher.flush()
    assert result == [42]
    assert where["call"] not in (caller, dispatcher.owner)
    assert where["done"] == dispatcher.owner


def test_dispatcher_run_error_goes_to_on_error(dispatcher: Dispatcher) -> None:
    errors: list[BaseException] = []

    def fail() -> None:
        raise OSError("gateway stalled")

    future = dispatcher.run(fail, lambda _: None, errors.append)
    with pytest.raises(OSError):
        future.result(10)
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        dispatcher.flush()
    assert [str(e) for e in errors] == ["gateway stalled"]


def test_dispatcher_run_drops_a_superseded_result_with_the_same_key(dispatcher: Dispatcher) -> None:
    slow_gate = threading.Event()
    shown: list[str] = []
    slow = dispatcher.run(lambda: (slow_gate.wait(10), "page 1")[1], shown.append, key="history")
    fast = dispatcher.run(lambda: "page 2", shown.append, key="history")
    fast.result(10)
    slow_gate.set()
    slow.result(10)
    time.sleep(0.05)  # let the slow run's done-callback decide before flushing
    assert dispatcher.flush()
    assert shown == ["page 2"]
    assert dispatcher.stats().stale == 1


def test_dispatcher_callback_error_is_reported_and_later_posts_still_run() -> None:
    errors: list[BaseException] = []
    d = Dispatcher(mode="thread", on_error=errors.append)
    try:
        d.post(lambda: 1 / 0)  # type: ignore[func-returns-value]
        seen: list[int] = []
        d.post(lambda: seen.append(1))
        assert d.flush()
        assert seen == [1] and isinstance(errors[0], ZeroDivisionError)
    finally:
        d.close()


def test_dispatcher_every_ticks_on_the_owner_and_cancel_stops_it(dispatcher: Dispatcher) -> None:
    ticks: list[int] = []
    dispatcher.every(0.05, lambda: ticks.append(threading.get_ident()), key="elapsed")
    deadline = time.monotonic() + 10
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    dispatcher.cancel("elapsed")
    dispatcher.flush()
    count = len(ticks)
    time.sleep(0.5)
    dispatcher.flush()
    assert count >= 3 and len(ticks) == count
    assert set(ticks) == {dispatcher.owner}


def test_dispatcher_close_drops_pending_and_ignores_later_posts() -> None:
    d = Dispatcher(mode="thread")
    gate = _hold_owner(d)
    seen: list[int] = []
    d.post(lambda: seen.append(1), key="k")
    d.close()
    gate.set()
    d.post(lambda: seen.append(2))
    time.sleep(0.3)
    assert seen == [] and d.closed
    assert d.run(lambda: 1, lambda _: None).exception() is not None


def test_dispatcher_kernel_mode_outside_a_kernel_is_a_sentence() -> None:
    with pytest.raises(RuntimeError, match="mode: 'kernel' needs a running ipykernel"):
        Dispatcher(mode="kernel")


# -- a real ipykernel against a stalling sandbox ---------------------------------------------------

_KERNEL_SETUP = """
import threading, time
import ipywidgets as w
from hdiaks_widgets import JobConfig, ClusterProfile, BatchSpec, app
writers = {}
_notify = w.Widget.notify_change
def _record(self, change):
    writers[threading.get_ident()] = writers.get(threading.get_ident(), 0) + 1
    return _notify(self, change)
cfg = JobConfig(profile=ClusterProfile(name='sandbox', flavour='sandbox', url=%(url)r),
                spec=BatchSpec(file=%(file)r, args=('60',), name='stall-kill'))
ui = app(cfg, monitor_interval=0.2, max_interval=0.5)
batch = ui.submit()
main = threading.get_ident()
w.Widget.notify_change = _record  # from here on, every trait write of every widget is counted by thread
print(ui.dispatcher.mode, batch.id)
"""


@pytest.mark.sandbox
@pytest.mark.spark
@pytest.mark.notebook
def test_kernel_runs_a_cell_while_kill_and_history_stall_and_only_the_kernel_thread_writes_widgets(
    sandbox_faults: Any,
) -> None:
    """Kill and the history pager talk to a sandbox that answers after 6 s: the next cell runs
    before either answer came (ordering, not a timing number), and every widget write after the
    app was built happened on the kernel's own thread."""
    from jupyter_client.manager import start_new_kernel

    sandbox = sandbox_faults
    km, kc = start_new_kernel(kernel_name="python3")

    def run(code: str) -> str:
        out: list[dict[str, Any]] = []
        reply = kc.execute_interactive(code, timeout=120, output_hook=out.append)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")

    try:
        mode, bid = run(_KERNEL_SETUP % {"url": sandbox.url, "file": sandbox.examples["sleep_py"]}).split()
        assert mode == "kernel"
        sandbox.set_faults({"kind": "slow", "seconds": 6, "methods": ["DELETE"], "path_prefix": "/batches",
                            "count": None},
                           {"kind": "slow", "seconds": 6, "methods": ["GET"], "path_prefix": "/batches",
                            "count": None})  # fmt: skip
        # Clicks as the browser sends them: handled on the kernel's thread, which must stay free.
        run("ui.kill_button.click(); ui.kill_yes.click(); ui.history_button.click()")
        after = run("print(repr(ui.message.value)); print(repr(ui.history_label.value))")
        assert "Asking Livy to kill batch" in after  # the kill has not been answered yet
        assert "batches 1" not in after  # nor the history page
        assert sandbox.request_counts().get(f"DELETE /batches/{bid}", 0) == 1  # but the request is out
        done = ""
        for _ in range(120):
            done = run("print(repr(ui.message.value), 'batches 1' in ui.history_label.value)")
            if "Kill requested" in done and done.strip().endswith("True"):
                break
            time.sleep(0.5)
        assert f"Kill requested for batch {bid}." in done and done.strip().endswith("True"), done
        sandbox.clear_faults()
        final = run("s = ui.wait(timeout=120); print(s.state_label)\n"
                    "print(sorted(writers) == [main], sum(writers.values()) > 0, writers.get(main, 0))")
        lines = final.split()
        # Livy's DELETE ends the batch and drops its record: it is then seen killed or purged.
        assert lines[0] in ("killed", "purged") and lines[1] == "True" and lines[2] == "True", final
        run("ui.close()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- monitors: one loop, no stale snapshots -------------------------------------------------------


class _OneBatch:
    """A client with one running batch; counts its reads."""

    def __init__(self) -> None:
        self.state = "running"
        self.reads = 0

    def get_batch(self, batch_id: int | str) -> Batch:
        self.reads += 1
        return Batch(id=int(batch_id), state=BatchState(self.state), name="one", app_id="local-1")

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        return LogPage(id=int(batch_id), start=0, total=2, lines=("stdout: ", "\nstderr: "))

    def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList:
        return BatchList(start=start, total=1, batches=(self.get_batch(5),))

    def kill_batch(self, batch_id: int | str) -> None: ...

    def find_batch(self, name: str) -> Batch | None:
        return None


def _one_app(client: _OneBatch) -> JobApp:
    return app(client_factory=lambda profile: client, profiles={}, monitor_interval=0.02,  # type: ignore[arg-type]
               max_interval=0.05)


def test_app_two_concurrent_waits_start_one_poller_thread() -> None:
    client = _OneBatch()
    ui = _one_app(client)
    try:
        ui.watch(5)
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def wait_once() -> None:
            barrier.wait(10)
            results.append(ui.wait(timeout=0.5))

        threads = [threading.Thread(target=wait_once) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        pollers = list(threading.enumerate())
        poller = next(iter(ui._pollers.values()))
        assert len(results) == 2 and len(ui._pollers) == 1 and len(poller.watches) == 1
        assert sum(t.name == poller.name for t in pollers) == 1
    finally:
        ui.close()


def test_app_snapshot_of_a_replaced_monitor_never_reaches_the_view() -> None:
    client = _OneBatch()
    ui = _one_app(client)
    try:
        old = ui.watch(5)
        old_callback = old._callbacks[0]
        new = ui.watch(5)  # watching the same id again replaces the monitor
        assert new is not old and ui.monitors["5"] is new
        ui.settle()
        stale = replace(old.snapshot, batch=Batch(id=5, state=BatchState.DEAD, name="one", app_id="local-1"),
                        finished=True, error="a stale monitor's last word")
        old_callback(stale)  # what the replaced monitor would still deliver from the poller's thread
        ui.settle()
        assert ui.stale_dropped >= 1
        assert ui.snapshots["5"].state is not BatchState.DEAD
        assert "stale monitor" not in ui.status.value and 'data-state="dead"' not in ui.batches.value
    finally:
        ui.close()


# -- Sign out ---------------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_sign_out_button_forgets_the_sign_in_and_enables_sign_in(auth_sandbox: Any, tmp_path: Any) -> None:
    """Sign in with a device code (auto-approved by the sandbox identity), then Sign out: the
    cache file holds no account any more, the note says "Signed out." and Sign in is enabled."""
    from hdiaks_widgets.auth.cache import token_cache_dir
    from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig

    profile = ClusterProfile(
        name="entra", flavour="hdinsight-aks", fqdn="mycluster.pool.eastus.hdinsightaks.net",
        auth="device-code", client_id=PUBLIC_ID, tenant_id=TENANT, authority_host=auth_sandbox.authority_host,
        verify=auth_sandbox.ca_pem,
    )
    ui = app(JobConfig(profile=profile, spec=BatchSpec(file="abfs://c@a.dfs.core.windows.net/app.py")),
             profiles={})
    try:
        auth = ui.sign_in()
        assert auth is not None and auth.wait(timeout=30) and auth.status == "signed-in"
        ui.settle()
        cached = b"".join(p.read_bytes() for p in token_cache_dir().rglob("*") if p.is_file())
        assert b"access_token" in cached.lower() or b"AccessToken" in cached  # the sign-in is on disk
        ui.sign_out_button.click()  # no network call; runs off the kernel thread all the same
        assert ui.settle()
        assert "Signed out." in ui.sign_in_note.value
        assert not ui.sign_in_button.disabled and ui.cancel_sign_in_button.disabled
        assert auth.status == "signed-out"
        left = b"".join(p.read_bytes() for p in token_cache_dir().rglob("*") if p.is_file())
        assert b"AccessToken" not in left and b"RefreshToken" not in left
    finally:
        ui.close()
