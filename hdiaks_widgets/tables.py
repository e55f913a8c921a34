"""Pure pandas views of Livy data: batch tables, parsed driver logs, and safe HTML.

Nothing here does I/O or touches widgets. Log lines are parsed the way Spark prints them:

- log4j 1/2 default pattern ``%d{yy/MM/dd HH:mm:ss} %p %c{1}: %m`` (Spark 1.x–4.x
  ``log4j2.properties.template``), e.g. ``25/11/24 08:01:02 INFO SparkContext: Running Spark``;
- ISO timestamps (``2025-11-24 08:01:02,123 INFO ...``, ``2025-11-24T08:01:02.123Z WARN ...``);
- Spark 4 structured logging (``spark.log.structuredLogging.enabled``): one JSON object per line
  with ``ts``, ``level``, ``logger``, ``msg``;
- Livy's section markers ``stdout: `` / ``stderr: `` (a line of their own, possibly preceded by
  a newline) switch the stream of the lines that follow, in plain ``str`` lines (a raw page of
  Livy's view). A :class:`~hdiaks_widgets.models.LogLine` from the run's log reader is never a
  marker: it says where it was read from (``source``: ``livy stdout``, ``driver stderr``, ...).

Lines that match none of these (program output such as ``Pi is roughly 3.14``, stack traces)
keep their text as the message with no time, level or logger.

HTML rendering escapes every piece of text; only ``http``/``https`` URLs become links.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import pandas as pd

from hdiaks_widgets.models import LOG_SOURCES, Batch, ListedBatches

__all__ = [
    "BATCH_COLUMNS",
    "LEVELS",
    "LOG_COLUMNS",
    "SOURCE_ALL",
    "LogRecord",
    "batch_html",
    "batch_table",
    "concat_batch_tables",
    "filter_log",
    "link_html",
    "linked_text_html",
    "log_html",
    "log_sources",
    "log_table",
    "parse_line",
    "parse_lines",
    "safe_url",
]

Stream = Literal["stdout", "stderr"]
LOG_COLUMNS = ("line", "time", "level", "logger", "message", "stream", "source")
SOURCE_ALL = "all"  # the source filter's "no filter"
BATCH_COLUMNS = ("id", "name", "state", "app_id", "elapsed_s", "spark_ui", "driver_log", "owner")
_ROW_COLUMNS = ("id", "name", "state", "app_id", "spark_ui", "driver_log", "owner")  # models.BatchRow
# Severity order for "this level and above" filters. Spark prints WARN; Python logging WARNING.
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "SEVERE": "ERROR"}
_LEVEL_RE = r"(?P<level>TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL)"

_LOG4J_SHORT = re.compile(
    r"^(?P<time>\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:[.,]\d{1,6})?)\s+" + _LEVEL_RE
    + r"\s+(?:(?P<logger>[\w$.\-\[\]]+):\s?)?(?P<message>.*)$"
)
_LOG4J_ISO = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)\s+"
    + r"(?:\[[^\]]*\]\s+)?" + _LEVEL_RE
    + r"\s+(?:(?P<logger>[\w$.\-\[\]]+):\s?)?(?P<message>.*)$"
)
_STREAM_MARKER = re.compile(r"^\s*(?P<stream>stdout|stderr):\s*$")
# The stream of a line by where it was read from (the Kubernetes pod log and the diagnostics are
# in Livy's stdout and after its stderr section respectively).
_SOURCE_STREAM: dict[str, Stream] = {
    "livy stdout": "stdout", "livy stderr": "stderr", "driver stdout": "stdout",
    "driver stderr": "stderr", "driver log": "stdout", "diagnostics": "stderr",
}  # fmt: skip
_TIME_FORMATS = ("%y/%m/%d %H:%M:%S", "%y/%m/%d %H:%M:%S.%f")


@dataclass(frozen=True)
class LogRecord:
    """One log line. ``line`` is its position in the lines parsed (for a raw page of Livy's
    view, its offset, as ``from``); ``source`` is where it was read from (``models.LOG_SOURCES``)."""

    line: int
    time: datetime | None
    level: str | None
    logger: str | None
    message: str
    stream: Stream
    source: str = "livy stdout"


def _parse_time(text: str) -> datetime | None:
    text = text.replace(",", ".")
    if "/" in text:
        for fmt in _TIME_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _normal_level(level: str | None) -> str | None:
    if level is None:
        return None
    level = level.upper()
    return _LEVEL_ALIASES.get(level, level)


def _parse_json_line(line: str) -> tuple[datetime | None, str | None, str | None, str] | None:
    """Spark 4 structured logging (``org.apache.spark.internal.StructuredLogging``)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or "msg" not in data:
        return None
    ts = data.get("ts")
    level = data.get("level")
    logger = data.get("logger")
    message = str(data.get("msg"))
    exc = data.get("exception")
    if isinstance(exc, Mapping) and exc.get("msg"):
        message += f" [{exc.get('class', 'exception')}: {exc.get('msg')}]"
    return (
        _parse_time(str(ts)) if ts is not None else None,
        _normal_level(str(level)) if level is not None else None,
        str(logger).rsplit(".", 1)[-1] if logger is not None else None,
        message,
    )


