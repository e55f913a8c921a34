"""The Livy-compatible REST app (Flask): batches, interactive sessions and the test namespace.

Routes follow ``docs/rest-api.md`` of apache/incubator-livy (see PROTOCOL.md §2). Errors are
``{"msg": ...}`` like Livy's ``ResponseMessage``. ``/_sandbox/...`` is not part of Livy: it
drives fault injection and lets tests look at deleted batches and their processes.

The service dialects (:mod:`hdiaks_widgets.sandbox.dialects`: Fabric, Synapse, classic
HDInsight) add their routes beside these; on a dialect's paths the dialect checks credentials
and renders every error in its service's body shape.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import requests
from flask import Flask, Response, g, request

from hdiaks_widgets.sandbox.apps import Examples
from hdiaks_widgets.sandbox.batches import BatchRegistry, NotFound
from hdiaks_widgets.sandbox.bodies import (
    BATCH_CLASS,
    BATCH_FIELDS,
    SESSION_CLASS,
    SESSION_FIELDS,
    STATEMENT_CLASS,
    STATEMENT_FIELDS,
    BadRequest,
    parse_body,
)
from hdiaks_widgets.sandbox.dialects import Dialect, DialectError, HDInsightDialect, LivyMount
from hdiaks_widgets.sandbox.dialects.hdinsight import MARK as _DIALECT_MARK
from hdiaks_widgets.sandbox.faults import FaultBook, FaultRule
from hdiaks_widgets.sandbox.nodemanager import DEFAULT_START, file_page, listing_page
from hdiaks_widgets.sandbox.procs import group_members
from hdiaks_widgets.sandbox.sessions import SessionRegistry

__all__ = ["Authorizer", "CSRF_MESSAGE", "create_app"]

# Given the request headers, return None to let the request through or a message to answer 401.
Authorizer = Callable[[Mapping[str, str]], "str | None"]

LIVY_VERSION = "0.8.0-incubating"
CSRF_MESSAGE = "Missing Required Header for CSRF protection."
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_CONTROL_PREFIX = "/_sandbox/"


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=dict(headers or {}), mimetype="application/json")


def _msg(message: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return _json({"msg": message}, status, headers)


def _int_arg(name: str, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"Invalid value for query parameter {name}: {raw!r}") from exc


def _drop_connection() -> None:
    """Close the client's TCP connection; werkzeug then fails to write and gives up quietly."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _log_page(rec: Any) -> Response:
    """Livy's log paging for a batch or session: ``size`` 100 by default, the tail without ``from``."""
    size = _int_arg("size", 100)
    return _json(rec.log.page_json(rec.id, _int_arg("from", None), 100 if size is None else size))


