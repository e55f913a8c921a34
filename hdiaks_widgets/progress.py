"""Spark's own progress numbers for a running batch: jobs, stages and tasks done out of known.

Read from the Spark monitoring REST API (``/api/v1/applications/{appId}/jobs`` and ``/stages``,
spark.apache.org/docs/latest/monitoring.html#rest-api) of the application's UI, found where the
dialect puts it (:func:`api_root`):

- Apache Livy, classic HDInsight, the sandbox: ``appInfo.sparkUiUrl``. On YARN that is the
  ResourceManager's web proxy, ``.../proxy/{appId}/`` (LIVY-208, cloudera/livy#189), so the API
  is ``{sparkUiUrl}api/v1/applications/{appId}``; once the application ended, the tracking URL is
  the History Server's page ``{shs}/history/{appId}[/{attemptId}]/`` whose API is
  ``{shs}/api/v1/applications/{appId}[/{attemptId}]``. Classic HDInsight reports the internal
  ResourceManager host; it is reached through the gateway as ``https://{cluster}/yarnui/hn/proxy/
  {appId}/`` (not verified against a live cluster: docs/fidelity.md).
- Fabric: the Spark History Server API beside the monitoring logs,
  ``.../livySessions/{livyId}/applications/{appId}/jobs`` (learn.microsoft.com/fabric/
  data-engineering/open-source-apis: "same structure ... as Spark open source monitoring REST API").
- Synapse: ``{origin}/sparkhistory/api/v1/sparkpools/{pool}/livyid/{id}/applications/{appId}/jobs``
  beside its ``driverlog`` (not documented; the path the driver-log clients use).

Reads go through the client's ``get_text`` (its session and auth; credentials only to the
service's own origin), at most every ``min_interval`` seconds, optionally in a background thread
so a slow UI never holds up the state poll. Nothing here ever raises into a watch: when the
numbers cannot be read the progress is *unknown*, said once in :attr:`Progress.note`; the last
numbers read are kept (a driver's UI is gone as soon as the application ends). Per-state
timestamps come from the batch (Fabric's and Synapse's ``livyInfo``; Apache Livy gives none).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from hdiaks_widgets.dialects import Dialect, log_location
from hdiaks_widgets.models import Batch, BatchState

__all__ = ["Progress", "ProgressReader", "api_root", "parse_jobs", "parse_stages"]

log = logging.getLogger(__name__)


class TextClient(Protocol):
    """What progress is read through (``LivyClient``: ``get_text``, ``base_url``, ``dialect``)."""

    def get_text(self, url: str, *, params: Mapping[str, str | int] | None = None) -> str: ...


@dataclass(frozen=True)
class Progress:
    """Spark's numbers for one application at one moment. ``known`` is False until one read
    succeeded; totals count what Spark knows so far (a later job adds its stages and tasks)."""

    jobs_done: int = 0
    jobs_total: int = 0
    jobs_failed: int = 0
    stages_done: int = 0  # complete or skipped
    stages_total: int = 0
    tasks_done: int = 0  # completed or skipped, over the known jobs
    tasks_total: int = 0
    tasks_active: int = 0
    known: bool = False
    complete: bool = False  # the batch succeeded: 100 % whatever was last read
    reads: int = 0  # successful reads of the UI
    note: str | None = None  # one line for people when the numbers cannot be read
    state_times: tuple[tuple[str, datetime], ...] = ()  # (Livy state, when entered), where the dialect says

    @property
    def fraction(self) -> float | None:
        """Done / total of the known tasks in [0, 1]; 1.0 once the batch succeeded; ``None`` when unknown."""
        if self.complete:
            return 1.0
        if not self.known or self.tasks_total <= 0:
            return None
        return min(1.0, self.tasks_done / self.tasks_total)

    @property
    def percent(self) -> int | None:
        fraction = self.fraction
        return None if fraction is None else int(fraction * 100)

    def describe(self) -> str:
        """``jobs 2/3, stages 4/6, tasks 14/18`` (or ``progress unknown``)."""
        if not self.known:
            return "done" if self.complete else "progress unknown"
        failed = f" ({self.jobs_failed} failed)" if self.jobs_failed else ""
        return (f"jobs {self.jobs_done}/{self.jobs_total}{failed}, stages {self.stages_done}/{self.stages_total}, "
                f"tasks {self.tasks_done}/{self.tasks_total}")  # fmt: skip


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_jobs(data: Any) -> tuple[int, int, int, int, int, int]:
    """``(jobs_done, jobs_total, jobs_failed, tasks_done, tasks_total, tasks_active)`` of a
    ``/jobs`` answer (a list of ``JobData``); ``ValueError`` if it is not one."""
    if not isinstance(data, list):
        raise ValueError("the jobs answer is not a list")
    done = failed = tasks_done = tasks_total = active = 0
    for job in data:
        if not isinstance(job, Mapping):
            raise ValueError("a job is not an object")
        status = str(job.get("status", "")).upper()
        done += status == "SUCCEEDED"
        failed += status == "FAILED"
        total = _int(job.get("numTasks"))
        tasks_total += total
        tasks_done += min(total, _int(job.get("numCompletedTasks")) + _int(job.get("numSkippedTasks")))
        active += _int(job.get("numActiveTasks"))
    return done, len(data), failed, tasks_done, tasks_total, active


def parse_stages(data: Any) -> tuple[int, int]:
    """``(stages_done, stages_total)`` of a ``/stages`` answer; a stage tried again counts once
    (its latest attempt decides)."""
    if not isinstance(data, list):
        raise ValueError("the stages answer is not a list")
    latest: dict[object, tuple[int, str]] = {}
    for stage in data:
        if not isinstance(stage, Mapping):
            raise ValueError("a stage is not an object")
        key = stage.get("stageId")
        attempt = _int(stage.get("attemptId"))
        if key not in latest or attempt >= latest[key][0]:
            latest[key] = (attempt, str(stage.get("status", "")).upper())
    done = sum(1 for _, status in latest.values() if status in ("COMPLETE", "SKIPPED"))
    return done, len(latest)


_HISTORY_PAGE = re.compile(r"^(?P<root>.*?)/history/(?P<app>[^/]+)(?:/(?P<attempt>[^/]+))?/?$")
_YARN_PROXY = re.compile(r"^/proxy/(?P<app>application_\d+_\d+)/?")


def api_root(client: object, batch: Batch) -> str | None:
    """``.../applications/{appId}`` of the batch's application in Spark's REST API, or ``None``
    when the dialect gives no place for it (no application yet, no ``sparkUiUrl``)."""
    app_id = batch.app_id
    if not app_id:
        return None
    dialect = getattr(client, "dialect", None)
    base = getattr(client, "base_url", "")
    if isinstance(dialect, Dialect) and dialect.log_source in ("fabric-monitoring", "synapse-driverlog"):
        where = log_location(dialect, str(base), batch.id, app_id).url
        if where is None:
            return None
        suffix = "/logs" if dialect.log_source == "fabric-monitoring" else "/driverlog"
        return where[: -len(suffix)] if where.endswith(suffix) else None
    ui = batch.app_info.spark_ui_url
    if not ui:
        return None
    parts = urlsplit(ui)
    if isinstance(dialect, Dialect) and dialect.name == "hdinsight" and base:
        gateway = urlsplit(str(base))
        proxied = _YARN_PROXY.match(parts.path)
        if parts.netloc != gateway.netloc and proxied:  # the internal ResourceManager host
            ui = f"{gateway.scheme}://{gateway.netloc}/yarnui/hn/proxy/{proxied['app']}/"
            parts = urlsplit(ui)
    page = _HISTORY_PAGE.match(f"{parts.scheme}://{parts.netloc}{parts.path}")
    if page is not None:
        ident = quote(page["app"], safe="") + (f"/{quote(page['attempt'], safe='')}" if page["attempt"] else "")
        return f"{page['root']}/api/v1/applications/{ident}"
    root = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return f"{root}/api/v1/applications/{quote(app_id, safe='')}"


class ProgressReader:
    """Reads a batch's progress at most every ``min_interval`` seconds; never raises.

    ``read(client, batch)`` returns the latest :class:`Progress` at once. ``background=True``
    fetches in one daemon thread at a time (the caller's poll never waits for the UI; the value
    read shows up on a later call); ``False`` fetches inline (decision tests, one-shot tools).
    """

    def __init__(
        self, *, min_interval: float = 2.0, background: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.min_interval = min_interval
        self.background = background
        self._clock = clock
        self._lock = threading.Lock()
        self._progress = Progress()
        self._last_try: float | None = None
        self._busy = False
        self._noted = False
        self._ended_reads = 0
        self._failures = 0  # consecutive failed reads
        self.note_after = 5  # failed reads in a row before the note, while nothing was ever read
        self.requests = 0  # HTTP reads attempted (two per fetch: jobs and stages)

    @property
    def progress(self) -> Progress:
        return self._progress

    def read(self, client: object, batch: Batch) -> Progress:
        ended = batch.state.is_terminal
        with self._lock:
            progress = replace(self._progress, state_times=batch.state_times,
                               complete=batch.state is BatchState.SUCCESS)  # fmt: skip
            self._progress = progress
            now = self._clock()
            due = self._last_try is None or now - self._last_try >= self.min_interval
            # After the end one more read (a History Server may have the final numbers), then none.
            if not due or self._busy or not batch.app_id or (ended and self._ended_reads >= 1):
                return progress
            root = api_root(client, batch)
            if root is None:
                if not self._progress.known and (ended or batch.state is BatchState.RUNNING):
                    self._say("This service reports no Spark UI for the job, so Spark's progress is unknown.")
                return self._progress
            if not callable(getattr(client, "get_text", None)):
                self._say("This client cannot read the Spark UI, so Spark's progress is unknown.")
                return self._progress
            self._last_try = now
            self._ended_reads += ended
            self._busy = True
        if self.background:
            threading.Thread(target=self._fetch, args=(client, root), name="hdiaks-progress", daemon=True).start()
            return progress
        self._fetch(client, root)
        return self._progress

    def _say(self, sentence: str) -> None:
        """Set the note once (under the lock); later failures only go to the debug log. A read that
        succeeds later clears it (the numbers are then what the note would have missed)."""
        if not self._noted:
            self._noted = True
            self._progress = replace(self._progress, note=sentence)

    def _fetch(self, client: object, root: str) -> None:
        try:
            get_text = client.get_text  # type: ignore[attr-defined]
            self.requests += 1
            jobs = parse_jobs(json.loads(get_text(f"{root}/jobs")))
            self.requests += 1
            stages = parse_stages(json.loads(get_text(f"{root}/stages")))
        except Exception as exc:  # noqa: BLE001 - a progress read never breaks a watch
            log.debug("progress of %s not read: %s", root, type(exc).__name__)
            with self._lock:
                self._busy = False
                self._failures += 1
                # A UI that is still starting fails a read or two: say it only when it keeps failing.
                if not self._progress.known and (self._failures >= self.note_after or self._ended_reads):
                    self._say(f"Spark's progress could not be read from the application's UI ({_why(exc)}); "
                              "the job's state still comes from Livy.")  # fmt: skip
            return
        jobs_done, jobs_total, jobs_failed, tasks_done, tasks_total, active = jobs
        with self._lock:
            self._busy = False
            self._failures = 0
            self._progress = replace(
                self._progress, jobs_done=jobs_done, jobs_total=jobs_total, jobs_failed=jobs_failed,
                stages_done=stages[0], stages_total=stages[1], tasks_done=tasks_done, tasks_total=tasks_total,
                tasks_active=active, known=True, reads=self._progress.reads + 1, note=None,
            )  # fmt: skip


def _why(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    if isinstance(exc, ValueError):
        return "the answer was not Spark's JSON"
    return type(exc).__name__
