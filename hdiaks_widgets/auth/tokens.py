"""Entra ID tokens through MSAL: client credentials for a service principal, Basic auth.

One ``ConfidentialClientApplication`` per (authority, client id) lives in a module cache, so its
token cache serves every request (MSAL >= 1.23 answers from the cache; PROTOCOL.md §4). A 401
answer drops the cached token and resends the request once with a fresh one (MSAL has no
``force_refresh`` for this flow). ``msal`` is imported lazily, inside the functions that use it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests
from requests.auth import HTTPBasicAuth

from hdiaks_widgets import wire
from hdiaks_widgets.auth.base import _msal_error, _request_failed, _RetryOn401, _token_from
from hdiaks_widgets.config import DEFAULT_AUTHORITY_HOST, DEFAULT_SCOPE, ClusterProfile
from hdiaks_widgets.errors import AuthError
from hdiaks_widgets.secrets import BearerToken

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests.sessions import _Settings

__all__ = [
    "BasicAuth",
    "ClientCredentialsProvider",
    "ServicePrincipalAuth",
    "authority_url",
    "clear_token_cache",
    "pinned_session",
    "vault_token_provider",
]

log = logging.getLogger(__name__)


def authority_url(authority_host: str, tenant_id: str) -> str:
    """``https://host[:port]/<tenant>`` — the authority form MSAL accepts."""
    host = authority_host.strip().rstrip("/")
    if "://" not in host:  # AZURE_AUTHORITY_HOST may be a bare host name
        host = f"https://{host}"
    tenant = tenant_id.strip().strip("/")
    if not tenant:
        raise AuthError("A tenant id is required to build the authority URL.")
    return f"{host}/{tenant}"


_is_microsoft_host = wire.is_microsoft_authority


class _PinnedSession(requests.Session):
    """A session whose ``verify`` (a CA path or False) beats REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.

    requests lets those variables override ``Session.verify`` (MACHINE-NOTES, HTTPS). Unlike
    ``trust_env=False`` this keeps proxy settings from the environment working.
    """

    def __init__(self, verify: bool | str) -> None:
        super().__init__()
        self.verify = verify
        self._pinned = verify

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._pinned is not True and verify in (None, True):
            settings["verify"] = self._pinned
        return settings


def pinned_session(verify: bool | str = True) -> requests.Session:
    """A ``requests.Session`` honouring ``verify`` even when REQUESTS_CA_BUNDLE is set."""
    return _PinnedSession(verify) if verify is not True else requests.Session()


# -- service principal (client credentials) -----------------------------------------------------

_apps: dict[tuple[str, str], tuple[Any, bool | str]] = {}
_apps_lock = threading.Lock()
# One token request at a time per (authority, client): monitors started together in one kernel
# would otherwise each miss the empty cache and ask Entra at once (3 requests for 10 threads in
# bench/token_economy.py); the others now wait and take the token from msal's cache.
_acquire_locks: dict[tuple[str, str], threading.Lock] = {}


def _acquire_lock(authority: str, client_id: str) -> threading.Lock:
    with _apps_lock:
        return _acquire_locks.setdefault((authority, client_id), threading.Lock())


def clear_token_cache() -> None:
    """Forget every cached MSAL application and token (e.g. after rotating a secret)."""
    with _apps_lock:
        _apps.clear()


def _confidential_app(authority: str, client_id: str, secret: str, verify: bool | str, timeout: float) -> Any:
    """The cached app for (authority, client id); replaced when the secret or CA changes."""
    import msal

    key = (authority, client_id)
    with _apps_lock:
        cached = _apps.get(key)
        if cached is not None and cached[1] == verify and cached[0].client_credential == secret:
            return cached[0]
        try:
            app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=secret,
                authority=authority,
                http_client=pinned_session(verify),
                instance_discovery=None if _is_microsoft_host(authority) else False,
                timeout=timeout,
            )
        except (requests.RequestException, ValueError, OSError) as exc:
            raise _request_failed(f"Cannot reach the identity provider at {authority}", exc, secret) from exc
        _apps[key] = (app, verify)
        return app


