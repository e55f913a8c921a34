"""``BatchRun``: the one handle for a running Livy batch (in the spirit of pylivy's ``LivyBatch``).

Submit or reattach, poll, wait, read the log, kill — written once; the CLI, the demo, the
notebook UI (through :class:`~hdiaks_widgets.monitor.BatchMonitor`) and the exported DAG's
operator all use it, and no other code polls Livy or pages its log.

- :meth:`BatchRun.submit` posts the spec (never twice: ``LivyClient.submit_batch`` checks the
  name first and resolves an ambiguous POST by name) or, with ``reattach=True``, attaches to the
  batch that already runs under the spec's name (an Airflow retry).
- :meth:`BatchRun.attach` follows a batch submitted elsewhere, by id or name.
- :meth:`BatchRun.poll` is one step: the batch's state plus the new log lines, returned as an
  immutable :class:`Snapshot`. It never sleeps and never raises: a failure becomes a plain
  sentence in ``Snapshot.error`` with a kind that says whether another poll may help.
- :meth:`BatchRun.wait` loops ``poll`` with back-off until the batch is finished, the timeout
  passes, or ``stop`` is set. It never kills: only :meth:`BatchRun.kill` does, so a transient
  failure of Livy or a gateway never kills a healthy batch.

The log is read through a :class:`LogReader` seam, chosen by the client's dialect
(:func:`default_log_reader`). For Apache Livy, classic HDInsight and the sandbox,
:class:`~hdiaks_widgets.logview.LivyLogReader` aligns Livy's bounded view (rebuilt on every
request) by content and reads the driver's own log from ``driverLogUrl`` by byte offset when it can;
lines it could not read are reported (``Snapshot.log_gaps`` and ``log_note``), never hidden.
Fabric and Synapse have no ``/log``: :class:`ServiceLogReader` reads the service's own log
endpoint at ``LivyClient.log_location(batch)`` once the batch has an application id.
:class:`OffsetLogReader` pages by offset and is exact only on an append-only log.
A failed job's own error (Fabric's and Synapse's ``errorInfo``) is part of its end sentence.

A batch counts as finished once a terminal state was seen on two polls in a row and the log was
read to its end, so the lines Spark prints while it shuts down are not lost. A 404 for a batch
seen before means Livy forgot it after its retention time (PROTOCOL.md §2.5): *purged*, not a
failure; for a batch the run never saw, the sentence says to check the id instead. An answer
for a batch of another name means the server was restarted and reused the id (ids restart at 0
without recovery, §2.5): the run says so and stops instead of following a stranger's job.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from hdiaks_widgets import logview, wire
from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.dialects import Dialect, LogLocation
from hdiaks_widgets.errors import (
    AuthError,
    BatchFailed,
    BatchNotFound,
    CapacityFull,
    ConfigError,
    DuplicateBatchName,
    HdiaksError,
    LivyError,
    LivyHTTPError,
    SecretError,
)
from hdiaks_widgets.logview import LivyLogReader, LogDelta, job_output
from hdiaks_widgets.models import Batch, BatchState, LogPage
from hdiaks_widgets.progress import Progress, ProgressReader

__all__ = [
    "BatchRun",
    "ErrorKind",
    "LivyLike",
    "LivyLogReader",
    "LogDelta",
    "LineView",
    "LogReader",
    "OffsetLogReader",
    "ServiceLogReader",
    "Snapshot",
    "backoff",
    "default_log_reader",
    "describe_error",
    "failure_lines",
]

log = logging.getLogger(__name__)

ErrorKind = Literal[
    "auth", "network", "server", "config", "purged", "replaced", "failed", "error", "internal"
]
# Errors that another poll will not fix: stop at once instead of retrying.
FATAL_KINDS = frozenset({"auth", "config", "error", "internal", "replaced"})
# Errors another poll may fix (Livy or a gateway restarting, a dropped connection).
TRANSIENT_KINDS = frozenset({"network", "server"})

failure_lines = wire.failure_lines


class LivyLike(Protocol):
    """What a run reads through (``LivyClient``, or a small in-memory fake in tests)."""

    def get_batch(self, batch_id: int | str) -> Batch: ...

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage: ...


class SubmitLike(LivyLike, Protocol):
    def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch: ...

    def find_batch(self, name: str) -> Batch | None: ...

    def kill_batch(self, batch_id: int | str) -> None: ...


# -- the log seam ----------------------------------------------------------------------------


class LogReader(Protocol):
    """Reads a batch's log incrementally; keeps its own position between calls."""

    def read(self, client: LivyLike, batch: Batch) -> LogDelta: ...


