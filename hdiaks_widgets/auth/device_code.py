"""Device code sign-in for a person in a notebook (``PublicClientApplication``).

The code and link go to a callback, the wait runs in a background thread, ``cancel()`` ends it.
The sign-in is kept in a per-user token cache on disk (:mod:`hdiaks_widgets.auth.cache`), so a new
kernel or process gets tokens without a prompt (``restore()``, or simply the next request);
``sign_out()`` removes it. ``msal`` is imported lazily, when the first sign-in starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from hdiaks_widgets.auth.base import _msal_error, _request_failed, _RetryOn401, _token_from
from hdiaks_widgets.auth.cache import TokenCacheStore, clear_sign_in
from hdiaks_widgets.auth.tokens import _is_microsoft_host, authority_url, pinned_session
from hdiaks_widgets.config import DEFAULT_AUTHORITY_HOST, DEFAULT_SCOPE, ClusterProfile
from hdiaks_widgets.errors import AuthError
from hdiaks_widgets.secrets import BearerToken

__all__ = ["DeviceCodeAuth", "DeviceCodePrompt", "DeviceStatus", "sign_out"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What to show the person: open ``verification_uri`` and enter ``user_code``."""

    user_code: str
    verification_uri: str
    message: str
    expires_at: float


DeviceStatus = Literal["signed-out", "pending", "signed-in", "failed", "cancelled"]


