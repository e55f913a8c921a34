"""``JobConfig`` -> a ready-to-import Apache Airflow DAG file, and back.

The generated file is self-contained (Airflow, ``requests`` and ``msal`` only; it never imports
hdiaks_widgets) and imports on Airflow 2.4+ and 3.x. It replaces the Microsoft sample DAG
(PROTOCOL.md §1): credentials are Airflow Variables read at run time (``api-client-id``,
``api-secret``, ``tenant-id``, served by the Key Vault backend as
``hdinsight-aks-variables-<key>``), the batch is watched to the end, its driver log paged into the
task log, killed when the task is, and reattached to on a retry.

Generated code is built, not pasted (STYLE.md rule 10): the runtime code is fixed text with no
user value in it; every value from the form enters the file only as ``repr()`` of a Python value
in the constants block, and :func:`render_dag` re-parses its own output and checks that every
constant reads back equal before returning it.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import math
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from hdiaks_widgets.config import TRIGGER_KEYS, JobConfig
from hdiaks_widgets.errors import ConfigError, ExportError

__all__ = [
    "DagStyle",
    "export_dag_files",
    "load_dag_config",
    "read_dag_config",
    "render_dag",
    "render_setup_sheet",
    "write_dag",
]

DagStyle = Literal["taskflow", "livy-operator"]

KEY_VAULT_BACKEND = "airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend"
CONNECTIONS_PREFIX = "airflow-connections"
# Variables the DAG reads at run time: (key, required, what it holds).
_VARIABLES: tuple[tuple[str, bool, str], ...] = (
    ("api-client-id", True, "application (client) id of the service principal that calls Livy"),
    ("api-secret", True, "client secret of that service principal"),
    ("tenant-id", True, "directory (tenant) id"),
    ("authority-host", False, "identity host, default https://login.microsoftonline.com"),
    ("ca-bundle", False, "path of a CA bundle for the identity and Livy endpoints"),
    ("livy-url", False, "Livy base URL, overriding the one derived from the profile"),
)
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")  # Airflow's KEY_REGEX
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_START_DATE = _dt.date(2024, 1, 1)

# ----------------------------------------------------------------------------------------------
# Fixed code of the generated file. No value from the form appears in these texts: the runtime
# reads everything from the constants block, which is built from repr() of values.
# ----------------------------------------------------------------------------------------------

_HEADER = '''\
"""Spark batch job on Apache Livy, exported by hdiaks-widgets.

Self-contained: needs only Apache Airflow (2.4+ or 3.x), requests and msal.
Credentials are Airflow Variables read at run time, never at parse time:
api-client-id, api-secret and tenant-id (with the Azure Key Vault secrets backend and
variables_prefix "hdinsight-aks-variables": hdinsight-aks-variables-api-client-id, ...).
Optional Variables: authority-host, ca-bundle, livy-url.

Trigger with config to override the job: {"spark_cluster_fqdn": ..., "app_jar_path": ...,
"job_name": ..., "class_name": ..., "args": [...]}.

JOB_CONFIG below is the job configuration this file was made from; load it back with
hdiaks_widgets.dag_export.load_dag_config(path). Re-export rather than edit by hand.
"""

from __future__ import annotations
'''

# Each style imports only what its runtime uses (the generated files pass ruff F401).
_TASKFLOW_IMPORTS = """
import datetime
import hashlib
import logging
import re
import time
from collections import deque
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

try:  # Airflow 3
    from airflow.sdk import BaseOperator, Param, dag
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.decorators import dag
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.param import Param
from airflow.exceptions import AirflowException
"""

_OPERATOR_IMPORTS = """
import datetime
import hashlib
import logging
from urllib.parse import urlsplit

import requests

try:  # Airflow 3
    from airflow.sdk import Param, dag
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.decorators import dag
    from airflow.models.param import Param
