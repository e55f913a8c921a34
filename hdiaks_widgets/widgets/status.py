"""What a batch looks like while it runs: the status line, Spark's progress, the batch rows, the
cluster history and the driver log.

Nothing here talks to Livy or starts a thread: :class:`JobApp` calls these from the dispatcher's
owner thread (``widgets._dispatch``). They are built to send little: :class:`BatchRows` is one
``HTML`` widget per batch, re-sent only when that row's text changed; :class:`LogPanel` appends the
new lines of a followed log to a small last chunk (which also carries the line count) instead of
re-sending the whole table;
:class:`ProgressPanel` is a ``FloatProgress`` and a clock that ticks once a second.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
from ipywidgets.widgets.widget_string import HTMLStyle

from hdiaks_widgets.monitor import Snapshot
from hdiaks_widgets.progress import Progress
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

__all__ = ["BatchRows", "LogPanel", "ProgressPanel", "log_note_html", "progress_html",
           "status_html"]

_LEVEL_CHOICES = ("ALL", "DEBUG", "INFO", "WARN", "ERROR")


def status_html(snap: Snapshot | None, *, elapsed: bool = True) -> str:
    """One line: batch, name, state, elapsed time (unless ``elapsed=False``: the app's clock ticks
    on its own), app id, Spark UI and driver log links."""
    if snap is None:
        return '<div class="hdiaks-status-line" style="color:#57606a">No batch submitted yet.</div>'
    parts = [
        f"<b>Batch {snap.batch_id}</b>",
        html.escape(snap.batch.name or "") if snap.batch is not None else "",
        state_html(snap.state_label),
        f"elapsed {snap.elapsed:.1f} s" if elapsed else "",
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


def running(snap: Snapshot | None) -> bool:
    """The batch is still going (neither finished nor in a terminal state)."""
    return snap is not None and not snap.finished and not (snap.state is not None and snap.state.is_terminal)


def progress_html(progress: Progress | None) -> str:
    """Spark's numbers in words, and the per-state times where the dialect gives them."""
    if progress is None:
        return ""
    words = progress.describe()
    if progress.complete and progress.known:
        # A driver's UI is gone once the application ends: the last numbers are from before.
        words = f"finished (last read while running: {words})"
    elif progress.tasks_active:
        words += f", {progress.tasks_active} running"
    parts = [f'<span class="hdiaks-progress-text">{html.escape(words)}</span>']
    if progress.note:
        parts.append(f'<span style="color:#9a6700">{html.escape(progress.note)}</span>')
    if progress.state_times:
        times = " → ".join(f"{html.escape(state)} {when.strftime('%H:%M:%S')}" for state, when in progress.state_times)
        parts.append(f'<span class="hdiaks-state-times" style="color:#57606a">{times}</span>')
    return '<div style="font-size:12px">' + " · ".join(parts) + "</div>"


