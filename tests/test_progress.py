"""Spark's own progress (jobs, stages, tasks) read from the application's UI.

The decisions of ``progress.ProgressReader`` (where the API is per dialect, rate limiting, an
unknown UI said once, the numbers kept once the driver's UI is gone) against a small Spark-UI
fake on a loopback port; then real Spark on the sandbox: its ``sparkUiUrl`` serves Spark's REST
API through the Livy server's ``/proxy/{appId}/`` while the job runs and 404 after it, a
multi-stage job's progress moves through several values and ends at 100 %, and the CLI shows it
on one line of a terminal (a pty).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import HDIAKS, SandboxHandle
from livy_memory import MemoryLivy, memory_session
from servers import LoopbackHTTP, QuietHandler

from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.dialects import DIALECTS
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import AppInfo, Batch, BatchState
from hdiaks_widgets.progress import Progress, ProgressReader, api_root, parse_stages
from hdiaks_widgets.run import BatchRun, Snapshot
from hdiaks_widgets.sandbox.apps import SLOW_STAGES_CLASS

APP = "application_1700000000000_0007"


def _job(job_id: int, status: str, done: int, total: int, skipped: int = 0, active: int = 0) -> dict[str, Any]:
    return {"jobId": job_id, "status": status, "numTasks": total, "numCompletedTasks": done,
            "numSkippedTasks": skipped, "numActiveTasks": active, "stageIds": [2 * job_id, 2 * job_id + 1]}


def _stage(stage_id: int, status: str, attempt: int = 0) -> dict[str, Any]:
    return {"stageId": stage_id, "attemptId": attempt, "status": status}


class SparkUI(LoopbackHTTP):
    """A Spark UI fake: ``answers[path] = (status, body)``; every request path is recorded;
    ``hold`` (an Event), when set up, keeps answers back until it is set."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.paths: list[str] = []
        self.hold: threading.Event | None = None
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fake.paths.append(self.path)
                if fake.hold is not None:
                    fake.hold.wait(30)
                status, body = fake.answers.get(self.path, (404, "<html>no such page</html>"))
                payload = body if isinstance(body, str) else json.dumps(body)
                self.reply(status, payload.encode(), "application/json" if not isinstance(body, str) else "text/html")

        super().__init__(Handler)

    def serve(self, prefix: str, jobs: Any, stages: Any) -> None:
        self.answers = {f"{prefix}/jobs": (200, jobs), f"{prefix}/stages": (200, stages)}


@pytest.fixture
def ui() -> Iterator[SparkUI]:
    with SparkUI() as server:
        yield server


def _batch(state: str = "running", ui_url: str | None = None, app_id: str | None = APP, **extra: Any) -> Batch:
    return Batch(id="7", name="job", state=BatchState(state), app_id=app_id,
                 app_info=AppInfo(spark_ui_url=ui_url), **extra)


def _client(server: SparkUI) -> LivyClient:
    session = requests.Session()
    session.trust_env = False
    return LivyClient(server.url, session=session)


PROXY = f"/proxy/{APP}/api/v1/applications/{APP}"
JOBS = [_job(0, "SUCCEEDED", 6, 6), _job(1, "RUNNING", 2, 6, active=2)]
STAGES = [_stage(0, "COMPLETE"), _stage(1, "COMPLETE"), _stage(2, "ACTIVE"), _stage(3, "PENDING")]


# -- decisions, against a loopback Spark UI ---------------------------------------------------------


def test_progress_reads_jobs_stages_and_tasks_through_the_proxy_path(ui: SparkUI) -> None:
    ui.serve(PROXY, JOBS, STAGES)
    reader = ProgressReader(min_interval=0, background=False)
    with _client(ui) as client:
        progress = reader.read(client, _batch(ui_url=f"{ui.url}/proxy/{APP}/"))
    assert ui.paths == [f"{PROXY}/jobs", f"{PROXY}/stages"]
    assert (progress.jobs_done, progress.jobs_total, progress.stages_done, progress.stages_total) == (1, 2, 2, 4)
    assert (progress.tasks_done, progress.tasks_total, progress.tasks_active) == (8, 12, 2)
    assert progress.known and progress.percent == 66 and progress.note is None
    assert progress.describe() == "jobs 1/2, stages 2/4, tasks 8/12"


