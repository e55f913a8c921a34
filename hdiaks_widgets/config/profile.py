"""``ClusterProfile``: where to submit — flavour, endpoint, Livy path, auth and its settings, TLS,
timeouts. Holds no secret values, only where to find them.

How each flavour is addressed (``base_url``) and signed in to (``auth_method``, ``token_scope``):

- ``sandbox``, ``livy``: ``url`` (the Livy server) plus ``livy_path``; no sign-in by default;
- ``hdinsight-aks``: ``fqdn`` plus ``/p/livy``; Entra ID, scope ``https://hilo.azurehdinsight.net/.default``;
- ``hdinsight`` (classic): ``fqdn`` (cluster name or host) plus ``/livy``; ``auth`` ``basic`` (the
  cluster login, the default) or ``entra`` (a service principal; needs ``tenant_id``), scope
  ``https://{cluster}.clusteraccess.azurehdinsight.net/.default`` (PROTOCOL.md §8.1);
- ``fabric``: ``workspace_id`` and ``lakehouse_id`` (GUIDs), ``api_version`` (default 2023-12-01),
  optional ``environment_id``; Entra ID only, scope ``https://api.fabric.microsoft.com/.default``;
  the lakehouse and environment travel in ``conf`` (:meth:`ClusterProfile.conf_injections`);
- ``synapse``: ``workspace`` (the name in ``{workspace}.dev.azuresynapse.net``) and ``pool``,
  ``api_version`` (default 2020-12-01); Entra ID only, scope ``https://dev.azuresynapse.net/.default``.

``scope`` left out (``None``) means the flavour's scope. On ``fabric``, ``synapse`` and ``hdinsight``
``url`` replaces only the origin of the real host: ``url="http://127.0.0.1:8998"`` points the profile
at the local sandbox, which serves each service at its real path, e.g.
``http://127.0.0.1:8998/v1/workspaces/{ws}/lakehouses/{lh}/livyApi/versions/2023-12-01``; the token
scope stays the service's, so the sandbox's per-audience checks still apply. Plain ``http://`` is
accepted there only for a loopback address (a bearer token must not cross a network in clear text).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from ipaddress import ip_address
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, unquote

from hdiaks_widgets import dialects, wire
from hdiaks_widgets.config.validators import (
    _CONTROL,
    _KV_NAME,
    _check_host,
    _check_url,
    _is_https_url,
    _known_keys,
    _problem,
    _split_url,
)
from hdiaks_widgets.errors import ConfigError, ConfigProblem

__all__ = [
    "AuthMethod",
    "ClusterProfile",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_SCOPE",
    "DEFAULT_VARIABLES_PREFIX",
    "Flavour",
    "SecretSource",
]

Flavour = Literal["hdinsight-aks", "hdinsight", "livy", "sandbox", "fabric", "synapse"]
# "entra" is a service principal's sign-in (the unattended flow; "device-code" is a person's).
AuthMethod = Literal["none", "basic", "service-principal", "device-code", "entra"]
SecretSource = Literal["keyvault", "env", "none"]

DEFAULT_SCOPE = "https://hilo.azurehdinsight.net/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_VARIABLES_PREFIX = "hdinsight-aks-variables"

_SERVICE = {"hdinsight-aks": "HDInsight on AKS", "hdinsight": "classic HDInsight", "livy": "Apache Livy",
            "sandbox": "the sandbox", "fabric": "Fabric", "synapse": "Synapse"}  # fmt: skip
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")  # "user:password@" in a URL
_MAX_TIMEOUT = 86400  # seconds: a day; far past any gateway's idle timeout, well inside time_t
_ENTRA_ONLY = frozenset({"fabric", "synapse"})  # the services take nothing but Entra ID tokens
_ORIGIN_OVERRIDE = frozenset({"fabric", "synapse", "hdinsight"})  # url = another origin for the real host
_API_VERSION = {"fabric": dialects.FABRIC_API_VERSION, "synapse": dialects.SYNAPSE_API_VERSION}
# The scope each Entra flavour asks for when none is given (classic HDInsight's names the cluster).
_FLAVOUR_SCOPE = {"fabric": dialects.FABRIC_SCOPE, "synapse": dialects.SYNAPSE_SCOPE}
_KNOWN_SCOPES = {DEFAULT_SCOPE: "hdinsight-aks", dialects.FABRIC_SCOPE: "fabric", dialects.SYNAPSE_SCOPE: "synapse"}
_HDI_SCOPE = re.compile(r"https://(?P<cluster>[^./]+)\.clusteraccess\.azurehdinsight\.(?:net|cn)/\.default")
_TARGET_LAKEHOUSE = "spark.targetLakehouse"
_ENVIRONMENT_DETAILS = "spark.fabric.environmentDetails"


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how to reach Livy. Holds no secret values, only where to find them."""

    name: str = "sandbox"
    flavour: Flavour = "sandbox"
    fqdn: str | None = None  # hdinsight-aks: cluster FQDN; hdinsight: cluster name or FQDN
    url: str | None = None  # livy / sandbox: the Livy server; fabric / synapse / hdinsight: another origin
    livy_path: str | None = None  # None -> the flavour's default (/p/livy, /livy, "")
    workspace_id: str | None = None  # fabric: the workspace's GUID
    lakehouse_id: str | None = None  # fabric: the lakehouse's GUID
    environment_id: str | None = None  # fabric, optional: the environment's GUID
    workspace: str | None = None  # synapse: the workspace name, as in {workspace}.dev.azuresynapse.net
    pool: str | None = None  # synapse: the Spark pool's name
    api_version: str | None = None  # fabric / synapse: None -> 2023-12-01 / 2020-12-01
    auth: AuthMethod | None = None  # None -> the flavour's default
    scope: str | None = None  # None -> the flavour's scope (token_scope)
    authority_host: str = DEFAULT_AUTHORITY_HOST
    tenant_id: str | None = None
    client_id: str | None = None  # device code: the public client app id
    username: str | None = None  # basic auth user; the password comes from the secret store
    secret_source: SecretSource = "env"  # noqa: S105 - where secrets live, not a secret
    vault_url: str | None = None
    variables_prefix: str = DEFAULT_VARIABLES_PREFIX
    verify: bool | str = True  # True, False, or a CA bundle path
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __repr__(self) -> str:
        # A password typed into the URL is refused by validation, but the repr (a notebook cell,
        # a log line) must not show it either.
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "url" and isinstance(value, str):
                value = _URL_USERINFO.sub(r"\1***@", value)
            shown.append(f"{f.name}={value!r}")
        return f"ClusterProfile({', '.join(shown)})"

    @property
    def auth_method(self) -> AuthMethod:
        """The configured method, or the flavour's default when ``auth`` is not given.
        ``entra`` comes back as ``service-principal``, the flow it names."""
        if self.auth == "entra":
            return "service-principal"
        if self.auth is not None:
            return self.auth
        self._check_flavour()
        if self.flavour in _ENTRA_ONLY:
            return "service-principal"
        method: AuthMethod = wire.DEFAULT_AUTH[self.flavour]  # type: ignore[assignment]
        return method

    @property
    def token_scope(self) -> str:
        """The Entra ID scope to ask a token for: ``scope`` when given, else the flavour's."""
        if self.scope is not None:
            return self.scope
        return self._flavour_scope()

    def _flavour_scope(self) -> str:
        if self.flavour == "hdinsight":
            return dialects.hdinsight_entra_scope(self.fqdn or "")
        return _FLAVOUR_SCOPE.get(self.flavour, DEFAULT_SCOPE)

    @property
    def base_url(self) -> str:
        """The Livy endpoint root, e.g. ``https://{fqdn}/p/livy`` (no trailing slash)."""
        self._check_flavour()
        version = self.api_version or _API_VERSION.get(self.flavour, "")
        origin = self.url.rstrip("/") if isinstance(self.url, str) and self.url.strip() else None
        if self.flavour == "fabric":
            host = {"host": origin} if origin else {}
            return dialects.fabric_base_url(self.workspace_id or "", self.lakehouse_id or "", version, **host)
        if self.flavour == "synapse":
            return dialects.synapse_base_url(self.workspace or "", self.pool or "", version, host=origin)
        if self.flavour == "hdinsight" and origin:
            path = self.livy_path if self.livy_path is not None else wire.DEFAULT_LIVY_PATH["hdinsight"]
            return wire.livy_base_url("livy", url=origin, livy_path=path)
        return wire.livy_base_url(self.flavour, fqdn=self.fqdn, url=self.url, livy_path=self.livy_path)

    def _check_flavour(self) -> None:
        if self.flavour not in get_args(Flavour):
            raise ConfigError(
                f"must be one of {', '.join(get_args(Flavour))}, got {self.flavour!r}",
                field="profile.flavour",
            )

    # -- Fabric's conf ---------------------------------------------------------------------------

    def conf_injections(self) -> dict[str, str]:
        """The ``conf`` this profile adds to every batch body: Fabric's lakehouse and environment
        (``spark.targetLakehouse``, ``spark.fabric.environmentDetails``); empty for other flavours."""
        if self.flavour != "fabric" or not self.lakehouse_id:
            return {}
        return dialects.fabric_conf(self.lakehouse_id, self.environment_id or None)

    def conf_problems(self, conf: Mapping[str, Any] | None) -> list[ConfigProblem]:
        """A job's own ``conf`` that contradicts :meth:`conf_injections` (another lakehouse or
        environment than the profile's), each naming ``spec.conf[...]`` and the profile field."""
        problems: list[ConfigProblem] = []
        injected = self.conf_injections()
        if not injected or not isinstance(conf, Mapping):
            return problems
        given = conf.get(_TARGET_LAKEHOUSE)
        if given is not None and str(given).strip().lower() != injected[_TARGET_LAKEHOUSE].lower():
            _problem(
                problems,
                f"spec.conf[{_TARGET_LAKEHOUSE}]",
                f"names another lakehouse than profile.lakehouse_id ({self.lakehouse_id}); Fabric runs the job "
                "in the profile's lakehouse, which the profile sets here: remove this setting from spec.conf, "
                "or change profile.lakehouse_id",
            )
        given_env = conf.get(_ENVIRONMENT_DETAILS)
        if given_env is not None and _ENVIRONMENT_DETAILS in injected and \
                _environment_id(given_env) != (self.environment_id or "").lower():  # fmt: skip
            _problem(
                problems,
                f"spec.conf[{_ENVIRONMENT_DETAILS}]",
                f"names another environment than profile.environment_id ({self.environment_id}): remove this "
                "setting from spec.conf (the profile sets it), or change profile.environment_id",
            )
        return problems

    def merge_conf(self, conf: Mapping[str, Any] | None) -> dict[str, Any]:
        """A job's ``conf`` with :meth:`conf_injections` added; :class:`ConfigError` when the job
        names another lakehouse or environment than the profile (:meth:`conf_problems`)."""
        problems = self.conf_problems(conf)
        if problems:
            raise ConfigError(problems)
        return {**dict(conf or {}), **self.conf_injections()}

    # -- validation ------------------------------------------------------------------------------

    def problems(self) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        p = "profile."
        if self.flavour not in get_args(Flavour):
            _problem(problems, p + "flavour", f"must be one of {', '.join(get_args(Flavour))}")
            return problems
        if self.auth is not None and self.auth not in get_args(AuthMethod):
            _problem(problems, p + "auth", f"must be one of {', '.join(get_args(AuthMethod))}")
        if not isinstance(self.name, str) or not self.name.strip() or _CONTROL.search(self.name):
            _problem(problems, p + "name", "must be a short profile name, e.g. 'prod-eastus'")
        if self.flavour in ("hdinsight-aks", "hdinsight"):
            _check_host(self.fqdn if self.fqdn is not None else "", p + "fqdn", problems, self.flavour)
        elif self.flavour == "fabric":
            problems += self._fabric_problems()
        elif self.flavour == "synapse":
            problems += self._synapse_problems()
        else:
            _check_url(self.url, p + "url", problems)
        if self.flavour in _ORIGIN_OVERRIDE and self.url is not None and not self._pasted_endpoint():
            _check_origin(self.url, self.flavour, problems)
        if self.flavour in _ENTRA_ONLY:
            self._not_used(problems, "livy_path", "its path is built from the profile's ids and api_version")
            self._not_used(problems, "fqdn", "use url only to point at another origin, such as the sandbox")
        if self.flavour in _API_VERSION and self.api_version is not None:
            _check_api_version(self.api_version, self.flavour, problems)
        if self.livy_path is not None and (
            not isinstance(self.livy_path, str)
            or any(ch.isspace() or ch in "?#" for ch in self.livy_path)
            or "://" in self.livy_path
        ):
            _problem(problems, p + "livy_path", "must be a URL path like /p/livy or /livy")
        if self.auth is None or self.auth in get_args(AuthMethod):
            problems += self._auth_problems(self.auth_method)
        if self.secret_source not in get_args(SecretSource):
            _problem(problems, p + "secret_source", "must be one of keyvault, env, none")
        if self.secret_source == "keyvault" and not _is_https_url(self.vault_url):  # noqa: S105
            _problem(
                problems,
                p + "vault_url",
                "must be the vault's https URL, e.g. https://myvault.vault.azure.net",
            )
        if not isinstance(self.variables_prefix, str) or not _KV_NAME.fullmatch(self.variables_prefix):
            _problem(
                problems,
                p + "variables_prefix",
                "may hold only letters, digits and '-', e.g. hdinsight-aks-variables",
            )
        if not isinstance(self.verify, (bool, str)) or (isinstance(self.verify, str) and not self.verify.strip()):
            _problem(problems, p + "verify", "must be true, false or the path of a CA bundle file")
        elif isinstance(self.verify, str) and not os.path.isfile(os.path.expanduser(self.verify)):
            where = "a folder, not a file" if os.path.isdir(os.path.expanduser(self.verify)) else "not found"
            _problem(
                problems,
                p + "verify",
                f"CA bundle {self.verify!r} is {where}; give the path of a PEM file such as "
                "/etc/ssl/certs/ca-certificates.crt, or true to use the system's certificates",
            )
        for tname in ("connect_timeout", "read_timeout"):
            value = getattr(self, tname)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                _problem(problems, p + tname, f"must be a number of seconds above 0, got {value!r}")
            elif value > _MAX_TIMEOUT:  # a finite but huge timeout overflows the socket's time_t in urllib3
                _problem(problems, p + tname, f"must be at most {_MAX_TIMEOUT} seconds (a day), got {value!r}")
        return problems

    def _not_used(self, problems: list[ConfigProblem], name: str, why: str) -> None:
        value = getattr(self, name)
        if value is not None and (not isinstance(value, str) or value.strip()):
            _problem(problems, "profile." + name, f"is not used by {_SERVICE[self.flavour]} ({why}); remove it")

    def _pasted_endpoint(self) -> bool:
        """``url`` holds a whole Fabric or Synapse Livy endpoint (reported by the id checks)."""
        return bool(self.flavour in _ENTRA_ONLY and isinstance(self.url, str) and _endpoint_ids(self.url))

    def _fabric_problems(self) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        from_url = _endpoint_ids(self.url) if isinstance(self.url, str) else {}
        for name in ("workspace_id", "lakehouse_id", "environment_id"):
            value = getattr(self, name)
            if name == "environment_id" and value is None:
                continue
            if (value is None or value == "") and name in from_url:
                continue  # said once, under url
            _check_fabric_id(value, name, problems)
        if from_url:
            ids = " and ".join(f"{k} to {v}" for k, v in from_url.items() if k != "pool")
            _problem(
                problems,
                "profile.url",
                f"is Fabric's Livy endpoint; set {ids} and remove url (url replaces only the host, "
                "e.g. http://127.0.0.1:8998 for the local sandbox)",
            )
        return problems

    def _synapse_problems(self) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        from_url = _endpoint_ids(self.url) if isinstance(self.url, str) else {}
        if not ((self.workspace is None or self.workspace == "") and "workspace" in from_url):
            _check_synapse_workspace(self.workspace, problems)
        if not ((self.pool is None or self.pool == "") and "pool" in from_url):
            _check_synapse_pool(self.pool, problems)
        if from_url:
            said = " and ".join(f"{k} to {v}" for k, v in from_url.items())
            _problem(
                problems,
                "profile.url",
                f"is a Synapse Livy endpoint; set {said} and remove url (url replaces only the host, "
                "e.g. http://127.0.0.1:8998 for the local sandbox)",
            )
        return problems

    def _auth_problems(self, method: AuthMethod) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        p = "profile."
        service = _SERVICE[self.flavour]
        if self.flavour in _ENTRA_ONLY and (method == "basic" or (method == "none" and not self._local_origin())):
            _problem(
                problems,
                p + "auth",
                f"{service} accepts only Entra ID tokens, not {method!r}: use service-principal (or entra) or "
                "device-code" + ("; 'none' only works with a url pointing at the local sandbox"
                                 if method == "none" else ""),
            )
        if self.flavour == "hdinsight" and method == "none" and not self._local_origin():
            _problem(problems, p + "auth", "a classic HDInsight cluster's gateway always asks for a sign-in: use basic "
                     "(the cluster login) or entra; 'none' only works with a url pointing at the local sandbox")
        if method in ("service-principal", "device-code"):
            example = self._flavour_scope()
            scope = self.token_scope
            if not _is_https_url(scope):
                _problem(problems, p + "scope", f"must be an https resource scope, e.g. {example}")
            elif method == "service-principal" and not scope.endswith("/.default"):
                # The client-credentials grant accepts only '<resource>/.default' scopes.
                _problem(
                    problems,
                    p + "scope",
                    f"must end in /.default for service-principal sign-in, e.g. {example}",
                )
            else:
                self._scope_of_another_flavour(problems)
            if not _is_https_url(self.authority_host):
                _problem(
                    problems,
                    p + "authority_host",
                    "must be an https URL, e.g. https://login.microsoftonline.com",
                )
        if method == "device-code":
            if not self.client_id:
                _problem(
                    problems, p + "client_id", "is required for device-code sign-in (the app registration id)"
                )
            if not self.tenant_id:
                _problem(problems, p + "tenant_id", "is required for device-code sign-in (your directory id)")
        elif self.auth == "entra" and self.flavour == "hdinsight" and not self.tenant_id:
            _problem(
                problems,
                p + "tenant_id",
                "is required for auth 'entra' on classic HDInsight: your directory (tenant) id, a GUID or a "
                "domain such as contoso.onmicrosoft.com",
            )
        if method == "basic" and not self.username and self.flavour not in _ENTRA_ONLY:
            _problem(problems, p + "username", "is required for basic auth, e.g. 'admin'")
        return problems

    def _scope_of_another_flavour(self, problems: list[ConfigProblem]) -> None:
        """A scope left over from another flavour (the form or a file whose flavour was changed)."""
        if self.scope is None or self.flavour not in (*_ENTRA_ONLY, "hdinsight", "hdinsight-aks"):
            return
        owner = _KNOWN_SCOPES.get(self.scope)
        hdi = _HDI_SCOPE.fullmatch(self.scope)
        if owner is None and hdi is not None:
            owner = "hdinsight"
        if owner is None or (owner == self.flavour and not (hdi and self.scope != self._flavour_scope())):
            return
        what = f"{_SERVICE[owner]}'s scope" + (f" (cluster {hdi['cluster']})" if hdi else "")
        _problem(
            problems,
            "profile.scope",
            f"is {what}, not {_SERVICE[self.flavour]}'s; remove scope to use {self._flavour_scope()}",
        )

    def _local_origin(self) -> bool:
        parts = _split_url(self.url) if isinstance(self.url, str) else None
        return parts is not None and _is_loopback(parts.hostname)

    def validate(self) -> ClusterProfile:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterProfile:
        """A profile from its JSON form. A key that looks like a secret (``client_secret``,
        ``password``, ``token``...) is refused by name, its value never repeated."""
        if isinstance(data, Mapping):
            secret_like = [k for k in data if isinstance(k, str) and _looks_secret(k)]
            if secret_like:
                problems = [ConfigProblem(f"profile.{k}", _NOT_IN_PROFILE) for k in secret_like]
                rest = {k: v for k, v in data.items() if k not in secret_like}
                try:
                    _known_keys(cls, rest, "profile")
                except ConfigError as exc:
                    problems += exc.problems
                raise ConfigError(problems)
        return cls(**_known_keys(cls, data, "profile"))