def _source_of(line: str, stream: Stream) -> tuple[Stream, str]:
    """Stream and source of a line: a ``LogLine`` carries its source, a plain line has the
    stream in effect (from Livy's markers) as ``livy <stream>``."""
    source = getattr(line, "source", None)
    if isinstance(source, str):
        return _SOURCE_STREAM.get(source, stream), source
    return stream, f"livy {stream}"


def parse_line(line: str, *, offset: int = 0, stream: Stream = "stdout") -> LogRecord:
    """Parse one log line; never raises (unknown formats keep the text as the message).

    A :class:`~hdiaks_widgets.models.LogLine` gives the record its ``source`` (and the stream
    that source belongs to); a plain line is ``livy <stream>``.
    """
    stream, source = _source_of(line, stream)
    text = str(line).rstrip("\r\n")
    if text.startswith("{"):
        parsed = _parse_json_line(text)
        if parsed is not None:
            return LogRecord(offset, parsed[0], parsed[1], parsed[2], parsed[3], stream, source)
    for pattern in (_LOG4J_SHORT, _LOG4J_ISO):
        match = pattern.match(text)
        if match:
            logger = match.group("logger")
            return LogRecord(
                line=offset,
                time=_parse_time(match.group("time")),
                level=_normal_level(match.group("level")),
                logger=logger.strip() if logger else None,
                message=match.group("message"),
                stream=stream,
                source=source,
            )
    return LogRecord(offset, None, None, None, text, stream, source)


def parse_lines(
    lines: Iterable[str], *, start: int = 0, stream: Stream = "stdout"
) -> tuple[list[LogRecord], Stream]:
    """Parse consecutive log lines beginning at offset ``start``.

    Returns the records and the stream in effect after the last line, so the next page of an
    incremental tail continues in the right stream. In plain lines, Livy's ``stdout: ``/``stderr: ``
    marker lines switch the stream and are not records themselves (their offsets are skipped). A
    ``LogLine`` is always a record, with its own source: the reader already took the markers out,
    so a job line that reads ``stdout: `` is kept.
    """
    records: list[LogRecord] = []
    current: Stream = stream
    for offset, line in enumerate(lines, start=start):
        marker = None if isinstance(getattr(line, "source", None), str) else _STREAM_MARKER.match(line)
        if marker:
            current = "stderr" if marker.group("stream") == "stderr" else "stdout"
            continue
        records.append(parse_line(line, offset=offset, stream=current))
    return records, current


def log_table(records: Iterable[LogRecord] | Sequence[str], *, start: int = 0) -> pd.DataFrame:
    """A DataFrame with columns ``line, time, level, logger, message, stream, source``.

    Accepts parsed records or lines (parsed from offset ``start``, stream ``stdout``): the run's
    ``LogLine`` objects keep their source, plain lines follow Livy's markers.
    """
    raw = list(records)
    items: list[LogRecord]
    if raw and isinstance(raw[0], str):
        items, _ = parse_lines([x for x in raw if isinstance(x, str)], start=start)
    else:
        items = [r for r in raw if isinstance(r, LogRecord)]
    rows = [(r.line, r.time, r.level or "", r.logger or "", r.message, r.stream, r.source) for r in items]
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    frame["line"] = frame["line"].astype("int64")
    frame["time"] = pd.to_datetime(frame["time"], errors="coerce", utc=False)
    for col in ("level", "logger", "message", "stream", "source"):
        frame[col] = frame[col].astype(object)
    return frame


def log_sources(frame: pd.DataFrame) -> list[str]:
    """The sources present in a log table, known ones in ``models.LOG_SOURCES`` order first."""
    present = set(frame["source"].dropna().astype(str)) if "source" in frame else set()
    known = [s for s in LOG_SOURCES if s in present]
    return known + sorted(present - set(LOG_SOURCES))


