"""``requests`` auth plug-ins: Entra ID service principal (MSAL), device code, Basic, none.

* :class:`ServicePrincipalAuth` — MSAL client credentials. One ``ConfidentialClientApplication``
  per (authority, client id) lives in a module cache, so its token cache serves every request
  (MSAL >= 1.23 answers from the cache; PROTOCOL.md §4). A 401 answer drops the cached token and
  resends the request once with a fresh one (MSAL has no ``force_refresh`` for this flow).
* :class:`DeviceCodeAuth` — a person signs in from a notebook: the code and link go to a
  callback, the wait runs in a background thread, ``cancel()`` ends it.
* :class:`BasicAuth` — classic HDInsight cluster login.

A local (or sovereign-cloud) authority works too: non-Microsoft hosts skip instance discovery,
and a CA bundle path is pinned on MSAL's HTTP session so ``REQUESTS_CA_BUNDLE`` cannot replace it.
Secrets and tokens never appear in reprs, logs or exception messages. ``msal`` is imported in this
package only (``tokens``, ``device_code``; ``base`` holds what both share), and lazily.
"""

from __future__ import annotations

from hdiaks_widgets.auth.device_code import DeviceCodeAuth, DeviceCodePrompt
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
    "authority_url",
    "clear_token_cache",
    "pinned_session",
    "vault_token_provider",
]