# -- the services' ids and names ------------------------------------------------------------------
# Values are never echoed in these messages (a secret pasted into the wrong field must not be
# repeated); only what is parsed out of an address (a GUID, a host label, a pool name) is.

_FABRIC_PORTAL = "https://app.fabric.microsoft.com/groups/<workspace id>/lakehouses/<lakehouse id>"
_IN_PORTAL = f"in the lakehouse's address in the portal, {_FABRIC_PORTAL}"
_FABRIC_WHERE = {
    "workspace_id": ("workspace", f"the GUID after /groups/ {_IN_PORTAL}"),
    "lakehouse_id": ("lakehouse", f"the GUID after /lakehouses/ {_IN_PORTAL}"),
    "environment_id": ("environment", "the GUID at the end of the environment's address in the portal "
                       "(in the REST API: /v1/workspaces/<workspace id>/environments/<environment id>)"),
}  # fmt: skip
_GUID_EXAMPLE = "00000000-0000-0000-0000-000000000000"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _looks_like_address(value: str) -> bool:
    text = value.strip().lower()
    return "/" in text or text.startswith(("app.fabric.", "api.fabric.", "app.powerbi.", "msit.fabric."))


def _path_segments(value: str) -> list[str]:
    parts = _split_url(value.strip())
    path = parts.path if parts is not None and parts.scheme else value.strip()
    return [unquote(s) for s in path.split("/") if s]


