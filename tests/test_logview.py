"""The aligning log reader against Livy's real view shapes (PROTOCOL.md §2.7).

The server side of these tests is the sandbox's own ``LogBuffer`` (two evicting queues, a view
rebuilt per request, in each backend's shape) behind a tiny in-memory ``get_log``: the reader's
decisions are driven print by print and poll by poll, which a real Spark job cannot do. The same
reader runs against the real sandbox and real Spark in ``test_sandbox_logs.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from hdiaks_widgets.logview import (
    DriverLogReader,
    LivyLogReader,
    ViewAligner,
    job_output,
    overlap,
    parse_container_page,
    split_view,
    utf8_len,
)
from hdiaks_widgets.models import AppInfo, Batch, BatchState, LogLine, LogPage
from hdiaks_widgets.run import BatchRun, OffsetLogReader
from hdiaks_widgets.sandbox.logbuf import DriverFiles, LogBuffer
from hdiaks_widgets.sandbox.nodemanager import file_page, listing_page


class ViewServer:
    """``get_batch``/``get_log`` over a sandbox LogBuffer (Livy's serializeLogs paging)."""

    def __init__(self, buf: LogBuffer, *, driver_url: str | None = None) -> None:
        self.buf = buf
        self.state = BatchState.RUNNING
        self.driver_url = driver_url
        self.log_requests = 0

    def batch(self) -> Batch:
        return Batch(id=0, state=self.state, name="storm", app_id="app-0",
                     app_info=AppInfo(driver_log_url=self.driver_url))

    def get_batch(self, batch_id: int | str) -> Batch:
        return self.batch()

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        self.log_requests += 1
        return LogPage.from_json(self.buf.page_json(0, start, size))


def _numbers(lines: list[str], prefix: str) -> list[int]:
    return [int(m.group(1)) for ln in lines if (m := re.fullmatch(rf"{prefix} (\d+)", str(ln)))]


# -- pure helpers ------------------------------------------------------------------------------------


def test_split_view_process_yarn_kubernetes() -> None:
    assert split_view(["stdout: ", "a", "\nstderr: ", "b", "c"]) == [("stdout", ["a"]), ("stderr", ["b", "c"])]
    assert split_view(["stdout: ", "\nstderr: ", "x", "\nYARN Diagnostics: ", "d1"])[-1] == ("yarn", ["d1"])
    k8s = split_view(["stdout: ", "p", "\nstderr: ", "s", "\nKubernetes Diagnostics: "])
    assert [k for k, _ in k8s] == ["stdout", "stderr", "kubernetes"]
    # A job line that reads "stdout: " is a line, not a second header.
    assert split_view(["stdout: ", "stdout: ", "\nstderr: "])[0] == ("stdout", ["stdout: "])


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([], ["a"], 0),
        (["a", "b", "c"], ["b", "c", "d"], 2),
        (["a", "b", "c"], ["x", "y"], 0),
        (["a", "b", "a", "b"], ["a", "b", "c"], 2),
        (["x", "x", "x"], ["x", "x", "x", "y"], 3),
        (["a", "b"], ["a", "b"], 2),
        (["q", "a", "b", "a"], ["b", "a", "b", "a", "z"], 2),
    ],
)
def test_overlap_is_longest_suffix_prefix(old: list[str], new: list[str], expected: int) -> None:
    assert overlap(old, new) == expected


def test_parse_container_page_reads_pre_and_length(tmp_path: Path) -> None:
    files = DriverFiles(tmp_path / "c")
    files.write("stdout", "Pi is roughly 3.14 <b>&amp;</b>")
    page = file_page("container_1", "stdout", files, "http://nm/node/containerlogs/container_1/livy", 0, None)
    text, length = parse_container_page(page)
    assert text == "Pi is roughly 3.14 <b>&amp;</b>\n"
    assert length == files.size("stdout")
    assert "stdout : Total file length" in listing_page("container_1", files, "http://nm")
    assert parse_container_page("plain text\n") == ("plain text\n", None)