from airflow.exceptions import AirflowException
from airflow.providers.apache.livy.operators.livy import LivyOperator
"""

_CONSTANTS_TITLE = """
# --- Values from the job form (generated from repr() of each value) ---------------------------
"""

_COMMON_RUNTIME = '''
# --- Runtime -----------------------------------------------------------------------------------
log = logging.getLogger("hdiaks.dag")

TERMINAL_STATES = frozenset({"success", "dead", "killed", "error"})
FAILED_STATES = frozenset({"dead", "killed", "error"})
DEFAULT_LIVY_PATH = {"hdinsight-aks": "/p/livy", "hdinsight": "/livy", "livy": "", "sandbox": ""}
DEFAULT_AUTH = {
    "hdinsight-aks": "service-principal",
    "hdinsight": "basic",
    "livy": "none",
    "sandbox": "none",
}
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# Hosts MSAL knows; any other host (a sovereign cloud proxy, a local test identity endpoint)
# needs instance_discovery=False, or MSAL asks login.microsoftonline.com to validate it.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.chinacloudapi.cn",
        "login-us.microsoftonline.com",
        "login.microsoftonline.us",
    }
)
# BatchSpec field -> Livy CreateBatchRequest field (Livy answers 400 to unknown fields).
LIVY_FIELDS = {
    "file": "file",
    "proxy_user": "proxyUser",
    "class_name": "className",
    "args": "args",
    "jars": "jars",
    "py_files": "pyFiles",
    "files": "files",
    "driver_memory": "driverMemory",
    "driver_cores": "driverCores",
    "executor_memory": "executorMemory",
    "executor_cores": "executorCores",
    "num_executors": "numExecutors",
    "archives": "archives",
    "queue": "queue",
    "name": "name",
    "conf": "conf",
}


def get_variable(key, default=None):
    """An Airflow Variable, read at run time only (the Key Vault backend maps the key to
    <variables_prefix>-<key>)."""
    try:
        from airflow.sdk import Variable
    except ImportError:
        from airflow.models import Variable
    return Variable.get(key, default)


_VARIABLE_CACHE = {}


def cached_variable(key):
    """get_variable, read once per task process. The batch is killed from inside Airflow's
    SIGTERM handler, which interrupts the task anywhere: a Variable lookup there could wait on a
    lock (secrets backend, supervisor channel) that the interrupted code holds. A missing
    Variable is asked for again, so setting it helps a retry in the same process."""
    value = _VARIABLE_CACHE.get(key)
    if value is None:
        value = get_variable(key)
        if value is not None:
            _VARIABLE_CACHE[key] = value
    return value


def effective_config(params):
    """JOB_CONFIG with the trigger-conf keys applied; an empty value keeps the default."""
    profile = dict(JOB_CONFIG["profile"])
    spec = dict(JOB_CONFIG["spec"])
    if params.get("spark_cluster_fqdn"):
        profile["fqdn"] = str(params["spark_cluster_fqdn"])
    if params.get("app_jar_path"):
        spec["file"] = str(params["app_jar_path"])
    if params.get("job_name"):
        spec["name"] = str(params["job_name"])
    if params.get("class_name"):
        spec["class_name"] = str(params["class_name"])
    if params.get("args") is not None:
        args = params["args"]
        spec["args"] = [str(a) for a in (args if isinstance(args, (list, tuple)) else [args])]
    return profile, spec


def spark_params(spec):
    """The spec without empty fields (None means "not given"; 0 stays)."""
    out = {}
    for key in LIVY_FIELDS:
        value = spec.get(key)
        if value is None or (isinstance(value, (list, tuple, dict)) and not value):
            continue
        if isinstance(value, (list, tuple)):
            value = [str(v) for v in value]
        elif isinstance(value, dict):
            value = {str(k): str(v) for k, v in value.items()}
        out[key] = value
    return out


def auth_method(profile):
    return profile.get("auth") or DEFAULT_AUTH[profile["flavour"]]


def tls_verify(profile):
    return cached_variable("ca-bundle") or profile.get("verify", True)


_MSAL_APPS = {}


class MsalBearerAuth(requests.auth.AuthBase):
    """Bearer token from MSAL client credentials, asked for on every request.

    MSAL serves it from its cache and renews it shortly before it expires, so a poll that runs
    for hours never sends an expired token. Also usable as LivyOperator's auth_type: the hook
    calls it with the connection's login and password, or with nothing; both are ignored.
    """

    def __init__(self, *_login_password, profile=None):
        self.profile = profile or JOB_CONFIG["profile"]

    def token(self):
        import msal

        client_id = cached_variable("api-client-id")
        secret = cached_variable("api-secret")
        tenant = cached_variable("tenant-id") or self.profile.get("tenant_id")
        missing = [
            name
            for name, value in (("api-client-id", client_id), ("api-secret", secret), ("tenant-id", tenant))
            if not value
        ]
        if missing:
            raise AirflowException("Airflow Variables not set: " + ", ".join(missing))
        host = cached_variable("authority-host") or self.profile.get("authority_host") or DEFAULT_AUTHORITY_HOST
        authority = host.rstrip("/") + "/" + tenant
        verify = tls_verify(self.profile)
        key = (authority, client_id, hashlib.sha256(secret.encode()).hexdigest(), str(verify))
        app = _MSAL_APPS.get(key)
        if app is None:
            kwargs = {}
            if urlsplit(host).hostname not in MICROSOFT_AUTHORITY_HOSTS:
                kwargs["instance_discovery"] = False
            if verify is not True:
                # requests lets REQUESTS_CA_BUNDLE override Session.verify unless trust_env is off.
                http = requests.Session()
                http.trust_env = False
                http.verify = verify
                kwargs["http_client"] = http
            app = msal.ConfidentialClientApplication(
                client_id, client_credential=secret, authority=authority, **kwargs
            )
            _MSAL_APPS[key] = app
        result = app.acquire_token_for_client(scopes=[self.profile["scope"]])
        if "access_token" not in result:
            raise AirflowException(
                "No token from "
                + authority
                + ": "
                + str(result.get("error"))
                + ": "
                + str(result.get("error_description"))
            )
        return result["access_token"]

    def __call__(self, request):
        request.headers["Authorization"] = "Bearer " + self.token()
        return request


def livy_auth(profile):
    method = auth_method(profile)
    if method in ("service-principal", "device-code"):  # unattended: always client credentials
        return MsalBearerAuth(profile=profile)
    if method == "basic":
        return requests.auth.HTTPBasicAuth(profile.get("username") or "", get_variable("livy-password") or "")
    return None


def params_of_job():
    """Trigger-form params with the form's values as defaults (read from JOB_CONFIG, which Jinja
    never renders)."""
    spec = JOB_CONFIG["spec"]
    return {
        "spark_cluster_fqdn": Param(
            JOB_CONFIG["profile"].get("fqdn") or "", type="string", description="Cluster FQDN"
        ),
        "app_jar_path": Param(spec.get("file") or "", type="string", description="Application file"),
        "job_name": Param(spec.get("name") or "", type="string", description="Livy batch name"),
        "class_name": Param(spec.get("class_name") or "", type="string", description="Main class"),
        "args": Param(
            list(spec.get("args") or []), type="array", description="Application arguments"
        ),
    }


def livy_path(profile):
    """The Livy root path of a profile: its own livy_path, else the flavour's default ("" or "/x")."""
    path = profile.get("livy_path")
    if path is None:
        path = DEFAULT_LIVY_PATH[profile["flavour"]]
    return "/" + path.strip("/") if path.strip("/") else ""
