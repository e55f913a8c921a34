"""tables: log parsing, filters, batch tables and escaped HTML (pure pandas, no I/O)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from hdiaks_widgets.models import AppInfo, Batch, BatchState, ListedBatches, LogLine
from hdiaks_widgets.tables import (
    BATCH_COLUMNS,
    LOG_COLUMNS,
    LogRecord,
    batch_html,
    batch_table,
    filter_log,
    link_html,
    linked_text_html,
    log_html,
    log_sources,
    log_table,
    parse_line,
    parse_lines,
)

SPARK_LOG = [
    "stdout: ",
    "Pi is roughly 3.141592",
    "\nstderr: ",
    "25/11/24 08:01:02 INFO SparkContext: Running Spark version 4.0.0",
    "25/11/24 08:01:03 WARN NativeCodeLoader: Unable to load native-hadoop library",
    "25/11/24 08:01:04 ERROR Executor: Exception in task 0.0 in stage 0.0 (TID 0)",
    "java.lang.RuntimeException: boom",
    "\tat org.apache.spark.examples.SparkPi$.main(SparkPi.scala:10)",
]


def test_parse_line_log4j_short_pattern() -> None:
    rec = parse_line("25/11/24 08:01:02 INFO SparkContext: Running Spark version 4.0.0", offset=7)
    assert (rec.line, rec.level, rec.logger, rec.message) == (7, "INFO", "SparkContext", "Running Spark version 4.0.0")
    assert rec.time == datetime(2025, 11, 24, 8, 1, 2)


def test_parse_line_iso_timestamp_with_millis() -> None:
    rec = parse_line("2025-11-24 08:01:02,123 WARN org.apache.spark.SparkConf: spark.x is deprecated")
    assert rec.level == "WARN"
    assert rec.logger == "org.apache.spark.SparkConf"
    assert rec.time == datetime(2025, 11, 24, 8, 1, 2, 123000)


def test_parse_line_spark4_structured_json() -> None:
    line = ('{"ts":"2025-11-24T08:01:02.349Z","level":"ERROR","msg":"Task failed",'
            '"context":{"task_id":"1"},"logger":"org.apache.spark.executor.Executor",'
            '"exception":{"class":"java.lang.RuntimeException","msg":"boom","stacktrace":[]}}')
    rec = parse_line(line)
    assert (rec.level, rec.logger) == ("ERROR", "Executor")
    assert rec.message == "Task failed [java.lang.RuntimeException: boom]"
    assert rec.time is not None and rec.time.year == 2025


def test_parse_line_python_warning_level_is_normalised() -> None:
    assert parse_line("2025-11-24 08:01:02 WARNING py4j: gone").level == "WARN"


def test_parse_line_plain_output_keeps_text() -> None:
    rec = parse_line("Pi is roughly 3.14")
    assert (rec.time, rec.level, rec.logger, rec.message) == (None, None, None, "Pi is roughly 3.14")


def test_parse_line_info_without_logger_keeps_whole_message() -> None:
    rec = parse_line("25/11/24 08:01:02 INFO Running job: 42")
    assert rec.logger is None
    assert rec.message == "Running job: 42"


def test_parse_lines_livy_section_markers_switch_stream() -> None:
    records, stream = parse_lines(SPARK_LOG)
    assert stream == "stderr"
    assert [r.stream for r in records][:2] == ["stdout", "stderr"]
    assert [r.line for r in records] == [1, 3, 4, 5, 6, 7]


def test_parse_lines_continues_stream_across_pages() -> None:
    first, stream = parse_lines(SPARK_LOG[:4])
    second, _ = parse_lines(SPARK_LOG[4:], start=4, stream=stream)
    assert [r.line for r in first + second] == [r.line for r in parse_lines(SPARK_LOG)[0]]
    assert all(r.stream == "stderr" for r in second)


def test_log_table_columns_and_types() -> None:
    frame = log_table(SPARK_LOG)
    assert tuple(frame.columns) == LOG_COLUMNS
    assert frame["line"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(frame["time"])
    assert list(frame["level"]) == ["", "INFO", "WARN", "ERROR", "", ""]


def test_log_table_empty_has_columns() -> None:
    assert tuple(log_table([]).columns) == LOG_COLUMNS


def test_filter_log_level_keeps_more_severe_and_unlevelled_lines() -> None:
    out = filter_log(log_table(SPARK_LOG), level="WARN")
    assert list(out["level"]) == ["", "WARN", "ERROR", "", ""]


def test_filter_log_text_is_literal_and_case_insensitive() -> None:
    out = filter_log(log_table(SPARK_LOG), text="pi IS ROUGHLY")
    assert list(out["message"]) == ["Pi is roughly 3.141592"]
    assert filter_log(log_table(SPARK_LOG), text="(").shape[0] == 2


def test_filter_log_last_n() -> None:
    assert list(filter_log(log_table(SPARK_LOG), last=2)["line"]) == [6, 7]
    assert filter_log(log_table(SPARK_LOG), last=0).empty


# What the run's log reader yields: LogLines that say where they were read from, no headers.
READ_LOG = [
    LogLine("25/11/24 08:01:00 INFO Client: Submitting application", "livy stderr"),
    LogLine("Pi is roughly 3.141592", "driver stdout"),
    LogLine("25/11/24 08:01:04 ERROR Executor: Exception in task 0.0", "driver stderr"),
    LogLine("stdout: ", "driver stdout"),  # a job line that reads like Livy's header
    LogLine("Application application_1_0001 failed 1 times", "diagnostics"),
    LogLine("25/11/24 08:01:05 INFO Client: Application report (state: FINISHED)", "livy stdout"),
]


def test_log_table_source_column_from_log_lines() -> None:
    frame = log_table(READ_LOG)
    assert list(frame["source"]) == ["livy stderr", "driver stdout", "driver stderr", "driver stdout",
                                     "diagnostics", "livy stdout"]
    assert list(frame["stream"]) == ["stderr", "stdout", "stderr", "stdout", "stderr", "stdout"]
    assert list(frame["line"]) == [0, 1, 2, 3, 4, 5]


def test_log_table_log_line_reading_like_a_header_is_a_line() -> None:
    assert "stdout: " in list(log_table(READ_LOG)["message"])


def test_log_table_plain_lines_take_their_source_from_livy_markers() -> None:
    frame = log_table(SPARK_LOG)
    assert list(frame["source"]) == ["livy stdout"] + ["livy stderr"] * 5
    assert list(frame["stream"]) == ["stdout"] + ["stderr"] * 5


def test_parse_lines_plain_lines_after_log_lines_keep_the_stream() -> None:
    records, stream = parse_lines([*READ_LOG, "plain"], stream="stderr")
    assert stream == "stderr" and records[-1].source == "livy stderr"


def test_log_sources_lists_present_sources_in_known_order() -> None:
    assert log_sources(log_table(READ_LOG)) == ["livy stdout", "livy stderr", "driver stdout", "driver stderr",
                                                "diagnostics"]
    assert log_sources(log_table([])) == []


@pytest.mark.parametrize(
    ("source", "messages"),
    [("driver stdout", ["Pi is roughly 3.141592", "stdout: "]),
     ("diagnostics", ["Application application_1_0001 failed 1 times"]),
     ("driver log", [])],
    ids=["driver-stdout", "diagnostics", "absent"],
)
def test_filter_log_by_source(source: str, messages: list[str]) -> None:
    assert list(filter_log(log_table(READ_LOG), source=source)["message"]) == messages


@pytest.mark.parametrize("source", [None, "", "all", "ALL"], ids=["none", "empty", "all", "ALL"])
def test_filter_log_source_all_keeps_every_line(source: str | None) -> None:
    assert len(filter_log(log_table(READ_LOG), source=source)) == len(READ_LOG)


def test_filter_log_source_combines_with_level() -> None:
    out = filter_log(log_table(READ_LOG), source="driver stderr", level="ERROR")
    assert list(out["logger"]) == ["Executor"]


def test_log_html_shows_the_source_column() -> None:
    page = log_html(log_table(READ_LOG))
    assert "<th>source</th>" in page and "<td>driver stderr</td>" in page


def _batch(**kw: object) -> Batch:
    base: dict[str, object] = {"id": 3, "state": BatchState.SUCCESS, "name": "pi", "app_id": "local-1"}
    base.update(kw)
    return Batch(**base)  # type: ignore[arg-type]


def test_batch_table_columns_and_elapsed() -> None:
    frame = batch_table([_batch()], elapsed={3: 7.25})
    assert list(frame.loc[0, ["id", "name", "state", "app_id"]]) == ["3", "pi", "success", "local-1"]
    assert frame.loc[0, "elapsed_s"] == pytest.approx(7.2, abs=0.06)


def test_batch_table_keeps_uuid_ids_and_string_keyed_elapsed() -> None:
    ident = "0b6f2c7e-8d3a-4c2e-9a43-1f0e6a7b8c9d"
    frame = batch_table([Batch(id=ident, state=BatchState.RUNNING, name="fabric")], elapsed={ident: 1.0})
    assert frame.loc[0, "id"] == ident and frame.loc[0, "elapsed_s"] == 1.0


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "&lt;already&gt; & ampersand",
    "' onmouseover='x",
]


@pytest.mark.parametrize("text", HOSTILE, ids=["script", "attr-break", "entities", "quote"])
def test_log_html_escapes_hostile_lines(text: str) -> None:
    page = log_html(log_table([f"25/11/24 08:01:02 ERROR Evil: {text}", text]))
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;" in page or "&#x27;" in page or "&amp;" in page


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd", "//evil.example/x",
     'http://x" onclick="y', "vbscript:msgbox"],
    ids=["javascript", "data", "file", "scheme-relative", "quote", "vbscript"],
)
def test_link_html_refuses_non_http_links(url: str) -> None:
    out = link_html(url, "Spark UI")
    assert "<a " not in out


def test_link_html_makes_http_links_clickable() -> None:
    out = link_html("https://cluster.example/sparkui/app-1?x=1&y=2", "Spark UI")
    assert out.startswith('<a href="https://cluster.example/sparkui/app-1?x=1&amp;y=2"')
    assert 'rel="noopener noreferrer"' in out


def test_batch_html_links_and_escapes() -> None:
    batch = _batch(
        name="<b>job</b>",
        app_info=AppInfo(driver_log_url="javascript:alert(1)", spark_ui_url="http://127.0.0.1:4040/"),
    )
    page = batch_html(batch_table([batch]))
    assert "&lt;b&gt;job&lt;/b&gt;" in page
    assert '<a href="http://127.0.0.1:4040/"' in page
    assert 'href="javascript' not in page
    assert 'data-state="success"' in page


def test_log_html_shows_time_of_day_with_full_timestamp_as_title() -> None:
    page = log_html(log_table(["2025-11-24 08:01:02,123 INFO SparkContext: Running Spark"]))
    assert '<td class="time" title="2025-11-24 08:01:02.123">08:01:02</td>' in page


def test_log_html_leaves_time_empty_for_program_output() -> None:
    page = log_html(log_table(["Pi is roughly 3.14"]))
    assert '<td class="time"></td>' in page


def test_log_html_shortens_logger_to_last_segment_with_full_name_as_title() -> None:
    page = log_html(log_table(["2025-11-24 08:01:02 INFO org.apache.spark.scheduler.DAGScheduler: Job 0 done"]))
    assert '<td class="logger" title="org.apache.spark.scheduler.DAGScheduler">DAGScheduler</td>' in page


def test_log_html_escapes_logger_title() -> None:
    record = LogRecord(0, None, "INFO", 'a.b"><script>x</script>.Evil', "m", "stderr")
    page = log_html(log_table([record]))
    assert "<script>" not in page and 'title="a.b&quot;&gt;&lt;script&gt;' in page


def test_log_html_fits_the_width_with_a_wrapping_message_column() -> None:
    page = log_html(log_table(SPARK_LOG))
    assert "table-layout:fixed" in page and "width:100%" in page
    assert '<col style="width:10ch"><col style="width:7ch"><col style="width:20ch"><col>' in page
    assert '<td class="msg">Pi is roughly 3.141592</td>' in page


NOTE = "lines were dropped — the full driver log is here: {url}"


def test_linked_text_html_links_an_http_url_and_escapes_the_rest() -> None:
    url = "https://nm.example/node/containerlogs/c_1/livy?a=1&b=2"
    out = linked_text_html("<b>" + NOTE.format(url=url), url)
    assert out.startswith("&lt;b&gt;lines were dropped")
    assert '<a href="https://nm.example/node/containerlogs/c_1/livy?a=1&amp;b=2"' in out
    assert out.count("<a ") == 1


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", 'http://x" onmouseover="alert(1)', "data:text/html,<script>alert(1)</script>",
     "http://x/<script>alert(1)</script>", "//evil.example/x"],
    ids=["javascript", "attr-break", "data", "script-in-path", "scheme-relative"],
)
def test_linked_text_html_hostile_url_stays_escaped_text(url: str) -> None:
    out = linked_text_html(NOTE.format(url=url), url)
    assert "<a " not in out and "<script" not in out and '" onmouseover' not in out


def test_linked_text_html_without_the_url_is_escaped_text() -> None:
    assert linked_text_html("a <i>note</i>", None) == "a &lt;i&gt;note&lt;/i&gt;"
    assert linked_text_html("a note", "https://elsewhere.example/") == "a note"


def test_batch_table_of_a_list_answer_equals_the_table_of_its_built_models() -> None:
    """``batch_table(page.batches)`` for a list answer reads the rows kept by ``ListedBatches``
    (no model built: S2 in docs/benchmarks.md); the frame is the one the models give, dtypes too."""
    from test_models import LIST_ITEMS

    listed = ListedBatches(LIST_ITEMS)
    fast = batch_table(listed)
    assert listed._built.count(None) >= 5  # the plain items were not built by the table
    slow = batch_table(tuple(listed))
    pd.testing.assert_frame_equal(fast, slow)
    assert list(fast.columns) == list(BATCH_COLUMNS) and fast["elapsed_s"].isna().all()
    assert list(fast["id"]) == ["0", "1", "f0e1", "2", "3", "4", "5", "6", "7"] and fast["id"].dtype == object
    pd.testing.assert_frame_equal(batch_table(ListedBatches()), batch_table(()))
    with_times = batch_table(listed, elapsed={"1": 4.0})  # elapsed given: the general path, same columns
    assert with_times.loc[1, "elapsed_s"] == 4.0 and list(with_times.columns) == list(BATCH_COLUMNS)
