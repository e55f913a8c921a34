"""Frozen models parsed from Livy JSON (``docs/rest-api.md`` of apache/incubator-livy).

Parse at the edge: the Livy client turns every answer into one of these; nothing else in the
package indexes raw Livy dictionaries.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AppInfo",
    "Batch",
    "BatchList",
    "BatchState",
    "LogPage",
    "Session",
    "SessionList",
    "Statement",
    "StatementOutput",
    "StatementState",
    "TERMINAL_STATES",
]


class BatchState(str, enum.Enum):
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
    def parse(cls, value: str) -> BatchState:
        try:
            return cls(value)
        except ValueError:
            # An unknown state from a newer Livy must not crash a monitor; treat as not final.
            return cls.NOT_STARTED

    def __str__(self) -> str:
        return self.value


# The terminal set used by Airflow's LivyHook and the Azure samples.
TERMINAL_STATES = frozenset({BatchState.SUCCESS, BatchState.DEAD, BatchState.KILLED, BatchState.ERROR})


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class AppInfo:
    driver_log_url: str | None = None
    spark_ui_url: str | None = None
    executor_log_urls: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AppInfo:
        data = data or {}
        return cls(
            driver_log_url=_str_or_none(data.get("driverLogUrl")),
            spark_ui_url=_str_or_none(data.get("sparkUiUrl")),
            executor_log_urls=_str_or_none(data.get("executorLogUrls")),
        )


@dataclass(frozen=True)
class Batch:
    """``BatchSessionView``: the batch object returned by POST/GET ``/batches``."""

    id: int
    state: BatchState
    name: str | None = None
    owner: str | None = None
    proxy_user: str | None = None
    app_id: str | None = None
    app_info: AppInfo = field(default_factory=AppInfo)
    log: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Batch:
        return cls(
            id=int(data["id"]),
            state=BatchState.parse(str(data.get("state", "not_started"))),
            name=_str_or_none(data.get("name")),
            owner=_str_or_none(data.get("owner")),
            proxy_user=_str_or_none(data.get("proxyUser")),
            app_id=_str_or_none(data.get("appId")),
            app_info=AppInfo.from_json(data.get("appInfo")),
            log=tuple(str(line) for line in (data.get("log") or ())),
        )


@dataclass(frozen=True)
class BatchList:
    """``GET /batches``: ``total`` counts every session the server knows, not just this page."""

    start: int
    total: int
    batches: tuple[Batch, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchList:
        return cls(
            start=int(data.get("from", 0)),
            total=int(data.get("total", 0)),
            batches=tuple(Batch.from_json(s) for s in data.get("sessions") or ()),
        )


@dataclass(frozen=True)
class LogPage:
    """``GET /batches/{id}/log``: ``total`` is the full line count (the docs say ``size``)."""

    id: int
    start: int
    total: int
    lines: tuple[str, ...]

    @property
    def end(self) -> int:
        """Offset of the line after this page: the ``from`` of the next page."""
        return self.start + len(self.lines)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogPage:
        lines = tuple(str(line) for line in (data.get("log") or ()))
        return cls(
            id=int(data.get("id", -1)),
            start=int(data.get("from", 0)),
            total=int(data.get("total", data.get("size", len(lines)))),
            lines=lines,
        )


@dataclass(frozen=True)
class Session:
    """An interactive session (``GET /sessions/{id}``)."""

    id: int
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
        return cls(
            id=int(data["id"]),
            state=BatchState.parse(str(data.get("state", "not_started"))),
            kind=_str_or_none(data.get("kind")),
            name=_str_or_none(data.get("name")),
            owner=_str_or_none(data.get("owner")),
            proxy_user=_str_or_none(data.get("proxyUser")),
            app_id=_str_or_none(data.get("appId")),
            app_info=AppInfo.from_json(data.get("appInfo")),
            log=tuple(str(line) for line in (data.get("log") or ())),
        )


@dataclass(frozen=True)
class SessionList:
    start: int
    total: int
    sessions: tuple[Session, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionList:
        return cls(
            start=int(data.get("from", 0)),
            total=int(data.get("total", 0)),
            sessions=tuple(Session.from_json(s) for s in data.get("sessions") or ()),
        )


class StatementState(str, enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    AVAILABLE = "available"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (StatementState.AVAILABLE, StatementState.ERROR, StatementState.CANCELLED)

    def __str__(self) -> str:
        return self.value


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
        count = data.get("execution_count")
        return cls(
            status=str(data.get("status", "")),
            execution_count=None if count is None else int(count),
            data=dict(data.get("data") or {}),
            ename=_str_or_none(data.get("ename")),
            evalue=_str_or_none(data.get("evalue")),
            traceback=tuple(str(t) for t in (data.get("traceback") or ())),
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
        try:
            state = StatementState(str(data.get("state", "waiting")))
        except ValueError:
            state = StatementState.WAITING
        return cls(
            id=int(data["id"]),
            state=state,
            code=str(data.get("code", "")),
            output=StatementOutput.from_json(data.get("output")),
            progress=float(data.get("progress") or 0.0),
        )
