"""The notebook UI wired together: :class:`JobApp` (form, export, submit, status, tables, log) and
:func:`app`, the one entry point (``from hdiaks_widgets import app``).

Threads: a monitor thread reaches the widgets only through :meth:`JobApp.apply`, which sets
``HTML.value`` of a few widgets under ``hold_sync()`` (STYLE.md rule 9); nothing here writes to an
``Output`` widget from a thread. Submitting also runs in a thread, so a click never blocks the
kernel, and an in-flight flag makes a double click submit once. Every failure is shown as a
sentence (``monitor.describe_error``), never as a traceback.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from hdiaks_widgets.auth import DeviceCodeAuth
from hdiaks_widgets.config import ClusterProfile, JobConfig
from hdiaks_widgets.errors import AuthError, ConfigProblem
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import Batch, BatchList, id_sort_key
from hdiaks_widgets.monitor import BatchMonitor, Snapshot, describe_error
from hdiaks_widgets.run import BatchRun
from hdiaks_widgets.tables import batch_html, batch_table, concat_batch_tables
from hdiaks_widgets.widgets._common import ClientFactory, LivyClientLike, note_html
from hdiaks_widgets.widgets.export import DagExportPanel
from hdiaks_widgets.widgets.form import JobForm
from hdiaks_widgets.widgets.signin import SignInPanel
from hdiaks_widgets.widgets.status import HistoryPanel, LogPanel, status_html

__all__ = ["JobApp", "app"]

log = logging.getLogger(__name__)


class JobApp:
    """Form + live status + tables + logs for batches submitted from this notebook."""

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
    ) -> None:
        self.form = JobForm(cfg, profiles=profiles)
        self.export = DagExportPanel(self.form, out_dir=export_dir)
        self._client_factory: ClientFactory = client_factory or self._livy_client
        self._clients_lock = threading.Lock()
        self._clients: dict[ClusterProfile, LivyClientLike] = {}
        self._interval = monitor_interval
        self._max_interval = max_interval
        self._lock = threading.RLock()
        self._in_flight = False
        self.monitors: dict[int | str, BatchMonitor] = {}
        self.snapshots: dict[int | str, Snapshot] = {}
        self._clients_of: dict[int | str, LivyClientLike] = {}
        self.targets: dict[int | str, str] = {}  # batch id -> the flavour it was submitted to
        self.current: int | str | None = None

        self.submit_button = w.Button(description="Submit", button_style="primary", icon="play")
        self.submit_button.add_class("hdiaks-submit")
        self.message = w.HTML()
        self.message.add_class("hdiaks-message")
        self.batch_selector = w.Dropdown(options=[], description="Batch", style={"description_width": "50px"})
        self.kill_button = w.Button(description="Kill", button_style="danger", icon="stop", disabled=True)
        self.kill_button.add_class("hdiaks-kill")
        self.kill_yes = w.Button(description="Yes, kill it", button_style="danger")
        self.kill_no = w.Button(description="Cancel")
        self.kill_question = w.HTML()
        self.kill_confirm = w.HBox([self.kill_question, self.kill_yes, self.kill_no], layout=w.Layout(display="none"))
        self.sign_in_panel = SignInPanel(lambda: self._client(self.form.selected_profile()))
        self.sign_in_button = self.sign_in_panel.sign_in_button
        self.cancel_sign_in_button = self.sign_in_panel.cancel_button
        self.sign_in_note = self.sign_in_panel.note
        self.sign_in_box = self.sign_in_panel.widget
        self.status = w.HTML(status_html(None))
        self.status.add_class("hdiaks-status")
        self.batches = w.HTML(batch_html(batch_table([])))
        self.batches.add_class("hdiaks-batches")
        self.history_panel = HistoryPanel(self._list_page, page_size=history_page_size)
        self.history_button = self.history_panel.show_button
        self.history_prev = self.history_panel.prev_button
        self.history_next = self.history_panel.next_button
        self.history_label = self.history_panel.label
        self.history = self.history_panel.view
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

        self.export_section = w.Accordion(children=[self.export.widget], titles=("Export DAG",), selected_index=None)
        self.widget = w.VBox([
            self.form.widget, self.export_section,
            w.HBox([self.submit_button, self.batch_selector, self.kill_button]),
            self.kill_confirm, self.message, self.sign_in_box, self.status,
            w.HTML("<b>Batches submitted from this notebook</b>"), self.batches,
            w.Accordion(children=[self.history_panel.widget], titles=("Cluster batch history",),
                        selected_index=None),
            w.HTML("<b>Driver log</b>"), self.log_panel.widget,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-app")

        self.form.on_validate(self._on_form_validate)
        self.submit_button.on_click(self._on_submit_click)
        self.kill_button.on_click(self._on_kill_click)
        self.kill_yes.on_click(self._on_kill_yes_click)
        self.kill_no.on_click(self._on_kill_no_click)
        self.batch_selector.observe(self._on_batch_selector_change, names="value")
        self._sync_submit()
        self._sync_sign_in()

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
            return None
        return self._submit(cfg)

    def wait(self, timeout: float | None = None, *, batch_id: int | str | None = None) -> Snapshot | None:
        """Block until the batch (default: the current one) finishes; its latest snapshot."""
        bid = self.current if batch_id is None else batch_id
        monitor = self.monitors.get(bid) if bid is not None else None
        if monitor is None:
            return None
        snap = monitor.wait(timeout)
        return self.snapshots.get(snap.batch_id, snap)

    def batches_table(self, *, by_target: bool = False) -> pd.DataFrame:
        """Every batch submitted from this app, as a DataFrame. ``by_target``: a first ``target``
        column names the flavour each batch went to (``fabric``, ``synapse``, ``hdinsight``...)."""
        with self._lock:
            snaps = [s for s in self.snapshots.values() if s.batch is not None]
            targets = dict(self.targets)
        if not by_target:
            return _table(snaps)
        groups: dict[str, list[Snapshot]] = {}
        for snap in snaps:
            groups.setdefault(targets.get(snap.batch_id, ""), []).append(snap)
        return concat_batch_tables({label: _table(group) for label, group in groups.items()})

    def log_table(self, batch_id: int | str | None = None, *, filtered: bool = False) -> pd.DataFrame:
        """The parsed log of a batch (default: the current one), with a ``source`` column."""
        bid = self.current if batch_id is None else batch_id
        with self._lock:
            return self.log_panel.table(bid, filtered=filtered)

    def history_table(self, *, start: int = 0, size: int | None = None) -> pd.DataFrame:
        """One page of the cluster's batch history (``GET /batches?from=&size=``)."""
        return self.history_panel.table(start=start, size=size)

    def watch(self, batch_id: int | str, *, profile: ClusterProfile | None = None) -> BatchMonitor:
        """Watch an existing batch (submitted elsewhere) in this app."""
        target = profile or self.form.selected_profile()
        client = self._client(target)
        return self._start_monitor(BatchRun(client, batch_id), client, target=target)

    def apply(self, snap: Snapshot) -> None:
        """The one way from monitor threads to the widgets: show a snapshot."""
        try:
            with self._lock:
                self.snapshots[snap.batch_id] = snap
                self.log_panel.extend(snap)
                with (
                    self.status.hold_sync(),
                    self.batches.hold_sync(),
                    self.log.hold_sync(),
                    self.log_notice.hold_sync(),
                    self.log_source.hold_sync(),
                    self.kill_button.hold_sync(),
                    self.download_button.hold_sync(),
                ):
                    # Batches of more than one service: say which service each one is on.
                    self.batches.value = batch_html(self.batches_table(by_target=len(set(self.targets.values())) > 1))
                    if snap.batch_id == self.current:
                        self._render_current()
        except Exception as exc:  # noqa: BLE001 - a view error is shown, never raised in the thread
            log.warning("could not show batch %s: %s", snap.batch_id, exc)
            self.message.value = note_html(f"Could not show batch {snap.batch_id}: {describe_error(exc)[1]}", ok=False)

    def close(self) -> None:
        """Stop every monitor and any sign-in wait (returns at once)."""
        for monitor in self.monitors.values():
            monitor.stop()
        self.sign_in_panel.close()

    def sign_in(self) -> DeviceCodeAuth | None:
        """Start device code sign-in for the selected profile (returns at once; the wait runs in
        MSAL's background thread). The link and code appear in ``sign_in_note``. ``None`` when the
        profile does not sign in with a device code or the client could not be built (shown)."""
        return self.sign_in_panel.sign_in()

    def cancel_sign_in(self) -> None:
        """Stop waiting for a device code sign-in (the wait ends within about a second)."""
        self.sign_in_panel.cancel()

    # -- handlers ----------------------------------------------------------------------------

    def _on_form_validate(self, _problems: list[ConfigProblem]) -> None:
        self._sync_submit()
        self._sync_sign_in()

    def _on_submit_click(self, _button: w.Button) -> None:
        cfg = self._begin_submit()
        if cfg is not None:
            threading.Thread(target=self._submit, args=(cfg,), name="hdiaks-submit", daemon=True).start()

    def _on_kill_click(self, _button: w.Button) -> None:
        if self.current is None:
            return
        snap = self.snapshots.get(self.current)
        name = snap.batch.name if snap is not None and snap.batch is not None else None
        label = f"batch {self.current}" + (f" ({name})" if name else "")
        self.kill_question.value = f"<b>Kill {html.escape(label)}?</b> This stops the Spark application."
        self.kill_confirm.layout.display = "flex"

    def _on_kill_yes_click(self, _button: w.Button) -> None:
        self.kill_confirm.layout.display = "none"
        bid = self.current
        client = self._clients_of.get(bid) if bid is not None else None
        if bid is None or client is None:
            return
        try:
            client.kill_batch(bid)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self.message.value = note_html(f"Could not kill batch {bid}: {describe_error(exc)[1]}", ok=False)
            return
        self.message.value = note_html(f"Kill requested for batch {bid}.")

    def _on_kill_no_click(self, _button: w.Button) -> None:
        self.kill_confirm.layout.display = "none"

    def _on_batch_selector_change(self, change: Mapping[str, Any]) -> None:
        if change["new"] is None:
            return
        with self._lock:
            self.current = change["new"]
            self._render_current()

    def _on_log_filter(self) -> None:
        with self._lock:
            self._render_current()

    # -- submit ------------------------------------------------------------------------------

    def _begin_submit(self) -> JobConfig | None:
        """Claim the in-flight flag (so a double click submits once) and read the form."""
        with self._lock:
            if self._in_flight:
                return None
            cfg, problems = self.form.config()
            if problems:
                self.form.validate()
                self.message.value = note_html(
                    f"Fix the {len(problems)} problem(s) shown in the form before submitting.", ok=False
                )
                return None
            self._in_flight = True
            self._sync_submit()
        self.message.value = note_html("Submitting…")
        return cfg

    def _submit(self, cfg: JobConfig) -> Batch | None:
        spec = cfg.batch_spec
        if self.form.unique_name.value:
            base = spec.name or "job"
            spec = replace(spec, name=f"{base[:180]}-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}")
        batch: Batch | None = None
        try:
            client = self._client(cfg.profile)
            self.sign_in_panel.wait_signed_in(client, tell=self._tell)
            run = BatchRun.submit(client, spec)
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
                self._sync_submit()
        self.message.value = note
        return batch

    def _start_monitor(self, run: BatchRun, client: LivyClientLike, *, target: ClusterProfile) -> BatchMonitor:
        batch_id = run.batch_id
        with self._lock:
            old = self.monitors.get(batch_id)
            if old is not None:
                old.stop()
            monitor = BatchMonitor(
                run, on_snapshot=self.apply, interval=self._interval, max_interval=self._max_interval
            )
            self.monitors[batch_id] = monitor
            self._clients_of[batch_id] = client
            self.targets[batch_id] = target.flavour
            self.snapshots[batch_id] = replace(monitor.snapshot, batch=run.first_batch)
            self.current = batch_id
            with self.batch_selector.hold_sync():
                newest_first = sorted(self.monitors, key=id_sort_key, reverse=True)  # "10" above "9"
                self.batch_selector.options = [(f"{bid}", bid) for bid in newest_first]
                self.batch_selector.value = batch_id
            self.apply(self.snapshots[batch_id])
        monitor.start()
        return monitor

    def _client(self, profile: ClusterProfile) -> LivyClientLike:
        with self._clients_lock:  # not self._lock: building a client may read Key Vault
            client = self._clients.get(profile)
            if client is None:
                client = self._client_factory(profile)
                self._clients[profile] = client
            return client

    def _livy_client(self, profile: ClusterProfile) -> LivyClientLike:
        return LivyClient.from_profile(profile, on_device_code=self.sign_in_panel.on_device_code)

    def _list_page(self, start: int, size: int) -> BatchList:
        return self._client(self.form.selected_profile()).list_batches(start=start, size=size)

    def _tell(self, note: str) -> None:
        self.message.value = note

    def _sync_sign_in(self) -> None:
        try:
            device = self.form.selected_profile().auth_method == "device-code"
        except Exception:  # noqa: BLE001 - a half-typed profile has no sign-in
            device = False
        self.sign_in_panel.set_visible(device)

    def _sync_submit(self) -> None:
        disabled = self._in_flight or not self.form.valid
        with self.submit_button.hold_sync():
            self.submit_button.disabled = disabled
            self.submit_button.description = "Submitting…" if self._in_flight else "Submit"

    # -- rendering ---------------------------------------------------------------------------

    def _current_snapshot(self) -> Snapshot | None:
        return self.snapshots.get(self.current) if self.current is not None else None

    def _render_current(self) -> None:
        snap = self._current_snapshot()
        self.status.value = status_html(snap)
        self.log_panel.render(self.current, snap)
        running = snap is not None and not snap.finished and not (snap.state and snap.state.is_terminal)
        self.kill_button.disabled = not running


def app(
    cfg: JobConfig | None = None,
    *,
    client_factory: ClientFactory | None = None,
    profiles: Mapping[str, ClusterProfile] | None = None,
    **options: Any,
) -> JobApp:
    """The notebook UI for ``cfg`` (default: SparkPi on the sandbox). Display it as a cell's value."""
    return JobApp(cfg, client_factory=client_factory, profiles=profiles, **options)


def _table(snaps: list[Snapshot]) -> pd.DataFrame:
    return batch_table(
        [s.batch for s in snaps if s.batch is not None], elapsed={s.batch_id: round(s.elapsed, 1) for s in snaps}
    )
