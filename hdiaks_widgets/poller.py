"""One poller for many batches: one background thread per Livy client, whatever the number of batches.

A notebook that watches fifty batches with fifty :class:`~hdiaks_widgets.monitor.BatchMonitor`
threads asks Livy for every batch's state and log twice a second each (issue 14 measured about
10,000 requests a minute). :class:`Poller` asks once for all of them:

- **States from the list.** Each round reads ``GET /batches`` (Apache Livy ``?from&size``, Fabric
  ``?$top&$skip``, Synapse pages of at most 20: the dialect's own request, through
  ``LivyClient.list_batches``) over the window where the watched batches are: Apache Livy lists the
  oldest first (``SessionManager`` keeps a ``LinkedHashMap``; a new batch is at the end), some Livy
  builds and Fabric (the sandbox's choice; not documented) the newest first, and numeric ids in an
  answer say which order this server uses. One page per round when they fit. A batch not in the
  answer (its position unknown, outside the window, or gone) is read on its own with
  ``GET /batches/{id}``, which is also how a purged batch is reported: ``BatchRun`` turns
  the 404 into ``purged`` as it always does. Where the list items are summaries (Fabric's
  activities, Synapse without ``detailed=true``), the full batch is read once at the start, when the
  batch ends (for its ``result`` and ``errorInfo``) and while someone follows its log.
- **Logs only where someone looks.** A batch whose log is followed (:meth:`Poller.focus`,
  ``Watch.follow_logs = True``: the selected batch in the UI, a ``--follow``) has its log read on
  every poll by the dialect's usual reader (``logview.LivyLogReader`` or ``run.ServiceLogReader``,
  unchanged); for the others the log is read only once their state is terminal, so their error lines
  still arrive. Spark's progress (a run made with ``BatchRun(progress=)``) is read only while followed.
- **The end without a wait.** ``BatchRun`` finishes a batch at its second look at a terminal state
  (the first one can come before the last lines: Livy's state flips when spark-submit exits, while
  its output is still being read; Synapse's and Fabric's driver logs are read once more after the
  end to see that they stopped growing). That confirming look is not left to the next round: it is
  due ``confirm_after`` seconds after the first (``min(0.25 x interval, 0.5)`` by default) in a
  short round of its own that serves only the looks due by then (the list once, for all the batches
  that end together; ``Retry-After`` holds it like any round). So a batch's final state, error
  sentence and last lines arrive within ``confirm_after`` of the round that first saw it ended, at
  most a few such looks (``confirm_looks``), then once per ``interval`` while a log still drains.
- **Gentle.** Each batch backs off while nothing changes (``interval`` growing by ``factor`` to
  ``max_interval``); a round serves every batch due within the next ``interval``, so their rounds
  line up instead of spreading. A ``Retry-After`` the server sends with an error (429, 503, Fabric's
  430) holds every request of this poller until it has passed; the client's own urllib3 retries
  already wait it out within one call's budget (``livy.RetryPolicy``).
- **Visible.** :meth:`Poller.stats` says the requests per minute over a sliding window, by kind,
  how many batches are watched and followed, and the last error.

Each poll is still ``BatchRun.poll``: every decision about states, the log's end, purges, reused
ids and giving up stays in :mod:`hdiaks_widgets.run`. The poller only serves that run its batch
object from the round's list answer (the run's ``client`` becomes a thin view that asks the poller
first) and gates its log reader. Snapshots are the run's :class:`~hdiaks_widgets.run.Snapshot`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from hdiaks_widgets.dialects import Dialect
from hdiaks_widgets.errors import LivyHTTPError, NotSupported
from hdiaks_widgets.logview import LogDelta
from hdiaks_widgets.models import Batch
from hdiaks_widgets.run import BatchRun, LivyLike, LogReader, Snapshot, backoff, default_log_reader

__all__ = ["Poller", "PollerStats", "Watch", "shared_poller"]

log = logging.getLogger(__name__)

Callback = Callable[[Snapshot], None]

# Client calls that send one HTTP request each, and the kind they are counted as in stats().
_METERED = {
    "get_batch": "batch",
    "get_batch_state": "batch",
    "get_log": "log",
    "get_text": "log",
    "get_json": "log",
    "list_batches": "list",
    "kill_batch": "batch",
}
# A list endpoint answering these is not there (or not this shape): read batches one by one.
_NO_LIST = frozenset({400, 404, 405, 501})


class _Meter:
    """Requests sent, by kind, with a sliding window for the rate."""

    def __init__(self, clock: Callable[[], float], window: float) -> None:
        self._clock = clock
        self.window = window
        self.started = clock()
        self._times: deque[float] = deque()
        self.kinds: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        now = self._clock()
        with self._lock:
            self._times.append(now)
            self.kinds[kind] += 1
            self._prune(now)

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()

    def recent(self) -> tuple[int, float]:
        """Requests in the window, and the seconds that window really covers (less at the start)."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            return len(self._times), max(1.0, min(self.window, now - self.started))


