"""What the Airflow operator and trigger decide, without importing Airflow (unit-testable).

- :func:`effective_config`: the exported ``JOB_CONFIG`` with the trigger-conf params applied.
- :class:`Variables`: Airflow Variables read at run time, once per process, so the kill path
  (Airflow's SIGTERM handler, ``on_kill``) never waits on a secrets backend.
- :func:`build_client`: a :class:`~hdiaks_widgets.livy.LivyClient` with the profile's auth.
- :func:`batch_names` + :func:`start_run`: the run-scoped batch names and submit-or-reattach,
  so a retry never posts a second batch.
- :func:`verdict`: what a snapshot means for the task: succeed, fail, or kill and fail. Only the
  run's own deadline kills; a transient Livy/gateway failure fails the try and leaves the batch
  running for the retry to reattach to.
- :class:`TaskLog`: which of the run's log lines go to the task log (the driver's own log while
  it is being read, else Livy's view) and the run's note about its log, once, as a WARNING.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hdiaks_widgets import dialects, wire
from hdiaks_widgets.auth import BasicAuth, ServicePrincipalAuth
from hdiaks_widgets.config import ClusterProfile, JobConfig
from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.logview import job_output
from hdiaks_widgets.models import DRIVER_SOURCES
from hdiaks_widgets.run import BatchRun, Snapshot, SubmitLike

__all__ = [
    "VARIABLES",
    "MissingVariables",
    "TaskLog",
    "Variables",
    "Verdict",
    "batch_names",
    "first_try_since_clear",
    "build_client",
    "trigger_keys_for",
    "variables_for",
    "effective_config",
    "start_run",
    "verdict",
]

log = logging.getLogger("hdiaks.dag")

# Airflow Variables the task reads at run time: (key, required, what it holds). The Key Vault
# secrets backend serves each as <variables_prefix>-<key>.
VARIABLES: tuple[tuple[str, bool, str], ...] = (
    ("api-client-id", True, "application (client) id of the service principal that calls Livy"),
    ("api-secret", True, "client secret of that service principal"),
    ("tenant-id", True, "directory (tenant) id"),
    ("authority-host", False, "identity host, default https://login.microsoftonline.com"),
    ("ca-bundle", False, "path of a CA bundle for the identity and Livy endpoints"),
    ("livy-url", False, "Livy base URL, overriding the one derived from the profile"),
    ("livy-password", False, "cluster login password (profiles with basic auth only)"),
)
_ENTRA_METHODS = frozenset({"service-principal", "device-code"})  # unattended: both sign in as the app
_ENTRA_KEYS = frozenset({"api-client-id", "api-secret", "tenant-id", "authority-host"})
REQUESTED_BY = "hdiaks-airflow"
# Where the driver's own output comes from (logview: the files behind driverLogUrl, the Kubernetes
# driver pod's window); diagnostics are the cluster's last word and always go to the task log.


def _profile_app_id(profile: ClusterProfile) -> str | None:
    """The service principal's app id when the profile names it (a device-code profile's
    ``client_id`` is the public app a person signs in with, not the one with the secret)."""
    return profile.client_id if profile.auth_method == "service-principal" and profile.client_id else None


def variables_for(profile: ClusterProfile) -> list[tuple[str, bool, str]]:
    """The :data:`VARIABLES` a task with ``profile`` reads, each with whether it must be set:
    what :func:`build_client` asks for (the setup sheet lists exactly these)."""
    method = profile.auth_method
    out: list[tuple[str, bool, str]] = []
    for key, required, what in VARIABLES:
        if key in _ENTRA_KEYS:
            if method not in _ENTRA_METHODS:
                continue
            if key == "tenant-id":
                required = not profile.tenant_id  # the profile's tenant is used when the Variable is not set
            elif key == "api-client-id" and _profile_app_id(profile):
                continue  # the profile names the app: the Variable would not be read
        elif key == "livy-password":
            if method != "basic":
                continue
            required = True
        out.append((key, required, what))
    return out


# Flavours addressed by a cluster name or FQDN: only there does the sample's spark_cluster_fqdn
# mean anything (Fabric and Synapse are addressed by workspace ids, Livy and the sandbox by url).
_FQDN_FLAVOURS = frozenset({"hdinsight-aks", "hdinsight"})


def trigger_keys_for(flavour: str) -> tuple[str, ...]:
    """The trigger-conf keys that apply to a job of ``flavour`` (the DAG's "Trigger w/ config" form)."""
    return tuple(k for k in wire.TRIGGER_KEYS if k != "spark_cluster_fqdn" or flavour in _FQDN_FLAVOURS)


class MissingVariables(HdiaksError):
    """Airflow Variables the job needs are not set."""


class Variables:
    """Airflow Variables read through ``getter``, each at most once while it has a value.

    The batch is killed from inside Airflow's SIGTERM handler too, which interrupts the task
    anywhere: a lookup there could wait on a lock (secrets backend, supervisor channel) that the
    interrupted code holds, so the kill path only uses values read before. A missing Variable is
    asked for again, so setting it helps a retry in the same process.
    """

    def __init__(self, getter: Callable[[str], str | None]) -> None:
        self._getter = getter
        self._cache: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        value = self._cache.get(key)
        if value is None:
            value = self._getter(key)
            if value is not None and value != "":
                self._cache[key] = value
        return value or None

    def frozen(self) -> Variables:
        """The values read so far, with no further lookups (for the kill path)."""
        cache = dict(self._cache)
        return Variables(cache.get)

    def require(self, *keys: str) -> list[str]:
        values = [self.get(k) for k in keys]
        missing = [k for k, v in zip(keys, values, strict=True) if not v]
        if missing:
            raise MissingVariables("Airflow Variables not set: " + ", ".join(missing))
        return [v for v in values if v]


def effective_config(
    job_config: Mapping[str, Any], params: Mapping[str, Any] | None, *, validate: bool = True
) -> JobConfig:
    """``JOB_CONFIG`` with the trigger-conf keys of ``params`` applied (empty keeps the default),
    validated (``ConfigError`` naming each field) unless ``validate=False``: a trigger conf can
    name a path the cluster cannot read, and that must fail before anything is posted."""
    conf = {k: params[k] for k in wire.TRIGGER_KEYS if params is not None and k in params}
    cfg = JobConfig.from_dict(job_config).with_trigger_conf(conf)
    return cfg.validate() if validate else cfg


def build_client(cfg: JobConfig, variables: Variables, *, retries: int = 4) -> LivyClient:
    """A Livy client for ``cfg``'s profile; the credentials come from ``variables``.

    Unattended runs always use client credentials for Entra profiles (a device code sign-in
    needs a person). ``retries`` is the client's budget per request for idempotent calls.
    """
    profile = cfg.profile
    verify: bool | str = variables.get("ca-bundle") or profile.verify
    base_url = (variables.get("livy-url") or profile.base_url).rstrip("/")
    method = profile.auth_method
    auth: ServicePrincipalAuth | BasicAuth | None = None
    if method in _ENTRA_METHODS:
        # As connect.build_auth: the profile's tenant and a service-principal profile's app id win
        # when set (a device-code profile's client_id is a public app that has no secret).
        app_id = _profile_app_id(profile)
        if app_id:
            (secret,) = variables.require("api-secret")
            client_id = app_id
        else:
            client_id, secret = variables.require("api-client-id", "api-secret")
        tenant = profile.tenant_id or variables.get("tenant-id")
        if not tenant:
            raise MissingVariables("Airflow Variables not set: tenant-id")
        auth = ServicePrincipalAuth(
            tenant_id=tenant,
            client_id=client_id,
            client_secret=secret,
            scope=profile.token_scope,
            authority_host=variables.get("authority-host") or profile.authority_host,
            verify=verify,
        )
    elif method == "basic":
        (password,) = variables.require("livy-password")  # an empty password is never the right one
        auth = BasicAuth(profile.username or "", password)
    return LivyClient(
        base_url,
        auth=auth,
        verify=verify,
        timeout=(profile.connect_timeout, profile.read_timeout),
        retry=RetryPolicy(total=retries),
        requested_by=REQUESTED_BY,
        dialect=dialects.dialect_of(profile.flavour),  # Fabric/Synapse answers, ids, lists and logs
    )


def batch_names(
    base: str, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int, first_try: int = 1
) -> list[str]:
    """Run-scoped batch names of one task instance, one per try from ``first_try`` to this one.

    ``<base>-<12 hex of dag_id/run_id/task_id/map_index>``, plus ``-tryN`` for try N > 1. A retry
    in the same DAG run finds the batch of an earlier try by name instead of submitting again
    (Livy refuses duplicate names while it keeps a batch). ``first_try`` is the first try since
    the task was last cleared (Airflow's own ``max_tries - retries + 1``): batches of tries
    before a clear are never followed, so clearing a task runs the job again under a new name.
    """
    key = "\x00".join([dag_id, run_id, task_id, str(map_index)])
    stem = f"{base}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    last = max(1, try_number)
    first = min(max(1, first_try), last)
    return [stem if n == 1 else f"{stem}-try{n}" for n in range(first, last + 1)]


def first_try_since_clear(*, max_tries: int | None, retries: int | None, try_number: int) -> int:
    """The first try of the current series: a clear sets ``max_tries = try_number + retries``
    (airflow ``clear_task_instances``; the task SDK's ``get_first_reschedule_date`` reads it back
    the same way). ``1`` when Airflow does not say."""
    if max_tries is None or retries is None:
        return 1
    return min(max(1, max_tries - retries + 1), max(1, try_number))


def start_run(
    client: SubmitLike, cfg: JobConfig, names: list[str], *, max_errors: int = 8
) -> tuple[BatchRun, bool]:
    """Submit the job under ``names[-1]``, or reattach to a batch of this task instance.

    Returns the run and whether it reattached. An earlier try's batch that did not fail (it
    still runs, or it succeeded while the try lost track of it) is followed; one that failed is
    left alone and this try runs the job again under its own name. The current try's own name is
    always followed (a resubmission after a crash, or a concurrent duplicate). ``max_errors``: the
    consecutive failed polls after which the run gives up (the operator's ``max_poll_errors``).
    """
    current = names[-1]
    for name in reversed(names[:-1]):
        batch = client.find_batch(name)
        if batch is None:
            continue
        if batch.state.value not in wire.FAILED_STATES:
            log.info("Reattaching to Livy batch %s (%s), state %s", batch.id, name, batch.state.value)
            return BatchRun(client, batch.id, name=name, batch=batch, max_errors=max_errors), True
        break  # an earlier try's batch failed: run the job again under this try's name
    spec = replace(cfg.batch_spec, name=current)
    run = BatchRun.submit(client, spec, reattach=True, max_errors=max_errors)
    if run.reattached:
        state = run.first_batch.state.value if run.first_batch is not None else "unknown"
        log.info("Reattaching to Livy batch %s (%s), state %s", run.batch_id, current, state)
    else:
        log.info("Submitted Livy batch %s (%s) for %s", run.batch_id, current, spec.file)
    return run, run.reattached


@dataclass(frozen=True)
class Verdict:
    """What the task does with a snapshot: ``ok``; else fail with ``message`` (killing first
    when ``kill``)."""

    ok: bool
    kill: bool
    message: str


def verdict(snap: Snapshot, *, timeout: float, timed_out: bool, stopped: bool = False) -> Verdict:
    """The task's decision for the last snapshot of a wait.

    Only ``timed_out`` (the run's own deadline) kills. ``stopped`` means ``on_kill`` already
    deleted the batch. Any other unfinished or erroneous end fails the try and leaves the batch
    alone: the retry reattaches to it by name.
    """
    batch_id = snap.batch_id
    state = snap.state_label
    if snap.succeeded:
        return Verdict(True, False, f"Livy batch {batch_id} ended success")
    if snap.batch is not None and snap.batch.state.is_terminal:
        lines = wire.failure_lines(job_output(snap.lines), limit=20)  # the driver's own lines when read
        return Verdict(
            False,
            False,
            f"Livy batch {batch_id} ended in state {snap.batch.state.value}; last error lines:\n" + "\n".join(lines),
        )
    if snap.finished:
        if snap.error_kind in ("purged", "replaced"):
            return Verdict(False, False, snap.error or f"Livy batch {batch_id} is gone")
        return Verdict(
            False,
            False,
            f"Lost track of Livy batch {batch_id} ({snap.error_kind}): {snap.error} The batch was left "
            "running; a retry of this task reattaches to it.",
        )
    if stopped:
        return Verdict(False, False, f"Livy batch {batch_id} was killed with the task")
    if timed_out:
        return Verdict(False, True, f"Livy batch {batch_id} still {state} after {timeout:g} s; killing it")
    return Verdict(False, False, f"Stopped watching Livy batch {batch_id} (state {state})")


class TaskLog:
    """Pages a run's log into the task log, one snapshot at a time (``BatchRun.wait(on_update=)``).

    Lines: once the driver's own log has been read, only its lines (and diagnostics) — Livy's
    view then holds the launcher's copy, which would say everything twice; before that, or after
    the reader gave up on the driver log (its ``driver_note``), Livy's view. Livy's lines of the
    polls while the driver log fails are held back, and logged if the reader gives up on it.
    Notes: each of the run's notes (``Snapshot.log_note``: lines Livy dropped, an unreadable
    driver log) once, as a WARNING, before the lines of the poll that brought it.
    """

    _JOB_SOURCES = DRIVER_SOURCES | {"diagnostics"}

    def __init__(self, reader: object | None = None, *, logger: logging.Logger = log) -> None:
        # The run's LogReader (``LivyLogReader``), read for how its driver log reads are going.
        self._reader = reader
        self._log = logger
        self._driver = False
        self._held: list[str] = []
        self.notes: list[str] = []

    def select(self, lines: Sequence[str]) -> list[str]:
        """The lines of one poll that go to the task log."""
        if any(getattr(line, "source", None) in DRIVER_SOURCES for line in lines):
            self._driver = True
        if not self._driver:
            return list(lines)
        if getattr(self._reader, "driver_note", None) is not None:
            self._driver = False  # the reader gave up on the driver log: Livy's view from here on
            held, self._held = self._held, []
            return held + list(lines)
        job = [ln for ln in lines if getattr(ln, "source", None) in self._JOB_SOURCES]
        if getattr(self._reader, "driver_failures", 0):
            self._held.extend(ln for ln in lines if getattr(ln, "source", None) not in self._JOB_SOURCES)
        else:
            self._held.clear()  # the driver log answered: it has what Livy's view held
        return job

    def page(self, snap: Snapshot) -> None:
        note = snap.log_note
        if note and note not in self.notes:
            self.notes.append(note)
            self._log.warning("Livy batch %s: %s", snap.batch_id, note)
        for line in self.select(snap.new_lines):
            self._log.info("[livy %s] %s", snap.batch_id, line)
