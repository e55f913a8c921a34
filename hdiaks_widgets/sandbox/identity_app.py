"""The Flask app of the sandbox's Entra ID-style identity endpoint (PROTOCOL.md §4).

OIDC discovery at ``/{tenant}/v2.0/.well-known/openid-configuration`` (issuer on the same host),
the token endpoint for client credentials, device code and refresh tokens, and the device code
endpoint — the parts of the Microsoft identity platform v2.0 that MSAL Python uses.

Test helpers (not Entra): ``GET /_identity/stats`` counts requests, ``POST /_identity/revoke``
invalidates every token issued so far (a server-side "expiry" without waiting),
``POST /_identity/approve`` approves a device code, ``GET /_identity/whoami`` is a tiny
bearer-protected endpoint.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hdiaks_widgets.fileio import atomic_write_text
from hdiaks_widgets.sandbox.tokens import (
    _b64url,
    _generation_path,
    _read_generation,
    _sign,
    _signing_key,
    _TokenValidator,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Flask

__all__ = ["DEFAULT_TENANT", "DEVICE_CODE_GRANT", "IdentityConfig", "create_identity_app"]

DEFAULT_TENANT = "sandbox-tenant"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True)
class IdentityConfig:
    """Registered applications: ``clients`` maps client id -> secret (``None`` = public client)."""

    tenant_id: str = DEFAULT_TENANT
    clients: Mapping[str, str | None] = field(default_factory=dict)
    token_lifetime: int = 3600
    device_approval: Literal["auto", "manual"] = "auto"
    user_name: str = "sandbox.user@example.test"
    # Seconds the token's own ``exp`` claim comes before what ``expires_in`` tells the client: a
    # service whose clock runs ahead, so it refuses a token the client's cache still holds (0 = none).
    clock_skew: int = 0

    def __repr__(self) -> str:  # client secrets stay out of reprs
        return (
            f"IdentityConfig(tenant_id={self.tenant_id!r}, clients={sorted(self.clients)!r}, "
            f"token_lifetime={self.token_lifetime!r}, device_approval={self.device_approval!r}, "
            f"clock_skew={self.clock_skew!r})"
        )


@dataclass
class _DeviceFlow:
    client_id: str
    scopes: list[str]
    user_code: str
    expires_at: float
    approved: bool


@dataclass
class _Refresh:
    client_id: str
    scopes: list[str]
    oid: str


class _IdentityState:
    def __init__(self, root: Path, config: IdentityConfig) -> None:
        self.root = root
        self.config = config
        self.key = _signing_key(root)
        self.lock = threading.Lock()
        self.stats: dict[str, int] = {
            "discovery_requests": 0,
            "token_requests": 0,
            "tokens_issued": 0,
            "client_credentials": 0,
            "device_code": 0,
            "refresh_token": 0,
            "token_errors": 0,
            "devicecode_requests": 0,
            "whoami_ok": 0,
            "whoami_unauthorized": 0,
            "revocations": 0,
        }
        self.flows: dict[str, _DeviceFlow] = {}
        self.refresh: dict[str, _Refresh] = {}
        self.generation = _read_generation(root)
        self.oid = str(uuid.uuid5(uuid.NAMESPACE_URL, config.user_name))

    def count(self, name: str) -> None:
        with self.lock:
            self.stats[name] = self.stats.get(name, 0) + 1

    def revoke(self) -> int:
        with self.lock:
            self.generation += 1
            self.stats["revocations"] += 1
            atomic_write_text(_generation_path(self.root), str(self.generation))
            return self.generation


def _resource_of(scopes: Sequence[str]) -> str | None:
    for scope in scopes:
        if scope in _OIDC_SCOPES:
            continue
        if scope.endswith("/.default"):
            return scope[: -len("/.default")]
        if "://" in scope:
            return scope.rsplit("/", 1)[0]
    return None


def create_identity_app(root: str | os.PathLike[str], config: IdentityConfig) -> Flask:
    """The Flask app of the identity endpoint (serve it over HTTPS with :func:`serve_app`)."""
    from flask import Flask, jsonify, request

    state = _IdentityState(Path(root), config)
    validator = _TokenValidator(root)
    app = Flask("hdiaks_widgets.sandbox.identity")
    tenant = config.tenant_id

    def base() -> str:
        return request.host_url.rstrip("/")

    def oauth_error(status: int, error: str, description: str) -> Any:
        state.count("token_errors")
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        body = {
            "error": error,
            "error_description": f"{description}\r\nTrace ID: {uuid.uuid4()}\r\nTimestamp: {stamp}",
            "error_codes": [int(description[6:].split(":")[0])] if description.startswith("AADSTS") else [],
            "timestamp": stamp,
            "trace_id": str(uuid.uuid4()),
            "correlation_id": request.headers.get("client-request-id", str(uuid.uuid4())),
        }
        resp = jsonify(body)
        resp.status_code = status
        return resp

    def check_tenant(given: str) -> Any:
        if given != tenant:
            return oauth_error(
                400,
                "invalid_tenant",
                f"AADSTS90002: Tenant '{given}' not found. Check to make sure you have the correct tenant ID.",
            )
        return None

    def access_token(client_id: str, scopes: list[str], *, sub: str, kind: str) -> dict[str, Any]:
        now = time.time()
        lifetime = int(config.token_lifetime)
        claims = {
            "iss": f"{base()}/{tenant}/v2.0",
            "aud": _resource_of(scopes) or "",
            "sub": sub,
            "appid": client_id,
            "tid": tenant,
            "idtyp": kind,
            "iat": int(now),
            "nbf": int(now),
            "exp": now + lifetime - max(0, int(config.clock_skew)),
            "jti": uuid.uuid4().hex,
            "gen": state.generation,
            "ver": "2.0",
        }
        state.count("tokens_issued")
        return {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": _sign(state.key, claims),
        }

    def user_tokens(client_id: str, scopes: list[str]) -> dict[str, Any]:
        body = access_token(client_id, scopes, sub=state.oid, kind="user")
        now = int(time.time())
        id_claims = {
            "iss": f"{base()}/{tenant}/v2.0",
            "aud": client_id,
            "sub": state.oid,
            "oid": state.oid,
            "tid": tenant,
            "preferred_username": config.user_name,
            "name": "Sandbox User",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
        }
        refresh = secrets.token_urlsafe(32)
        with state.lock:
            state.refresh[refresh] = _Refresh(client_id, scopes, state.oid)
        body["id_token"] = _sign(state.key, id_claims)
        body["refresh_token"] = refresh
        body["client_info"] = _b64url(json.dumps({"uid": state.oid, "utid": tenant}).encode())
        return body

    @app.get("/<tenant_id>/v2.0/.well-known/openid-configuration")
    @app.get("/<tenant_id>/.well-known/openid-configuration")
    def discovery(tenant_id: str) -> Any:
        state.count("discovery_requests")
        bad = check_tenant(tenant_id)
        if bad is not None:
            return bad
        b = base()
        return jsonify(
            {
                "issuer": f"{b}/{tenant}/v2.0",
                "authorization_endpoint": f"{b}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{b}/{tenant}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{b}/{tenant}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{b}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "grant_types_supported": ["client_credentials", DEVICE_CODE_GRANT, "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "tenant_region_scope": "NA",
            }
        )

    @app.post("/<tenant_id>/oauth2/v2.0/devicecode")
    def devicecode(tenant_id: str) -> Any:
        state.count("devicecode_requests")
        bad = check_tenant(tenant_id)
        if bad is not None:
            return bad
        client_id = request.form.get("client_id", "")
        if client_id not in config.clients:
            return oauth_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )
        scopes = request.form.get("scope", "").split()
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        device_code = secrets.token_urlsafe(32)
        with state.lock:
            state.flows[device_code] = _DeviceFlow(
                client_id, scopes, user_code, time.time() + 900, config.device_approval == "auto"
            )
        uri = f"{base()}/_identity/device"
        return jsonify(
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": 900,
                "interval": 1,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
                f"{user_code} to authenticate.",
            }
        )

    @app.post("/<tenant_id>/oauth2/v2.0/token")
    def token(tenant_id: str) -> Any:
        state.count("token_requests")
        bad = check_tenant(tenant_id)
        if bad is not None:
            return bad
        form = request.form
        grant = form.get("grant_type", "")
        client_id = form.get("client_id", "")
        scopes = form.get("scope", "").split()
        if client_id not in config.clients:
            return oauth_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'. This can happen if the application has not been installed "
                "by the administrator of the tenant.",
            )
        registered = config.clients[client_id]
        if grant == "client_credentials":
            state.count("client_credentials")
            if registered is None:
                return oauth_error(
                    400,
                    "unauthorized_client",
                    "AADSTS700025: Client is public so neither 'client_assertion' nor "
                    "'client_secret' should be presented.",
                )
            given = form.get("client_secret")
            if not given:
                return oauth_error(
                    401,
                    "invalid_client",
                    "AADSTS7000218: The request body must contain the following parameter: "
                    "'client_assertion' or 'client_secret'.",
                )
            if not hmac.compare_digest(given.encode(), registered.encode()):
                return oauth_error(
                    401,
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                    f"the request is the client secret value, not the client secret ID, for a secret "
                    f"added to app '{client_id}'.",
                )
            if len([s for s in scopes if s not in _OIDC_SCOPES]) != 1 or not scopes[-1].endswith("/.default"):
                return oauth_error(
                    400,
                    "invalid_scope",
                    f"AADSTS1002012: The provided value for scope {' '.join(scopes)} is not valid. "
                    "Client credential flows must have a scope value with /.default suffixed to the "
                    "resource identifier (application ID URI).",
                )
            return jsonify(access_token(client_id, scopes, sub=client_id, kind="app"))
        if grant == DEVICE_CODE_GRANT:
            state.count("device_code")
            code = form.get("device_code", "")
            with state.lock:
                flow = state.flows.get(code)
                if flow is not None and flow.approved:
                    del state.flows[code]
            if flow is None or flow.client_id != client_id:
                return oauth_error(400, "invalid_grant", "AADSTS70000: The provided device code is invalid.")
            if flow.expires_at < time.time():
                return oauth_error(400, "expired_token", "AADSTS70020: The provided value for the input "
                                   "parameter 'device_code' is not valid. This device code has expired.")
            if not flow.approved:
                return oauth_error(
                    400,
                    "authorization_pending",
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. "
                    "Continue polling.",
                )
            return jsonify(user_tokens(client_id, flow.scopes))
        if grant == "refresh_token":
            state.count("refresh_token")
            with state.lock:
                held = state.refresh.pop(form.get("refresh_token", ""), None)
            if held is None or held.client_id != client_id:
                return oauth_error(400, "invalid_grant", "AADSTS9002313: Invalid request. The refresh "
                                   "token is malformed or not valid.")
            return jsonify(user_tokens(client_id, scopes or held.scopes))
        return oauth_error(
            400,
            "unsupported_grant_type",
            f"AADSTS70003: The app requested an unsupported grant type '{grant}'.",
        )

    @app.get("/_identity/stats")
    def stats() -> Any:
        with state.lock:
            return jsonify(dict(state.stats, generation=state.generation))

    @app.post("/_identity/revoke")
    def revoke() -> Any:
        return jsonify({"generation": state.revoke()})

    @app.post("/_identity/approve")
    def approve() -> Any:
        data = request.get_json(silent=True) or request.form
        user_code = str(data.get("user_code", ""))
        with state.lock:
            for flow in state.flows.values():
                if flow.user_code == user_code:
                    flow.approved = True
                    return jsonify({"approved": user_code})
        resp = jsonify({"error": "unknown user_code"})
        resp.status_code = 404
        return resp

    @app.get("/_identity/device")
    def device_page() -> Any:
        return "Sandbox sign-in page: approve a code with POST /_identity/approve {\"user_code\": ...}.\n"

    @app.get("/_identity/whoami")
    def whoami() -> Any:
        claims, message = validator.validate(request.headers.get("Authorization"))
        if claims is None:
            state.count("whoami_unauthorized")
            resp = jsonify({"error": "invalid_token", "error_description": message})
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return resp
        state.count("whoami_ok")
        return jsonify({"appid": claims.get("appid"), "sub": claims.get("sub"), "aud": claims.get("aud")})

    return app