def _fabric_ids(value: str) -> dict[str, str]:
    """The ids in a Fabric portal or REST address: ``/groups/<ws>/lakehouses/<lh>``,
    ``/v1/workspaces/<ws>/lakehouses/<lh>/livyApi/...``, ``.../environments/<env>``."""
    segments = _path_segments(value)
    found: dict[str, str] = {}
    for key, item in zip(segments, segments[1:], strict=False):
        k = key.lower()
        name = ("workspace_id" if k in ("groups", "workspaces") else "lakehouse_id" if k == "lakehouses"
                else "environment_id" if "environment" in k else None)  # fmt: skip
        if name and name not in found and dialects.is_guid(item):
            found[name] = item
    return found


def _endpoint_ids(url: str) -> dict[str, str]:
    """The ids in a whole Livy endpoint pasted as ``url`` (Fabric's workspace and lakehouse,
    Synapse's workspace and pool); empty for an origin."""
    parts = _split_url(url.strip())
    if parts is None or parts.path in ("", "/"):
        return {}
    fabric = {k: v for k, v in _fabric_ids(url).items() if k != "environment_id"}
    if len(fabric) == 2:
        return fabric
    segments = [s.lower() for s in _path_segments(url)]
    if "sparkpools" in segments and segments.index("sparkpools") + 1 < len(segments):
        found = {"pool": _path_segments(url)[segments.index("sparkpools") + 1]}
        name = _synapse_name_from(url)
        if name:
            found = {"workspace": name, **found}
        return found
    return {}


