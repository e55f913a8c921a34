"""The cluster's batch history: a paged, filtered table with per-row actions and a timeline plot.

Pages are the service's own list (``LivyClient.list_batches``: Apache Livy ``from``/``size``, Fabric
``$top``/``$skip`` of at most 100, Synapse at most 20 — the client keeps each page within the
dialect's limit). Filters apply to the rows of the page read: Livy's list has no server-side filter.

The panel opens at the newest batches (:func:`read_page`). Apache Livy lists oldest first: its
``SessionServlet`` answers ``GET /batches?from&size`` with a slice ``from..from+size`` of
``SessionManager.all()``, a ``LinkedHashMap`` in insertion (= id) order, and ``total`` = every batch it
holds (apache/incubator-livy ``server/.../SessionServlet.scala``, ``sessions/SessionManager.scala``). So
the newest page is the last, ``from = total - size``, known from the first answer's ``total``; pages
older than it are cut from the end (``[total-2·size, total-size)``…, the oldest one shorter).
Synapse is read the same way (its list is Livy's ``from``/``size`` answer; its order is not documented).
Fabric's list comes newest first in the sandbox (``Dialect.list_newest_first``; Fabric does not
document an order), so there the newest page is ``$skip=0``. Rows are shown newest first either way;
"◀ Newer" / "Older ▶" move through the list in that sense.

*Submitted by me* (:func:`me_of`): a batch this notebook submitted (the :class:`SpecLedger`), or a
batch whose ``owner`` or ``proxyUser`` is the profile's user (Basic sign-in) or the form's proxy
user. Apache Livy fills ``owner`` only when it authenticates (Kerberos/LDAP; ``None`` with no auth) and
``proxyUser`` when one was asked for; Fabric and Synapse answer ``submitterName``/``submitterId``
(``models.Batch`` does not read them yet, and the sandbox sends ``null``), so there *me* is what this
notebook submitted.

Clone and resubmit need the batch's body. No service returns it: Apache Livy's ``BatchSessionView``
has ``name`` and ``proxyUser`` of it, Fabric's and Synapse's batch objects ``name`` only. So a clone
takes the body this notebook sent when it has it (the ledger), and otherwise the fields the service
returned, saying in the panel which fields it could not get (docs/fidelity.md). Resubmit goes through
:meth:`BatchRun.submit` (the one submit path) with a fresh name (a retained batch keeps its name
taken: Livy refuses a duplicate with 400).

Every network call runs through the dispatcher's ``run`` (never on the kernel thread), and every widget
write through its ``post`` (``_dispatch.Dispatcher``). The timeline is drawn with matplotlib's
object API (``Figure`` + Agg canvas, no pyplot state, so it is safe off the kernel thread) as PNG.
"""

from __future__ import annotations

import html
import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import ipywidgets as w

if TYPE_CHECKING:
    import pandas as pd

from hdiaks_widgets import wire
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dialects import dialect_of
from hdiaks_widgets.models import Batch, BatchList, BatchState, LogPage, id_sort_key
from hdiaks_widgets.monitor import describe_error
from hdiaks_widgets.run import BatchRun
from hdiaks_widgets.tables import STATE_COLOURS, batch_table, link_html
from hdiaks_widgets.widgets._common import LivyClientLike, note_html

