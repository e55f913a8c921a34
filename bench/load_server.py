"""A small Livy-compatible load server for the peer benchmarks (``bench/peers.py``).

Not the sandbox: no Spark, no processes, nothing but pre-made answers, so that what a client
costs per call is what is measured. Standard library only; 127.0.0.1 only.

What it serves (Apache Livy's REST shapes, PROTOCOL.md §2):

- ``GET /batches?from=&size=`` (``{"from", "total", "sessions"}``; Livy's default size is 100 and
  it has no upper limit), ``GET /batches/{id}``, ``GET /batches/{id}/state``;
- ``GET /batches/{id}/log?from=&size=``: Livy's view as ``serializeLogs`` builds it (no ``from``:
  the last ``size`` lines; ``size`` < 0: everything), ``["stdout: ", *stdout, "\\nstderr: ",
  *stderr]`` where each queue keeps only the last ``--cache-log-size`` (200) lines;
- ``GET /node/containerlogs/container_<id>/livy/{stdout,stderr}/?start=&end=``: the driver's
  files as NodeManager's ``ContainerLogsPage`` shows them (HTML, the byte range HTML-escaped in a
  ``<pre>``, "Log Length: N"), which is what ``appInfo.driverLogUrl`` leads to and what
  ``logview.DriverLogReader`` reads.

Batches: ``--batches`` pre-made ones, ids ``0..N-1``, in deterministic states; each driver log has
``--small-lines`` numbered lines except batch ``--big-id``'s, which has ``--big-lines`` (S3).
Two growing batches, ``9000`` "grow-view" (Livy's view only, as a local/process-shape batch) and
``9001`` "grow-driver" (a YARN batch: the driver's lines only in its driver log), print ``lines`` lines
evenly over ``seconds`` from ``POST /_load/grow`` on, then end ``success`` (S4).

Knobs and counters (``/_load/`` requests are not counted): ``POST /_load/config`` with
``{"latency_ms": 2, "fault_every": 10, "fault_status": 503}`` (every 10th counted request answers
503 with ``Retry-After: 0``); ``GET /_load/stats`` → ``{"requests", "bytes", "by_route", "windows"}``
(bytes are response bodies; ``windows``: for each read of batch 9000's log, the first and last
numbered line its view held then); ``DELETE /_load/stats`` resets them.

Run: ``python bench/load_server.py --port 0`` prints one JSON line ``{"url": ..., "pid": ...}``
once it listens, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATES = ("success", "dead", "running", "success", "killed", "success", "starting", "success")
GROWING = ("9000", "9001")  # numeric ids: LivyHook takes only integers
NAMES = {"9000": "grow-view", "9001": "grow-driver"}
_DRIVER = re.compile(r"^/node/containerlogs/container_([\w-]+)/livy/(stdout|stderr)/?$")
_BATCH = re.compile(r"^/batches/([\w-]+)(/state|/log)?$")


def line_text(batch: str, stream: str, k: int) -> str:
    """Line ``k`` (from 1) of a batch's stream, as log4j prints it: the same bytes every run."""
    return f"26/12/02 10:00:00 INFO LoadApp: {batch} {stream} line {k:07d} of the deterministic load log"


def file_bytes(batch: str, stream: str, count: int) -> bytes:
    return "".join(line_text(batch, stream, k) + "\n" for k in range(1, count + 1)).encode("utf-8")


@dataclass
class Growing:
    """A batch printing ``lines`` lines evenly over ``seconds`` from ``started``."""

    lines: int = 100_000
    seconds: float = 20.0
    started: float | None = None

    def printed(self) -> int:
        if self.started is None:
            return 0
        done = (time.monotonic() - self.started) / self.seconds
        return min(self.lines, int(done * self.lines))

    def state(self) -> str:
        if self.started is None:
            return "starting"
        return "success" if self.printed() >= self.lines else "running"