def _check_fabric_id(value: Any, name: str, problems: list[ConfigProblem]) -> None:
    what, where = _FABRIC_WHERE[name]
    field_name = "profile." + name
    if value is None or (isinstance(value, str) and not value.strip()):
        _problem(problems, field_name, f"is required: the {what} id, {where}")
        return
    if not isinstance(value, str):
        _problem(problems, field_name, f"must be the {what} id as text (a GUID), {where}")
        return
    if dialects.is_guid(value):
        return
    ids = _fabric_ids(value) if _looks_like_address(value) else {}
    if name in ids:
        others = [f"its {k.replace('_id', '')} id, {v}, goes in {k}" for k, v in ids.items() if k != name]
        also = f" ({'; '.join(others)})" if others else ""
        message = f"looks like a Fabric URL: the {what} id is {ids[name]}; set {name} to {ids[name]}{also}"
    elif _looks_like_address(value):
        message = f"is an address without the {what} id in it; give only the id, {where}"
    elif dialects.is_guid(value.strip().strip("{}").strip()):
        message = f"has spaces or braces around the GUID; use {value.strip().strip('{}').strip()}"
    else:
        message = f"is not a GUID (8-4-4-4-12 hex digits like {_GUID_EXAMPLE}); the {what} id is {where}"
    _problem(problems, field_name, message)