'''

# Both styles declare the DAG with the same arguments.
_DAG_DECORATOR = '''@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params=params_of_job(),
    tags=["hdiaks-widgets", "spark", "livy"],
    doc_md=__doc__,
)
'''

_TASKFLOW_RUNTIME = '''

def livy_base_url(profile):
    override = get_variable("livy-url")
    if override:
        return override.rstrip("/")
    flavour = profile["flavour"]
    path = livy_path(profile)
    if flavour == "hdinsight-aks":
        return "https://" + (profile.get("fqdn") or "") + path
    if flavour == "hdinsight":
        host = profile.get("fqdn") or ""
        if host and "." not in host:
            host += ".azurehdinsight.net"
        return "https://" + host + path
    return (profile.get("url") or "").rstrip("/") + path


class Livy:
    """The few Livy calls the task needs (PROTOCOL.md §2); GET and DELETE retried, POST never."""

    def __init__(self, profile):
        self.base_url = livy_base_url(profile)
        self.auth = livy_auth(profile)
        self.verify = tls_verify(profile)
        self.timeout = (profile.get("connect_timeout", 10.0), profile.get("read_timeout", 60.0))
        self.session = requests.Session()
        retry = Retry(
            total=4,
            backoff_factor=1.0,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=frozenset({"GET", "DELETE"}),
            raise_on_status=False,
        )
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        # Livy's CSRF filter refuses POST/DELETE without it when enabled.
        self.headers = {"Accept": "application/json", "X-Requested-By": "hdiaks-airflow"}
        self.session.headers.update(self.headers)

    def call(self, method, path, ok=(), **kwargs):
        response = self.session.request(
            method,
            self.base_url + path,
            auth=self.auth,
            verify=self.verify,
            timeout=self.timeout,
            **kwargs,
        )
        if response.status_code in ok:
            return response
        try:
            response.raise_for_status()
        except requests.HTTPError as exc:
            raise AirflowException(
                "Livy " + method + " " + path + " returned HTTP "
                + str(response.status_code) + ": " + response.text[:500]
            ) from exc
        return response

    def find(self, name):
        """The batch with this name, or None (GET /batches/{name} on Livy 0.7+, else listing)."""
        response = self.call("GET", "/batches/" + quote(name, safe=""), ok=(400, 404, 500))
        if response.status_code == 200:
            return response.json()
        if response.status_code == 404:
            return None
        start = 0
        while True:  # an old Livy without lookup by name
            page = self.call("GET", "/batches", params={"from": start, "size": 100}).json()
            sessions = page.get("sessions") or []
            for batch in sessions:
                if batch.get("name") == name:
                    return batch
            start += len(sessions)
            if not sessions or start >= page.get("total", 0):
                return None

    def submit(self, body):
        response = self.call("POST", "/batches", json=body, ok=(400,))
        if response.status_code == 400 and "Duplicate session name" in response.text:
            return None
        if response.status_code == 400:
            raise AirflowException("Livy refused the batch: " + response.text[:500])
        return response.json()

    def get(self, batch_id):
        return self.call("GET", "/batches/" + str(batch_id)).json()

    def log_page(self, batch_id, start, size):
        return self.call(
            "GET", "/batches/" + str(batch_id) + "/log", params={"from": start, "size": size}
        ).json()

    def kill(self, batch_id):
        """DELETE the batch on a connection of its own, without retries: this runs inside Airflow's
        SIGTERM handler too, which may have interrupted a request on self.session."""
        response = requests.delete(
            self.base_url + "/batches/" + str(batch_id),
            headers=self.headers,
            auth=self.auth,
            verify=self.verify,
            timeout=self.timeout,
        )
        if response.status_code != 404:
            response.raise_for_status()


