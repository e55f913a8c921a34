"""The composition root: a ``ClusterProfile`` becomes a ready ``LivyClient`` with its auth.

Level 2. ``livy`` (the thin client) knows nothing of ``auth`` or ``secrets``; this module wires
them: it reads the secrets a profile names (environment, Key Vault, or a store the caller
passes), builds the auth plug-in (service principal, device code, Basic, none) and hands it to
the client. ``LivyClient.from_profile`` is this module's :func:`from_profile`, registered when
the package is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import requests
from requests.auth import AuthBase

from hdiaks_widgets import dialects, livy, wire
from hdiaks_widgets.auth import (
    BasicAuth,
    DeviceCodeAuth,
    DeviceCodePrompt,
    ServicePrincipalAuth,
    vault_token_provider,
)
from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.errors import AuthError, SecretError
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.secrets import (
    CLIENT_ID_KEY,
    CLIENT_SECRET_KEY,
    PASSWORD_KEY,
    TENANT_ID_KEY,
    SecretStore,
    TokenProvider,
    read_secrets,
    store_for_profile,
)

__all__ = ["build_auth", "from_profile"]


def build_auth(
    profile: ClusterProfile,
    secret_store: SecretStore | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    on_device_code: Callable[[DeviceCodePrompt], None] | None = None,
) -> AuthBase | None:
    """The auth plug-in ``profile.auth_method`` asks for (``None`` for no auth); Entra ID tokens
    are asked for ``profile.token_scope`` (the flavour's scope unless the profile names one).

    Secrets come from ``secret_store`` (default: ``secrets.store_for_profile`` with the Key
    Vault reader from the environment): ``api-client-id``, ``api-secret`` and ``tenant-id``
    for a service principal (``profile.client_id``/``tenant_id`` win when set), ``livy-password``
    for Basic. Device code sign-in is started by the caller (``auth.start(...)``).
    """
    method = profile.auth_method
    if method == "none":
        return None
    timeout = float(profile.read_timeout)
    if method == "device-code":
        if not profile.client_id or not profile.tenant_id:
            raise AuthError(f"Profile {profile.name!r}: device code sign-in needs client_id and tenant_id.")
        return DeviceCodeAuth(
            tenant_id=profile.tenant_id,
            client_id=profile.client_id,
            scope=profile.token_scope,
            authority_host=profile.authority_host,
            verify=profile.verify,
            timeout=timeout,
            on_code=on_device_code,
        )
    store = secret_store if secret_store is not None else _default_store(profile, environ)
    if method == "basic":
        if not profile.username:
            raise AuthError(f"Profile {profile.name!r}: Basic auth needs a username.")
        return BasicAuth(profile.username, store.get(PASSWORD_KEY))
    if method == "service-principal":
        # Read together, so a message names every missing secret, not only the first.
        keys = [k for k, given in ((TENANT_ID_KEY, profile.tenant_id), (CLIENT_ID_KEY, profile.client_id),
                                   (CLIENT_SECRET_KEY, None)) if not given]  # fmt: skip
        found = read_secrets(store, keys)
        return ServicePrincipalAuth(
            tenant_id=profile.tenant_id or found[TENANT_ID_KEY],
            client_id=profile.client_id or found[CLIENT_ID_KEY],
            client_secret=found[CLIENT_SECRET_KEY],
            scope=profile.token_scope,
            authority_host=profile.authority_host,
            verify=profile.verify,
            timeout=timeout,
        )
    raise AuthError(f"Profile {profile.name!r}: unknown auth method {method!r}.")


def _default_store(profile: ClusterProfile, environ: Mapping[str, str] | None) -> SecretStore:
    provider: TokenProvider | None = None
    if profile.secret_source == "keyvault":  # noqa: S105 - a source name, not a secret
        try:
            provider = vault_token_provider(profile, environ=environ)
        except AuthError as exc:
            raise SecretError(str(exc)) from exc
    return store_for_profile(profile, token_provider=provider, environ=environ)


def from_profile(
    profile: ClusterProfile,
    *,
    secret_store: SecretStore | None = None,
    session: requests.Session | None = None,
    retry: RetryPolicy | None = None,
    environ: Mapping[str, str] | None = None,
    on_device_code: Callable[[DeviceCodePrompt], None] | None = None,
    client_class: type[LivyClient] = LivyClient,
) -> LivyClient:
    """A client for a profile, its auth method resolved and its secrets read.

    ``environ`` replaces ``os.environ`` where settings come from the environment (the Key
    Vault reader's ``AZURE_*`` variables, or an environment secret store).
    ``on_device_code`` receives the code to show when a device-code profile signs in.
    """
    profile.validate()
    auth = build_auth(profile, secret_store=secret_store, environ=environ, on_device_code=on_device_code)
    client = client_class(
        profile.base_url,
        session=session,
        auth=auth,
        verify=profile.verify,
        timeout=(profile.connect_timeout, profile.read_timeout),
        retry=retry,
        # The dialect decides what the client speaks, X-Requested-By included (Fabric and Synapse
        # have no CSRF filter; Apache Livy and classic HDInsight's gateway want it).
        dialect=dialects.dialect_of(profile.flavour),
    )
    if profile.flavour == "hdinsight":
        base = profile.base_url
        client.log_url_rewrite = lambda url: wire.gateway_log_url(url, base)
    return client


livy.register_profile_connector(from_profile)