def test_job_output_prefers_driver_lines() -> None:
    lines = [LogLine("Application report", "livy stderr"), LogLine("boom Exception", "driver stderr"),
             LogLine("User class threw exception: boom", "diagnostics")]
    assert job_output(lines) == [lines[1], lines[2]]
    plain = ["a", "b"]
    assert job_output(plain) == plain


# -- aligning a rotating view ------------------------------------------------------------------------


def _storm(buf: LogBuffer, server: ViewServer, reader: LivyLogReader, bursts: list[tuple[int, int]]) -> list[str]:
    """Print bursts (stdout count, stderr count), reading the view after each; return all lines read."""
    shown: list[str] = []
    out = err = 0
    for n_out, n_err in bursts:
        for _ in range(max(n_out, n_err)):
            if n_out:
                out += 1
                n_out -= 1
                buf.append("stdout", f"out {out}")
            if n_err:
                err += 1
                n_err -= 1
                buf.append("stderr", f"err {err}")
        shown += reader.read(server, server.batch()).lines
    server.state = BatchState.DEAD
    shown += reader.read(server, server.batch()).lines
    return shown


@settings(max_examples=150, deadline=None)
@given(
    bursts=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 120)), min_size=1, max_size=25),
    size=st.sampled_from([5, 20, 50]),
)
def test_aligned_view_never_repeats_keeps_order_and_shows_the_end(bursts: list[tuple[int, int]], size: int) -> None:
    buf = LogBuffer("process", size)
    server = ViewServer(buf)
    reader = LivyLogReader(cache_log_size=size)
    shown = _storm(buf, server, reader, bursts)
    printed = {"out": buf.printed["stdout"], "err": buf.printed["stderr"]}
    for prefix, source in (("out", "livy stdout"), ("err", "livy stderr")):
        numbers = _numbers(shown, prefix)
        assert numbers == sorted(set(numbers)), "a line shown twice or out of order"
        assert numbers[-min(size, printed[prefix]):] == list(
            range(printed[prefix] - min(size, printed[prefix]) + 1, printed[prefix] + 1)
        ), "the final window of the stream is not all shown"
        assert all(ln.source == source for ln in shown if str(ln).startswith(prefix))
        if len(numbers) < printed[prefix]:
            assert reader.gaps >= 1, "lines were lost and nothing said so"
    if reader.gaps == 0:
        assert len(shown) == printed["out"] + printed["err"]


def test_offset_reader_on_the_real_view_repeats_and_loses_lines() -> None:
    """Why the aligning reader exists: paging by offset is wrong once a queue is full."""
    buf = LogBuffer("process", 20)
    server = ViewServer(buf)
    offset, aligned = OffsetLogReader(), LivyLogReader(cache_log_size=20)
    by_offset: list[str] = []
    by_content: list[str] = []
    for i in range(1, 301):
        buf.append("stdout", f"out {i}")
        buf.append("stderr", f"err {i}")
        if i % 10 == 0:
            by_offset += offset.read(server, server.batch()).lines
            by_content += aligned.read(server, server.batch()).lines
    assert len(_numbers(by_offset, "out")) < 100  # the offset tail goes silent once the view is full
    assert _numbers(by_content, "out") == list(range(1, 301))
    assert _numbers(by_content, "err") == list(range(1, 301))
    assert aligned.gaps == 0


def test_gap_is_counted_and_noted_once() -> None:
    buf = LogBuffer("process", 10)
    server = ViewServer(buf)
    reader = LivyLogReader(cache_log_size=10)
    buf.append("stdout", "out 1")
    first = reader.read(server, server.batch())
    for i in range(2, 100):
        buf.append("stdout", f"out {i}")
    second = reader.read(server, server.batch())
    for i in range(100, 200):
        buf.append("stdout", f"out {i}")
    third = reader.read(server, server.batch())
    assert first.gaps == 0 and first.note is None
    assert second.gaps == 1 and second.note is not None
    assert "Livy keeps only the last 10 lines of each stream" in second.note
    assert third.gaps == 1 and third.note is None  # said once
    assert reader.gaps == 2


