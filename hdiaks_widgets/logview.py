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
   on with Livy's view.

How many lines a gap lost cannot be known from Livy's view: overlapping windows mean nothing was
lost, and windows without overlap carry no count. Only the driver log (byte offsets) is exact.
"""

from __future__ import annotations

import difflib
import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hdiaks_widgets.errors import LivyError
from hdiaks_widgets.models import DRIVER_SOURCES, Batch, LogLine, LogPage

__all__ = [
    "DriverLogReader",
    "LivyLogReader",
    "LogDelta",
    "TextFetcher",
    "ViewAligner",
    "job_output",
    "overlap",
    "parse_container_page",
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

    def get_text(self, url: str, *, params: dict[str, int] | None = None) -> str: ...


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


_PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S | re.I)
_LENGTH = re.compile(r"Log Length:\s*(\d+)|of\s+(\d+)\s+total", re.I)


def parse_container_page(body: str) -> tuple[str, int | None]:
    """Text and total file length from a NodeManager/JobHistory log page (HTML, ``<pre>``);
    a plain-text answer is returned as is."""
    blocks = _PRE.findall(body)
    if not blocks and "<html" not in body[:512].lower():
        return body, None
    text = html.unescape("".join(blocks))
    lengths = [int(a or b) for a, b in _LENGTH.findall(body)]
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


class DriverLogReader:
    """Reads ``driverLogUrl``'s ``stdout`` and ``stderr`` incrementally by byte offset.

    The NodeManager page takes ``?start=<byte>&end=<byte>``; only complete lines are consumed, so
    a line cut by the byte window is read whole next time (and flushed once the job finished).
    """

    FILES = ("stdout", "stderr")

    def __init__(self, url: str, *, chunk: int = 1 << 20, max_chunks: int = 16) -> None:
        self.url = url.rstrip("/")
        self.offsets = dict.fromkeys(self.FILES, 0)
        self.lengths: dict[str, int | None] = dict.fromkeys(self.FILES, None)
        self.pending = dict.fromkeys(self.FILES, "")  # a line whose end has not arrived yet
        self.chunk = chunk
        self.max_chunks = max_chunks
        self.requests = 0
        self.bytes = 0

    def read(self, fetch: TextFetcher, *, finished: bool) -> tuple[list[LogLine], bool]:
        out: list[LogLine] = []
        at_end = True
        for name in self.FILES:
            lines, done = self._read_file(fetch, name, finished=finished)
            out.extend(LogLine(line, f"driver {name}") for line in lines)
            at_end = at_end and done
        return out, at_end

    def _read_file(self, fetch: TextFetcher, name: str, *, finished: bool) -> tuple[list[str], bool]:
        lines: list[str] = []
        for _ in range(self.max_chunks):
            start = self.offsets[name]
            body = fetch.get_text(f"{self.url}/{name}/", params={"start": start, "end": start + self.chunk})
            self.requests += 1
            text, length = parse_container_page(body)
            self.lengths[name] = length
            if not text:
                break
            window_full = len(text.encode("utf-8")) >= self.chunk
            cut = text.rfind("\n")
            if cut >= 0:  # consume whole lines only: a cut never splits a character
                complete, rest = text[: cut + 1], text[cut + 1 :]
                lines.extend((self.pending[name] + complete[:-1]).split("\n"))
                self.pending[name] = ""
                self._consume(name, complete)
            elif window_full:  # one line longer than the window: keep it until its end arrives
                part = text.rstrip("\ufffd")  # a character the byte window cut in two is read again
                self.pending[name] += part
                self._consume(name, part)
                rest = ""
            else:
                rest = text
            if rest and finished and not window_full:
                lines.append(self.pending[name] + rest)  # the job is over: its last line has no newline
                self.pending[name] = ""
                self._consume(name, rest)
            if not window_full:
                break
        else:
            return lines, False
        length = self.lengths[name]
        done = length is None or self.offsets[name] >= length or not finished
        if finished and self.pending[name] and done:
            lines.append(self.pending[name])
            self.pending[name] = ""
        return lines, done

    def _consume(self, name: str, text: str) -> None:
        used = len(text.encode("utf-8"))
        self.offsets[name] += used
        self.bytes += used


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

