"""``hdiaks demo`` and ``hdiaks lab``: the product end to end on the local sandbox.

The demo walks the production path with local stand-ins: the service principal's id, secret and
tenant are read from the sandbox's Key Vault endpoint, MSAL gets a token from its identity
endpoint, and the Livy sandbox accepts only that token. Then a real Spark job runs (a SparkPi
jar addressed by an ``abfs://`` path), a failing job shows ``dead`` with its error lines, and the
configuration is exported as an Airflow DAG.

The sandbox runs a Spark standalone cluster (one master, one worker, the History Server) and
serves Livy's real log in the YARN shape: the jar runs in cluster deploy mode, so its driver
runs on the worker and "Pi is roughly" is read from the driver log behind ``driverLogUrl`` — it
is not in Livy's own view at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hdiaks_widgets.config import BatchSpec, JobConfig
from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.logview import job_output
from hdiaks_widgets.models import Batch, BatchState
from hdiaks_widgets.monitor import failure_lines, follow_batch
from hdiaks_widgets.run import BatchRun
from hdiaks_widgets.tables import batch_table, log_table

__all__ = ["run_demo", "run_lab"]

SPARK_PI_CLASS = "org.apache.spark.examples.SparkPi"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _frame_text(frame: pd.DataFrame) -> str:
    with pd.option_context("display.max_colwidth", 70, "display.width", 200):
        return frame.to_string(index=False)


def _batches_text(batches: Sequence[Batch]) -> str:
    return _frame_text(batch_table(batches)[["id", "name", "state", "app_id", "driver_log"]])


def _run_job(client: LivyClient, spec: BatchSpec) -> tuple[Batch, list[str]]:
    run = BatchRun.submit(client, spec)
    batch = run.first_batch
    assert batch is not None  # submit always has the POST's answer
    _say(f"  submitted batch {batch.id} ({batch.name}) -> {batch.state.value}")
    started = time.monotonic()
    final = follow_batch(client, batch.id, run=run, poll_interval=0.5, timeout=600)
    _say(f"  batch {final.id} reached {final.state.value} in {time.monotonic() - started:.1f} s")
    snap = run.snapshot
    if snap.spark_ui_url:
        _say(f"  Spark UI   {snap.spark_ui_url}")
    if snap.driver_log_url:
        _say(f"  driver log {snap.driver_log_url}")
    if snap.log_note:
        _say(f"  note: {snap.log_note}")
    return final, list(run.log)  # what the run read while following


def run_demo(root: str | os.PathLike[str] = ".sandbox", out: str | os.PathLike[str] = "demo-output",
             *, json_output: bool = False) -> int:
    """Run the end-to-end demo; returns the process exit code (0 when everything worked)."""
    from hdiaks_widgets.dag_export import export_dag_files
    from hdiaks_widgets.sandbox.launcher import start_sandbox_process

    _say("hdiaks demo: starting the local sandbox (Livy on a Spark standalone cluster, identity and Key Vault "
         "over HTTPS)")
    _say("  first start compiles the example apps; later starts reuse them")
    sandbox = start_sandbox_process(root, auth=True, cluster=1)
    summary: dict[str, Any] = {"sandbox": sandbox.url}
    try:
        endpoints = sandbox.endpoints()
        profile = sandbox.auth_profile()
        _say(f"  Livy     {sandbox.url} (bearer tokens required)")
        _say(f"  identity {endpoints['authority_host']}")
        _say(f"  vault    {endpoints['vault_url']}")
        _say()
        _say("1. secrets from Key Vault -> MSAL token -> Livy")
        # The vault reader's AZURE_* settings; the cluster service principal lives in the vault.
        client = LivyClient.from_profile(profile, environ=endpoints["environment"])
        stamp = time.strftime("%H%M%S")
        cfg = JobConfig(
            profile=profile,
            spec=BatchSpec(
                file=sandbox.examples["jar"],
                class_name=SPARK_PI_CLASS,
                args=("10",),
                name=f"demo-spark-pi-{stamp}",
                driver_memory="512m",
                conf={"spark.sql.shuffle.partitions": "4"},
            ),
        ).validate()
        _say(f"  app jar  {cfg.spec.file}")
        _say(f"  class    {cfg.spec.class_name}")
        _say()
        _say("2. SparkPi from an abfs:// jar")
        pi, pi_log = _run_job(client, cfg.batch_spec)
        pi_lines = [line for line in pi_log if "Pi is roughly" in line]
        sources = sorted({getattr(line, "source", "") for line in pi_lines})
        _say()
        _say("2a. batch table")
        _say(_batches_text([pi]))
        _say()
        _say(f"2b. log table: last 8 of {len(pi_log)} lines")
        _say(_frame_text(log_table(pi_log).tail(8)[["line", "level", "logger", "message", "source"]]))
        _say()
        for line in pi_lines:
            _say(f"  >>> {line}")
        _say()
        _say("3. a job that fails")
        fail, fail_log = _run_job(client, BatchSpec(file=sandbox.examples["fail_py"], name=f"demo-fail-{stamp}"))
        _say(_batches_text([pi, fail]))
        _say("  its error lines:")
        for line in failure_lines(job_output(fail_log), limit=4):
            _say(f"  !!! {line}")
        _say()
        _say("4. export the job as an Airflow DAG")
        paths = export_dag_files(cfg, Path(out), dag_id="spark_pi_demo")
        for path in paths:
            _say(f"  wrote {path}")
        summary.update(
            pi={"id": pi.id, "state": pi.state.value, "app_id": pi.app_id, "result": pi_lines,
                "result_from": sources},
            fail={"id": fail.id, "state": fail.state.value, "error": failure_lines(job_output(fail_log), limit=4)},
            files=[str(p) for p in paths],
        )
        client.close()
        ok = pi.state is BatchState.SUCCESS and bool(pi_lines) and fail.state is BatchState.DEAD
    except HdiaksError as exc:
        print(f"hdiaks demo: error: {exc}", file=sys.stderr)
        ok = False
    finally:
        _say()
        _say("5. stopping the sandbox")
        left = sandbox.stop()
        if left:
            print(f"hdiaks demo: processes left behind: {left}", file=sys.stderr)
            ok = False
    if json_output:
        print(json.dumps(summary, indent=2))
    _say("demo finished: " + ("everything worked" if ok else "something failed (see above)"))
    return 0 if ok else 1


def run_lab(root: str | os.PathLike[str] = ".sandbox", *, port: int = 8888,
            notebook: str = "notebooks/01_submit_job.ipynb", extra_args: Sequence[str] = ()) -> int:
    """Start the sandbox, then JupyterLab on the quickstart notebook; stop both on exit."""
    from hdiaks_widgets.sandbox.launcher import start_sandbox_process

    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if jupyter is None:
        print("hdiaks lab: error: JupyterLab is not installed; run 'make setup'", file=sys.stderr)
        return 1
    sandbox = start_sandbox_process(root, port=0)
    _say(f"sandbox running at {sandbox.url}; opening {notebook}")
    env = dict(os.environ, HDIAKS_SANDBOX_URL=sandbox.url)
    cmd = [jupyter, "lab", notebook, f"--port={port}", *extra_args]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    lab = subprocess.Popen(cmd, env=env)

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (a closed terminal, a supervisor) must stop JupyterLab and the sandbox too.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return lab.wait()
    except KeyboardInterrupt:
        lab.terminate()
        try:
            return lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            return lab.wait(timeout=10)
    finally:
        signal.signal(signal.SIGTERM, previous)
        sandbox.stop()
