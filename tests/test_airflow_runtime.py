"""The Airflow operator's decisions, without Airflow: names, config, Variables, client, reattach,
and what a snapshot means (succeed, fail, kill). An in-memory Livy stands in for the server."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from livy_memory import BASE_URL, MemoryLivy, memory_session

from hdiaks_widgets.airflow.runtime import (
    MissingVariables,
    TaskLog,
    Variables,
    batch_names,
    build_client,
    effective_config,
    first_try_since_clear,
    start_run,
    variables_for,
    verdict,
)
from hdiaks_widgets.auth import BasicAuth, ServicePrincipalAuth
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import ConfigError, LivyHTTPError
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.models import Batch, BatchState, LogLine, LogPage
from hdiaks_widgets.run import BatchRun, Snapshot
from hdiaks_widgets.sandbox.logbuf import DriverFiles, LogBuffer

SP_VARS = {"api-client-id": "app", "api-secret": "s3cret", "tenant-id": "tenant"}


def job(**profile: Any) -> JobConfig:
    return JobConfig(
        profile=ClusterProfile(**{"name": "p", "flavour": "sandbox", "url": "http://127.0.0.1:1", **profile}),
        spec=BatchSpec(file="/x.py", name="pi", args=("1",)),
    )


@dataclass
class FakeLivy:
    """Batches by name; records the POSTs."""

    batches: dict[str, Batch] = field(default_factory=dict)
    posts: list[BatchSpec] = field(default_factory=list)

    def add(self, name: str, state: BatchState) -> Batch:
        batch = Batch(id=len(self.batches), state=state, name=name)
        self.batches[name] = batch
        return batch

    def find_batch(self, name: str) -> Batch | None:
        return self.batches.get(name)

    def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch:
        self.posts.append(spec)
        return self.add(spec.name or "", BatchState.STARTING)

    def get_batch(self, batch_id: int | str) -> Batch:
        return next(b for b in self.batches.values() if b.id == batch_id)

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        return LogPage(id=int(batch_id), start=start or 0, total=0, lines=())

    def kill_batch(self, batch_id: int | str) -> None:
        raise AssertionError("the runtime never kills")


# -- names ------------------------------------------------------------------------------------


def names(try_number: int = 1, run_id: str = "manual__1", map_index: int = -1) -> list[str]:
    return batch_names("pi", dag_id="d", run_id=run_id, task_id="t", map_index=map_index, try_number=try_number)


def test_batch_names_are_run_scoped_and_one_per_try() -> None:
    first = names()
    assert len(first) == 1 and first[0].startswith("pi-") and len(first[0]) == len("pi-") + 12
    assert names(3) == [first[0], f"{first[0]}-try2", f"{first[0]}-try3"]
    assert names(run_id="manual__2") != first and names(map_index=0) != first
    assert names(0) == first  # Airflow 2 before the first try counts as try 1


def test_batch_names_after_a_clear_start_at_the_first_try_since_the_clear() -> None:
    stem = names()[0]
    cleared = batch_names("pi", dag_id="d", run_id="manual__1", task_id="t", map_index=-1, try_number=3, first_try=3)
    assert cleared == [f"{stem}-try3"]


def test_first_try_since_clear_reads_max_tries_like_airflow() -> None:
    # retries=1: try 1 and its retry (try 2) form one series; a clear at try 2 sets max_tries 3.
    assert first_try_since_clear(max_tries=1, retries=1, try_number=2) == 1
    assert first_try_since_clear(max_tries=3, retries=1, try_number=3) == 3
    assert first_try_since_clear(max_tries=3, retries=1, try_number=4) == 3  # retry after the clear
    assert first_try_since_clear(max_tries=None, retries=1, try_number=4) == 1


def test_clearing_a_succeeded_task_runs_the_job_again() -> None:
    livy = FakeLivy()
    livy.add(names()[0], BatchState.SUCCESS)  # try 1 succeeded; the task was cleared (max_tries 2)
    first = first_try_since_clear(max_tries=2, retries=1, try_number=2)
    again = batch_names("pi", dag_id="d", run_id="manual__1", task_id="t", map_index=-1, try_number=2, first_try=first)
    run, reattached = start_run(livy, job(), again)
    assert not reattached and [s.name for s in livy.posts] == [f"{names()[0]}-try2"]


# -- config and Variables ----------------------------------------------------------------------


def test_effective_config_applies_trigger_conf_params() -> None:
    cfg = effective_config(job().to_dict(), {"job_name": "other", "args": [True, 2], "app_jar_path": ""})
    assert cfg.spec.name == "other" and cfg.spec.args == ("true", "2") and cfg.spec.file == "/x.py"
    assert effective_config(job().to_dict(), None) == job()


def test_effective_config_refuses_a_trigger_conf_path_the_cluster_cannot_read() -> None:
    profile = ClusterProfile(name="aks", flavour="hdinsight-aks", fqdn="c.p.x.eastus.hdinsightaks.net")
    spec = BatchSpec(file="abfs://jobs@account1.dfs.core.windows.net/a.jar", class_name="a.B")
    aks = JobConfig(profile=profile, spec=spec)
    assert effective_config(aks.to_dict(), None) == aks
    with pytest.raises(ConfigError, match="spec.file"):
        effective_config(aks.to_dict(), {"app_jar_path": "hdfs:///apps/app.jar"})
    unchecked = effective_config(aks.to_dict(), {"app_jar_path": "hdfs:///apps/app.jar"}, validate=False)
    assert unchecked.spec.file == "hdfs:///apps/app.jar"  # the kill path reads the job without refusing it


def test_variables_are_read_once_and_missing_ones_asked_again() -> None:
    asked: list[str] = []
    values = {"a": "1"}

    def getter(key: str) -> str | None:
        asked.append(key)
        return values.get(key)

    variables = Variables(getter)
    assert variables.get("a") == "1" and variables.get("a") == "1"
    assert variables.get("b") is None and variables.get("b") is None
    assert asked == ["a", "b", "b"]
    frozen = variables.frozen()
    assert frozen.get("a") == "1" and frozen.get("b") is None
    assert asked == ["a", "b", "b"]  # the kill path reads nothing new
    with pytest.raises(MissingVariables, match="Airflow Variables not set: b, c"):
        variables.require("a", "b", "c")


def test_build_client_uses_service_principal_from_variables() -> None:
    client = build_client(job(auth="service-principal"), Variables(SP_VARS.get))
    assert isinstance(client.auth, ServicePrincipalAuth)
    assert "s3cret" not in repr(client.auth)
    with pytest.raises(MissingVariables, match="api-client-id, api-secret"):
        build_client(job(auth="service-principal"), Variables({}.get))


def test_build_client_takes_the_profiles_tenant_and_app_as_connect_does() -> None:
    named = job(auth="service-principal", tenant_id="profile-tenant", client_id="profile-app")
    client = build_client(named, Variables({"api-secret": "s3cret", "tenant-id": "variable-tenant"}.get))
    assert isinstance(client.auth, ServicePrincipalAuth)
    assert (client.auth.provider.tenant_id, client.auth.provider.client_id) == ("profile-tenant", "profile-app")
    listed = {key for key, _must, _what in variables_for(named.profile)}
    assert "api-secret" in listed and not listed & {"api-client-id", "livy-password"}
    # a device-code profile's client_id is the public app a person signs in with: the DAG signs in as the app
    device = job(auth="device-code", tenant_id="t", client_id="public-app")
    client = build_client(device, Variables(SP_VARS.get))
    assert isinstance(client.auth, ServicePrincipalAuth) and client.auth.provider.client_id == "app"


def test_build_client_honours_livy_url_ca_bundle_and_basic_auth() -> None:
    values = {"livy-url": "https://gw.example/livy/", "ca-bundle": "/ca.pem", "livy-password": "pw"}
    client = build_client(job(auth="basic", username="u"), Variables(values.get))
    assert client.base_url == "https://gw.example/livy"
    assert isinstance(client.auth, BasicAuth) and client.auth.password == "pw"
    assert build_client(job(), Variables({}.get)).auth is None


# -- submit or reattach ------------------------------------------------------------------------


def test_start_run_submits_once_under_the_current_name() -> None:
    livy = FakeLivy()
    run, reattached = start_run(livy, job(), names())
    assert not reattached and [s.name for s in livy.posts] == names()


def test_start_run_reattaches_to_the_current_name() -> None:
    livy = FakeLivy()
    batch = livy.add(names()[0], BatchState.RUNNING)
    run, reattached = start_run(livy, job(), names())
    assert reattached and run.batch_id == batch.id and livy.posts == []


@pytest.mark.parametrize("state", [BatchState.RUNNING, BatchState.SUCCESS, BatchState.STARTING])
def test_retry_reattaches_to_an_earlier_try_that_did_not_fail(state: BatchState) -> None:
    livy = FakeLivy()
    batch = livy.add(names()[0], state)
    run, reattached = start_run(livy, job(), names(2))
    assert reattached and run.batch_id == batch.id and livy.posts == []


@pytest.mark.parametrize("state", [BatchState.DEAD, BatchState.KILLED, BatchState.ERROR])
def test_retry_after_a_failed_batch_runs_the_job_again_under_its_own_name(state: BatchState) -> None:
    livy = FakeLivy()
    livy.add(names()[0], state)
    run, reattached = start_run(livy, job(), names(2))
    assert not reattached and [s.name for s in livy.posts] == [names(2)[-1]]


class GatewayDown(FakeLivy):
    """Every poll answers 503 (after the client's own retries, which this fake does not model)."""

    def get_batch(self, batch_id: int | str) -> Batch:
        raise LivyHTTPError(503, "gateway down", method="GET", url=f"/batches/{batch_id}")


@pytest.mark.parametrize("earlier_try", [False, True], ids=["submitted", "reattached"])
def test_start_run_gives_up_after_the_operators_max_poll_errors(earlier_try: bool) -> None:
    """The worker's wait (``deferrable=False``) honours ``max_poll_errors`` like the trigger does,
    on a fresh submit and on a retry's reattach."""
    livy = GatewayDown()
    if earlier_try:
        livy.add(names()[0], BatchState.RUNNING)
    run, reattached = start_run(livy, job(), names(2 if earlier_try else 1), max_errors=2)
    assert reattached is earlier_try
    snap = run.wait(interval=0, max_interval=0)
    assert snap.finished and snap.errors == 2 and snap.error_kind == "server"
    assert "Stopped watching after 2 failed attempts." in (snap.error or "")


def test_start_run_keeps_eight_failed_polls_by_default() -> None:
    run, _reattached = start_run(GatewayDown(), job(), names())
    assert run.wait(interval=0, max_interval=0).errors == 8


# -- verdicts ----------------------------------------------------------------------------------


def snap(state: BatchState | None, **kw: Any) -> Snapshot:
    batch = None if state is None else Batch(id=7, state=state, name="pi-x")
    return Snapshot(batch_id=7, name="pi-x", batch=batch, **kw)


def test_verdict_success() -> None:
    assert verdict(snap(BatchState.SUCCESS, finished=True), timeout=60, timed_out=False).ok
    # seen terminal once when the deadline hit: still a success, never a kill
    late = verdict(snap(BatchState.SUCCESS), timeout=60, timed_out=True)
    assert late.ok and not late.kill


def test_verdict_failed_batch_carries_the_error_lines() -> None:
    lines = ("INFO starting", "Traceback (most recent call last):", "ValueError: boom-7f3a", "INFO bye")
    v = verdict(snap(BatchState.DEAD, finished=True, lines=lines), timeout=60, timed_out=False)
    assert not v.ok and not v.kill
    assert v.message.startswith("Livy batch 7 ended in state dead; last error lines:\n")
    assert "ValueError: boom-7f3a" in v.message


def test_verdict_transient_give_up_fails_without_killing() -> None:
    s = snap(BatchState.RUNNING, finished=True, error_kind="server", error="The Livy server had a problem (HTTP 503).")
    v = verdict(s, timeout=60, timed_out=False)
    assert not v.ok and not v.kill and "a retry of this task reattaches" in v.message


@pytest.mark.parametrize("kind", ["purged", "replaced"])
def test_verdict_gone_batch_fails_without_killing(kind: str) -> None:
    v = verdict(snap(BatchState.RUNNING, finished=True, error_kind=kind, error="gone"), timeout=60, timed_out=False)
    assert not v.ok and not v.kill and v.message == "gone"


def test_verdict_only_the_deadline_kills() -> None:
    running = snap(BatchState.RUNNING, error_kind="network", error="Cannot reach Livy")
    assert verdict(running, timeout=3, timed_out=True) == verdict(snap(BatchState.RUNNING), timeout=3, timed_out=True)
    v = verdict(running, timeout=3, timed_out=True)
    assert v.kill and v.message == "Livy batch 7 still running after 3 s; killing it"
    stopped = verdict(snap(BatchState.RUNNING), timeout=3, timed_out=False, stopped=True)
    assert not stopped.kill and "killed with the task" in stopped.message
    assert not verdict(running, timeout=3, timed_out=False).kill



def test_verdict_failed_batch_takes_error_lines_from_the_driver_log_when_read() -> None:
    lines = (LogLine("Exception in thread main: launcher gave up", "livy stderr"),
             LogLine("ValueError: boom-driver", "driver stderr"))
    v = verdict(snap(BatchState.DEAD, finished=True, lines=lines), timeout=60, timed_out=False)
    assert "ValueError: boom-driver" in v.message and "launcher gave up" not in v.message


# -- the task log ---------------------------------------------------------------------------------


def _task_log(livy: MemoryLivy, caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """Follow batch 0 to its end as the operator does; (INFO lines, WARNING lines) of the task log."""
    client = LivyClient(BASE_URL, session=memory_session(livy), retry=RetryPolicy(total=0))
    run = BatchRun.attach(client, 0)
    with caplog.at_level(logging.INFO, logger="hdiaks.dag"):
        snap = run.wait(timeout=30, on_update=TaskLog(run.reader).page, interval=0.001, max_interval=0.01)
    assert snap.finished
    records = [r for r in caplog.records if r.name == "hdiaks.dag"]
    return ([r.getMessage() for r in records if r.levelno == logging.INFO],
            [r.getMessage() for r in records if r.levelno == logging.WARNING])


def _script(livy: MemoryLivy, steps: list[Any]) -> None:
    """Run one step per GET of batch 0 (the poll), then let the batch succeed."""
    batch = livy.batches[0]

    def hook(request: requests.PreparedRequest) -> None:
        if request.method == "GET" and urlsplit(request.url or "").path == "/batches/0":
            if steps:
                steps.pop(0)()
            else:
                batch.state = "success"

    livy.before.append(hook)


def test_task_log_carries_livy_view_and_the_note_once(caplog: pytest.LogCaptureFixture) -> None:
    livy = MemoryLivy()
    buffer = LogBuffer("process", 10)
    livy.add("storm", "running", buffer=buffer)
    printed = iter(range(10_000))

    def burst() -> None:
        for _ in range(25):  # more than the queue keeps: every poll's window skips lines
            buffer.append("stderr", f"line {next(printed)}")

    _script(livy, [burst] * 5)
    infos, warnings = _task_log(livy, caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith("Livy batch 0: Livy keeps only the last") and "dropped" in warnings[0]
    shown = [m.removeprefix("[livy 0] ") for m in infos if m.startswith("[livy 0] ")]
    assert shown[-1] == "line 124" and len(shown) == len(set(shown))


def test_task_log_carries_the_driver_log_when_reachable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    livy = MemoryLivy()
    buffer = LogBuffer("yarn", 10)
    buffer.driver_files = DriverFiles(tmp_path / "container")
    livy.add("yarn", "running", buffer=buffer)

    def report(n: int) -> Any:
        def step() -> None:
            buffer.append("stderr", f"INFO Client: Application report for application_1_0001 (state: RUNNING) {n}")
            buffer.driver("stdout", f"driver line {n}")
        return step

    _script(livy, [report(n) for n in range(4)])
    infos, warnings = _task_log(livy, caplog)
    assert warnings == []
    shown = [m.removeprefix("[livy 0] ") for m in infos if m.startswith("[livy 0] ")]
    assert shown == [f"driver line {n}" for n in range(4)]  # the launcher's reports are not the job's log


def test_task_log_falls_back_to_livy_view_when_the_driver_log_is_unreadable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    livy = MemoryLivy()
    buffer = LogBuffer("yarn", 50)
    url = f"{BASE_URL}/node/containerlogs/container_gone/livy"
    livy.add("yarn", "running", buffer=buffer, driver_log_url=url)
    steps = [lambda n=n: buffer.append("stderr", f"report {n}") for n in range(6)]
    _script(livy, list(steps))
    infos, warnings = _task_log(livy, caplog)
    assert len(warnings) == 1 and warnings[0].startswith(f"Livy batch 0: The driver log at {url} could not be read")
    shown = [m.removeprefix("[livy 0] ") for m in infos if m.startswith("[livy 0] ")]
    assert shown == [f"report {n}" for n in range(6)]


def test_task_log_goes_back_to_livy_view_when_the_driver_log_stops_answering(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    livy = MemoryLivy()
    buffer = LogBuffer("yarn", 50)
    buffer.driver_files = DriverFiles(tmp_path / "container")
    batch = livy.add("yarn", "running", buffer=buffer)

    def driver_then_report(n: int) -> Any:
        def step() -> None:
            buffer.driver("stdout", f"driver line {n}")
            buffer.append("stderr", f"report {n}")
        return step

    def node_manager_gone() -> None:
        batch.driver_log_url = batch.driver_url()  # Livy still names it; it no longer answers
        buffer.driver_files = None

    later = [lambda n=n: buffer.append("stderr", f"report {n}") for n in range(2, 6)]
    _script(livy, [driver_then_report(0), driver_then_report(1), node_manager_gone, *later])
    infos, warnings = _task_log(livy, caplog)
    assert len(warnings) == 1 and "could not be read" in warnings[0]
    shown = [m.removeprefix("[livy 0] ") for m in infos if m.startswith("[livy 0] ")]
    assert shown[:2] == ["driver line 0", "driver line 1"]
    # Livy's lines of the polls the driver log was retried are logged once the reader gives up.
    assert shown[2:] == ["report 2", "report 3", "report 4", "report 5"]


def test_task_log_select_keeps_livy_lines_until_driver_lines_arrive() -> None:
    task_log = TaskLog()  # no reader: nothing says the driver log fails
    launcher = [LogLine("submitting", "livy stderr")]
    assert task_log.select(launcher) == launcher
    both = [LogLine("driver says hi", "driver stdout"), LogLine("report", "livy stderr"),
            LogLine("Exit code 1", "diagnostics")]
    assert task_log.select(both) == [both[0], both[2]]
    assert task_log.select([LogLine("report 2", "livy stderr")]) == []
    assert TaskLog().select(["plain line"]) == ["plain line"]  # an offset reader's lines have no source
