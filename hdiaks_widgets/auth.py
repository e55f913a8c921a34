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
Secrets and tokens never appear in reprs, logs or exception messages. ``msal`` is imported here
only, and lazily.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from requests.cookies import extract_cookies_to_jar

from hdiaks_widgets import wire
from hdiaks_widgets.config import DEFAULT_AUTHORITY_HOST, DEFAULT_SCOPE, ClusterProfile
from hdiaks_widgets.errors import AuthError
from hdiaks_widgets.secrets import BearerToken

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests.sessions import _Settings

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

log = logging.getLogger(__name__)

_RETRIED = "_hdiaks_auth_retried"
_BODY_POS = "_hdiaks_body_pos"


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


def _redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _msal_error(result: Mapping[str, Any], what: str, *secrets: str | None) -> AuthError:
    error = str(result.get("error") or "unknown_error")
    description = _redact(" ".join(str(result.get("error_description") or "").split()), *secrets)
    return AuthError(f"{what}: {error}: {description}".rstrip(": "), error=error, description=description)


def _token_from(result: Mapping[str, Any]) -> BearerToken:
    return BearerToken(str(result["access_token"]), int(time.time()) + int(result.get("expires_in") or 0))


# -- service principal (client credentials) -----------------------------------------------------

_apps: dict[tuple[str, str], tuple[Any, bool | str]] = {}
_apps_lock = threading.Lock()


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
            raise AuthError(
                f"Cannot reach the identity provider at {authority}: {_redact(_first_line(exc), secret)}"
            ) from exc
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
            result = app.acquire_token_for_client(scopes=list(scopes))
        except (requests.RequestException, ValueError, OSError) as exc:
            raise AuthError(
                f"Cannot get a token from {self.authority}: {_redact(_first_line(exc), self.__secret)}"
            ) from exc
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


class _RetryOn401(AuthBase):
    """Adds a bearer token; on a 401 answer refreshes once and resends (like HTTPDigestAuth)."""

    scopes: list[str]

    def _token(self) -> BearerToken:
        raise NotImplementedError

    def _refresh(self) -> None:
        raise NotImplementedError

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token().token}"
        body = r.body
        if body is not None and hasattr(body, "tell"):
            setattr(r, _BODY_POS, body.tell())
        r.hooks["response"].append(self._handle_401)
        return r

    def _handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r.status_code != 401 or getattr(r.request, _RETRIED, False):
            return r
        log.debug("HTTP 401 from %s %s; refreshing the token once", r.request.method, r.request.url)
        self._refresh()
        r.content  # noqa: B018 - read the body so the connection can be reused
        r.close()
        prep = r.request.copy()
        pos = getattr(r.request, _BODY_POS, None)
        if pos is not None and hasattr(prep.body, "seek"):
            prep.body.seek(pos)  # type: ignore[union-attr]
        extract_cookies_to_jar(prep._cookies, r.request, r.raw)  # type: ignore[attr-defined,no-untyped-call]
        prep.prepare_cookies(prep._cookies)  # type: ignore[attr-defined]
        prep.headers["Authorization"] = f"Bearer {self._token().token}"
        setattr(prep, _RETRIED, True)
        prep.hooks["response"] = [h for h in prep.hooks["response"] if h != self._handle_401]
        retried: requests.Response = r.connection.send(prep, **kwargs)
        retried.history.append(r)
        retried.request = prep
        return retried


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
        self.provider = ClientCredentialsProvider(
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=client_secret,
            authority_host=authority_host,
            verify=verify,
            timeout=timeout,
        )
        self.scopes = [scope]

    def _token(self) -> BearerToken:
        return self.provider(self.scopes)

    def _refresh(self) -> None:
        self.provider.invalidate(self.scopes)

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
            f"environment; missing: {', '.join(missing)}."
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


# -- device code (a person in a notebook) --------------------------------------------------------


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
    ) -> None:
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
        self._force_refresh = False

    @property
    def status(self) -> DeviceStatus:
        return self._status

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
                    )
                except (requests.RequestException, ValueError, OSError) as exc:
                    raise AuthError(
                        f"Cannot reach the identity provider at {self.authority}: {_first_line(exc)}"
                    ) from exc
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
            raise AuthError(f"Cannot start device code sign-in at {self.authority}: {_first_line(exc)}") from exc
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
                self._status = "signed-in"
            elif flow.get("expires_at", 1) == 0:
                self._status = "cancelled"
                error = AuthError("Device code sign-in was cancelled.", error="cancelled")
            else:
                self._status = "failed"
                error = _msal_error(result, "Device code sign-in failed")
        except Exception as exc:  # a thread must report, not die silently
            self._status = "failed"
            error = AuthError(f"Device code sign-in failed: {_first_line(exc)}")
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
        """Blocking convenience for scripts: start, then wait."""
        self.start(on_code)
        if not self.wait(timeout):
            self.cancel()
            raise AuthError("Device code sign-in timed out.", error="timeout")

    def _token(self) -> BearerToken:
        app = self._public_app()
        accounts = app.get_accounts()
        if not accounts:
            raise AuthError("Not signed in: call start() (or sign_in()) and enter the code shown.")
        force, self._force_refresh = self._force_refresh, False
        try:
            result = app.acquire_token_silent_with_error(self.scopes, account=accounts[0], force_refresh=force)
        except (requests.RequestException, ValueError, OSError) as exc:
            raise AuthError(f"Cannot refresh the sign-in at {self.authority}: {_first_line(exc)}") from exc
        if not result or "access_token" not in result:
            raise _msal_error(result or {"error": "interaction_required"}, "The sign-in expired; sign in again")
        return _token_from(result)

    def _refresh(self) -> None:
        self._force_refresh = True

    def __repr__(self) -> str:
        return f"DeviceCodeAuth(authority={self.authority!r}, client_id={self.client_id!r}, status={self._status!r})"


# -- Basic and the profile switch ---------------------------------------------------------------


class BasicAuth(HTTPBasicAuth):
    """HTTP Basic auth (classic HDInsight cluster login) whose repr hides the password."""

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"
