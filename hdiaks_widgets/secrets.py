"""Secret stores: Azure Key Vault, environment variables, a dict.

The Key Vault store names secrets exactly like Airflow's ``AzureKeyVaultBackend`` (PROTOCOL.md
§5), so the notebook and the exported DAG read the same ``hdinsight-aks-variables-api-secret``.
The vault credential is a small azure-core ``TokenCredential`` around an injected token
provider (``auth.vault_token_provider``), so this module never imports ``msal`` and the Azure
SDK is imported here only, when a vault is actually used.

Errors are :class:`SecretError` naming the secret looked up (and how to create it), never its value.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from hdiaks_widgets.errors import HdiaksError, SecretError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from azure.core.credentials import AccessToken

    from hdiaks_widgets.config import ClusterProfile

__all__ = [
    "BearerToken",
    "CLIENT_ID_KEY",
    "CLIENT_SECRET_KEY",
    "DEFAULT_VARIABLES_PREFIX",
    "DictSecretStore",
    "EnvSecretStore",
    "KeyVaultSecretStore",
    "PASSWORD_KEY",
    "ProviderCredential",
    "SecretStore",
    "TENANT_ID_KEY",
    "TokenProvider",
    "VAULT_SCOPE",
    "build_path",
    "read_secrets",
    "store_for_profile",
]

log = logging.getLogger(__name__)

DEFAULT_VARIABLES_PREFIX = "hdinsight-aks-variables"
VAULT_SCOPE = "https://vault.azure.net/.default"
# Airflow Variable names used by the Microsoft sample DAGs (PROTOCOL.md §1).
CLIENT_ID_KEY = "api-client-id"
CLIENT_SECRET_KEY = "api-secret"  # noqa: S105 - a key name, not a secret
TENANT_ID_KEY = "tenant-id"
PASSWORD_KEY = "livy-password"  # noqa: S105 - classic HDInsight cluster login (Basic auth)

# The vault reader's variables are azure-identity's EnvironmentCredential's (the first credential
# DefaultAzureCredential tries); auth.vault_token_provider reads the same names.
KEY_VAULT_READER_HINT = (
    "Or keep them in Azure Key Vault: set the profile's secret_source to 'keyvault' and its vault_url; "
    "the identity that reads the vault then comes from AZURE_CLIENT_ID, AZURE_TENANT_ID and "
    "AZURE_CLIENT_SECRET (and optionally AZURE_AUTHORITY_HOST), the variables azure-identity's "
    "EnvironmentCredential and DefaultAzureCredential read; they identify the vault reader and do not "
    "replace the secrets named here."
)
_KV_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
# Public Key Vault DNS suffixes: the SDK's challenge-resource check is only meaningful for them.
_VAULT_SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".vault.microsoftazure.de")


@runtime_checkable
class SecretStore(Protocol):
    """Anything with ``get(key) -> str`` that raises :class:`SecretError` when it cannot."""

    def get(self, key: str) -> str: ...


@dataclass(frozen=True)
class BearerToken:
    """An access token and its expiry (Unix seconds); the token text never shows in reprs."""

    token: str = field(repr=False)
    expires_on: int


class TokenProvider(Protocol):
    """Returns a token for the given scopes, raising an ``HdiaksError`` when it cannot."""

    def __call__(self, scopes: Sequence[str], /) -> BearerToken: ...


def build_path(prefix: str | None, key: str, sep: str = "-") -> str:
    """The secret name Airflow's ``AzureKeyVaultBackend.build_path`` makes for ``key``.

    ``f"{prefix}{sep}{key}"`` (just ``key`` for an empty prefix) with every ``_`` replaced by
    ``sep`` — in the prefix too — e.g. ``spark_cluster_fqdn`` ->
    ``hdinsight-aks-variables-spark-cluster-fqdn``.
    """
    path = f"{prefix}{sep}{key}" if prefix else key
    return path.replace("_", sep)


class DictSecretStore:
    """Secrets from a mapping (tests, notebooks that already hold values)."""

    def __init__(self, values: Mapping[str, str], *, source: str = "the given secrets") -> None:
        self._values = dict(values)
        self._source = source

    def get(self, key: str) -> str:
        try:
            return self._values[key]
        except KeyError:
            raise SecretError(f"Secret {key!r} is not in {self._source}.", secret_name=key, missing=[key]) from None

    def __repr__(self) -> str:
        return f"DictSecretStore(keys={sorted(self._values)!r})"


class EnvSecretStore:
    """Secrets from environment variables, Airflow style first.

    ``api-secret`` is looked up as ``AIRFLOW_VAR_API-SECRET`` (what Airflow's environment
    backend reads: the key upper-cased), ``AIRFLOW_VAR_API_SECRET`` and ``API_SECRET``
    (shell-friendly spellings).
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, prefix: str = "AIRFLOW_VAR_") -> None:
        self._environ = environ
        self._prefix = prefix

    def names_for(self, key: str) -> list[str]:
        plain = re.sub(r"[^0-9A-Za-z]", "_", key).upper()
        names = [f"{self._prefix}{key.upper()}", f"{self._prefix}{plain}", plain]
        return list(dict.fromkeys(names))

    def get(self, key: str) -> str:
        return self.get_many([key])[key]

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """Every key's value; one :class:`SecretError` naming every key that is not set."""
        env = os.environ if self._environ is None else self._environ
        found: dict[str, str] = {}
        missing: list[str] = []
        for key in keys:
            value = next((env[n] for n in self.names_for(key) if env.get(n)), None)
            if value is None:
                missing.append(key)
            else:
                found[key] = value
        if missing:
            raise SecretError(self._missing_message(missing), secret_name=missing[0], missing=missing)
        return found

    def _shell_names(self, key: str) -> list[str]:
        return [n for n in self.names_for(key) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]

    def _missing_message(self, missing: Sequence[str]) -> str:
        if len(missing) == 1:
            key = missing[0]
            text = f"Secret {key!r} is not set in the environment; set one of {', '.join(self._shell_names(key))}."
        else:
            each = ", ".join(f"{k!r} (set {' or '.join(self._shell_names(k))})" for k in missing)
            text = f"{len(missing)} secrets are not set in the environment: {each}."
        return f"{text} {KEY_VAULT_READER_HINT}"

    def __repr__(self) -> str:
        return f"EnvSecretStore(prefix={self._prefix!r})"