@dataclass
class Load:
    batches: int
    big_id: str
    big_lines: int
    small_lines: int
    cache_log_size: int
    base: str = ""
    latency_ms: float = 0.0
    fault_every: int = 0
    fault_status: int = 503
    requests: int = 0
    bytes: int = 0
    by_route: dict[str, int] = field(default_factory=dict)
    windows: list[tuple[int, int]] = field(default_factory=list)  # grow-view lines in the view per read
    growing: dict[str, Growing] = field(default_factory=lambda: {k: Growing() for k in GROWING})
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    tails: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def file(self, batch: str, stream: str) -> bytes:
        """The bytes of a driver file now (a growing batch's grows; the others are made once)."""
        grow = self.growing.get(batch)
        if grow is not None:
            if batch != "9001" or stream != "stdout":
                return b""
            data = self.files.get((batch, stream))
            if data is None or data.count(b"\n") != grow.lines:  # made once per growth, served cut
                data = self.files[(batch, stream)] = file_bytes(batch, stream, grow.lines)
            return data[: _offset_of_line(data, grow.printed())]
        key = (batch, stream)
        if key not in self.files:
            count = self.big_lines if batch == self.big_id else self.small_lines
            self.files[key] = file_bytes(batch, stream, count if stream == "stdout" else 3)
        return self.files[key]

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        grow = self.growing.get(batch_id)
        if grow is not None:
            state, app = grow.state(), f"application_1764669600000_{batch_id}"
        elif batch_id.isdigit() and int(batch_id) < self.batches:
            state, app = STATES[int(batch_id) % len(STATES)], f"application_1764669600000_{int(batch_id):04d}"
        else:
            return None
        driver = None if batch_id == "9000" else f"{self.base}/node/containerlogs/container_{batch_id}/livy"
        return {
            "id": int(batch_id) if batch_id.isdigit() else batch_id,
            "name": NAMES.get(batch_id, f"load-{batch_id}"), "owner": "bench", "proxyUser": None, "state": state,
            "appId": app,
            "appInfo": {"driverLogUrl": driver, "sparkUiUrl": f"{self.base}/ui/{app}"}, "queue": None,
            "log": self.list_log(batch_id) if grow is None else [],
        }  # fmt: skip

    def list_log(self, batch_id: str) -> list[str]:
        """The last 10 log lines a batch object carries, in a list too: Apache Livy's
        ``BatchSessionServlet.clientSessionView`` (apache/livy master) puts the last 10 of
        ``logLines()`` into every batch object it answers, a list's too (for a user allowed to view
        it), so a list of 1,000 carries 10,000 lines."""
        tail = self.tails.get(batch_id)
        if tail is None:
            n = self.big_lines if batch_id == self.big_id else self.small_lines
            tail = self.tails[batch_id] = [line_text(batch_id, "stdout", k) for k in range(max(1, n - 9), n + 1)]
        return tail

    def view(self, batch_id: str, printed: int = 0) -> list[str]:
        """Livy's log view when ``printed`` lines were printed: the last ``cache_log_size`` lines of
        each spark-submit stream."""
        grow = self.growing.get(batch_id)
        if grow is not None and batch_id == "9000":
            n = printed
            out = [line_text(batch_id, "stdout", k) for k in range(max(1, n - self.cache_log_size + 1), n + 1)]
        else:
            # A YARN batch's launcher output (spark-submit polling the application report).
            n = 3 if grow is None else min(3, printed)
            out = [f"26/12/02 10:00:0{k} INFO Client: Application report (state: RUNNING)" for k in range(n)]
        return ["stdout: ", *out, "\nstderr: "]


def _offset_of_line(data: bytes, n: int) -> int:
    """Byte offset just past line ``n`` of ``data`` (all lines have the same length here)."""
    if n <= 0:
        return 0
    first = data.find(b"\n") + 1
    return min(len(data), first * n)


