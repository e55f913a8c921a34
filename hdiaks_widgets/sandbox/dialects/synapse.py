"""Azure Synapse's Spark batch API (``sparkJob.json``, 2020-12-01) and its driver-log download.

From ``specification/synapse/data-plane/Microsoft.Synapse/stable/2020-12-01/sparkJob.json`` in
``Azure/azure-rest-api-specs``: ``POST /livyApi/versions/{v}/sparkPools/{pool}/batches`` answers
**200** with a ``SparkBatchJob``; ``name`` and ``file`` are required (``SparkBatchJobOptions``);
ids are int32; ``GET .../batches?from=&size=`` answers ``SparkBatchJobCollection``
(``{from, total, sessions}``), ``size`` "by default 20 and that is the maximum"; ``detailed=true``
adds what is "beyond plain livy" (``livyInfo``, ``result``, ``errorInfo``, scheduler and plugin
information); no ``/state`` and no ``/log``. The driver's output is downloaded from the Spark
history API: ``/sparkhistory/api/v1/sparkpools/{pool}/livyid/{id}/applications/{appId}/
driverlog/{stdout|stderr}/?isDownload=true``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Response, request

from hdiaks_widgets.sandbox.dialects.base import (
    ENTRA_CHALLENGE,
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

__all__ = ["AUDIENCE", "LIVY_API_VERSIONS", "MAX_PAGE_SIZE", "SynapseDialect"]

AUDIENCE = "https://dev.azuresynapse.net"  # no trailing slash (azure-rest-api-specs#10500)
LIVY_API_VERSIONS = ("2019-11-01-preview", "2020-12-01")
MAX_PAGE_SIZE = 20
# Synapse Spark pool names: a letter, then letters or digits, at most 15 (the portal's rule).
POOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,14}$")

BATCH_CLASS = "SparkBatchJobOptions"
BATCH_FIELDS: dict[str, str] = {
    "tags": "map", "artifactId": "str", "name": "str", "file": "str", "className": "str", "args": "list",
    "jars": "list", "pyFiles": "list", "files": "list", "archives": "list", "conf": "map",
    "driverMemory": "str", "driverCores": "int", "executorMemory": "str", "executorCores": "int",
    "numExecutors": "int",
}  # fmt: skip
REFUSED = {
    "proxyUser": "Synapse runs a batch as its caller; impersonation is not available.",
    "queue": "Synapse schedules batches on the Spark pool; there are no YARN queues.",
}
# The states whose time ``endedAt`` shows (the sandbox's state ``error`` is not one of them here).
_FINAL = ("success", "dead", "killed")
_LIVY = "/livyApi/versions/<version>/sparkPools/<pool>"
_HISTORY = "/sparkhistory/api/v1/sparkpools/<pool>/livyid/<int:ident>/applications/<app_id>/driverlog/<name>"


def _scope(pool: str, version: str | None = None) -> str:
    if not POOL_NAME.match(pool):
        raise DialectError(400, "InvalidSparkPoolName", f"'{pool}' is not a valid Spark pool name: a letter, "
                           "then letters or digits, at most 15 characters.")  # fmt: skip
    if version is not None and version not in LIVY_API_VERSIONS:
        raise DialectError(404, "NotFound", f"Livy API version '{version}' is not supported; use one of "
                           f"{', '.join(LIVY_API_VERSIONS)}.")  # fmt: skip
    return f"synapse:{pool}"


def _int_param(name: str, default: int) -> int:
    # A negative number passes here and is refused by the caller with the valid range.
    return query_int(name, default, lambda raw: DialectError(
        400, "BadRequest", f"The value '{raw}' is not valid for {name}."), signed=True)


class SynapseDialect(Dialect):
    name = "synapse"
    prefixes = ("/livyApi/", "/sparkhistory/")

    def __init__(self, tokens: TokenCheck | None = None) -> None:
        self.tokens = tokens

    def gate(self, request: Request) -> Response | None:
        refusal = check_audience(self.tokens, request.headers.get("Authorization"), (AUDIENCE,))
        if refusal is None:
            return None
        kind, detail = refusal
        if kind == "audience":
            # The data plane's own shape for a token of another resource (azure-rest-api-specs#10500).
            return json_response({
                "code": "InvalidTokenAuthenticationAudience",
                "message": "Token Authentication failed with SecurityTokenInvalidAudienceException - IDX10214: "
                           f"Audience validation failed. Audiences: '{detail}'. Did not match: "
                           f"validationParameters.ValidAudience: '{AUDIENCE}'.",
            }, 401, ENTRA_CHALLENGE)  # fmt: skip
        return json_response({"code": "InvalidTokenAuthentication", "message": detail}, 401, ENTRA_CHALLENGE)

    def error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
        # The Livy front end's errors: {"TraceId", "Message"} (microsoft/azure-tools-for-java#3973).
        return json_response({"TraceId": str(uuid.uuid4()), "Message": message}, status, headers)

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "livy": f"{base_url}/livyApi/versions/{{v}}/sparkPools/{{pool}}",
            "versions": list(LIVY_API_VERSIONS),
            "driver_log": f"{base_url}/sparkhistory/api/v1/sparkpools/{{pool}}/livyid/{{id}}/applications/"
                          "{appId}/driverlog/{stdout|stderr}/?isDownload=true",
            "audiences": [AUDIENCE],
            "max_page_size": MAX_PAGE_SIZE,
        }

    def register(self, app: Flask, batches: BatchRegistry) -> None:
        def find(scope: str, ident: str) -> BatchRecord:
            try:
                if not ident.isdigit():
                    raise NotFound(ident)
                return batches.get(ident, scope)
            except NotFound as exc:
                raise DialectError(404, "NotFound", f"Batch {ident} was not found in the Spark pool.") from exc

        def create_batch(version: str, pool: str) -> Response:
            scope = _scope(pool, version)
            with bad_request_as("BadRequest"):
                body = parse_dialect_body(request.get_data(), BATCH_FIELDS, BATCH_CLASS, refused=REFUSED)
            missing = [f for f in ("name", "file") if not body.get(f)]
            if missing:
                raise DialectError(400, "BadRequest", f"The {' and '.join(missing)} field"
                                   f"{'s are' if len(missing) > 1 else ' is'} required.")  # fmt: skip
            with bad_request_as("BadRequest"):
                rec = batches.create(body, scope=scope)
            return json_response(self._batch(rec, pool, batches.base_url))

        def list_batches(version: str, pool: str) -> Response:
            scope = _scope(pool, version)
            start = _int_param("from", 0)
            size = _int_param("size", MAX_PAGE_SIZE)
            if size > MAX_PAGE_SIZE or size < 0 or start < 0:
                raise DialectError(400, "BadRequest", f"size must be between 0 and {MAX_PAGE_SIZE} and from "
                                   f"must not be negative (from={start}, size={size}).")  # fmt: skip
            total, page = batches.listing(start, size, scope)
            return json_response({"from": start, "total": total,
                                  "sessions": [self._batch(r, pool, batches.base_url) for r in page]})

        def get_batch(version: str, pool: str, ident: str) -> Response:
            scope = _scope(pool, version)
            return json_response(self._batch(find(scope, ident), pool, batches.base_url))

        def cancel_batch(version: str, pool: str, ident: str) -> Response:
            scope = _scope(pool, version)
            rec = find(scope, ident)
            batches.delete(str(rec.id), scope=scope, forget=False)
            return json_response({"msg": "deleted"})

        def driver_log(pool: str, ident: int, app_id: str, name: str) -> Response:
            rec = find(_scope(pool), str(ident))
            shown = rec.view()["appId"]
            files = rec.driver_output()
            if shown is None or app_id != shown or files is None or files.path(name) is None:
                raise DialectError(404, "NotFound", f"No driver log {name} for application {app_id} of "
                                   f"Livy batch {ident}.")  # fmt: skip
            data, _, _ = files.read(name, 0, None)
            return download(data, name, "text/plain")

        rules: list[Rule] = [
            (_LIVY + "/batches", "synapse_create_batch", create_batch, ["POST"]),
            (_LIVY + "/batches", "synapse_list_batches", list_batches, ["GET"]),
            (_LIVY + "/batches/<ident>", "synapse_get_batch", get_batch, ["GET"]),
            (_LIVY + "/batches/<ident>", "synapse_cancel_batch", cancel_batch, ["DELETE"]),
            (_HISTORY, "synapse_driver_log", driver_log, ["GET"]),
            (_HISTORY + "/", "synapse_driver_log_slash", driver_log, ["GET"]),
        ]
        add_rules(app, rules, strict_slashes=False)

    def _batch(self, rec: BatchRecord, pool: str, base_url: str) -> dict[str, Any]:
        """``SparkBatchJob``: plain Livy, plus the Synapse fields with ``detailed=true``."""
        livy = rec.view(base_url)
        app_info = {k: v for k, v in livy["appInfo"].items() if v is not None}
        body: dict[str, Any] = {"id": rec.id, "name": rec.name, "appId": livy["appId"],
                                "appInfo": app_info or None, "state": rec.state, "log": livy["log"]}  # fmt: skip
        if not query_flag("detailed"):
            return body
        times = rec.state_times
        body.update({
            "livyInfo": livy_info(rec, rec.state),
            "workspaceName": request.host.split(".", 1)[0],
            "sparkPoolName": pool,
            "submitterName": None,
            "submitterId": None,
            "artifactId": rec.request.get("artifactId"),
            "jobType": "SparkBatch",
            "result": result_of(rec.state),
            "schedulerInfo": {
                "submittedAt": iso_time(rec.created_at), "scheduledAt": iso_time(times.get("starting")),
                "endedAt": iso_time(ended_at(rec, _FINAL)), "cancellationRequestedAt": iso_time(times.get("killed")),
                "currentState": scheduler_state(rec),
            },
            "pluginInfo": None,
            "errorInfo": error_info(rec),
            "tags": dict(rec.request.get("tags", {})) or None,
        })  # fmt: skip
        return body