def test_identical_lines_are_never_shown_twice() -> None:
    buf = LogBuffer("process", 5)
    server = ViewServer(buf)
    reader = LivyLogReader(cache_log_size=5)
    shown: list[str] = []
    for _ in range(20):
        buf.append("stderr", "WARN same line")
        shown += reader.read(server, server.batch()).lines
    assert 1 <= len(shown) <= 20


def test_yarn_diagnostics_are_shown_once_at_the_end() -> None:
    buf = LogBuffer("yarn", 50)
    server = ViewServer(buf)
    reader = LivyLogReader()
    buf.append("stderr", "INFO Client: Application report for application_1_0001 (state: RUNNING)")
    buf.set_diagnostics(["AM container is launched, waiting for AM container to Register with RM"])
    running = reader.read(server, server.batch()).lines
    assert [ln.source for ln in running] == ["livy stderr"]
    buf.set_diagnostics(["User class threw exception: java.lang.IllegalStateException: boom"])
    server.state = BatchState.DEAD
    end = reader.read(server, server.batch()).lines
    again = reader.read(server, server.batch()).lines
    assert [(str(ln), ln.source) for ln in end] == [
        ("User class threw exception: java.lang.IllegalStateException: boom", "diagnostics")]
    assert again == ()


def test_kubernetes_driver_window_is_followed_without_repeats() -> None:
    buf = LogBuffer("kubernetes", 15)
    server = ViewServer(buf)
    reader = LivyLogReader(cache_log_size=15)
    shown: list[LogLine] = []
    for i in range(1, 121):
        buf.driver("stdout", f"drv {i}")
        if i % 4 == 0:
            buf.append("stderr", f"err {i // 4}")  # the pod watcher's status lines
        if i % 7 == 0:
            shown += reader.read(server, server.batch()).lines
    server.state = BatchState.SUCCESS
    buf.set_diagnostics(["pod-1", "\tphase: Succeeded"])
    shown += reader.read(server, server.batch()).lines
    assert _numbers(shown, "drv") == list(range(1, 121))
    assert _numbers(shown, "err") == list(range(1, 31))
    assert {ln.source for ln in shown if str(ln).startswith("drv")} == {"driver log"}
    assert [str(ln) for ln in shown if ln.source == "diagnostics"] == ["pod-1", "\tphase: Succeeded"]


def test_kubernetes_stderr_section_is_two_queues_back_to_back() -> None:
    aligner = ViewAligner(cache_log_size=50)
    aligner.shape = "kubernetes"
    k8s = ["stdout: ", "\nstderr: ", "o1", "e1", "e2", "\nKubernetes Diagnostics: "]
    first, _ = aligner.feed(k8s, finished=False)
    second, gaps = aligner.feed(["stdout: ", "\nstderr: ", "o1", "o2", "e1", "e2", "e3",
                                 "\nKubernetes Diagnostics: "], finished=False)
    assert [str(x) for x in first] == ["o1", "e1", "e2"]
    assert [str(x) for x in second] == ["o2", "e3"] and gaps == 0


# -- the driver log by byte range --------------------------------------------------------------------


