"""The one owner for UI state: every widget write of the notebook UI goes through a :class:`Dispatcher`.

API (stable; other views such as the history panel build on it):

- ``post(fn, *, key=None, hold=())``: apply ``fn()`` to the widgets later, on the owner thread, serially,
  inside ``hold_sync()`` of every widget in ``hold`` (one comm message per changed widget per flush). With
  a ``key``, only the latest ``fn`` posted under that key runs (a batch's snapshot, the status line):
  coalescing. Without one, every ``fn`` runs. Work runs in the order of its (latest) post. Safe
  from any thread; ignored after :meth:`close`. Pending work is flushed at most :attr:`max_rate`
  times a second, whatever the number of events.
- ``run(call, on_done, on_error=None, *, key=None, hold=())``: run ``call()`` (a network call: submit,
  kill, refresh, a history page, a log download) in a small worker pool, never on the kernel thread;
  its result goes to ``on_done(result)``, an exception to ``on_error(exc)``, both through ``post``.
  With a ``key``, a result of a run superseded by a newer ``run`` with the same key is dropped (two
  quick clicks on a pager show the second page, whichever answer comes first). Returns a ``Future``.
- ``every(seconds, fn, *, key, hold=())``: post ``fn`` every ``seconds`` (the elapsed-time tick) from the
  dispatcher's own timer, not a thread per caller; ``cancel(key)`` stops it.
- ``drain(timeout=...)``: wait until no ``run`` is in flight and everything is applied (tests, scripts).
- ``flush(timeout=...)``: apply what is pending now (inline when called on the owner thread, else wait
  for the owner to do it); ``fire_due()``: post every ``every`` whose time has come (for a caller that
  holds the kernel's thread, whose IOLoop timer cannot fire meanwhile: ``JobApp.wait``);
  ``on_owner_thread()``; ``stats()``; ``close()`` (stops the timer and the workers, drops what is
  pending; returns at once).

Where updates run (``mode``): in a kernel (``get_ipython().kernel`` exists) on the kernel's own IOLoop
through ``io_loop.add_callback`` — the thread that also runs cells and the widgets' comm handlers, so a
widget is written by one thread only, including click handlers and the browser's own trait updates,
with no lock between them. Outside a kernel (scripts, pytest) on one ``hdiaks-dispatch`` thread. A
callback that raises is logged and handed to ``on_error``; it never stops the dispatcher.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

__all__ = ["Dispatcher", "DispatchStats", "kernel_io_loop"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Mode = Literal["auto", "kernel", "thread"]
_Unkeyed = tuple[Callable[[], None], tuple[Any, ...]]
_UNKEYED = object()  # the first half of the key of a post made without one


def kernel_io_loop() -> Any | None:
    """The running kernel's IOLoop (ipykernel), or ``None`` outside a kernel."""
    try:
        from IPython import get_ipython  # noqa: PLC0415 - only where a kernel may exist
    except ImportError:  # pragma: no cover - ipywidgets depends on IPython
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    return getattr(kernel, "io_loop", None)


@dataclass
class DispatchStats:
    """What the dispatcher did: counts since it was made (for tests, the bench and the status line)."""

    posted: int = 0
    applied: int = 0
    coalesced: int = 0  # keyed posts replaced by a later one before they ran
    stale: int = 0  # run() results dropped because a newer run with the same key was started
    flushes: int = 0
    errors: int = 0
    runs: int = 0
    mode: str = ""
    owner: int | None = field(default=None)


