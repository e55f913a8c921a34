"""Watch a Livy batch in the background: state, log tail and errors as immutable snapshots.

Polling is a pure step plus a small loop (STYLE.md rule 7):

- :func:`poll` takes the previous :class:`Snapshot`, asks the client for the batch and the log
  lines after the last offset (``GET /batches/{id}/log?from=<offset>``, so no line is fetched
  twice) and returns the next snapshot. It never sleeps and never raises: failures become a
  plain sentence in ``Snapshot.error``.
- :class:`BatchMonitor` runs that step in a daemon thread with back-off from :func:`backoff`,
  waiting with ``threading.Event.wait`` so :meth:`BatchMonitor.stop` takes effect at once.
  Callbacks receive each snapshot; the monitor never touches widgets.

A 404 for a batch that was seen before means Livy forgot it after its retention time
(``livy.server.session.state-retain.sec``, PROTOCOL.md §2.5): that is reported as *purged*,
not as a failure of the job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from hdiaks_widgets import wire
from hdiaks_widgets.errors import (
    AuthError,
    BatchFailed,
    BatchNotFound,
    ConfigError,
    DuplicateBatchName,
    HdiaksError,
    LivyError,
    LivyHTTPError,
    SecretError,
)
from hdiaks_widgets.models import Batch, BatchState, LogPage

__all__ = [
    "BatchMonitor",
    "ErrorKind",
    "LivyLike",
    "Snapshot",
    "backoff",
    "describe_error",
    "failure_lines",
    "follow_batch",
    "poll",
]

log = logging.getLogger(__name__)

ErrorKind = Literal["auth", "network", "server", "config", "purged", "failed", "error", "internal"]
# Errors that another poll will not fix: stop at once instead of retrying.
_FATAL_KINDS = frozenset({"auth", "config", "error", "internal"})


class LivyLike(Protocol):
    """What a monitor needs from a client (``LivyClient`` or a small fake in tests)."""

    def get_batch(self, batch_id: int | str) -> Batch: ...

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage: ...


@dataclass(frozen=True)
class Snapshot:
    """What the monitor knows about one batch at one moment. Immutable: safe to hand to any thread."""

    batch_id: int
    batch: Batch | None = None  # the last batch object seen (kept after a purge)
    lines: tuple[str, ...] = ()  # every log line fetched so far, starting at log offset log_start
    new_lines: tuple[str, ...] = ()  # the lines the last poll added
    log_start: int = 0
    log_offset: int = 0  # the ``from`` of the next log request
    log_total: int = 0  # Livy's total line count at the last poll
    started_at: float = 0.0  # clock() when watching began (monotonic seconds)
    updated_at: float = 0.0
    polls: int = 0
    errors: int = 0  # consecutive failed polls
    error: str | None = None  # a plain sentence for the UI, never a traceback
    error_kind: ErrorKind | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    purged: bool = False
    finished: bool = False  # no more polls: terminal state reached, purged, or gave up

    @property
    def state(self) -> BatchState | None:
        return None if self.batch is None else self.batch.state

    @property
    def state_label(self) -> str:
        """The state to show: ``purged`` after a purge, ``unknown`` before the first answer."""
        if self.purged and (self.batch is None or not self.batch.state.is_terminal):
            return "purged"
        return "unknown" if self.batch is None else self.batch.state.value

    @property
    def succeeded(self) -> bool:
        return self.batch is not None and self.batch.state is BatchState.SUCCESS

    @property
    def elapsed(self) -> float:
        return max(0.0, self.updated_at - self.started_at)

    @property
    def app_id(self) -> str | None:
        return None if self.batch is None else self.batch.app_id

    @property
    def spark_ui_url(self) -> str | None:
        return None if self.batch is None else self.batch.app_info.spark_ui_url

    @property
    def driver_log_url(self) -> str | None:
        return None if self.batch is None else self.batch.app_info.driver_log_url

    def raise_for_state(self) -> Snapshot:
        """Raise :class:`BatchFailed` if the batch ended in a state other than success."""
        if self.batch is not None and self.batch.state.is_terminal and not self.succeeded:
            raise BatchFailed(self.batch, failure_lines(self.lines, limit=20))
        return self


def backoff(initial: float = 0.5, *, factor: float = 1.5, maximum: float = 5.0) -> Iterator[float]:
    """Delays between polls: ``initial``, growing by ``factor`` up to ``maximum``, forever."""
    delay = max(0.0, initial)
    while True:
        yield delay
        delay = min(maximum, delay * factor) if delay > 0 else min(maximum, 0.1)


failure_lines = wire.failure_lines


def describe_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """A kind and a plain sentence for an exception (shown in the UI instead of a traceback)."""
    if isinstance(exc, BatchNotFound):
        return "purged", (
            f"Batch {exc.batch_id} is no longer known to the Livy server: it was purged after the "
            "server's retention time, or never existed."
        )
    if isinstance(exc, AuthError):
        return "auth", f"Sign-in failed: {exc}. Check the profile's tenant, client id and credentials."
    if isinstance(exc, SecretError):
        return "auth", f"A credential could not be read: {exc}"
    if isinstance(exc, DuplicateBatchName):
        return "config", str(exc)
    if isinstance(exc, ConfigError):
        return "config", f"The job configuration is not valid: {exc}"
    if isinstance(exc, BatchFailed):
        return "failed", str(exc)
    if isinstance(exc, LivyHTTPError):
        if exc.status in (401, 403):
            return "auth", (
                f"The Livy server refused the request (HTTP {exc.status}): check your credentials "
                "and that your identity has access to the cluster."
            )
        if exc.status >= 500 or exc.status == 429:
            return "server", f"The Livy server had a problem (HTTP {exc.status}): {exc.body or 'no details'}"
        return "error", f"The Livy server rejected the request (HTTP {exc.status}): {exc.body or 'no details'}"
    if isinstance(exc, LivyError):
        return "network", f"{exc}. Check the cluster address and your network connection."
    if isinstance(exc, HdiaksError):
        return "error", str(exc)
    return "internal", f"Unexpected {type(exc).__name__}: {exc}"


def _read_log(
    client: LivyLike, batch_id: int, offset: int, *, page_size: int, max_pages: int
) -> tuple[list[str], int, int]:
    """New lines from ``offset`` on (at most ``max_pages`` pages), the next offset, the total."""
    lines: list[str] = []
    total = offset
    for _ in range(max_pages):
        page = client.get_log(batch_id, start=offset, size=page_size)
        total = page.total
        if page.total < offset:
            # The server's log got shorter (it keeps a bounded buffer): continue from its end.
            return lines, page.total, page.total
        fresh = page.lines[max(0, offset - page.start) :]
        if not fresh:
            break
        lines.extend(fresh)
        offset = page.start + len(page.lines)
        if offset >= page.total:
            break
    return lines, offset, total


def _end_sentence(batch: Batch, lines: Sequence[str]) -> tuple[ErrorKind | None, str | None]:
    state = batch.state
    if state is BatchState.SUCCESS:
        return None, None
    if state is BatchState.KILLED:
        return "failed", f"Batch {batch.id} was killed."
    tail = failure_lines(lines)
    sentence = f"Batch {batch.id} ended in state {state.value}."
    if tail:
        sentence += " Last error lines: " + " | ".join(t.strip() for t in tail)
    return "failed", sentence


def poll(
    client: LivyLike,
    snap: Snapshot,
    *,
    clock: Callable[[], float] = time.monotonic,
    page_size: int = 1000,
    max_pages: int = 20,
    max_errors: int = 8,
) -> Snapshot:
    """One polling step: the batch's state and its new log lines. Never raises, never sleeps.

    The batch counts as finished once a terminal state was seen on two polls in a row and the
    log is read to its end, so lines Spark prints while it shuts down are not lost.
    """
    try:
        batch = client.get_batch(snap.batch_id)
        new, offset, total = _read_log(
            client, snap.batch_id, snap.log_offset, page_size=page_size, max_pages=max_pages
        )
    except BatchNotFound as exc:
        purged_kind, purged_sentence = describe_error(exc)
        if snap.batch is not None and snap.batch.state.is_terminal:
            purged_sentence = (
                f"Batch {snap.batch_id} ended {snap.batch.state.value}; the Livy server has since "
                "purged its record (retention time), so no more details can be fetched."
            )
        return replace(
            snap, new_lines=(), updated_at=clock(), polls=snap.polls + 1, error=purged_sentence,
            error_kind=purged_kind, exception=exc, purged=True, finished=True,
        )
    except Exception as exc:  # noqa: BLE001 - a poll reports every failure in the snapshot
        kind, sentence = describe_error(exc)
        errors = snap.errors + 1
        give_up = kind in _FATAL_KINDS or errors >= max_errors
        if give_up and kind in ("network", "server"):
            sentence += f" Stopped watching after {errors} failed attempts."
        log.warning("monitor batch %s: poll failed (%s, attempt %d)", snap.batch_id, kind, errors)
        return replace(
            snap, new_lines=(), updated_at=clock(), polls=snap.polls + 1, errors=errors,
            error=sentence, error_kind=kind, exception=exc, finished=give_up,
        )
    lines = snap.lines + tuple(new)
    was_terminal = snap.batch is not None and snap.batch.state.is_terminal
    finished = batch.state.is_terminal and was_terminal and offset >= total
    end_kind, end_sentence = _end_sentence(batch, lines) if finished else (None, None)
    if batch.state != (snap.batch.state if snap.batch else None):
        log.info("batch %s is %s", batch.id, batch.state.value)
    return replace(
        snap, batch=batch, lines=lines, new_lines=tuple(new), log_offset=offset, log_total=total,
        updated_at=clock(), polls=snap.polls + 1, errors=0, error=end_sentence, error_kind=end_kind,
        exception=None, finished=finished,
    )


Callback = Callable[[Snapshot], None]


class BatchMonitor:
    """Polls one batch in a background thread and hands each :class:`Snapshot` to callbacks.

    ``start()`` returns at once; ``stop()`` returns at once; ``wait(timeout)`` blocks until the
    batch is finished (or the timeout passes) and returns the latest snapshot. ``run()`` polls in
    the calling thread instead (for scripts and the CLI).
    """

    def __init__(
        self,
        client: LivyLike,
        batch_id: int,
        *,
        on_snapshot: Callback | None = None,
        interval: float = 0.5,
        max_interval: float = 5.0,
        factor: float = 1.5,
        log_start: int = 0,
        page_size: int = 1000,
        max_errors: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.batch_id = int(batch_id)
        self._callbacks: list[Callback] = [on_snapshot] if on_snapshot else []
        self._interval = interval
        self._max_interval = max_interval
        self._factor = factor
        self._page_size = page_size
        self._max_errors = max_errors
        self._clock = clock
        now = clock()
        self._snapshot = Snapshot(
            batch_id=self.batch_id, log_start=log_start, log_offset=log_start, log_total=log_start,
            started_at=now, updated_at=now,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.callback_errors: list[str] = []

    def __repr__(self) -> str:
        snap = self.snapshot
        return f"BatchMonitor(batch={self.batch_id}, state={snap.state_label}, finished={snap.finished})"

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add_callback(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def start(self) -> BatchMonitor:
        """Start polling in a daemon thread (does nothing if already started)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"hdiaks-monitor-{self.batch_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to stop; returns at once (the thread ends within one HTTP call)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Block until the batch is finished, the monitor stopped, or ``timeout`` seconds passed.

        Starts the monitor if needed. Returns the latest snapshot; check ``.finished``.
        """
        self.start()
        self._done.wait(timeout)
        return self.snapshot

    def run(self) -> Snapshot:
        """Poll in the calling thread until finished or stopped; returns the last snapshot."""
        if self._thread is not None:
            return self.wait()
        self._loop()
        return self.snapshot

    # -- internals -----------------------------------------------------------------------

    def _delays(self) -> Iterator[float]:
        return backoff(self._interval, factor=self._factor, maximum=self._max_interval)

    def _loop(self) -> None:
        try:
            delays = self._delays()
            snap = self.snapshot
            while not self._stop.is_set():
                prev = snap
                snap = poll(self._client, snap, clock=self._clock, page_size=self._page_size,
                            max_errors=self._max_errors)
                self._publish(snap)
                if snap.finished:
                    break
                if snap.new_lines or snap.state != prev.state:
                    delays = self._delays()  # activity: poll quickly again
                if self._stop.wait(next(delays)):
                    break
        except Exception as exc:  # noqa: BLE001 - a thread must report, not die silently
            kind, sentence = describe_error(exc)
            self._publish(replace(self.snapshot, error=sentence, error_kind=kind, exception=exc,
                                  finished=True, new_lines=()))
        finally:
            self._done.set()

    def _publish(self, snap: Snapshot) -> None:
        with self._lock:
            self._snapshot = snap
        for callback in list(self._callbacks):
            try:
                callback(snap)
            except Exception as exc:  # noqa: BLE001 - one bad callback must not stop the monitor
                self.callback_errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("monitor batch %s: callback failed: %s", self.batch_id, exc)


def follow_batch(
    client: LivyLike,
    batch_id: int,
    *,
    start: int = 0,
    on_lines: Callable[[Sequence[str]], object] | None = None,
    poll_interval: float = 1.0,
    timeout: float | None = None,
) -> Batch:
    """Follow a batch's log in the calling thread until it ends; return the final batch.

    ``on_lines`` receives each group of new log lines (raw, including Livy's stream headers).
    Raises the underlying :class:`HdiaksError` if watching failed, or :class:`LivyError` on
    timeout. A batch purged after it ended returns its last known state.
    """

    def _emit(snap: Snapshot) -> None:
        if on_lines is not None and snap.new_lines:
            on_lines(snap.new_lines)

    monitor = BatchMonitor(
        client, batch_id, on_snapshot=_emit, interval=poll_interval,
        max_interval=max(poll_interval, 5.0), log_start=start,
    )
    if timeout is None:
        snap = monitor.run()
    else:
        snap = monitor.wait(timeout)
        monitor.stop()
        if not snap.finished:
            raise LivyError(f"Batch {batch_id} did not finish within {timeout:g} seconds")
    if snap.batch is not None and (snap.batch.state.is_terminal or snap.purged):
        return snap.batch
    if isinstance(snap.exception, HdiaksError):
        raise snap.exception
    raise LivyError(snap.error or f"Stopped watching batch {batch_id}")