class UiProxy:
    """Fetches a page of a driver's UI on loopback (what YARN's ``WebAppProxyServlet`` does for
    ``/proxy/{appId}/...``): GET only, no redirects followed, the answer's status and type kept."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # loopback: no proxy or CA variables of the machine
            self._local.session = session
        return session

    def fetch(self, port: int, rest: str, query: bytes, prefix: str) -> Response:
        """``prefix``: this proxy's path for the application (a redirect's target is rewritten to it)."""
        url = f"http://127.0.0.1:{port}/{rest}" + (f"?{query.decode('latin-1')}" if query else "")
        try:
            answer = self._session().get(url, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return _msg(f"the application's UI did not answer: {type(exc).__name__}", 502)
        headers = {}
        location = answer.headers.get("Location")
        if location is not None:
            headers["Location"] = location.replace(f"http://127.0.0.1:{port}", prefix)
        kind = answer.headers.get("Content-Type", "application/octet-stream")
        return Response(answer.content, status=answer.status_code, headers=headers, content_type=kind)


def create_app(
    *,
    batches: BatchRegistry,
    sessions: SessionRegistry,
    faults: FaultBook | None = None,
    examples: Examples | None = None,
    csrf: bool = False,
    authorizer: Authorizer | None = None,
    dialects: Sequence[Dialect] = (),
) -> Flask:
    """``authorizer`` and ``csrf`` guard Apache Livy's routes; each of ``dialects`` guards its own."""
    app = Flask("hdiaks_widgets.sandbox")
    book = faults or FaultBook()
    ui_proxy = UiProxy()
    if any(isinstance(d, HDInsightDialect) for d in dialects):
        app.wsgi_app = LivyMount(app.wsgi_app)  # type: ignore[method-assign]

    def _dialect() -> Dialect | None:
        """The dialect serving this request (HDInsight's ``/livy`` mount marks its requests)."""
        marked = request.environ.get(_DIALECT_MARK)
        for dialect in dialects:
            if dialect.name == marked or (marked is None and dialect.owns(request.path)):
                return dialect
        return None

    def _error(message: str, status: int, headers: Mapping[str, str] | None = None, code: str | None = None
               ) -> Response:  # fmt: skip
        dialect = _dialect()
        if dialect is None:
            return _msg(message, status, headers)
        return dialect.error(status, code or dialect.default_code(status), message, headers)

    @app.before_request
    def _gate() -> Response | None:
        path = request.path
        if path.startswith(_CONTROL_PREFIX):
            return None
        rule = book.observe(request.method, request.script_root + path)
        g.fault = rule
        dialect = _dialect()
        if rule is not None:
            if rule.kind == "slow":
                time.sleep(rule.seconds)
            elif rule.kind == "drop":
                _drop_connection()
                return Response(b"", status=500)
            elif rule.kind == "status":
                headers = {}
                if rule.retry_after is not None:
                    value = rule.retry_after
                    headers["Retry-After"] = str(int(value)) if value == int(value) else str(value)
                message = rule.message or (dialect.default_message(rule.status) if dialect else None)
                return _error(message or f"sandbox fault: HTTP {rule.status}", rule.status, headers, rule.error_code)
        if dialect is not None:
            return dialect.gate(request)
        if authorizer is not None:
            refusal = authorizer(cast("Mapping[str, str]", request.headers))
            if refusal is not None:
                return _msg(refusal, 401, {"WWW-Authenticate": "Bearer"})
        if csrf and request.method not in _SAFE_METHODS and "X-Requested-By" not in request.headers:
            return _msg(CSRF_MESSAGE, 400)
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        rule: FaultRule | None = g.get("fault")
        if rule is not None and rule.kind == "drop_after":
            _drop_connection()
        return response

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return _error(str(exc), 404)

    @app.errorhandler(BadRequest)
    def _bad_request(exc: BadRequest) -> Response:
        return _error(exc.message, 400)

    @app.errorhandler(DialectError)
    def _dialect_error(exc: DialectError) -> Response:
        return _error(exc.message, exc.status, exc.headers, exc.code)

    @app.errorhandler(404)
    def _no_route(_: Exception) -> Response:
        return _error(f"Not found: {request.script_root}{request.path}", 404)

    @app.errorhandler(405)
    def _no_method(_: Exception) -> Response:
        return _error(f"Method {request.method} not allowed on {request.script_root}{request.path}", 405)

    @app.errorhandler(500)
    def _internal(exc: Exception) -> Response:
        return _error(str(getattr(exc, "original_exception", exc)), 500)

    @app.get("/version")
    def version() -> Response:
        # Livy's VersionServlet; pylivy asks for it to choose its protocol.
        return _json({"version": LIVY_VERSION, "user": None, "revision": "hdiaks-sandbox", "branch": "", "date": "",
                      "url": ""})  # fmt: skip

    # -- batches ------------------------------------------------------------------------------

    @app.get("/batches")
    def list_batches() -> Response:
        start = _int_arg("from", 0) or 0
        size = _int_arg("size", 100)
        total, page = batches.listing(start, 100 if size is None else size)
        return _json({"from": start, "total": total, "sessions": [r.view(batches.base_url) for r in page]})

    @app.post("/batches")
    def create_batch() -> Response:
        body = parse_body(request.get_data(), BATCH_FIELDS, BATCH_CLASS)
        rec = batches.create(body)
        return _json(rec.view(batches.base_url), 201, {"Location": f"/{rec.id}"})

    @app.get("/batches/<ident>")
    def get_batch(ident: str) -> Response:
        return _json(batches.get(ident).view(batches.base_url))

    @app.get("/batches/<ident>/state")
    def batch_state(ident: str) -> Response:
        rec = batches.get(ident)
        return _json({"id": rec.id, "state": rec.state})

    @app.get("/batches/<ident>/log")
    def batch_log(ident: str) -> Response:
        return _log_page(batches.get(ident))

    # -- NodeManager's container-log pages (driverLogUrl of the yarn shape) -----------------------

    def _container(container: str, user: str) -> Any:
        rec = batches.container(container)
        if rec.log.driver_files is None or user != rec.user:
            raise NotFound(container)
        return rec

    @app.get("/node/containerlogs/<container>/<user>")
    @app.get("/node/containerlogs/<container>/<user>/")
    def container_logs(container: str, user: str) -> Response:
        rec = _container(container, user)
        base = f"{batches.base_url}/node/containerlogs/{container}/{user}"
        return Response(listing_page(container, rec.log.driver_files, base), mimetype="text/html")

    @app.get("/node/containerlogs/<container>/<user>/<name>")
    @app.get("/node/containerlogs/<container>/<user>/<name>/")
    def container_log_file(container: str, user: str, name: str) -> Response:
        rec = _container(container, user)
        files = rec.log.driver_files
        if files.path(name) is None:
            raise NotFound(name)
        start = _int_arg("start", DEFAULT_START)
        base = f"{batches.base_url}/node/containerlogs/{container}/{user}"
        page = file_page(container, name, files, base, DEFAULT_START if start is None else start, _int_arg("end", None))
        return Response(page, mimetype="text/html")

    # -- the web proxy in front of each application's UI (appInfo.sparkUiUrl) --------------------

    @app.get("/proxy/<app_id>")
    @app.get("/proxy/<app_id>/")
    @app.get("/proxy/<app_id>/<path:rest>")
    def app_ui(app_id: str, rest: str = "") -> Response:
        """A running application's UI (Spark's REST API under ``api/v1/``), fetched from the
        driver like YARN's web proxy does; once the application ended its UI is gone: 404
        (the History Server has it, where the sandbox runs one: ``sparkUiUrl`` then says where)."""
        rec = batches.by_app(app_id)
        if rec.is_finished:
            return _error(f"application {app_id} has finished: its UI is gone with its driver", 404)
        port = batches.driver_ui_port(rec)
        if port is None:
            return _error(f"application {app_id} has no UI yet", 503)
        if rec.app_id is not None and rec.app_id != app_id:
            rest = rest.replace(app_id, rec.app_id)  # a played YARN id: Spark knows its own
        return ui_proxy.fetch(port, rest, request.query_string, f"{request.script_root}/proxy/{app_id}")

    @app.delete("/batches/<ident>")
    def delete_batch(ident: str) -> Response:
        batches.delete(ident)
        return _json({"msg": "deleted"})

    # -- interactive sessions -----------------------------------------------------------------

    @app.get("/sessions")
    def list_sessions() -> Response:
        start = _int_arg("from", 0) or 0
        size = _int_arg("size", 100)
        total, page = sessions.listing(start, 100 if size is None else size)
        return _json({"from": start, "total": total, "sessions": [r.view() for r in page]})

    @app.post("/sessions")
    def create_session() -> Response:
        rec = sessions.create(parse_body(request.get_data(), SESSION_FIELDS, SESSION_CLASS))
        return _json(rec.view(), 201, {"Location": f"/{rec.id}"})

    @app.get("/sessions/<ident>")
    def get_session(ident: str) -> Response:
        return _json(sessions.get(ident).view())

    @app.get("/sessions/<ident>/state")
    def session_state(ident: str) -> Response:
        rec = sessions.get(ident)
        return _json({"id": rec.id, "state": rec.state})

    @app.get("/sessions/<ident>/log")
    def session_log(ident: str) -> Response:
        return _log_page(sessions.get(ident))

    @app.delete("/sessions/<ident>")
    def delete_session(ident: str) -> Response:
        sessions.delete(ident)
        return _json({"msg": "deleted"})

    @app.get("/sessions/<ident>/statements")
    def list_statements(ident: str) -> Response:
        rec = sessions.get(ident)
        with rec.lock:
            views = [s.view() for s in rec.statements]
        if request.args.get("order") == "desc":
            views.reverse()
        start = _int_arg("from", 0) or 0
        size = _int_arg("size", None)
        page = views[start:] if size is None or size < 0 else views[start : start + size]
        return _json({"total_statements": len(views), "statements": page})

    @app.post("/sessions/<ident>/statements")
    def run_statement(ident: str) -> Response:
        rec = sessions.get(ident)
        body = parse_body(request.get_data(), STATEMENT_FIELDS, STATEMENT_CLASS)
        if "code" not in body:
            raise BadRequest("Rejected, Reason: requirement failed: code is required")
        stmt = sessions.submit(rec, str(body["code"]), body.get("kind"))
        return _json(stmt.view(), 201, {"Location": f"/statements/{stmt.id}"})

    @app.get("/sessions/<ident>/statements/<stmt_id>")
    def get_statement(ident: str, stmt_id: str) -> Response:
        rec = sessions.get(ident)
        return _json(sessions.statement(rec, stmt_id).view())

    @app.post("/sessions/<ident>/statements/<stmt_id>/cancel")
    def cancel_statement(ident: str, stmt_id: str) -> Response:
        rec = sessions.get(ident)
        sessions.cancel(rec, sessions.statement(rec, stmt_id))
        return _json({"msg": "canceled"})

    # -- the service dialects (Fabric, Synapse; HDInsight is the /livy mount of the routes above)

    for dialect in dialects:
        dialect.register(app, batches)

    # -- sandbox control (not Livy) -----------------------------------------------------------

    @app.get("/_sandbox/faults")
    def get_faults() -> Response:
        return _json(book.to_json())

    @app.post("/_sandbox/faults")
    def add_faults() -> Response:
        try:
            data = json.loads(request.get_data() or b"null")
        except json.JSONDecodeError as exc:
            raise BadRequest(f"invalid JSON: {exc}") from exc
        rules = [FaultRule.from_json(item) for item in (data if isinstance(data, list) else [data])]
        book.add(rules)
        return _json(book.to_json(), 201)

    @app.delete("/_sandbox/faults")
    def clear_faults() -> Response:
        book.clear()
        return _json({"msg": "cleared"})

    @app.get("/_sandbox/info")
    def info() -> Response:
        return _json(
            {
                "url": batches.base_url,
                "root": str(batches.root),
                "master": batches.master,
                "max_running": batches.max_running,
                "retain_seconds": batches.retain_seconds,
                "csrf": csrf,
                "examples": examples.to_json() if examples else None,
                "dialects": {d.name: d.describe(batches.base_url) for d in dialects},
            }
        )

    @app.get("/_sandbox/batches/<int:ident>")
    def batch_processes(ident: int) -> Response:
        """A batch, deleted or not, with the PIDs still alive in its process group."""
        deleted = False
        try:
            rec = batches.get(str(ident))
        except NotFound:
            rec, deleted = batches.deleted(ident), True
        return _json(
            {
                "batch": rec.view(batches.base_url),
                "deleted": deleted,
                "pgid": rec.pgid,
                "live_pids": group_members(rec.pgid) if rec.pgid else [],
                "leftover_pids": rec.leftover_pids,
            }
        )

    return app
