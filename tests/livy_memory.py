"""Two small fakes for the client's decision logic: ``FakeLivy`` scripts the answers of the poll
step, and ``MemoryLivy`` is Apache Livy's batch routes in memory behind a ``requests`` adapter.

Not a stand-in for the sandbox (which runs real Spark over real sockets): it exists so the
decisions of ``LivyClient`` and ``BatchRun`` — ambiguous POSTs, name checks, reused ids,
transient failures — can be driven step by step and counted exactly, without Flask or Spark.
Mount it on a ``requests.Session`` and pass that session to ``LivyClient``.

A batch added with ``buffer=LogBuffer(...)`` (the sandbox's model of Livy's log: two evicting
queues, the view rebuilt per request, ``["stdout: ", *out, "\nstderr: ", *err]``) serves its
``/log`` from it, as real Livy does; with ``buffer.driver_files`` set, ``driverLogUrl`` leads to
NodeManager-style byte-range pages of those files (or to ``driver_log_url`` when given).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter

from hdiaks_widgets.errors import BatchNotFound
from hdiaks_widgets.models import Batch, BatchState, LogPage
from hdiaks_widgets.sandbox.logbuf import LogBuffer
from hdiaks_widgets.sandbox.nodemanager import DEFAULT_START, file_page

BASE_URL = "http://livy.test"


@dataclass
class MemBatch:
    id: int
    name: str
    state: str = "starting"
    log: list[str] = field(default_factory=list)
    buffer: LogBuffer | None = None  # Livy's real log view; ``log`` is used when there is none
    driver_log_url: str | None = None  # overrides the NodeManager URL of ``buffer.driver_files``

    @property
    def container(self) -> str:
        return f"container_{self.id:06d}"

    def driver_url(self) -> str | None:
        if self.driver_log_url is not None:
            return self.driver_log_url
        if self.buffer is not None and self.buffer.driver_files is not None:
            return f"{BASE_URL}/node/containerlogs/{self.container}/livy"
        return None

    def view(self) -> dict[str, Any]:
        tail = self.buffer.tail(10) if self.buffer is not None else self.log[-10:]
        return {"id": self.id, "name": self.name, "state": self.state, "appId": f"app-{self.id}",
                "appInfo": {"driverLogUrl": self.driver_url(), "sparkUiUrl": None}, "log": tail}


class MemoryLivy(BaseAdapter):
    """Apache Livy's batch routes, in memory. ``faults`` hooks run before each request is handled:
    a hook returns a response to send instead, raises to drop the connection, or returns None."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[int, MemBatch] = {}
        self.next_id = 0
        self.requests: list[tuple[str, str]] = []  # (method, path?query) in arrival order
        self.before: list[Callable[[requests.PreparedRequest], requests.Response | None]] = []
        self.after_post: list[Callable[[MemBatch], None]] = []  # e.g. drop the answer
        self.version: str | None = "0.8.0-incubating"  # GET /version; None: 404 (older or not Livy)

    # -- helpers for tests -------------------------------------------------------------------

    def add(self, name: str, state: str = "running", lines: tuple[str, ...] = (), *,
            buffer: LogBuffer | None = None, driver_log_url: str | None = None) -> MemBatch:
        batch = MemBatch(self.next_id, name, state, list(lines), buffer, driver_log_url)
        self.batches[batch.id] = batch
        self.next_id += 1
        return batch

    def restart(self) -> None:
        """A Livy restart without recovery: every batch forgotten, ids start at 0 again."""
        self.batches.clear()
        self.next_id = 0

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.split("?")[0] == path)

    # -- transport -----------------------------------------------------------------------------

    def close(self) -> None:
        pass

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        self.requests.append((request.method or "", parts.path + (f"?{parts.query}" if parts.query else "")))
        for hook in list(self.before):
            answer = hook(request)
            if answer is not None:
                return answer
        return self._handle(request, parts.path, parse_qs(parts.query))

    def _handle(self, request: requests.PreparedRequest, path: str, query: dict[str, list[str]]) -> requests.Response:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        method = request.method
        if segments[:2] == ["node", "containerlogs"] and len(segments) == 5 and method == "GET":
            return self._container_log(request, segments[2], segments[4], query)
        if segments == ["version"] and method == "GET":
            if self.version is None:
                return respond(request, 404, {"msg": "no such route"})
            return respond(request, 200, {"version": self.version, "revision": "memory"})
        if segments == ["batches"] and method == "GET":
            start = int(query.get("from", ["0"])[0])
            size = int(query.get("size", ["100"])[0])
            rows = sorted(self.batches.values(), key=lambda b: b.id)
            return respond(request, 200, {"from": start, "total": len(rows),
                                          "sessions": [b.view() for b in rows[start:start + size]]})
        if segments == ["batches"] and method == "POST":
            body = json.loads(request.body or b"{}")
            name = body.get("name")
            if any(b.name == name for b in self.batches.values()):
                return respond(request, 400, {"msg": f"Rejected, Reason: Duplicate session name: Some({name})"})
            batch = self.add(name, "starting")
            for hook in list(self.after_post):
                hook(batch)
            return respond(request, 201, batch.view())
        if len(segments) >= 2 and segments[0] == "batches":
            batch = self._lookup(segments[1])
            if batch is None:
                return respond(request, 404, {"msg": f"Session '{segments[1]}' not found."})
            rest = segments[2:]
            if method == "DELETE" and not rest:
                del self.batches[batch.id]
                return respond(request, 200, {"msg": "deleted"})
            if rest == ["state"]:
                return respond(request, 200, {"id": batch.id, "state": batch.state})
            if rest == ["log"] and batch.buffer is not None:
                size = int(query.get("size", ["100"])[0])
                first = int(query["from"][0]) if "from" in query else None  # absent: the tail (Livy)
                return respond(request, 200, batch.buffer.page_json(batch.id, first, size))
            if rest == ["log"]:
                size = int(query.get("size", ["100"])[0])
                total = len(batch.log)
                start = int(query["from"][0]) if "from" in query else max(0, total - size)
                lines = batch.log[start:] if size < 0 else batch.log[start:start + size]
                return respond(request, 200, {"id": batch.id, "from": start, "total": total, "log": lines})
            if not rest:
                return respond(request, 200, batch.view())
        return respond(request, 404, {"msg": "no such route"})

    def _container_log(self, request: requests.PreparedRequest, container: str, name: str,
                       query: dict[str, list[str]]) -> requests.Response:
        """NodeManager's ``ContainerLogsPage`` for one file: HTML, a byte range in a ``<pre>``."""
        batch = next((b for b in self.batches.values() if b.container == container), None)
        files = batch.buffer.driver_files if batch is not None and batch.buffer is not None else None
        if files is None or name not in ("stdout", "stderr"):
            return respond(request, 404, {"msg": "no such container log"})
        start = int(query.get("start", [str(DEFAULT_START)])[0])
        end = int(query["end"][0]) if "end" in query else None
        base = f"{BASE_URL}/node/containerlogs/{container}/livy"
        return respond_text(request, 200, file_page(container, name, files, base, start, end))

    def _lookup(self, key: str) -> MemBatch | None:
        if key.isdigit():
            return self.batches.get(int(key))
        return next((b for b in self.batches.values() if b.name == key), None)


