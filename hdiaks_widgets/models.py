"""Frozen models parsed from Livy JSON (``docs/rest-api.md`` of apache/incubator-livy).

Parse at the edge: the Livy client turns every answer into one of these; nothing else in the
package indexes raw Livy dictionaries. One ``Batch`` for every dialect (PROTOCOL.md §8): ids are
opaque strings (Apache Livy's numbers arrive as ``"7"``, Fabric's are UUIDs); Fabric's and
Synapse's ``result``, extra states, ``livyInfo`` times and ``errorInfo`` are parsed
defensively (a malformed field becomes "not given", never an exception).
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args, overload

from hdiaks_widgets.dialects import livy_state
from hdiaks_widgets.errors import LivyError

__all__ = [
    "AppInfo",
    "Batch",
    "BatchList",
    "BatchRow",
    "BatchState",
    "DRIVER_SOURCES",
    "ErrorInfo",
    "LOG_SOURCES",
    "ListedBatches",
    "LogLine",
    "LogPage",
    "LogSource",
    "Session",
    "SessionList",
    "Statement",
    "StatementOutput",
    "StatementState",
    "TERMINAL_STATES",
    "id_sort_key",
]


LogSource = Literal["livy stdout", "livy stderr", "driver stdout", "driver stderr", "driver log", "diagnostics"]
LOG_SOURCES: tuple[str, ...] = get_args(LogSource)
DRIVER_SOURCES = frozenset({"driver stdout", "driver stderr", "driver log"})  # the job's own output


class LogLine(str):
    """One line of a job's log: text (it *is* a ``str``) plus where it was read from.

    ``source``: ``livy stdout`` / ``livy stderr`` (spark-submit's streams as Livy keeps them),
    ``driver stdout`` / ``driver stderr`` (the driver's own files behind ``driverLogUrl``),
    ``driver log`` (the Kubernetes driver pod's merged log window) or ``diagnostics`` (YARN's or
    Kubernetes' diagnostics of the finished application).
    """

    # No per-line ``__dict__`` (~100 B each): a million-line job's lines held by every snapshot.
    __slots__ = ("source",)
    source: str

    def __new__(cls, text: str, source: str = "livy stdout") -> LogLine:
        line = super().__new__(cls, text)
        line.source = source
        return line

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogLine, (str(self), self.source))

    def __repr__(self) -> str:
        return f"LogLine({str(self)!r}, {self.source!r})"


class BatchState(enum.StrEnum):
    """All 11 Livy session states (``SessionState.scala``); the docs list only 9."""

    NOT_STARTED = "not_started"
    STARTING = "starting"
    RECOVERING = "recovering"
    IDLE = "idle"
    RUNNING = "running"
    BUSY = "busy"
    SHUTTING_DOWN = "shutting_down"
    ERROR = "error"
    DEAD = "dead"
    KILLED = "killed"
    SUCCESS = "success"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_success(self) -> bool:
        return self is BatchState.SUCCESS

    @classmethod
    def parse(cls, value: Any) -> BatchState:
        try:
            return cls(str(value))
        except ValueError:
            # An unknown state from a newer Livy must not crash a monitor; treat as not final.
            return cls.NOT_STARTED


# The terminal set used by Airflow's LivyHook and the Azure samples.
TERMINAL_STATES = frozenset({BatchState.SUCCESS, BatchState.DEAD, BatchState.KILLED, BatchState.ERROR})


def _short(text: str | None, limit: int = 40) -> str:
    """``repr`` of a name, cut to ``limit`` characters (user-chosen names can be long)."""
    if text is None:
        return "None"
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _str_or_none(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _build(cls: type[Any], fields: dict[str, Any]) -> Any:
    """A frozen dataclass from already-parsed fields without its ``__init__`` (one
    ``object.__setattr__`` per field is most of a model's cost over a 1,000-batch list, S2 in
    docs/benchmarks.md); the result is the same object ``cls(**fields)`` builds."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if type(data) is not dict and not isinstance(data, Mapping):  # the exact type first: no ABC check
        raise LivyError(f"Livy sent a {type(data).__name__} where a {what} object was expected")
    return data


def _int(data: Mapping[str, Any], key: str, what: str, default: int | None = None) -> int:
    """An integer field; a missing or malformed one is a protocol error, not a KeyError."""
    value = data.get(key, default)
    if isinstance(value, bool) or value is None:
        raise LivyError(f"Livy's {what} has no integer {key!r} (got {value!r})")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise LivyError(f"Livy's {what} has no integer {key!r} (got {value!r})") from exc


def _id(data: Mapping[str, Any], key: str, what: str, default: str | None = None) -> str:
    """An id as an opaque string: Apache Livy's numbers become their digits, strings stay."""
    value = data.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise LivyError(f"Livy's {what} has no id {key!r} (got {value!r})")
    return str(value)


def id_sort_key(batch_id: int | str) -> tuple[int, int, str]:
    """Order ids as people expect: Apache Livy's numeric ids by value (``"9"`` before ``"10"``),
    then any other id (a UUID) by its text."""
    text = str(batch_id)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time of the services (``2025-03-05T12:11:17.000Z``, 7-digit fractions,
    ``...GMT``) as an aware UTC ``datetime``; anything else is "not given"."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith("GMT"):
        text = text[:-3] + "+00:00"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _lines(value: Any) -> tuple[str, ...]:
    if type(value) is list and all(type(v) is str for v in value):  # JSON's usual list of str
        return tuple(value)
    if isinstance(value, str):  # a single line instead of a list: keep it whole
        return (value,)
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(line) for line in value)


@dataclass(frozen=True)
class AppInfo:
    driver_log_url: str | None = None
    spark_ui_url: str | None = None
    executor_log_urls: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AppInfo:
        if type(data) is not dict and not isinstance(data, Mapping):
            return _NO_APP_INFO
        get = data.get
        return _build(cls, {"driver_log_url": _str_or_none(get("driverLogUrl")),  # type: ignore[no-any-return]
                            "spark_ui_url": _str_or_none(get("sparkUiUrl")),
                            "executor_log_urls": _str_or_none(get("executorLogUrls"))})  # fmt: skip


_NO_APP_INFO = AppInfo()


@dataclass(frozen=True)
class ErrorInfo:
    """One entry of Fabric's / Synapse's ``errorInfo`` (``{message, errorCode, source}``)."""

    message: str
    code: str | None = None
    source: str | None = None

    @classmethod
    def parse_all(cls, value: Any) -> tuple[ErrorInfo, ...]:
        if not isinstance(value, list | tuple):
            return ()
        out: list[ErrorInfo] = []
        for item in value:
            if not isinstance(item, Mapping):
                continue
            message, code = item.get("message"), item.get("errorCode")
            text = message if isinstance(message, str) and message else code
            if isinstance(text, str) and text:
                out.append(cls(text, _str_or_none(code), _str_or_none(item.get("source"))))
        return tuple(out)


# ``livyInfo`` (Fabric ``BatchStateInformation``, Synapse ``SparkBatchJobState``) key -> state.
_STATE_TIME_KEYS: Mapping[str, str] = {
    "notStartedAt": "not_started",
    "startingAt": "starting",
    "runningAt": "running",
    "idleAt": "idle",
    "busyAt": "busy",
    "shuttingDownAt": "shutting_down",
    "recoveringAt": "recovering",
    "successAt": "success",
    "deadAt": "dead",
    "killedAt": "killed",
    "terminatedAt": "killed",  # Synapse's client name for killedAt
    "errorAt": "error",
}
_END_STATES = ("success", "dead", "killed", "error")


@dataclass(frozen=True)
class Batch:
    """The batch object of POST/GET ``/batches`` in any dialect (Apache Livy's
    ``BatchSessionView``, Fabric's ``BatchResponse`` or list ``LivySparkActivity``, Synapse's
    ``SparkBatchJob``).

    ``state`` is always one of Livy's states (a dialect's extra states and its final ``result``
    mapped by :func:`hdiaks_widgets.dialects.livy_state`); ``result`` is the dialect's own word
    (``Succeeded``, ``Failed``, ``Cancelled``, ``Uncertain``) or ``None``. The times come from
    ``livyInfo`` (or a list item's ``submittedAt``/``startedAt``/``endedAt``); Apache Livy sends
    none, so they are ``None`` there. ``errors``: the dialect's ``errorInfo``.
    """

    id: str
    state: BatchState
    name: str | None = None
    owner: str | None = None
    proxy_user: str | None = None
    app_id: str | None = None
    app_info: AppInfo = field(default_factory=AppInfo)
    log: tuple[str, ...] = ()
    result: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    state_times: tuple[tuple[str, datetime], ...] = ()  # (Livy state, when it was entered)
    errors: tuple[ErrorInfo, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):  # Batch(id=3, ...) from code written for int ids
            object.__setattr__(self, "id", str(self.id))

    def __repr__(self) -> str:
        # Short in a notebook cell: the log Livy sends with a batch is counted, not printed.
        app = f", app_id={self.app_id!r}" if self.app_id else ""
        return (f"Batch(id={self.id}, state={self.state.value}, name={_short(self.name)}{app}, "
                f"log={_count(len(self.log), 'line')})")

    def brief(self) -> str:
        """``3 'spark-pi' running``: the batch in a few words."""
        return f"{self.id} {_short(self.name)} {self.state.value}"

    @property
    def error(self) -> str | None:
        """The dialect's own error sentence for a failed job (``errorInfo``), else ``None``."""
        if not self.errors:
            return None
        return "; ".join(dict.fromkeys(e.message for e in self.errors))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, state_key: str = "state") -> Batch:
        """``state_key``: where the dialect puts the state (Fabric's list items: ``livyState``).

        Written for a list of 1,000 (S2 in docs/benchmarks.md): exact-type checks before the
        general ones, no per-field ``__setattr__``, and the times and errors looked up only where
        the dialect sends them (Apache Livy never does)."""
        if type(data) is not dict:
            data = _object(data, "batch")
        get = data.get
        ident = get("id")
        if type(ident) is int:
            ident = str(ident)
        elif type(ident) is not str or not ident:
            ident = _id(data, "id", "batch")
        raw_state = get(state_key)
        if raw_state is None:
            raw_state = get("state", get("livyState"))
        result = get("result")
        result = result if result is None or type(result) is str else str(result)
        try:
            state = _STATES[raw_state, result]
        except (KeyError, TypeError):
            state = _batch_state(raw_state, result)
        name, owner, proxy, app = get("name"), get("owner"), get("proxyUser"), get("appId")
        info = get("appInfo")
        if type(info) is dict:
            driver, ui, more = info.get("driverLogUrl"), info.get("sparkUiUrl"), info.get("executorLogUrls")
            app_info = object.__new__(AppInfo)
            app_info.__dict__.update({  # a dict literal: a third of the cost of keyword arguments
                "driver_log_url": driver if driver is None or type(driver) is str else str(driver),
                "spark_ui_url": ui if ui is None or type(ui) is str else str(ui),
                "executor_log_urls": more if more is None or type(more) is str else str(more)})  # fmt: skip
        else:
            app_info = AppInfo.from_json(info)
        log = get("log")
        batch = object.__new__(cls)
        batch.__dict__.update({
            "id": ident, "state": state,
            "name": name if name is None or type(name) is str else str(name),
            "owner": owner if owner is None or type(owner) is str else str(owner),
            "proxy_user": proxy if proxy is None or type(proxy) is str else str(proxy),
            "app_id": app if app is None or type(app) is str else str(app),
            "app_info": app_info,
            "log": () if log is None or log == [] else _lines(log),
            "result": result, "submitted_at": None, "started_at": None, "ended_at": None, "state_times": (),
            "errors": (),
        })  # fmt: skip
        if not _EXTRA_KEYS.isdisjoint(data):
            batch.__dict__.update(_times_and_errors(data))
        return batch


# The fields a dialect other than Apache Livy may add to a batch (times, errors).
_EXTRA_KEYS = frozenset({"livyInfo", "schedulerInfo", "errorInfo", "errorCode", "submittedAt", "startedAt", "endedAt"})
_STATES: dict[tuple[Any, Any], BatchState] = {}


def _batch_state(raw_state: Any, result: str | None) -> BatchState:
    """Livy's state for a dialect's state and result, remembered per pair (a list repeats few)."""
    key = (raw_state, result)
    try:
        return _STATES[key]
    except (KeyError, TypeError):  # TypeError: an unhashable state from a hostile server
        state = BatchState.parse(livy_state(raw_state, result))
        if type(raw_state) is str and len(_STATES) < 256:
            _STATES[key] = state
        return state


def _times_and_errors(data: Mapping[str, Any]) -> dict[str, Any]:
    info = data.get("livyInfo")
    info = info if isinstance(info, Mapping) else {}
    scheduler = data.get("schedulerInfo")
    scheduler = scheduler if isinstance(scheduler, Mapping) else {}
    times = tuple((state, stamp) for key, state in _STATE_TIME_KEYS.items()
                  if (stamp := _time(info.get(key))) is not None) if info else ()  # fmt: skip
    by_state = dict(times)
    errors = ErrorInfo.parse_all(data.get("errorInfo"))
    if not errors and isinstance(data.get("errorCode"), str) and data.get("errorCode"):
        # A Fabric list item names the error by code only.
        errors = (ErrorInfo(str(data["errorCode"]), str(data["errorCode"]), _str_or_none(data.get("errorSource"))),)
    return {
        "submitted_at": (by_state.get("not_started") or _time(data.get("submittedAt"))
                         or _time(scheduler.get("submittedAt"))),
        "started_at": by_state.get("running") or by_state.get("starting") or _time(data.get("startedAt")),
        "ended_at": (next((by_state[s] for s in _END_STATES if s in by_state), None)
                     or _time(data.get("endedAt")) or _time(scheduler.get("endedAt"))),
        "state_times": times,
        "errors": errors,
    }  # fmt: skip


# A list item's row for a table: id, name, state, app id, Spark UI, driver log, owner ("" for none).
BatchRow = tuple[str, str, str, str, str, str, str]


def _row(b: Batch) -> BatchRow:
    info = b.app_info
    return (b.id, b.name or "", b.state.value, b.app_id or "", info.spark_ui_url or "", info.driver_log_url or "",
            b.owner or "")  # fmt: skip


def _fast_row(item: Any, state_key: str) -> BatchRow | None:
    """The row :meth:`Batch.from_json` would give ``item``, without building it, for the items it
    reads on its plain path (a dict, an int or text id, text state, a dict or no ``appInfo``, no
    times or errors: every Apache Livy list item); ``None`` for any other item. Each value goes
    through the same coercion as in ``from_json`` (a test holds the two to the same answer)."""
    if type(item) is not dict or not _EXTRA_KEYS.isdisjoint(item):
        return None
    get = item.get
    ident = get("id")
    if type(ident) is int:
        ident = str(ident)
    elif type(ident) is not str or not ident:
        return None
    raw_state = get(state_key)
    result = get("result")
    if type(raw_state) is not str or not (result is None or type(result) is str):
        return None
    try:
        state = _STATES[raw_state, result]
    except KeyError:
        state = _batch_state(raw_state, result)
    info = get("appInfo")
    if type(info) is dict:
        driver, ui = info.get("driverLogUrl"), info.get("sparkUiUrl")
    elif info is None:
        driver = ui = None
    else:
        return None
    name, owner, app = get("name"), get("owner"), get("appId")
    return (ident, "" if name is None else name if type(name) is str else str(name), state.value,
            "" if app is None else app if type(app) is str else str(app),
            "" if ui is None else ui if type(ui) is str else str(ui),
            "" if driver is None else driver if type(driver) is str else str(driver),
            "" if owner is None else owner if type(owner) is str else str(owner))  # fmt: skip


class ListedBatches(Sequence[Batch]):
    """The batches of one list answer, as a read-only sequence of :class:`Batch`.

    A list of 1,000 is mostly read as a table (the history panel, S2 in docs/benchmarks.md), where
    building 1,000 frozen models first costs more than the HTTP exchange. So an item on
    :meth:`Batch.from_json`'s plain path (every Apache Livy item) is kept with its table row and
    built into a ``Batch`` only when read (then kept); any other item is built at once, so a
    malformed answer still fails where the list is read. It compares equal to a tuple or list of
    the same batches, slices and ``+`` give tuples, and it pickles as a tuple."""

    __slots__ = ("_built", "_items", "_rows", "_state_key")

    def __init__(self, items: Sequence[Any] = (), *, state_key: str = "state") -> None:
        built: list[Batch | None] = []
        rows: list[BatchRow] = []
        for item in items:
            if isinstance(item, Batch):
                built.append(item)
                rows.append(_row(item))
                continue
            row = _fast_row(item, state_key)
            if row is None:
                batch = Batch.from_json(item, state_key=state_key)
                built.append(batch)
                row = _row(batch)
            else:
                built.append(None)
            rows.append(row)
        self._items = list(items)
        self._built = built
        self._rows = rows
        self._state_key = state_key

    def rows(self) -> list[BatchRow]:
        """Each batch's :data:`BatchRow`, in order (a new list; the rows are shared tuples)."""
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._built)

    def _at(self, index: int) -> Batch:
        batch = self._built[index]
        if batch is None:
            batch = self._built[index] = Batch.from_json(self._items[index], state_key=self._state_key)
        return batch

    @overload
    def __getitem__(self, index: int) -> Batch: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Batch, ...]: ...
    def __getitem__(self, index: int | slice) -> Batch | tuple[Batch, ...]:
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(len(self._built))))
        n = len(self._built)
        if not -n <= index < n:
            raise IndexError("batch index out of range")
        return self._at(index % n if index < 0 else index)

    def __iter__(self) -> Iterator[Batch]:
        for i in range(len(self._built)):
            yield self._at(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ListedBatches | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __add__(self, other: Sequence[Batch]) -> tuple[Batch, ...]:
        return (*self, *other)

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))

    def __repr__(self) -> str:
        return repr(tuple(self))