# Azure naming rules, Microsoft.Synapse (learn.microsoft.com/azure/azure-resource-manager/management/
# resource-name-rules): a workspace is 1-50 lowercase letters, digits and '-', starting and ending with
# a letter or digit, never containing '-ondemand'; a Spark pool (bigDataPools) is 1-15 letters and
# digits starting with a letter. Host names are case-insensitive, so case is not held against a name.
_SYNAPSE_WORKSPACE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?", re.IGNORECASE)
_SYNAPSE_POOL = re.compile(r"[A-Za-z][A-Za-z0-9]{0,14}")
_SYNAPSE_HOST = re.compile(
    r"(?P<name>[a-z0-9-]+?)(?:-ondemand)?\.(?:dev|sql)\.azuresynapse\.(?:net|azure\.cn|usgovcloudapi\.net)",
    re.IGNORECASE,
)
_SYNAPSE_RESOURCE = re.compile(r"/providers/Microsoft\.Synapse/workspaces/(?P<name>[^/?#]+)", re.IGNORECASE)
_SYNAPSE_EXAMPLE = "e.g. myws for https://myws.dev.azuresynapse.net"


def _synapse_name_from(value: str) -> str | None:
    """The workspace name in a Synapse host, URL, resource id or Synapse Studio address."""
    text = value.strip()
    parts = _split_url(text if "://" in text else "https://" + text.lstrip("/"))
    host = parts.hostname if parts is not None else None
    if host:
        match = _SYNAPSE_HOST.fullmatch(host)
        if match:
            return match["name"].lower()
    candidates = [text]
    if parts is not None:  # Synapse Studio: web.azuresynapse.net/...?workspace=<url-encoded resource id>
        candidates += [v for values in parse_qs(parts.query).values() for v in values]
    for candidate in candidates:
        match = _SYNAPSE_RESOURCE.search(unquote(candidate))
        if match and _SYNAPSE_WORKSPACE.fullmatch(match["name"]):
            return match["name"].lower()
    return None