class ProviderCredential:
    """An azure-core ``TokenCredential`` backed by a :class:`TokenProvider`.

    ``SecretClient`` calls ``get_token(scope, tenant_id=..., claims=None, enable_cae=True)``
    after the vault's 401 challenge; the provider (MSAL, in ``auth``) caches tokens itself.
    """

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        from azure.core.credentials import AccessToken

        token = self._provider(list(scopes) or [VAULT_SCOPE])
        return AccessToken(token.token, int(token.expires_on))

    def __repr__(self) -> str:
        return f"ProviderCredential(provider={type(self._provider).__name__})"


def _vault_name(vault_url: str) -> str:
    host = (urlsplit(vault_url).hostname or "").lower()
    if host.endswith(_VAULT_SUFFIXES):
        return host.split(".", 1)[0]
    return "<vault-name>"


class KeyVaultSecretStore:
    """Secrets from Azure Key Vault, named like Airflow's ``AzureKeyVaultBackend``.

    ``get("api-secret")`` reads ``<prefix>-api-secret``. For a vault outside the public Key
    Vault domains (the sandbox) the SDK's challenge-resource check is turned off and
    ``verify`` (a CA bundle path) is passed on every request.
    """

    def __init__(
        self,
        vault_url: str,
        token_provider: TokenProvider,
        *,
        prefix: str | None = DEFAULT_VARIABLES_PREFIX,
        sep: str = "-",
        verify: bool | str = True,
        verify_challenge_resource: bool | None = None,
        retry_total: int = 3,
        timeout: float = 30.0,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.vault_url = vault_url.strip().rstrip("/")
        self.prefix = prefix.rstrip(sep) if prefix else prefix
        self.sep = sep
        host = (urlsplit(self.vault_url).hostname or "").lower()
        if verify_challenge_resource is None:
            verify_challenge_resource = host.endswith(_VAULT_SUFFIXES)
        self._credential = ProviderCredential(token_provider)
        options: dict[str, Any] = {
            "verify_challenge_resource": verify_challenge_resource,
            "retry_total": retry_total,
            "connection_timeout": timeout,
            "read_timeout": timeout,
        }
        if verify is not True:
            # azure-core passes this per request, so REQUESTS_CA_BUNDLE cannot override it.
            options["connection_verify"] = verify
        if client_factory is None:
            from azure.keyvault.secrets import SecretClient

            client_factory = SecretClient
        self._client = client_factory(self.vault_url, self._credential, **options)

    def secret_name(self, key: str) -> str:
        return build_path(self.prefix, key, self.sep)

    def _create_hint(self, name: str) -> str:
        return (
            f"create it with: az keyvault secret set --vault-name {_vault_name(self.vault_url)} "
            f"--name {name} --value <value>"
        )

    def get(self, key: str) -> str:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
        )

        name = self.secret_name(key)
        if not _KV_NAME.match(name):
            raise SecretError(
                f"Key {key!r} gives the secret name {name!r}, which Key Vault does not allow "
                "(1-127 letters, digits and '-').",
                secret_name=name,
            )
        where = f"vault {self.vault_url}"
        try:
            secret = self._client.get_secret(name)
        except ResourceNotFoundError as exc:
            raise SecretError(
                f"Secret {name!r} (key {key!r}) was not found in {where}; {self._create_hint(name)}",
                secret_name=name,
                missing=[key],
            ) from exc
        except ClientAuthenticationError as exc:
            raise SecretError(
                f"The vault refused the token when reading secret {name!r} from {where} "
                f"(HTTP {exc.status_code}): {_service_message(exc)}",
                secret_name=name,
            ) from exc
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise SecretError(
                    f"Access denied (HTTP 403) reading secret {name!r} from {where}: the vault reader "
                    "identity (AZURE_CLIENT_ID) needs the 'Key Vault Secrets User' role or a 'get' "
                    f"secret access policy. Vault said: {_service_message(exc)}",
                    secret_name=name,
                ) from exc
            raise SecretError(
                f"Reading secret {name!r} from {where} failed (HTTP {exc.status_code}): "
                f"{_service_message(exc)}",
                secret_name=name,
            ) from exc
        except ServiceRequestError as exc:
            raise SecretError(
                f"Cannot reach {where} to read secret {name!r}: {_first_line(exc)}. Check vault_url, "
                "the network and the CA bundle (profile.verify).",
                secret_name=name,
            ) from exc
        except HdiaksError as exc:  # the token provider failed (AuthError)
            raise SecretError(
                f"Cannot get a token to read secret {name!r} from {where}: {exc}", secret_name=name
            ) from exc
        if secret.value is None:
            raise SecretError(f"Secret {name!r} in {where} has no value.", secret_name=name)
        log.debug("read secret %s from %s", name, self.vault_url)
        return str(secret.value)

    def __repr__(self) -> str:
        return f"KeyVaultSecretStore(vault_url={self.vault_url!r}, prefix={self.prefix!r})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _service_message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    code = getattr(error, "code", None)
    text = " ".join(str(message).split())
    return f"{code}: {text}" if code and not text.startswith(str(code)) else text


