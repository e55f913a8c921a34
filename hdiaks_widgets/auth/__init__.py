"""``requests`` auth plug-ins: Entra ID service principal (MSAL), device code, Basic, none.

* :class:`ServicePrincipalAuth` — MSAL client credentials. One ``ConfidentialClientApplication``
  per (authority, client id) lives in a module cache, so its token cache serves every request
  (MSAL >= 1.23 answers from the cache; PROTOCOL.md §4). A 401 answer drops the cached token and
  resends the request once with a fresh one (MSAL has no ``force_refresh`` for this flow).
* :class:`DeviceCodeAuth` — a person signs in from a notebook: the code and link go to a
  callback, the wait runs in a background thread, ``cancel()`` ends it. The sign-in is kept in a
  per-user token cache on disk (``cache``: msal-extensions, 0600 file or the platform's keyring),
  so a restarted kernel needs no new code; ``DeviceCodeAuth.sign_out()`` / :func:`sign_out` end it.
* :class:`BasicAuth` — classic HDInsight cluster login.

A local (or sovereign-cloud) authority works too: non-Microsoft hosts skip instance discovery,
and a CA bundle path is pinned on MSAL's HTTP session so ``REQUESTS_CA_BUNDLE`` cannot replace it.
Secrets and tokens never appear in reprs, logs or exception messages. ``msal`` is imported in this
package only (``tokens``, ``device_code``, ``cache``; ``base`` holds what both flows share), and lazily.
"""

from __future__ import annotations

from hdiaks_widgets.auth.cache import TokenCacheStore
from hdiaks_widgets.auth.device_code import DeviceCodeAuth, DeviceCodePrompt, sign_out
from hdiaks_widgets.auth.device_code import DeviceStatus as DeviceStatus
from hdiaks_widgets.auth.tokens import (
    BasicAuth,
    ClientCredentialsProvider,
    ServicePrincipalAuth,
    authority_url,
    clear_token_cache,
    pinned_session,
    vault_token_provider,
)

__all__ = [
    "BasicAuth",
    "ClientCredentialsProvider",
    "DeviceCodeAuth",
    "DeviceCodePrompt",
    "ServicePrincipalAuth",
    "TokenCacheStore",
    "authority_url",
    "clear_token_cache",
    "pinned_session",
    "sign_out",
    "vault_token_provider",
]
