"""A loopback Livy for the notebook-responsiveness benchmark: many running batches whose logs grow.

Not the sandbox (no Spark, no processes) and not ``bench/load_server.py`` (fixed answers for the
peer benchmarks): ``--batches`` batches that all run at once, each printing ``--lines-per-second``
lines on stdout, so a watcher that reads every log has work to do and a request costs what it
costs. Standard library plus the sandbox's model of Livy's log (``sandbox.logbuf.LogBuffer``: two
bounded queues, the view rebuilt per request). 127.0.0.1 only.

Serves Apache Livy's shapes (PROTOCOL.md §2): ``GET /batches?from=&size=`` (oldest first, no
page limit), ``GET /batches/{id}``, ``GET /batches/{id}/state``, ``GET /batches/{id}/log?from=&size=``.

Control (not counted): ``GET /_poll/stats`` -> ``{"requests", "by_route", "since", "ended_at"}``;
``DELETE /_poll/stats`` resets the counts; ``POST /_poll/end`` ends every batch now (even ids
``success``, odd ids ``dead`` after printing ``ERROR_LINE``) and says when (``time.time()``);
``POST /_poll/reset`` makes every batch running again with a fresh log.

Run: ``python bench/poll_server.py --batches 50`` prints ``{"url": ..., "pid": ...}`` once it
listens, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hdiaks_widgets.sandbox.logbuf import LogBuffer

ERROR_LINE = 'Exception in thread "main" java.lang.IllegalStateException: poll-bench failure in batch {id}'
_BATCH = re.compile(r"^/batches/(\d+)(/state|/log)?$")


class Batches:
    """The batches and their logs; a thread prints their lines."""

    def __init__(self, count: int, rate: float) -> None:
        self.count = count
        self.rate = rate
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.since = time.time()
        self.ended_at: float | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.states = ["running"] * self.count
            self.logs = [LogBuffer() for _ in range(self.count)]
            self.printed = [0] * self.count
            self.ended_at = None

    def end(self) -> float:
        with self.lock:
            for i in range(self.count):
                if i % 2:
                    self.logs[i].append("stderr", ERROR_LINE.format(id=i))
                self.states[i] = "dead" if i % 2 else "success"
            self.ended_at = time.time()
            return self.ended_at

    def tick(self, stop: threading.Event) -> None:
        started = time.monotonic()
        while not stop.wait(0.1):
            due = int((time.monotonic() - started) * self.rate)
            with self.lock:
                for i in range(self.count):
                    if self.states[i] != "running":
                        continue
                    while self.printed[i] < due:
                        self.printed[i] += 1
                        line = f"26/12/02 10:00:00 INFO PollBench: batch {i} line {self.printed[i]}"
                        self.logs[i].append("stdout", line)

    def view(self, i: int) -> dict[str, Any]:
        return {"id": i, "name": f"poll-bench-{i}", "owner": None, "proxyUser": None, "state": self.states[i],
                "appId": f"local-{i}", "appInfo": {"driverLogUrl": None, "sparkUiUrl": None},
                "log": self.logs[i].tail(10)}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    server: PollHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: without TCP_NODELAY the client's delayed ACK adds
    # ~40 ms to every answer, which a serial poller would measure instead of itself.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _json(self, status: int, data: Any, route: str | None) -> None:
        body = json.dumps(data).encode()
        if route is not None:
            with self.server.batches.lock:
                self.server.batches.requests[route] += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        b = self.server.batches
        if parts.path == "/_poll/stats":
            with b.lock:
                data = {"requests": sum(b.requests.values()), "by_route": dict(b.requests), "since": b.since,
                        "ended_at": b.ended_at}  # fmt: skip
            self._json(200, data, None)
            return
        if parts.path == "/batches":
            start = int(query.get("from", ["0"])[0])
            size = int(query.get("size", ["100"])[0])
            with b.lock:
                rows = [b.view(i) for i in range(start, min(b.count, start + size))]
            self._json(200, {"from": start, "total": b.count, "sessions": rows}, "GET /batches")
            return
        match = _BATCH.match(parts.path)
        if match is None or int(match.group(1)) >= b.count:
            self._json(404, {"msg": f"Session '{parts.path}' not found."}, "GET 404")
            return
        i, rest = int(match.group(1)), match.group(2) or ""
        with b.lock:
            if rest == "/state":
                data = {"id": i, "state": b.states[i]}
            elif rest == "/log":
                size = int(query.get("size", ["100"])[0])
                first = int(query["from"][0]) if "from" in query else None
                data = b.logs[i].page_json(i, first, size)
            else:
                data = b.view(i)
        self._json(200, data, f"GET /batches/{{id}}{rest}")

    def do_POST(self) -> None:  # noqa: N802
        b = self.server.batches
        if self.path == "/_poll/end":
            self._json(200, {"ended_at": b.end()}, None)
        elif self.path == "/_poll/reset":
            b.reset()
            self._json(200, {"reset": True}, None)
        else:
            self._json(404, {"msg": "no such route"}, None)

    def do_DELETE(self) -> None:  # noqa: N802
        b = self.server.batches
        if self.path == "/_poll/stats":
            with b.lock:
                b.requests.clear()
                b.since = time.time()
            self._json(200, {"reset": True}, None)
        else:
            self._json(404, {"msg": "no such route"}, None)


class PollHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, batches: Batches, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.batches = batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--lines-per-second", type=float, default=2.0)
    args = parser.parse_args(argv)
    batches = Batches(args.batches, args.lines_per_second)
    server = PollHTTPServer(batches, args.port)
    stop = threading.Event()
    printer = threading.Thread(target=batches.tick, args=(stop,), daemon=True)
    printer.start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    port = server.server_address[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