__all__ = [
    "BODY_FIELDS_RETURNED",
    "BatchHistoryPanel",
    "HistoryFilter",
    "SpecLedger",
    "clone_spec",
    "elapsed_seconds",
    "lists_newest_first",
    "me_of",
    "read_page",
    "timeline_png",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# What of the POST body each service returns in its batch object (BatchSessionView; Fabric's
# BatchResponse / Synapse's SparkBatchJob: name only). Everything else is lost once submitted.
BODY_FIELDS_RETURNED: Mapping[str, tuple[str, ...]] = {
    "livy": ("name", "proxy_user"), "sandbox": ("name", "proxy_user"), "hdinsight": ("name", "proxy_user"),
    "hdinsight-aks": ("name", "proxy_user"), "fabric": ("name",), "synapse": ("name",),
}  # fmt: skip
_ACTIVE = frozenset({"not_started", "starting", "recovering", "idle", "running", "busy", "shutting_down"})
_RUNNING = frozenset({BatchState.RUNNING, BatchState.BUSY, BatchState.IDLE})  # the application runs
STATE_FILTERS = (("all states", ""), ("active", "active"), ("finished", "finished"),
                 *((s.value, s.value) for s in BatchState))  # fmt: skip
# The suffix JobApp adds to a job name when "unique suffix" is ticked: "-HHMMSS-xxxx".
_APP_SUFFIX = re.compile(r"-\d{6}-[0-9a-f]{4}$")


class Dispatch(Protocol):
    """What the panel needs of ``_dispatch.Dispatcher``."""

    def post(self, fn: Callable[[], None], *, key: Any = None, hold: Iterable[Any] = ()) -> None: ...

    def run(
        self,
        call: Callable[[], T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        key: Any = None,
        hold: Iterable[Any] = (),
    ) -> Future[T]: ...

    def flush(self, timeout: float = 5.0) -> bool: ...


class SpecLedger:
    """The bodies this notebook submitted, by (profile, batch id): what a clone needs and no service
    returns; and the times this notebook saw its batches submitted, running and ended, for a service
    whose batch object has none (Apache Livy): the timeline and the elapsed column use them."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.Lock()
        self._specs: dict[tuple[ClusterProfile, str], BatchSpec] = {}
        self._seen: dict[tuple[ClusterProfile, str], dict[str, datetime]] = {}
        self._clock = clock or (lambda: datetime.now(UTC))

    def record(self, profile: ClusterProfile, batch_id: int | str, spec: BatchSpec) -> None:
        with self._lock:
            self._specs[(profile, str(batch_id))] = spec
            self._seen.setdefault((profile, str(batch_id)), {}).setdefault("submitted", self._clock())

    def observe(self, profile: ClusterProfile, batch_id: int | str, state: BatchState) -> None:
        """A state a monitor of this notebook read: the first read of a batch is its "submitted" time
        when it was not submitted here, the first read running its start, the first terminal read its end."""
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault((profile, str(batch_id)), {})
            seen.setdefault("submitted", now)
            if state in _RUNNING and "started" not in seen:
                seen["started"] = now
            if state.is_terminal:
                seen.setdefault("ended", now)

    def with_seen_times(self, profile: ClusterProfile, batch: Batch) -> Batch:
        """``batch`` with the times this notebook saw where the service sent none (else as it is)."""
        if batch.submitted_at is not None or batch.started_at is not None or batch.ended_at is not None:
            return batch
        with self._lock:
            seen = dict(self._seen.get((profile, str(batch.id)), {}))
        if not seen:
            return batch
        return replace(batch, submitted_at=seen.get("submitted"), started_at=seen.get("started"),
                       ended_at=seen.get("ended") if batch.state.is_terminal else None)  # fmt: skip

    def get(self, profile: ClusterProfile, batch_id: int | str) -> BatchSpec | None:
        with self._lock:
            return self._specs.get((profile, str(batch_id)))

    def ids(self, profile: ClusterProfile) -> frozenset[str]:
        with self._lock:
            return frozenset(bid for (p, bid) in self._specs if p == profile)


@dataclass(frozen=True)
class HistoryFilter:
    """``state``: "" (all), "active", "finished" or one Livy state; ``name``: a case-insensitive
    substring of the batch name; ``mine``: only batches :func:`me_of` counts as the user's."""

    state: str = ""
    name: str = ""
    mine: bool = False

    def matches(
        self, batch: Batch, *, me: frozenset[str] = frozenset(), mine_ids: frozenset[str] = frozenset()
    ) -> bool:
        state = batch.state.value
        if self.state == "active" and state not in _ACTIVE:
            return False
        if self.state == "finished" and not batch.state.is_terminal:
            return False
        if self.state not in ("", "active", "finished") and state != self.state:
            return False
        if self.name.strip() and self.name.strip().lower() not in (batch.name or "").lower():
            return False
        if self.mine:
            people = {p for p in (batch.owner, batch.proxy_user) if p}
            if str(batch.id) not in mine_ids and not (people & me):
                return False
        return True


def me_of(profile: ClusterProfile, spec: BatchSpec | None = None) -> frozenset[str]:
    """The names a batch of this user carries in ``owner``/``proxyUser``: the profile's user (Basic
    sign-in; Livy's owner is the authenticated user) and the proxy user the form asks for."""
    names = {profile.username, spec.proxy_user if spec is not None else None}
    return frozenset(n for n in names if n)


def elapsed_seconds(batch: Batch, *, now: datetime | None = None) -> float | None:
    """From start (or submission) to end, or to ``now`` while it runs; ``None`` without the service's times."""
    begin = batch.started_at or batch.submitted_at
    if begin is None:
        return None
    end = batch.ended_at
    if end is None:
        if batch.state.is_terminal:
            return None
        end = now or datetime.now(UTC)
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return max(0.0, (end - begin).total_seconds())


def clone_spec(batch: Batch, recorded: BatchSpec | None, *, flavour: str) -> tuple[BatchSpec, list[str]]:
    """The spec to put in the form for ``batch`` and a sentence per thing that could not be had.

    ``recorded`` (what this notebook sent) is the whole body; without it only the fields the service
    returns (:data:`BODY_FIELDS_RETURNED`) are known. The name loses JobApp's unique suffix, so the form
    adds a new one on submit."""
    name = _APP_SUFFIX.sub("", batch.name) if batch.name else None
    if recorded is not None:
        return replace(recorded, name=_APP_SUFFIX.sub("", recorded.name) if recorded.name else name), []
    returned = BODY_FIELDS_RETURNED.get(flavour, ("name",))
    spec = BatchSpec(name=name, proxy_user=batch.proxy_user if "proxy_user" in returned else None)
    missing = [f for f in wire.LIVY_FIELDS if f not in returned]
    label = {"livy": "Apache Livy", "sandbox": "the sandbox (as Apache Livy)"}.get(flavour, flavour)
    notes = [
        f"Batch {batch.id} was not submitted from this notebook and {label} returns only "
        f"{' and '.join(returned)} of a batch's body: fill in {', '.join(missing)} yourself."
    ]
    return spec, notes


def lists_newest_first(profile: ClusterProfile) -> bool:
    """Whether the profile's service lists its batches newest first (Fabric here) or, as Apache Livy, oldest first."""
    return dialect_of(profile.flavour).list_newest_first


def read_page(client: LivyClientLike, start: int | None, size: int, *, newest_first: bool,
              known_total: int = 0) -> BatchList:  # fmt: skip
    """``size`` batches from ``start`` in the service's order, or (``start=None``) the newest ``size``.

    Newest where the list is oldest first: the last page, ``from = total - size``. The first request
    guesses ``total`` (``known_total``, the last one seen; 0 reads from the start); when its answer's
    ``total`` shows the page is not the end, the page at ``total - size`` is read (at most twice more:
    batches come and go between requests). One request when the guess holds or the list fits a page."""
    if start is not None:
        return client.list_batches(start=start, size=size)
    if newest_first:
        return client.list_batches(start=0, size=size)
    page = client.list_batches(start=max(0, known_total - size), size=size)
    for _ in range(2):
        last = max(0, page.total - size)
        if page.start == last:
            break
        page = client.list_batches(start=last, size=size)
    return page


def fresh_name(name: str | None) -> str:
    """A new unique name for a resubmit (Livy keeps a retained batch's name taken)."""
    base = _APP_SUFFIX.sub("", name) if name else "job"
    return f"{base[:180]}-{wire.unique_batch_name()[len('hdiaks-'):][:8]}"


def timeline_png(batches: Sequence[Batch], *, now: datetime | None = None, width: float = 8.0,
                 seen: frozenset[str] = frozenset()) -> bytes:  # fmt: skip
    """A PNG: one row per batch, a thin grey bar from submitted to started (waiting), a thick bar from
    started to ended (or now) coloured by state; batches without times are named at the bottom.
    ``seen``: ids whose times are the ones this notebook saw (the service sent none), said in the title."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415 - heavy; only when a timeline is drawn
    from matplotlib.patches import Patch  # noqa: PLC0415

    now = now or datetime.now(UTC)

    def utc(t: datetime | None) -> datetime | None:
        return None if t is None else (t if t.tzinfo is not None else t.replace(tzinfo=UTC))

    def x(*times: datetime) -> list[float]:
        return [float(date2num(t)) for t in times]  # type: ignore[no-untyped-call]

    timed = [b for b in batches if utc(b.submitted_at or b.started_at) is not None]
    untimed = [b for b in batches if b not in timed]
    timed.sort(key=lambda b: (utc(b.submitted_at or b.started_at), id_sort_key(b.id)))
    fig = Figure(figsize=(width, max(2.2, 0.35 * len(timed) + 1.6)), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for row, b in enumerate(timed):
        submitted = utc(b.submitted_at) or utc(b.started_at)
        started = utc(b.started_at)
        ended = utc(b.ended_at) or (None if b.state.is_terminal else now)
        assert submitted is not None
        colour = STATE_COLOURS.get(b.state.value, "#6e7781")
        if started is not None and started > submitted:
            ax.plot(x(submitted, started), [row, row], color="#afb8c1", linewidth=3, solid_capstyle="butt")
        if started is not None and ended is not None:
            ax.plot(x(started, max(ended, started)), [row, row], color=colour, linewidth=9, solid_capstyle="butt")
        elif ended is not None:
            ax.plot(x(submitted, max(ended, submitted)), [row, row], color=colour, linewidth=9, solid_capstyle="butt")
        else:
            ax.plot(x(submitted), [row], marker="o", color=colour)
    if timed:  # an empty date axis would show made-up 1970 ticks
        ax.xaxis_date(tz=UTC)
        # Short labels at any span (the default showed "56:53.800000" for batches a second long).
        locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_yticks(range(len(timed)))
    ax.set_yticklabels([f"{_short_id(b.id)} {(b.name or '')[:28]}" for b in timed], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time (UTC)" if timed else "")
    ax.grid(axis="x", color="#eaeef2")
    states = sorted({b.state.value for b in timed})
    if states:
        ax.legend(handles=[Patch(color=STATE_COLOURS.get(s, "#6e7781"), label=s) for s in states]
                  + [Patch(color="#afb8c1", label="waiting (submitted → started)")],
                  fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    by_us = sum(1 for b in timed if str(b.id) in seen)
    title = f"{len(timed) - by_us} batch(es) with the service's times"
    if by_us:
        title += f", {by_us} with the times this notebook saw (polls, not the service's own record)"
    if untimed:
        title += f"; {len(untimed)} without (Apache Livy's batch object has none): " + ", ".join(
            str(b.id) for b in untimed[:12]) + ("…" if len(untimed) > 12 else "")
    if not timed:
        ax.set_yticks([])
        ax.set_xticks([])
        ax.text(0.5, 0.5, "no submitted/started/ended times from this service", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_title(title, fontsize=8, loc="left", wrap=True)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _short_id(batch_id: str) -> str:
    """A long id (Fabric's UUIDs) by its first 8 characters, so the plot keeps room for the bars."""
    return f"{batch_id[:8]}…" if len(batch_id) > 12 else batch_id


def _elapsed_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else (
        f"{seconds // 60}:{seconds % 60:02d}")


def rows_html(batches: Sequence[Batch], *, selected: str | None, mine_ids: frozenset[str],
              now: datetime | None = None) -> str:  # fmt: skip
    """The page as an HTML table (every value escaped; links http(s) only)."""
    head = ("<tr><th>id</th><th>name</th><th>state</th><th>elapsed</th><th>submitted (UTC)</th>"
            "<th>owner / proxy user</th><th>Spark UI</th></tr>")  # fmt: skip
    body = []
    for b in batches:
        colour = STATE_COLOURS.get(b.state.value, "#6e7781")
        sub = b.submitted_at.strftime("%Y-%m-%d %H:%M:%S") if b.submitted_at else "—"
        who = " / ".join(p for p in (b.owner, b.proxy_user) if p) or "—"
        mark = " ★" if str(b.id) in mine_ids else ""
        style = ' style="background:#ddf4ff"' if str(b.id) == selected else ""
        body.append(
            f"<tr{style}><td>{html.escape(str(b.id))}{mark}</td><td>{html.escape(b.name or '')}</td>"
            f'<td style="color:{colour}"><b>{html.escape(b.state.value)}</b></td>'
            f"<td>{_elapsed_text(elapsed_seconds(b, now=now))}</td><td>{sub}</td><td>{html.escape(who)}</td>"
            f"<td>{link_html(b.app_info.spark_ui_url, 'UI') if b.app_info.spark_ui_url else ''}</td></tr>"
        )
    if not body:
        body.append('<tr><td colspan="7"><i>no batch on this page matches the filters</i></td></tr>')
    return (_TABLE_STYLE + '<table class="hdiaks-history-table" style="border-collapse:collapse;font-size:12px">'
            + head + "".join(body) + "</table>")  # fmt: skip


# Cells apart and left-aligned (the browser test's screenshot showed the headers run together).
_TABLE_STYLE = ("<style>.hdiaks-history-table th,.hdiaks-history-table td{padding:2px 10px;text-align:left;"
                "white-space:nowrap}</style>")  # fmt: skip


class BatchHistoryPanel:
    """The cluster's batches, a page at a time, with filters, per-row actions and a timeline.

    ``profile()`` gives the profile to list (the form's; read on the owner thread), ``client_for(profile)``
    its client (called off the kernel thread: building one may read a secret store); ``form`` (a
    ``JobForm``) receives clones; ``on_submitted(run, profile)`` hears of a resubmitted batch (JobApp can watch it);
    ``on_kill(batch id, client, asked)`` hears of a kill before it is sent (``asked`` true) and of its failure
    (false), off the kernel thread (JobApp tells the batch's monitor the kill was its own).
    """

    def __init__(
        self,
        dispatcher: Dispatch,
        profile: Callable[[], ClusterProfile],
        client_for: Callable[[ClusterProfile], LivyClientLike],
        *,
        form: Any = None,
        ledger: SpecLedger | None = None,
        page_size: int = 20,
        on_submitted: Callable[[BatchRun, ClusterProfile], object] | None = None,
        on_kill: Callable[[str, Any, bool], object] | None = None,
        log_lines: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self._profile_of = profile
        self._client_for = client_for
        self.form = form
        self.ledger = ledger if ledger is not None else SpecLedger()
        self.page_size = page_size
        self._on_submitted = on_submitted
        self._on_kill = on_kill
        self._log_lines = log_lines
        self._clock = clock or (lambda: datetime.now(UTC))
        self.start = 0  # where the page shown begins in the service's own order
        self.total = 0
        self.newest = True  # the page shown is the newest: Refresh follows new batches
        self._want: tuple[int, int] | None = None  # (start, size) last asked for: a second click goes on from it
        self.page: tuple[Batch, ...] = ()  # the service's page, unfiltered, in the service's order
        self.shown: tuple[Batch, ...] = ()  # the rows that pass the filters
        self.profile: ClusterProfile | None = None
        self.timeline: bytes | None = None
        self.last_submitted: BatchRun | None = None
        self._pending = 0
        self._started = 0  # calls ever started: wait_idle sees one started (and ended) during its flush
        self._pending_lock = threading.Lock()
        self._idle = threading.Condition(self._pending_lock)

        self.state = w.Dropdown(options=STATE_FILTERS, value="", description="State",
                                style={"description_width": "40px"}, layout=w.Layout(width="200px"))  # fmt: skip
        self.name = w.Text(placeholder="name contains", layout=w.Layout(width="180px"))
        self.mine = w.Checkbox(value=False, description="submitted by me", indent=False, layout=w.Layout(width="140px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("hdiaks-history-refresh")
        self.newer_button = w.Button(description="◀ Newer", disabled=True)
        self.older_button = w.Button(description="Older ▶", disabled=True)
        self.label = w.HTML()
        self.table = w.HTML()
        self.table.add_class("hdiaks-history-rows")
        self.row = w.Dropdown(options=[], description="Batch", style={"description_width": "40px"},
                              layout=w.Layout(width="320px"))  # fmt: skip
        self.log_button = w.Button(description="Show log", icon="file-text")
        self.kill_button = w.Button(description="Kill", icon="stop", button_style="danger")
        self.kill_button.add_class("hdiaks-history-kill")
        self.clone_button = w.Button(description="Clone into form", icon="copy")
        self.resubmit_button = w.Button(description="Resubmit", icon="repeat", button_style="primary")
        self.note = w.HTML()
        self.note.add_class("hdiaks-history-note")
        self.log_view = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.image.add_class("hdiaks-history-timeline")
        self._actions = (self.log_button, self.kill_button, self.clone_button, self.resubmit_button)
        for button in self._actions:
            button.disabled = True
        self.widget = w.VBox([
            w.HBox([self.state, self.name, self.mine, self.refresh_button]),
            w.HBox([self.newer_button, self.older_button, self.label]),
            self.table,
            w.HBox([self.row, *self._actions]),
            self.note, self.log_view,
            w.HTML("<b>Timeline</b> (submitted → started → ended, coloured by state)"), self.image,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-history-panel")
        self._views = (self.label, self.table, self.row, self.note, self.log_view, self.image, self.newer_button,
                       self.older_button, *self._actions)  # fmt: skip

        self.refresh_button.on_click(self._on_refresh_button_click)
        self.newer_button.on_click(self._on_newer_button_click)
        self.older_button.on_click(self._on_older_button_click)
        self.state.observe(self._on_filter_change, names="value")
        self.name.observe(self._on_filter_change, names="value")
        self.mine.observe(self._on_filter_change, names="value")
        self.row.observe(self._on_row_change, names="value")
        self.log_button.on_click(self._on_log_button_click)
        self.kill_button.on_click(self._on_kill_button_click)
        self.clone_button.on_click(self._on_clone_button_click)
        self.resubmit_button.on_click(self._on_resubmit_button_click)

    # -- public ------------------------------------------------------------------------------

    @property
    def filter(self) -> HistoryFilter:
        return HistoryFilter(state=str(self.state.value or ""), name=str(self.name.value), mine=bool(self.mine.value))

    @property
    def selected(self) -> Batch | None:
        return next((b for b in self.shown if str(b.id) == self.row.value), None)

    def show(self, start: int | None = None, *, size: int | None = None, quiet: bool = False) -> Future[Any]:
        """Read a page off the kernel thread and show it (the latest request wins): the newest
        ``page_size`` batches by default (:func:`read_page`), else ``size`` batches from ``start`` in
        the service's own order. ``quiet``: keep the note as it is (an action's answer)."""
        return self._show(start, size=size, quiet=quiet)

    def frame(self, *, start: int | None = None, size: int | None = None) -> pd.DataFrame:
        """One page as a DataFrame, read in the calling thread, newest first (default: the newest page)."""
        profile = self._profile_of()
        newest_first = lists_newest_first(profile)
        page = read_page(self._client_for(profile), start, size or self.page_size, newest_first=newest_first)
        rows = tuple(page.batches)
        return batch_table(rows if newest_first else rows[::-1])

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until every call started here reported back and its widgets were written (tests, scripts)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._pending_lock:
                if not self._idle.wait_for(lambda: self._pending == 0, max(0.0, deadline - time.monotonic())):
                    return False
                started = self._started
            if not self.dispatcher.flush(max(0.1, deadline - time.monotonic())):
                return False
            with self._pending_lock:
                # Nothing new was started by what the flush applied (a kill's answer reads the page
                # again: that call may already have ended, its answer posted but not yet applied).
                if self._pending == 0 and self._started == started:
                    return True

    def select(self, batch_id: int | str) -> None:
        """Select a row (as choosing it in the Batch list does)."""
        self.dispatcher.post(lambda: setattr(self.row, "value", str(batch_id)), hold=(self.row,))

    def show_log(self) -> Future[Any] | None:
        batch = self.selected
        if batch is None:
            return None
        size = self._log_lines

        profile = self.profile or self._profile_of()

        def call() -> LogPage:
            return self._client_for(profile).get_log(batch.id, size=size)

        def done(page: LogPage) -> None:
            lines = "\n".join(page.lines[-size:])
            self.log_view.value = (f"<div><b>Log of batch {html.escape(str(batch.id))}</b> (last {len(page.lines)} "
                                   f"of {page.total} lines of Livy's view)</div><pre style='max-height:300px;"
                                   f"overflow:auto;font-size:11px'>{html.escape(lines)}</pre>")  # fmt: skip
            self.note.value = ""

        return self._run(call, done, key="log")

    def kill(self) -> Future[Any] | None:
        batch = self.selected
        if batch is None:
            return None

        profile = self.profile or self._profile_of()

        def call() -> None:
            client = self._client_for(profile)
            if self._on_kill is not None:
                self._on_kill(batch.id, client, True)
            try:
                client.kill_batch(batch.id)
            except BaseException:
                if self._on_kill is not None:
                    self._on_kill(batch.id, client, False)
                raise

        def done(_result: None) -> None:
            self.note.value = note_html(f"Batch {batch.id}: the kill was answered; reading the list again…")
            start, size = (None, None) if self.newest else (self._want or (self.start, self.page_size))
            self._show(start, size=size, quiet=True, then=lambda: self._say_killed(batch))

        return self._run(call, done, key=("kill", str(batch.id)))

    def clone(self) -> tuple[BatchSpec, list[str]] | None:
        """Put the selected batch's body into the form (on the owner thread); returns what was put."""
        batch, profile = self.selected, self.profile
        if batch is None or profile is None:
            return None
        spec, notes = clone_spec(batch, self.ledger.get(profile, batch.id), flavour=profile.flavour)

        def apply() -> None:
            if self.form is not None:
                cfg, _ = self.form.config()
                self.form.set_config(JobConfig(profile=cfg.profile, spec=spec))
            said = " ".join(notes) if notes else f"Batch {batch.id}'s job is in the form, every field as submitted."
            self.note.value = note_html(said, ok=not notes)

        self.dispatcher.post(apply, hold=(self.note,))
        return spec, notes

    def resubmit(self) -> Future[Any] | None:
        """Submit the selected batch's body again (``BatchRun.submit``) under a fresh name."""
        batch, profile = self.selected, self.profile
        if batch is None or profile is None:
            return None
        recorded = self.ledger.get(profile, batch.id)
        if recorded is None:
            _spec, notes = clone_spec(batch, None, flavour=profile.flavour)
            self.dispatcher.post(lambda: setattr(self.note, "value", note_html(
                "Not resubmitted: " + notes[0] + " Use Clone into form, complete it, then Submit.", ok=False)))
            return None
        spec = replace(recorded, name=fresh_name(recorded.name))

        def call() -> BatchRun:
            return BatchRun.submit(self._client_for(profile), spec, name_checked=True)

        def done(run: BatchRun) -> None:
            self.ledger.record(profile, run.batch_id, spec)
            self.last_submitted = run
            self.note.value = note_html(f"Resubmitted batch {batch.id} as batch {run.batch_id} ({spec.name}).")
            if self._on_submitted is not None:
                self._on_submitted(run, profile)
            self._refresh(quiet=True)

        return self._run(call, done, key=("resubmit", str(batch.id)))

    # -- handlers ----------------------------------------------------------------------------

    def _on_refresh_button_click(self, _button: w.Button) -> None:
        self._refresh()

    def _on_newer_button_click(self, _button: w.Button) -> None:
        start, size = self._want or (self.start, self.page_size)
        if self._newest_first():
            newer = start - self.page_size
            self._show(None if newer <= 0 else newer)
        else:  # the page after this one in Livy's order; the newest page when that reaches the end
            newer = start + size
            self._show(None if newer + self.page_size >= self.total else newer)

    def _on_older_button_click(self, _button: w.Button) -> None:
        start, size = self._want or (self.start, self.page_size)
        if self._newest_first():
            self._show(start + size)
        elif start > 0:  # pages are cut from the end: the oldest one is the shorter
            older = max(0, start - self.page_size)
            self._show(older, size=start - older)

    def _on_filter_change(self, _change: Mapping[str, Any]) -> None:
        self.dispatcher.post(self._render, key=("history", id(self)), hold=self._views)

    def _on_row_change(self, _change: Mapping[str, Any]) -> None:
        self.dispatcher.post(self._sync_actions, key=("history-row", id(self)), hold=self._actions)

    def _on_log_button_click(self, _button: w.Button) -> None:
        self.show_log()

    def _on_kill_button_click(self, _button: w.Button) -> None:
        self.kill()

    def _on_clone_button_click(self, _button: w.Button) -> None:
        self.clone()

    def _on_resubmit_button_click(self, _button: w.Button) -> None:
        self.resubmit()

    # -- helpers (owner thread) --------------------------------------------------------------

    def _run(self, call: Callable[[], T], on_done: Callable[[T], None], *, key: Any) -> Future[T]:
        """``dispatcher.run`` with a count of calls in flight (``wait_idle``): the count drops after the
        dispatcher has posted the result (its callback is added first), or dropped it as stale."""
        with self._pending_lock:
            self._pending += 1
            self._started += 1

        def failed(exc: BaseException) -> None:
            self.note.value = note_html(f"The cluster did not answer: {describe_error(exc)[1]}", ok=False)

        def finished(_future: Future[T]) -> None:
            with self._pending_lock:
                self._pending -= 1
                self._idle.notify_all()

        future = self.dispatcher.run(call, on_done, failed, key=(key, id(self)), hold=self._views)
        future.add_done_callback(finished)
        return future

    def _newest_first(self) -> bool:
        return lists_newest_first(self.profile or self._profile_of())

    def _refresh(self, *, quiet: bool = False) -> None:
        """Read the page shown again: the newest one (which may have moved on) or the same range."""
        if self.newest or self._want is None:
            self._show(None, quiet=quiet)
        else:
            self._show(self._want[0], size=self._want[1], quiet=quiet)

    def _show(self, start: int | None, *, size: int | None = None, quiet: bool = False,
              then: Callable[[], None] | None = None) -> Future[Any]:  # fmt: skip
        if not quiet:
            self._tell("Reading the cluster's batches…")
        profile, size = self._profile_of(), size or self.page_size
        newest_first, known = lists_newest_first(profile), (self.total if profile == self.profile else 0)
        if start is not None:
            self._want = (start, size)

        def call() -> BatchList:
            return read_page(self._client_for(profile), start, size, newest_first=newest_first, known_total=known)

        def done(page: BatchList) -> None:
            self._apply_page(profile, page, size=size, newest=start is None)
            if then is not None:
                then()

        return self._run(call, done, key="page")

    def _say_killed(self, batch: Batch) -> None:
        """What the list read after a kill shows: Apache Livy forgets a batch it deletes (``DELETE``
        stops it, then drops its record before answering: SessionManager.delete), so it is gone;
        Fabric and Synapse keep it, ``killed`` once it stopped."""
        seen = next((b for b in self.page if str(b.id) == str(batch.id)), None)
        if seen is None:
            said = (f"Batch {batch.id} was killed and is no longer listed: the service dropped its record "
                    "(Apache Livy forgets a batch it deletes), so its state and log are gone with it.")  # fmt: skip
        elif seen.state.is_terminal:
            said = f"Batch {batch.id} was killed: the list shows it {seen.state.value}."
        else:
            said = (f"Batch {batch.id} was asked to stop; the list still shows it {seen.state.value}: "
                    "Refresh to see it end.")
        self.note.value = note_html(said)

    def _apply_page(self, profile: ClusterProfile, page: BatchList, *, size: int, newest: bool) -> None:
        # Apache Livy's batch objects carry no times: those of batches this notebook watched are the ones it saw.
        given = tuple(page.batches)
        seen = tuple(self.ledger.with_seen_times(profile, b) for b in given)
        filled = frozenset(str(b.id) for b, g in zip(seen, given, strict=True) if b is not g)
        self.profile, self.start, self.total, self.page = profile, page.start, page.total, seen
        self.newest, self._want = newest, (page.start, size)
        self._render()
        if not self.shown:  # no picture rather than an empty one (a browser draws a broken-image icon)
            self.timeline = None
            self.image.value = b""
            self.image.layout.display = "none"
            return
        shown = self.shown
        now = self._clock()
        self._run(lambda: timeline_png(shown, now=now, seen=filled), self._apply_timeline, key="timeline")

    def _apply_timeline(self, png: bytes) -> None:
        self.timeline = png
        self.image.value = png
        self.image.layout.display = None

    def _render(self) -> None:
        profile = self.profile
        mine_ids = self.ledger.ids(profile) if profile is not None else frozenset()
        spec = self.form.config()[0].spec if self.form is not None else None
        me = me_of(profile, spec) if profile is not None else frozenset()
        flt = self.filter
        newest_first = lists_newest_first(profile) if profile is not None else False
        ordered = self.page if newest_first else self.page[::-1]  # newest first either way
        self.shown = tuple(b for b in ordered if flt.matches(b, me=me, mine_ids=mine_ids))
        n, end = len(self.page), self.start + len(self.page)
        # Positions counted from the newest batch (1 = the newest), whatever the service's order.
        first, last = (self.start + 1, end) if newest_first else (max(1, self.total - end + 1), self.total - self.start)
        matched = f"; {len(self.shown)} match the filters" if len(self.shown) != n else ""
        where = (f"batches {first}–{last} of {self.total}, newest first" if n else
                 f"no batches on this page ({self.total} listed)" if self.total else "the service lists no batches")
        self.label.value = (where + matched
                            + (" (the service keeps finished batches only for a while)" if self.total else ""))
        if newest_first:
            self.newer_button.disabled, self.older_button.disabled = self.start <= 0, end >= self.total
        else:
            self.newer_button.disabled, self.older_button.disabled = end >= self.total, self.start <= 0
        keep = self.row.value
        options = [(f"{b.id} · {b.name or ''} · {b.state.value}", str(b.id)) for b in self.shown]
        self.row.options = options
        self.row.value = keep if keep in {v for _, v in options} else (options[0][1] if options else None)
        self.table.value = rows_html(self.shown, selected=self.row.value, mine_ids=mine_ids, now=self._clock())
        self._sync_actions()
        if self.note.value.startswith('<div class="hdiaks-note" style="color:#1a7f37">Reading'):
            self.note.value = ""

    def _sync_actions(self) -> None:
        batch = self.selected
        for button in self._actions:
            button.disabled = batch is None
        if batch is not None:
            self.kill_button.disabled = batch.state.is_terminal
            self.table.value = rows_html(self.shown, selected=str(batch.id),
                                         mine_ids=self.ledger.ids(self.profile) if self.profile else frozenset(),
                                         now=self._clock())  # fmt: skip

    def _tell(self, text: str) -> None:
        self.dispatcher.post(lambda: setattr(self.note, "value", note_html(text)), hold=(self.note,))
