"""The Airflow operator's decisions, without Airflow: names, config, Variables, client, reattach,
and what a snapshot means (succeed, fail, kill). An in-memory Livy stands in for the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hdiaks_widgets.airflow.runtime import (
    MissingVariables,
    Variables,
    batch_names,
    build_client,
    effective_config,
    first_try_since_clear,
    start_run,
    verdict,
)
from hdiaks_widgets.auth import BasicAuth, ServicePrincipalAuth
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.models import Batch, BatchState, LogPage
from hdiaks_widgets.run import Snapshot

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