def test_progress_reads_at_most_once_per_interval(ui: SparkUI) -> None:
    ui.serve(PROXY, JOBS, STAGES)
    now = [100.0]
    reader = ProgressReader(min_interval=2.0, background=False, clock=lambda: now[0])
    batch = _batch(ui_url=f"{ui.url}/proxy/{APP}/")
    with _client(ui) as client:
        for _ in range(5):
            reader.read(client, batch)
        assert len(ui.paths) == 2  # one read: jobs + stages
        now[0] += 1.9
        reader.read(client, batch)
        assert len(ui.paths) == 2
        now[0] += 0.1
        reader.read(client, batch)
    assert len(ui.paths) == 4


def test_progress_of_a_ui_that_never_answers_is_unknown_and_said_once(ui: SparkUI) -> None:
    reader = ProgressReader(min_interval=0, background=False)
    batch = _batch(ui_url=f"{ui.url}/proxy/{APP}/")
    notes = []
    with _client(ui) as client:
        for _ in range(6):
            progress = reader.read(client, batch)  # never raises
            notes.append(progress.note)
    assert not progress.known and progress.fraction is None and progress.describe() == "progress unknown"
    assert notes[:4] == [None] * 4  # a UI still starting fails a few reads without a word
    assert notes[4] and "HTTP 404" in notes[4] and notes[5] == notes[4]
    assert "\n" not in notes[4]


def test_progress_note_goes_once_the_ui_answers(ui: SparkUI) -> None:
    reader = ProgressReader(min_interval=0, background=False)
    reader.note_after = 1
    batch = _batch(ui_url=f"{ui.url}/proxy/{APP}/")
    with _client(ui) as client:
        assert reader.read(client, batch).note
        ui.serve(PROXY, JOBS, STAGES)
        progress = reader.read(client, batch)
    assert progress.known and progress.note is None


def test_progress_of_an_answer_that_is_not_spark_json_is_unknown(ui: SparkUI) -> None:
    ui.answers = {f"{PROXY}/jobs": (200, {"jobs": "not a list"}), f"{PROXY}/stages": (200, [])}
    reader = ProgressReader(min_interval=0, background=False)
    reader.note_after = 1
    with _client(ui) as client:
        progress = reader.read(client, _batch(ui_url=f"{ui.url}/proxy/{APP}/"))
    assert not progress.known and progress.note and "not Spark's JSON" in progress.note


def test_progress_without_a_spark_ui_url_makes_no_request_and_says_so_once(ui: SparkUI) -> None:
    reader = ProgressReader(min_interval=0, background=False)
    with _client(ui) as client:
        first = reader.read(client, _batch(ui_url=None))
        again = reader.read(client, _batch(ui_url=None))
    assert ui.paths == []
    assert first.note and "no Spark UI" in first.note and again.note == first.note
    assert reader.read(client, _batch(state="starting", app_id=None)).fraction is None


def test_progress_keeps_the_last_numbers_once_the_ui_is_gone_and_ends_at_100_percent(ui: SparkUI) -> None:
    ui.serve(PROXY, JOBS, STAGES)
    reader = ProgressReader(min_interval=0, background=False)
    url = f"{ui.url}/proxy/{APP}/"
    with _client(ui) as client:
        running = reader.read(client, _batch(ui_url=url))
        ui.answers = {}  # the driver stopped: its UI is gone (404)
        ended = [reader.read(client, _batch(state="success", ui_url=url)) for _ in range(4)]
    assert len(ui.paths) == 3  # one try after the end (a History Server may have it), then none
    final = ended[-1]
    assert final.fraction == 1.0 and final.complete and final.note is None
    assert (final.jobs_done, final.jobs_total, final.tasks_done) == (running.jobs_done, 2, running.tasks_done)


def test_progress_read_before_says_nothing_when_the_ended_batch_drops_its_ui_url(ui: SparkUI) -> None:
    ui.serve(PROXY, JOBS, STAGES)
    reader = ProgressReader(min_interval=0, background=False)
    with _client(ui) as client:
        reader.read(client, _batch(ui_url=f"{ui.url}/proxy/{APP}/"))
        ended = reader.read(client, _batch(state="success", ui_url=None))
    assert ended.known and ended.note is None and ended.fraction == 1.0


