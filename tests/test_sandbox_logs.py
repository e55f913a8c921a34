"""The log as real Livy serves it, read by the product, against real Spark (issue: real Livy logs).

One sandbox per log shape (module scope): ``process`` (Livy local mode), ``yarn`` (launcher output
and YARN Diagnostics in Livy's view, the driver's files behind ``driverLogUrl``), ``kubernetes``
(a rotating driver-pod window) — each with Livy's default ``cache-log-size`` of 200 — and a
Spark standalone cluster running jars in cluster deploy mode (the driver on a worker).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Run, SandboxHandle, start_sandbox

from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.run import BatchRun, Snapshot
from hdiaks_widgets.sandbox.apps import FAILING_JOB_CLASS, LOG_STORM_CLASS

pytestmark = [pytest.mark.spark, pytest.mark.sandbox]

STORM = 3000  # lines on each stream: 15 times what Livy keeps


def _numbers(lines: tuple[str, ...] | list[str], prefix: str) -> list[int]:
    return [int(m.group(1)) for ln in lines if (m := re.fullmatch(rf"{prefix} (\d+) of \d+", str(ln)))]


def _follow(handle: SandboxHandle, spec: BatchSpec, timeout: float = 240) -> Snapshot:
    with LivyClient(handle.url) as client:
        run = BatchRun.submit(client, spec)
        snap = run.wait(timeout=timeout, interval=0.3, max_interval=1.0)
    assert snap.finished, snap
    return snap


_HEADERS = {"process": ["stdout: ", "\nstderr: "], "yarn": ["stdout: ", "\nstderr: ", "\nYARN Diagnostics: "],
            "kubernetes": ["stdout: ", "\nstderr: ", "\nKubernetes Diagnostics: "]}


def assert_livy_layout(handle: SandboxHandle, batch_id: int | str, shape: str, cache: int = 200) -> list[str]:
    """The raw view has PROTOCOL.md §2.7's section layout for ``shape``: its headers, in order,
    each once; each spark-submit section at most ``cache`` lines (two queues for Kubernetes' stderr);
    paging by Livy's rules; the batch's ``log`` field is the view's last 10 lines."""
    with requests.Session() as s:
        page = s.get(f"{handle.url}/batches/{batch_id}/log", params={"from": 0, "size": -1}, timeout=10).json()
        batch = s.get(f"{handle.url}/batches/{batch_id}", timeout=10).json()
        tail = s.get(f"{handle.url}/batches/{batch_id}/log", timeout=10).json()
    view = page["log"]
    assert page["total"] == len(view) and page["from"] == 0
    headers = [line for line in view if line in ("stdout: ", "\nstderr: ", "\nYARN Diagnostics: ",
                                                 "\nKubernetes Diagnostics: ")]  # fmt: skip
    assert headers == _HEADERS[shape] and view[0] == "stdout: "
    marks = [view.index(h) for h in headers] + [len(view)]
    sizes = [marks[i + 1] - marks[i] - 1 for i in range(len(headers))]
    assert sizes[0] <= cache and sizes[1] <= (2 * cache if shape == "kubernetes" else cache)
    assert batch["log"] == view[-10:]
    assert (tail["from"], tail["log"]) == (max(0, len(view) - 100), view[-100:])
    return view


def _shape(tmp_path_factory: pytest.TempPathFactory, **options: Any) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.mktemp(f"sandbox-{options.get('log_shape', 'cluster')}"), **options)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def process_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    yield from _shape(tmp_path_factory, log_shape="process")


@pytest.fixture(scope="module")
def yarn_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    yield from _shape(tmp_path_factory, log_shape="yarn", report_interval=0.2)


@pytest.fixture(scope="module")
def k8s_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    yield from _shape(tmp_path_factory, log_shape="kubernetes", report_interval=0.2)


def _storm(handle: SandboxHandle, *args: str) -> BatchSpec:
    return BatchSpec(file=handle.examples["storm_py"], args=[str(STORM), *args])


# -- process shape: Livy's view only -------------------------------------------------------------


