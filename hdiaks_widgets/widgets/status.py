"""What a batch looks like while it runs: the status line, the cluster history and the driver log.

Nothing here talks to Livy or starts a thread: :class:`JobApp` calls :func:`status_html`,
:meth:`LogPanel.extend` / :meth:`LogPanel.render` from its one ``apply(snapshot)``, and hands
:class:`HistoryPanel` a function that lists one page of batches.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from hdiaks_widgets.models import BatchList
from hdiaks_widgets.monitor import Snapshot, describe_error
from hdiaks_widgets.tables import (
    SOURCE_ALL,
    Stream,
    batch_html,
    batch_table,
    filter_log,
    link_html,
    linked_text_html,
    log_html,
    log_sources,
    log_table,
    parse_lines,
    state_html,
)
from hdiaks_widgets.widgets._common import note_html

__all__ = ["HistoryPanel", "LogPanel", "log_note_html", "status_html"]

_LEVEL_CHOICES = ("ALL", "DEBUG", "INFO", "WARN", "ERROR")


def status_html(snap: Snapshot | None) -> str:
    """One line: batch, name, state, elapsed time, app id, Spark UI and driver log links."""
    if snap is None:
        return '<div class="hdiaks-status-line" style="color:#57606a">No batch submitted yet.</div>'
    parts = [
        f"<b>Batch {snap.batch_id}</b>",
        html.escape(snap.batch.name or "") if snap.batch is not None else "",
        state_html(snap.state_label),
        f"elapsed {snap.elapsed:.1f} s",
    ]
    if snap.app_id:
        parts.append(f"app id <code>{html.escape(snap.app_id)}</code>")
    if snap.spark_ui_url:
        parts.append(link_html(snap.spark_ui_url, "Spark UI"))
    if snap.driver_log_url:
        parts.append(link_html(snap.driver_log_url, "driver log"))
    if not snap.finished and not (snap.state and snap.state.is_terminal):
        parts.append('<span style="color:#57606a">watching…</span>')
    line = " · ".join(p for p in parts if p)
    out = f'<div class="hdiaks-status-line" data-state="{html.escape(snap.state_label, quote=True)}">{line}</div>'
    if snap.error:
        ok = snap.purged and snap.succeeded
        out += note_html(snap.error, ok=ok)
    return out


def log_note_html(snap: Snapshot | None) -> str:
    """The run's note about its log (lines Livy dropped before they could be read, a driver log
    that could not be read), or ``""``. The text is escaped; the driver log's URL in it becomes
    a link only when it is http(s)."""
    if snap is None or not snap.log_note:
        return ""
    text = linked_text_html(snap.log_note, snap.driver_log_url)
    return (
        '<div class="hdiaks-log-note" role="note" style="color:#9a6700;background:#fff8c5;'
        f'border:1px solid #d4a72c;border-radius:4px;padding:2px 6px;margin:2px 0">&#9888; {text}</div>'
    )


class LogPanel:
    """The driver log of the current batch as a filtered table, and "Download full log".

    Each batch's lines are parsed once, as they arrive (:meth:`extend`); filters re-render only.
    ``current`` gives the snapshot of the batch on show; ``on_filter`` re-renders it (under the
    app's lock). The source filter offers the sources present in the batch on show; the run's
    note about its log (``Snapshot.log_note``) is shown above the table while it is set.
    """

    def __init__(
        self,
        *,
        current: Callable[[], Snapshot | None],
        on_filter: Callable[[], None],
        log_last: int = 200,
        download_dir: Path = Path("."),
    ) -> None:
        self._current = current
        self._on_filter = on_filter
        self._download_dir = download_dir
        self._frames: dict[int | str, pd.DataFrame] = {}
        self._parsed: dict[int | str, tuple[int, Stream]] = {}

        self.level = w.Dropdown(options=_LEVEL_CHOICES, value="ALL", description="Level",
                                style={"description_width": "50px"}, layout=w.Layout(width="160px"))
        self.source = w.Dropdown(options=(SOURCE_ALL,), value=SOURCE_ALL, description="Source",
                                 style={"description_width": "50px"}, layout=w.Layout(width="200px"))
        self.text = w.Text(placeholder="filter text", description="Text", style={"description_width": "40px"})
        self.last = w.BoundedIntText(value=log_last, min=0, max=1_000_000, description="Last N",
                                     style={"description_width": "60px"}, layout=w.Layout(width="160px"))
        self.download_button = w.Button(description="Download full log", icon="download", disabled=True,
                                        layout=w.Layout(width="auto"))
        self.note = w.HTML()
        self.log_notice = w.HTML()  # Snapshot.log_note (`note` is the download's)
        self.log_notice.add_class("hdiaks-log-notice")
        self.view = w.HTML(layout=w.Layout(max_height="520px", overflow="auto"))
        self.view.add_class("hdiaks-log")
        self.widget = w.VBox([
            w.HBox([self.level, self.source, self.text, self.last, self.download_button]),
            self.note, self.log_notice, self.view,
        ])  # fmt: skip
        self._syncing_sources = False

        for widget in (self.level, self.source, self.text, self.last):
            widget.observe(self._on_filter_change, names="value")
        self.download_button.on_click(self._on_download_button_click)

    def extend(self, snap: Snapshot) -> None:
        """Parse only the lines not parsed before (a snapshot carries every line so far)."""
        bid = snap.batch_id
        done, stream = self._parsed.get(bid, (0, "stdout"))
        fresh = snap.lines[done:]
        if not fresh:
            return
        records, stream = parse_lines(fresh, start=done, stream=stream)
        self._parsed[bid] = (done + len(fresh), stream)
        if not records:
            return
        new = log_table(records)
        old = self._frames.get(bid)
        self._frames[bid] = new if old is None or old.empty else pd.concat([old, new], ignore_index=True)

    def table(self, batch_id: int | str | None, *, filtered: bool = False) -> pd.DataFrame:
        """The parsed log of a batch (empty when there is none), with the panel's filters if asked."""
        frame = self._frames.get(batch_id) if batch_id is not None else None
        if frame is None:
            frame = log_table([])
        return self.filtered(frame) if filtered else frame

    def filtered(self, frame: pd.DataFrame) -> pd.DataFrame:
        return filter_log(frame, level=self.level.value, text=self.text.value or None,
                          source=self.source.value, last=int(self.last.value))

    def render(self, batch_id: int | str | None, snap: Snapshot | None) -> None:
        frame = self._frames.get(batch_id) if batch_id is not None else None
        self._sync_sources(frame)
        shown = self.filtered(frame if frame is not None else log_table([]))
        total = 0 if frame is None else len(frame)
        self.log_notice.value = log_note_html(snap)
        self.view.value = (
            f'<div style="font-size:12px;color:#57606a">{len(shown)} of {total} lines shown</div>'
            + log_html(shown)
        )
        self.download_button.disabled = snap is None or not snap.lines

    def _sync_sources(self, frame: pd.DataFrame | None) -> None:
        """Offer "all" plus the sources present; a chosen source stays chosen while present."""
        options = (SOURCE_ALL, *(log_sources(frame) if frame is not None else ()))
        if tuple(self.source.options) == options:
            return
        chosen = self.source.value if self.source.value in options else SOURCE_ALL
        self._syncing_sources = True  # a new option list is not a filter change: no re-render
        try:
            with self.source.hold_sync():
                self.source.options = options
                self.source.value = chosen
        finally:
            self._syncing_sources = False

    # -- handlers ----------------------------------------------------------------------------

    def _on_filter_change(self, _change: Mapping[str, Any]) -> None:
        if not self._syncing_sources:
            self._on_filter()

    def _on_download_button_click(self, _button: w.Button) -> None:
        snap = self._current()
        if snap is None:
            return
        target = self._download_dir / f"batch-{snap.batch_id}.log"
        try:
            target.write_text("".join(f"{line}\n" for line in snap.lines), encoding="utf-8")
        except OSError as exc:
            self.note.value = note_html(f"Could not write {target}: {exc.strerror}", ok=False)
            return
        more = "" if snap.finished else " (the job is still running; download again for the rest)"
        self.note.value = note_html(f"Saved {len(snap.lines)} log lines to {target.resolve()}{more}.")


class HistoryPanel:
    """The cluster's batch history, a page at a time (``GET /batches?from=&size=``)."""

    def __init__(self, list_page: Callable[[int, int], BatchList], *, page_size: int = 20) -> None:
        self._list_page = list_page
        self.page_size = page_size
        self.start = 0
        self.total = 0
        self.show_button = w.Button(description="Show cluster history", icon="list")
        self.prev_button = w.Button(description="◀ Newer", disabled=True)
        self.next_button = w.Button(description="Older ▶", disabled=True)
        self.label = w.HTML()
        self.view = w.HTML()
        self.view.add_class("hdiaks-history")
        self.widget = w.VBox([
            w.HBox([self.show_button, self.prev_button, self.next_button, self.label]),
            self.view,
        ])  # fmt: skip
        self.show_button.on_click(self._on_show_button_click)
        self.prev_button.on_click(self._on_prev_button_click)
        self.next_button.on_click(self._on_next_button_click)

    def table(self, *, start: int = 0, size: int | None = None) -> pd.DataFrame:
        """One page of the history as a DataFrame (remembers the total for the pager)."""
        page = self._list_page(start, size or self.page_size)
        self.total = page.total
        return batch_table(page.batches)

    def show(self, start: int) -> None:
        try:
            frame = self.table(start=start)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self.view.value = note_html(f"Could not list batches: {describe_error(exc)[1]}", ok=False)
            return
        self.start = start
        end = start + len(frame)
        with self.view.hold_sync(), self.label.hold_sync():
            self.view.value = batch_html(frame)
            self.label.value = f"batches {start + 1 if len(frame) else 0}–{end} of {self.total}"
            self.prev_button.disabled = start <= 0
            self.next_button.disabled = end >= self.total

    # -- handlers ----------------------------------------------------------------------------

    def _on_show_button_click(self, _button: w.Button) -> None:
        self.show(0)

    def _on_prev_button_click(self, _button: w.Button) -> None:
        self.show(max(0, self.start - self.page_size))

    def _on_next_button_click(self, _button: w.Button) -> None:
        self.show(self.start + self.page_size)