def test_progress_of_a_failed_batch_is_not_100_percent(ui: SparkUI) -> None:
    ui.serve(PROXY, [_job(0, "FAILED", 1, 4)], [_stage(0, "FAILED")])
    reader = ProgressReader(min_interval=0, background=False)
    with _client(ui) as client:
        progress = reader.read(client, _batch(state="dead", ui_url=f"{ui.url}/proxy/{APP}/"))
    assert progress.fraction == 0.25 and progress.jobs_failed == 1 and "(1 failed)" in progress.describe()


def test_progress_in_the_background_never_waits_for_a_slow_ui(ui: SparkUI) -> None:
    ui.serve(PROXY, JOBS, STAGES)
    ui.hold = threading.Event()
    reader = ProgressReader(min_interval=0, background=True)
    batch = _batch(ui_url=f"{ui.url}/proxy/{APP}/")
    with _client(ui) as client:
        first = reader.read(client, batch)  # returns while the UI holds its answer back
        assert not ui.hold.is_set() and not first.known
        assert not reader.read(client, batch).known  # one fetch at a time: no second request
        ui.hold.set()
        for _ in range(600):
            if reader.progress.known:
                break
            threading.Event().wait(0.05)
        assert reader.progress.known and reader.progress.tasks_total == 12
        assert ui.paths.count(f"{PROXY}/jobs") == 1  # the reads while it was held sent nothing


def test_progress_carries_the_dialects_per_state_times(ui: SparkUI) -> None:
    times = (("starting", datetime(2026, 1, 2, 3, 4, 5)), ("running", datetime(2026, 1, 2, 3, 4, 9)))
    reader = ProgressReader(min_interval=0, background=False)
    with _client(ui) as client:
        progress = reader.read(client, _batch(state="starting", app_id=None, state_times=times))
    assert progress.state_times == times


def test_stages_tried_again_count_once_by_their_latest_attempt() -> None:
    done, total = parse_stages([_stage(0, "FAILED", 0), _stage(0, "COMPLETE", 1), _stage(1, "SKIPPED")])
    assert (done, total) == (2, 2)


class _Client:
    def __init__(self, base_url: str, dialect: str) -> None:
        self.base_url, self.dialect = base_url, DIALECTS[dialect]


FABRIC = "https://api.fabric.microsoft.com/v1/workspaces/aaaa/lakehouses/bbbb"
SYNAPSE = "https://ws.dev.azuresynapse.net"


@pytest.mark.parametrize(
    ("dialect", "base", "ui_url", "expected"),
    [
        ("livy", "http://livy:8998", f"http://rm:8088/proxy/{APP}/",
         f"http://rm:8088/proxy/{APP}/api/v1/applications/{APP}"),
        ("livy", "http://livy:8998", f"http://shs:18080/history/{APP}/1",
         f"http://shs:18080/api/v1/applications/{APP}/1"),
        ("sandbox", "http://127.0.0.1:1", "http://127.0.0.1:2/history/app-20260101000000-0001/",
         "http://127.0.0.1:2/api/v1/applications/app-20260101000000-0001"),
        ("hdinsight", "https://c.azurehdinsight.net/livy", f"http://hn0-c.internal.cloudapp.net:8088/proxy/{APP}/",
         f"https://c.azurehdinsight.net/yarnui/hn/proxy/{APP}/api/v1/applications/{APP}"),
        ("fabric", f"{FABRIC}/livyApi/versions/2023-12-01", None,
         f"{FABRIC}/livySessions/7/applications/{APP}"),
        ("synapse", f"{SYNAPSE}/livyApi/versions/2020-12-01/sparkPools/pool1", None,
         f"{SYNAPSE}/sparkhistory/api/v1/sparkpools/pool1/livyid/7/applications/{APP}"),
        ("livy", "http://livy:8998", None, None),
    ],
    ids=["yarn-proxy", "history-attempt", "history-sandbox", "hdinsight-gateway", "fabric", "synapse", "no-ui"],
)
def test_api_root_per_dialect(dialect: str, base: str, ui_url: str | None, expected: str | None) -> None:
    assert api_root(_Client(base, dialect), _batch(ui_url=ui_url)) == expected


def test_api_root_needs_an_application_id() -> None:
    assert api_root(_Client("http://livy:8998", "livy"), _batch(ui_url="http://rm/proxy/x/", app_id=None)) is None