class DeviceCodeAuth(_RetryOn401):
    """Device code sign-in (``PublicClientApplication.initiate_device_flow``) for notebook users.

    ``start(on_code)`` shows the code through ``on_code`` and waits for the sign-in in a
    background thread, so the notebook stays responsive; ``wait()`` blocks until it ends,
    ``cancel()`` stops it. Requests then use ``acquire_token_silent`` (cache, refresh token).

    ``token_cache`` (default: the per-user cache of this authority, client id and scope) keeps
    the sign-in across kernel restarts; ``restore()`` signs in from it without a prompt (a
    network call: run it off the kernel thread), ``sign_out()`` forgets it.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        scope: str = DEFAULT_SCOPE,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        verify: bool | str = True,
        timeout: float = 30.0,
        on_code: Callable[[DeviceCodePrompt], None] | None = None,
        token_cache: TokenCacheStore | None = None,
    ) -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.authority = authority_url(authority_host, tenant_id)
        self.scopes = [scope]
        self.verify = verify
        self.timeout = timeout
        self.on_code = on_code
        self._app: Any = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._flow: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._error: AuthError | None = None
        self._status: DeviceStatus = "signed-out"
        self.token_cache = token_cache or TokenCacheStore(self.authority, client_id, self.scopes)
        self._cache_refused = False  # the cached sign-in was refused (expired): status says signed-out

    @property
    def status(self) -> DeviceStatus:
        """``signed-in`` also when another kernel or process left this profile's account in the
        token cache (read from the local cache file, no network call); a cached sign-in that the
        identity provider refused since reads ``signed-out`` again, so the user can sign in anew."""
        if self._status == "signed-out" and not self._cache_refused and self._cached_account():
            return "signed-in"
        if self._status == "signed-in" and self.token_cache.persisted and not self.token_cache.location.exists():
            return "signed-out"  # another kernel or process signed out
        return self._status

    def _cached_account(self) -> bool:
        store = self.token_cache
        if store.mode == "memory" or not store.location.exists():
            return False  # nothing on disk: never open (or probe) a store just to answer this
        try:
            cache = store.msal_cache()
            return any(True for _ in cache.search(cache.CredentialType.ACCOUNT))
        except Exception as exc:  # noqa: BLE001 - a status read must not fail; the next request says why
            log.debug("could not read the token cache: %s", type(exc).__name__)
            return False

    def _public_app(self) -> Any:
        import msal

        with self._lock:
            if self._app is None:
                try:
                    self._app = msal.PublicClientApplication(
                        self.client_id,
                        authority=self.authority,
                        http_client=pinned_session(self.verify),
                        instance_discovery=None if _is_microsoft_host(self.authority) else False,
                        timeout=self.timeout,
                        token_cache=self.token_cache.msal_cache(),
                    )
                except (requests.RequestException, ValueError, OSError) as exc:
                    raise _request_failed(f"Cannot reach the identity provider at {self.authority}", exc) from exc
            return self._app

    def start(
        self,
        on_code: Callable[[DeviceCodePrompt], None] | None = None,
        *,
        on_done: Callable[[AuthError | None], None] | None = None,
    ) -> DeviceCodePrompt:
        """Begin sign-in: returns (and passes to ``on_code``) the code to show; does not block."""
        app = self._public_app()
        if self._thread is not None and self._thread.is_alive():
            raise AuthError("A device code sign-in is already in progress; cancel() it first.")
        try:
            flow = app.initiate_device_flow(scopes=self.scopes)
        except (requests.RequestException, ValueError, OSError) as exc:
            raise _request_failed(f"Cannot start device code sign-in at {self.authority}", exc) from exc
        if "user_code" not in flow:
            raise _msal_error(flow, f"Entra ID refused device code sign-in for client {self.client_id}")
        prompt = DeviceCodePrompt(
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri", "")),
            message=str(flow.get("message", "")),
            expires_at=float(flow.get("expires_at", 0)),
        )
        self._flow, self._error, self._status = flow, None, "pending"
        self._done.clear()
        callback = on_code or self.on_code
        if callback is not None:
            callback(prompt)
        self._thread = threading.Thread(
            target=self._poll, args=(app, flow, on_done), name="hdiaks-device-code", daemon=True
        )
        self._thread.start()
        return prompt

    def _poll(self, app: Any, flow: dict[str, Any], on_done: Callable[[AuthError | None], None] | None) -> None:
        error: AuthError | None = None
        try:
            result = app.acquire_token_by_device_flow(flow)
            if "access_token" in result:
                self._status, self._cache_refused = "signed-in", False
            elif flow.get("expires_at", 1) == 0:
                self._status = "cancelled"
                error = AuthError("Device code sign-in was cancelled.", error="cancelled")
            else:
                self._status = "failed"
                error = _msal_error(result, "Device code sign-in failed")
        except Exception as exc:  # a thread must report, not die silently
            self._status = "failed"
            error = _request_failed("Device code sign-in failed", exc)
        self._error = error
        self._done.set()
        if on_done is not None:
            on_done(error)

    def cancel(self) -> None:
        """Stop waiting for the sign-in (MSAL checks ``expires_at`` about once a second)."""
        if self._flow is not None:
            self._flow["expires_at"] = 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until sign-in ends; True when signed in, AuthError when it failed or was cancelled."""
        if not self._done.wait(timeout):
            return False
        if self._error is not None:
            raise self._error
        return True

    def sign_in(self, on_code: Callable[[DeviceCodePrompt], None] | None = None, timeout: float | None = None) -> None:
        """Blocking convenience for scripts: the cached sign-in when there is one, else start, then wait."""
        if self.restore():
            return
        self.start(on_code)
        if not self.wait(timeout):
            self.cancel()
            raise AuthError("Device code sign-in timed out.", error="timeout")

    def restore(self) -> bool:
        """Sign in from the token cache, without a prompt: True when a cached account still gets a
        token (status ``signed-in``), False when there is none or it needs a new sign-in; AuthError
        (one sentence) when the identity provider cannot be reached. A network call: not on the
        kernel thread."""
        if self._status == "pending":
            return False
        app = self._public_app()
        if not app.get_accounts():
            return False
        try:
            self._token()
        except AuthError as exc:
            if exc.error in ("interaction_required", "invalid_grant"):
                log.info("the cached sign-in for client %s can no longer be used (%s)", self.client_id, exc.error)
                return False
            raise
        return True

    def sign_out(self) -> bool:
        """Forget the sign-in: cancel a pending one, remove the accounts and tokens from the cache
        (in memory and on disk). True when there was something to remove. No network call."""
        self.cancel()
        removed = self.token_cache.clear()
        self._status, self._cache_refused = "signed-out", False
        log.info("signed out of client %s at %s", self.client_id, self.authority)
        return removed

    def token(self) -> BearerToken:
        """A current token (from the cache when possible); AuthError when not signed in."""
        return self._token()

    def _token(self, *, refresh: bool = False) -> BearerToken:
        app = self._public_app()
        accounts = app.get_accounts()
        if not accounts:
            if self._status == "signed-in":
                self._status = "signed-out"  # signed out in another kernel or process
            raise AuthError("Not signed in: call start() (or sign_in()) and enter the code shown.")
        try:
            result = app.acquire_token_silent_with_error(self.scopes, account=accounts[0], force_refresh=refresh)
        except (requests.RequestException, ValueError, OSError) as exc:
            raise _request_failed(f"Cannot refresh the sign-in at {self.authority}", exc) from exc
        if not result or "access_token" not in result:
            if self._status != "pending":
                self._status, self._cache_refused = "signed-out", True
            raise _msal_error(result or {"error": "interaction_required"}, "The sign-in expired; sign in again")
        if self._status == "signed-out":
            self._status, self._cache_refused = "signed-in", False  # from a cache another process wrote
        return _token_from(result)

    def __repr__(self) -> str:
        return f"DeviceCodeAuth(authority={self.authority!r}, client_id={self.client_id!r}, status={self._status!r})"


def sign_out(profile: ClusterProfile) -> bool:
    """Remove the device-code sign-in a profile keeps on disk (no MSAL app, no network): what a
    "Sign out" control calls when it holds a profile rather than a :class:`DeviceCodeAuth`.
    True when there was one."""
    if not profile.tenant_id or not profile.client_id:
        raise AuthError(f"Profile {profile.name!r}: sign_out needs the profile's tenant_id and client_id.")
    authority = authority_url(profile.authority_host, profile.tenant_id)
    return clear_sign_in(authority, profile.client_id, [profile.token_scope])