def _check_synapse_workspace(value: Any, problems: list[ConfigProblem]) -> None:
    name = "profile.workspace"
    if value is None or (isinstance(value, str) and not value.strip()):
        _problem(problems, name, f"is required: the Synapse workspace's name, {_SYNAPSE_EXAMPLE}")
        return
    if not isinstance(value, str):
        _problem(problems, name, f"must be the workspace's name as text, {_SYNAPSE_EXAMPLE}")
        return
    if _SYNAPSE_WORKSPACE.fullmatch(value) and "-ondemand" not in value.lower():
        return
    found = _synapse_name_from(value) if any(ch in value for ch in "./") else None
    if found:
        _problem(problems, name, f"looks like a Synapse address: the workspace name is {found}; set workspace "
                                 f"to {found} (only the name, without .dev.azuresynapse.net)")  # fmt: skip
    elif value.lower().endswith("-ondemand"):
        _problem(problems, name, "ends in -ondemand, the serverless SQL endpoint's suffix; give the workspace "
                                 f"name without it, {_SYNAPSE_EXAMPLE}")  # fmt: skip
    elif len(value) > 50:
        _problem(problems, name, f"is {len(value)} characters; a Synapse workspace name has at most 50")
    else:
        _problem(problems, name, "is not a Synapse workspace name (letters, digits and '-', starting and ending "
                                 f"with a letter or digit, at most 50), {_SYNAPSE_EXAMPLE}")  # fmt: skip


