"""``SparkBatchOperator``: one Livy batch per task instance, on Airflow 2.4+ and 3.x.

``execute`` builds the job from the exported ``JOB_CONFIG`` plus the trigger-conf params,
reads the credentials from Airflow Variables (run time only), submits the batch under a
run-scoped name or reattaches to the one an earlier try left (never a second POST), and then

- ``deferrable=True`` (default): defers to :class:`SparkBatchTrigger`, which watches the batch
  on the triggerer without holding a worker slot; ``execute_complete`` pages the driver log into
  the task log and decides;
- ``deferrable=False``: watches it here, paging the log as it grows.

The task log gets the driver's own log when it can be read, else Livy's view, and the run's note
about what could not be read (``Snapshot.log_note``) once, as a WARNING (``runtime.TaskLog``).

The batch is deleted at the task's own deadline (``timeout``) and when the task is killed
(``on_kill``; while deferred, the trigger's kill path). A transient Livy or gateway failure
never deletes it: the try fails and the retry reattaches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from hdiaks_widgets.airflow.compat import AirflowException, BaseOperator, Param, get_variable
from hdiaks_widgets.airflow.runtime import (
    TaskLog,
    Variables,
    Verdict,
    batch_names,
    build_client,
    effective_config,
    first_try_since_clear,
    log,
    start_run,
    trigger_keys_for,
    verdict,
)
from hdiaks_widgets.airflow.trigger import SparkBatchTrigger
from hdiaks_widgets.config import ClusterProfile, JobConfig
from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.run import BatchRun, Snapshot

__all__ = ["SparkBatchOperator", "trigger_params"]


def trigger_params(job_config: Mapping[str, Any]) -> dict[str, Any]:
    """The "Trigger DAG w/ config" form: one Param per trigger-conf key that applies to the job's
    flavour (no cluster FQDN for Fabric, Synapse or a Livy URL), defaulting to the job."""
    spec, profile = job_config.get("spec") or {}, job_config.get("profile") or {}
    params = {
        "spark_cluster_fqdn": Param(profile.get("fqdn") or "", type="string", description="Cluster FQDN"),
        "app_jar_path": Param(spec.get("file") or "", type="string", description="Application file"),
        "job_name": Param(spec.get("name") or "", type="string", description="Livy batch name"),
        "class_name": Param(spec.get("class_name") or "", type="string", description="Main class"),
        "args": Param(list(spec.get("args") or []), type="array", description="Application arguments"),
    }
    keys = trigger_keys_for(str(profile.get("flavour") or ClusterProfile().flavour))
    return {k: v for k, v in params.items() if k in keys}


class SparkBatchOperator(BaseOperator):  # type: ignore[misc]  # Airflow is untyped here
    """Runs the job of ``job_config`` (a ``JobConfig.to_dict()``) as one Livy batch.

    ``timeout``: seconds the batch may run before the task kills it and fails.
    ``poll_interval``: seconds between state polls. ``max_poll_errors``: consecutive failed polls
    (each after the client's own ``livy_retries``) before the try gives up, leaving the batch
    running for the retry. Nothing is templated: the job's values are data, so ``{{ }}`` in them
    stays literal text.
    """

    template_fields = ()
    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        job_config: Mapping[str, Any],
        timeout: float = 6 * 3600,
        poll_interval: float = 10.0,
        max_poll_errors: int = 8,
        livy_retries: int = 4,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_config = dict(job_config)
        self.timeout = float(timeout)
        self.poll_interval = float(poll_interval)
        self.max_poll_errors = int(max_poll_errors)
        self.livy_retries = int(livy_retries)
        self.deferrable = bool(deferrable)
        self._variables = Variables(get_variable)
        self._cfg: JobConfig | None = None
        self._batch_id: int | str | None = None
        # Made in execute: Airflow may deep-copy operators, and an Event (a lock) cannot be copied.
        self._stop: threading.Event | None = None

    # -- running -----------------------------------------------------------------------------

    def _names(self, context: Mapping[str, Any], base: str) -> list[str]:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        try_number = int(getattr(ti, "try_number", 1) or 1)
        max_tries = getattr(ti, "max_tries", None)
        first = first_try_since_clear(
            max_tries=None if max_tries is None else int(max_tries),
            retries=None if self.retries is None else int(self.retries),
            try_number=try_number,
        )
        return batch_names(
            base,
            dag_id=str(ti.dag_id),
            run_id=str(context["run_id"]),
            task_id=str(ti.task_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=try_number,
            first_try=first,
        )

    def execute(self, context: Mapping[str, Any]) -> Any:
        started = time.time()
        stop = self._stop = threading.Event()
        try:
            cfg = effective_config(self.job_config, context.get("params"))
            # Also when deferring: a missing Variable fails here, on the worker, with a plain message.
            client = build_client(cfg, self._variables, retries=self.livy_retries)
            names = self._names(context, cfg.spec.name or str(context["ti"].dag_id))
            run, _reattached = start_run(client, cfg, names, max_errors=self.max_poll_errors)
        except HdiaksError as exc:
            raise AirflowException(str(exc)) from exc
        self._cfg, self._batch_id = cfg, run.batch_id
        if stop.is_set():  # killed while submitting: on_kill had no batch to delete yet
            self._kill_with(run.batch_id)
            raise AirflowException(f"Livy batch {run.batch_id} was killed with the task")
        ti = context["ti"]
        ti.xcom_push(key="batch_id", value=run.batch_id)
        ti.xcom_push(key="batch_name", value=run.name)
        if self.deferrable:
            self._batch_id = None  # from here the trigger's kill path owns it
            self.defer(
                trigger=SparkBatchTrigger(
                    batch_id=run.batch_id,
                    name=run.name or names[-1],
                    job_config=cfg.to_dict(),
                    deadline=started + self.timeout,
                    poll_interval=self.poll_interval,
                    max_poll_errors=self.max_poll_errors,
                    livy_retries=self.livy_retries,
                ),
                method_name="execute_complete",
            )
        snap = run.wait(
            timeout=self.timeout - (time.time() - started),
            on_update=TaskLog(run.reader).page,
            interval=min(1.0, self.poll_interval),
            max_interval=self.poll_interval,
            stop=stop,
        )
        stopped = stop.is_set()
        decision = verdict(snap, timeout=self.timeout, timed_out=not snap.finished and not stopped, stopped=stopped)
        return self._finish(context, run, snap, decision)

    def execute_complete(self, context: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> Any:
        """Back from the trigger: page the whole driver log into the task log, then decide."""
        event = dict(event or {})
        batch_id, name, status = event.get("batch_id"), event.get("name"), event.get("status")
        if batch_id is None:
            raise AirflowException(f"the trigger sent no batch: {event}")
        if status == "finished" and not event.get("terminal"):
            # The trigger gave up (Livy or the gateway kept failing, the batch was replaced or
            # purged): fail this try without touching the batch; a retry reattaches.
            raise AirflowException(
                f"Lost track of Livy batch {batch_id} ({event.get('error_kind')}): {event.get('error')} "
                "The batch was left running; a retry of this task reattaches to it."
            )
        try:
            cfg = effective_config(self.job_config, context.get("params"))
            self._cfg = cfg
            client = build_client(cfg, self._variables, retries=self.livy_retries)
            run = BatchRun.attach(client, batch_id, expected_name=name)
        except HdiaksError as exc:
            if status == "timeout":
                self._kill_with(batch_id)
            raise AirflowException(
                f"Cannot read Livy batch {batch_id} after the wait ({exc})"
                + ("" if status == "timeout" else "; it was left running, a retry of this task reattaches to it")
            ) from exc
        task_log = TaskLog(run.reader)
        if status == "timeout":
            snap = run.poll()
            task_log.page(snap)
            return self._finish(context, run, snap, verdict(snap, timeout=self.timeout, timed_out=True))
        snap = run.wait(timeout=300, on_update=task_log.page, interval=0.2, max_interval=2.0)
        return self._finish(context, run, snap, verdict(snap, timeout=self.timeout, timed_out=False))

    def _finish(self, context: Mapping[str, Any], run: BatchRun, snap: Snapshot, decision: Verdict) -> Any:
        if decision.kill:
            log.warning(decision.message)
            self._kill_with(run.batch_id)
        self._batch_id = None  # ended, or ours to leave: nothing left for on_kill
        context["ti"].xcom_push(key="app_id", value=snap.app_id)
        log.info("Livy batch %s (app %s) state %s", run.batch_id, snap.app_id, snap.state_label)
        if not decision.ok:
            raise AirflowException(decision.message)
        return {"batch_id": run.batch_id, "name": run.name, "app_id": snap.app_id, "state": snap.state_label}

    # -- killing -------------------------------------------------------------------------------

    def on_kill(self) -> None:
        """The task is killed while ``execute`` runs (SIGTERM, execution_timeout): delete the batch.

        Airflow 3's task runner calls only this and lets ``execute`` go on, so the wait is
        stopped here too; Airflow 2 raises into ``execute`` afterwards.
        """
        if self._stop is not None:
            self._stop.set()
        batch_id, self._batch_id = self._batch_id, None
        if batch_id is not None:
            self._kill_with(batch_id)

    def _kill_with(self, batch_id: int | str) -> None:
        """DELETE the batch on a client and session of its own: this runs inside Airflow's SIGTERM
        handler too, which may have interrupted a request on the task's session. It reads no
        Variable (only the values read before), so it cannot wait on a secrets backend."""
        log.warning("Killing Livy batch %s", batch_id)
        try:
            cfg = self._cfg or effective_config(self.job_config, None, validate=False)  # a kill is never refused
            with build_client(cfg, self._variables.frozen(), retries=0) as client:
                client.kill_batch(batch_id)
        except Exception as exc:  # noqa: BLE001 - the reason the task stops matters more
            log.warning("Could not kill Livy batch %s: %s", batch_id, exc)
