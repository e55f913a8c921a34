"""Read a batch's log as Livy really serves it: a bounded view rebuilt on every request.

Apache Livy keeps the last ``livy.cache-log.size`` (200) lines of each of spark-submit's streams
and rebuilds ``GET /batches/{id}/log`` from them per request (PROTOCOL.md §2.7): once a queue is
full, ``total`` stops growing while the content rotates, and every new stdout line shifts every
stderr offset. Paging by offset on such a view repeats lines, skips most of them and then goes
silent. :class:`LivyLogReader` instead

1. reads the whole view in one request (it is small: two queues plus diagnostics);
2. splits it into its sections (``stdout: ``, ``\\nstderr: ``, ``\\nYARN Diagnostics: ``,
   ``\\nKubernetes Diagnostics: ``) and labels each with where its lines come from;
3. per section, aligns the new content with the content seen last time by *sequence overlap*
   (lines are not unique, so never by set): the longest suffix of the old window that is a prefix
   of the new one is old, the rest is new. Nothing is shown twice and each stream keeps its order.
   When the window moved past lines that were never read (no overlap at all), that is a *gap*:
   it is counted and reported, never hidden;
4. shows diagnostics once, when the batch has finished;
5. reads the driver's own log from ``appInfo.driverLogUrl`` by byte offset when the server gives
   one (YARN: NodeManager's container-log pages, HTML with the bytes in a ``<pre>``), so in cluster
   mode the job's real output is complete; when it cannot be read, it says so in one line and goes
   on with Livy's view;
6. for the services without Livy's ``/log``, reads the driver's files where the service keeps
   them: Fabric's monitoring API by byte range (:class:`FabricLogReader`), Synapse's Spark
   history ``driverlog`` whole, keeping only the new tail (:class:`SynapseLogReader`). All driver
   readers share one byte bookkeeping (:class:`FileTail`, :func:`read_ranges`).

How many lines a gap lost cannot be known from Livy's view: overlapping windows mean nothing was
lost, and windows without overlap carry no count. Only the driver log (byte offsets) is exact.
"""

from __future__ import annotations

import difflib
import html
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from hdiaks_widgets.errors import ConfigError, LivyError, LivyHTTPError
from hdiaks_widgets.models import DRIVER_SOURCES, Batch, LogLine, LogPage

__all__ = [
    "SYNAPSE_MIN_INTERVAL",
    "DriverLogReader",
    "FabricLogReader",
    "FileTail",
    "LivyLogReader",
    "LogDelta",
    "LogLocationLike",
    "ServiceDriverLogReader",
    "SynapseLogReader",
    "TextFetcher",
    "ViewAligner",
    "dialect_log_reader",
    "job_output",
    "overlap",
    "parse_container_page",
    "read_ranges",
    "service_log_reader",
    "split_view",
]

log = logging.getLogger(__name__)

DEFAULT_CACHE_LOG_SIZE = 200

# Section header (as Livy writes it) -> section key.
_HEADERS = {
    "stdout: ": "stdout",
    "\nstderr: ": "stderr",
    "\nYARN Diagnostics: ": "yarn",
    "\nKubernetes Diagnostics: ": "kubernetes",
}


@dataclass(frozen=True)
class LogDelta:
    """What one read of the log added: new lines, lines known to be lost, places where lines
    were lost uncounted (``gaps``), whether the reader reached the end, and a note to show."""

    lines: tuple[str, ...] = ()
    dropped: int = 0
    at_end: bool = True
    gaps: int = 0
    note: str | None = None


class LogClient(Protocol):
    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage: ...


@runtime_checkable
class TextFetcher(Protocol):
    """A client that can GET a URL the server pointed to (``LivyClient.get_text``)."""

    def get_text(self, url: str, *, params: Mapping[str, str | int] | None = None) -> str: ...


# -- pure helpers ----------------------------------------------------------------------------------