def _check_synapse_pool(value: Any, problems: list[ConfigProblem]) -> None:
    name = "profile.pool"
    rule = "only letters and digits, starting with a letter, at most 15 characters (Azure's naming rules)"
    if value is None or (isinstance(value, str) and not value.strip()):
        _problem(problems, name, "is required: the Spark pool's name, as Synapse Studio lists it under "
                                 "Manage > Apache Spark pools, e.g. sparkpool01")  # fmt: skip
        return
    if not isinstance(value, str):
        _problem(problems, name, f"must be the Spark pool's name as text: {rule}")
        return
    if _SYNAPSE_POOL.fullmatch(value):
        return
    segments = _path_segments(value) if "/" in value else []
    lowered = [s.lower() for s in segments]
    if "sparkpools" in lowered and lowered.index("sparkpools") + 1 < len(segments):
        pool = segments[lowered.index("sparkpools") + 1]
        if _SYNAPSE_POOL.fullmatch(pool):
            _problem(problems, name, f"looks like a Synapse address: the pool name is {pool}; set pool to {pool}")
            return
    if len(value) > 15:
        _problem(problems, name, f"is {len(value)} characters; Synapse takes {rule}")
    elif not value[:1].isalpha():
        _problem(problems, name, f"does not start with a letter; Synapse takes {rule}")
    else:
        _problem(problems, name, f"has characters Synapse does not take in a pool name; it takes {rule}")