def elapsed_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``: whole seconds, so a tick once a second changes it once."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressPanel:
    """A progress bar with Spark's own numbers and a clock for the batch on show.

    :meth:`show` sets them from a snapshot (only what changed is sent); :meth:`tick` moves the
    clock (the app's dispatcher calls it once a second: no thread of its own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="", bar_style="info",
                                   layout=w.Layout(width="300px"))
        self.bar.add_class("hdiaks-progress")
        self.percent = w.HTML(layout=w.Layout(margin="0 0 0 8px"))
        self.percent.add_class("hdiaks-progress-percent")
        self.text = w.HTML()
        self.text.add_class("hdiaks-progress-detail")
        self.elapsed = w.HTML()
        self.elapsed.add_class("hdiaks-elapsed")
        self.widget = w.VBox([w.HBox([self.bar, self.percent, self.elapsed]), self.text],
                             layout=w.Layout(display="none"))
        self.widget.add_class("hdiaks-progress-panel")
        self._snap: Snapshot | None = None
        self.values: list[float] = []  # every distinct bar value shown, in order (tests, the bench)

    def show(self, snap: Snapshot | None) -> None:
        self._snap = snap
        if snap is None:
            self.widget.layout.display = "none"
            return
        self.widget.layout.display = None
        progress = snap.progress
        fraction = progress.fraction if progress is not None else None
        if fraction is None and snap.succeeded:
            fraction = 1.0
        if fraction is not None and self.bar.value != fraction:
            self.bar.value = fraction
            self.values.append(fraction)
        ended = snap.finished or (snap.state is not None and snap.state.is_terminal)
        style = "success" if snap.succeeded else "danger" if ended else "info"
        if self.bar.bar_style != style:
            self.bar.bar_style = style
        label = "" if fraction is None else f"{int(fraction * 100)} %"
        if label and ended and not snap.succeeded:
            label += f" when it ended ({snap.state_label})"
        if fraction is None and running(snap):
            label = "starting…" if progress is None or not progress.known else label
        if self.percent.value != label:
            self.percent.value = label
        detail = progress_html(progress)
        if self.text.value != detail:
            self.text.value = detail
        self.tick()

    def tick(self) -> None:
        """The clock: seconds since watching began while the batch runs, its final time after."""
        snap = self._snap
        if snap is None:
            return
        seconds = self._clock() - snap.started_at if running(snap) else snap.elapsed
        text = f'<span style="color:#57606a;margin-left:12px">elapsed {elapsed_text(seconds)}</span>'
        if self.elapsed.value != text:
            self.elapsed.value = text


_STYLE_TAG = re.compile(r"<style>.*?</style>", re.S)
_ROW_WIDTHS = {"target": "9ch", "id": "12ch", "name": "26ch", "state": "11ch", "app_id": "24ch",
               "elapsed_s": "9ch", "spark_ui": "9ch", "driver_log": "10ch", "owner": "10ch"}


def _row_table(columns: tuple[str, ...], cells: str, *, head: bool = False) -> str:
    cols = "".join(f'<col style="width:{_ROW_WIDTHS.get(c, "10ch")}">' for c in columns)
    style = _STYLE_TAG.findall(batch_html(batch_table([])))[0] if head else ""
    tag = "thead" if head else "tbody"
    return (f'{style}<table class="hdiaks-table hdiaks-batch-table" style="table-layout:fixed;width:100%">'
            f"<colgroup>{cols}</colgroup><{tag}><tr>{cells}</tr></{tag}></table>")


def _row_cells(columns: tuple[str, ...], data: Mapping[str, Any]) -> str:
    cells: list[str] = []
    for col in columns:
        value = data.get(col)
        if col == "state":
            cells.append(f"<td>{state_html(str(value))}</td>")
        elif col in ("spark_ui", "driver_log"):
            label = ("Spark UI" if col == "spark_ui" else "driver log") if value else ""
            cells.append(f"<td>{link_html(str(value or ''), label)}</td>")
        elif value is None or value != value or value == "":  # None, NaN, empty
            cells.append("<td></td>")
        else:
            cells.append(f'<td title="{html.escape(str(value), quote=True)}">{html.escape(str(value))}</td>')
    return "".join(cells)


class BatchRows(w.VBox):  # type: ignore[misc]
    """The batches of this notebook as one ``HTML`` widget per row under a header row.

    :meth:`update` re-sends only the rows whose text changed (a new state, an app id) and the
    list of children only when a row comes or goes: fifty running batches cost nothing while
    they run quietly. ``value`` is the whole table's HTML (what tests and people read).
    """

    def __init__(self) -> None:
        super().__init__()
        self.header = w.HTML()
        # Every row shares one layout and one style: a new row opens one comm (with its class and
        # its text in the open), not three comms and two updates.
        self._row_layout = w.Layout()
        self._row_style = HTMLStyle()
        self._rows: dict[tuple[str, str], w.HTML] = {}
        self._columns: tuple[str, ...] = ()
        self.row_writes = 0  # rows re-sent since the start (tests, the bench)
        self.add_class("hdiaks-batches")
        self.update(batch_table([]))

    @property
    def value(self) -> str:
        return "".join(child.value for child in self.children if isinstance(child, w.HTML))

    def update(self, frame: pd.DataFrame) -> int:
        """Show ``frame``'s rows in its order; returns how many row widgets were written."""
        columns = tuple(str(c) for c in frame.columns)
        if columns != self._columns:
            self._columns = columns
            self.header.value = _row_table(columns, "".join(f"<th>{html.escape(c)}</th>" for c in columns), head=True)
            for row in self._rows.values():
                row.value = ""  # the columns changed: every row is drawn again below
        writes = 0
        order: list[w.Widget] = [self.header]
        seen: set[tuple[str, str]] = set()
        for data in frame.to_dict("records"):
            key = (str(data.get("target", "")), str(data.get("id")))
            seen.add(key)
            row = self._rows.get(key)
            text = _row_table(columns, _row_cells(columns, {str(k): v for k, v in data.items()}))
            if row is None:
                row = self._rows[key] = w.HTML(text, layout=self._row_layout, style=self._row_style,
                                               _dom_classes=("hdiaks-batch-row",))  # fmt: skip
                writes += 1
            elif row.value != text:
                row.value = text
                writes += 1
            order.append(row)
        for key in [k for k in self._rows if k not in seen]:
            self._rows.pop(key).close()
        children: tuple[Any, ...] = tuple(self.children)  # type: ignore[has-type]
        if children != tuple(order):
            self.children = tuple(order)
        self.row_writes += writes
        return writes


    def update_row(self, key: tuple[str, str], data: Mapping[str, Any]) -> bool:
        """Draw one existing row from ``data`` (a dict of the table's columns) without building the
        table: False when there is no such row (the caller then calls :meth:`update`)."""
        row = self._rows.get(key)
        if row is None:
            return False
        text = _row_table(self._columns, _row_cells(self._columns, data))
        if row.value != text:
            row.value = text
            self.row_writes += 1
        return True


