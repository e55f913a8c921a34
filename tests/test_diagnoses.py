"""What a new user is told when something is wrong (issue 11, items 4 and 5): a hung server, no
server, a host name that does not resolve, an unknown batch, a self-signed identity provider,
missing secrets, a secret written into a profile, and reprs that stay short in a notebook.

Servers are small loopback sockets started here; ``nohost.invalid`` never resolves (RFC 6761),
so nothing is sent anywhere. No test asserts a duration: the number of connections a server saw
(and the attempts the message names) is what shows that a request was or was not retried.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from hdiaks_widgets.errors import LivyError, LivyHTTPError
from hdiaks_widgets.livy import LivyClient, RetryPolicy


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback and .invalid only: a proxy from the environment must never see these requests."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


class _Listener:
    """A loopback TCP server counting the connections it accepts; answers each with ``reply``,
    or never (``reply=None``: it reads the request and keeps the connection open)."""

    def __init__(self, reply: bytes | None) -> None:
        self._reply = reply
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._open: list[socket.socket] = []
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
        self._stop.set()
        self._thread.join(5)
        for conn in self._open:
            conn.close()
        self._sock.close()


@pytest.fixture
def listener() -> Iterator[Callable[[bytes | None], _Listener]]:
    started: list[_Listener] = []

    def start(reply: bytes | None = None) -> _Listener:
        started.append(_Listener(reply))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _http(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}",
            "Connection: close", *headers]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# -- 1. a hung server is given up at the stated timeout ----------------------------------------------


def test_livy_client_hung_server_is_given_up_after_one_read_timeout(
    listener: Callable[[bytes | None], _Listener],
) -> None:
    hung = listener(None)
    with LivyClient(hung.url, timeout=(2.0, 0.3)) as client, pytest.raises(LivyError) as info:
        client.list_batches()  # default RetryPolicy: 4 retries for what a retry can fix
    message = str(info.value)
    assert hung.connections == 1
    assert f"Livy at {hung.url} did not answer GET /batches within the read timeout of 0.3 s" in message
    assert "gave up after 1 attempt, 0.3 s in all" in message
    assert "budget" in message


def test_livy_client_budget_lets_a_read_timeout_be_retried_and_says_so(
    listener: Callable[[bytes | None], _Listener],
) -> None:
    hung = listener(None)
    retry = RetryPolicy(total=4, backoff_factor=0.0, backoff_jitter=0.0, budget=0.5)
    with LivyClient(hung.url, timeout=(2.0, 0.3), retry=retry) as client, pytest.raises(LivyError) as info:
        client.list_batches()
    assert hung.connections == 2  # 0.3 s spent < 0.5 s budget: one retry, then 0.6 s > 0.5 s
    assert "gave up after 2 attempts" in str(info.value)


def test_livy_client_retry_after_beyond_the_budget_is_not_waited_for(
    listener: Callable[[bytes | None], _Listener],
) -> None:
    busy = listener(_http("503 Service Unavailable", b'{"msg": "restarting"}', "Retry-After: 3"))
    with LivyClient(busy.url, timeout=(2.0, 1.0)) as client, pytest.raises(LivyHTTPError) as info:
        client.list_batches()
    assert info.value.status == 503 and "restarting" in info.value.body
    assert busy.connections == 1


def test_livy_client_quick_failures_are_still_retried_within_the_budget(
    listener: Callable[[bytes | None], _Listener],
) -> None:
    busy = listener(_http("503 Service Unavailable", b'{"msg": "restarting"}', "Retry-After: 0"))
    retry = RetryPolicy(total=2, backoff_factor=0.0, backoff_jitter=0.0)
    with LivyClient(busy.url, timeout=(2.0, 5.0), retry=retry) as client, pytest.raises(LivyHTTPError):
        client.list_batches()
    assert busy.connections == 3


# -- 3. no server, or no such host: at once, with what to check ----------------------------------------


def test_livy_client_connection_refused_is_not_retried_and_names_the_sandbox() -> None:
    from auth_fixtures import closed_port

    url = f"http://127.0.0.1:{closed_port()}"
    with LivyClient(url) as client, pytest.raises(LivyError) as info:  # default RetryPolicy
        client.list_batches()
    message = str(info.value)
    assert message.startswith(f"Cannot reach Livy at {url} (GET /batches): connection refused (not retried)")
    assert message.endswith("is the Livy server running? For the local sandbox run `hdiaks sandbox`")


def test_livy_client_unresolvable_host_names_the_host_and_is_not_retried() -> None:
    with LivyClient("http://nohost.invalid:8998") as client, pytest.raises(LivyError) as info:
        client.list_batches()
    message = str(info.value)
    assert "the host name 'nohost.invalid' does not resolve" in message
    assert "not retried" in message and "typo" in message
    assert "hdiaks sandbox" not in message