def batch_names(base, context):
    """Deterministic batch names for this task instance, one per try (try 1 first).

    Derived from dag_id/run_id/task_id so a retry finds the batch of an earlier try by name
    instead of submitting a second one (Livy refuses duplicate names while it keeps a batch).
    """
    ti = context["ti"]
    key = "\\x00".join([ti.dag_id, context["run_id"], ti.task_id, str(getattr(ti, "map_index", -1))])
    stem = base + "-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    tries = max(1, int(getattr(ti, "try_number", 1) or 1))
    return [stem if n == 1 else stem + "-try" + str(n) for n in range(1, tries + 1)]


def find_or_submit(livy, spec, context):
    names = batch_names(spec.get("name") or DAG_ID, context)
    current = names[-1]
    for name in reversed(names):
        batch = livy.find(name)
        if batch is None:
            continue
        if name == current or batch.get("state") not in FAILED_STATES:
            log.info("Reattaching to Livy batch %s (%s), state %s", batch["id"], name, batch.get("state"))
            return batch
        break  # an earlier try's batch failed: this try runs the job again under its own name
    body = {LIVY_FIELDS[key]: value for key, value in spark_params(dict(spec, name=current)).items()}
    batch = livy.submit(body)
    if batch is None:  # submitted concurrently under the same name: reattach
        batch = livy.find(current)
        if batch is None:
            raise AirflowException("Livy reported a duplicate batch name but has no batch " + current)
    log.info("Submitted Livy batch %s (%s) for %s", batch["id"], current, body.get("file"))
    return batch


ERROR_LINE = re.compile(r"error|exception|traceback|failed|caused by", re.IGNORECASE)