@dataclass(frozen=True)
class PollerStats:
    """What a poller costs right now. ``str()`` is one line for people."""

    requests_per_minute: float  # over the last ``window`` seconds (or since start, if shorter)
    requests_in_window: int
    window: float
    requests: int  # since the poller was made
    list_requests: int
    batch_requests: int
    log_requests: int
    batches_watched: int  # not finished yet
    batches_finished: int
    followed: tuple[str, ...]  # batches whose log is read at full rate
    throttled_for: float  # seconds left of a server's Retry-After
    last_error: str | None
    running: bool

    def __str__(self) -> str:
        followed = len(self.followed)
        text = (f"{self.requests_per_minute:.0f} Livy requests/min (list {self.list_requests}, batch "
                f"{self.batch_requests}, log {self.log_requests} in all) for {self.batches_watched} batches "
                f"watched, {followed} log{'s' if followed != 1 else ''} followed")  # fmt: skip
        if self.throttled_for > 0:
            text += f"; the server asked to wait {self.throttled_for:.0f} s more"
        if self.last_error:
            text += f"; last error: {self.last_error}"
        return text


class Watch:
    """One batch the poller watches: its latest snapshot, its callbacks, whether its log is followed.

    Made by :meth:`Poller.watch`; ``wait(timeout)`` blocks until the batch is finished (or the
    watch closed); ``close()`` stops watching it.
    """

    def __init__(self, poller: Poller, run: BatchRun, *, follow_logs: bool) -> None:
        self.poller = poller
        self.run = run
        self.batch_id = run.batch_id
        self._follow = follow_logs
        self._callbacks: list[Callback] = []
        self._done = threading.Event()
        self.closed = False
        self.callback_errors: list[str] = []
        # The poller thread's own bookkeeping.
        self._delays: Iterator[float] = poller._backoff()
        self._due = 0.0
        self._position: int | None = None  # where the last list answer had it
        self._full: Batch | None = None  # the last full batch object read on its own
        self._confirms = 0  # short looks taken since the batch was first seen ended
        self._confirming = False  # the next look is one of them (due in a short round)

    def __repr__(self) -> str:
        snap = self.snapshot
        return (f"Watch(batch={self.batch_id!r}, state={snap.state_label}, follow_logs={self._follow}, "
                f"finished={snap.finished})")  # fmt: skip

    @property
    def snapshot(self) -> Snapshot:
        return self.run.snapshot

    @property
    def finished(self) -> bool:
        return self.run.snapshot.finished

    @property
    def follow_logs(self) -> bool:
        return self._follow

    @follow_logs.setter
    def follow_logs(self, value: bool) -> None:
        if value:
            self.poller.focus(self.batch_id)
        else:
            self.poller.unfocus(self.batch_id)

    def add_callback(self, callback: Callback) -> None:
        self.poller.subscribe(self.batch_id, callback)

    def remove_callback(self, callback: Callback) -> None:
        self.poller.unsubscribe(self.batch_id, callback)

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Block until the batch is finished, the watch closed, or ``timeout`` seconds passed.

        Starts the poller if needed. Returns the latest snapshot; check ``.finished``."""
        if not self.poller.closed:
            self.poller.start()
        self._done.wait(timeout)
        return self.snapshot

    def close(self) -> None:
        self.poller.unwatch(self.batch_id)


class _GatedReader:
    """The run's own log reader, asked only while the log is followed or once the batch ended.

    An unfollowed batch's log is read at the second look at its terminal state, the one at which
    ``BatchRun`` can finish it (due ``Poller.confirm_after`` after the first): one read, with the
    lines Spark printed while it shut down."""

    def __init__(self, inner: LogReader, watch: Watch) -> None:
        self.inner = inner
        self._watch = watch

    def read(self, client: LivyLike, batch: Batch) -> LogDelta:
        before = self._watch.run.snapshot.batch  # the run's snapshot is replaced after this read
        ended = batch.state.is_terminal and before is not None and before.state.is_terminal
        if self._watch.follow_logs or ended:
            return self.inner.read(client, batch)
        return LogDelta((), 0, False)  # not at the end: the run cannot finish without reading it

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # the operator's task log reads the reader's counters


class _GatedProgress:
    """The run's Spark-progress reader (``BatchRun(progress=)``), asked only while the log is
    followed; otherwise the last numbers read stay in the snapshot."""

    def __init__(self, inner: Any, watch: Watch) -> None:
        self.inner = inner
        self._watch = watch

    def read(self, client: Any, batch: Batch) -> Any:
        if self._watch.follow_logs:
            return self.inner.read(client, batch)
        return self._watch.run.snapshot.progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _RunClient:
    """What a watched run reads through: its batch object from the round's list answer when that is
    enough, every other call sent by the real client and counted."""

    def __init__(self, poller: Poller, client: Any, watch: Watch) -> None:
        self._poller = poller
        self._client = client
        self._watch = watch

    def get_batch(self, batch_id: int | str) -> Batch:
        served = self._poller._serve(self._watch, str(batch_id))
        if served is not None:
            return served
        batch: Batch = self.__getattr__("get_batch")(batch_id)
        self._watch._full = batch
        return batch

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        kind = _METERED.get(name)
        if kind is None or not callable(value):
            return value
        meter = self._poller._meter

        def metered(*args: Any, **kwargs: Any) -> Any:
            meter.add(kind)
            return value(*args, **kwargs)

        return metered


class Poller:
    """One background thread that follows any number of batches of one Livy client.

    ``watch(batch_id_or_run)`` adds a batch (a :class:`Watch`); ``focus(id)`` / ``unfocus(id)``
    choose whose log is read at full rate; ``subscribe(id, callback)`` receives each
    :class:`Snapshot` of that batch (in the poller thread: hand it to the UI, do not block);
    ``stats()`` is the current cost. ``start()`` starts the one thread however often it is called;
    ``close()`` stops it and joins it. ``poll_once()`` is one round in the calling thread (what the
    thread repeats; tests drive it directly).

    ``interval``: seconds between polls of a batch while something changes (a followed log that
    grows, a new state); ``max_interval``: the longest a quiet batch waits, so a batch's end is seen
    at most that long after it happened. ``list_threshold``: from this many unfinished batches on,
    states come from the list (below it, one ``GET /batches/{id}`` each costs no more).
    ``workers``: polls that send requests in one round (logs of ended or followed batches) run on
    at most this many helper threads, so fifty batches ending together take a few round trips,
    not fifty; the thread count never depends on the number of batches.
    ``confirm_after``: seconds from the first look at an ended batch to the look that finishes it
    (default ``min(0.25 x interval, 0.5)``); ``confirm_looks``: how many such short looks a batch
    gets before a log that is still not at its end is read once per ``interval`` again.
    """

    def __init__(
        self,
        client: Any,
        *,
        interval: float = 1.0,
        max_interval: float = 5.0,
        factor: float = 1.5,
        list_threshold: int = 2,
        max_list_pages: int = 3,
        list_page: int = 100,
        headroom: int = 16,
        max_errors: int = 8,
        window: float = 60.0,
        workers: int = 4,
        confirm_after: float | None = None,
        confirm_looks: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.confirm_after = min(0.25 * interval, 0.5) if confirm_after is None else max(0.0, confirm_after)
        self.confirm_looks = max(0, confirm_looks)
        self.workers = max(1, workers)
        self.name = f"hdiaks-poller-{next(_NUMBERS)}"  # its thread's name; its helpers' start with it
        self._pool: ThreadPoolExecutor | None = None
        self.interval = interval
        self.max_interval = max(interval, max_interval)
        self.factor = factor
        self.list_threshold = max(1, list_threshold)
        self.max_list_pages = max(1, max_list_pages)
        self.list_page = max(1, list_page)
        self.headroom = max(0, headroom)
        self.max_errors = max_errors
        self._clock = clock
        self._meter = _Meter(clock, window)
        self._lock = threading.RLock()
        self._watches: dict[str, Watch] = {}
        self._answers: dict[str, Batch | BaseException] = {}  # this round's list answer
        self._use_list = callable(getattr(client, "list_batches", None))
        self._total: int | None = None  # the list's total at the last answer
        self._newest_first: bool | None = None  # the list's order, once its ids showed it
        self._throttled_until = 0.0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        with self._lock:
            watched = sum(not w.finished for w in self._watches.values())
        return f"Poller({self.client!r}, watched={watched}, running={self.running})"

    def __enter__(self) -> Poller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _backoff(self) -> Iterator[float]:
        return backoff(self.interval, factor=self.factor, maximum=self.max_interval)

    @property
    def dialect(self) -> Dialect | None:
        dialect = getattr(self.client, "dialect", None)
        return dialect if isinstance(dialect, Dialect) else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- what is watched -------------------------------------------------------------------------

    def watch(
        self,
        batch: int | str | BatchRun,
        *,
        on_snapshot: Callback | None = None,
        follow_logs: bool = False,
        log_reader: LogReader | None = None,
    ) -> Watch:
        """Watch a batch (by id, or a :class:`BatchRun` the poller drives from now on).

        Watching a batch already watched returns its watch (with ``on_snapshot`` added, and its
        log followed if ``follow_logs``)."""
        batch_id = batch.batch_id if isinstance(batch, BatchRun) else str(batch)
        with self._lock:
            if self._closed:
                raise RuntimeError("this poller is closed; make a new one")
            watch = self._watches.get(batch_id)
            if watch is None:
                if isinstance(batch, BatchRun):
                    run = batch
                else:
                    reader = log_reader if log_reader is not None else default_log_reader(self.client)
                    run = BatchRun(self.client, batch_id, log_reader=reader, max_errors=self.max_errors,
                                   clock=self._clock)  # fmt: skip
                watch = Watch(self, run, follow_logs=follow_logs)
                if not isinstance(run.client, _RunClient):
                    run.client = _RunClient(self, run.client, watch)
                if not isinstance(run.reader, _GatedReader):
                    run.reader = _GatedReader(run.reader, watch)
                progress = getattr(run, "progress_reader", None)
                if progress is not None and not isinstance(progress, _GatedProgress):
                    # duck-typed: BatchRun only calls read(client, batch) on it
                    run.progress_reader = _GatedProgress(progress, watch)  # type: ignore[assignment]
                self._watches[batch_id] = watch
                if run.snapshot.finished:
                    watch._done.set()
            elif follow_logs:
                watch._follow = True
            if on_snapshot is not None:
                watch._callbacks.append(on_snapshot)
        self._wake.set()
        return watch

    def unwatch(self, batch_id: int | str) -> None:
        """Stop watching a batch (its ``wait`` returns); unknown ids are fine."""
        with self._lock:
            watch = self._watches.pop(str(batch_id), None)
        if watch is not None:
            watch.closed = True
            watch._done.set()

    def focus(self, batch_id: int | str) -> None:
        """Read this batch's log at full rate (the batch someone is looking at), from the next round."""
        self._set_follow(str(batch_id), True)

    def unfocus(self, batch_id: int | str) -> None:
        """Read this batch's log only when it ends."""
        self._set_follow(str(batch_id), False)

    def _set_follow(self, batch_id: str, value: bool) -> None:
        with self._lock:
            watch = self._watches.get(batch_id)
            if watch is None:
                raise KeyError(f"batch {batch_id} is not watched by this poller; watch(batch_id) it first")
            if watch._follow == value:
                return
            watch._follow = value
            if value:
                watch._delays = self._backoff()
                watch._due = 0.0  # its log is wanted now
        self._wake.set()

    def subscribe(self, batch_id: int | str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after each poll of this batch; returns the unsubscribe call."""
        key = str(batch_id)
        with self._lock:
            watch = self._watches.get(key)
            if watch is None:
                raise KeyError(f"batch {key} is not watched by this poller; watch(batch_id) it first")
            watch._callbacks.append(callback)
        return lambda: self.unsubscribe(key, callback)

    def unsubscribe(self, batch_id: int | str, callback: Callback) -> None:
        with self._lock:
            watch = self._watches.get(str(batch_id))
            if watch is not None and callback in watch._callbacks:
                watch._callbacks.remove(callback)

    @property
    def watches(self) -> tuple[Watch, ...]:
        with self._lock:
            return tuple(self._watches.values())

    def snapshot(self, batch_id: int | str) -> Snapshot:
        with self._lock:
            watch = self._watches.get(str(batch_id))
        if watch is None:
            raise KeyError(f"batch {batch_id} is not watched by this poller")
        return watch.snapshot

    def stats(self) -> PollerStats:
        recent, span = self._meter.recent()
        kinds = self._meter.kinds
        with self._lock:
            watches = list(self._watches.values())
        return PollerStats(
            requests_per_minute=recent * 60.0 / span,
            requests_in_window=recent,
            window=self._meter.window,
            requests=sum(kinds.values()),
            list_requests=kinds["list"],
            batch_requests=kinds["batch"],
            log_requests=kinds["log"],
            batches_watched=sum(not w.finished for w in watches),
            batches_finished=sum(w.finished for w in watches),
            followed=tuple(w.batch_id for w in watches if w.follow_logs and not w.finished),
            throttled_for=max(0.0, self._throttled_until - self._clock()),
            last_error=self.last_error,
            running=self.running,
        )

    # -- the thread ------------------------------------------------------------------------------

    def start(self) -> Poller:
        """Start the one background thread (idempotent, from any thread)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this poller is closed; make a new one")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to stop; returns at once (it ends within one HTTP call)."""
        self._stop.set()
        self._wake.set()

    def close(self, timeout: float | None = 30.0) -> bool:
        """Stop the thread and join it; every watch's ``wait`` returns. True once the thread ended."""
        with self._lock:
            self._closed = True
            watches = list(self._watches.values())
        self.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for watch in watches:
            watch._done.set()
        with _SHARED_LOCK:
            if _SHARED.get(id(self.client)) is self:
                del _SHARED[id(self.client)]
        return not self.running

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the thread must report, not die silently
                self.last_error = f"poller round failed: {type(exc).__name__}: {exc}"
                log.warning("poller round failed: %s", exc)
                delay = self.interval
            self._wake.wait(max(0.0, delay))
            self._wake.clear()

    # -- one round ---------------------------------------------------------------------------------

    def due_in(self) -> float:
        """Seconds until the next round has something to do (0: now)."""
        now = self._clock()
        with self._lock:
            pending = [w._due for w in self._watches.values() if not w.finished]
        if not pending:
            return self.max_interval
        return max(0.0, min(pending) - now, self._throttled_until - now)

    def poll_once(self) -> float:
        """One round: the list (when it pays), then a poll of every batch that is due. Returns the
        seconds until the next round is due."""
        now = self._clock()
        with self._lock:
            active = [w for w in self._watches.values() if not w.finished]
        if not active:
            return self.max_interval
        if now < self._throttled_until:
            return self._throttled_until - now
        if min(w._due for w in active) > now:
            return min(w._due for w in active) - now
        # A round serves every batch due before the next one; a short round (only confirming looks
        # at ended batches are due) serves only those due by then, so the others keep their rhythm.
        regular = any(w._due <= now and not w._confirming for w in active)
        soon = now + (self.interval if regular else self.confirm_after)
        answers: dict[str, Batch | BaseException] = {}
        if self._use_list and len(active) >= self.list_threshold:
            answers = self._read_list(active)
        self._answers = answers
        try:
            chosen = []
            for watch in active:
                item = answers.get(watch.batch_id)
                last = watch.snapshot.batch
                changed = isinstance(item, Batch) and last is not None and item.state != last.state
                if watch._due <= soon or changed:
                    chosen.append(watch)
            sending = [w for w in chosen if self._sends(w, answers.get(w.batch_id))]
            for watch in chosen:
                if watch not in sending:
                    self._poll(watch)  # served from the list: no request, no need for a helper
            if len(sending) > 1 and self.workers > 1:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"{self.name}-io")
                list(self._pool.map(self._poll, sending))
            else:
                for watch in sending:
                    self._poll(watch)
        finally:
            self._answers = {}
        with self._lock:
            pending = [w._due for w in self._watches.values() if not w.finished]
        wait = (min(pending) - self._clock()) if pending else self.max_interval
        return max(wait, self._throttled_until - self._clock(), 0.0)

    def _serve(self, watch: Watch, batch_id: str) -> Batch | None:
        """The batch object for a run's ``get_batch`` from this round's list answer, or ``None``
        (ask the server for it). A failed list is the run's failed poll: no request is sent."""
        item = self._answers.get(batch_id)
        if isinstance(item, BaseException):
            raise item
        if item is None:
            return None
        name = watch.run.name
        if name is not None and item.name is not None and item.name != name:
            return None  # let the batch's own answer decide (a reused id: BatchRun says so)
        if self._full_list_items():
            return item
        # A summary (Fabric's activity, Synapse without detailed=true): its state over the last
        # full object while the batch runs unfollowed; the full object when it ends or is followed.
        full = watch._full
        if full is None or item.state.is_terminal or watch.follow_logs:
            return None
        return replace(full, state=item.state)

    def _sends(self, watch: Watch, item: Batch | BaseException | None) -> bool:
        """Whether this watch's poll will send a request (its batch or its log)."""
        if isinstance(item, BaseException):
            return False
        if item is None or watch.follow_logs or item.state.is_terminal:
            return True
        return not self._full_list_items() and watch._full is None

    def _full_list_items(self) -> bool:
        dialect = self.dialect
        return dialect is None or (dialect.list_state_key == "state" and not dialect.get_params)

    def _read_list(self, active: Sequence[Watch]) -> dict[str, Batch | BaseException]:
        """This round's list pages over the watched batches' window: ``{id: batch}`` for each one
        found, or ``{id: error}`` for all when the list failed."""
        dialect = self.dialect
        limit = dialect.page_limit if dialect is not None and dialect.page_limit else None
        newest_first = self._newest_first
        if newest_first is None:
            newest_first = dialect is not None and dialect.list_style == "top-skip"
        known = [w._position for w in active if w._position is not None]
        unknown = sum(w._position is None for w in active)
        most = (limit or self.list_page) * self.max_list_pages  # items; Apache Livy: in one request
        total = self._total
        if total is None:
            low, high = 0, min(most, max(self.list_page, len(active) + self.headroom + unknown))
        elif newest_first:  # a new batch comes first and pushes the others down by one
            low, high = 0, (max(known) + 1 if known else 0) + self.headroom + unknown
        else:  # Apache Livy: oldest first, a new batch at the end; a purge moves the others up
            low = min(min(known) if known else total, total - unknown)
            high = total + (self.headroom + unknown if unknown else 0)
            low -= min(self.headroom, max(0, most - (high - low)))  # room for purges, if it fits
        low = max(0, low)
        if high - low > most:  # keep the newest end; the others are read on their own
            low, high = (0, most) if newest_first else (high - most, high)
        start, size = low, high - low
        page = limit or size
        found: dict[str, Batch | BaseException] = {}
        wanted = {w.batch_id: w for w in active}
        offset, end, known_total = start, start + size, 0
        try:
            while offset < end:
                ask = min(page, end - offset)
                got, known_total = self._list_page(offset, ask, wanted, found)
                offset += got
                if got < ask or offset >= known_total or len(found) == len(wanted):
                    break
            if total is None and not newest_first and len(found) < len(wanted) and known_total > offset:
                # The first round did not know where the end was: the newest batches are there.
                ask = min(page, most)
                self._list_page(max(offset, known_total - ask), ask, wanted, found)
        except NotSupported:
            self._use_list = False
            return {}
        except LivyHTTPError as exc:
            if exc.status in _NO_LIST and exc.retry_after is None:
                log.info("the batch list answered HTTP %s: reading each batch on its own", exc.status)
                self._use_list = False
                return {}
            self._note_error(exc, "list")
            return {w.batch_id: exc for w in active}
        except Exception as exc:  # noqa: BLE001 - each run reports it as its failed poll
            self._note_error(exc, "list")
            return {w.batch_id: exc for w in active}
        for key, watch in wanted.items():
            if key not in found:
                watch._position = None  # read on its own this round; looked for again next round
        return found

    def _list_page(
        self, start: int, size: int, wanted: dict[str, Watch], found: dict[str, Batch | BaseException]
    ) -> tuple[int, int]:
        """One list request; the watched batches in it go into ``found``. Returns (items, total)."""
        self._meter.add("list")
        answer = self.client.list_batches(start=start, size=size)
        self._total = answer.total
        numeric = [int(b.id) for b in answer.batches if str(b.id).isdigit()]
        if len(numeric) >= 2 and numeric[0] != numeric[-1]:
            # Apache Livy lists in insertion order (SessionManager's LinkedHashMap); some builds sort
            # the newest first: the ids say which this server does.
            self._newest_first = numeric[0] > numeric[-1]
        for index, batch in enumerate(answer.batches):
            key = str(batch.id)
            if key in wanted:
                found[key] = batch
                wanted[key]._position = start + index
        return len(answer.batches), answer.total

    def _poll(self, watch: Watch) -> None:
        before = watch.snapshot
        snap = watch.run.poll()
        now = self._clock()
        if snap.exception is not None:  # a failed poll (a batch's own end is not a poller error)
            self._note_error(snap.exception, f"batch {watch.batch_id}")
        watch._confirming = False
        if snap.finished:
            pass
        elif snap.error:
            watch._due = now + next(watch._delays)
        else:
            if snap.new_lines or snap.state != before.state:
                watch._delays = self._backoff()  # something happens: look again soon
            delay = next(watch._delays)
            if snap.state is not None and snap.state.is_terminal:
                # ended: the run finishes on the next look, with the log's end; soon, not next round
                watch._confirming = watch._confirms < self.confirm_looks
                watch._confirms += 1
                delay = self.confirm_after if watch._confirming else self.interval
            watch._due = now + delay
        self._deliver(watch, snap)
        if snap.finished:
            watch._done.set()  # after the callbacks: whoever waits sees what they were given

    def _note_error(self, exc: BaseException, where: str) -> None:
        retry_after = getattr(exc, "retry_after", None)
        with self._lock:  # helper threads report too
            self.last_error = f"{where}: {exc}"
            if isinstance(retry_after, (int, float)) and retry_after > 0:
                self._throttled_until = max(self._throttled_until, self._clock() + float(retry_after))
        if isinstance(retry_after, (int, float)) and retry_after > 0:
            log.info("Livy asked to wait %.1f s (Retry-After); the poller holds its requests", retry_after)

    def _deliver(self, watch: Watch, snap: Snapshot) -> None:
        with self._lock:
            callbacks = list(watch._callbacks)
        for callback in callbacks:
            try:
                callback(snap)
            except Exception as exc:  # noqa: BLE001 - one bad callback must not stop the others
                watch.callback_errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("poller batch %s: callback failed: %s", watch.batch_id, exc)


_SHARED: dict[int, Poller] = {}
_NUMBERS = itertools.count(1)
_SHARED_LOCK = threading.Lock()


def shared_poller(client: Any, **options: Any) -> Poller:
    """The one started poller for ``client`` (made on first use with ``options``); ``close()`` it
    when done with the client."""
    with _SHARED_LOCK:
        poller = _SHARED.get(id(client))
        if poller is None or poller.client is not client:
            poller = Poller(client, **options)
            _SHARED[id(client)] = poller
    return poller.start()
