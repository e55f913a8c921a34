"""Classic HDInsight: Apache Livy behind the cluster gateway at ``/livy/...``.

The gateway forwards ``https://{cluster}.azurehdinsight.net/livy/batches...`` to Livy, whose
CSRF filter is on (every HDInsight sample sends ``X-Requested-By``). A cluster has one auth
method (PROTOCOL.md §3, §8.1): HTTP Basic with the cluster login, or an Entra bearer token for
``https://{cluster}.clusteraccess.azurehdinsight.net``. The sandbox mounts its own Apache Livy
routes under ``/livy`` (:class:`LivyMount`), so it is the same Livy with the gateway's checks.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hdiaks_widgets.sandbox.dialects.base import Dialect, TokenCheck, check_audience, json_response

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Request, Response

__all__ = ["HDINSIGHT_AUTH", "MARK", "HDInsightDialect", "LivyMount", "cluster_audience"]

HDINSIGHT_AUTH = ("none", "basic", "entra")
PREFIX = "/livy"
MARK = "hdiaks.dialect"  # the WSGI environ key LivyMount sets
CSRF_MESSAGE = "Missing Required Header for CSRF protection."
CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]{1,58}[a-z0-9]$")
_SAFE = ("GET", "HEAD", "OPTIONS")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def cluster_audience(cluster: str) -> str:
    return f"https://{cluster}.clusteraccess.azurehdinsight.net"


class LivyMount:
    """WSGI middleware: ``/livy/<rest>`` is served by the app's own Livy route ``/<rest>``."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        rest = path[len(PREFIX):]
        if path.startswith(PREFIX + "/") and not rest.startswith("/_sandbox/"):
            environ = dict(environ, SCRIPT_NAME=str(environ.get("SCRIPT_NAME", "")) + PREFIX, PATH_INFO=rest)
            environ[MARK] = "hdinsight"
        return self.app(environ, start_response)


class HDInsightDialect(Dialect):
    name = "hdinsight"
    prefixes = (PREFIX + "/",)

    def __init__(
        self,
        *,
        auth: str = "none",
        cluster: str = "sandbox",
        user: str = "admin",
        password: str | None = None,
        tokens: TokenCheck | None = None,
    ) -> None:
        if auth not in HDINSIGHT_AUTH:
            raise ValueError(f"HDInsight auth must be one of {', '.join(HDINSIGHT_AUTH)}, not {auth!r}")
        if not CLUSTER_NAME.match(cluster):
            raise ValueError(f"{cluster!r} is not an HDInsight cluster name (3-59 lowercase letters, digits, '-')")
        if auth == "basic" and not password:
            raise ValueError("HDInsight Basic auth needs the cluster login's password")
        if auth == "entra" and tokens is None:
            raise ValueError("HDInsight Entra auth needs the sandbox identity endpoint's signing key")
        self.auth = auth
        self.cluster = cluster
        self.user = user
        self._password = password
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"HDInsightDialect(auth={self.auth!r}, cluster={self.cluster!r}, user={self.user!r})"

    def gate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization")
        if self.auth == "basic" and not self._basic_ok(header):
            return self.error(401, "Unauthorized", "The cluster gateway needs the cluster login (HTTP Basic).",
                              {"WWW-Authenticate": f'Basic realm="{self.cluster}.azurehdinsight.net"'})
        if self.auth == "entra":
            refusal = check_audience(self.tokens, header, (cluster_audience(self.cluster),))
            if refusal is not None:
                kind, detail = refusal
                message = (f"the bearer token is for audience '{detail}', expected "
                           f"'{cluster_audience(self.cluster)}'" if kind == "audience" else detail)  # fmt: skip
                return self.error(401, "Unauthorized", message, {"WWW-Authenticate": "Bearer"})
        if request.method not in _SAFE and "X-Requested-By" not in request.headers:
            return self.error(400, "BadRequest", CSRF_MESSAGE)
        return None

    def _basic_ok(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic" or self._password is None:
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), self.user.encode()) and hmac.compare_digest(
            password.encode(), self._password.encode()
        )

    def error(self, status: int, code: str, message: str, headers: Any = None) -> Response:
        return json_response({"msg": message}, status, headers)

    def describe(self, base_url: str) -> dict[str, Any]:
        out: dict[str, Any] = {"livy": f"{base_url}{PREFIX}", "auth": self.auth, "cluster": self.cluster,
                               "csrf": True}  # fmt: skip
        if self.auth == "entra":
            out["audiences"] = [cluster_audience(self.cluster)]
        if self.auth == "basic":
            out["user"] = self.user
        return out