class _BrokenReader(ProgressReader):
    def read(self, client: object, batch: Batch) -> Progress:
        raise RuntimeError("a reader with a bug")


def test_run_poll_goes_on_when_a_progress_reader_fails() -> None:
    livy = MemoryLivy()
    livy.add("job", "running", ("a line",))
    with LivyClient("http://livy.test", session=memory_session(livy)) as client:
        run = BatchRun(client, 0, progress=_BrokenReader())
        snap = run.poll()
    assert snap.state is BatchState.RUNNING and snap.error is None and snap.progress is None
    assert "a line" in snap.lines


def test_run_without_a_progress_reader_reads_no_spark_ui() -> None:
    livy = MemoryLivy()
    livy.add("job", "running")
    with LivyClient("http://livy.test", session=memory_session(livy)) as client:
        snap = BatchRun(client, 0).poll()
    assert snap.progress is None and all("/api/v1/" not in path for _, path in livy.requests)


def test_snapshot_repr_shows_the_percentage_once_known() -> None:
    assert "progress" not in repr(Snapshot(batch_id="1", progress=Progress()))
    assert repr(Snapshot(batch_id="1", progress=Progress(known=True, tasks_done=1, tasks_total=4))).endswith(
        "progress=25%)")


def test_progress_value_is_unknown_until_read() -> None:
    assert Progress().fraction is None and Progress(complete=True).fraction == 1.0
    assert Progress(complete=True).describe() == "done"


# -- real Spark on the sandbox --------------------------------------------------------------------


def _stages_spec(handle: SandboxHandle, jobs: int = 3, seconds: float = 1.5) -> BatchSpec:
    return BatchSpec(file=handle.examples["stages_py"], args=[str(jobs), str(seconds)])


@pytest.mark.spark
def test_sandbox_spark_ui_url_serves_spark_rest_api_while_running_then_404(sandbox: SandboxHandle) -> None:
    with sandbox.http() as http:
        batch = http.post(f"{sandbox.url}/batches", json={"file": sandbox.examples["sleep_py"], "args": ["6"]},
                          timeout=30).json()
        seen: dict[str, Any] = {}
        for _ in range(600):
            view = http.get(f"{sandbox.url}/batches/{batch['id']}", timeout=30).json()
            ui_url = view["appInfo"]["sparkUiUrl"]
            if view["state"] in ("success", "dead", "killed"):
                break
            if ui_url and "apps" not in seen:
                answer = http.get(f"{ui_url}api/v1/applications", timeout=30)
                # While the driver starts, its UI may answer with an HTML page before the API is up.
                if answer.status_code == 200 and "json" in answer.headers.get("Content-Type", ""):
                    seen["apps"], seen["url"], seen["app"] = answer.json(), ui_url, view["appId"]
                    seen["jobs"] = http.get(f"{ui_url}api/v1/applications/{view['appId']}/jobs", timeout=30)
            threading.Event().wait(0.3)
        assert view["state"] == "success"
        assert seen, "the application's UI never answered while the job ran"
        # Behind the Livy server's own origin, like YARN's web proxy behind the ResourceManager.
        assert seen["url"] == f"{sandbox.url}/proxy/{seen['app']}/"
        assert [app["id"] for app in seen["apps"]] == [seen["app"]]
        assert seen["jobs"].status_code == 200 and isinstance(seen["jobs"].json(), list)
        gone = http.get(f"{seen['url']}api/v1/applications/{seen['app']}/jobs", timeout=30)
        assert gone.status_code == 404 and "finished" in gone.json()["msg"]
        assert http.get(f"{sandbox.url}/proxy/application_0_0000/", timeout=30).status_code == 404


@pytest.mark.spark
def test_progress_moves_through_several_values_and_ends_at_100_percent(sandbox: SandboxHandle) -> None:
    seen: list[Progress] = []
    with LivyClient(sandbox.url) as client:
        run = BatchRun.submit(client, _stages_spec(sandbox), progress=ProgressReader(min_interval=0.3))
        snap = run.wait(timeout=600, interval=0.3, max_interval=0.5,
                        on_update=lambda s: seen.append(s.progress) if s.progress is not None else None)
    assert snap.succeeded, snap.error
    fractions = [p.fraction for p in seen if p.fraction is not None]
    assert len(set(fractions)) >= 3, fractions
    assert fractions[-1] == 1.0 and snap.progress is not None and snap.progress.complete
    read = [p for p in seen if p.known]
    assert max(p.jobs_total for p in read) >= 2 and max(p.stages_done for p in read) >= 2
    assert all(p.tasks_total % 6 == 0 for p in read)  # each job: 4 map tasks + 2 reduce tasks
    assert snap.progress.note is None


