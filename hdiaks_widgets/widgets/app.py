"""The notebook UI wired together: :class:`JobApp` (form, export, submit, status, progress, tables,
log) and :func:`app`, the one entry point (``from hdiaks_widgets import app``).

Threads: one :class:`~hdiaks_widgets.widgets._dispatch.Dispatcher` owns the widgets. Every change
— a poller's snapshot, a submit's result, MSAL's sign-in prompt, a history page, a kill's answer,
the clock's tick — reaches them through ``Dispatcher.post`` under ``hold_sync()``, on the kernel's
own thread in a kernel (STYLE.md rule 9). Every network call (submit, kill, sign-in, sign-out's
client, a history page) runs in the dispatcher's worker pool, so a click never blocks the kernel;
an in-flight flag makes a double click submit once. The app's batches are watched on ONE shared
:class:`~hdiaks_widgets.poller.Poller` per client: the batch on show has its log followed (and its
Spark progress read), the others are read from the list and their log only once they end. A
batch is known by its :class:`BatchKey` (endpoint and id: two services may both have a batch 3). A
monitor replaced for the same batch gets a new generation: its late snapshots are dropped.
Every failure is shown as a sentence (``monitor.describe_error``), never as a traceback.

What it sends a browser (issue 14: at most 2 widget messages a second per view while batches run):
the clock, once a second; the followed log's new lines at most every ``log_every`` seconds (2 s:
one message, the last chunk, which carries the line count too), at once when the batch ends; a
batch's row when its row changes; the poller's cost line when what it says changes, or every 30 s.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets as w
import pandas as pd

from hdiaks_widgets.auth import DeviceCodeAuth
from hdiaks_widgets.config import ClusterProfile, JobConfig
from hdiaks_widgets.errors import AuthError, ConfigProblem
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import Batch, id_sort_key
from hdiaks_widgets.monitor import BatchMonitor, Snapshot, describe_error
from hdiaks_widgets.poller import Poller
from hdiaks_widgets.progress import ProgressReader
from hdiaks_widgets.run import BatchRun
from hdiaks_widgets.tables import batch_table, concat_batch_tables
from hdiaks_widgets.widgets._common import ClientFactory, LivyClientLike, note_html
from hdiaks_widgets.widgets._dispatch import Dispatcher
from hdiaks_widgets.widgets.export import DagExportPanel
from hdiaks_widgets.widgets.form import JobForm
from hdiaks_widgets.widgets.history import BatchHistoryPanel, SpecLedger
from hdiaks_widgets.widgets.signin import SignInPanel
from hdiaks_widgets.widgets.status import BatchRows, LogPanel, ProgressPanel, running, status_html

__all__ = ["BatchKey", "JobApp", "app"]

log = logging.getLogger(__name__)

_STATS_EVERY = 30.0  # seconds between updates of the poller's cost line when only its rate moved
_RATE = re.compile(r"\d+ requests/min")
V = TypeVar("V")


class BatchKey(str):
    """A batch of the app: its id (the string itself, as people read and type it) and the endpoint it
    lives on (``endpoint``). Two keys are equal when both match, so a Fabric UUID and a Livy batch
    3 on two endpoints never clash; a plain id string equals every key with that id, so
    ``ui.snapshots["3"]`` and ``ui.current == "3"`` keep working (the app's mappings refuse a plain
    id that two endpoints share)."""

    endpoint: str

    def __new__(cls, batch_id: int | str, endpoint: str) -> BatchKey:
        key = super().__new__(cls, str(batch_id))
        key.endpoint = endpoint
        return key

    @property
    def batch_id(self) -> str:
        return str.__str__(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BatchKey):
            return str.__eq__(self, other) and self.endpoint == other.endpoint
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"BatchKey({self.batch_id!r}, endpoint={self.endpoint!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (BatchKey, (self.batch_id, self.endpoint))


class _ByBatch(dict[BatchKey, V]):
    """The app's per-batch state, keyed by :class:`BatchKey`; a plain id finds its batch when one
    endpoint has it."""

    def resolve(self, key: object) -> BatchKey | None:
        if isinstance(key, BatchKey):
            return key if dict.__contains__(self, key) else None
        want = str(key)
        found = [k for k in self if k.batch_id == want]
        if len(found) > 1:
            where = ", ".join(sorted(k.endpoint for k in found))
            raise KeyError(f"batch {want}: watched on {len(found)} endpoints ({where}); "
                           "look it up by BatchKey(id, endpoint)")  # fmt: skip
        return found[0] if found else None

    def __getitem__(self, key: object) -> V:
        found = self.resolve(key)
        if found is None:
            raise KeyError(key)
        return dict.__getitem__(self, found)

    def __contains__(self, key: object) -> bool:
        try:
            return self.resolve(key) is not None
        except KeyError:
            return True

    def get(self, key: object, default: Any = None) -> Any:
        found = self.resolve(key)
        return default if found is None else dict.__getitem__(self, found)


class JobApp:
    """Form + live status + progress + tables + logs for batches submitted from this notebook."""

    def __init__(
        self,
        cfg: JobConfig | None = None,
        *,
        client_factory: ClientFactory | None = None,
        profiles: Mapping[str, ClusterProfile] | None = None,
        monitor_interval: float = 0.5,
        max_interval: float = 5.0,
        history_page_size: int = 20,
        log_last: int = 200,
        download_dir: str | os.PathLike[str] = ".",
        export_dir: str = "dags",
        max_renders: float = 4.0,
        progress_interval: float = 2.0,
        log_every: float = 2.0,
        dispatcher: Dispatcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The owner of UI state first: everything below reports through it.
        self.dispatcher = dispatcher or Dispatcher(max_rate=max_renders, on_error=self._on_ui_error)
        self.form = JobForm(cfg, profiles=profiles)
        self.export = DagExportPanel(self.form, out_dir=export_dir)
        self._client_factory: ClientFactory = client_factory or self._livy_client
        self._clients_lock = threading.Lock()
        self._clients: dict[ClusterProfile, LivyClientLike] = {}
        self._pollers: dict[int, Poller] = {}  # id(client) -> the one poller of that client
        self._interval = monitor_interval
        self._max_interval = max_interval
        self._progress_interval = progress_interval
        self._log_every = log_every  # seconds between appends of the followed log (it ends: at once)
        self._clock = clock
        self._lock = threading.RLock()
        self._in_flight = False
        self._closed = False
        self.monitors: _ByBatch[BatchMonitor] = _ByBatch()
        self.snapshots: _ByBatch[Snapshot] = _ByBatch()
        self._clients_of: _ByBatch[LivyClientLike] = _ByBatch()
        self._profiles_of: dict[BatchKey, ClusterProfile] = {}  # the profile each batch is watched through
        self._generation: dict[BatchKey, int] = {}  # the generation of each batch's current monitor
        self._progress: dict[BatchKey, ProgressReader] = {}
        self.stale_dropped = 0  # snapshots of replaced monitors that never reached the view
        self.targets: _ByBatch[str] = _ByBatch()  # batch -> the flavour it was submitted to
        self.current: BatchKey | None = None
        self._syncing_selector = False
        self._dirty_rows = True  # the batch rows need drawing (set while the section is collapsed)
        self._stats_at: float | None = None
        self._stats_shape = ""
        self._log_due = False  # the followed log has lines not sent yet (they go with a tick)
        self._log_at = 0.0

        self.submit_button = w.Button(description="Submit", button_style="primary", icon="play")
        self.submit_button.add_class("hdiaks-submit")
        self.message = w.HTML()
        self.message.add_class("hdiaks-message")
        self.batch_selector = w.Dropdown(options=[], description="Batch", style={"description_width": "50px"})
        self.kill_button = w.Button(description="Kill", button_style="danger", icon="stop", disabled=True)
        self.kill_button.add_class("hdiaks-kill")
        self.kill_yes = w.Button(description="Yes, kill it", button_style="danger")
        self.kill_yes.add_class("hdiaks-kill-yes")
        self.kill_no = w.Button(description="Cancel")
        self.kill_question = w.HTML()
        self.kill_confirm = w.HBox([self.kill_question, self.kill_yes, self.kill_no], layout=w.Layout(display="none"))
        self.sign_in_panel = SignInPanel(lambda: self._client(self.form.selected_profile()),
                                         dispatcher=self.dispatcher,
                                         profile=self.form.selected_profile)  # fmt: skip
        self.sign_in_button = self.sign_in_panel.sign_in_button
        self.cancel_sign_in_button = self.sign_in_panel.cancel_button
        self.sign_out_button = self.sign_in_panel.sign_out_button
        self.sign_in_note = self.sign_in_panel.note
        self.sign_in_box = self.sign_in_panel.widget
        self.status = w.HTML(status_html(None))
        self.status.add_class("hdiaks-status")
        self.progress = ProgressPanel(clock)
        self.poller_line = w.HTML()
        self.poller_line.add_class("hdiaks-poller-stats")
        self.batches = BatchRows()
        self.batches_section = w.Accordion(children=[self.batches], titles=("Batches submitted from this notebook",),
                                           selected_index=0)  # fmt: skip
        # The cluster's batches, newest first: filters, per-row actions (log, kill, clone, resubmit) and a
        # timeline (widgets/history.py). history_* name its Refresh, pager, label and table.
        self.history_ledger = SpecLedger()  # the bodies submitted here: what a clone needs
        self.batch_history = BatchHistoryPanel(
            self.dispatcher, self.form.selected_profile, self._client, form=self.form, ledger=self.history_ledger,
            page_size=history_page_size, on_submitted=lambda run, target: self.watch(run.batch_id, profile=target),
            on_kill=self._on_history_kill,
        )  # fmt: skip
        self.history_button = self.batch_history.refresh_button
        self.history_prev = self.batch_history.newer_button
        self.history_next = self.batch_history.older_button
        self.history_label = self.batch_history.label
        self.history = self.batch_history.table
        self.log_panel = LogPanel(
            current=self._current_snapshot,
            on_filter=self._on_log_filter,
            log_last=log_last,
            download_dir=Path(download_dir),
        )
        self.log_level = self.log_panel.level
        self.log_source = self.log_panel.source
        self.log_text = self.log_panel.text
        self.log_last = self.log_panel.last
        self.download_button = self.log_panel.download_button
        self.log_note = self.log_panel.note
        self.log_notice = self.log_panel.log_notice
        self.log = self.log_panel.view
        self.log_section = w.Accordion(children=[self.log_panel.widget], titles=("Driver log",), selected_index=0)

        self.export_section = w.Accordion(children=[self.export.widget], titles=("Export DAG",), selected_index=None)
        self.history_section = w.Accordion(children=[self.batch_history.widget],
                                           titles=("Cluster batch history: filters, actions, timeline",),
                                           selected_index=None)  # fmt: skip
        self.widget = w.VBox([
            self.form.widget, self.export_section,
            w.HBox([self.submit_button, self.batch_selector, self.kill_button]),
            self.kill_confirm, self.message, self.sign_in_box, self.status, self.progress.widget,
            self.batches_section, self.poller_line, self.history_section, self.log_section,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-app")

        self.form.on_validate(self._on_form_validate)
        self.submit_button.on_click(self._on_submit_click)
        self.kill_button.on_click(self._on_kill_click)
        self.kill_yes.on_click(self._on_kill_yes_click)
        self.kill_no.on_click(self._on_kill_no_click)
        self.batch_selector.observe(self._on_batch_selector_change, names="value")
        self.batches_section.observe(self._on_section_change, names="selected_index")
        self.log_section.observe(self._on_section_change, names="selected_index")
        self._sync_submit()
        self._sync_sign_in()
        # The clock and the poller's cost line: one timer of the dispatcher, not a thread per batch.
        self.dispatcher.every(1.0, self._tick, key="tick",
                              hold=(self.progress.elapsed, self.poller_line, self.log_panel.view))  # fmt: skip

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- public API --------------------------------------------------------------------------

    @property
    def submitting(self) -> bool:
        return self._in_flight

    def submit(self) -> Batch | None:
        """Submit the form's job now (in the calling thread) and start watching it.

        Returns the batch, or ``None`` when the form is invalid, a submit is already in flight,
        or Livy refused (the reason is shown in the UI and in ``message``).
        """
        cfg = self._begin_submit()
        if cfg is None:
            self.dispatcher.flush()
            return None
        batch = self._submit(cfg)
        self.dispatcher.flush()
        return batch

    def wait(self, timeout: float | None = None, *, batch_id: int | str | None = None) -> Snapshot | None:
        """Block until the batch (default: the current one) finishes; its latest snapshot, shown.

        Called on the kernel's thread (a cell), the widgets keep updating while it waits."""
        bid = self.current if batch_id is None else batch_id
        key = self.monitors.resolve(bid) if bid is not None else None
        monitor = self.monitors.get(key) if key is not None else None
        if key is None or monitor is None:
            return None
        if self.dispatcher.on_owner_thread():
            # The kernel's thread owns the widgets: keep applying their updates while waiting.
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
                snap = monitor.wait(left)
                self.dispatcher.fire_due()  # the clock and the log's tick: the IOLoop's timer waits for us
                self.dispatcher.flush()
                if snap.finished or not monitor.running or (deadline is not None and time.monotonic() >= deadline):
                    break
        else:
            snap = monitor.wait(timeout)
        self.dispatcher.flush()
        shown: Snapshot = self.snapshots.get(key, snap)
        return shown

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait for the network calls the UI started (a click's kill, a history page) and apply every
        UI change posted so far (tests, scripts); ``False`` when that took longer than ``timeout``."""
        return self.dispatcher.drain(timeout)

    def batches_table(self, *, by_target: bool = False) -> pd.DataFrame:
        """Every batch submitted from this app, as a DataFrame. ``by_target``: a first ``target``
        column names the flavour each batch went to (``fabric``, ``synapse``, ``hdinsight``...)."""
        with self._lock:
            items = [(k, s) for k, s in self.snapshots.items() if s.batch is not None]
            labels = self._labels(by_flavour=True)
        if not by_target:
            return _table([s for _, s in items])
        groups: dict[str, list[Snapshot]] = {}
        for key, snap in items:
            groups.setdefault(labels.get(key, ""), []).append(snap)
        return concat_batch_tables({label: _table(group) for label, group in groups.items()})

    def log_table(self, batch_id: int | str | None = None, *, filtered: bool = False) -> pd.DataFrame:
        """The parsed log of a batch (default: the current one), with a ``source`` column."""
        bid = self.current if batch_id is None else self.snapshots.resolve(batch_id)
        with self._lock:
            return self.log_panel.table(bid, filtered=filtered)

    def history_table(self, *, start: int | None = None, size: int | None = None) -> pd.DataFrame:
        """One page of the cluster's batch history, newest first, in the calling thread: the newest
        page by default, else ``size`` batches from ``start`` in the service's own list order."""
        return self.batch_history.frame(start=start, size=size)

    def watch(self, batch_id: int | str, *, profile: ClusterProfile | None = None) -> BatchMonitor:
        """Watch an existing batch (submitted elsewhere) in this app."""
        target = profile or self.form.selected_profile()
        client = self._client(target)
        return self._start_monitor(BatchRun(client, batch_id), client, target=target)

    def apply(self, snap: Snapshot, *, key: BatchKey | None = None) -> None:
        """Show a snapshot: posted to the dispatcher (from any thread); the latest per batch wins.
        ``key`` says which batch when two endpoints share its id."""
        found = key or self.snapshots.resolve(snap.batch_id)
        if found is None:
            raise KeyError(f"batch {snap.batch_id}: not watched by this app; watch it first (ui.watch)")
        self.dispatcher.post(lambda: self._apply(snap, found), key=("snapshot", found), hold=self._held())

    def poller_stats(self) -> str:
        """What watching costs now: Livy requests per minute and batches, over every poller of this app."""
        with self._lock:
            pollers = list(self._pollers.values())
        if not pollers:
            return "poller: idle (nothing watched)"
        stats = [p.stats() for p in pollers]
        rate = sum(s.requests_per_minute for s in stats)
        watched = sum(s.batches_watched for s in stats)
        followed = sum(len(s.followed) for s in stats)
        errors = [s.last_error for s in stats if s.last_error]
        text = (f"poller: {rate:.0f} requests/min, {watched} batch{'es' if watched != 1 else ''} watched, "
                f"{followed} log{'s' if followed != 1 else ''} followed")  # fmt: skip
        throttled = max(s.throttled_for for s in stats)
        if throttled > 0:
            text += f"; the server asked to wait {throttled:.0f} s more"
        if errors:
            text += f"; last error: {errors[-1]}"
        return text

    def close(self) -> None:
        """Stop watching, stop the dispatcher's timer and workers, any sign-in wait, the pollers'
        threads, and close the clients this app made (returns within one HTTP call)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            monitors = list(self.monitors.values())
            pollers = list(self._pollers.values())
        for monitor in monitors:
            monitor.stop()
        self.sign_in_panel.close()
        self.dispatcher.close()
        for poller in pollers:
            poller.close(timeout=5.0)
        with self._clients_lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            closer = getattr(client, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception as exc:  # noqa: BLE001 - closing is best effort
                    log.debug("could not close a client: %s", exc)

    def sign_in(self) -> DeviceCodeAuth | None:
        """Start device code sign-in for the selected profile (returns once the code was asked for;
        the wait runs in MSAL's background thread). The link and code appear in ``sign_in_note``.
        ``None`` when the profile does not sign in with a device code or the client could not be
        built (shown)."""
        auth = self.sign_in_panel.sign_in()
        self.dispatcher.flush()
        return auth

    def cancel_sign_in(self) -> None:
        """Stop waiting for a device code sign-in (the wait ends within about a second)."""
        self.sign_in_panel.cancel()

    def sign_out(self) -> bool:
        """Forget the selected profile's device-code sign-in (no network call); True when there was one."""
        removed = self.sign_in_panel.sign_out()
        self.dispatcher.flush()
        return removed

    # -- handlers (the kernel's thread) --------------------------------------------------------

    def _on_form_validate(self, _problems: list[ConfigProblem]) -> None:
        self._sync_submit()
        self._sync_sign_in()

    def _on_submit_click(self, _button: w.Button) -> None:
        cfg = self._begin_submit()
        if cfg is not None:
            self.dispatcher.run(lambda: self._submit(cfg), lambda _batch: None)

    def _on_kill_click(self, _button: w.Button) -> None:
        bid = self.current
        if bid is None:
            return
        snap = self.snapshots.get(bid)
        name = snap.batch.name if snap is not None and snap.batch is not None else None
        label = f"batch {bid}" + (f" ({name})" if name else "")
        question = f"<b>Kill {html.escape(label)}?</b> This stops the Spark application."

        def show() -> None:
            self.kill_question.value = question
            self.kill_confirm.layout.display = "flex"

        self._now(show, key="kill-confirm", hold=(self.kill_question, self.kill_confirm.layout))

    def _on_kill_yes_click(self, _button: w.Button) -> None:
        bid = self.current
        client = self._clients_of.get(bid) if bid is not None else None

        def hide() -> None:
            self.kill_confirm.layout.display = "none"
            if bid is not None and client is not None:
                self.message.value = note_html(f"Asking Livy to kill batch {bid}…")

        self._now(hide, key="kill-confirm", hold=(self.kill_confirm.layout, self.message))
        if bid is None or client is None:
            return
        self._note_killed(bid, True)  # before the DELETE: a poll may find the batch gone before it returns

        def failed(exc: BaseException) -> None:
            self._note_killed(bid, False)
            self._show_message(note_html(f"Could not kill batch {bid}: {describe_error(exc)[1]}", ok=False))

        self.dispatcher.run(
            lambda: client.kill_batch(bid.batch_id),
            lambda _: self._show_message(note_html(f"Kill requested for batch {bid}.")),
            failed, key=("kill", bid), hold=(self.message,),
        )  # fmt: skip

    def _note_killed(self, key: BatchKey, asked: bool) -> None:
        """Tell the batch's monitor that this app asked for its kill (Apache Livy then forgets it:
        the status says it was killed, not that someone else deleted it)."""
        with self._lock:
            monitor = self.monitors.get(key)
        if monitor is not None:
            monitor.note_killed(asked)

    def _on_history_kill(self, batch_id: str, client: Any, asked: bool) -> None:
        """The history panel killed (or failed to kill) a batch: if this app watches it on that
        client's endpoint, its monitor knows the kill was ours."""
        endpoint = getattr(client, "base_url", None)
        with self._lock:
            keys = [k for k in self.monitors
                    if k.batch_id == str(batch_id) and (endpoint is None or k.endpoint == endpoint)]  # fmt: skip
        for key in keys:
            self._note_killed(key, asked)

    def _on_kill_no_click(self, _button: w.Button) -> None:
        self._now(lambda: setattr(self.kill_confirm.layout, "display", "none"), key="kill-confirm",
                  hold=(self.kill_confirm.layout,))  # fmt: skip

    def _on_batch_selector_change(self, change: Mapping[str, Any]) -> None:
        new = change["new"]
        if self._syncing_selector or new is None or (isinstance(new, BatchKey) and new == self.current):
            return
        key = self.monitors.resolve(new)
        if key is None or key == self.current:
            return
        self._select(key)
        self._now(self._render_current, key="current", hold=self._held())

    def _on_log_filter(self) -> None:
        self._now(self._render_log_full, key="log", hold=(self.log_panel.view,))

    def _on_section_change(self, _change: Mapping[str, Any]) -> None:
        # A section opened again: draw what changed while it was collapsed.
        self._now(self._render_visible, key="sections", hold=self._held())

    def _on_ui_error(self, exc: BaseException) -> None:
        self.message.value = note_html(f"Could not update the view: {describe_error(exc)[1]}", ok=False)

    # -- submit (a worker thread, or the caller's for submit()) ---------------------------------

    def _begin_submit(self) -> JobConfig | None:
        """Claim the in-flight flag (so a double click submits once) and read the form."""
        with self._lock:
            if self._in_flight:
                return None
            cfg, problems = self.form.config()
            if not problems:
                self._in_flight = True
        if problems:
            sentence = f"Fix the {len(problems)} problem(s) shown in the form before submitting."

            def show_problems() -> None:
                self.form.validate()
                self.message.value = note_html(sentence, ok=False)

            self._now(show_problems, hold=(self.message,))
            return None
        self._now(self._sync_submit, key="submit-button", hold=(self.submit_button,))
        self._show_message(note_html("Submitting…"))
        return cfg

    def _submit(self, cfg: JobConfig) -> Batch | None:
        spec = cfg.batch_spec
        if self.form.unique_name.value:
            base = spec.name or "job"
            spec = replace(spec, name=f"{base[:180]}-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}")
        batch: Batch | None = None
        try:
            client = self._client(cfg.profile)
            self.sign_in_panel.wait_signed_in(client, tell=self._show_message)
            run = BatchRun.submit(client, spec)
            self.history_ledger.record(cfg.profile, run.batch_id, spec)
            batch = run.first_batch
            assert batch is not None  # submit always has the POST's answer
            self._start_monitor(run, client, target=cfg.profile)
            note = note_html(f"Submitted batch {batch.id} ({batch.name}).")
        except AuthError as exc:
            reason = "sign-in was cancelled." if exc.error == "cancelled" else describe_error(exc)[1]
            note = note_html(f"Not submitted: {reason}", ok=False)
        except Exception as exc:  # noqa: BLE001 - a submit failure is a sentence in the UI
            note = note_html(f"Not submitted: {describe_error(exc)[1]}", ok=False)
        finally:
            with self._lock:
                self._in_flight = False
            self.dispatcher.post(self._sync_submit, key="submit-button", hold=(self.submit_button,))
        self._show_message(note)
        return batch

    def _poller(self, client: LivyClientLike) -> Poller:
        """The one poller of ``client`` for this app (made, not started, on first use)."""
        with self._lock:
            poller = self._pollers.get(id(client))
            if poller is None or poller.closed:
                poller = Poller(client, interval=self._interval, max_interval=self._max_interval)
                self._pollers[id(client)] = poller
            return poller

    def _start_monitor(self, run: BatchRun, client: LivyClientLike, *, target: ClusterProfile) -> BatchMonitor:
        batch_id = BatchKey(run.batch_id, getattr(client, "base_url", None) or f"profile {target.name}")
        poller = self._poller(client)
        with self._lock:
            if self._closed:
                raise RuntimeError("this app is closed; make a new one with app()")
            old = self.monitors.get(batch_id)
            if old is not None:
                old.stop()  # its late snapshots carry an older generation: dropped below
            gen = self._generation.get(batch_id, 0) + 1
            self._generation[batch_id] = gen
            self._progress[batch_id] = ProgressReader(min_interval=self._progress_interval)
            monitor = BatchMonitor(run, on_snapshot=lambda snap: self._on_snapshot(snap, batch_id, gen),
                                   poller=poller, follow_logs=False)  # fmt: skip
            self.monitors[batch_id] = monitor
            self._clients_of[batch_id] = client
            self._profiles_of[batch_id] = target
            self.targets[batch_id] = target.flavour
            self.snapshots[batch_id] = replace(monitor.snapshot, batch=run.first_batch)
            self._select(batch_id)
        monitor.start()

        def show_new() -> None:
            with self._lock:  # the list as it is now (later batches may have come since the post)
                labels = self._labels()
                options = [(f"{bid} ({labels[bid]})" if labels[bid] else f"{bid}", bid)
                           for bid in sorted(self.monitors, key=id_sort_key, reverse=True)]  # "10" > "9"  # fmt: skip
            self._syncing_selector = True  # our own change of the list is not the user's choice
            try:
                with self.batch_selector.hold_sync():
                    self.batch_selector.options = options
                    self.batch_selector.value = self.current if self.current in self.monitors else batch_id
            finally:
                self._syncing_selector = False
            self._dirty_rows = True
            self._render_visible()

        self.dispatcher.post(show_new, key=("new", batch_id), hold=(self.batch_selector, *self._held()))
        return monitor

    def _select(self, batch_id: BatchKey) -> None:
        """Make ``batch_id`` the batch on show: its log followed and its Spark progress read, the
        previous one back to the list (its log read once it ends, no progress reads)."""
        with self._lock:
            previous, self.current = self.current, batch_id
            old = self.monitors.get(previous) if previous is not None and previous != batch_id else None
            new = self.monitors.get(batch_id)
            reader = self._progress.get(batch_id)
        if old is not None:
            old.follow_logs = False
            old.run_handle.progress_reader = None
        if new is not None:
            new.follow_logs = True
            new.run_handle.progress_reader = reader

    def _on_snapshot(self, snap: Snapshot, key: BatchKey, gen: int) -> None:
        """A poller's snapshot (its thread): dropped when a newer monitor replaced this one."""
        if self._generation.get(key) != gen:
            with self._lock:
                self.stale_dropped += 1
            return
        profile = self._profiles_of.get(key)
        if snap.batch is not None and profile is not None:  # the times the history shows where Livy has none
            self.history_ledger.observe(profile, key.batch_id, snap.batch.state)
        self.dispatcher.post(lambda: self._apply(snap, key, gen), key=("snapshot", key), hold=self._held())

    def _client(self, profile: ClusterProfile) -> LivyClientLike:
        with self._clients_lock:  # not self._lock: building a client may read Key Vault
            client = self._clients.get(profile)
            if client is None:
                client = self._client_factory(profile)
                self._clients[profile] = client
            return client

    def _livy_client(self, profile: ClusterProfile) -> LivyClientLike:
        return LivyClient.from_profile(profile, on_device_code=self.sign_in_panel.on_device_code)

    def _show_message(self, note: str) -> None:
        self.dispatcher.post(lambda: setattr(self.message, "value", note), key="message", hold=(self.message,))

    def _now(self, fn: Callable[[], None], *, key: Any = None, hold: tuple[Any, ...] = ()) -> None:
        """A user's action: apply ``fn`` through the dispatcher before returning (inline on the
        kernel's thread, which owns the widgets there)."""
        self.dispatcher.post(fn, key=key, hold=hold)
        self.dispatcher.flush()

    def _sync_sign_in(self) -> None:
        try:
            device = self.form.selected_profile().auth_method == "device-code"
        except Exception:  # noqa: BLE001 - a half-typed profile has no sign-in
            device = False
        self.sign_in_panel.set_visible(device)

    def _sync_submit(self) -> None:
        disabled = self._in_flight or not self.form.valid
        description = "Submitting…" if self._in_flight else "Submit"
        if self.submit_button.disabled != disabled or self.submit_button.description != description:
            with self.submit_button.hold_sync():
                self.submit_button.disabled = disabled
                self.submit_button.description = description

    # -- rendering (the dispatcher's owner thread only) ------------------------------------------

    def _held(self) -> tuple[Any, ...]:
        return (self.status, self.kill_button, self.log_panel.view, self.log_notice,
                self.log_source, self.download_button, self.progress.bar, self.progress.percent,
                self.progress.text, self.progress.elapsed)  # fmt: skip

    def _apply(self, snap: Snapshot, bid: BatchKey, gen: int | None = None) -> None:
        if gen is not None and self._generation.get(bid) != gen:
            self.stale_dropped += 1  # replaced between the post and this flush
            return
        with self._lock:
            self.snapshots[bid] = snap
            self.log_panel.extend(snap, key=bid)
            current = bid == self.current
            label = self._labels().get(bid, "")
        # One batch changed: draw its row alone (no table built), unless rows come or go.
        visible = self.batches_section.selected_index is not None
        key = (label, snap.batch_id)
        if not (visible and not self._dirty_rows and snap.batch is not None
                and self.batches.update_row(key, _row_data(snap, label or None))):  # fmt: skip
            self._dirty_rows = True
            self._render_rows()
        if current:
            # A running batch's new lines wait for the tick (at most every log_every); its end at once.
            self._render_current(append=True, later=running(snap))

    def _render_visible(self) -> None:
        self._render_rows()
        self._render_current()

    def _render_rows(self) -> None:
        if not self._dirty_rows or self.batches_section.selected_index is None:
            return  # collapsed: drawn when opened
        self._dirty_rows = False
        with self._lock:
            items = [(k, s) for k, s in self.snapshots.items() if s.batch is not None]
            labels = self._labels()
        by_target = any(labels.values())
        # While a batch runs its row has no elapsed time (the clock above ticks for the batch on
        # show): a row is sent again only when its state, app id or links change.
        quiet = [(k, replace(s, updated_at=s.started_at) if running(s) else s) for k, s in items]
        if by_target:
            groups: dict[str, list[Snapshot]] = {}
            for key, snap in quiet:
                groups.setdefault(labels.get(key, ""), []).append(snap)
            frame = concat_batch_tables({label: _table(group, blank_running=True) for label, group in groups.items()})
        else:
            frame = _table([s for _, s in quiet], blank_running=True)
        # A purged or replaced batch keeps its last batch object: show the label, not "running".
        states = {(labels.get(k, ""), s.batch_id): s.state_label for k, s in items}
        where = frame["target"] if "target" in frame.columns else [""] * len(frame)
        frame["state"] = [states.get((str(label), str(bid)), state)
                          for label, bid, state in zip(where, frame["id"], frame["state"], strict=True)]  # fmt: skip
        self.batches.update(frame)

    def _labels(self, *, by_flavour: bool = False) -> dict[BatchKey, str]:
        """The ``target`` label of each batch: none while one endpoint is watched (unless
        ``by_flavour``), the flavour when each flavour has one endpoint, else flavour and endpoint."""
        endpoints: dict[str, set[str]] = {}
        for key, flavour in self.targets.items():
            endpoints.setdefault(flavour, set()).add(key.endpoint)
        if not by_flavour and sum(len(e) for e in endpoints.values()) <= 1:
            return dict.fromkeys(self.targets, "")
        return {key: flavour if len(endpoints[flavour]) == 1 else f"{flavour} {_short(key.endpoint)}"
                for key, flavour in self.targets.items()}  # fmt: skip

    def _render_current(self, *, append: bool = False, later: bool = False) -> None:
        snap = self._current_snapshot()
        text = status_html(snap, elapsed=False)
        if self.status.value != text:
            self.status.value = text
        self.progress.show(snap)
        if self.log_section.selected_index is not None:
            if append and later:
                self._log_due = True
            elif append:
                self._append_log()
            else:
                self._log_due, self._log_at = False, self._clock()
                self.log_panel.render(self.current, snap)
        disabled = not running(snap)
        if self.kill_button.disabled != disabled:
            self.kill_button.disabled = disabled

    def _render_log_full(self) -> None:
        self.log_panel.render(self.current, self._current_snapshot())

    def _append_log(self) -> None:
        self._log_due, self._log_at = False, self._clock()
        self.log_panel.append(self.current, self._current_snapshot())

    def _tick(self) -> None:
        """Once a second: the clock of the batch on show, the followed log's new lines when
        ``log_every`` has passed, and the poller's cost line when what it says changed (its rate
        alone: every 30 s)."""
        self.progress.tick()
        now = self._clock()
        shown = self.log_section.selected_index is not None
        if self._log_due and shown and now - self._log_at >= self._log_every - 0.25:  # a tick may come early
            self._append_log()
        stats = self.poller_stats()
        shape = _RATE.sub("", stats)
        if self._stats_at is None or shape != self._stats_shape or now - self._stats_at >= _STATS_EVERY:
            self._stats_at, self._stats_shape = now, shape
            text = f'<div style="font-size:12px;color:#57606a">{html.escape(stats)}</div>'
            if self.poller_line.value != text:
                self.poller_line.value = text

    def _current_snapshot(self) -> Snapshot | None:
        return self.snapshots.get(self.current) if self.current is not None else None


def app(
    cfg: JobConfig | None = None,
    *,
    client_factory: ClientFactory | None = None,
    profiles: Mapping[str, ClusterProfile] | None = None,
    **options: Any,
) -> JobApp:
    """The notebook UI for ``cfg`` (default: SparkPi on the sandbox). Display it as a cell's value."""
    return JobApp(cfg, client_factory=client_factory, profiles=profiles, **options)


def _short(endpoint: str) -> str:
    """An endpoint as a label: its URL without the scheme."""
    return endpoint.split("://", 1)[-1]


def _row_data(snap: Snapshot, target: str | None) -> dict[str, Any]:
    """One row of the batch table, as ``BatchRows`` draws it (the table's columns, no pandas)."""
    batch = snap.batch
    assert batch is not None
    data: dict[str, Any] = {} if target is None else {"target": target}
    data.update(id=str(batch.id), name=batch.name or "", state=snap.state_label, app_id=batch.app_id or "",
                elapsed_s=None if running(snap) else round(snap.elapsed, 1),
                spark_ui=batch.app_info.spark_ui_url or "", driver_log=batch.app_info.driver_log_url or "",
                owner=batch.owner or "")  # fmt: skip
    return data


def _table(snaps: list[Snapshot], *, blank_running: bool = False) -> pd.DataFrame:
    elapsed: dict[int | str, float | None] = {
        s.batch_id: None if blank_running and running(s) else round(s.elapsed, 1) for s in snaps
    }
    return batch_table([s.batch for s in snaps if s.batch is not None], elapsed=elapsed)
