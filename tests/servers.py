"""Small loopback servers for tests (and ``bench/``): each listens on a free port of 127.0.0.1,
serves from a daemon thread and is stopped with ``close()`` (or by leaving its ``with`` block).

- :class:`Listener`: a bare TCP server that counts the connections it accepts and answers each
  with fixed bytes, or never (a hung server);
- :class:`RecordingServer`: a bare TCP server that records each request line and answers 404;
- :class:`LoopbackHTTP`: a ``ThreadingHTTPServer`` for a handler class (built on
  :class:`QuietHandler`), the base of the small HTTP fakes;
- :class:`PlainServer`: an HTTP server answering every request the same way.

Standard library only, no pytest: ``bench/failure_paths.py`` measures the same servers the tests
assert against.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

__all__ = ["Listener", "LoopbackHTTP", "PlainServer", "QuietHandler", "RecordingServer"]


class _Closing:
    """``with server: ...`` closes it at the end."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _TCPServer(_Closing):
    """A bare TCP server on a free loopback port; :meth:`_accepted` handles each connection in
    the accepting thread. Subclasses set their own fields before calling ``__init__``."""

    def __init__(self, accept_timeout: float) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(accept_timeout)  # how soon close() is seen
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted(conn)

    def _accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


class Listener(_TCPServer):
    """A loopback TCP server counting the connections it accepts; answers each with ``reply``,
    or never (``reply=None``: it reads the request and keeps the connection open)."""

    def __init__(self, reply: bytes | None = None) -> None:
        self._reply = reply
        self.connections = 0
        self._open: list[socket.socket] = []
        super().__init__(accept_timeout=0.05)

    def _accepted(self, conn: socket.socket) -> None:
        self.connections += 1
        self._open.append(conn)
        if self._reply is not None:
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)
            assert self._reply is not None
            conn.sendall(self._reply)
        except OSError:
            pass

    def close(self) -> None:
        super().close()
        for conn in self._open:
            conn.close()


class RecordingServer(_TCPServer):
    """A bare TCP server on loopback that records each raw HTTP request line and answers 404."""

    _BODY = b'{"msg":"Session not found."}'

    def __init__(self) -> None:
        self.lines: list[str] = []
        super().__init__(accept_timeout=0.2)

    def _accepted(self, conn: socket.socket) -> None:
        with conn:
            data = conn.recv(65536).decode("latin-1")
            self.lines.append(data.split("\r\n", 1)[0])
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(self._BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + self._BODY)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with :meth:`reply`."""

    def reply(self, status: int, payload: bytes, content_type: str | None = "application/json") -> None:
        """``status`` with ``payload``: Content-Type (unless ``None``), then Content-Length."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackHTTP(_Closing):
    """``handler`` served by a ``ThreadingHTTPServer`` on a free loopback port (its request
    threads are daemons: a handler still waiting does not hold up ``close()``)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class PlainServer(LoopbackHTTP):
    """A tiny plain-HTTP server answering every request the same way (no Content-Type when
    ``content_type`` is empty)."""

    def __init__(self, status: int, content_type: str, body: str) -> None:
        answer = body.encode()

        class Handler(QuietHandler):
            def _answer(self) -> None:
                self.reply(status, answer, content_type or None)

            do_GET = do_POST = do_DELETE = _answer

        super().__init__(Handler)