class ClientCredentialsProvider:
    """Tokens for a service principal (MSAL client credentials), cached per (authority, client).

    Calling it with scopes returns a :class:`~hdiaks_widgets.secrets.BearerToken`; it is the
    token provider ``secrets.KeyVaultSecretStore`` takes.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        if not client_id or not client_secret:
            raise AuthError("A service principal needs a client id and a client secret.")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.authority = authority_url(authority_host, tenant_id)
        self.verify = verify
        self.timeout = timeout
        self.__secret = client_secret

    def _app(self) -> Any:
        return _confidential_app(self.authority, self.client_id, self.__secret, self.verify, self.timeout)

    def __call__(self, scopes: Sequence[str], /) -> BearerToken:
        app = self._app()
        try:
            with _acquire_lock(self.authority, self.client_id):
                result = app.acquire_token_for_client(scopes=list(scopes))
        except (requests.RequestException, ValueError, OSError) as exc:
            raise _request_failed(f"Cannot get a token from {self.authority}", exc, self.__secret) from exc
        if "access_token" not in result:
            raise _msal_error(
                result,
                f"Entra ID refused a token for client {self.client_id} in tenant {self.tenant_id}",
                self.__secret,
            )
        log.debug(
            "token for client %s scopes %s from %s", self.client_id, " ".join(scopes), result.get("token_source")
        )
        return _token_from(result)

    def invalidate(self, scopes: Sequence[str]) -> None:
        """Drop cached access tokens for ``scopes`` so the next call asks the identity provider."""
        app = self._app()
        cache = app.token_cache
        wanted = {s.lower() for s in scopes}
        for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN, query={"client_id": self.client_id})):
            if {s.lower() for s in str(item.get("target", "")).split()} == wanted:
                cache.remove_at(item)

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsProvider(authority={self.authority!r}, client_id={self.client_id!r}, "
            "client_secret=***)"
        )


class ServicePrincipalAuth(_RetryOn401):
    """Bearer tokens for a service principal (client credentials), e.g. for HDInsight on AKS."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        scope: str = DEFAULT_SCOPE,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.provider = ClientCredentialsProvider(
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=client_secret,
            authority_host=authority_host,
            verify=verify,
            timeout=timeout,
        )
        self.scopes = [scope]

    def _token(self, *, refresh: bool = False) -> BearerToken:
        if refresh:  # MSAL has no force_refresh for client credentials: drop the cached token
            self.provider.invalidate(self.scopes)
        return self.provider(self.scopes)

    def token(self) -> BearerToken:
        """A current token (from MSAL's cache when possible)."""
        return self._token()

    def __repr__(self) -> str:
        return (
            f"ServicePrincipalAuth(authority={self.provider.authority!r}, "
            f"client_id={self.provider.client_id!r}, scope={self.scopes[0]!r})"
        )


def vault_token_provider(
    profile: ClusterProfile | None = None, *, environ: Mapping[str, str] | None = None
) -> ClientCredentialsProvider:
    """The Key Vault reader's token provider, configured like azure-identity's environment
    credential: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET and optional
    AZURE_AUTHORITY_HOST (else the profile's ``authority_host``)."""
    env = os.environ if environ is None else environ
    names = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise AuthError(
            f"Reading secrets from Key Vault needs the vault reader's {', '.join(names)} in the "
            f"environment (the names azure-identity's EnvironmentCredential reads); missing: {', '.join(missing)}."
        )
    host = env.get("AZURE_AUTHORITY_HOST") or (profile.authority_host if profile else DEFAULT_AUTHORITY_HOST)
    return ClientCredentialsProvider(
        tenant_id=env["AZURE_TENANT_ID"],
        client_id=env["AZURE_CLIENT_ID"],
        client_secret=env["AZURE_CLIENT_SECRET"],
        authority_host=host,
        verify=profile.verify if profile else True,
        timeout=profile.read_timeout if profile else 30.0,
    )


class BasicAuth(HTTPBasicAuth):
    """HTTP Basic auth (classic HDInsight cluster login) whose repr hides the password."""

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"