class LogPager:
    """Copies the driver log into the task log page by page (from/size/total, PROTOCOL §2.3)."""

    def __init__(self, livy, batch_id, page_size=500):
        self.livy, self.batch_id, self.page_size = livy, batch_id, page_size
        self.offset = 0
        self.tail = deque(maxlen=20)
        self.errors = deque(maxlen=20)

    def drain(self):
        while True:
            page = self.livy.log_page(self.batch_id, self.offset, self.page_size)
            lines = page.get("log") or []
            for line in lines:
                log.info("[livy %s] %s", self.batch_id, line)
                self.tail.append(line)
                if ERROR_LINE.search(line):
                    self.errors.append(line)
            self.offset += len(lines)
            if not lines or self.offset >= int(page.get("total") or 0):
                return

    def last_error_lines(self):
        return list(self.errors) or list(self.tail)


def wait_for_batch(livy, batch, pager, killed=lambda: False):
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        pager.drain()
        if batch.get("state") in TERMINAL_STATES:
            pager.drain()
            return batch
        if time.monotonic() > deadline:
            raise AirflowException(
                "Livy batch " + str(batch["id"]) + " still " + str(batch.get("state"))
                + " after " + str(TIMEOUT_SECONDS) + " s"
            )
        time.sleep(POLL_SECONDS)
        if killed():  # on_kill deleted it; Airflow 3 lets execute go on after calling on_kill
            raise AirflowException("Livy batch " + str(batch["id"]) + " was killed with the task")
        batch = livy.get(batch["id"])


class SparkBatchOperator(BaseOperator):
    """Submits the job's Livy batch (or reattaches to it on a retry) and watches it to the end.

    on_kill deletes the batch. Airflow calls it when the task is killed (marked failed or
    cleared while running, a worker shutting down: the task process gets SIGTERM) and when
    execution_timeout expires; on Airflow 3 that call is all a SIGTERM does, so the kill must
    live here and not in an except clause of execute.
    """

    def execute(self, context):
        profile, spec = effective_config(context["params"])
        livy = Livy(profile)
        batch = find_or_submit(livy, spec, context)
        batch_id = batch["id"]
        self._livy, self._batch_id, self._killed = livy, batch_id, False
        context["ti"].xcom_push(key="batch_id", value=batch_id)
        pager = LogPager(livy, batch_id)
        try:
            batch = wait_for_batch(livy, batch, pager, killed=lambda: self._killed)
        except BaseException:
            # Our deadline, Airflow 2's AirflowTaskTerminated after a SIGTERM, or any error
            # while the batch runs: do not leave it running on the cluster.
            self.kill_batch()
            raise
        self._batch_id = None  # ended: nothing left to kill
        app_id = batch.get("appId")
        context["ti"].xcom_push(key="app_id", value=app_id)
        state = batch.get("state")
        log.info("Livy batch %s (app %s) ended %s", batch_id, app_id, state)
        if state != "success":
            raise AirflowException(
                "Livy batch " + str(batch_id) + " ended in state " + str(state)
                + "; last error lines:\\n" + "\\n".join(pager.last_error_lines())
            )
        return {"batch_id": batch_id, "app_id": app_id, "state": state, "name": batch.get("name")}

    def on_kill(self):
        self.kill_batch()

    def kill_batch(self):
        """DELETE the running batch, once (Airflow 2 calls on_kill, then raises into execute)."""
        batch_id = getattr(self, "_batch_id", None)
        if batch_id is None:
            return
        self._batch_id, self._killed = None, True
        log.warning("Killing Livy batch %s", batch_id)
        try:
            self._livy.kill(batch_id)
        except Exception as exc:  # the reason the task stops matters more
            log.warning("Could not kill Livy batch %s: %s", batch_id, exc)


'''

_TASKFLOW_DAG = '''def spark_batch():
    SparkBatchOperator(
        task_id="run_spark_batch",
        retries=RETRIES,
        retry_delay=datetime.timedelta(seconds=RETRY_DELAY_SECONDS),
        # A margin over our own deadline, so the batch is normally killed by wait_for_batch.
        execution_timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS + 300),
    )


spark_batch_dag = spark_batch()
'''

_OPERATOR_RUNTIME = '''

class JobLivyOperator(LivyOperator):
    """LivyOperator taking the job from the DAG params at run time.

    Nothing is templated: the form's values are data, so "{{ }}" in them stays literal text.
    The cluster is the Airflow connection's host (spark_cluster_fqdn is not applied here).
    """

    template_fields = ()

    def execute(self, context):
        profile, spec = effective_config(context["params"])
        if profile.get("fqdn") != JOB_CONFIG["profile"].get("fqdn"):
            log.warning("spark_cluster_fqdn is ignored by this DAG; the connection %s sets the host", CONN_ID)
        self.spark_params = spark_params(spec)
        return super().execute(context)


