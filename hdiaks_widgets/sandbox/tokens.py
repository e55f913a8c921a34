"""Tokens of the sandbox identity endpoint: HS256-signed JWTs, their signing key, revocation.

The signing key lives under the sandbox root (``identity/signing.key``), so a Livy sandbox in
another process can check tokens with :func:`make_bearer_authorizer`; ``identity/generation``
counts revocations (a token of an older generation is refused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Authorizer", "make_bearer_authorizer"]


# Same shape as ``sandbox.server.Authorizer``: given the request headers, an error message for
# a 401 answer, or None when the request may proceed.
Authorizer = Callable[[Mapping[str, str]], "str | None"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, claims: Mapping[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = _b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def _identity_dir(root: str | os.PathLike[str]) -> Path:
    return Path(root) / "identity"


def _signing_key(root: str | os.PathLike[str]) -> bytes:
    """The HMAC key, created at first start; shared through the file with other processes."""
    path = _identity_dir(root) / "signing.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".signing.key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic "create if absent": a concurrent starter keeps its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


def _generation_path(root: str | os.PathLike[str]) -> Path:
    return _identity_dir(root) / "generation"


def _read_generation(root: str | os.PathLike[str]) -> int:
    try:
        return int(_generation_path(root).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


class _TokenValidator:
    """Checks that a bearer token was signed by this sandbox, is unexpired and not revoked."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        audience: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = Path(root)
        self._key = _signing_key(root)
        self._audience = audience.rstrip("/") if audience else None
        self._clock = clock

    def __repr__(self) -> str:
        return f"_TokenValidator(root={str(self._root)!r}, audience={self._audience!r})"

    def validate(self, authorization: str | None) -> tuple[dict[str, Any] | None, str | None]:
        """``(claims, None)`` for a good token, ``(None, message)`` otherwise."""
        if not authorization:
            return None, "missing bearer token: send 'Authorization: Bearer <token>'"
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "the Authorization header must be 'Bearer <token>'"
        parts = token.strip().split(".")
        if len(parts) != 3:
            return None, "malformed bearer token (not a JWT)"
        expected = _b64url(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None, "the bearer token was not issued by this sandbox's identity endpoint"
        try:
            claims = json.loads(_b64url_decode(parts[1]))
        except ValueError:
            return None, "malformed bearer token (unreadable claims)"
        if not isinstance(claims, dict):
            return None, "malformed bearer token (unreadable claims)"
        expires = float(claims.get("exp", 0))
        if expires <= self._clock():
            return None, f"the bearer token expired at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}"
        if int(claims.get("gen", 0)) < _read_generation(self._root):
            return None, "the bearer token was revoked; get a new one"
        if self._audience and str(claims.get("aud", "")).rstrip("/") != self._audience:
            return None, f"the bearer token is for audience {claims.get('aud')!r}, expected {self._audience!r}"
        return claims, None


def make_bearer_authorizer(
    root: str | os.PathLike[str],
    *,
    audience: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Authorizer:
    """An ``authorizer(headers) -> message | None`` accepting only live tokens this sandbox issued.

    ``root`` is the sandbox root holding ``identity/signing.key`` (created if absent, so the Livy
    sandbox may be started before the identity endpoint). ``audience`` optionally pins the
    resource, e.g. ``"https://hilo.azurehdinsight.net"``. Missing, malformed, foreign, expired
    or revoked tokens give a message for a 401 answer; the message never contains the token.
    """
    validator = _TokenValidator(root, audience=audience, clock=clock)

    def authorize(headers: Mapping[str, str]) -> str | None:
        return validator.validate(headers.get("Authorization"))[1]

    return authorize
