"""Watch a Livy batch in the background: a :class:`~hdiaks_widgets.run.BatchRun` in a thread.

:class:`BatchMonitor` runs ``BatchRun.wait`` in a daemon thread, so a notebook cell never blocks;
callbacks receive each immutable :class:`Snapshot` and the monitor never touches widgets.
With ``poller=`` (a :class:`~hdiaks_widgets.poller.Poller`) it runs on that poller's one shared
thread instead of its own: fifty monitors, one thread, states from one list request per round, and
the log read at full rate only while ``follow_logs`` is true (otherwise once the batch ends).
:func:`follow_batch` follows a batch in the calling thread (CLI, scripts). Both are thin: every
decision (states, log, purge, reused ids, giving up) is ``BatchRun``'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from hdiaks_widgets.errors import HdiaksError, LivyError
from hdiaks_widgets.models import Batch
from hdiaks_widgets.poller import Poller, Watch
from hdiaks_widgets.run import (
    BatchRun,
    ErrorKind,
    LivyLike,
    LogReader,
    OffsetLogReader,
    Snapshot,
    backoff,
    default_log_reader,
    describe_error,
    failure_lines,
)

__all__ = [
    "BatchMonitor",
    "ErrorKind",
    "LivyLike",
    "Snapshot",
    "backoff",
    "describe_error",
    "failure_lines",
    "follow_batch",
]

log = logging.getLogger(__name__)

Callback = Callable[[Snapshot], None]


class BatchMonitor:
    """Follows one :class:`BatchRun` in a background thread; hands each :class:`Snapshot` to callbacks.

    ``start()`` returns at once and starts one thread however often it is called; ``stop()``
    returns at once; ``wait(timeout)`` blocks until the batch is finished (or the timeout passes)
    and returns the latest snapshot. ``run()`` polls in the calling thread instead.
    Pass a ``BatchRun`` (``BatchMonitor(run)``) or a client and a batch id.

    ``poller``: run on that shared :class:`~hdiaks_widgets.poller.Poller` (its interval and
    back-off apply) instead of a thread of its own; ``follow_logs`` (default true) says whether the
    log is read on every poll there or only once the batch ends. Without a poller the log is
    always followed.
    """

    def __init__(
        self,
        client_or_run: LivyLike | BatchRun,
        batch_id: int | str | None = None,
        *,
        on_snapshot: Callback | None = None,
        interval: float = 0.5,
        max_interval: float = 5.0,
        factor: float = 1.5,
        log_start: int = 0,
        page_size: int = 1000,
        max_errors: int = 8,
        log_reader: LogReader | None = None,
        clock: Callable[[], float] = time.monotonic,
        poller: Poller | None = None,
        follow_logs: bool = True,
    ) -> None:
        if isinstance(client_or_run, BatchRun):
            self.run_handle = client_or_run
        else:
            if batch_id is None:
                raise TypeError("BatchMonitor(client, batch_id): the batch id is missing")
            # Livy's real view is bounded and rebuilt per request: read it by content (or the
            # service's own log where the dialect has no /log). An explicit start offset pages by
            # offset (exact only on an append-only log).
            reader = log_reader or (
                OffsetLogReader(start=log_start, page_size=page_size)
                if log_start
                else default_log_reader(client_or_run)
            )
            self.run_handle = BatchRun(client_or_run, batch_id, log_reader=reader, max_errors=max_errors, clock=clock)
        self.batch_id = self.run_handle.batch_id
        self._callbacks: list[Callback] = [on_snapshot] if on_snapshot else []
        self._interval = interval
        self._max_interval = max_interval
        self._factor = factor
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest = self.run_handle.snapshot
        self.callback_errors: list[str] = []
        self.poller = poller
        self._follow_logs = follow_logs
        self._watch: Watch | None = None

    def __repr__(self) -> str:
        snap = self.snapshot
        return f"BatchMonitor(batch={self.batch_id!r}, state={snap.state_label}, finished={snap.finished})"

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._latest

    @property
    def running(self) -> bool:
        if self.poller is not None:
            watch = self._watch
            return watch is not None and not watch.closed and not watch.finished and self.poller.running
        return self._thread is not None and self._thread.is_alive()

    @property
    def follow_logs(self) -> bool:
        """Whether the log is read on every poll (always, without a poller)."""
        return self._follow_logs if self.poller is not None else True

    @follow_logs.setter
    def follow_logs(self, value: bool) -> None:
        with self._lock:
            self._follow_logs = value
            watch = self._watch
        if watch is not None and not watch.closed:
            watch.follow_logs = value

    def add_callback(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def start(self) -> BatchMonitor:
        """Start polling in a daemon thread (one thread, however often and from where it is called)."""
        if self.poller is not None:
            with self._lock:
                if self._watch is None and not self._stop.is_set():
                    self._watch = self.poller.watch(self.run_handle, on_snapshot=self._publish,
                                                    follow_logs=self._follow_logs)  # fmt: skip
                    if self._watch.finished:
                        self._done.set()
            if not self.poller.closed:
                self.poller.start()
            return self
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"hdiaks-monitor-{self.batch_id}", daemon=True)
                self._thread.start()
        return self

    def note_killed(self, asked: bool = True) -> None:
        """A kill of this batch sent by a button (see :meth:`BatchRun.note_killed`)."""
        self.run_handle.note_killed(asked)

    def stop(self) -> None:
        """Ask the thread to stop; returns at once (the thread ends within one HTTP call).

        On a poller: stop watching this batch (the poller goes on with the others)."""
        self._stop.set()
        if self.poller is not None:
            with self._lock:
                watch = self._watch
            if watch is not None:
                self.poller.unsubscribe(self.batch_id, self._publish)
                if watch.run is self.run_handle:
                    self.poller.unwatch(self.batch_id)
            self._done.set()

    def join(self, timeout: float | None = None) -> bool:
        if self.poller is not None:
            return self._done.wait(timeout) or not self.running
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Block until the batch is finished, the monitor stopped, or ``timeout`` seconds passed.

        Starts the monitor if needed. Returns the latest snapshot; check ``.finished``.
        """
        self.start()
        watch = self._watch
        if watch is not None and not self._done.is_set():
            watch.wait(timeout)  # also returns when the poller is closed
        else:
            self._done.wait(timeout)
        return self.snapshot

    def run(self) -> Snapshot:
        """Poll in the calling thread until finished or stopped; returns the last snapshot.

        On a poller the poller's thread polls: this waits for the end."""
        if self.poller is not None:
            return self.wait()
        with self._lock:
            threaded = self._thread is not None
            if not threaded:
                self._thread = threading.current_thread()
        if threaded:
            return self.wait()
        self._loop()
        return self.snapshot

    # -- internals -----------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            self.run_handle.wait(
                on_update=self._publish,
                interval=self._interval,
                max_interval=self._max_interval,
                factor=self._factor,
                stop=self._stop,
            )
        except Exception as exc:  # noqa: BLE001 - a thread must report, not die silently
            kind, sentence = describe_error(exc)
            self._publish(
                replace(self.snapshot, error=sentence, error_kind=kind, exception=exc, finished=True, new_lines=())
            )
        finally:
            self._done.set()

    def _publish(self, snap: Snapshot) -> None:
        with self._lock:
            self._latest = snap
        for callback in list(self._callbacks):
            try:
                callback(snap)
            except Exception as exc:  # noqa: BLE001 - one bad callback must not stop the monitor
                self.callback_errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("monitor batch %s: callback failed: %s", self.batch_id, exc)
        if snap.finished and self.poller is not None:
            self._done.set()  # after the callbacks, as the thread's end does without a poller