class Dispatcher:
    """One owner for UI state (see the module docstring for the API and the threads)."""

    def __init__(
        self,
        *,
        mode: Mode = "auto",
        max_rate: float = 4.0,
        workers: int = 4,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "hdiaks-dispatch",
    ) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate: must be above 0 (flushes per second); use e.g. 4")
        self.max_rate = max_rate
        self._min_gap = 1.0 / max_rate
        self._on_error = on_error
        self._name = name
        self._lock = threading.Lock()
        # Pending work in the order of its (latest) post; unkeyed work gets a key of its own.
        self._keyed: dict[Any, tuple[Callable[[], None], tuple[Any, ...]]] = {}
        self._unkeyed_seq = itertools.count()
        self._run_gen: dict[Any, int] = {}
        self._in_flight = 0  # run() calls not reported yet
        self._timers: list[tuple[float, int, Any]] = []  # (due, seq, key) heap for every()
        self._every: dict[Any, tuple[float, Callable[[], None], tuple[Any, ...], int]] = {}
        self._seq = itertools.count()
        self._last_flush = 0.0
        self._scheduled = False
        self._closed = False
        self._applied_seq = 0
        self._posted_seq = 0
        self._applied_cond = threading.Condition(self._lock)
        self.stats_ = DispatchStats()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"{name}-work")
        loop = kernel_io_loop() if mode in ("auto", "kernel") else None
        if mode == "kernel" and loop is None:
            raise RuntimeError("mode: 'kernel' needs a running ipykernel; use mode='auto' or 'thread'")
        self._loop: Any = loop
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._owner: int | None = None
        if loop is not None:
            self.mode = "kernel"
            self._owner = threading.get_ident()  # the kernel builds the app on its own thread
            self._tick_handle: Any = None
        else:
            self.mode = "thread"
            self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
            self._thread.start()
            self._owner = self._thread.ident
        self.stats_.mode = self.mode

    # -- public API --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def owner(self) -> int | None:
        """``threading.get_ident()`` of the thread that writes the widgets."""
        return self._owner

    def on_owner_thread(self) -> bool:
        return threading.get_ident() == self._owner

    def post(self, fn: Callable[[], None], *, key: Any = None, hold: Iterable[Any] = ()) -> None:
        """Apply ``fn()`` on the owner thread under ``hold_sync()`` of ``hold``; latest per ``key`` wins."""
        held = tuple(hold)
        with self._lock:
            if self._closed:
                return
            self.stats_.posted += 1
            self._posted_seq += 1
            if key is None:
                key = (_UNKEYED, next(self._unkeyed_seq))
            elif key in self._keyed:
                self.stats_.coalesced += 1
                del self._keyed[key]  # re-insert: work runs in the order of its latest post
            self._keyed[key] = (fn, held)
            self._schedule_locked()

    def run(
        self,
        call: Callable[[], T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        key: Any = None,
        hold: Iterable[Any] = (),
    ) -> Future[T]:
        """Run ``call()`` off the kernel thread; report its result or error back through :meth:`post`."""
        held = tuple(hold)
        with self._lock:
            if self._closed:
                future: Future[T] = Future()
                future.set_exception(RuntimeError("the dispatcher is closed"))
                return future
            self.stats_.runs += 1
            self._in_flight += 1
            gen = self._run_gen.get(key, 0) + 1 if key is not None else 0
            if key is not None:
                self._run_gen[key] = gen

        def report(done: Future[T]) -> None:
            try:
                deliver(done)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._applied_cond.notify_all()

        def deliver(done: Future[T]) -> None:
            if done.cancelled():
                return
            with self._lock:
                if key is not None and self._run_gen.get(key) != gen:
                    self.stats_.stale += 1
                    return
            exc = done.exception()
            if exc is None:
                result = done.result()
                self.post(lambda: on_done(result), hold=held)
            elif on_error is not None:
                self.post(lambda: on_error(exc), hold=held)
            else:
                self.post(lambda: self._report(exc))

        future = self._pool.submit(call)
        future.add_done_callback(report)
        return future

    def every(self, seconds: float, fn: Callable[[], None], *, key: Any, hold: Iterable[Any] = ()) -> None:
        """Post ``fn`` every ``seconds`` (replaces an earlier ``every`` with the same key)."""
        if seconds <= 0:
            raise ValueError("seconds: must be above 0")
        with self._lock:
            if self._closed:
                return
            seq = next(self._seq)
            self._every[key] = (seconds, fn, tuple(hold), seq)
            heapq.heappush(self._timers, (time.monotonic() + seconds, seq, key))
            self._wake.notify_all()
        if self._loop is not None:
            self._loop.add_callback(self._kernel_arm_timer)

    def cancel(self, key: Any) -> None:
        """Stop an :meth:`every` (and drop a pending keyed post with the same key)."""
        with self._lock:
            self._every.pop(key, None)
            self._keyed.pop(key, None)

    def flush(self, timeout: float = 5.0) -> bool:
        """Apply everything posted so far; ``False`` when the owner did not get to it within ``timeout``."""
        if self.on_owner_thread():
            self._flush()
            return True
        with self._lock:
            target = self._posted_seq
            if self._closed:
                return False
            self._last_flush = 0.0  # flush now, not after the coalescing gap
            self._schedule_locked(now=True)
            return self._applied_cond.wait_for(lambda: self._applied_seq >= target or self._closed, timeout)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every ``run`` has reported and everything posted is applied; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._closed:
                    return False
                if self._in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._applied_cond.wait(min(left, 0.05))
                    continue
            if not self.flush(max(0.0, deadline - time.monotonic())):
                return False
            with self._lock:
                if not self._in_flight and not self._keyed:
                    return True

    def stats(self) -> DispatchStats:
        with self._lock:
            snap = DispatchStats(**vars(self.stats_))
        snap.owner = self._owner
        return snap

    def close(self) -> None:
        """Stop the timer and the workers and drop pending work (idempotent; waits up to a second for
        the dispatcher's own thread, never for a network call in a worker)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._keyed.clear()
            self._every.clear()
            self._timers.clear()
            self._wake.notify_all()
            self._applied_cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)  # it wakes at once; a callback still running ends on its own
        handle = getattr(self, "_tick_handle", None)
        if handle is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.add_callback(self._loop.remove_timeout, handle)

    # -- scheduling --------------------------------------------------------------------------

    def _schedule_locked(self, *, now: bool = False) -> None:
        """Arrange one flush (caller holds the lock)."""
        if self._loop is None:
            self._wake.notify_all()
            return
        if self._scheduled and not now:
            return
        self._scheduled = True
        self._loop.add_callback(self._kernel_schedule)  # add_callback is the IOLoop's thread-safe entry

    def _kernel_schedule(self) -> None:
        delay = max(0.0, self._last_flush + self._min_gap - time.monotonic())
        if delay <= 0:
            self._flush()
        else:
            self._loop.call_later(delay, self._flush)

    def _kernel_arm_timer(self) -> None:
        """Kernel mode: one IOLoop timeout for the earliest ``every`` due time."""
        if self._closed:
            return
        if self._tick_handle is not None:
            self._loop.remove_timeout(self._tick_handle)
            self._tick_handle = None
        with self._lock:
            due = self._timers[0][0] if self._timers else None
        if due is not None:
            self._tick_handle = self._loop.call_later(max(0.0, due - time.monotonic()), self._kernel_tick)

    def _kernel_tick(self) -> None:
        self._tick_handle = None
        self._fire_due()
        self._flush()
        self._kernel_arm_timer()

    def fire_due(self) -> None:
        """Post every :meth:`every` whose time has come (re-armed as the timer does)."""
        self._fire_due()

    def _fire_due(self) -> None:
        """Post every ``every`` whose time has come, and re-arm it."""
        now = time.monotonic()
        due: list[tuple[Any, Callable[[], None], tuple[Any, ...]]] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                when, seq, key = heapq.heappop(self._timers)
                entry = self._every.get(key)
                if entry is None or entry[3] != seq:
                    continue  # cancelled or replaced
                seconds, fn, held, _ = entry
                due.append((key, fn, held))
                heapq.heappush(self._timers, (max(when + seconds, now), seq, key))
        for key, fn, held in due:
            self.post(fn, key=("every", key), hold=held)

    def _thread_main(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    now = time.monotonic()
                    pending = bool(self._keyed)
                    flush_at = self._last_flush + self._min_gap if pending else None
                    tick_at = self._timers[0][0] if self._timers else None
                    wake_at = min(t for t in (flush_at, tick_at, now + 60.0) if t is not None)
                    if (flush_at is not None and flush_at <= now) or (tick_at is not None and tick_at <= now):
                        break
                    self._wake.wait(wake_at - now)
                if self._closed:
                    return
            self._fire_due()
            with self._lock:
                ready = self._last_flush + self._min_gap <= time.monotonic()
            if ready:
                self._flush()

    # -- applying ----------------------------------------------------------------------------

    def _flush(self) -> None:
        with self._lock:
            self._scheduled = False
            if self._closed:
                return
            work: list[_Unkeyed] = list(self._keyed.values())
            self._keyed.clear()
            target = self._posted_seq
            self._last_flush = time.monotonic()
        if work:
            holds: dict[int, Any] = {}
            for _, held in work:
                for widget in held:
                    holds.setdefault(id(widget), widget)
            with contextlib.ExitStack() as stack:
                for widget in holds.values():
                    try:
                        stack.enter_context(widget.hold_sync())
                    except Exception as exc:  # noqa: BLE001 - a closed widget: apply without holding it
                        log.debug("could not hold %r: %s", widget, exc)
                for fn, _ in work:
                    if self._closed:
                        break  # closed mid-flush: the rest is dropped, as pending work is
                    try:
                        fn()
                    except Exception as exc:  # noqa: BLE001 - a view error is reported, never raised here
                        self._report(exc)
        with self._lock:
            self.stats_.flushes += 1
            self.stats_.applied += len(work)
            self._applied_seq = max(self._applied_seq, target)
            self._applied_cond.notify_all()

    def _report(self, exc: BaseException) -> None:
        with self._lock:
            self.stats_.errors += 1
        log.warning("UI update failed: %s", exc)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception as again:  # noqa: BLE001 - the error view itself failed: log only
                log.warning("could not show a UI error: %s", again)