def _under_pty(argv: list[str], timeout: float = 600.0) -> tuple[int, str, str]:
    """Run ``hdiaks`` with stderr on a pseudo-terminal (stdout a pipe): what a person's terminal shows."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "160"}
    proc = subprocess.Popen([HDIAKS, *argv], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError("hdiaks printed nothing for too long")
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read().decode() if proc.stdout is not None else ""
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.stdout is not None:
            proc.stdout.close()
    return code, out, b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.spark
def test_cli_submit_wait_shows_spark_progress_on_one_terminal_line(sandbox: SandboxHandle, tmp_path: Path) -> None:
    code, out, err = _under_pty(["submit", "--url", sandbox.url, "--file", sandbox.examples["stages_py"],
                                 "--arg", "3", "--arg", "1.5", "--wait", "--poll", "0.5"])
    assert code == 0, err
    assert "job 3 of 3" in out and out.rstrip().endswith("success")
    redraws = [part for part in err.replace("\r\n", "\n").split("\r") if "tasks " in part]
    assert redraws, err[-2000:]
    percents = [int(m.group(1)) for part in redraws if (m := re.search(r"(\d+)%\|", part))]
    assert len(set(percents)) >= 3 and percents[-1] == 100, percents  # the bar moved, ended full
    assert "\x1b[" not in "".join(redraws).replace("\x1b[A", "")  # tqdm's own redraw only, no colours
    assert "jobs " in err and "stages " in err


@pytest.mark.spark
def test_cli_logs_follow_shows_spark_progress_on_one_terminal_line(sandbox: SandboxHandle) -> None:
    with LivyClient(sandbox.url) as client:
        run = BatchRun.submit(client, _stages_spec(sandbox, jobs=2))
    code, out, err = _under_pty(["logs", run.batch_id, "--url", sandbox.url, "--follow", "--poll", "0.5"])
    assert code == 0, err
    assert "job 2 of 2" in out
    assert any("tasks " in part and "%" in part for part in err.split("\r")), err[-2000:]
    assert f"batch {run.batch_id} ended: success" in err


# -- the standalone cluster: the driver on a worker, the History Server after the end ------------


@pytest.mark.spark
def test_cluster_mode_progress_from_the_driver_ui_on_a_worker_then_the_history_server(
    cluster_sandbox: SandboxHandle,
) -> None:
    spec = BatchSpec(file=cluster_sandbox.examples["jar"], class_name=SLOW_STAGES_CLASS, args=["3", "150"])
    seen: list[Snapshot] = []
    with LivyClient(cluster_sandbox.url) as client:
        run = BatchRun.submit(client, spec, progress=ProgressReader(min_interval=0.3))
        snap = run.wait(timeout=600, interval=0.3, max_interval=0.5, on_update=seen.append)
        assert snap.succeeded, snap.error
        running = [s for s in seen if s.state is BatchState.RUNNING and s.progress is not None and s.progress.known]
        assert running, "Spark's numbers were never read from the driver's UI while the job ran"
        assert all(s.spark_ui_url == f"{cluster_sandbox.url}/proxy/{s.app_id}/" for s in running)
        assert len({s.progress.fraction for s in running if s.progress is not None}) >= 2
        # After the end the application is the History Server's, and its API has the whole run.
        final = snap.batch
        assert final is not None and final.app_info.spark_ui_url and "/history/app-" in final.app_info.spark_ui_url
        root = api_root(client, final)
        assert root is not None and root.startswith(cluster_sandbox.options["cluster"]["history_url"])
        jobs: list[dict[str, Any]] = []
        with cluster_sandbox.http() as http:
            for _ in range(200):  # the History Server lists an application once it read its event log
                answer = http.get(f"{root}/jobs", timeout=30)
                if answer.status_code == 200 and len(jobs := answer.json()) == 3:
                    break
                threading.Event().wait(0.3)
    assert [job["status"] for job in jobs] == ["SUCCEEDED"] * 3
    assert sum(job["numCompletedTasks"] for job in jobs) == 18