def _int(query: dict[str, list[str]], key: str, default: int | None) -> int | None:
    values = query.get(key)
    return int(values[0]) if values else default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real Livy (Jetty) answers
    # One write per answer (headers and body buffered, flushed by handle_one_request) and no
    # Nagle: otherwise a small body waits for the client's delayed ACK (40 ms per call).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: LoadHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json", counted: bool = True,
              route: str = "") -> None:  # fmt: skip
        load = self.server.load
        if counted:
            with load.lock:
                load.requests += 1
                load.bytes += len(body)
                load.by_route[route] = load.by_route.get(route, 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, route: str, counted: bool = True) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), counted=counted, route=route)

    def _control(self, method: str, path: str) -> None:
        load = self.server.load
        if path == "/_load/stats" and method == "GET":
            with load.lock:
                stats = {
                    "requests": load.requests,
                    "bytes": load.bytes,
                    "by_route": dict(load.by_route),
                    "windows": list(load.windows),
                }
            self._json(200, stats, "", counted=False)
        elif path == "/_load/stats" and method == "DELETE":
            with load.lock:
                load.requests, load.bytes, load.by_route, load.windows = 0, 0, {}, []
            self._json(200, {}, "", counted=False)
        elif path == "/_load/config" and method == "POST":
            body = self._body()
            load.latency_ms = float(body.get("latency_ms", load.latency_ms))
            load.fault_every = int(body.get("fault_every", load.fault_every))
            load.fault_status = int(body.get("fault_status", load.fault_status))
            self._json(200, {}, "", counted=False)
        elif path == "/_load/grow" and method == "POST":
            body = self._body()
            for key in body.get("batches", GROWING):
                load.growing[key] = Growing(int(body.get("lines", 100_000)), float(body.get("seconds", 20.0)),
                                            time.monotonic())  # fmt: skip
                load.file(key, "stdout")  # made now, not during the first timed read
            self._json(200, {}, "", counted=False)
        else:
            self._json(404, {"msg": f"no control {method} {path}"}, "", counted=False)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}") if length else {}
        return data if isinstance(data, dict) else {}

    def _faulted(self) -> bool:
        load = self.server.load
        if load.latency_ms:
            time.sleep(load.latency_ms / 1000)
        if load.fault_every:
            with load.lock:
                hit = (load.requests + 1) % load.fault_every == 0
            if hit:
                self._json(load.fault_status, {"msg": "injected fault"}, "fault")
                return True
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/_load/"):
            return self._control("GET", path)
        if self._faulted():
            return None
        load = self.server.load
        if path in ("/batches", "/batches/"):
            start = _int(query, "from", 0) or 0
            size = _int(query, "size", 100)
            size = load.batches if size is None or size < 0 else size
            ids = [str(i) for i in range(start, min(load.batches, start + size))]
            sessions = [load.batch(i) for i in ids]
            return self._json(200, {"from": start, "total": load.batches, "sessions": sessions}, "list")
        match = _BATCH.match(path)
        if match:
            batch_id, tail = match.group(1), match.group(2)
            batch = load.batch(batch_id)
            if batch is None:
                return self._json(404, {"msg": f"Session '{batch_id}' not found."}, "missing")
            if tail == "/state":
                return self._json(200, {"id": batch["id"], "state": batch["state"]}, "state")
            if tail == "/log":
                grow = load.growing.get(batch_id)
                n = grow.printed() if grow is not None else 0
                view = load.view(batch_id, n)
                if batch_id == "9000":  # which numbered lines the server still had at this read
                    with load.lock:
                        load.windows.append((max(1, n - load.cache_log_size + 1), n))
                size = _int(query, "size", 100)
                begin = _int(query, "from", None)
                if size is None or size < 0:
                    begin, size = 0, len(view)
                elif begin is None or begin < 0:
                    begin = max(0, len(view) - size)
                lines = view[begin : begin + size]
                return self._json(200, {"id": batch["id"], "from": begin, "total": len(view), "log": lines}, "log")
            return self._json(200, batch, "batch")
        match = _DRIVER.match(path)
        if match and load.batch(match.group(1)) is not None:
            return self._driver_page(match.group(1), match.group(2), query)
        return self._send(404, b"<html><body>Not Found</body></html>", "text/html", route="missing")

    def _driver_page(self, batch_id: str, name: str, query: dict[str, list[str]]) -> None:
        data = self.server.load.file(batch_id, name)
        length = len(data)
        start = _int(query, "start", -4096) or 0
        end = _int(query, "end", None)
        start = max(0, length + start) if start < 0 else min(start, length)
        stop = length if end is None else (max(0, length + end) if end < 0 else min(end, length))
        part = data[start : max(start, stop)]
        text = html.escape(part.decode("utf-8", errors="replace"), quote=False)
        page = (
            '<!DOCTYPE html>\n<html><head><meta http-equiv="Content-type" content="text/html; charset=UTF-8">'
            f"<title>Logs for container_{batch_id}</title></head><body>\n<p>Log Type: {name}</p>"
            f"<p>Log Length: {length}</p>\n<pre>{text}</pre>\n</body></html>\n"
        )
        self._send(200, page.encode("utf-8"), "text/html; charset=utf-8", route="driver")

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path.startswith("/_load/"):
            return self._control("POST", path)
        self._body()
        return self._json(405, {"msg": "the load server takes no batches"}, "refused")

    def do_DELETE(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path.startswith("/_load/"):
            return self._control("DELETE", path)
        return self._json(405, {"msg": "the load server kills nothing"}, "refused")


class LoadHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, load: Load, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.load = load
        load.base = f"http://127.0.0.1:{self.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--big-id", default="7")
    parser.add_argument("--big-lines", type=int, default=1_000_000)
    parser.add_argument("--small-lines", type=int, default=10)
    parser.add_argument("--cache-log-size", type=int, default=200)
    args = parser.parse_args(argv)
    load = Load(args.batches, args.big_id, args.big_lines, args.small_lines, args.cache_log_size)
    server = LoadHTTPServer(load, args.port)
    load.file(args.big_id, "stdout")  # made before the first request, not during a timed one
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(json.dumps({"url": load.base, "pid": os.getpid()}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