def filter_log(
    frame: pd.DataFrame,
    *,
    level: str | None = None,
    text: str | None = None,
    last: int | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Rows at ``level`` or more severe (lines without a level — program output, stack traces —
    are always kept), containing ``text`` (case-insensitive, literal), read from ``source``
    (``None`` or ``"all"``: every source), and only the last N."""
    out = frame
    if source and source.lower() != SOURCE_ALL:
        out = out[out["source"] == source]
    wanted = _normal_level(level) if level and level.upper() != "ALL" else None
    if wanted in LEVELS:
        keep = set(LEVELS[LEVELS.index(wanted) :]) | {""}
        out = out[out["level"].isin(keep)]
    if text:
        out = out[out["message"].str.contains(text, case=False, regex=False, na=False)
                  | out["logger"].str.contains(text, case=False, regex=False, na=False)]
    if last is not None and last >= 0:
        out = out.tail(last) if last else out.iloc[0:0]
    return out


def batch_table(
    batches: Iterable[Batch], *, elapsed: Mapping[int | str, float | None] | None = None
) -> pd.DataFrame:
    """One row per batch: id, name, state, app id, elapsed seconds, Spark UI and driver-log URLs."""
    # Ids are opaque strings (Fabric's are UUIDs); ``elapsed`` may be keyed by int or str ids.
    times = {str(k): _seconds(v) for k, v in (elapsed or {}).items()}
    if type(batches) is ListedBatches and batches and not times:  # a list answer: its rows, no Batch built (S2)
        frame = pd.DataFrame(batches.rows(), columns=list(_ROW_COLUMNS))
        frame.insert(4, "elapsed_s", _NAN)
        frame["id"] = frame["id"].astype(object)
        return frame
    # Rows as tuples, not dicts: pandas builds a 1,000-row frame from them in about half the
    # time; the elapsed seconds are floats already (NaN when unknown), so no column is
    # converted after the frame is built (S2 in docs/benchmarks.md).
    rows = [
        (b.id, b.name or "", b.state.value, b.app_id or "", times.get(b.id, _NAN) if times else _NAN,
         b.app_info.spark_ui_url or "", b.app_info.driver_log_url or "", b.owner or "")
        for b in batches
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(BATCH_COLUMNS))
    frame["id"] = frame["id"].astype(object)
    return frame


_NAN = float("nan")


def _seconds(value: Any) -> float:
    """Elapsed seconds to one decimal; anything that is not a number is unknown (NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _NAN
    try:
        return round(float(value), 1)
    except (ValueError, OverflowError):
        return _NAN


def concat_batch_tables(frames: Mapping[str, pd.DataFrame], *, column: str = "target") -> pd.DataFrame:
    """Batch tables of several Livy services as one, each row labelled with its key in ``frames``
    (a first ``target`` column), in the order given. Ids stay as each service gave them: the same
    id may appear under two targets."""
    labelled = [frame.assign(**{column: label}) for label, frame in frames.items() if not frame.empty]
    columns = [column, *(c for c in BATCH_COLUMNS if c != column)]
    if not labelled:
        return pd.DataFrame(columns=columns).astype({"id": object})
    joined = pd.concat(labelled, ignore_index=True)
    return joined[[column, *(c for c in joined.columns if c != column)]]


# -- HTML -------------------------------------------------------------------------------------

STATE_COLOURS: dict[str, str] = {
    "success": "#1a7f37",
    "dead": "#cf222e",
    "error": "#cf222e",
    "killed": "#9a6700",
    "running": "#0969da",
    "busy": "#0969da",
    "idle": "#0969da",
    "starting": "#8250df",
    "recovering": "#8250df",
    "not_started": "#6e7781",
    "shutting_down": "#9a6700",
    "purged": "#6e7781",
}
_LEVEL_COLOURS = {"ERROR": "#cf222e", "FATAL": "#cf222e", "WARN": "#9a6700"}


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL without control characters, else ``None``."""
    if not url or any(ord(ch) < 32 or ch in "\"'<>` " for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def linked_text_html(text: str, url: str | None) -> str:
    """``text`` escaped, with each occurrence of ``url`` in it made a link (http/https only;
    any other URL stays escaped text). For one sentence that names a URL, like a log note."""
    if not url or url not in text:
        return html.escape(text)
    return link_html(url).join(html.escape(part) for part in text.split(url))


def link_html(url: str | None, text: str | None = None) -> str:
    """An ``<a>`` for http(s) URLs; anything else is shown as escaped text, never as a link."""
    label = html.escape(text if text is not None else (url or ""))
    good = safe_url(url)
    if good is None:
        return label
    return (
        f'<a href="{html.escape(good, quote=True)}" target="_blank" rel="noopener noreferrer" '
        f'style="color:#0969da;text-decoration:underline">{label}</a>'
    )


def state_html(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#6e7781")
    return (
        f'<span class="hdiaks-state" data-state="{html.escape(state, quote=True)}" '
        f'style="background:{colour};color:#fff;padding:1px 8px;border-radius:10px;'
        f'font-weight:600">{html.escape(state)}</span>'
    )


def _cell(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, pd.Timestamp):
        return html.escape(value.strftime("%Y-%m-%d %H:%M:%S"))
    return html.escape(str(value))


_TABLE_STYLE = (
    '<style>.hdiaks-table{border-collapse:collapse;font-size:12px;font-family:monospace}'
    ".hdiaks-table th,.hdiaks-table td{border-bottom:1px solid #ddd;padding:2px 6px;"
    "text-align:left;vertical-align:top}.hdiaks-table td.msg{white-space:pre-wrap;"
    "word-break:break-word;min-width:30em}.hdiaks-table td.time{white-space:nowrap}</style>"
)


def batch_html(frame: pd.DataFrame) -> str:
    """HTML for :func:`batch_table`: escaped text, coloured states, clickable http(s) links."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body: list[str] = []
    for data in frame.to_dict("records"):
        cells: list[str] = []
        for col in frame.columns:
            value = data.get(col)
            if col == "state":
                cells.append(f"<td>{state_html(str(value))}</td>")
            elif col == "spark_ui":
                cells.append(f"<td>{link_html(str(value or ''), 'Spark UI' if value else '')}</td>")
            elif col == "driver_log":
                cells.append(f"<td>{link_html(str(value or ''), 'driver log' if value else '')}</td>")
            else:
                cells.append(f"<td>{_cell(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'{_TABLE_STYLE}<table class="hdiaks-table hdiaks-batch-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# The log table fits the notebook's width: fixed layout, narrow columns sized for what they hold
# (time of day, level, the logger's last segment) and the message taking the rest, wrapped. The
# full timestamp and logger name stay in each cell's title (a tooltip).
_LOG_STYLE = (
    "<style>.hdiaks-log-table{width:100%;min-width:80ch;table-layout:fixed}"
    ".hdiaks-log-table th{position:sticky;top:0;background:var(--jp-layout-color0,#fff)}"
    ".hdiaks-log-table td{line-height:1.35;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    ".hdiaks-log-table td.msg{white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal;min-width:0}</style>"
)
_LOG_WIDTHS = {"line": "7ch", "time": "10ch", "level": "7ch", "logger": "20ch", "stream": "8ch",
               "source": "14ch"}


def _short_logger(name: str) -> str:
    """``org.apache.spark.scheduler.DAGScheduler`` → ``DAGScheduler`` (log4j's ``%c{1}``)."""
    return name.rstrip(".").rsplit(".", 1)[-1] or name


def _log_cell(col: str, value: Any) -> str:
    """One log cell: time of day and short logger shown, the full value as the title."""
    if col == "message":
        return f'<td class="msg">{_cell(value)}</td>'
    if col == "time":
        if not isinstance(value, pd.Timestamp) or value is pd.NaT:
            return '<td class="time"></td>'
        full = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            full += f".{value.microsecond // 1000:03d}"
        shown = html.escape(value.strftime("%H:%M:%S"))
        return f'<td class="time" title="{html.escape(full, quote=True)}">{shown}</td>'
    if col == "logger" and value:
        name = str(value)
        short = _short_logger(name)
        return f'<td class="logger" title="{html.escape(name, quote=True)}">{html.escape(short)}</td>'
    return f"<td>{_cell(value)}</td>"


def log_html(frame: pd.DataFrame) -> str:
    """HTML for :func:`log_table`. Every log text is escaped: a log line is untrusted input."""
    cols = "".join(f'<col style="width:{_LOG_WIDTHS[c]}">' if c in _LOG_WIDTHS else "<col>" for c in frame.columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body: list[str] = []
    for data in frame.to_dict("records"):
        level = str(data.get("level") or "")
        colour = _LEVEL_COLOURS.get(level)
        style = f' style="color:{colour}"' if colour else ""
        cells = "".join(_log_cell(str(col), data.get(col)) for col in frame.columns)
        body.append(f"<tr{style}>{cells}</tr>")
    return (
        f'{_TABLE_STYLE}{_LOG_STYLE}<table class="hdiaks-table hdiaks-log-table"><colgroup>{cols}</colgroup>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