def test_storm_on_livys_bounded_view_no_repeats_order_final_lines_and_a_note(process_sandbox: SandboxHandle) -> None:
    snap = _follow(process_sandbox, _storm(process_sandbox, "fail"))
    assert snap.state_label == "dead"
    view = assert_livy_layout(process_sandbox, snap.batch_id, "process")
    assert view.index("\nstderr: ") - 1 == 200  # stdout's queue is full: the job printed 6,000 lines to it
    # Spark's PythonRunner merges the Python driver's stderr into spark-submit's stdout
    # (redirectErrorStream), so both numbered streams land in Livy's stdout queue: its last 200
    # lines are the last 100 of each, and spark-submit's stderr holds the JVM's log4j lines.
    for prefix in ("out", "err"):
        numbers = _numbers(snap.lines, prefix)
        assert numbers == sorted(set(numbers)), f"{prefix}: a line shown twice or out of order"
        tail = [n for n in numbers if n > STORM - 100]
        assert tail == list(range(STORM - 99, STORM + 1)), f"{prefix}: final lines missing"
        assert {ln.source for ln in snap.lines if str(ln).startswith(prefix)} == {"livy stdout"}
        assert len(numbers) < STORM  # Livy dropped most of them ...
    log4j = [ln for ln in snap.lines if ln.source == "livy stderr"]
    assert any(" INFO " in ln for ln in log4j)
    assert snap.log_gaps >= 1  # ... and the run says so
    assert snap.log_note and "Livy keeps only the last 200 lines of each stream" in snap.log_note
    # The failure sentence quotes the job's last error lines, not the first screen.
    assert snap.error and "storm failed after printing its lines" in snap.error


# -- yarn shape: the driver log is read by byte range ------------------------------------------------


def test_yarn_driver_log_is_read_whole_and_diagnostics_once_at_the_end(yarn_sandbox: SandboxHandle) -> None:
    snap = _follow(yarn_sandbox, _storm(yarn_sandbox, "fail"))
    assert snap.state_label == "dead"
    assert_livy_layout(yarn_sandbox, snap.batch_id, "yarn")
    driver_stdout = [ln for ln in snap.lines if ln.source == "driver stdout"]  # Python's stderr merged in
    assert _numbers(driver_stdout, "out") == list(range(1, STORM + 1))
    assert _numbers(driver_stdout, "err") == list(range(1, STORM + 1))
    assert any(" INFO " in ln for ln in snap.lines if ln.source == "driver stderr")  # the JVM's log4j
    assert snap.log_gaps == 0 and snap.dropped_lines == 0
    # Livy's own view holds only the launcher's lines: the job's output is not in it.
    livy = [ln for ln in snap.lines if ln.source.startswith("livy")]
    assert livy and not _numbers(livy, "out")
    assert any("Application report for application_" in ln for ln in livy)
    diagnostics = [str(ln) for ln in snap.lines if ln.source == "diagnostics"]
    assert diagnostics == ["User application exited with status 1"]
    assert list(snap.lines).index(next(ln for ln in snap.lines if ln.source == "diagnostics")) > len(snap.lines) - 3
    assert snap.error and "storm failed after printing its lines" in snap.error


def test_yarn_driver_log_url_serves_byte_ranges_like_nodemanager(yarn_sandbox: SandboxHandle) -> None:
    snap = _follow(yarn_sandbox, BatchSpec(file=yarn_sandbox.examples["pi_py"], args=["2"]))
    url = snap.driver_log_url
    assert url and "/node/containerlogs/container_" in url
    with requests.Session() as s:
        listing = s.get(url, timeout=10)
        assert listing.status_code == 200 and "text/html" in listing.headers["Content-Type"]
        assert "stdout : Total file length is" in listing.text
        tail = s.get(f"{url}/stdout/", timeout=10).text  # default start=-4096: the last 4 KiB
        assert "<pre>" in tail and "Pi is roughly" in tail
        whole = s.get(f"{url}/stderr/", params={"start": 0}, timeout=10).text
        part = s.get(f"{url}/stderr/", params={"start": 0, "end": 100}, timeout=10).text
        assert len(part) < len(whole) and "Showing 100 bytes of" in part
    assert any(ln.source == "driver stdout" and "Pi is roughly" in ln for ln in snap.lines)


# -- kubernetes shape: the driver pod's rotating window -------------------------------------------


def test_kubernetes_rotating_driver_window_is_followed_without_repeats(k8s_sandbox: SandboxHandle) -> None:
    snap = _follow(k8s_sandbox, _storm(k8s_sandbox, "ok", "0.4"))
    assert snap.state_label == "success"
    view = assert_livy_layout(k8s_sandbox, snap.batch_id, "kubernetes")
    assert view.index("\nstderr: ") - 1 == 200  # the pod window is full: the last 200 driver lines
    driver = [ln for ln in snap.lines if ln.source == "driver log"]
    for prefix in ("out", "err"):
        numbers = _numbers(driver, prefix)
        assert numbers == sorted(set(numbers)), f"{prefix}: repeated or out of order"
        assert numbers[-50:] == list(range(STORM - 49, STORM + 1))
    assert snap.driver_log_url is None  # Livy on Kubernetes reports no driver log URL
    diagnostics = [str(ln) for ln in snap.lines if ln.source == "diagnostics"]
    assert "\tphase: Succeeded" in diagnostics and len(diagnostics) == len(set(diagnostics))
    # The pod watcher's status lines (5 a second here, identical within a second) keep their order.
    status = [str(ln)[:17] for ln in snap.lines if ln.source == "livy stderr" and "phase: Running" in ln]
    assert status and status == sorted(status)