class OffsetLogReader:
    """Pages ``GET /batches/{id}/log?from=<offset>&size=<n>`` from where the last read ended.

    Exact only on a log that only grows (the sandbox's ``append`` shape): on Livy's real, bounded
    view it repeats and skips lines; :class:`~hdiaks_widgets.logview.LivyLogReader` is the default.
    """

    def __init__(self, *, start: int = 0, page_size: int = 1000, max_pages: int = 20) -> None:
        self.offset = start
        self.total = start
        self.page_size = page_size
        self.max_pages = max_pages

    def read(self, client: LivyLike, batch: Batch) -> LogDelta:
        lines: list[str] = []
        for _ in range(self.max_pages):
            page = client.get_log(batch.id, start=self.offset, size=self.page_size)
            self.total = page.total
            if page.total < self.offset:
                self.offset = page.total
                break
            fresh = page.lines[max(0, self.offset - page.start):]
            if not fresh:
                break
            lines.extend(fresh)
            self.offset = page.start + len(page.lines)
            if self.offset >= page.total:
                break
        return LogDelta(tuple(lines), 0, self.offset >= self.total)


class ServiceLogReader:
    """The log of a dialect without ``/log`` (Fabric's monitoring API, Synapse's ``driverlog``).

    Built on the first read at which the batch has an application id, from the client's
    :meth:`~hdiaks_widgets.livy.LivyClient.log_location`, as ``logview``'s reader for that
    location (:func:`~hdiaks_widgets.logview.service_log_reader`, reading through the client's
    ``get_text``: credentials only to the service's own origin). Until then — or for a client
    that cannot fetch log pages — it reads nothing and says so once in ``LogDelta.note``; the
    job's state and its ``errorInfo`` still come from the batch object.
    """

    def __init__(self) -> None:
        self.inner: LogReader | None = None
        self.location: LogLocation | None = None
        self._noted = False

    def read(self, client: LivyLike, batch: Batch) -> LogDelta:
        if self.inner is None and batch.app_id:
            locate = getattr(client, "log_location", None)
            self.location = locate(batch) if locate is not None else None
            if self.location is not None and self.location.url is not None and isinstance(client, logview.TextFetcher):
                self.inner = logview.service_log_reader(self.location, client)
        if self.inner is not None:
            return self.inner.read(client, batch)
        note = None
        if not self._noted and (batch.app_id or batch.state.is_terminal):
            self._noted = True
            if not batch.app_id:
                note = ("The job never started a Spark application, so there is no driver log: its "
                        "state and error come from the batch.")  # fmt: skip
            else:
                where = self.location.url if self.location is not None and self.location.url else None
                note = ("This service's log could not be located" + (f"; it is at {where}" if where else "")
                        + ": the job's state and error come from the batch.")  # fmt: skip
        return LogDelta((), 0, True, 0, note)


def default_log_reader(client: object) -> LogReader:
    """The reader for the client's dialect: Livy's view where there is ``/log`` (Apache Livy,
    classic HDInsight, HDInsight on AKS, the sandbox), else :class:`ServiceLogReader`."""
    dialect = getattr(client, "dialect", None)
    if isinstance(dialect, Dialect) and not dialect.has_log_endpoint:
        return ServiceLogReader()
    return LivyLogReader()