class PageFetcher:
    """``get_text`` answering NodeManager pages from DriverFiles, like the sandbox route."""

    def __init__(self, files: DriverFiles) -> None:
        self.files = files
        self.calls: list[dict[str, Any]] = []

    def get_text(self, url: str, *, params: dict[str, int] | None = None) -> str:
        params = params or {}
        self.calls.append(params)
        name = url.rstrip("/").rsplit("/", 1)[1]
        return file_page("container_1", name, self.files, "http://nm", params.get("start", -4096), params.get("end"))


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_driver_log_read_by_byte_range_is_exact(tmp_path: Path, chunk: int) -> None:
    files = DriverFiles(tmp_path / "c")
    fetch = PageFetcher(files)
    reader = DriverLogReader("http://nm/node/containerlogs/container_1/livy", chunk=chunk, max_chunks=10_000)
    expected = {"stdout": [], "stderr": []}  # type: dict[str, list[str]]
    got: list[LogLine] = []
    for i in range(1, 60):
        stream = "stdout" if i % 3 else "stderr"
        line = f"{stream} {i} π≈3.14 <&> " + "x" * (i % 11)
        files.write(stream, line)  # type: ignore[arg-type]
        expected[stream].append(line)
        if i % 9 == 0:
            got += reader.read(fetch, finished=False)[0]
    # A last line without its newline is kept until the job ends.
    with open(files.directory / "stderr", "a", encoding="utf-8") as fh:
        fh.write("final error without newline")
    got += reader.read(fetch, finished=False)[0]
    assert "final error without newline" not in got
    lines, at_end = reader.read(fetch, finished=True)
    got += lines
    expected["stderr"].append("final error without newline")
    assert at_end
    for stream in ("stdout", "stderr"):
        assert [str(x) for x in got if x.source == f"driver {stream}"] == expected[stream]
    assert all(call["start"] >= 0 for call in fetch.calls)


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_driver_log_copy_writes_each_files_own_text(tmp_path: Path, chunk: int) -> None:
    files = DriverFiles(tmp_path / "c")
    fetch = PageFetcher(files)
    reader = DriverLogReader("http://nm/node/containerlogs/container_1/livy", chunk=chunk, max_chunks=10_000)
    copied = {"stdout": "", "stderr": ""}

    def write(name: str, text: str) -> None:
        copied[name] += text

    for i in range(1, 60):
        stream = "stdout" if i % 3 else "stderr"
        # Multi-byte characters a byte window can cut, HTML to unescape, lines longer than a window.
        files.write(stream, f"{stream} {i} π≈3.14 <&> " + "x" * (i % 11) + "y" * (100 if i % 17 == 0 else 0))  # type: ignore[arg-type]
        if i % 9 == 0:
            reader.copy(fetch, write, finished=False)
    with open(files.directory / "stderr", "a", encoding="utf-8") as fh:
        fh.write("final error without newline")
    reader.copy(fetch, write, finished=False)
    assert not copied["stderr"].endswith("final error without newline")  # kept until the job ends
    while not reader.copy(fetch, write, finished=True):
        pass
    for stream in ("stdout", "stderr"):
        assert copied[stream] == (files.directory / stream).read_text(encoding="utf-8")
    assert reader.bytes == sum(len(text.encode("utf-8")) for text in copied.values())


def test_batch_run_uses_the_aligning_reader_by_default() -> None:
    buf = LogBuffer("process", 10)
    server = ViewServer(buf)
    run = BatchRun(server, 0, name="storm")  # type: ignore[arg-type]
    for i in range(1, 8):
        buf.append("stdout", f"out {i}")
    run.poll()
    for i in range(8, 60):
        buf.append("stdout", f"out {i}")
    buf.append("stderr", "java.lang.IllegalStateException: last words")
    server.state = BatchState.DEAD
    run.poll()
    snap = run.poll()
    assert snap.finished
    assert snap.log_gaps == 1 and snap.log_note and "dropped" in snap.log_note
    assert _numbers(list(snap.lines), "out") == [*range(1, 8), *range(50, 60)]
    assert snap.error and "last words" in snap.error


class BrokenDriverLog(ViewServer):
    def get_text(self, url: str, *, params: dict[str, int] | None = None) -> str:
        from hdiaks_widgets.errors import LivyHTTPError

        raise LivyHTTPError(404, "no such container", method="GET", url=url)


def test_unreadable_driver_log_falls_back_to_livys_view_with_one_note() -> None:
    buf = LogBuffer("yarn", 50)
    server = BrokenDriverLog(buf, driver_url="http://wn0.internal:30060/node/containerlogs/container_1/livy")
    reader = LivyLogReader()
    notes = []
    for i in range(1, 6):
        buf.append("stderr", f"err {i}")
        delta = reader.read(server, server.batch())
        notes += [delta.note] if delta.note else []
        assert [str(x) for x in delta.lines] == [f"err {i}"]  # Livy's view still flows
    assert len(notes) == 1 and "could not be read" in notes[0] and "HTTP 404" in notes[0]


class _Recorder(requests.adapters.BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str | None]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen.append((str(request.url), request.headers.get("Authorization")))
        response = requests.Response()
        response.status_code = 200
        response._content = b"<html><pre>line\n</pre></html>"
        response.url = str(request.url)
        return response

    def close(self) -> None:
        pass


