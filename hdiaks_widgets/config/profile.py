"""``ClusterProfile``: where to submit — flavour, endpoint, Livy path, auth and its settings, TLS,
timeouts. Holds no secret values, only where to find them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from hdiaks_widgets import wire
from hdiaks_widgets.config.validators import (
    _CONTROL,
    _KV_NAME,
    _check_host,
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

Flavour = Literal["hdinsight-aks", "hdinsight", "livy", "sandbox"]
AuthMethod = Literal["none", "basic", "service-principal", "device-code"]
SecretSource = Literal["keyvault", "env", "none"]

DEFAULT_SCOPE = "https://hilo.azurehdinsight.net/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_VARIABLES_PREFIX = "hdinsight-aks-variables"


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how to reach Livy. Holds no secret values, only where to find them."""

    name: str = "sandbox"
    flavour: Flavour = "sandbox"
    fqdn: str | None = None  # hdinsight-aks: cluster FQDN; hdinsight: cluster name or FQDN
    url: str | None = None  # livy / sandbox: base URL of the Livy server
    livy_path: str | None = None  # None -> the flavour's default (/p/livy, /livy, "")
    auth: AuthMethod | None = None  # None -> the flavour's default
    scope: str = DEFAULT_SCOPE
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

    @property
    def auth_method(self) -> AuthMethod:
        """The configured method, or the flavour's default when ``auth`` is not given."""
        if self.auth is not None:
            return self.auth
        self._check_flavour()
        method: AuthMethod = wire.DEFAULT_AUTH[self.flavour]  # type: ignore[assignment]
        return method

    @property
    def base_url(self) -> str:
        """The Livy endpoint root, e.g. ``https://{fqdn}/p/livy`` (no trailing slash)."""
        self._check_flavour()
        return wire.livy_base_url(self.flavour, fqdn=self.fqdn, url=self.url, livy_path=self.livy_path)

    def _check_flavour(self) -> None:
        if self.flavour not in wire.DEFAULT_LIVY_PATH:
            raise ConfigError(
                f"must be one of {', '.join(get_args(Flavour))}, got {self.flavour!r}",
                field="profile.flavour",
            )

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
            _check_host(self.fqdn if self.fqdn is not None else "", p + "fqdn", problems)
        else:
            url = self.url if isinstance(self.url, str) else ""
            parts = _split_url(url)
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
                _problem(
                    problems,
                    p + "url",
                    "must be the Livy server's URL, e.g. http://127.0.0.1:8998",
                )
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
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                _problem(problems, p + tname, f"must be a number of seconds above 0, got {value!r}")
        return problems

    def _auth_problems(self, method: AuthMethod) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        p = "profile."
        if method in ("service-principal", "device-code"):
            if not _is_https_url(self.scope):
                _problem(problems, p + "scope", f"must be an https resource scope, e.g. {DEFAULT_SCOPE}")
            elif method == "service-principal" and not self.scope.endswith("/.default"):
                # The client-credentials grant accepts only '<resource>/.default' scopes.
                _problem(
                    problems,
                    p + "scope",
                    f"must end in /.default for service-principal sign-in, e.g. {DEFAULT_SCOPE}",
                )
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
        if method == "basic" and not self.username:
            _problem(problems, p + "username", "is required for basic auth, e.g. 'admin'")
        return problems

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