def follow_batch(
    client: LivyLike,
    batch_id: int | str,
    *,
    start: int = 0,
    on_lines: Callable[[Sequence[str]], object] | None = None,
    poll_interval: float = 1.0,
    timeout: float | None = None,
    run: BatchRun | None = None,
) -> Batch:
    """Follow a batch's log in the calling thread until it ends; return the final batch.

    ``on_lines`` receives each group of new log lines (``LogLine``: text with its ``source``;
    Livy's section headers are structure, not lines). ``start`` > 0 pages by offset instead.
    Raises the underlying :class:`HdiaksError` if watching failed, or :class:`LivyError` on
    timeout. A batch purged after it ended returns its last known state.
    """
    reader: LogReader = OffsetLogReader(start=start) if start else default_log_reader(client)
    handle = run if run is not None else BatchRun(client, batch_id, log_reader=reader)

    def _emit(snap: Snapshot) -> None:
        if on_lines is not None and snap.new_lines:
            on_lines(snap.new_lines)

    snap = handle.wait(timeout, on_update=_emit, interval=poll_interval, max_interval=max(poll_interval, 5.0))
    if not snap.finished and timeout is not None:
        raise LivyError(f"Batch {batch_id} did not finish within {timeout:g} seconds")
    if snap.batch is not None and (snap.batch.state.is_terminal or snap.purged):
        return snap.batch
    if isinstance(snap.exception, HdiaksError):
        raise snap.exception
    raise LivyError(snap.error or f"Stopped watching batch {batch_id}")