@dataclass(frozen=True)
class BatchList:
    """``GET /batches``: ``total`` counts every session the server knows, not just this page.
    ``batches`` is a :class:`ListedBatches` when read from a server (a tuple works too)."""

    start: int
    total: int
    batches: Sequence[Batch]

    def __repr__(self) -> str:
        # A page can hold thousands of batches: one line with counts, not every batch.
        n = len(self.batches)
        if n <= 3:
            inner = "[" + ", ".join(b.brief() for b in self.batches) + "]"
        else:
            states = Counter(b.state.value for b in self.batches).most_common()
            inner = (", ".join(f"{count} {state}" for state, count in states)
                     + f"; ids {self.batches[0].id}…{self.batches[-1].id}")
        return f"BatchList(start={self.start}, total={self.total}, {_count(n, 'batch', 'batches')}: {inner})"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchList:
        """Apache Livy's (and Synapse's) ``{from, total, sessions}``; other shapes are read by
        the client through its dialect (``LivyClient.list_batches``)."""
        data = _object(data, "batch list")
        return cls(
            start=_int(data, "from", "batch list", 0),
            total=_int(data, "total", "batch list", 0),
            batches=ListedBatches(data.get("sessions") or ()),
        )


@dataclass(frozen=True)
class LogPage:
    """``GET /batches/{id}/log``: ``total`` is the full line count (the docs say ``size``)."""

    id: str
    start: int
    total: int
    lines: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            object.__setattr__(self, "id", str(self.id))

    @property
    def end(self) -> int:
        """Offset of the line after this page: the ``from`` of the next page."""
        return self.start + len(self.lines)

    def __repr__(self) -> str:
        return f"LogPage(id={self.id}, start={self.start}, total={self.total}, lines={len(self.lines)})"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogPage:
        data = _object(data, "log page")
        lines = _lines(data.get("log"))
        # The code sends ``total``; the REST docs call it ``size``: accept both.
        total_key = "total" if "total" in data else "size"
        return cls(
            id=_id(data, "id", "log page", ""),
            start=_int(data, "from", "log page", 0),
            total=_int(data, total_key, "log page", len(lines)),
            lines=lines,
        )


