"""What both token flows share: the retry-once-on-401 bearer plug-in and MSAL result handling.

Secrets and tokens never appear in messages: ``_redact`` removes them from MSAL's texts.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar

from hdiaks_widgets.errors import AuthError
from hdiaks_widgets.secrets import BearerToken

__all__: list[str] = []

log = logging.getLogger(__name__)

_RETRIED = "_hdiaks_auth_retried"
_BODY_POS = "_hdiaks_body_pos"


def _redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


_CERT_FAILED = re.compile(r"certificate verify failed:?\s*([^()'\"]*)", re.IGNORECASE)


def _request_failed(what: str, exc: BaseException, *secrets: str | None) -> AuthError:
    """``what`` failed on the network: an untrusted TLS certificate gets the CA-bundle advice."""
    text = _redact(str(exc), *secrets)
    match = _CERT_FAILED.search(text)
    if match:
        reason = " ".join(("certificate verify failed: " + match.group(1)).split()).rstrip(": ")
        return AuthError(
            f"{what}: the identity provider's TLS certificate is not trusted ({reason}). If your "
            "organisation (or the local sandbox) signs it with its own CA, set the profile's 'verify' to "
            "the path of that CA bundle, a PEM file (`hdiaks sandbox --auth` prints its CA path)",
            error="tls",
        )
    return AuthError(f"{what}: {_redact(_first_line(exc), *secrets)}")


def _msal_error(result: Mapping[str, Any], what: str, *secrets: str | None) -> AuthError:
    error = str(result.get("error") or "unknown_error")
    description = _redact(" ".join(str(result.get("error_description") or "").split()), *secrets)
    return AuthError(f"{what}: {error}: {description}".rstrip(": "), error=error, description=description)


def _token_from(result: Mapping[str, Any]) -> BearerToken:
    return BearerToken(str(result["access_token"]), int(time.time()) + int(result.get("expires_in") or 0))


class _RetryOn401(AuthBase):
    """Adds a bearer token; on a 401 answer resends once with a fresh one (like HTTPDigestAuth).

    The refresh is decided per request, from the token that request carried: when the cache
    already holds another token (a concurrent request met the same 401 and renewed it), the
    resend uses that one; otherwise this request renews it. Renewals run one at a time, so
    401s that interleave across threads cost one refresh, and no request's 401 can make
    another request refresh (or skip the refresh it needs).
    """

    scopes: list[str]

    def __init__(self) -> None:
        self._refresh_lock = threading.Lock()

    def _token(self, *, refresh: bool = False) -> BearerToken:
        """A current token; ``refresh=True`` bypasses the cached access token."""
        raise NotImplementedError

    def _token_after_401(self, refused: str | None) -> BearerToken:
        with self._refresh_lock:
            current = self._token()
            if refused is not None and f"Bearer {current.token}" != refused:
                return current
            return self._token(refresh=True)

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
        log.debug("HTTP 401 from %s %s; resending once with a fresh token", r.request.method, r.request.url)
        r.content  # noqa: B018 - read the body so the connection can be reused
        r.close()
        token = self._token_after_401(r.request.headers.get("Authorization"))
        prep = r.request.copy()
        pos = getattr(r.request, _BODY_POS, None)
        if pos is not None and hasattr(prep.body, "seek"):
            prep.body.seek(pos)  # type: ignore[union-attr]
        extract_cookies_to_jar(prep._cookies, r.request, r.raw)  # type: ignore[attr-defined,no-untyped-call]
        prep.prepare_cookies(prep._cookies)  # type: ignore[attr-defined]
        prep.headers["Authorization"] = f"Bearer {token.token}"
        setattr(prep, _RETRIED, True)
        prep.hooks["response"] = [h for h in prep.hooks["response"] if h != self._handle_401]
        retried: requests.Response = r.connection.send(prep, **kwargs)
        retried.history.append(r)
        retried.request = prep
        return retried