class _Bearer(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer canary-token-7f3a"
        return request


def test_driver_log_credentials_go_only_to_livys_own_origin() -> None:
    from hdiaks_widgets.livy import LivyClient

    recorder = _Recorder()
    session = requests.Session()
    session.mount("http://", recorder)
    session.mount("https://", recorder)
    client = LivyClient("https://cluster.example/livy", session=session, auth=_Bearer())
    client.get_text("https://cluster.example/yarnui/x/stdout/", params={"start": 0})
    client.get_text("https://cluster.example:8443/node/containerlogs/c/livy/stdout/")
    client.get_text("http://wn0.internal:30060/node/containerlogs/c/livy/stdout/")
    assert [auth for _, auth in recorder.seen] == ["Bearer canary-token-7f3a", None, None]


def test_hdinsight_gateway_rewrite_of_the_internal_nodemanager_url() -> None:
    from hdiaks_widgets.wire import gateway_log_url

    url = "http://wn0-abc.internal.cloudapp.net:30060/node/containerlogs/container_e01_1_0001_01_000001/livy"
    assert gateway_log_url(url, "https://mycluster.azurehdinsight.net/livy") == (
        "https://mycluster.azurehdinsight.net/yarnui/jobhistory/logs/wn0-abc.internal.cloudapp.net/port/30060/"
        "container_e01_1_0001_01_000001/container_e01_1_0001_01_000001/livy"
    )
    assert gateway_log_url("https://other.example/x", "https://mycluster.azurehdinsight.net/livy") == (
        "https://other.example/x")


class RewritingServer(ViewServer):
    """A server whose driver-log URL the client rewrites (classic HDInsight's gateway form)."""

    def __init__(self, buf: LogBuffer, files: DriverFiles) -> None:
        super().__init__(buf, driver_url="http://wn0.internal:30060/node/containerlogs/container_1/livy")
        self.pages = PageFetcher(files)
        self.fetched: list[str] = []

    def resolve_log_url(self, url: str) -> str:
        return "https://gw.example/yarnui/jobhistory/logs/wn0.internal/port/30060/container_1/container_1/livy"

    def get_text(self, url: str, *, params: dict[str, int] | None = None) -> str:
        self.fetched.append(url)
        return self.pages.get_text(url, params=params)


def test_rewritten_driver_log_url_keeps_its_offsets_between_polls(tmp_path: Path) -> None:
    files = DriverFiles(tmp_path / "c")
    buf = LogBuffer("yarn", 50)
    buf.append("stderr", "INFO Client: Application report (state: RUNNING)")
    server = RewritingServer(buf, files)
    reader = LivyLogReader()
    shown: list[str] = []
    for i in range(1, 6):
        files.write("stdout", f"out {i}")
        shown += [str(x) for x in reader.read(server, server.batch()).lines if x.source == "driver stdout"]
    assert shown == [f"out {i}" for i in range(1, 6)]
    assert all(url.startswith("https://gw.example/yarnui/") for url in server.fetched)


@pytest.mark.parametrize(("page", "expected"), [
    ("<html><p>Log Length: 12</p><pre>a &amp; b\nc\n</pre></html>", ("a & b\nc\n", 12)),
    ("<html><pre>Log Length: 5\n</pre><p>Log Length: 2</p></html>", ("Log Length: 5\n", 2)),
    ("<html><pre>a\n</pre><p>Log Length: 9</p><pre>b\n</pre></html>", ("a\nb\n", 9)),
    ("<html><PRE class='x'>up\n</PRE> of 4 total</html>", ("up\n", 4)),
], ids=["one-block", "length-in-text", "two-blocks", "upper-case-tag"])  # fmt: skip
def test_parse_container_page_one_block_fast_path_reads_as_the_general_one(page: str, expected: object) -> None:
    assert parse_container_page(page) == expected


@pytest.mark.parametrize("text", ["", "plain ascii line\n" * 3, "caf\u00e9 \u2603 \U0001f600\n", "\ufffd", "a\x00b"])
def test_utf8_len_is_the_encoded_length(text: str) -> None:
    assert utf8_len(text) == len(text.encode("utf-8"))
