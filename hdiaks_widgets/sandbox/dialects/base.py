"""What the sandbox's service dialects share: the dialect seam, errors, bodies, times, results.

A dialect serves one service's Livy front end (Fabric, Synapse, classic HDInsight) at that
service's real paths on the sandbox's one port, over the one :class:`BatchRegistry`. The server
asks each dialect whether it owns a request (:meth:`Dialect.owns`), lets it check credentials
(:meth:`Dialect.gate`) and lets it render every error of its paths in its own body shape
(:meth:`Dialect.error`), so a client meets the error bodies the real service sends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask import Response, request

from hdiaks_widgets.sandbox.bodies import BadRequest, parse_body

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Flask, Request

    from hdiaks_widgets.sandbox.batches import BatchRecord, BatchRegistry

__all__ = [
    "ENTRA_CHALLENGE",
    "Dialect",
    "DialectError",
    "Rule",
    "TokenCheck",
    "add_rules",
    "bad_request_as",
    "check_audience",
    "download",
    "ended_at",
    "error_info",
    "iso_time",
    "json_response",
    "livy_info",
    "parse_dialect_body",
    "query_flag",
    "query_int",
    "result_of",
    "scheduler_state",
]

# ``check(authorization_header) -> (claims, None) | (None, message)``: the sandbox identity
# endpoint's token check without an audience pin (each dialect pins its own audiences).
TokenCheck = Callable[["str | None"], "tuple[dict[str, Any] | None, str | None]"]

# ``(rule, endpoint, view, methods)`` of a dialect's route (``Flask.add_url_rule``).
Rule = tuple[str, str, Callable[..., Response], list[str]]

# The challenge Fabric and Synapse send with a 401: sign in with Entra ID.
ENTRA_CHALLENGE = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/"'}

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Livy state -> the ``result`` field of Fabric and Synapse (sparkJob.json ``SparkBatchJobResultType``).
_RESULTS = {"success": "Succeeded", "dead": "Failed", "error": "Failed", "killed": "Cancelled"}

# A Java / Python exception line in the driver's stderr.
_EXCEPTION = re.compile(
    r"^(?:Exception in thread \"[^\"]*\" )?((?:[\w$]+\.)+[\w$]*(?:Exception|Error)\b.*)$"
    r"|^(\w*(?:Error|Exception)): (.*)$"
)


class DialectError(Exception):
    """An error a dialect view raises; the server renders it with :meth:`Dialect.error`."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class Dialect:
    """One service's front end. Subclasses set ``name`` and ``prefixes`` and add routes."""

    name = ""
    prefixes: tuple[str, ...] = ()

    def owns(self, path: str) -> bool:
        return path.startswith(self.prefixes)

    def register(self, app: Flask, batches: BatchRegistry) -> None:
        """Add this dialect's routes to ``app``."""

    def gate(self, request: Request) -> Response | None:
        """Credentials and headers the service requires: ``None`` lets the request through."""
        return None

    def error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
        """An error in this service's body shape."""
        return json_response({"msg": message}, status, headers)

    def default_code(self, status: int) -> str:
        """The error code this service sends with ``status`` when nothing more specific is known."""
        return {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
                429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}.get(
                    status, f"HTTP{status}")  # fmt: skip

    def default_message(self, status: int) -> str | None:
        """The message this service sends with ``status`` (an injected fault without one)."""
        return None

    def describe(self, base_url: str) -> dict[str, Any]:
        """Where this dialect's paths are (``/_sandbox/info``, the ready file)."""
        return {}


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=dict(headers or {}), mimetype="application/json")


def add_rules(app: Flask, rules: Sequence[Rule], **options: Any) -> None:
    """Add a dialect's routes to ``app`` (``options``: more ``add_url_rule`` keywords)."""
    for rule, endpoint, view, methods in rules:
        app.add_url_rule(rule, endpoint=endpoint, view_func=view, methods=methods, **options)


@contextmanager
def bad_request_as(code: str) -> Iterator[None]:
    """A :class:`BadRequest` raised inside (a body the registry refuses) becomes a 400 with the
    service's error ``code``."""
    try:
        yield
    except BadRequest as exc:
        raise DialectError(400, code, exc.message) from exc