def endpoint_prefix():
    return livy_path(JOB_CONFIG["profile"]) or None


'''

_OPERATOR_DAG = '''def spark_batch():
    profile = JOB_CONFIG["profile"]
    JobLivyOperator(
        task_id="run_spark_batch",
        file=JOB_CONFIG["spec"].get("file") or "",
        livy_conn_id=CONN_ID,
        livy_endpoint_prefix=endpoint_prefix(),
        livy_conn_auth_type=MsalBearerAuth if auth_method(profile) not in ("basic", "none") else None,
        extra_headers={"X-Requested-By": "hdiaks-airflow"},
        polling_interval=POLL_SECONDS,
        retries=RETRIES,
        retry_delay=datetime.timedelta(seconds=RETRY_DELAY_SECONDS),
        execution_timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS),
    )


spark_batch_dag = spark_batch()
'''


# ----------------------------------------------------------------------------------------------
# Building the constants block from values
# ----------------------------------------------------------------------------------------------


def _literal(value: Any, indent: int = 0) -> str:
    """Python source for a JSON-like value, built from repr() of its scalars."""
    pad = " " * (indent + 4)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"cannot export the number {value!r}; use a finite number")
        return repr(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = "".join(f"{pad}{_literal(v, indent + 4)},\n" for v in value)
        return "[\n" + items + " " * indent + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        for key in value:
            if not isinstance(key, str):
                raise ExportError(f"cannot export a mapping key of type {type(key).__name__}")
        items = "".join(f"{pad}{k!r}: {_literal(v, indent + 4)},\n" for k, v in value.items())
        return "{\n" + items + " " * indent + "}"
    raise ExportError(f"cannot export a value of type {type(value).__name__}")


def _check_options(
    *,
    dag_id: str,
    schedule: str | None,
    style: str,
    retries: int,
    retry_delay: float,
    timeout: float,
    poll_interval: float,
    conn_id: str,
) -> None:
    problems: list[str] = []
    if not isinstance(dag_id, str) or not _DAG_ID.match(dag_id):
        problems.append(f"dag_id {dag_id!r} may hold only letters, digits, '_', '-' and '.' (1-250)")
    if schedule is not None and (
        not isinstance(schedule, str) or not schedule.strip() or re.search(r"[\x00-\x1f]", schedule)
    ):
        problems.append(f"schedule {schedule!r} must be None, a cron expression or a preset like @daily")
    if style not in get_args(DagStyle):
        problems.append(f"style {style!r} must be one of {', '.join(get_args(DagStyle))}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        problems.append(f"retries must be a whole number of 0 or more, got {retries!r}")
    for name, value in (("retry_delay", retry_delay), ("timeout", timeout), ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            problems.append(f"{name} must be a number of seconds above 0, got {value!r}")
    if not isinstance(conn_id, str) or not _CONN_ID.match(conn_id):
        problems.append(f"conn_id {conn_id!r} may hold only letters, digits, '_', '-' and '.'")
    if problems:
        raise ExportError("; ".join(problems))


def _default_dag_id(cfg: JobConfig) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", cfg.spec.name or "").strip("_")
    return base[:200] or "spark_batch_job"


def render_dag(
    cfg: JobConfig,
    *,
    dag_id: str | None = None,
    schedule: str | None = None,
    style: DagStyle = "taskflow",
    retries: int = 1,
    retry_delay: float = 300,
    timeout: float = 6 * 3600,
    poll_interval: float = 10,
    conn_id: str = "hdiaks_livy",
) -> str:
    """The source of a DAG file that runs ``cfg``'s batch; validated before it is returned.

    ``timeout`` bounds the wait for the batch (seconds), ``poll_interval`` the time between
    polls. ``conn_id`` is the Airflow connection of the ``livy-operator`` style. Values are not
    checked for Livy (``JobConfig.validate`` does that); any text is carried exactly.
    """
    dag_id = _default_dag_id(cfg) if dag_id is None else dag_id
    _check_options(
        dag_id=dag_id,
        schedule=schedule,
        style=style,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        poll_interval=poll_interval,
        conn_id=conn_id,
    )
    constants: dict[str, Any] = {
        "DAG_ID": dag_id,
        "SCHEDULE": schedule,
        "RETRIES": retries,
        "RETRY_DELAY_SECONDS": retry_delay,
        "TIMEOUT_SECONDS": timeout,
        "POLL_SECONDS": poll_interval,
    }
    if style == "livy-operator":
        constants["CONN_ID"] = conn_id
    constants["JOB_CONFIG"] = cfg.to_dict()
    block = "".join(f"{name} = {_literal(value)}\n" for name, value in constants.items())
    parts = [_HEADER, _OPERATOR_IMPORTS if style == "livy-operator" else _TASKFLOW_IMPORTS]
    parts += [_CONSTANTS_TITLE, block, _COMMON_RUNTIME]
    if style == "livy-operator":
        parts += [_OPERATOR_RUNTIME, _DAG_DECORATOR, _OPERATOR_DAG]
    else:
        parts += [_TASKFLOW_RUNTIME, _DAG_DECORATOR, _TASKFLOW_DAG]
    source = "".join(parts)
    _validate_source(source, constants)
    return source


def _validate_source(source: str, constants: Mapping[str, Any]) -> None:
    """Compile the file and read every constant back: the output must carry the values exactly."""
    try:
        compile(source, "<exported dag>", "exec", dont_inherit=True)
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ExportError(f"the generated DAG does not compile: {exc}") from exc
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        if any(m == "hdiaks_widgets" or m.startswith("hdiaks_widgets.") for m in modules):
            raise ExportError("the generated DAG must not import hdiaks_widgets")
    found = _module_constants(tree)
    for name, value in constants.items():
        if name not in found or found[name] != value or type(found[name]) is not type(value):
            raise ExportError(f"the generated DAG does not carry {name} exactly")


def _module_constants(tree: ast.Module) -> dict[str, Any]:
    """Top-level ``NAME = <literal>`` assignments, read with ast.literal_eval (nothing executed)."""
    out: dict[str, Any] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()
        ):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def read_dag_config(source: str) -> JobConfig:
    """The ``JobConfig`` embedded in DAG source text (parsed, never executed)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ExportError(f"not a Python file: {exc}") from exc
    data = _module_constants(tree).get("JOB_CONFIG")
    if not isinstance(data, dict):
        raise ExportError("no JOB_CONFIG found; was this DAG exported by hdiaks-widgets?")
    try:
        return JobConfig.from_dict(data)
    except ConfigError as exc:
        raise ExportError(f"the JOB_CONFIG in this DAG is not a valid job configuration: {exc}") from exc


def load_dag_config(path: str | os.PathLike[str]) -> JobConfig:
    """The ``JobConfig`` a DAG file was exported from, so it can be loaded back into the form."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from exc
    return read_dag_config(source)


# ----------------------------------------------------------------------------------------------
# Setup sheet and files
# ----------------------------------------------------------------------------------------------


def _kv_name(prefix: str, key: str) -> str:
    """Secret name as AzureKeyVaultBackend builds it: prefix-key with '_' -> '-' (PROTOCOL §5)."""
    return f"{prefix.rstrip('-')}-{key}".replace("_", "-")


def render_setup_sheet(
    cfg: JobConfig, *, dag_id: str, style: DagStyle = "taskflow", conn_id: str = "hdiaks_livy"
) -> str:
    """Markdown: the Key Vault secrets the DAG reads and the Airflow settings for the backend."""
    profile = cfg.profile
    prefix = profile.variables_prefix
    vault_url = profile.vault_url or "https://<your-vault>.vault.azure.net"
    host = urlsplit(vault_url).hostname or ""
    vault_name = host.split(".")[0] if host.endswith(".vault.azure.net") else "<your-vault>"
    kwargs = {"connections_prefix": CONNECTIONS_PREFIX, "variables_prefix": prefix, "vault_url": vault_url}
    lines = [
        f"# Setup for the Airflow DAG `{dag_id}`",
        "",
        "Generated by hdiaks-widgets. Placeholders only: never commit secret values.",
        "",
        "## Key Vault secrets the DAG reads",
        "",
        "| Airflow Variable | Key Vault secret | required | holds |",
        "|---|---|---|---|",
    ]
    for key, required, what in _VARIABLES:
        lines.append(f"| `{key}` | `{_kv_name(prefix, key)}` | {'yes' if required else 'no'} | {what} |")
    if style == "livy-operator":
        secret = _kv_name(CONNECTIONS_PREFIX, conn_id)
        lines.append(f"| connection `{conn_id}` | `{secret}` | yes | Livy connection URI |")
    lines += ["", "```bash"]
    for key, required, _what in _VARIABLES:
        if required:
            value = shlex.quote(f"<{key}>")
            lines.append(
                f"az keyvault secret set --vault-name {shlex.quote(vault_name)} "
                f"--name {_kv_name(prefix, key)} --value {value}"
            )
    if style == "livy-operator":
        # HttpHook takes the scheme from the connection's schema (the URI path), not the URI
        # scheme: "https://host" would be called over plain http on port 80.
        login = "msal" if profile.auth_method != "basic" else "<user>:<password>"
        uri = f"livy://{login}@<cluster-fqdn>:443/https"
        lines.append(
            f"az keyvault secret set --vault-name {shlex.quote(vault_name)} "
            f"--name {_kv_name(CONNECTIONS_PREFIX, conn_id)} --value {shlex.quote(uri)}"
        )
    lines += [
        "```",
        "",
        "## Airflow settings (scheduler, workers, triggerer)",
        "",
        "Install `apache-airflow-providers-microsoft-azure`, `msal` and `requests`"
        + (" and `apache-airflow-providers-apache-livy`" if style == "livy-operator" else "")
        + ", then:",
        "",
        "```bash",
        f"export AIRFLOW__SECRETS__BACKEND={KEY_VAULT_BACKEND}",
        f"export AIRFLOW__SECRETS__BACKEND_KWARGS={shlex.quote(json.dumps(kwargs))}",
        "# the identity that reads the vault (role Key Vault Secrets User):",
        "export AZURE_CLIENT_ID='<kv-reader-client-id>' AZURE_TENANT_ID='<tenant-id>' "
        "AZURE_CLIENT_SECRET='<kv-reader-secret>'",
        "```",
        "",
        "## Trigger with config",
        "",
        f"Keys: {', '.join(f'`{k}`' for k in TRIGGER_KEYS)}; an empty value keeps the exported default. "
        f"See `{_file_stem(dag_id)}.trigger-conf.json`.",
        "",
        "The Livy batch is named `<job_name>-<12 hex digits of dag_id/run_id>` (plus `-tryN` after a "
        "failed try), so a retry reattaches to its batch instead of submitting a second one.",
        "",
    ]
    return "\n".join(lines)


def _file_stem(dag_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", dag_id)


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_dag(
    cfg: JobConfig,
    out_dir: str | os.PathLike[str],
    *,
    dag_id: str | None = None,
    schedule: str | None = None,
    style: DagStyle = "taskflow",
    **options: Any,
) -> list[Path]:
    """Write ``<dag>.py``, ``<dag>.trigger-conf.json`` and ``<dag>.setup.md`` into ``out_dir``."""
    dag_id = _default_dag_id(cfg) if dag_id is None else dag_id
    source = render_dag(cfg, dag_id=dag_id, schedule=schedule, style=style, **options)
    sheet = render_setup_sheet(cfg, dag_id=dag_id, style=style, conn_id=options.get("conn_id", "hdiaks_livy"))
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = _file_stem(dag_id)
        return [
            _write(folder / f"{stem}.py", source),
            _write(
                folder / f"{stem}.trigger-conf.json",
                json.dumps(cfg.to_trigger_conf(), indent=2, ensure_ascii=False) + "\n",
            ),
            _write(folder / f"{stem}.setup.md", sheet),
        ]
    except OSError as exc:
        raise ExportError(f"cannot write the DAG files into {os.fspath(out_dir)!r}: {exc.strerror}") from exc


def export_dag_files(
    cfg: JobConfig,
    out_dir: str | os.PathLike[str],
    *,
    dag_id: str | None = None,
    schedule: str | None = None,
    style: DagStyle = "taskflow",
) -> list[Path]:
    """For ``hdiaks export-dag`` and the form's Export button: validate the job, then write."""
    cfg.validate()
    return write_dag(cfg, out_dir, dag_id=dag_id, schedule=schedule, style=style)
