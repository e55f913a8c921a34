"""What every caller of Livy shares, in one copy: the library, the CLI, the UI and the DAG runtime.

Level 0: standard library only (no pandas, no Jupyter, no Airflow), so the exported DAG's
runtime can use it in an Airflow environment that has only ``requests`` and ``msal`` added.

- Livy's ``CreateBatchRequest`` field names and how a body is built (PROTOCOL.md §2.2);
- the Livy root of each flavour (``/p/livy``, ``/livy``, ...) and the default auth method;
- terminal and failed states (PROTOCOL.md §2.4);
- the heuristic that picks a job's "last error lines";
- the identity hosts MSAL knows without instance discovery;
- batch ids and names as they may enter a URL path (validated, percent-encoded);
- the trigger-conf keys of the Microsoft sample DAG and how they apply to a job.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = [
    "DEFAULT_AUTH",
    "DEFAULT_LIVY_PATH",
    "FAILED_STATES",
    "LIVY_FIELDS",
    "MICROSOFT_AUTHORITY_HOSTS",
    "TERMINAL_STATES",
    "TRIGGER_KEYS",
    "arg_text",
    "batch_path",
    "failure_lines",
    "is_error_line",
    "is_microsoft_authority",
    "livy_base_url",
    "livy_body",
    "merge_trigger_conf",
    "normalize_livy_path",
    "session_path",
    "unique_batch_name",
]

# BatchSpec attribute -> Livy JSON name, in the order of CreateBatchRequest. Livy answers 400 to
# an unknown field, so only these are ever sent.
LIVY_FIELDS: Mapping[str, str] = {
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

DEFAULT_LIVY_PATH: Mapping[str, str] = {
    "hdinsight-aks": "/p/livy",
    "hdinsight": "/livy",
    "livy": "",
    "sandbox": "",
}
DEFAULT_AUTH: Mapping[str, str] = {
    "hdinsight-aks": "service-principal",
    "hdinsight": "basic",
    "livy": "none",
    "sandbox": "none",
}

# The terminal set Airflow's LivyHook and the Azure samples use; "killed" and "error" also fail.
TERMINAL_STATES = frozenset({"success", "dead", "killed", "error"})
FAILED_STATES = frozenset({"dead", "killed", "error"})

# Identity hosts MSAL validates itself (public cloud, China, US Gov). Any other host (a sovereign
# proxy, a local test identity endpoint) needs instance_discovery=False, or MSAL asks
# login.microsoftonline.com to validate it.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.us",
        "login-us.microsoftonline.com",
        "login.usgovcloudapi.net",
    }
)

# Keys of the Microsoft sample's "Trigger DAG w/ config" JSON (PROTOCOL.md §1), plus ours.
TRIGGER_KEYS = ("spark_cluster_fqdn", "app_jar_path", "job_name", "class_name", "args")

_ERROR_LINE = re.compile(r"ERROR|FATAL|Exception|Error\b|Traceback|Caused by")
_STREAM_MARKERS = frozenset({"stdout:", "stderr:", "YARN Diagnostics:", "Kubernetes Diagnostics:"})
# A Livy id is a number (Apache Livy) or an opaque token such as Fabric's UUIDs; a name is
# what BatchSpec.name allows. Neither may carry '/', '?', '#', '%' or '..' into a URL path.
_ID_OR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,254}")
_ID_MAX = 255
_ID_CHARS = re.compile(r"[A-Za-z0-9._:@+-]")
_ID_RULE = "may hold only letters, digits and . _ : @ + - (no '/', '?', '#', '%', spaces or '..'), e.g. 12 or my-job"
_SHOWN_MAX = 40  # characters of a hostile value an error message repeats


def unique_batch_name() -> str:
    """The name a batch submitted without one gets (``hdiaks-<12 hex>``): unique enough that it
    is not looked up before the POST."""
    return f"hdiaks-{uuid.uuid4().hex[:12]}"


def arg_text(value: Any) -> str:
    """Livy wants strings; JSON numbers and booleans become the text a shell would pass."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def livy_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /batches`` body of BatchSpec-named fields.

    ``None`` means "not given" and empty lists or maps are left out (``0`` stays); list items and
    ``conf`` values become text, as Livy's request class requires.
    """
    body: dict[str, Any] = {}
    for attr, livy_name in LIVY_FIELDS.items():
        value = fields.get(attr)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            if not value:
                continue
            value = [arg_text(v) for v in value]
        elif isinstance(value, Mapping):
            if not value:
                continue
            value = {str(k): arg_text(v) for k, v in value.items()}
        body[livy_name] = value
    return body


def normalize_livy_path(path: str) -> str:
    """``"p/livy/"`` -> ``"/p/livy"``; ``""`` or ``"/"`` -> ``""``."""
    stripped = path.strip("/")
    return "/" + stripped if stripped else ""


def livy_base_url(flavour: str, *, fqdn: str | None = None, url: str | None = None,
                  livy_path: str | None = None) -> str:
    """The Livy root of a profile, e.g. ``https://{fqdn}/p/livy`` (no trailing slash).

    Raises ``KeyError`` for an unknown flavour (callers validate the flavour first).
    """
    path = normalize_livy_path(livy_path if livy_path is not None else DEFAULT_LIVY_PATH[flavour])
    if flavour == "hdinsight-aks":
        return f"https://{fqdn or ''}{path}"
    if flavour == "hdinsight":
        host = fqdn or ""
        if host and "." not in host:
            host = f"{host}.azurehdinsight.net"  # a cluster name, as the portal shows it
        return f"https://{host}{path}"
    return f"{(url or '').rstrip('/')}{path}"


_NM_LOG_URL = re.compile(r"^https?://(?P<host>[^/:]+)(?::(?P<port>\d+))?/node/containerlogs/(?P<rest>[^?#]+)")


def gateway_log_url(url: str, gateway_base: str) -> str:
    """A NodeManager container-log URL inside a classic HDInsight cluster, reached through the
    cluster's HTTPS gateway (``https://{cluster}.azurehdinsight.net/yarnui/...``).

    ``http://wn0-x.internal.cloudapp.net:30060/node/containerlogs/<container>/<user>`` becomes
    ``https://{cluster}/yarnui/jobhistory/logs/wn0-x.internal.cloudapp.net/port/30060/<container>/
    <container>/<user>``, the form the gateway's YARN UI links use (not verified against a live
    cluster: see docs/fidelity.md). Other URLs come back unchanged.
    """
    match = _NM_LOG_URL.match(url)
    if not match:
        return url
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(gateway_base))
    parts = match.group("rest").strip("/").split("/")
    if len(parts) < 2:
        return url
    container, user = parts[0], parts[1]
    port = match.group("port") or "30060"
    return f"{origin}/yarnui/jobhistory/logs/{match.group('host')}/port/{port}/{container}/{container}/{user}"


def is_microsoft_authority(authority_or_host: str) -> bool:
    """Whether MSAL can validate this authority itself (else pass ``instance_discovery=False``)."""
    host = urlsplit(authority_or_host).hostname if "://" in authority_or_host else authority_or_host
    return (host or "").lower() in MICROSOFT_AUTHORITY_HOSTS


def batch_path(batch_id_or_name: int | str, *rest: str) -> str:
    """``/batches/{id}[/rest...]`` for a batch id or name that is safe in a URL path.

    Raises ``ValueError`` naming the value for anything else: ``../sessions/0`` must not turn
    ``DELETE /batches/..`` into ``DELETE /sessions/0``, nor ``0?doAs=admin`` add Livy's
    impersonation parameter. The value is percent-encoded even when valid.
    """
    return _resource_path("batches", "batch", batch_id_or_name, rest)


def session_path(session_id_or_name: int | str, *rest: str) -> str:
    """``/sessions/{id}[/rest...]``, checked like :func:`batch_path`."""
    return _resource_path("sessions", "session", session_id_or_name, rest)


def _resource_path(collection: str, what: str, value: int | str, rest: tuple[str, ...]) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} id {value!r} is not an id or a name")
    text = str(value)
    problem = _id_problem(text)
    if problem is not None:
        raise ValueError(f"{what} id or name {_shown(text)} {problem}; it {_ID_RULE}")
    return f"/{collection}/" + "/".join([quote(text, safe=""), *rest])


def _shown(text: str) -> str:
    """``repr(text)`` cut to about 40 characters, so a hostile value is never repeated whole."""
    shown = repr(text)
    return shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 1] + "\u2026"


def _id_problem(text: str) -> str | None:
    """What is wrong with an id or name for a URL path, in words (``None`` when it is fine)."""
    if _ID_OR_NAME.fullmatch(text) and ".." not in text:
        return None
    if not text:
        return "is empty"
    if len(text) > _ID_MAX:
        return f"is {len(text)} characters; at most {_ID_MAX}"
    bad = next((ch for ch in text if not _ID_CHARS.fullmatch(ch)), None)
    if bad is not None:
        return f"contains {bad!r}"
    if ".." in text:
        return "contains '..'"
    return "must start with a letter or digit"


def is_error_line(line: str) -> bool:
    return bool(_ERROR_LINE.search(line))


def failure_lines(lines: Iterable[str], *, limit: int = 5) -> list[str]:
    """The last lines that look like errors (or the last non-empty lines if none do)."""
    body = [ln for ln in lines if ln.strip() and ln.strip() not in _STREAM_MARKERS]
    errors = [ln for ln in body if is_error_line(ln)]
    return (errors or body)[-limit:]


def merge_trigger_conf(
    profile: Mapping[str, Any], spec: Mapping[str, Any], conf: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply trigger-conf keys to a job's profile and spec dicts; an empty value keeps the default.

    ``args`` may be a list or a single value; each becomes text (``True`` -> ``"true"``).
    Unknown keys are ignored here (``JobConfig.with_trigger_conf`` reports them).
    """
    out_profile, out_spec = dict(profile), dict(spec)
    if conf.get("spark_cluster_fqdn"):
        out_profile["fqdn"] = str(conf["spark_cluster_fqdn"])
    for key, attr in (("app_jar_path", "file"), ("job_name", "name"), ("class_name", "class_name")):
        if conf.get(key):
            out_spec[attr] = str(conf[key])
    args = conf.get("args")
    if args is not None:
        items: Sequence[Any] = args if isinstance(args, (list, tuple)) else [args]
        out_spec["args"] = [arg_text(a) for a in items]
    return out_profile, out_spec
