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
from urllib.parse import urlsplit

import requests

try:  # Airflow 3
    from airflow.sdk import Param, dag
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.decorators import dag
    from airflow.models.param import Param
from airflow.exceptions import AirflowException
from airflow.providers.apache.livy.operators.livy import LivyOperator

# --- Values from the job form (generated from repr() of each value) ---------------------------
DAG_ID = 'spark_pi'
SCHEDULE = None
RETRIES = 1
RETRY_DELAY_SECONDS = 300
TIMEOUT_SECONDS = 21600
POLL_SECONDS = 10
CONN_ID = 'hdiaks_livy'
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