# -- snapshots -------------------------------------------------------------------------------


class LineView(Sequence[str]):
    """The first ``n`` lines of an append-only store that a run's snapshots share.

    A poll appends its new lines to the store and hands out a view one poll longer, so a poll
    costs what it read, not every line held (a new tuple per poll is quadratic over a
    1,000,000-line job, issue 13). Immutable as a tuple is: the lines under ``n`` never change.
    It compares equal to a tuple or list of the same lines; a slice is a ``tuple``.
    """

    __slots__ = ("_store", "_n")

    def __init__(self, lines: Iterable[str] = (), *, _store: list[str] | None = None, _n: int | None = None) -> None:
        if _store is None:
            _store = list(lines)
        self._store = _store
        self._n = len(_store) if _n is None else _n

    def extend(self, lines: Sequence[str]) -> LineView:
        """This view followed by ``lines``: the store is shared while this view is its tip,
        copied only for a branch from an older view."""
        if not lines:
            return self
        store = self._store
        if len(store) != self._n:  # an older snapshot extended again: do not touch the newer lines
            store = store[: self._n]
        store.extend(lines)
        return LineView(_store=store, _n=len(store))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self._store[slice(*index.indices(self._n))])
        i = index.__index__()
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("line index out of range")
        return self._store[i]

    def __iter__(self) -> Iterator[str]:
        return itertools.islice(self._store, self._n)

    def __reversed__(self) -> Iterator[str]:
        store = self._store
        return (store[i] for i in range(self._n - 1, -1, -1))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineView):
            if other._store is self._store:
                return other._n == self._n
        elif not isinstance(other, tuple | list):
            return NotImplemented
        return len(other) == self._n and all(a == b for a, b in zip(self, other, strict=False))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __add__(self, other: Sequence[str]) -> tuple[str, ...]:
        return (*self, *other)

    def __radd__(self, other: Sequence[str]) -> tuple[str, ...]:
        return (*other, *self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (LineView, (tuple(self),))

    def __repr__(self) -> str:
        return f"LineView({self._n} lines)"



@dataclass(frozen=True)
class Snapshot:
    """What a run knows about one batch at one moment. Immutable: safe to hand to any thread."""

    batch_id: str
    name: str | None = None  # the batch name this run follows (to notice a reused id)
    batch: Batch | None = None  # the last batch object seen (kept after a purge)
    lines: Sequence[str] = ()  # every log line read so far (a LineView after a poll: shared, not copied)
    new_lines: tuple[str, ...] = ()  # the lines the last poll added
    dropped_lines: int = 0  # lines known to be lost before they could be read
    log_gaps: int = 0  # places where Livy's window moved past lines never read (count unknown)
    log_note: str | None = None  # one line for people: lines dropped, driver log unreadable, ...
    log_at_end: bool = False
    started_at: float = 0.0  # clock() when watching began (monotonic seconds)
    updated_at: float = 0.0
    polls: int = 0
    errors: int = 0  # consecutive failed polls
    error: str | None = None  # a plain sentence for the UI, never a traceback
    error_kind: ErrorKind | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    purged: bool = False
    finished: bool = False  # no more polls: terminal state reached, purged, replaced or gave up
    progress: Progress | None = None  # Spark's jobs/stages/tasks, with a ProgressReader (BatchRun(progress=))

    def __repr__(self) -> str:
        # One line however long the log: counts, never the lines (a notebook cell shows this).
        name = self.name if self.name is not None else (self.batch.name if self.batch else None)
        named = "" if name is None else f", name={_short(name)}"
        return (
            f"Snapshot(batch={self.batch_id!r}{named}, state={self.state_label}, lines={len(self.lines)}, "
            f"new={len(self.new_lines)}, polls={self.polls}, finished={self.finished}"
            + (f", error_kind={self.error_kind}" if self.error_kind else "")
            + (f", progress={self.progress.percent}%" if self.progress is not None and self.progress.percent is not None
               else "")  # fmt: skip
            + ")"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's pretty printer: the same one line."""
        printer.text(repr(self))

    @property
    def state(self) -> BatchState | None:
        return None if self.batch is None else self.batch.state

    @property
    def state_label(self) -> str:
        """The state to show: ``purged``/``replaced`` when the record is gone, ``unknown`` before
        the first answer."""
        if self.error_kind == "replaced":
            return "replaced"
        if self.purged and (self.batch is None or not self.batch.state.is_terminal):
            return "purged"
        return "unknown" if self.batch is None else self.batch.state.value

    @property
    def succeeded(self) -> bool:
        return self.batch is not None and self.batch.state is BatchState.SUCCESS

    @property
    def transient(self) -> bool:
        """The last poll failed in a way another poll may fix (network, 5xx, 429)."""
        return self.error_kind in TRANSIENT_KINDS

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
            lines = failure_lines(job_output(self.lines), limit=20)
            errors = [e.message for e in self.batch.errors if e.message not in lines]
            raise BatchFailed(self.batch, [*errors, *lines])
        return self


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def backoff(initial: float = 0.5, *, factor: float = 1.5, maximum: float = 5.0) -> Iterator[float]:
    """Delays between polls: ``initial``, growing by ``factor`` up to ``maximum``, forever."""
    delay = max(0.0, initial)
    while True:
        yield delay
        delay = min(maximum, delay * factor) if delay > 0 else min(maximum, 0.1)


def describe_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """A kind and a plain sentence for an exception (shown in the UI instead of a traceback)."""
    if isinstance(exc, BatchNotFound):
        if exc.seen:
            last = f" (last seen {exc.last_state})" if exc.last_state else ""
            return "purged", (
                f"Batch {exc.batch_id} is no longer known to the Livy server: it was purged after "
                f"Livy's retention time{last}."
            )
        return "purged", f"There is no batch {exc.batch_id} on this Livy server: check the id (hdiaks list)."
    if isinstance(exc, AuthError):
        if exc.error == "tls":  # the sentence already says what to fix (the profile's verify)
            return "auth", f"Sign-in failed: {exc}."
        return "auth", f"Sign-in failed: {exc}. Check the profile's tenant, client id and credentials."
    if isinstance(exc, SecretError):
        return "auth", f"A credential could not be read: {exc}"
    if isinstance(exc, DuplicateBatchName):
        return "config", str(exc)
    if isinstance(exc, ConfigError):
        return "config", f"The job configuration is not valid: {exc}"
    if isinstance(exc, BatchFailed):
        return "failed", str(exc)
    if isinstance(exc, CapacityFull):
        return "server", str(exc)  # another poll, later, may be served
    if isinstance(exc, LivyHTTPError):
        if exc.status in (401, 403):
            if exc.expected_scope or (exc.hint and "audience" in exc.hint):
                return "auth", f"The server refused the token (HTTP {exc.status}): {exc.hint}. Server said: {exc.said}"
            return "auth", (
                f"The Livy server refused the request (HTTP {exc.status}): check your credentials "
                "and that your identity has access to the cluster."
            )
        if exc.status >= 500 or exc.status == 429:
            return "server", f"The Livy server had a problem (HTTP {exc.status}): {exc.said or 'no details'}"
        return "error", f"The Livy server rejected the request (HTTP {exc.status}): {exc.said or 'no details'}"
    if isinstance(exc, LivyError):
        return "network", f"{exc}. Check the cluster address and your network connection."
    if isinstance(exc, HdiaksError):
        return "error", str(exc)
    return "internal", f"Unexpected {type(exc).__name__}: {exc}"


def _end_sentence(batch: Batch, lines: Sequence[str]) -> tuple[ErrorKind | None, str | None]:
    state = batch.state
    if state is BatchState.SUCCESS:
        return None, None
    if state is BatchState.KILLED:
        return "failed", f"Batch {batch.id} was killed."
    tail = failure_lines(job_output(lines))
    sentence = f"Batch {batch.id} ended in state {state.value}."
    if batch.error:
        sentence += f" Error: {batch.error}"  # the service's own word (errorInfo)
    if tail:
        sentence += " Last error lines: " + " | ".join(t.strip() for t in tail)
    return "failed", sentence


# -- the handle --------------------------------------------------------------------------------


class BatchRun:
    """One Livy batch being followed: ``poll``, ``wait``, ``log``, ``kill``.

    Thread-safe: ``poll`` and ``kill`` may be called from different threads; snapshots are
    immutable. Build one with :meth:`submit` or :meth:`attach`.
    """

    def __init__(
        self,
        client: LivyLike,
        batch_id: int | str,
        *,
        name: str | None = None,
        batch: Batch | None = None,
        log_reader: LogReader | None = None,
        max_errors: int = 8,
        clock: Callable[[], float] = time.monotonic,
        progress: ProgressReader | None = None,
    ) -> None:
        self.client = client
        # Spark's own numbers (jobs, stages, tasks) on every snapshot, read rate-limited from the
        # application's UI; None: not read (no requests beyond Livy's).
        self.progress_reader = progress
        self.batch_id = str(batch_id)  # ids are opaque strings (Apache Livy's 7 is "7")
        self.name = name if name is not None else (batch.name if batch is not None else None)
        self._name_given = name is not None  # the caller knew the batch by name: it existed
        self.reader: LogReader = log_reader if log_reader is not None else default_log_reader(client)
        self._max_errors = max_errors
        self._clock = clock
        now = clock()
        # A batch object from the POST/lookup is not a poll: state changes are counted from polls.
        self._snapshot = Snapshot(batch_id=self.batch_id, name=self.name, started_at=now, updated_at=now)
        self._first_batch = batch
        self._lock = threading.Lock()  # one poll at a time
        self._killed = False
        self.reattached = False  # made by submit(reattach=True) from a batch that already existed

    def __repr__(self) -> str:
        snap = self.snapshot
        return f"BatchRun(batch={self.batch_id!r}, name={self.name!r}, state={snap.state_label})"

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        client: SubmitLike,
        spec: BatchSpec,
        *,
        reattach: bool = False,
        name_checked: bool = False,
        log_reader: LogReader | None = None,
        max_errors: int = 8,
        clock: Callable[[], float] = time.monotonic,
        progress: ProgressReader | None = None,
    ) -> BatchRun:
        """Submit ``spec`` and return its run (a spec without a name gets a unique one).

        ``reattach=True``: when a batch with the spec's name already exists (an earlier try of
        the same Airflow task), follow it instead of raising :class:`DuplicateBatchName`.
        ``name_checked=True``: the caller made the name unique itself (``wire.unique_batch_name``,
        so it can say which name to look for after an interrupted POST): it is not looked up first.
        """
        batch: Batch | None = None
        reattached = False
        if reattach and spec.name:
            batch = client.find_batch(spec.name)
            if batch is not None:
                reattached = True
                log.info("reattaching to batch %s (%s), state %s", batch.id, batch.name, batch.state.value)
        if batch is None:
            try:
                batch = client.submit_batch(spec, name_checked=reattach or name_checked)
            except DuplicateBatchName:
                if not reattach or not spec.name:
                    raise
                batch = client.find_batch(spec.name)  # submitted concurrently under this name
                if batch is None:
                    raise
                reattached = True
        run = cls(client, batch.id, name=batch.name, batch=batch, log_reader=log_reader,
                  max_errors=max_errors, clock=clock, progress=progress)
        run.reattached = reattached
        return run

    @classmethod
    def attach(
        cls,
        client: LivyLike,
        batch_id_or_name: int | str,
        *,
        expected_name: str | None = None,
        log_reader: LogReader | None = None,
        max_errors: int = 8,
        clock: Callable[[], float] = time.monotonic,
        progress: ProgressReader | None = None,
    ) -> BatchRun:
        """Follow a batch submitted elsewhere, by id or (Livy 0.7+) by name.

        Looks it up once (raising :class:`BatchNotFound` if there is none). ``expected_name``
        (default: the name it has now) is how a reused id is noticed later.
        """
        batch = client.get_batch(batch_id_or_name)
        if expected_name is not None and batch.name != expected_name:
            raise BatchNotFound(
                batch_id_or_name,
                f"batch {batch.id} is named {batch.name!r}, not {expected_name!r}",
            )
        return cls(client, batch.id, name=batch.name, batch=batch, log_reader=log_reader,
                   max_errors=max_errors, clock=clock, progress=progress)

    # -- state ---------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def log(self) -> Sequence[str]:
        """Every log line read so far (a read-only sequence; ``tuple(run.log)`` for a tuple)."""
        return self._snapshot.lines

    @property
    def finished(self) -> bool:
        return self._snapshot.finished

    @property
    def first_batch(self) -> Batch | None:
        """The batch object returned by the submit or the lookup that made this run."""
        return self._first_batch

    # -- one step ------------------------------------------------------------------------------

    def poll(self) -> Snapshot:
        """One step: state and new log lines. Never raises, never sleeps; no-op once finished."""
        with self._lock:
            snap = self._snapshot
            if snap.finished:
                return snap
            self._snapshot = self._step(snap)
            return self._snapshot

    def _step(self, snap: Snapshot) -> Snapshot:
        now = self._clock()
        try:
            batch = self.client.get_batch(self.batch_id)
            if self.name is None and batch.name is not None:
                self.name = batch.name  # attached by id: the first answer says whose job it is
                snap = replace(snap, name=batch.name)
            elif self.name is not None and batch.name != self.name:
                return self._replaced(snap, batch, now)
            delta = self.reader.read(self.client, batch)
        except BatchNotFound as exc:
            last = snap.batch or self._first_batch
            if last is not None or self._name_given:
                # This run (or whoever named the batch for it) saw it: the server forgot it (§2.5).
                exc = BatchNotFound(exc.batch_id, exc.body, seen=True,
                                    last_state=last.state.value if last is not None else None,
                                    method=exc.method, url=exc.url)
            kind, sentence = describe_error(exc)
            last_state = snap.batch.state if snap.batch is not None else None
            if self._killed and (last_state is None or not last_state.is_terminal or last_state is BatchState.KILLED):
                # This program's kill (Apache Livy forgets a batch it deletes), not one that ended first.
                sentence = f"Batch {self.batch_id} was killed; the Livy server no longer lists it."
            elif last_state is not None and last_state.is_terminal:
                sentence = (
                    f"Batch {self.batch_id} ended {last_state.value}; the Livy server has since "
                    "purged its record (retention time), so no more details can be fetched."
                )
            elif exc.seen:
                seen = f"was last seen {last.state.value}" if last is not None else f"({self.name!r}) was known"
                sentence = (
                    f"Batch {self.batch_id} {seen}; the Livy server no longer has it: it was purged "
                    "after Livy's retention time, deleted by another client, or lost when the server "
                    "restarted."
                )
            return replace(snap, new_lines=(), updated_at=now, polls=snap.polls + 1, error=sentence,
                           error_kind=kind, exception=exc, purged=True, finished=True)
        except Exception as exc:  # noqa: BLE001 - a poll reports every failure in the snapshot
            kind, sentence = describe_error(exc)
            errors = snap.errors + 1
            give_up = kind in FATAL_KINDS or errors >= self._max_errors
            if give_up and kind in TRANSIENT_KINDS:
                sentence += f" Stopped watching after {errors} failed attempts."
            log.warning("batch %s: poll failed (%s, attempt %d)", self.batch_id, kind, errors)
            return replace(snap, new_lines=(), updated_at=now, polls=snap.polls + 1, errors=errors,
                           error=sentence, error_kind=kind, exception=exc, finished=give_up)
        held = snap.lines if isinstance(snap.lines, LineView) else LineView(snap.lines)
        lines = held.extend(delta.lines)
        progress = self._progress(batch, snap.progress)
        was_terminal = snap.batch is not None and snap.batch.state.is_terminal
        finished = batch.state.is_terminal and was_terminal and delta.at_end
        end_kind, end_sentence = _end_sentence(batch, lines) if finished else (None, None)
        if batch.state != (snap.batch.state if snap.batch else None):
            log.info("batch %s is %s", batch.id, batch.state.value)
        return replace(
            snap, batch=batch, lines=lines, new_lines=delta.lines,
            dropped_lines=snap.dropped_lines + delta.dropped, log_gaps=snap.log_gaps + delta.gaps,
            log_note=delta.note or snap.log_note, log_at_end=delta.at_end,
            updated_at=now, polls=snap.polls + 1, errors=0, error=end_sentence, error_kind=end_kind,
            exception=None, finished=finished, progress=progress,
        )

    def _progress(self, batch: Batch, last: Progress | None) -> Progress | None:
        """Spark's numbers for this poll (the reader's latest); a reader's failure never breaks a watch."""
        if self.progress_reader is None:
            return None
        try:
            return self.progress_reader.read(self.client, batch)
        except Exception:  # noqa: BLE001 - progress is a nicety; the state poll goes on
            log.warning("batch %s: progress not read", self.batch_id, exc_info=True)
            return last

    def _replaced(self, snap: Snapshot, batch: Batch, now: float) -> Snapshot:
        sentence = (
            f"Batch {self.batch_id} on the server is now {batch.name!r}, not {self.name!r}: the Livy "
            "server was restarted and reused the id, so this job's record is gone. Stopped following it."
        )
        log.warning("batch %s: id reused by %r (expected %r)", self.batch_id, batch.name, self.name)
        return replace(snap, new_lines=(), updated_at=now, polls=snap.polls + 1, error=sentence,
                       error_kind="replaced", purged=True, finished=True)

    # -- loops -----------------------------------------------------------------------------------

    def wait(
        self,
        timeout: float | None = None,
        *,
        on_update: Callable[[Snapshot], object] | None = None,
        interval: float = 0.5,
        max_interval: float = 5.0,
        factor: float = 1.5,
        stop: threading.Event | None = None,
    ) -> Snapshot:
        """Poll until the run is finished, ``timeout`` seconds passed or ``stop`` is set.

        ``on_update`` receives every snapshot. Returns the latest snapshot: check ``finished``
        (``False`` after a timeout or a stop). Never kills the batch.
        """
        stop = stop if stop is not None else threading.Event()
        deadline = None if timeout is None else self._clock() + timeout
        delays = backoff(interval, factor=factor, maximum=max_interval)
        snap = self._snapshot
        while not stop.is_set():
            prev = snap
            snap = self.poll()
            if on_update is not None:
                on_update(snap)
            if snap.finished:
                break
            if snap.new_lines or snap.state != prev.state:
                delays = backoff(interval, factor=factor, maximum=max_interval)  # activity: poll soon
            delay = next(delays)
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 0:
                    break
                delay = min(delay, left)
            if stop.wait(delay):
                break
        return snap

    def note_killed(self, asked: bool = True) -> None:
        """A kill of this batch that this program sent another way (the app's Kill button, the
        history panel): when the server then no longer lists it (Apache Livy forgets a batch it
        deletes), the end reads "was killed", not "deleted by another client". ``asked=False``
        takes it back (the kill failed)."""
        self._killed = asked

    def kill(self) -> None:
        """``DELETE /batches/{id}``: stop the Spark application. A batch already gone is fine."""
        killer = getattr(self.client, "kill_batch", None)
        if killer is None:
            raise LivyError("this client cannot kill batches")
        self._killed = True
        try:
            killer(self.batch_id)
        except BatchNotFound:
            log.info("batch %s was already gone when killed", self.batch_id)
