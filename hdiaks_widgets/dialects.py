"""The dialects of Livy, in one place: what differs between Apache Livy, classic HDInsight,
HDInsight on AKS, Microsoft Fabric and Azure Synapse (PROTOCOL.md §2, §3, §8).

Level 0: standard library only. Every caller (client, CLI, UI, exported DAG, sandbox tests)
asks this module instead of testing the flavour name itself:

- the base URL of a profile and the token scope of its Entra sign-in;
- what ``POST /batches`` answers, how the list is asked for and answered, its page limit;
- where the state comes from (``/state`` or the batch object) and where the log is
  (Livy's view, a NodeManager page by byte range, Fabric's monitoring API by byte range,
  Synapse's Spark history ``driverlog``);
- the dialect's extra states and ``result`` mapped onto Livy's states;
- the body fields it requires or refuses and the ``conf`` it injects;
- the error body shape and the answers that mean "throttled".

Ids are opaque strings in every dialect (Apache Livy's are numbers, Fabric's are UUIDs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

__all__ = [
    "DIALECTS",
    "Dialect",
    "LogLocation",
    "FABRIC_API_VERSION",
    "FABRIC_SCOPE",
    "SYNAPSE_API_VERSION",
    "SYNAPSE_SCOPE",
    "dialect_of",
    "error_message",
    "fabric_conf",
    "hdinsight_entra_scope",
    "is_guid",
    "livy_state",
    "livy_version",
    "log_location",
    "token_scope",
    "throttle_kind",
]

FABRIC_API_VERSION = "2023-12-01"
SYNAPSE_API_VERSION = "2020-12-01"
FABRIC_SCOPE = "https://api.fabric.microsoft.com/.default"
SYNAPSE_SCOPE = "https://dev.azuresynapse.net/.default"
FABRIC_HOST = "https://api.fabric.microsoft.com"

ListStyle = Literal["from-size", "top-skip"]
LogSource = Literal["livy", "nodemanager", "fabric-monitoring", "synapse-driverlog", "none"]
# How a batch is found by name: "version" asks ``GET /version`` whether the server is Apache Livy
# 0.7+ (LIVY-41: a non-numeric id is looked up as a name); "try" asks ``GET /batches/{name}`` and
# scans the list when the server cannot parse it (400/500); "list" scans the list (the services'
# ``/batches/{id}`` takes only their own ids: a name there is a plain 404).
NameLookup = Literal["version", "try", "list"]
# Apache Livy 0.7.0 is the first release with LIVY-41 (name lookup in ``/batches/{name}``).
NAME_LOOKUP_SINCE = (0, 7)

# Livy's own states stay as they are; the dialects' extra states map onto the nearest one.
_EXTRA_STATES: Mapping[str, str] = {
    "submitting": "starting",  # Fabric: accepted, not yet handed to Spark
    "not_submitted": "not_started",  # Fabric: queued for capacity
}
# Fabric / Synapse ``result``: the final word once the job ended (PROTOCOL.md §8.2).
_RESULTS: Mapping[str, str] = {"succeeded": "success", "failed": "dead", "cancelled": "killed"}

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class Dialect:
    """One dialect of Livy. ``None`` page limit: the server takes any size."""

    name: str
    submit_status: frozenset[int]
    list_style: ListStyle = "from-size"
    list_items_key: str = "sessions"
    list_total_key: str = "total"
    list_state_key: str = "state"  # Fabric's list items are activity summaries with "livyState"
    page_limit: int | None = None
    # Apache Livy lists oldest first (SessionManager keeps a LinkedHashMap in insertion order and
    # the list is its slice from..from+size); the sandbox's Fabric answers newest first (not documented).
    list_newest_first: bool = False
    get_params: Mapping[str, str] = field(default_factory=dict)  # Synapse: detailed=true
    has_state_endpoint: bool = True
    has_log_endpoint: bool = True
    log_source: LogSource = "livy"
    id_kind: Literal["int", "uuid"] = "int"
    has_result: bool = False
    required_fields: frozenset[str] = frozenset()
    refused_fields: frozenset[str] = frozenset()
    throttle_statuses: frozenset[int] = frozenset({429, 503})
    csrf_header: bool = True
    entra: bool = False
    scope: str | None = None  # the Entra scope a token must be for, when the dialect fixes it
    cluster_scope: bool = False  # classic HDInsight: the scope is the cluster's (from its host)
    name_lookup: NameLookup = "try"
    lakehouse_conf: bool = False  # Fabric: conf["spark.targetLakehouse"] = the URL's lakehouse
    title: str = ""  # the service's name for people ("Fabric")
    notes: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def is_apache_livy(self) -> bool:
        """Whether the server is Apache Livy itself (``/state``, ``/log``, ``/version``...)."""
        return self.has_state_endpoint and self.has_log_endpoint

    def list_params(self, start: int, size: int) -> dict[str, str]:
        """Query parameters of one list page (``size`` clamped to the page limit)."""
        if self.page_limit is not None:
            size = min(size, self.page_limit)
        if self.list_style == "top-skip":
            return {"$top": str(size), "$skip": str(start)}
        return {"from": str(start), "size": str(size)}

    def page_size(self, wanted: int) -> int:
        return wanted if self.page_limit is None else min(wanted, self.page_limit)

    def parse_list(self, data: Mapping[str, Any]) -> tuple[int, list[Mapping[str, Any]]]:
        """``(total, items)`` of one list answer."""
        items = data.get(self.list_items_key) or []
        total = data.get(self.list_total_key)
        return (int(total) if isinstance(total, int) else len(items)), list(items)


_LIVY_SUBMIT = frozenset({201, 200})

DIALECTS: Mapping[str, Dialect] = {
    "livy": Dialect("livy", _LIVY_SUBMIT, name_lookup="version", title="Apache Livy"),
    "sandbox": Dialect("sandbox", _LIVY_SUBMIT, name_lookup="version", title="the sandbox's Livy"),
    "hdinsight": Dialect("hdinsight", _LIVY_SUBMIT, log_source="nodemanager", cluster_scope=True, title="HDInsight"),
    "hdinsight-aks": Dialect("hdinsight-aks", _LIVY_SUBMIT, entra=True, title="HDInsight on AKS"),
    "fabric": Dialect(
        "fabric",
        frozenset({202}),
        list_style="top-skip",
        list_items_key="items",
        list_total_key="totalCountOfMatchedItems",
        list_state_key="livyState",
        page_limit=100,  # not documented; the sandbox cuts $top to 100 (docs/fidelity.md)
        list_newest_first=True,  # the monitoring hub's order, as the sandbox serves it (docs/fidelity.md)
        has_state_endpoint=False,
        has_log_endpoint=False,
        log_source="fabric-monitoring",
        id_kind="uuid",
        has_result=True,
        refused_fields=frozenset({"proxy_user", "queue"}),
        throttle_statuses=frozenset({429, 430, 503}),
        csrf_header=False,
        entra=True,
        scope=FABRIC_SCOPE,
        name_lookup="list",
        lakehouse_conf=True,
        title="Fabric",
    ),
    "synapse": Dialect(
        "synapse",
        frozenset({200}),
        page_limit=20,  # sparkJob.json: "by default 20 and that is the maximum"
        get_params={"detailed": "true"},  # result, livyInfo, errorInfo only with detailed=true
        has_state_endpoint=False,
        has_log_endpoint=False,
        log_source="synapse-driverlog",
        has_result=True,
        required_fields=frozenset({"name", "file"}),
        refused_fields=frozenset({"proxy_user", "queue"}),  # not in SparkBatchJobOptions
        csrf_header=False,
        entra=True,
        scope=SYNAPSE_SCOPE,
        name_lookup="list",
        title="Synapse",
    ),
}


def dialect_of(flavour: str) -> Dialect:
    """The dialect of a profile flavour; ``KeyError`` for an unknown one (validated earlier)."""
    return DIALECTS[flavour]


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.fullmatch(value))


def hdinsight_entra_scope(cluster: str) -> str:
    """The Entra scope of a classic HDInsight cluster (``name`` or ``name.azurehdinsight.net``)."""
    name, _, domain = cluster.partition(".")
    suffix = "azurehdinsight.cn" if domain.endswith(".cn") else "azurehdinsight.net"
    return f"https://{name}.clusteraccess.{suffix}/.default"


def token_scope(dialect: Dialect, base_url: str) -> str | None:
    """The Entra scope a service takes tokens for, when the dialect fixes it (Fabric, Synapse)
    or the host says it (a classic HDInsight cluster ``*.azurehdinsight.net``); else ``None``."""
    if dialect.scope:
        return dialect.scope
    host = (urlsplit(base_url).hostname or "").lower()
    if dialect.cluster_scope and host.endswith((".azurehdinsight.net", ".azurehdinsight.cn")):
        return hdinsight_entra_scope(host)
    return None


def fabric_base_url(
    workspace_id: str, lakehouse_id: str, api_version: str = FABRIC_API_VERSION, host: str = FABRIC_HOST
) -> str:
    return (f"{host.rstrip('/')}/v1/workspaces/{quote(workspace_id, safe='')}/lakehouses/"
            f"{quote(lakehouse_id, safe='')}/livyApi/versions/{quote(api_version, safe='')}")  # fmt: skip


def synapse_base_url(workspace: str, pool: str, api_version: str = SYNAPSE_API_VERSION, host: str | None = None) -> str:
    root = host.rstrip("/") if host else f"https://{workspace}.dev.azuresynapse.net"
    return f"{root}/livyApi/versions/{quote(api_version, safe='')}/sparkPools/{quote(pool, safe='')}"


def fabric_conf(lakehouse_id: str, environment_id: str | None = None) -> dict[str, str]:
    """The ``conf`` Fabric reads to choose where and with what the job runs."""
    conf = {"spark.targetLakehouse": lakehouse_id}
    if environment_id:
        conf["spark.fabric.environmentDetails"] = json.dumps({"id": environment_id})
    return conf


def livy_state(state: object, result: object = None) -> str:
    """A dialect's ``state`` (and ``result``, where it has one) as one of Livy's states.

    A final ``result`` (``Succeeded``/``Failed``/``Cancelled``; ``Uncertain`` is not final) wins
    over the state: Fabric can report ``dead`` with ``Cancelled``, and ``not_submitted`` with
    ``Failed`` for a job spark-submit never ran (that state alone is not final).
    """
    text = str(state or "not_started").lower()
    res = str(result or "").lower()
    if res in _RESULTS:
        return _RESULTS[res]
    return _EXTRA_STATES.get(text, text)


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def livy_version(text: object) -> tuple[int, int, int] | None:
    """``"0.7.1-incubating"`` -> ``(0, 7, 1)``; ``None`` for anything that is not a version."""
    match = _VERSION.match(str(text or "").strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


@dataclass(frozen=True)
class LogLocation:
    """Where a batch's log is read, the pieces a log reader needs.

    ``source``: the dialect's :data:`LogSource`. ``url``: Fabric's monitoring ``.../logs``
    endpoint (add ``type=driver&fileName=stderr`` ...; the Livy log is at ``applications/none``)
    or Synapse's ``.../driverlog`` (add ``/stdout/`` or ``/stderr/``); ``None`` for Livy's own
    ``/log`` (and when the batch has no application id yet, or the base URL is not the
    dialect's form). ``origin`` is the service's scheme://host[:port].
    """

    source: LogSource
    origin: str
    batch_id: str
    app_id: str | None = None
    workspace_id: str | None = None  # Fabric
    lakehouse_id: str | None = None  # Fabric
    pool: str | None = None  # Synapse
    url: str | None = None


_FABRIC_BASE = re.compile(
    r"^(?P<origin>https?://[^/]+)(?P<prefix>(?:/[^/]+)*?)/v1/workspaces/(?P<ws>[^/]+)/lakehouses/(?P<lh>[^/]+)"
    r"/livyApi/versions/[^/]+$"
)
_SYNAPSE_BASE = re.compile(
    r"^(?P<origin>https?://[^/]+)(?P<prefix>(?:/[^/]+)*?)/livyApi/versions/[^/]+/sparkPools/(?P<pool>[^/]+)$"
)


def log_location(dialect: Dialect, base_url: str, batch_id: object, app_id: str | None) -> LogLocation:
    """Where ``batch_id``'s log is, from the client's own base URL (PROTOCOL.md §8.2, §8.3).

    Fabric: ``.../v1/workspaces/{ws}/lakehouses/{lh}/livyApi/versions/{v}`` ->
    ``.../v1/workspaces/{ws}/lakehouses/{lh}/livySessions/{id}/applications/{appId}/logs``.
    Synapse: ``https://{ws}.dev.azuresynapse.net/livyApi/versions/{v}/sparkPools/{pool}`` ->
    ``{origin}/sparkhistory/api/v1/sparkpools/{pool}/livyid/{id}/applications/{appId}/driverlog``.
    """
    base = base_url.rstrip("/")
    ident = str(batch_id)
    origin = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+", base)
    where = origin.group(0) if origin else base
    app_part = quote(app_id, safe="") if app_id else None
    if dialect.log_source == "fabric-monitoring":
        match = _FABRIC_BASE.match(base)
        if match is None:
            return LogLocation(dialect.log_source, where, ident, app_id)
        root = f"{match['origin']}{match['prefix']}/v1/workspaces/{match['ws']}/lakehouses/{match['lh']}"
        url = f"{root}/livySessions/{quote(ident, safe='')}/applications/{app_part}/logs" if app_part else None
        return LogLocation(dialect.log_source, match["origin"], ident, app_id, workspace_id=match["ws"],
                           lakehouse_id=match["lh"], url=url)  # fmt: skip
    if dialect.log_source == "synapse-driverlog":
        match = _SYNAPSE_BASE.match(base)
        if match is None:
            return LogLocation(dialect.log_source, where, ident, app_id)
        root = f"{match['origin']}{match['prefix']}/sparkhistory/api/v1/sparkpools/{match['pool']}"
        url = f"{root}/livyid/{quote(ident, safe='')}/applications/{app_part}/driverlog" if app_part else None
        return LogLocation(dialect.log_source, match["origin"], ident, app_id, pool=match["pool"], url=url)
    return LogLocation(dialect.log_source, where, ident, app_id)


def fabric_lakehouse(base_url: str) -> str | None:
    """The lakehouse id in a Fabric Livy base URL, or ``None``."""
    match = _FABRIC_BASE.match(base_url.rstrip("/"))
    return match["lh"] if match else None


def error_message(data: object) -> str | None:
    """The message of an error body in any dialect: Livy ``{"msg"}``, Fabric
    ``{"errorCode", "message", "moreDetails"}``, Synapse ``{"TraceId", "Message"}``, Azure
    ``{"error": {"code", "message"}}``."""
    if not isinstance(data, Mapping):
        return None
    inner = data.get("error")
    if isinstance(inner, Mapping):
        data = inner
    message = data.get("msg") or data.get("message") or data.get("Message")
    if not isinstance(message, str):
        return None
    code = data.get("errorCode") or data.get("code")
    details = data.get("moreDetails")
    extra = ""
    if isinstance(details, list):
        texts = [str(d.get("message")) for d in details if isinstance(d, Mapping) and d.get("message")]
        extra = "; ".join(texts)
    text = f"{code}: {message}" if isinstance(code, str) and code else message
    return f"{text} ({extra})" if extra else text


def throttle_kind(status: int, data: object) -> str | None:
    """``"capacity"`` for Fabric's full capacity (430), ``"rate"`` for 429, else ``None``."""
    code = data.get("errorCode") if isinstance(data, Mapping) else None
    if status == 430 or code == "TooManyRequestsForCapacity":
        return "capacity"
    if status == 429:
        return "rate"
    return None