def query_int(name: str, default: int, refusal: Callable[[str], DialectError], *, signed: bool = False) -> int:
    """The query parameter ``name`` as a whole number (``signed``: a leading ``-`` is allowed),
    ``default`` when it is absent or empty; ``refusal(raw)`` is raised for anything else."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.lstrip("-") if signed else raw).isdigit():
        raise refusal(raw)
    return int(raw)


def query_flag(name: str) -> bool:
    """The query parameter ``name`` is ``true`` (any case), as the services read their flags."""
    return request.args.get(name, "").lower() == "true"


def download(data: bytes, name: str, mimetype: str) -> Response:
    """A log file's bytes; with ``isDownload=true`` as an attachment named ``name``."""
    headers = {"Content-Disposition": f'attachment; filename="{name}"'} if query_flag("isDownload") else {}
    return Response(data, status=200, headers=headers, mimetype=mimetype)


def iso_time(stamp: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, as the services' ``date-time`` fields."""
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}Z"


def result_of(state: str) -> str:
    """``Succeeded`` / ``Failed`` / ``Cancelled`` once finished, ``Uncertain`` before."""
    return _RESULTS.get(state, "Uncertain")


def ended_at(rec: BatchRecord, states: Sequence[str]) -> float | None:
    """When the batch entered the first of the final ``states`` it has a time for."""
    return next((rec.state_times[s] for s in states if s in rec.state_times), None)


def livy_info(rec: BatchRecord, current_state: str) -> dict[str, Any]:
    """``livyInfo`` (``SparkBatchJobState``): when the batch entered each Livy state."""
    times = rec.state_times
    return {
        "notStartedAt": iso_time(rec.created_at),
        "startingAt": iso_time(times.get("starting")),
        "runningAt": iso_time(times.get("running")),
        "deadAt": iso_time(times.get("dead")),
        "successAt": iso_time(times.get("success")),
        "killedAt": iso_time(times.get("killed")),
        "recoveringAt": None,
        "currentState": current_state,
        "jobCreationRequest": dict(rec.request),
    }


def scheduler_state(rec: BatchRecord) -> str:
    """``schedulerInfo.currentState``: ``Queued`` for a slot, ``Scheduled`` once launched, ``Ended``."""
    return "Ended" if rec.is_finished else ("Scheduled" if rec.launched else "Queued")


def check_audience(
    check: TokenCheck | None, authorization: str | None, audiences: tuple[str, ...]
) -> tuple[str, str] | None:
    """``None`` when the request may pass, else ``(kind, message)`` for a 401; ``kind`` is
    ``"audience"`` for a good token of another audience, ``"token"`` for anything else.

    ``check`` ``None`` means the sandbox runs without bearer checks."""
    if check is None:
        return None
    claims, problem = check(authorization)
    if claims is None:
        return "token", problem or "invalid bearer token"
    audience = str(claims.get("aud", "")).rstrip("/")
    if audience not in tuple(a.rstrip("/") for a in audiences):
        return "audience", audience
    return None


def error_info(rec: BatchRecord) -> list[dict[str, str]]:
    """``errorInfo`` of a failed batch: the driver's last exception, classified the way Synapse's
    error classification names unknown errors (``Spark_Unknown_Unknown_<exception>``), or the old
    generic ``LIVY_JOB_STATE_DEAD``; empty unless the batch failed."""
    if rec.state not in ("dead", "error"):
        return []
    line = _last_exception(rec)
    if line is None:
        return [{"message": f"Livy batch {rec.id} ended in state {rec.state}", "errorCode": "LIVY_JOB_STATE_DEAD",
                 "source": "Unknown"}]  # fmt: skip
    exception = line.split(":", 1)[0].strip()
    return [{"message": line, "errorCode": f"Spark_Unknown_Unknown_{exception}", "source": "Unknown"}]


def _last_exception(rec: BatchRecord, limit: int = 256 * 1024) -> str | None:
    lines: list[str] = []
    files = rec.driver_output()
    if files is not None:
        for name in ("stderr", "stdout"):
            data, _, _ = files.read(name, -limit, None)
            lines += data.decode("utf-8", errors="replace").splitlines()
    lines += rec.log.view()  # e.g. the sandbox's "file does not exist" lines of a job never started
    found = None
    for line in lines:
        match = _EXCEPTION.match(line.strip())
        if match:
            found = match.group(1) or f"{match.group(2)}: {match.group(3)}"
    return found


def parse_dialect_body(
    raw: bytes, fields: Mapping[str, str], class_name: str, *, refused: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A batch body with the service's own field list: a refused field (``refused[name]`` is the
    reason) and an unknown field raise :class:`BadRequest` naming it; values are coerced like
    Livy's (``args: [10]`` becomes ``["10"]``)."""
    try:
        data = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    for key in data:
        if refused and key in refused:
            raise BadRequest(f"The property '{key}' is not supported: {refused[key]}")
        if key not in fields:
            raise BadRequest(f"The property '{key}' is not a known property of {class_name}.")
    return parse_body(raw, fields, class_name)