def read_secrets(store: SecretStore, keys: Sequence[str]) -> dict[str, str]:
    """Every key's value from ``store``; when some are missing, one :class:`SecretError` names
    them all (a store failing otherwise, such as a vault refusing the token, raises at once)."""
    get_many = getattr(store, "get_many", None)
    if callable(get_many):
        return dict(get_many(keys))
    found: dict[str, str] = {}
    absent: list[SecretError] = []
    for key in keys:
        try:
            found[key] = store.get(key)
        except SecretError as exc:
            if not exc.missing:
                raise
            absent.append(exc)
    if len(absent) == 1:
        raise absent[0]
    if absent:
        missing = [k for exc in absent for k in exc.missing]
        raise SecretError(
            f"{len(missing)} secrets are missing: " + " ".join(str(exc) for exc in absent),
            secret_name=absent[0].secret_name,
            missing=missing,
        )
    return found


def store_for_profile(
    profile: ClusterProfile,
    *,
    token_provider: TokenProvider | None = None,
    environ: Mapping[str, str] | None = None,
) -> SecretStore:
    """The secret store a profile names (``secret_source``: keyvault, env or none).

    A Key Vault store needs a ``token_provider`` for the vault reader; ``connect.build_auth``
    passes ``auth.vault_token_provider(profile)`` (AZURE_CLIENT_ID/TENANT_ID/CLIENT_SECRET).
    """
    source = profile.secret_source
    if source == "keyvault":
        if not profile.vault_url:
            raise SecretError(f"Profile {profile.name!r} reads secrets from Key Vault but has no vault_url.")
        if token_provider is None:
            raise SecretError(
                f"Profile {profile.name!r} reads secrets from Key Vault; pass a token provider "
                "(hdiaks_widgets.auth.vault_token_provider) or use hdiaks_widgets.connect.build_auth(profile)."
            )
        return KeyVaultSecretStore(
            profile.vault_url, token_provider, prefix=profile.variables_prefix, verify=profile.verify
        )
    if source == "env":
        return EnvSecretStore(environ)
    return DictSecretStore({}, source=f"profile {profile.name!r} (secret_source is 'none')")