_API_VERSION_FORM = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})(?:-preview)?")


def _check_api_version(value: Any, flavour: str, problems: list[ConfigProblem]) -> None:
    default = _API_VERSION[flavour]
    match = _API_VERSION_FORM.fullmatch(value) if isinstance(value, str) else None
    valid = False
    if match:
        try:
            datetime.date.fromisoformat(match["date"])
            valid = True
        except ValueError:
            valid = False
    if not valid:
        _problem(
            problems,
            "profile.api_version",
            f"must be a date like {default} (YYYY-MM-DD, the version in the Livy endpoint's path "
            f".../livyApi/versions/{default}); leave it out for {default}",
        )


def _check_origin(url: Any, flavour: str, problems: list[ConfigProblem]) -> None:
    """``url`` on a flavour addressed by ids or a cluster name: only an origin, replacing the real host's."""
    name = "profile.url"
    example = "e.g. http://127.0.0.1:8998 for the local sandbox"
    parts = _split_url(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        _problem(problems, name, f"must be an origin (scheme://host[:port]) that replaces {_SERVICE[flavour]}'s "
                                 f"host, {example}; leave it out to use the real one")  # fmt: skip
    elif parts.username is not None or parts.password is not None:
        _problem(problems, name, "must not hold credentials (user:password@): the profile signs in with Entra ID "
                                 "or keeps the password in the secret store")  # fmt: skip
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        _problem(problems, name, f"must be only an origin (scheme://host[:port], no path), {example}: the path is "
                                 "built from the profile's fields")  # fmt: skip
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        _problem(problems, name, "must use https:// for a host other than this machine (the bearer token "
                                 "would cross the network in clear text)")  # fmt: skip


def _environment_id(value: Any) -> str:
    """The ``id`` in Fabric's ``spark.fabric.environmentDetails`` JSON text (lower case), else ``""``."""
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return ""
    found = data.get("id") if isinstance(data, Mapping) else None
    return found.strip().lower() if isinstance(found, str) else ""


_NOT_IN_PROFILE = (
    "looks like a secret: secrets belong in the environment or Key Vault, not in the profile; remove it "
    "and set secret_source ('env': e.g. AIRFLOW_VAR_API_SECRET; 'keyvault': vault_url)"
)
# Marks of a secret's key: words found anywhere, and short ones only as a whole part (``db_pwd``).
_SECRET_WORDS = ("secret", "password", "passwd", "token", "apikey", "api_key", "credential", "private_key",
                 "account_key", "connection_string")  # fmt: skip
_SECRET_PARTS = frozenset({"pwd", "sas"})
_PROFILE_FIELDS = frozenset(f.name for f in fields(ClusterProfile))


def _looks_secret(key: str) -> bool:
    if key in _PROFILE_FIELDS:  # secret_source names where secrets live
        return False
    words = key.lower().replace("-", "_")
    return any(w in words for w in _SECRET_WORDS) or bool(_SECRET_PARTS & set(words.split("_")))