def split_view(view: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``[(section, lines), ...]`` in view order. Lines before any header count as ``stdout``.

    A header is recognised only as a whole element: a real line never contains a newline, so
    ``"\\nstderr: "`` can only be Livy's header.
    """
    sections: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in view:
        key = _HEADERS.get(line)
        if key is not None and not (key == "stdout" and sections):
            current = []
            sections.append((key, current))
            continue
        if current is None:
            current = []
            sections.append(("stdout", current))
        current.append(line)
    return sections


def overlap(old: Sequence[str], new: Sequence[str]) -> int:
    """Length of the longest suffix of ``old`` that is a prefix of ``new`` (KMP, linear time)."""
    if not old or not new:
        return 0
    ids: dict[str, int] = {}
    pattern = [ids.setdefault(x, len(ids)) for x in new]
    text = [ids.get(x, -1) for x in old[-len(new):]]
    fail = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = fail[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        fail[i] = k
    k = 0
    for token in text:
        while k and (k == len(pattern) or token != pattern[k]):
            k = fail[k - 1]
        if k < len(pattern) and token == pattern[k]:
            k += 1
    return k


def job_output(lines: Sequence[str]) -> list[str]:
    """The lines the job itself printed: the driver's own log when it was read (launcher lines
    and Livy's copy are then not the job's output), else everything."""
    driver = [ln for ln in lines if getattr(ln, "source", None) in DRIVER_SOURCES]
    if driver:
        extra = [ln for ln in lines if getattr(ln, "source", None) == "diagnostics"]
        return driver + extra
    return list(lines)


_PRE_OPEN = re.compile(r"<pre[^>]*>", re.I)
_PRE_CLOSE = re.compile(r"</pre>", re.I)
_LENGTH = re.compile(r"Log Length:\s*(\d+)|of\s+(\d+)\s+total", re.I)


def parse_container_page(body: str) -> tuple[str, int | None]:
    """Text and total file length from a NodeManager/JobHistory log page (HTML, ``<pre>``);
    a plain-text answer is returned as is.

    The ``<pre>`` blocks are cut out with ``find`` and the length is looked for only outside
    them: a regex over a 1 MiB page took about 45 ms (S3 in docs/benchmarks.md), and a log line
    reading "Log Length: 5" must not be taken for the file's length."""
    first, last = body.find("<pre>"), body.rfind("</pre>")
    if 0 <= first < last and body.find("<", first + 5, last) < 0:
        # One plain <pre> block with no tag inside (its text is HTML-escaped), as the NodeManager
        # writes it: one memchr over the 1 MiB window instead of the regexes (S3).
        text = html.unescape(body[first + 5 : last])
        lengths = [int(a or b) for a, b in _LENGTH.findall(body[:first] + body[last + 6 :])]
        return text, (max(lengths) if lengths else None)
    blocks: list[str] = []
    outside: list[str] = []
    pos = 0
    while (opening := _PRE_OPEN.search(body, pos)) is not None:
        close = _PRE_CLOSE.search(body, opening.end())
        if close is None:
            break
        outside.append(body[pos : opening.start()])
        blocks.append(body[opening.end() : close.start()])
        pos = close.end()
    outside.append(body[pos:])
    if not blocks and "<html" not in body[:512].lower():
        return body, None
    text = html.unescape("".join(blocks))
    lengths = [int(a or b) for a, b in _LENGTH.findall("".join(outside))]
    return text, (max(lengths) if lengths else None)


# -- aligning Livy's view --------------------------------------------------------------------------


class ViewAligner:
    """Remembers the last window of each section and turns a new view into new lines."""

    def __init__(self, *, cache_log_size: int = DEFAULT_CACHE_LOG_SIZE) -> None:
        self.cache_log_size = cache_log_size
        self.windows: dict[str, list[str]] = {}
        self.shape = "process"
        self.gaps = 0
        self.gap_sections: set[str] = set()
        self.largest = 0  # the longest window seen: the server's cache-log-size once a queue is full

    def _source(self, key: str) -> str:
        if key in ("yarn", "kubernetes"):
            return "diagnostics"
        if key == "stdout" and self.shape == "kubernetes":
            return "driver log"  # the driver pod's log window
        return f"livy {key}"

    def feed(self, view: Sequence[str], *, finished: bool) -> tuple[list[LogLine], int]:
        sections = split_view(view)
        keys = [k for k, _ in sections]
        if "kubernetes" in keys:
            self.shape = "kubernetes"
        elif "yarn" in keys:
            self.shape = "yarn"
        out: list[LogLine] = []
        gaps = 0
        for key, lines in sections:
            if key in ("yarn", "kubernetes") and not finished:
                continue  # diagnostics change while the application runs: show them once, at the end
            old = self.windows.get(key, [])
            if old and len(lines) >= len(old) and lines[: len(old)] == old:
                fresh = lines[len(old):]  # the queue is still filling
            elif key == "stderr" and self.shape == "kubernetes" and old and (merged := _merge(old, lines)) is not None:
                fresh = merged  # spark-submit's stdout and stderr queues, concatenated
            else:
                k = overlap(old, lines)
                fresh = lines[k:]
                rotated_past = (k == 0 and bool(old)) or (not old and len(lines) >= self.cache_log_size)
                if rotated_past and fresh and key not in ("yarn", "kubernetes"):
                    gaps += 1
                    self.gap_sections.add(key)
            self.windows[key] = list(lines)
            if key not in ("yarn", "kubernetes"):
                self.largest = max(self.largest, len(lines))
            source = self._source(key)
            out.extend(LogLine(line, source) for line in fresh)
        self.gaps += gaps
        return out, gaps


