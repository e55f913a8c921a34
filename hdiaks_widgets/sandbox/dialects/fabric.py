"""Microsoft Fabric's Livy API and the driver / Livy logs of its Spark monitoring API.

Paths, bodies and answers follow the Livy swagger in ``microsoft/fabric-samples``
(``docs-samples/data-engineering/Livy-API-swagger/swagger.yaml``) and the Spark monitoring
swagger beside it (``API-Swaggers/Spark-application-monitoring-API/swagger.yaml``); what the
sources leave open and the sandbox's choice is in ``docs/fidelity.md`` ("Service dialects").

- ``POST .../livyApi/versions/{v}/batches`` answers **202** with a ``BatchResponse``; ids are
  UUID strings; ``proxyUser``/``queue`` (not in ``BatchRequest``) and unknown fields are refused
  with 400; ``conf["spark.targetLakehouse"]``, when given, must be the lakehouse of the path;
- ``GET .../batches?$top=&$skip=`` answers ``LivySparkActivityList`` (``items`` are activity
  summaries with ``livyState``, newest first; at most :data:`MAX_PAGE_SIZE` per page);
- ``GET``/``DELETE .../batches/{id}``; no ``/state`` and no ``/log`` (404): logs come from
  ``.../livySessions/{livyId}/applications/{appId}/logs?type=driver&fileName=stderr`` (byte
  ranges with ``isPartial=true&offset=&size=``; ``meta=true`` for the file's length) and
  ``.../applications/none/logs?type=livy``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Response, request

from hdiaks_widgets.sandbox.dialects.base import (
    ENTRA_CHALLENGE,
    GUID,
    Dialect,
    DialectError,
    Rule,
    TokenCheck,
    add_rules,
    bad_request_as,
    check_audience,
    download,
    ended_at,
    error_info,
    iso_time,
    json_response,
    livy_info,
    parse_dialect_body,
    query_flag,
    query_int,
    result_of,
    scheduler_state,
)
from hdiaks_widgets.sandbox.registry import NotFound

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Flask, Request

    from hdiaks_widgets.sandbox.batches import BatchRecord, BatchRegistry
    from hdiaks_widgets.sandbox.logbuf import DriverFiles

__all__ = ["AUDIENCES", "LIVY_API_VERSIONS", "MAX_PAGE_SIZE", "FabricDialect"]

# A token for either resource works with Fabric's APIs: the docs ask for api.fabric.microsoft.com
# and the Livy session sample uses the Power BI resource (get-started-api-livy-session.md).
AUDIENCES = ("https://api.fabric.microsoft.com", "https://analysis.windows.net/powerbi/api")
# 2023-12-01 in the Fabric Livy docs, 2024-07-30 in Microsoft's samples (PROTOCOL.md §8.2).
LIVY_API_VERSIONS = ("2023-12-01", "2024-07-30")
# Not documented: the sandbox's choice (docs/fidelity.md); a larger $top is cut to it.
MAX_PAGE_SIZE = 100

BATCH_CLASS = "BatchRequest"
# ``BatchRequest`` of the Livy swagger (``SessionRequest`` + file, className, args, jars, files,
# pyFiles, archives): no proxyUser, no queue.
BATCH_FIELDS: dict[str, str] = {
    "name": "str", "file": "str", "className": "str", "args": "list", "jars": "list", "files": "list",
    "pyFiles": "list", "archives": "list", "conf": "map", "tags": "map", "driverMemory": "str",
    "driverCores": "int", "executorMemory": "str", "executorCores": "int", "numExecutors": "int",
}  # fmt: skip
REFUSED = {
    "proxyUser": "Fabric runs a batch as its caller; impersonation is not available.",
    "queue": "Fabric schedules batches on the workspace's capacity; there are no YARN queues.",
}
# The capacity error (spark-job-concurrency-and-queueing.md), sent without Retry-After.
CAPACITY_MESSAGE = (
    "[TooManyRequestsForCapacity] HTTP Response code 430: This Spark job can't be run because you have hit a "
    "Spark compute or API rate limit. To run this Spark job, cancel an active Spark job through the Monitoring "
    "hub, or choose a larger capacity SKU or try again later."
)
_CODES = {400: "InvalidInput", 401: "Unauthorized", 404: "EntityNotFound", 405: "UnsupportedMethod",
          429: "RequestBlocked", 430: "TooManyRequestsForCapacity", 500: "InternalError",
          503: "ServiceUnavailable"}  # fmt: skip
# The states whose time is ``endedAt`` (an ``error`` ends a batch too).
_FINAL = ("success", "dead", "killed", "error")
_BASE = "/v1/workspaces/<ws>/lakehouses/<lh>"
_LIVY = _BASE + "/livyApi/versions/<version>"


def _guid(value: str, what: str) -> str:
    if not GUID.match(value):
        raise DialectError(400, "InvalidInput", f"The {what} '{value}' is not a valid GUID.")
    return value.lower()


def _scope(ws: str, lh: str) -> str:
    return f"fabric:{_guid(ws, 'workspace id')}/{_guid(lh, 'lakehouse id')}"


def _int_param(name: str, default: int) -> int:
    return query_int(name, default, lambda raw: DialectError(
        400, "InvalidInput", f"The query parameter '{name}' must be a non-negative integer."))


class FabricDialect(Dialect):
    name = "fabric"
    prefixes = ("/v1/workspaces/",)

    def __init__(self, tokens: TokenCheck | None = None, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self.tokens = tokens
        self.max_page_size = max(1, max_page_size)
        self._ids: dict[str, int] = {}  # UUID -> registry id

    # -- the seam -------------------------------------------------------------------------------

    def gate(self, request: Request) -> Response | None:
        refusal = check_audience(self.tokens, request.headers.get("Authorization"), AUDIENCES)
        if refusal is None:
            return None
        kind, detail = refusal
        message = (f"The access token's audience '{detail}' is not valid for this API: expected {AUDIENCES[0]}"
                   if kind == "audience" else detail)  # fmt: skip
        return self.error(401, "InvalidToken" if kind == "audience" else "TokenNotValid", message, ENTRA_CHALLENGE)

    def error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
        request_id = str(uuid.uuid4())
        body = {"requestId": request_id, "errorCode": code, "message": message, "moreDetails": []}
        return json_response(body, status, {"RequestId": request_id, **dict(headers or {})})

    def default_code(self, status: int) -> str:
        return _CODES.get(status, super().default_code(status))

    def default_message(self, status: int) -> str | None:
        return CAPACITY_MESSAGE if status == 430 else None

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "livy": f"{base_url}/v1/workspaces/{{workspaceId}}/lakehouses/{{lakehouseId}}/livyApi/versions/{{v}}",
            "versions": list(LIVY_API_VERSIONS),
            "logs": f"{base_url}/v1/workspaces/{{workspaceId}}/lakehouses/{{lakehouseId}}/livySessions/"
                    "{livyId}/applications/{appId}/logs",
            "audiences": list(AUDIENCES),
            "max_page_size": self.max_page_size,
        }

    # -- views ----------------------------------------------------------------------------------

    def register(self, app: Flask, batches: BatchRegistry) -> None:
        def check_version(value: str) -> None:
            if value not in LIVY_API_VERSIONS:
                raise DialectError(404, "EntityNotFound", f"Livy API version '{value}' is not supported; "
                                   f"use one of {', '.join(LIVY_API_VERSIONS)}.")  # fmt: skip

        def find(scope: str, ident: str) -> BatchRecord:
            key = ident.lower()
            if not GUID.match(ident) or key not in self._ids:
                raise DialectError(404, "EntityNotFound", f"The batch '{ident}' was not found.")
            try:
                return batches.get(str(self._ids[key]), scope)
            except NotFound as exc:
                raise DialectError(404, "EntityNotFound", f"The batch '{ident}' was not found.") from exc

        def create_batch(ws: str, lh: str, version: str) -> Response:
            scope = _scope(ws, lh)
            check_version(version)
            with bad_request_as("InvalidInput"):
                body = parse_dialect_body(request.get_data(), BATCH_FIELDS, BATCH_CLASS, refused=REFUSED)
            target = body.get("conf", {}).get("spark.targetLakehouse")
            if target is not None and target.lower() != lh.lower():
                raise DialectError(400, "InvalidInput", f"conf['spark.targetLakehouse'] is '{target}', but the "
                                   f"batch is submitted to lakehouse '{lh}'.")  # fmt: skip
            if not body.get("file"):
                raise DialectError(400, "InvalidInput", "The property 'file' is required.")
            ident = str(uuid.uuid4())
            with bad_request_as("InvalidInput"):
                rec = batches.create(body, scope=scope, external_id=ident)
            self._ids[ident] = rec.id
            view = self._batch(rec, ws, batches.base_url)
            view["state"] = "submitting"  # accepted, not yet handed to Spark (202)
            return json_response(view, 202, {"Location": f"{request.base_url.rstrip('/')}/{ident}"})

        def list_batches(ws: str, lh: str, version: str) -> Response:
            scope = _scope(ws, lh)
            check_version(version)
            top = min(_int_param("$top", self.max_page_size), self.max_page_size)
            skip = _int_param("$skip", 0)
            _, records = batches.listing(0, -1, scope)
            records.reverse()  # newest first, as the monitoring hub lists them
            page = records[skip : skip + top]
            return json_response({"items": [self._activity(r, ws) for r in page],
                                  "totalCountOfMatchedItems": len(records), "pageSize": top})  # fmt: skip

        def get_batch(ws: str, lh: str, version: str, ident: str) -> Response:
            scope = _scope(ws, lh)
            check_version(version)
            return json_response(self._batch(find(scope, ident), ws, batches.base_url))

        def cancel_batch(ws: str, lh: str, version: str, ident: str) -> Response:
            scope = _scope(ws, lh)
            check_version(version)
            rec = find(scope, ident)
            batches.delete(str(rec.id), scope=scope, forget=False)
            return Response(b"", status=200)

        def logs(ws: str, lh: str, livy_id: str, app_id: str) -> Response:
            scope = _scope(ws, lh)
            rec = find(scope, livy_id)
            kind = request.args.get("type", "")
            if kind == "livy":
                if app_id != "none":
                    raise DialectError(404, "EntityNotFound", "The Livy log is at applications/none.")
                return self._livy_log(rec)
            if kind != "driver":
                raise DialectError(400, "InvalidInput", f"Log type '{kind}' is not supported by the sandbox; "
                                   "use type=driver or type=livy.")  # fmt: skip
            shown = rec.view()["appId"]
            if shown is None or app_id != shown:
                raise DialectError(404, "EntityNotFound", f"Application '{app_id}' was not found for Livy "
                                   f"session '{livy_id}'.")  # fmt: skip
            name = request.args.get("fileName")
            if not name:
                raise DialectError(400, "InvalidInput", "The query parameter 'fileName' is required.")
            files = rec.driver_output()
            if files is None or files.path(name) is None:
                raise DialectError(404, "EntityNotFound", f"The driver log file '{name}' was not found.")
            return self._driver_log(rec, files, name)

        rules: list[Rule] = [
            (_LIVY + "/batches", "fabric_create_batch", create_batch, ["POST"]),
            (_LIVY + "/batches", "fabric_list_batches", list_batches, ["GET"]),
            (_LIVY + "/batches/<ident>", "fabric_get_batch", get_batch, ["GET"]),
            (_LIVY + "/batches/<ident>", "fabric_cancel_batch", cancel_batch, ["DELETE"]),
            (_BASE + "/livySessions/<livy_id>/applications/<app_id>/logs", "fabric_logs", logs, ["GET"]),
        ]
        add_rules(app, rules)

    # -- bodies ---------------------------------------------------------------------------------

    def _state(self, rec: BatchRecord) -> str:
        if rec.state == "starting" and not rec.launched:
            return "not_started"  # queued for a slot (Fabric's queue shows "Not Started")
        if rec.state == "dead" and not rec.launched:
            return "not_submitted"  # spark-submit never ran (e.g. its file does not exist)
        return rec.state

    def _batch(self, rec: BatchRecord, ws: str, base_url: str) -> dict[str, Any]:
        """``BatchResponse``."""
        livy = rec.view(base_url)
        app_info = {k: v for k, v in livy["appInfo"].items() if v is not None and k == "sparkUiUrl"}
        cancelled = rec.state == "killed"
        return {
            "livyInfo": livy_info(rec, self._state(rec)),
            "fabricBatchStateInfo": {"state": "cancelled" if cancelled else "unknown"},
            "name": rec.name,
            "id": rec.external_id,
            "appId": livy["appId"],
            "appInfo": app_info,
            "artifactId": None,
            "errorInfo": error_info(rec),
            "jobType": "SparkBatch",
            "submitterId": None,
            "submitterName": None,
            "log": livy["log"],
            "pluginInfo": None,
            "schedulerInfo": self._scheduler(rec),
            "state": self._state(rec),
            "tags": dict(rec.request.get("tags", {})),
            "result": result_of(rec.state),
            "cancellationReason": "Cancelled by the caller (DELETE)" if cancelled else None,
        }

    def _scheduler(self, rec: BatchRecord) -> dict[str, Any]:
        return {
            "submittedAt": iso_time(rec.created_at),
            "scheduledAt": iso_time(rec.state_times.get("starting")),
            "endedAt": iso_time(ended_at(rec, _FINAL)),
            "currentState": scheduler_state(rec),
        }

    def _activity(self, rec: BatchRecord, ws: str) -> dict[str, Any]:
        """``LivySparkActivity``: the list's summary of a batch."""
        errors = error_info(rec)
        return {
            "id": rec.external_id,
            "appId": rec.view()["appId"],
            "name": rec.name,
            "workspaceId": ws.lower(),
            "submitterId": None,
            "submitterName": None,
            "artifactId": None,
            "cancellationReason": "Cancelled by the caller (DELETE)" if rec.state == "killed" else None,
            "result": result_of(rec.state),
            "submittedAt": iso_time(rec.created_at),
            "startedAt": iso_time(rec.state_times.get("starting")),
            "endedAt": iso_time(ended_at(rec, _FINAL)),
            "errorSource": errors[0]["source"] if errors else None,
            "errorCode": errors[0]["errorCode"] if errors else None,
            "tags": dict(rec.request.get("tags", {})),
            "schedulerState": self._scheduler(rec)["currentState"],
            "pluginState": "Ended" if rec.is_finished else ("Monitoring" if rec.launched else "Queued"),
            "livyState": self._state(rec),
            "isJobTimedOut": False,
        }

    # -- logs -------------------------------------------------------------------------------------

    def _driver_log(self, rec: BatchRecord, files: DriverFiles, name: str) -> Response:
        length = files.size(name)
        if query_flag("meta"):
            path = files.path(name)
            mtime = path.stat().st_mtime if path is not None and path.exists() else rec.created_at
            return json_response({
                "containerId": rec.container_id or f"container_sandbox_{rec.id:06d}_01_000001",
                "nodeId": "127.0.0.1",
                "containerLogMeta": {"fileName": name, "length": length, "lastModified": _gmt(mtime),
                                     "creationTime": _gmt(rec.created_at), "metaData": {}},
            })  # fmt: skip
        if query_flag("isPartial"):
            offset = _int_param("offset", 0)
            size = _int_param("size", length)
            data, _, _ = files.read(name, offset, offset + size)
        else:
            data, _, _ = files.read(name, 0, None)
        return download(data, name, "application/octet-stream")

    def _livy_log(self, rec: BatchRecord) -> Response:
        data = "".join(line + "\n" for line in rec.log.view()).encode("utf-8")
        if query_flag("meta"):
            return json_response({"fileName": "livy.log", "length": len(data), "lastModified": _gmt(time.time()),
                                  "creationTime": _gmt(rec.created_at), "metaData": {}})  # fmt: skip
        if query_flag("isPartial"):
            offset = _int_param("offset", 0)
            data = data[offset : offset + _int_param("size", len(data))]
        return download(data, "livy.log", "application/octet-stream")


def _gmt(stamp: float) -> str:
    """The monitoring API's file times, e.g. ``2025-03-05T12:11:17.000GMT`` (livy-log.md)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}GMT"