class _LogChunks(w.VBox):  # type: ignore[misc]
    """The log view: the table as chunks (``HTML`` widgets); the last one ends with the line count.
    ``value`` is the view's HTML as a browser shows it (the older chunks' counts are hidden)."""

    @property
    def value(self) -> str:
        chunks = [child.value for child in self.children if isinstance(child, w.HTML)]
        return "".join([_COUNT_DIV.sub("", text) for text in chunks[:-1]] + chunks[-1:])


_THEAD = re.compile(r"<thead>.*?</thead>", re.S)
_COUNT_DIV = re.compile(r'<div class="hdiaks-log-count"[^>]*>.*?</div>', re.S)
# The line count rides the last chunk (no widget and no message of its own). A chunk that is no
# longer the last keeps its old count in its HTML: this rule, sent once in the first chunk, hides it.
_COUNT_CSS = "<style>.hdiaks-log .hdiaks-log-chunk:not(:last-child) .hdiaks-log-count{display:none}</style>"


class LogPanel:
    """The driver log of the current batch as a filtered table, and "Download full log".

    Each batch's lines are parsed once, as they arrive (:meth:`extend`); filters re-render only.
    ``current`` gives the snapshot of the batch on show; ``on_filter`` re-renders it (under the
    app's lock). The source filter offers the sources present in the batch on show; the run's
    note about its log (``Snapshot.log_note``) is shown above the table while it is set.

    What a followed log sends (issue 14): new lines go into the last chunk, re-sent with them (one
    message) while its HTML stays under ``tail_chars``; past that they open a new chunk (one comm
    open, one update of the view's children). The "N of M lines shown" count is the last chunk's
    footer, so it costs no message of its own. Chunks share one layout and one style.
    """

    def __init__(
        self,
        *,
        current: Callable[[], Snapshot | None],
        on_filter: Callable[[], None],
        log_last: int = 200,
        download_dir: Path = Path("."),
        tail_chars: int = 4000,
    ) -> None:
        self._current = current
        self._tail_chars = tail_chars
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
        self.view = _LogChunks([], layout=w.Layout(max_height="520px", overflow="auto"))
        self.view.add_class("hdiaks-log")
        self._chunk_layout = w.Layout()
        self._chunk_style = HTMLStyle()
        self._chunks: list[tuple[w.HTML | None, pd.DataFrame]] = []  # (chunk, the lines in it)
        self._total = 0  # lines of the batch on show (the count's M)
        self._shown_for: int | str | None = None  # the batch the view shows
        self._rendered = 0  # rows of that batch's frame the view has taken in
        self.full_renders = 0
        self.appends = 0
        self.widget = w.VBox([
            w.HBox([self.level, self.source, self.text, self.last, self.download_button]),
            self.note, self.log_notice, self.view,
        ])  # fmt: skip
        self._syncing_sources = False

        for widget in (self.level, self.source, self.text, self.last):
            widget.observe(self._on_filter_change, names="value")
        self.download_button.on_click(self._on_download_button_click)

    def extend(self, snap: Snapshot, *, key: int | str | None = None) -> None:
        """Parse only the lines not parsed before (a snapshot carries every line so far); ``key``
        names the batch when its id alone does not (the app's endpoint and id)."""
        bid = snap.batch_id if key is None else key
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
        """Draw the batch's log anew (a new batch on show, a filter changed)."""
        frame = self._frames.get(batch_id) if batch_id is not None else None
        self._sync_sources(frame)
        shown = self.filtered(frame if frame is not None else log_table([]))
        for chunk, _ in self._chunks:
            if chunk is not None:
                chunk.close()
        self._total = 0 if frame is None else len(frame)
        self._shown_for, self._rendered = batch_id, self._total
        self._chunks = [(None, shown)]
        self._draw_last()
        self.full_renders += 1
        self._sync_notes(snap)

    def append(self, batch_id: int | str | None, snap: Snapshot | None) -> None:
        """Show only the lines that came since the last render or append, in the last chunk or one
        more (the whole view is drawn anew only for another batch, or when the "last N" limit drops
        the first chunk, which holds the table's header)."""
        frame = self._frames.get(batch_id) if batch_id is not None else None
        if batch_id != self._shown_for or frame is None or len(frame) < self._rendered or not self._chunks:
            self.render(batch_id, snap)
            return
        self._sync_sources(frame)
        if len(frame) > self._rendered:
            new = frame.iloc[self._rendered:]
            shown = filter_log(new, level=self.level.value, text=self.text.value or None, source=self.source.value)
            limit = int(self.last.value)
            self._rendered = self._total = len(frame)
            if len(shown) >= limit:
                self.render(batch_id, snap)
                return
            header = self._chunks[0][0]
            last, rows = self._chunks[-1]
            grown = pd.concat([rows, shown], ignore_index=True) if len(shown) and len(rows) else (
                shown if len(shown) else rows)
            lines = self._shown_lines() + len(shown)
            tail = self._chunk_html(grown, first=len(self._chunks) == 1, lines=lines)
            text: str | None = tail
            if len(tail) <= self._tail_chars:
                self._chunks[-1] = (last, grown)
            else:
                self._chunks.append((None, shown))
                text = None  # the new chunk's own text
            # Keep about the last N: drop whole chunks from the top while N lines remain without them.
            while len(self._chunks) > 1 and self._shown_lines() - len(self._chunks[0][1]) >= limit:
                dropped = self._chunks.pop(0)[0]
                if dropped is not None:
                    dropped.close()
                text = None  # fewer lines shown: the count changed
            if self._chunks[0][0] is not header:  # the header chunk went: redraw
                self.render(batch_id, snap)
                return
            self._draw_last(text)
            self.appends += 1
        self._sync_notes(snap)

    def _shown_lines(self) -> int:
        return sum(len(rows) for _, rows in self._chunks)

    def _chunk_html(self, rows: pd.DataFrame, *, first: bool, lines: int) -> str:
        count = (f'<div class="hdiaks-log-count" style="font-size:12px;color:#57606a">{lines} of {self._total} '
                 "lines shown</div>")  # fmt: skip
        if first:
            return _COUNT_CSS + log_html(rows) + count
        return ("" if rows.empty else _THEAD.sub("", _STYLE_TAG.sub("", log_html(rows)))) + count

    def _draw_last(self, text: str | None = None) -> None:
        """Send the last chunk: its new text (one message), or open it and show it in the view.
        ``text``: the chunk's HTML when the caller has just built it (a grown tail chunk)."""
        chunk, rows = self._chunks[-1]
        if text is None:
            text = self._chunk_html(rows, first=len(self._chunks) == 1, lines=self._shown_lines())
        if chunk is None:
            chunk = w.HTML(text, layout=self._chunk_layout, style=self._chunk_style,
                           _dom_classes=("hdiaks-log-chunk",))  # fmt: skip
            self._chunks[-1] = (chunk, rows)
        elif chunk.value != text:
            chunk.value = text
        children = tuple(c for c, _ in self._chunks)
        if tuple(self.view.children) != children:  # a chunk came or went
            self.view.children = children

    def _sync_notes(self, snap: Snapshot | None) -> None:
        notice = log_note_html(snap)
        if self.log_notice.value != notice:
            self.log_notice.value = notice
        disabled = snap is None or not snap.lines
        if self.download_button.disabled != disabled:
            self.download_button.disabled = disabled

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