def _merge(old: list[str], new: list[str]) -> list[str] | None:
    """New lines of a section that is two queues back to back (Kubernetes' stderr section):
    the lines of ``new`` outside the blocks it shares with ``old``, when they share most of it."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size]
    if sum(b.size for b in blocks) * 2 < min(len(old), len(new)):
        return None
    kept = {j for b in blocks for j in range(b.b, b.b + b.size)}
    return [line for j, line in enumerate(new) if j not in kept]


# -- the driver's own log by byte range ------------------------------------------------------------


class FileTail:
    """One growing log file read by byte offset: the bytes consumed so far and a line whose end
    has not arrived yet. The one place the byte bookkeeping lives; every driver-log reader
    (NodeManager pages, Fabric's monitoring API, Synapse's whole-file download) feeds it text.

    Only complete lines are consumed, so a line (or a UTF-8 character) cut by a byte window is
    read whole next time; a window holding no newline at all is kept as ``pending`` (its cut last
    character, decoded as U+FFFD, is dropped and read again). Offsets count UTF-8 bytes of the
    decoded text, which equals the file's bytes for valid UTF-8.
    """

    ANCHOR_CHARS = 64  # how much of the consumed text is kept to check a range answer's start

    def __init__(self, name: str) -> None:
        self.name = name
        self.offset = 0
        self.pending = ""
        self.length: int | None = None  # the file's length when the server says it
        self.recent = ""  # the last consumed characters (see ``ANCHOR_CHARS``)
        self.shrunk = 0  # reads at which the file was shorter than what had been consumed

    def take(self, text: str, *, window_full: bool, finished: bool) -> list[str]:
        """The complete lines in ``text`` (the bytes from :attr:`offset` on), consuming them.

        ``window_full``: the answer is as long as the window asked for, so more may follow.
        ``finished``: the job is over, so a last line without a newline is a line.
        """
        block, last = self._take(text, window_full=window_full, finished=finished)
        lines = block[:-1].split("\n") if block else []
        if last is not None:
            lines.append(last)
        return lines

    def take_text(self, text: str, *, window_full: bool, finished: bool) -> str:
        """What :meth:`take` consumes, as the file's own text (newlines kept) in one string:
        for copying a large log to a file without one object per line."""
        block, last = self._take(text, window_full=window_full, finished=finished)
        return block if last is None else block + last

    def _take(self, text: str, *, window_full: bool, finished: bool) -> tuple[str, str | None]:
        """``(complete lines, each ending in a newline; a last line without one once finished)``."""
        block = ""
        cut = text.rfind("\n")
        if cut >= 0:  # consume whole lines only: a cut never splits a character
            complete, rest = text[: cut + 1], text[cut + 1 :]
            block = self.pending + complete
            self.pending = ""
            self._consume(complete)
        elif window_full:  # one line longer than the window: keep it until its end arrives
            part = text.rstrip("\ufffd")  # a character the byte window cut in two is read again
            self.pending += part
            self._consume(part)
            rest = ""
        else:
            rest = text
        last = None
        if rest and finished and not window_full:
            last = self.pending + rest  # the job is over: its last line has no newline
            self.pending = ""
            self._consume(rest)
        return block, last

    def take_whole(self, text: str, *, finished: bool) -> tuple[list[str], int]:
        """The new lines of a whole-file answer: the bytes past :attr:`offset`, once.

        Returns ``(lines, new bytes)``. A file shorter than what was consumed (truncated or
        replaced) shows nothing again: it is counted in :attr:`shrunk` and reading goes on from
        the old offset.
        """
        data = text.encode("utf-8")
        self.length = len(data)
        if len(data) < self.offset:
            self.shrunk += 1
            return [], 0
        new = data[self.offset :]
        before = self.offset
        lines = self.take(new.decode("utf-8", errors="replace"), window_full=False, finished=finished)
        return lines, self.offset - before

    def flush(self) -> list[str]:
        """The pending line, once the job is over and nothing more will arrive."""
        if not self.pending:
            return []
        line, self.pending = self.pending, ""
        return [line]

    def _consume(self, text: str) -> None:
        self.offset += utf8_len(text)
        self.recent = (self.recent + text[-self.ANCHOR_CHARS :])[-self.ANCHOR_CHARS :]  # no copy of a 1 MiB window


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding an ASCII text (``isascii`` is a flag CPython
    keeps: a log window of 1 MiB is not copied just to be measured; S3 in docs/benchmarks.md)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


RangeGetter = Callable[[int, int], tuple[str, int | None]]


def read_ranges(
    tail: FileTail,
    get: RangeGetter,
    *,
    chunk: int,
    max_chunks: int,
    finished: bool,
    write: Callable[[str], object] | None = None,
) -> tuple[list[str], bool, int]:
    """Read ``tail``'s file from its offset in windows of ``chunk`` bytes: ``get(start, end)``
    returns the text of ``[start, end)`` and the file length if the server says it.

    Stops on a short answer (the end) or after ``max_chunks`` windows. Returns ``(lines, at end,
    requests)``; a pending line is flushed once the job finished and the end was reached.
    ``write``: each window's complete lines go to it as the file's text instead (no line list
    is built, ``lines`` is empty), so a large log is copied one window at a time.
    """
    lines: list[str] = []
    requests = 0
    for _ in range(max_chunks):
        start = tail.offset
        text, length = get(start, start + chunk)
        requests += 1
        tail.length = length
        if not text:
            break
        window_full = utf8_len(text) >= chunk
        if write is not None:
            write(tail.take_text(text, window_full=window_full, finished=finished))
        else:
            lines.extend(tail.take(text, window_full=window_full, finished=finished))
        if not window_full:
            break
    else:
        return lines, False, requests
    done = tail.length is None or tail.offset >= tail.length or not finished
    if finished and done:
        rest = tail.flush()
        if write is not None:
            for line in rest:
                write(line)
        else:
            lines.extend(rest)
    return lines, done, requests


class DriverLogReader:
    """Reads ``driverLogUrl``'s ``stdout`` and ``stderr`` incrementally by byte offset.

    The NodeManager page takes ``?start=<byte>&end=<byte>``; only complete lines are consumed, so
    a line cut by the byte window is read whole next time (and flushed once the job finished).
    """

    FILES = ("stdout", "stderr")

    def __init__(self, url: str, *, chunk: int = 1 << 20, max_chunks: int = 16) -> None:
        self.url = url.rstrip("/")
        self.files = {name: FileTail(name) for name in self.FILES}
        self.chunk = chunk
        self.max_chunks = max_chunks
        self.requests = 0

    @property
    def offsets(self) -> dict[str, int]:
        return {name: tail.offset for name, tail in self.files.items()}

    @property
    def lengths(self) -> dict[str, int | None]:
        return {name: tail.length for name, tail in self.files.items()}

    @property
    def bytes(self) -> int:
        """Bytes consumed (shown or pending) over both files."""
        return sum(tail.offset for tail in self.files.values())

    def read(self, fetch: TextFetcher, *, finished: bool) -> tuple[list[LogLine], bool]:
        out: list[LogLine] = []
        at_end = True
        for name, tail in self.files.items():

            def page(start: int, end: int, name: str = name) -> tuple[str, int | None]:
                return parse_container_page(fetch.get_text(f"{self.url}/{name}/", params={"start": start, "end": end}))

            lines, done, requests = read_ranges(tail, page, chunk=self.chunk, max_chunks=self.max_chunks,
                                                finished=finished)  # fmt: skip
            self.requests += requests
            out.extend(LogLine(line, f"driver {name}") for line in lines)
            at_end = at_end and done
        return out, at_end

    def copy(self, fetch: TextFetcher, write: Callable[[str, str], object], *, finished: bool) -> bool:
        """Like :meth:`read`, but each window's complete lines go to ``write(file name, text)`` as
        the file's own text: a large log copied to a file without one object per line and never
        more than one window held (S3 in docs/benchmarks.md). Returns whether both files are at
        their end; call again until they are."""
        at_end = True
        for name, tail in self.files.items():

            def page(start: int, end: int, name: str = name) -> tuple[str, int | None]:
                return parse_container_page(fetch.get_text(f"{self.url}/{name}/", params={"start": start, "end": end}))

            def sink(text: str, name: str = name) -> None:
                if text:
                    write(name, text)

            _, done, requests = read_ranges(tail, page, chunk=self.chunk, max_chunks=self.max_chunks,
                                            finished=finished, write=sink)  # fmt: skip
            self.requests += requests
            at_end = at_end and done
        return at_end


# -- the services' driver logs: Fabric's monitoring API, Synapse's Spark history ------------------


def _seg(value: str) -> str:
    """An id as one URL path segment (ids are opaque strings: Fabric's are UUIDs)."""
    return quote(str(value), safe="")


class _OffsetIgnored(Exception):
    """A range answer did not start where it was asked to (internal: switch to whole reads)."""


class FabricLogReader:
    """The driver's ``stdout``/``stderr`` from Fabric's Spark monitoring API, new bytes only.

    ``GET {origin}/v1/workspaces/{ws}/lakehouses/{lh}/livySessions/{livyId}/applications/{appId}/
    logs?type=driver&fileName=stderr&isDownload=true&isPartial=true&offset=&size=`` (Fabric docs,
    ``driver-log.md``). While the job runs, each poll asks one range per file from the offset
    reached and stops on a short answer: one request per file per poll, where asking
    ``meta=true`` for the length first would cost two whenever the file grew.

    The docs say ``offset`` "is only valid while the Spark application is still running. Once
    the application stops running, the parameter will have no effect", and give it a "valid
    range" of 0 to 20,000. So every range starts a few bytes early, at the end of what was
    already read (:attr:`FileTail.recent`), and the answer must begin with those bytes; when it
    does not (the offset was ignored), or the range is refused (HTTP 400/416), the file is read
    whole from then on and the new tail is cut from it by byte length. Once the job has
    finished, ``meta=true`` says the length: nothing more is asked when it was all read, else
    only the missing bytes, until the length stops changing.
    Before the batch has an application id there is nothing to read (no request is made).
    """

    FILES = ("stdout", "stderr")

    def __init__(
        self,
        origin: str,
        workspace_id: str,
        lakehouse_id: str,
        batch_id: str,
        app_id: str | None,
        *,
        chunk: int = 1 << 20,  # the API's default size
        max_chunks: int = 16,
    ) -> None:
        self.origin = origin.rstrip("/")
        self.workspace_id, self.lakehouse_id = str(workspace_id), str(lakehouse_id)
        self.batch_id = str(batch_id)
        self.app_id = None if app_id is None else str(app_id)
        self.files = {name: FileTail(name) for name in self.FILES}
        self.whole = dict.fromkeys(self.FILES, False)  # read whole from now on (offset not honoured)
        self.closed = dict.fromkeys(self.FILES, False)  # the job finished and the file stopped growing
        self.chunk = chunk
        self.max_chunks = max_chunks
        self.requests = 0
        self.downloaded = 0  # bytes received, anchors and whole re-downloads included
        self.note: str | None = None

    @property
    def url(self) -> str | None:
        if self.app_id is None:
            return None
        return (f"{self.origin}/v1/workspaces/{_seg(self.workspace_id)}/lakehouses/{_seg(self.lakehouse_id)}"
                f"/livySessions/{_seg(self.batch_id)}/applications/{_seg(self.app_id)}/logs")  # fmt: skip

    def read(self, fetch: TextFetcher, *, finished: bool) -> tuple[list[LogLine], bool]:
        url = self.url
        if url is None:
            return [], True
        out: list[LogLine] = []
        at_end = True
        for name, tail in self.files.items():
            if self.closed[name]:
                continue
            if finished:
                lines, done = self._read_final(fetch, url, tail)
            elif self.whole[name]:
                lines, done = self._read_whole(fetch, url, tail, finished=False)
            else:
                lines, done = self._read_range(fetch, url, tail, chunk=self.chunk, finished=False)
            out.extend(LogLine(line, f"driver {name}") for line in lines)
            at_end = at_end and done
        return out, at_end

    def _params(self, name: str, **extra: str | int) -> dict[str, str | int]:
        return {"type": "driver", "fileName": name, **extra}

    def _get(self, fetch: TextFetcher, url: str, params: dict[str, str | int]) -> str:
        text = fetch.get_text(url, params=params)
        self.requests += 1
        self.downloaded += utf8_len(text)
        return text

    def _read_range(
        self, fetch: TextFetcher, url: str, tail: FileTail, *, chunk: int, finished: bool
    ) -> tuple[list[str], bool]:
        def get(start: int, end: int) -> tuple[str, int | None]:
            anchor = tail.recent if start == tail.offset else ""
            back = utf8_len(anchor)
            text = self._get(fetch, url, self._params(tail.name, isDownload="true", isPartial="true",
                                                      offset=start - back, size=end - start + back))  # fmt: skip
            if not text.startswith(anchor):
                raise _OffsetIgnored
            return text[len(anchor) :], None

        try:
            lines, done, _ = read_ranges(tail, get, chunk=chunk, max_chunks=self.max_chunks, finished=finished)
        except _OffsetIgnored:
            self._go_whole(tail.name, "did not start at the offset asked for")
            return self._read_whole(fetch, url, tail, finished=finished)
        except LivyHTTPError as exc:
            if exc.status not in (400, 416):
                raise
            self._go_whole(tail.name, f"refused the offset (HTTP {exc.status})")
            return self._read_whole(fetch, url, tail, finished=finished)
        return lines, done

    def _go_whole(self, name: str, why: str) -> None:
        self.whole[name] = True
        log.info("Fabric driver %s: the range answer %s; reading the file whole", name, why)

    def _read_final(self, fetch: TextFetcher, url: str, tail: FileTail) -> tuple[list[str], bool]:
        """After the job: the length (``meta=true``), then only the missing bytes, until the
        length stops changing. A range whose offset is ignored falls back to a whole read."""
        length = _meta_length(self._get(fetch, url, self._params(tail.name, meta="true")))
        if length is None or self.whole[tail.name]:
            return self._read_whole(fetch, url, tail, finished=True)
        if length <= tail.offset:
            if length < tail.offset:
                tail.shrunk += 1
                self._note_shrunk(tail.name)
            self.closed[tail.name] = True
            return tail.flush(), True
        # One window just past the missing bytes: a short answer, so no second request.
        lines, _ = self._read_range(fetch, url, tail, chunk=length - tail.offset + 1, finished=True)
        return lines, self.closed[tail.name]  # once more: the length must stop changing

    def _read_whole(self, fetch: TextFetcher, url: str, tail: FileTail, *, finished: bool) -> tuple[list[str], bool]:
        text = self._get(fetch, url, self._params(tail.name, isDownload="true"))
        lines, grew = tail.take_whole(text, finished=finished)
        if tail.shrunk:
            self._note_shrunk(tail.name)
        if finished and not grew:
            self.closed[tail.name] = True
            return lines + tail.flush(), True
        return lines, not finished  # after the end, read once more to see that it stopped growing

    def _note_shrunk(self, name: str) -> None:
        if self.note is None:
            self.note = f"The driver {name} became shorter than what was already shown; nothing is shown twice."


def _meta_length(text: str) -> int | None:
    """``containerLogMeta.length`` of a ``meta=true`` answer (``ContainerLogMeta``), else ``None``."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    meta = data.get("containerLogMeta") if isinstance(data, dict) else None
    if isinstance(meta, list):  # the rolling-log form lists several files; the first is the live one
        meta = meta[0] if meta else None
    length = meta.get("length") if isinstance(meta, dict) else None
    return length if isinstance(length, int) and not isinstance(length, bool) and length >= 0 else None


class SynapseLogReader:
    """The driver's ``stdout``/``stderr`` from Synapse's Spark history API, new tail only.

    ``GET {origin}/sparkhistory/api/v1/sparkpools/{pool}/livyid/{id}/applications/{appId}/
    driverlog/{stdout|stderr}/?isDownload=true`` answers the whole file: no source documents a
    byte range for it (docs/fidelity.md, "Service dialects"). So each poll downloads each file
    whole, and :class:`FileTail` cuts off what was already consumed by UTF-8 byte length: no line
    is shown twice, a line without its newline waits for it, and a file that became shorter
    shows nothing again. Once the job has finished the files are read until they stop growing,
    then never again. ``downloaded`` counts the bytes received (the re-download cost: about
    polls × the average file size); ``min_interval`` seconds (by ``clock``) bound how often the
    files are downloaded while the job runs, whatever the caller's poll rate (reads after the
    end are never skipped).
    """

    FILES = ("stdout", "stderr")

    def __init__(
        self,
        origin: str,
        pool: str,
        batch_id: str,
        app_id: str | None,
        *,
        min_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self._last: float | None = None
        self.origin = origin.rstrip("/")
        self.pool = str(pool)
        self.batch_id = str(batch_id)
        self.app_id = None if app_id is None else str(app_id)
        self.files = {name: FileTail(name) for name in self.FILES}
        self.closed = dict.fromkeys(self.FILES, False)
        self.requests = 0
        self.downloaded = 0
        self.note: str | None = None

    def file_url(self, name: str) -> str | None:
        if self.app_id is None:
            return None
        return (f"{self.origin}/sparkhistory/api/v1/sparkpools/{_seg(self.pool)}/livyid/{_seg(self.batch_id)}"
                f"/applications/{_seg(self.app_id)}/driverlog/{name}/")  # fmt: skip

    def read(self, fetch: TextFetcher, *, finished: bool) -> tuple[list[LogLine], bool]:
        out: list[LogLine] = []
        at_end = True
        now = self.clock()
        if not finished and self._last is not None and now - self._last < self.min_interval:
            return out, True  # downloaded a moment ago: the whole file again would mostly repeat it
        for name, tail in self.files.items():
            url = self.file_url(name)
            if url is None or self.closed[name]:
                continue
            text = fetch.get_text(url, params={"isDownload": "true"})
            self.requests += 1
            self.downloaded += utf8_len(text)
            lines, grew = tail.take_whole(text, finished=finished)
            if tail.shrunk and self.note is None:
                self.note = (f"The driver {name} became shorter than what was already shown (Synapse can "
                             "truncate it once the job ends); nothing is shown twice.")  # fmt: skip
            if finished and not grew:
                self.closed[name] = True
                lines += tail.flush()
            else:
                at_end = at_end and not finished  # after the end, once more to see it stopped growing
            out.extend(LogLine(line, f"driver {name}") for line in lines)
        self._last = now  # only a read that worked waits: a failed one is tried again next poll
        return out, at_end


ServiceDriverLog = FabricLogReader | SynapseLogReader

SYNAPSE_MIN_INTERVAL = 5.0
"""Seconds between whole-file driver-log downloads of a running Synapse batch by default (the
service has no byte range for them; the reads after the end are never skipped)."""


def dialect_log_reader(
    flavour: str,
    *,
    origin: str,
    batch_id: str,
    app_id: str | None,
    workspace_id: str | None = None,
    lakehouse_id: str | None = None,
    pool: str | None = None,
    min_interval: float = 0.0,
) -> ServiceDriverLog:
    """The driver-log reader of a service without Livy's ``/log``: ``fabric`` (needs the workspace
    and lakehouse ids) or ``synapse`` (needs the pool). ``origin`` is ``scheme://host[:port]``
    (with a path prefix when the service sits behind one). Anything else is a ``ConfigError``:
    Apache Livy, HDInsight and the sandbox are read by :class:`LivyLogReader`. ``min_interval``:
    Synapse's whole-file downloads at most that often while the job runs."""
    if flavour == "fabric":
        if not workspace_id or not lakehouse_id:
            raise ConfigError("Fabric's driver log needs the workspace and lakehouse ids", field="lakehouse_id")
        return FabricLogReader(origin, workspace_id, lakehouse_id, batch_id, app_id)
    if flavour == "synapse":
        if not pool:
            raise ConfigError("Synapse's driver log needs the Spark pool name", field="pool")
        return SynapseLogReader(origin, pool, batch_id, app_id, min_interval=min_interval)
    raise ConfigError(f"{flavour!r} has Livy's own log; read it with LivyLogReader", field="flavour")


