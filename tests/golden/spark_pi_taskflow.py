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

# --- Values from the job form (generated from repr() of each value) ---------------------------
DAG_ID = 'spark_pi'
SCHEDULE = None
RETRIES = 1
RETRY_DELAY_SECONDS = 300
TIMEOUT_SECONDS = 21600
POLL_SECONDS = 10
JOB_CONFIG = {
    'version': 1,
    'profile': {
        'name': 'prod-eastus2',
        'flavour': 'hdinsight-aks',
        'fqdn': 'demospark.63784884848.eastus2.hdinsightaks.net',
        'url': None,
        'livy_path': None,
        'auth': None,
        'scope': 'https://hilo.azurehdinsight.net/.default',
        'authority_host': 'https://login.microsoftonline.com',
        'tenant_id': '00000000-0000-0000-0000-000000000000',
        'client_id': None,
        'username': None,
        'secret_source': 'keyvault',
        'vault_url': 'https://hdiaks-kv.vault.azure.net',
        'variables_prefix': 'hdinsight-aks-variables',
        'verify': True,
        'connect_timeout': 10.0,
        'read_timeout': 60.0,
    },
    'spec': {
        'file': 'abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar',
        'class_name': 'org.apache.spark.examples.SparkPi',
        'args': [
            '10',
        ],
        'name': 'spark-pi',
        'proxy_user': None,
        'jars': [],
        'py_files': [],
        'files': [],
        'archives': [],
        'driver_memory': None,
        'driver_cores': None,
        'executor_memory': '2g',
        'executor_cores': None,
        'num_executors': None,
        'queue': None,
        'conf': {
            'spark.executor.instances': '2',
        },
    },
}

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
    key = "\x00".join([ti.dag_id, context["run_id"], ti.task_id, str(getattr(ti, "map_index", -1))])
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
                + "; last error lines:\n" + "\n".join(pager.last_error_lines())
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


@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params=params_of_job(),
    tags=["hdiaks-widgets", "spark", "livy"],
    doc_md=__doc__,
)
def spark_batch():
    SparkBatchOperator(
        task_id="run_spark_batch",
        retries=RETRIES,
        retry_delay=datetime.timedelta(seconds=RETRY_DELAY_SECONDS),
        # A margin over our own deadline, so the batch is normally killed by wait_for_batch.
        execution_timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS + 300),
    )


spark_batch_dag = spark_batch()
