"""Parse Livy request bodies the way Livy's Jackson ``ObjectMapper`` does.

Unknown fields and wrong types are rejected with HTTP 400 and a Jackson-style message
(``JsonServlet``); scalars are coerced to strings as Jackson does (``args: [10]`` is accepted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hdiaks_widgets.errors import HdiaksError

__all__ = ["BATCH_FIELDS", "SESSION_FIELDS", "STATEMENT_FIELDS", "BadRequest", "parse_body"]

BATCH_CLASS = "org.apache.livy.server.batch.CreateBatchRequest"
SESSION_CLASS = "org.apache.livy.server.interactive.CreateInteractiveRequest"
STATEMENT_CLASS = "org.apache.livy.repl.ExecuteRequest"

_COMMON = {
    "proxyUser": "str",
    "jars": "list",
    "pyFiles": "list",
    "files": "list",
    "driverMemory": "str",
    "driverCores": "int",
    "executorMemory": "str",
    "executorCores": "int",
    "numExecutors": "int",
    "archives": "list",
    "queue": "str",
    "name": "str",
    "conf": "map",
}
BATCH_FIELDS: dict[str, str] = {"file": "str", "className": "str", "args": "list", **_COMMON}
SESSION_FIELDS: dict[str, str] = {
    "kind": "str",
    "heartbeatTimeoutInSecond": "int",
    "ttl": "str",
    "idleTimeout": "str",
    **_COMMON,
}
STATEMENT_FIELDS: dict[str, str] = {"code": "str", "kind": "str"}

_JAVA_TYPES = {
    "str": "java.lang.String",
    "int": "int",
    "list": "scala.collection.immutable.List<java.lang.String>",
    "map": "scala.collection.immutable.Map<java.lang.String,java.lang.String>",
}


class BadRequest(HdiaksError):
    """A request Livy would answer with 400; ``message`` becomes ``{"msg": ...}``."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean value"
    if isinstance(value, (int, float)):
        return f"Number value ({value})"
    if isinstance(value, str):
        return f'String "{value}"'
    if isinstance(value, list):
        return "Array value (token `JsonToken.START_ARRAY`)"
    return "Object value (token `JsonToken.START_OBJECT`)"


def _scalar_str(value: Any, where: str, kind: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise BadRequest(
        f"Cannot deserialize value of type `{_JAVA_TYPES[kind]}` from {_json_kind(value)}"
        f" (through reference chain: {where})"
    )


def _coerce(value: Any, kind: str, where: str) -> Any:
    if kind == "str":
        return _scalar_str(value, where, kind)
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise BadRequest(
            f"Cannot deserialize value of type `int` from {_json_kind(value)}: not a valid `int` value"
            f" (through reference chain: {where})"
        )
    if kind == "list":
        if not isinstance(value, list):
            raise BadRequest(
                f"Cannot deserialize value of type `{_JAVA_TYPES[kind]}` from {_json_kind(value)}"
                f" (through reference chain: {where})"
            )
        return [_scalar_str(v, where, "str") for v in value if v is not None]
    if not isinstance(value, dict):
        raise BadRequest(
            f"Cannot deserialize value of type `{_JAVA_TYPES[kind]}` from {_json_kind(value)}"
            f" (through reference chain: {where})"
        )
    return {str(k): _scalar_str(v, where, "str") for k, v in value.items() if v is not None}


def parse_body(raw: bytes, fields: Mapping[str, str], class_name: str) -> dict[str, Any]:
    """Decoded, coerced fields of a JSON object body; ``null`` values count as absent."""
    try:
        data = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"Unexpected character in JSON input: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"Cannot deserialize value of type `{class_name}` from {_json_kind(data)}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(f'"{k}"' for k in fields)
            raise BadRequest(
                f'Unrecognized field "{key}" (class {class_name}), not marked as ignorable '
                f"({len(fields)} known properties: {known}])"
                f'\n at [Source: (HttpInputOverHTTP); line: 1] (through reference chain: {class_name}["{key}"])'
            )
        if value is None:
            continue
        out[key] = _coerce(value, fields[key], f'{class_name}["{key}"]')
    return out