class LogLocationLike(Protocol):
    """Where a service keeps a batch's log (``dialects.LogLocation``)."""

    @property
    def source(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def batch_id(self) -> str: ...
    @property
    def app_id(self) -> str | None: ...
    @property
    def workspace_id(self) -> str | None: ...
    @property
    def lakehouse_id(self) -> str | None: ...
    @property
    def pool(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...


_FLAVOUR_OF_SOURCE = {"fabric-monitoring": "fabric", "synapse-driverlog": "synapse"}
_PATH_OF_SOURCE = {"fabric-monitoring": "/v1/workspaces/", "synapse-driverlog": "/sparkhistory/"}


class ServiceDriverLogReader:
    """A :class:`~hdiaks_widgets.run.LogReader` over a Fabric or Synapse driver-log reader:
    ``read(client, batch) -> LogDelta``. It builds the reader when the batch has an application
    id (again if that id changes), reads through ``fetch`` (the client when none is given) and,
    after ``max_failures`` failed reads in a row, says once that the log could not be read; the
    state and ``errorInfo`` still come from the batch."""

    def __init__(
        self,
        location: LogLocationLike,
        fetch: TextFetcher | None = None,
        *,
        max_failures: int = 3,
        min_interval: float | None = None,
    ) -> None:
        flavour = _FLAVOUR_OF_SOURCE.get(location.source)
        if flavour is None:
            raise ConfigError(f"no service driver log for log source {location.source!r}", field="log_source")
        self.flavour = flavour
        self.location = location
        self.fetch = fetch
        self.origin = _origin_of(location)
        self.reader: ServiceDriverLog | None = None
        self.failures = 0
        self.max_failures = max_failures
        # Synapse answers each driver file whole: downloading it on every poll of a busy monitor
        # would cost polls x file size, so while the job runs it is read at most this often.
        self.min_interval = SYNAPSE_MIN_INTERVAL if min_interval is None else min_interval
        self._noted: set[str] = set()

    def _reader_for(self, app_id: str) -> ServiceDriverLog:
        if self.reader is None or self.reader.app_id != app_id:
            loc = self.location
            self.reader = dialect_log_reader(self.flavour, origin=self.origin, batch_id=loc.batch_id, app_id=app_id,
                                             workspace_id=loc.workspace_id, lakehouse_id=loc.lakehouse_id,
                                             pool=loc.pool, min_interval=self.min_interval)  # fmt: skip
        return self.reader

    def read(self, client: object, batch: Batch) -> LogDelta:
        app_id = batch.app_id or self.location.app_id
        fetch = self.fetch if self.fetch is not None else client
        if not app_id or not isinstance(fetch, TextFetcher):
            return LogDelta()
        reader = self._reader_for(str(app_id))
        note: str | None = None
        try:
            lines, at_end = reader.read(fetch, finished=batch.state.is_terminal)
            self.failures = 0
        except LivyError as exc:
            self.failures += 1
            if self.failures >= self.max_failures and "failed" not in self._noted:
                self._noted.add("failed")
                note = f"The driver log could not be read ({exc}); the job's state and error come from the batch."
                log.warning("service driver log unreadable: %s", exc)
            return LogDelta((), 0, self.failures >= self.max_failures, 0, note)
        if reader.note and reader.note not in self._noted:
            self._noted.add(reader.note)
            note = reader.note
        return LogDelta(tuple(lines), 0, at_end, 0, note)


def _origin_of(location: LogLocationLike) -> str:
    """The service root the reader's paths hang from: the part of the log URL before the
    service's path (keeps a proxy's path prefix), else the location's origin."""
    marker = _PATH_OF_SOURCE.get(location.source, "")
    url = location.url
    if url and marker and marker in url:
        return url[: url.index(marker)]
    return location.origin


def service_log_reader(location: LogLocationLike, fetch: TextFetcher | None = None) -> ServiceDriverLogReader:
    """What ``run``'s seam calls: the :class:`ServiceDriverLogReader` for a ``LogLocation``."""
    return ServiceDriverLogReader(location, fetch)


# -- the reader the batch run uses -----------------------------------------------------------------


class LivyLogReader:
    """The default :class:`~hdiaks_widgets.run.LogReader`: Livy's view aligned by content, plus
    the driver log by byte range when ``driverLogUrl`` can be read."""

    def __init__(
        self,
        *,
        driver_log: bool = True,
        cache_log_size: int = DEFAULT_CACHE_LOG_SIZE,
        view_size: int = 10_000,
        max_driver_failures: int = 3,
    ) -> None:
        self.aligner = ViewAligner(cache_log_size=cache_log_size)
        self.use_driver_log = driver_log
        self.view_size = view_size
        self.driver: DriverLogReader | None = None
        self.driver_failures = 0
        self.max_driver_failures = max_driver_failures
        self.driver_note: str | None = None
        self._driver_source: str | None = None
        self._gap_noted = False

    @property
    def gaps(self) -> int:
        return self.aligner.gaps

    @property
    def driver_log_ok(self) -> bool:
        return self.driver is not None and self.driver_failures == 0 and self.driver.requests > 0

    def read(self, client: LogClient, batch: Batch) -> LogDelta:
        finished = batch.state.is_terminal
        view = self._view(client, batch)
        lines, gaps = self.aligner.feed(view, finished=finished)
        at_end = True
        driver_lines: list[LogLine] = []
        note: str | None = None
        url = batch.app_info.driver_log_url
        retry_driver = self.use_driver_log and self.driver_failures < self.max_driver_failures
        if url and retry_driver and isinstance(client, TextFetcher):
            if self.driver is None or self._driver_source != url:
                resolve = getattr(client, "resolve_log_url", None)
                self.driver = DriverLogReader(resolve(url) if resolve else url)
                self._driver_source = url  # as Livy reports it (the reader may hold a rewritten URL)
            try:
                driver_lines, at_end = self.driver.read(client, finished=finished)
                self.driver_failures = 0
            except LivyError as exc:
                self.driver_failures += 1
                at_end = True
                if self.driver_failures >= self.max_driver_failures and self.driver_note is None:
                    self.driver_note = (
                        f"The driver log at {url} could not be read ({exc}); showing Livy's view, "
                        f"which keeps only the last {self.aligner.cache_log_size} lines of each stream."
                    )
                    note = self.driver_note
                    log.warning("driver log unreadable: %s", exc)
        if gaps and not self._gap_noted:
            self._gap_noted = True
            note = note or self.gap_note(url)
        # The driver's output first, then the launcher's view of it, then diagnostics (end).
        diagnostics = [ln for ln in lines if ln.source == "diagnostics"]
        rest = [ln for ln in lines if ln.source != "diagnostics"]
        return LogDelta(tuple(driver_lines + rest + diagnostics), 0, at_end, gaps, note)

    def gap_note(self, driver_log_url: str | None = None) -> str:
        """One sentence, said once; the running count is ``Snapshot.log_gaps``."""
        size = self.aligner.largest if self.aligner.largest > 0 else self.aligner.cache_log_size
        text = (f"Livy keeps only the last {size:,} lines of each stream: earlier lines were dropped "
                "before they could be read")
        if self.driver_log_ok and driver_log_url:
            return text + f" — the full driver log is here: {driver_log_url}"
        if driver_log_url:
            return text + f" — the full driver log may be here: {driver_log_url}"
        return text + "."

    def _view(self, client: LogClient, batch: Batch) -> list[str]:
        page = client.get_log(batch.id, start=0, size=self.view_size)
        view = list(page.lines)
        # A view larger than one request (a huge cache-log-size, or an append-only log): page on.
        while page.lines and page.end < page.total and len(view) < 50 * self.view_size:
            page = client.get_log(batch.id, start=page.end, size=self.view_size)
            view.extend(page.lines)
        return view
