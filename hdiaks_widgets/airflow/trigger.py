"""``SparkBatchTrigger``: watches a Livy batch on the triggerer, so no worker slot is held.

It polls the batch state with :class:`~hdiaks_widgets.run.BatchRun` (the blocking ``requests``
calls run in a thread, ``asyncio.to_thread``) until the batch is finished or the task's own
deadline passes, then fires one event; the operator's ``execute_complete`` pages the log and
decides. Its kwargs hold only the job's non-secret configuration: the credentials are Airflow
Variables read on the triggerer at run time.

Killing the batch when the task is killed while deferred (marked failed or succeeded, or
cleared, by a user):

- Airflow 3.3+ cancels the trigger with the message ``"user-action"`` and then calls
  :meth:`BaseTrigger.on_kill` (apache/airflow#65590, ``triggerer_job_runner.run_trigger``);
  a triggerer restart or a redistribution cancels without it and calls only ``cleanup``. So the
  kill lives in ``on_kill``, never in ``cleanup`` (which runs on every exit).
- Before 3.3 there is no trigger ``on_kill``: a cancel is the same ``CancelledError`` for a user
  action and for a triggerer shutdown (apache/airflow#36090). On a cancel the trigger asks
  whether its task instance is still deferred (the providers' ``safe_to_cancel`` pattern, e.g.
  apache/airflow#65741): a restart leaves it deferred and the batch alive; otherwise a user acted
  on it and the batch is killed. Airflow 2.x answers from the metadata database (proven end to
  end on 2.10); Airflow 3.0-3.2 through the task SDK's ``get_task_states`` (not proven here: no
  such Airflow in the test venvs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from hdiaks_widgets.airflow.compat import TRIGGER_HAS_ON_KILL, BaseTrigger, TriggerEvent, get_variable
from hdiaks_widgets.airflow.runtime import Variables, build_client
from hdiaks_widgets.config import JobConfig
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import Batch
from hdiaks_widgets.run import BatchRun, LivyLike, LogDelta, Snapshot

__all__ = ["SparkBatchTrigger", "event_of"]

log = logging.getLogger("hdiaks.dag")


class _StateOnly:
    """A log reader that reads nothing: the trigger only needs the state."""

    def read(self, client: LivyLike, batch: Batch) -> LogDelta:
        return LogDelta()


def event_of(snap: Snapshot, status: str) -> dict[str, Any]:
    """The JSON payload of the trigger's event (``status``: ``finished`` or ``timeout``)."""
    return {
        "status": status,
        "batch_id": snap.batch_id,
        "name": snap.name,
        "state": snap.state_label,
        "terminal": snap.batch is not None and snap.batch.state.is_terminal,
        "error_kind": snap.error_kind,
        "error": snap.error,
    }


class SparkBatchTrigger(BaseTrigger):  # type: ignore[misc]  # Airflow is untyped here
    """Polls Livy batch ``batch_id`` (named ``name``) until it is finished or ``deadline``
    (epoch seconds) passes."""

    def __init__(
        self,
        *,
        batch_id: int | str,
        name: str,
        job_config: Mapping[str, Any],
        deadline: float,
        poll_interval: float = 10.0,
        max_poll_errors: int = 8,
        livy_retries: int = 4,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.name = name
        self.job_config = dict(job_config)
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.max_poll_errors = int(max_poll_errors)
        self.livy_retries = int(livy_retries)
        self._client: LivyClient | None = None
        self._killed = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_id": self.batch_id,
                "name": self.name,
                "job_config": self.job_config,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_errors": self.max_poll_errors,
                "livy_retries": self.livy_retries,
            },
        )

    def _build_client(self) -> LivyClient:
        cfg = JobConfig.from_dict(self.job_config)
        return build_client(cfg, Variables(get_variable), retries=self.livy_retries)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async for event in self._watch():
                yield event
        except asyncio.CancelledError:
            if not TRIGGER_HAS_ON_KILL and await asyncio.to_thread(self._left_deferred):
                await self._kill("the task is no longer deferred (marked failed or cleared)")
            raise

    async def _watch(self) -> AsyncIterator[TriggerEvent]:
        self._client = await asyncio.to_thread(self._build_client)
        watcher = BatchRun(
            self._client, self.batch_id, name=self.name, log_reader=_StateOnly(), max_errors=self.max_poll_errors
        )
        while True:
            snap = await asyncio.to_thread(watcher.poll)
            if snap.finished:
                yield TriggerEvent(event_of(snap, "finished"))
                return
            left = self.deadline - time.time()
            if left <= 0:
                yield TriggerEvent(event_of(snap, "timeout"))
                return
            await asyncio.sleep(min(self.poll_interval, left))

    async def on_kill(self) -> None:
        """Airflow 3.3+: a user marked the deferred task failed/succeeded or cleared it."""
        await self._kill("the task was killed while deferred")

    async def _kill(self, why: str) -> None:
        if self._killed:
            return
        self._killed = True
        log.warning("Killing Livy batch %s: %s", self.batch_id, why)
        try:
            client = self._client if self._client is not None else await asyncio.to_thread(self._build_client)
            await asyncio.to_thread(client.kill_batch, self.batch_id)
        except Exception as exc:  # noqa: BLE001 - a failed kill must not hide the cancel
            log.warning("Could not kill Livy batch %s: %s", self.batch_id, exc)

    def _left_deferred(self) -> bool:
        """Before Airflow 3.3: whether this trigger's task instance left the deferred state."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return False
        try:
            state = _task_state(ti)
        except Exception as exc:  # noqa: BLE001 - never kill on a guess
            log.warning("Could not read the state of %s: %s; leaving batch %s alone", ti, exc, self.batch_id)
            return False
        # None: cleared (or its run deleted); anything but deferred means a user acted on it.
        return str(getattr(state, "value", state)) != "deferred"


def _task_state(ti: Any) -> Any:
    """The task instance's current state: the metadata database on Airflow 2, the task SDK's
    supervisor channel on Airflow 3 (the triggerer has no database there)."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    except ImportError:  # Airflow 2
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            return (
                session.query(TaskInstance.state)
                .filter_by(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index)
                .scalar()
            )
    states = RuntimeTaskInstance.get_task_states(
        dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
    )
    by_task = states.get(ti.run_id) or {}
    return by_task.get(ti.task_id, "cleared")  # a cleared task instance has no state at all