def respond(request: requests.PreparedRequest, status: int, data: Any,
            headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(data).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.request = request
    response.url = request.url or ""
    return response


def respond_text(request: requests.PreparedRequest, status: int, text: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = text.encode("utf-8")
    response.encoding = "utf-8"
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.request = request
    response.url = request.url or ""
    return response


def memory_session(livy: MemoryLivy) -> requests.Session:
    session = requests.Session()
    session.mount(BASE_URL, livy)
    return session


class FakeLivy:
    """Answers get_batch/get_log from a script: one state per get_batch call, log grows with it."""

    def __init__(
        self,
        states: Sequence[str],
        *,
        lines_per_poll: int = 3,
        fail: dict[int, BaseException] | None = None,
        final_lines: Sequence[str] = (),
        name: str = "job",
    ) -> None:
        self.states = list(states)
        self.lines_per_poll = lines_per_poll
        self.fail = fail or {}
        self.final_lines = list(final_lines)
        self.name = name
        self.calls = 0
        self.log: list[str] = []
        self.log_requests: list[tuple[int | None, int]] = []
        self.served: list[str] = []

    def get_batch(self, batch_id: int | str) -> Batch:
        self.calls += 1
        if self.calls in self.fail:
            raise self.fail[self.calls]
        state = self.states[min(self.calls, len(self.states)) - 1]
        if state == "404":
            raise BatchNotFound(batch_id, '{"msg":"Session not found."}')
        base = len(self.log)
        self.log.extend([f"line {base + i}" for i in range(self.lines_per_poll)])
        if BatchState(state).is_terminal and self.final_lines:
            self.log.extend(self.final_lines)
            self.final_lines = []
        return Batch(id=str(batch_id), state=BatchState(state), name=self.name, app_id="local-1")

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        self.log_requests.append((start, size))
        first = max(0, len(self.log) - size) if start is None else start
        lines = tuple(self.log[first : first + size])
        self.served.extend(lines)
        return LogPage(id=str(batch_id), start=first, total=len(self.log), lines=lines)
