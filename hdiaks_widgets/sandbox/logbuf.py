"""An append-only log of one batch or session, paged exactly like Livy's ``/log`` endpoint.

Lines are kept as Spark prints them, in arrival order. Livy separates the two streams with a
``"stdout: "`` and a ``"stderr: "`` header line; the sandbox writes such a header whenever the
stream changes, so a reader can tell the streams apart while offsets of earlier lines never move
(incremental tailing by ``from`` stays exact). Header lines count in ``total`` like any line.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

__all__ = ["STDERR_HEADER", "STDOUT_HEADER", "LogBuffer", "Stream"]

Stream = Literal["stdout", "stderr"]
STDOUT_HEADER = "stdout: "
STDERR_HEADER = "stderr: "
_HEADERS: dict[str, str] = {"stdout": STDOUT_HEADER, "stderr": STDERR_HEADER}


class LogBuffer:
    def __init__(self) -> None:
        self._lines: list[str] = []
        self._stream: str | None = None
        self._lock = threading.Lock()

    def append(self, stream: Stream, line: str) -> None:
        with self._lock:
            if stream != self._stream:
                self._lines.append(_HEADERS[stream])
                self._stream = stream
            self._lines.append(line)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def tail(self, count: int = 10) -> list[str]:
        with self._lock:
            return self._lines[-count:] if count > 0 else []

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def page(self, start: int | None, size: int) -> tuple[int, int, list[str]]:
        """``(from, total, lines)`` with Livy's rules: ``from`` absent = tail, ``size < 0`` = all."""
        with self._lock:
            total = len(self._lines)
            if start is None:
                start = max(0, total - size) if size >= 0 else 0
            start = max(0, start)
            end = total if size < 0 else min(total, start + size)
            return start, total, self._lines[start:end]

    def page_json(self, ident: int, start: int | None, size: int) -> dict[str, Any]:
        first, total, lines = self.page(start, size)
        return {"id": ident, "from": first, "total": total, "log": lines}