@dataclass(frozen=True)
class Session:
    """An interactive session (``GET /sessions/{id}``); its id is opaque text, as a batch's is."""

    id: str
    state: BatchState
    kind: str | None = None
    name: str | None = None
    owner: str | None = None
    proxy_user: str | None = None
    app_id: str | None = None
    app_info: AppInfo = field(default_factory=AppInfo)
    log: tuple[str, ...] = ()

    @property
    def is_ready(self) -> bool:
        return self.state is BatchState.IDLE

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        data = _object(data, "session")
        return cls(
            id=_id(data, "id", "session"),
            state=BatchState.parse(data.get("state", "not_started")),
            kind=_str_or_none(data.get("kind")),
            name=_str_or_none(data.get("name")),
            owner=_str_or_none(data.get("owner")),
            proxy_user=_str_or_none(data.get("proxyUser")),
            app_id=_str_or_none(data.get("appId")),
            app_info=AppInfo.from_json(data.get("appInfo")),
            log=_lines(data.get("log")),
        )


@dataclass(frozen=True)
class SessionList:
    start: int
    total: int
    sessions: tuple[Session, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionList:
        data = _object(data, "session list")
        return cls(
            start=_int(data, "from", "session list", 0),
            total=_int(data, "total", "session list", 0),
            sessions=tuple(Session.from_json(s) for s in data.get("sessions") or ()),
        )


class StatementState(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    AVAILABLE = "available"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (StatementState.AVAILABLE, StatementState.ERROR, StatementState.CANCELLED)


@dataclass(frozen=True)
class StatementOutput:
    """Livy statement output: ``status`` ok|error, ``data`` by MIME type, or error fields."""

    status: str
    execution_count: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    ename: str | None = None
    evalue: str | None = None
    traceback: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str:
        """The ``text/plain`` result, or ``ename: evalue`` for an error."""
        if self.ok:
            return str(self.data.get("text/plain", ""))
        return f"{self.ename}: {self.evalue}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StatementOutput | None:
        if not data:
            return None
        data = _object(data, "statement output")
        count = data.get("execution_count")
        payload = data.get("data")
        return cls(
            status=str(data.get("status", "")),
            execution_count=None if count is None else _int(data, "execution_count", "statement output"),
            data=dict(payload) if isinstance(payload, Mapping) else {},
            ename=_str_or_none(data.get("ename")),
            evalue=_str_or_none(data.get("evalue")),
            traceback=_lines(data.get("traceback")),
        )


@dataclass(frozen=True)
class Statement:
    id: int
    state: StatementState
    code: str = ""
    output: StatementOutput | None = None
    progress: float = 0.0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Statement:
        data = _object(data, "statement")
        try:
            state = StatementState(str(data.get("state", "waiting")))
        except ValueError:
            state = StatementState.WAITING  # a newer Livy's state: not final, keep polling
        progress = data.get("progress")
        return cls(
            id=_int(data, "id", "statement"),
            state=state,
            code=str(data.get("code", "")),
            output=StatementOutput.from_json(data.get("output")),
            progress=float(progress) if isinstance(progress, int | float) else 0.0,
        )
