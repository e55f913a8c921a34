"""How long ``LivyClient`` takes to fail, and what it says, when there is no usable Livy server.

Run with ``.venv/bin/python bench/failure_paths.py`` (``--runs N``, ``--read-timeout S``). Four
cases, each a real ``LivyClient`` with its default ``RetryPolicy`` calling ``list_batches()``:

- ``refused``: a loopback port nobody listens on (bound, then released);
- ``dns``: ``http://nohost.invalid:8998`` (``.invalid`` never resolves, RFC 6761: nothing is sent);
- ``hung``: a loopback server that accepts every connection and never answers, with the stated
  read timeout (``--read-timeout``, default 2 s; the profile default is 60 s);
- ``503 Retry-After``: a loopback server answering every request ``503`` with ``Retry-After: 5``.

Each case prints the median wall time of ``--runs`` calls, the connections the server accepted on
the last call (loopback servers only) and the first 160 characters of the error message, as a
Markdown table. Measurements, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.livy import LivyClient

ROOT = Path(__file__).resolve().parent.parent
# The hung and 503 servers are the tests' own (tests/servers.py, standard library only), so what is
# measured here is what tests/test_diagnoses.py asserts against.
sys.path.insert(0, str(ROOT / "tests"))
from servers import Listener  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Case:
    name: str
    stated: str
    seconds: list[float]
    connections: int | None
    message: str


def _fail_once(url: str, timeout: tuple[float, float]) -> tuple[float, str]:
    started = time.monotonic()
    try:
        with LivyClient(url, timeout=timeout) as client:
            client.list_batches()
    except HdiaksError as exc:
        return time.monotonic() - started, str(exc)
    return time.monotonic() - started, "(no error)"


def _measure(name: str, stated: str, runs: int, url: Callable[[], str], timeout: tuple[float, float],
             server: Listener | None = None) -> Case:
    seconds: list[float] = []
    message = ""
    before = 0
    for _ in range(runs):
        before = server.connections if server is not None else 0
        took, message = _fail_once(url(), timeout)
        seconds.append(took)
    connections = None if server is None else server.connections - before
    return Case(name, stated, seconds, connections, message)


_UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\n"
                b"Content-Length: 22\r\nConnection: close\r\n\r\n{\"msg\": \"restarting\"}\n")


def run_cases(runs: int, read_timeout: float) -> list[Case]:
    default = (10.0, 60.0)
    cases = [
        _measure("refused", "connect 10 s, read 60 s (defaults)", runs, lambda: f"http://127.0.0.1:{_closed_port()}",
                 default),
        _measure("dns (`nohost.invalid`)", "connect 10 s, read 60 s (defaults)", runs,
                 lambda: "http://nohost.invalid:8998", default),
    ]
    with Listener(None) as hung:
        cases.append(_measure("hung (accepts, never answers)", f"read {read_timeout:g} s", runs,
                              lambda: hung.url, (10.0, read_timeout), hung))
    with Listener(_UNAVAILABLE) as busy:
        cases.append(_measure("503 with Retry-After: 5", f"read {read_timeout:g} s", runs,
                              lambda: busy.url, (10.0, read_timeout), busy))
    return cases


def render(cases: list[Case], runs: int, read_timeout: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()  # fmt: skip
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Command: `.venv/bin/python bench/failure_paths.py --runs {runs} --read-timeout {read_timeout:g}` "
        f"({when}; HEAD {commit or '?'}; "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; {sys.platform}).",
        "",
        "| case | timeout given | median s (of runs) | connections seen | message (first 160 characters) |",
        "|---|---|---|---|---|",
    ]
    for case in cases:
        median = statistics.median(case.seconds)
        conns = "–" if case.connections is None else str(case.connections)
        text = " ".join(case.message.split())[:160].replace("|", "\\|")
        lines.append(f"| {case.name} | {case.stated} | {median:.3f} ({len(case.seconds)}) | {conns} | {text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="calls per case (median reported)")
    parser.add_argument("--read-timeout", type=float, default=2.0, help="read timeout for the hung/503 cases")
    args = parser.parse_args(argv)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ.pop(var, None)  # loopback and .invalid only: never through a proxy
    print(render(run_cases(args.runs, args.read_timeout), args.runs, args.read_timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
