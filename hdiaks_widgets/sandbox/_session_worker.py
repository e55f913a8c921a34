"""The long-lived Python process behind one interactive ``pyspark`` session.

Started by :mod:`hdiaks_widgets.sandbox.sessions` as ``python -m
hdiaks_widgets.sandbox._session_worker``. It creates a local SparkSession, then reads one JSON
request per line on stdin (``{"id", "code", "kind"}``) and answers one JSON line per request on
its original stdout. Everything else that writes to fd 1 (the JVM, user code outside a statement)
goes to stderr, which is the session log. SIGINT during a statement cancels it (pyspark's own
handler cancels running Spark jobs and raises ``KeyboardInterrupt``).
"""

from __future__ import annotations

import ast
import io
import json
import os
import sys
import traceback
from contextlib import redirect_stdout
from typing import Any, TextIO

_MAX_ROWS = 1000


def _protocol_channel() -> TextIO:
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    return channel


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _error(exc: BaseException, count: int) -> dict[str, Any]:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "status": "error",
        "execution_count": count,
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": lines,
    }


def _run_python(code: str, namespace: dict[str, Any], count: int) -> dict[str, Any]:
    buffer = io.StringIO()
    try:
        tree = ast.parse(code, "<stdin>", "exec")
        last: ast.expr | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body.pop().value  # type: ignore[attr-defined]
        with redirect_stdout(buffer):
            exec(compile(tree, "<stdin>", "exec"), namespace)  # noqa: S102 - the session's purpose
            value = eval(compile(ast.Expression(last), "<stdin>", "eval"), namespace) if last else None  # noqa: S307
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # user code may raise anything, SystemExit included
        return _error(exc, count)
    text = buffer.getvalue()
    if value is not None:
        text += repr(value)
    return {"status": "ok", "execution_count": count, "data": {"text/plain": text.rstrip("\n")}}


def _format_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [[("null" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"
    out = [rule, "|" + "|".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)) + "|", rule]
    out += ["|" + "|".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + "|" for r in cells]
    out.append(rule)
    return "\n".join(out)


def _run_sql(code: str, spark: Any, count: int) -> dict[str, Any]:
    try:
        frame = spark.sql(code)
        rows = [list(r) for r in frame.take(_MAX_ROWS)]
        columns = list(frame.columns)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return _error(exc, count)
    data = [[v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for v in r] for r in rows]
    return {
        "status": "ok",
        "execution_count": count,
        "data": {
            "text/plain": _format_table(columns, rows),
            "application/json": {"schema": frame.schema.jsonValue(), "data": data},
        },
    }


def main() -> int:
    channel = _protocol_channel()
    try:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(os.environ.get("HDIAKS_SANDBOX_MASTER", "local[2]"))
        builder = builder.appName(os.environ.get("HDIAKS_SANDBOX_APP_NAME", "livy-session"))
        for key, value in json.loads(os.environ.get("HDIAKS_SANDBOX_CONF", "{}")).items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        sc = spark.sparkContext
        ui = sc.uiWebUrl
    except BaseException as exc:
        traceback.print_exc()
        _send(channel, {"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _send(channel, {"event": "ready", "appId": sc.applicationId, "sparkUiUrl": ui})
    namespace: dict[str, Any] = {"spark": spark, "sc": sc, "sqlContext": spark, "__name__": "__main__"}
    while True:
        try:
            raw = sys.stdin.readline()
        except KeyboardInterrupt:  # a cancel that arrived just after its statement finished
            continue
        if not raw:
            break
        request = json.loads(raw)
        count = int(request["id"])
        try:
            if request.get("kind") == "sql":
                output = _run_sql(str(request["code"]), spark, count)
            else:
                output = _run_python(str(request["code"]), namespace, count)
        except KeyboardInterrupt:
            _send(channel, {"id": count, "cancelled": True})
            continue
        _send(channel, {"id": count, "output": output})
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
