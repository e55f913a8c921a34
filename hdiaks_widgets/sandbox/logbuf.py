"""The log of one batch or session, served the way Apache Livy really serves it.

Livy reads spark-submit's stdout and stderr into two evicting queues of ``livy.cache-log.size``
lines each (default 200; ``LineBufferedStream.scala``) and rebuilds the ``/log`` view from them
on every request, in the shape of the backend (PROTOCOL.md §2.7):

- ``process`` (local mode, ``SparkProcApp``): ``["stdout: ", *stdout_tail, "\\nstderr: ", *stderr_tail]``;
- ``yarn`` (``SparkYarnApp``): the same, then ``"\\nYARN Diagnostics: "`` and the diagnostics
  lines. In cluster mode the driver's own output is not in this view: it is in the container's
  log files (:class:`DriverFiles`), which NodeManager serves by byte range at ``driverLogUrl``;
- ``kubernetes`` (``SparkKubernetesApp``): ``["stdout: ", *driver_pod_log_tail, "\\nstderr: ",
  *spark_submit_stdout, *spark_submit_stderr, "\\nKubernetes Diagnostics: ", *diagnostics]``,
  where the pod log tail is the last ``cache-log.size`` lines of the driver's merged output.

Once a queue is full, ``total`` stops growing while the content keeps rotating, and every new
stdout line shifts the offsets of all stderr lines: an offset-based tail is wrong on this view.
``append`` keeps the sandbox's old unbounded, append-only log (a header line whenever the stream
changes, offsets never move); it exists only for tests that need exact offsets.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any, Literal, get_args

__all__ = [
    "DEFAULT_CACHE_LOG_SIZE",
    "K8S_HEADER",
    "LOG_SHAPES",
    "STDERR_HEADER",
    "STDOUT_HEADER",
    "YARN_HEADER",
    "DriverFiles",
    "LogBuffer",
    "LogShape",
    "Stream",
]

Stream = Literal["stdout", "stderr"]
LogShape = Literal["process", "yarn", "kubernetes", "append"]
LOG_SHAPES: tuple[str, ...] = get_args(LogShape)
DEFAULT_CACHE_LOG_SIZE = 200  # livy.cache-log.size

STDOUT_HEADER = "stdout: "
STDERR_HEADER = "\nstderr: "
YARN_HEADER = "\nYARN Diagnostics: "
K8S_HEADER = "\nKubernetes Diagnostics: "
# The append shape's stream headers (one whenever the stream changes).
_APPEND_HEADERS: dict[str, str] = {"stdout": "stdout: ", "stderr": "stderr: "}


class DriverFiles:
    """The driver's own ``stdout``/``stderr`` files (a YARN container's log directory).

    The sandbox writes them when it plays the cluster (``write``) or points at the files a Spark
    standalone worker wrote for a cluster-mode driver (read only).
    """

    def __init__(self, directory: Path, *, writable: bool = True) -> None:
        self.directory = directory
        self.writable = writable
        self._lock = threading.Lock()
        if writable:
            directory.mkdir(parents=True, exist_ok=True)
            for name in ("stdout", "stderr"):
                (directory / name).touch()

    def path(self, name: str) -> Path | None:
        if name not in ("stdout", "stderr"):
            return None
        return self.directory / name

    def write(self, stream: Stream, line: str) -> None:
        with self._lock, open(self.directory / stream, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(line + "\n")

    def size(self, name: str) -> int:
        path = self.path(name)
        try:
            return path.stat().st_size if path is not None else 0
        except OSError:
            return 0

    def read(self, name: str, start: int, end: int | None) -> tuple[bytes, int, int]:
        """Bytes ``[start, end)`` like NodeManager's log page: negative = from the end.

        Returns ``(data, first byte, file length)``.
        """
        path = self.path(name)
        length = self.size(name)
        first = length + start if start < 0 else start
        last = length if end is None else (length + end if end < 0 else end)
        first = max(0, min(first, length))
        last = max(first, min(last, length))
        if path is None or last <= first:
            return b"", first, length
        with open(path, "rb") as fh:
            fh.seek(first)
            return fh.read(last - first), first, length


class LogBuffer:
    """One batch's (or session's) log: spark-submit's two bounded streams, the driver's own output
    where the shape keeps it apart, diagnostics, and Livy's view of them rebuilt per request."""

    def __init__(self, shape: str = "process", cache_size: int = DEFAULT_CACHE_LOG_SIZE) -> None:
        if shape not in LOG_SHAPES:
            raise ValueError(f"log shape must be one of {', '.join(LOG_SHAPES)}, not {shape!r}")
        self.shape = shape
        self.cache_size = max(1, int(cache_size))
        self._out: deque[str] = deque(maxlen=self.cache_size)
        self._err: deque[str] = deque(maxlen=self.cache_size)
        self._pod: deque[str] = deque(maxlen=self.cache_size)  # kubernetes: the driver pod's log tail
        self._append: list[str] = []
        self._append_stream: str | None = None
        self._diagnostics: list[str] = []
        self.driver_files: DriverFiles | None = None
        self.printed = {"stdout": 0, "stderr": 0, "driver": 0}  # for tests: what was really printed
        self.started = False  # Livy's logLines() is empty until the application exists
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.started = True

    # -- writing --------------------------------------------------------------------------------

    def append(self, stream: Stream, line: str) -> None:
        """A line spark-submit printed on ``stream`` (what Livy's two queues read)."""
        with self._lock:
            self.started = True
            self.printed[stream] += 1
            if self.shape == "append":
                if stream != self._append_stream:
                    self._append.append(_APPEND_HEADERS[stream])
                    self._append_stream = stream
                self._append.append(line)
            else:
                (self._out if stream == "stdout" else self._err).append(line)

    def driver(self, stream: Stream, line: str) -> None:
        """A line the driver printed where the shape keeps the driver apart from spark-submit
        (YARN container files, the Kubernetes driver pod's log)."""
        with self._lock:
            self.printed["driver"] += 1
            if self.shape == "kubernetes":
                self._pod.append(line)
        if self.driver_files is not None and self.driver_files.writable:
            self.driver_files.write(stream, line)

    def set_diagnostics(self, lines: list[str]) -> None:
        with self._lock:
            self._diagnostics = [part for text in lines for part in str(text).split("\n")]

    # -- reading --------------------------------------------------------------------------------

    def view(self) -> list[str]:
        """Livy's ``log()`` for this shape, built now."""
        with self._lock:
            if not self.started:
                return []
            if self.shape == "append":
                return list(self._append)
            if self.shape == "kubernetes":
                return [STDOUT_HEADER, *self._pod, STDERR_HEADER, *self._out, *self._err,
                        K8S_HEADER, *self._diagnostics]  # fmt: skip
            view = [STDOUT_HEADER, *self._out, STDERR_HEADER, *self._err]
            if self.shape == "yarn":
                view += [YARN_HEADER, *self._diagnostics]
            return view

    def __len__(self) -> int:
        return len(self.view())

    def lines(self) -> list[str]:
        return self.view()

    def tail(self, count: int = 10) -> list[str]:
        """The batch object's ``log`` field: the last ``count`` lines of the view."""
        view = self.view()
        return view[-count:] if count > 0 else []

    def page(self, start: int | None, size: int) -> tuple[int, int, list[str]]:
        """``(from, total, lines)`` with Livy's rules (``SessionServlet.serializeLogs``):
        ``size < 0`` = all, ``from`` absent or negative = the last ``size`` lines."""
        view = self.view()
        total = len(view)
        if size < 0:
            size = total
        if start is None or start < 0:
            start = max(0, total - size)
        return start, total, view[start : start + size]

    def page_json(self, ident: int, start: int | None, size: int) -> dict[str, Any]:
        first, total, lines = self.page(start, size)
        return {"id": ident, "from": first, "total": total, "log": lines}