# -- the standalone cluster: cluster deploy mode ----------------------------------------------------


def _cluster_java(handle: SandboxHandle) -> list[int]:
    """Live java processes (drivers, executors) working under the cluster's worker dirs."""
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cwd = Path(pid_dir / "cwd").resolve()
            exe = (pid_dir / "exe").resolve().name
        except OSError:
            continue
        if exe == "java" and any(cwd.is_relative_to(Path(d)) for d in handle.options["cluster"]["worker_dirs"]):
            found.append(int(pid_dir.name))
    return found


def test_cluster_mode_spark_pi_output_comes_from_the_driver_log(cluster_sandbox: SandboxHandle) -> None:
    spec = BatchSpec(file=cluster_sandbox.examples["jar"], class_name=cluster_sandbox.spark_pi_class, args=["2"])
    snap = _follow(cluster_sandbox, spec)
    assert snap.state_label == "success"
    assert snap.app_id and snap.app_id.startswith("app-")
    pi = [ln for ln in snap.lines if "Pi is roughly" in ln]
    assert pi and {ln.source for ln in pi} == {"driver stdout"}  # not in Livy's view at all
    assert any("Driver successfully submitted as driver-" in ln for ln in snap.lines if ln.source == "livy stderr")
    # A finished application is shown by the Spark History Server.
    assert snap.spark_ui_url and "/history/app-" in snap.spark_ui_url
    assert requests.get(snap.spark_ui_url, timeout=30).status_code == 200


def test_cluster_mode_failing_jar_error_comes_from_the_driver_stderr(cluster_sandbox: SandboxHandle) -> None:
    spec = BatchSpec(file=cluster_sandbox.examples["jar"], class_name=FAILING_JOB_CLASS, args=["from the driver"])
    snap = _follow(cluster_sandbox, spec)
    assert snap.state_label == "dead"  # spark-submit exits 0: the state comes from the master
    errors = [ln for ln in snap.lines if "sandbox failing job: from the driver" in ln]
    assert {ln.source for ln in errors} >= {"driver stderr"}
    assert snap.error and "sandbox failing job: from the driver" in snap.error
    diagnostics = [str(ln) for ln in snap.lines if ln.source == "diagnostics"]
    assert diagnostics and diagnostics[0].startswith("User class threw exception: ")


def test_cluster_mode_kill_leaves_no_driver_or_executor_jvm(cluster_sandbox: SandboxHandle) -> None:
    spec = BatchSpec(file=cluster_sandbox.examples["jar"], class_name=LOG_STORM_CLASS, args=["100000000"])
    with LivyClient(cluster_sandbox.url) as client:
        run = BatchRun.submit(client, spec)

        def driver_prints(snap: Snapshot) -> object:
            return snap.state_label == "running" and any(ln.source == "driver stdout" for ln in snap.lines)

        stop = threading.Event()
        snap = run.wait(timeout=120, interval=0.5, on_update=lambda s: driver_prints(s) and stop.set(), stop=stop)
        assert snap is not None and snap.state_label == "running", snap
        assert _cluster_java(cluster_sandbox), "no driver JVM found on the worker while it runs"
        run.kill()
        final = run.wait(timeout=60, interval=0.3)
    assert final.state_label in ("killed", "purged")
    assert _cluster_java(cluster_sandbox) == []




def test_logs_follow_on_the_bounded_view_no_repeats_final_lines_and_one_note(
    process_sandbox: SandboxHandle, run: Run
) -> None:
    with LivyClient(process_sandbox.url) as client:
        batch = client.submit_batch(_storm(process_sandbox, "ok", "0.3"))
    code, out, err = run("logs", str(batch.id), "--url", process_sandbox.url, "--follow", "--poll", "0.3")
    assert code == 0, err
    lines = out.splitlines()
    for prefix in ("out", "err"):
        numbers = _numbers(lines, prefix)
        assert numbers == sorted(set(numbers)), f"{prefix}: repeated or out of order"
        assert [n for n in numbers if n > STORM - 100] == list(range(STORM - 99, STORM + 1))
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "Livy keeps only the last 200 lines of each stream" in notes[0]
