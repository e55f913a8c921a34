"""A local Entra ID-style identity endpoint over HTTPS, so the real ``msal`` runs unchanged.

Speaks the parts of the Microsoft identity platform v2.0 that MSAL Python uses (PROTOCOL.md §4):
OIDC discovery at ``/{tenant}/v2.0/.well-known/openid-configuration`` (issuer on the same host),
the token endpoint for client credentials, device code and refresh tokens, and the device code
endpoint. Access tokens are HS256-signed JWTs; the signing key lives under the sandbox root so a
Livy sandbox in another process can check them with :func:`make_bearer_authorizer`.

Test helpers (not Entra): ``GET /_identity/stats`` counts requests, ``POST /_identity/revoke``
invalidates every token issued so far (a server-side "expiry" without waiting),
``POST /_identity/approve`` approves a device code, ``GET /_identity/whoami`` is a tiny
bearer-protected endpoint.

Run ``python -m hdiaks_widgets.sandbox.identity --root DIR`` to serve the identity and vault
endpoints in their own process; it writes ``DIR/auth/endpoints.json`` when ready.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.sandbox.tls import TlsFiles, ensure_certificates, server_ssl_context

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Flask
    from werkzeug.serving import BaseWSGIServer

__all__ = [
    "AuthServices",
    "Authorizer",
    "IdentityConfig",
    "ServerHandle",
    "create_identity_app",
    "make_bearer_authorizer",
    "main",
    "serve_app",
    "start_auth_services",
]

DEFAULT_TENANT = "sandbox-tenant"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


# Same shape as ``sandbox.server.Authorizer``: given the request headers, an error message for
# a 401 answer, or None when the request may proceed.
Authorizer = Callable[[Mapping[str, str]], "str | None"]


# -- tokens ------------------------------------------------------------------------------------


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


# -- the identity endpoint ----------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityConfig:
    """Registered applications: ``clients`` maps client id -> secret (``None`` = public client)."""

    tenant_id: str = DEFAULT_TENANT
    clients: Mapping[str, str | None] = field(default_factory=dict)
    token_lifetime: int = 3600
    device_approval: Literal["auto", "manual"] = "auto"
    user_name: str = "sandbox.user@example.test"

    def __repr__(self) -> str:  # client secrets stay out of reprs
        return (
            f"IdentityConfig(tenant_id={self.tenant_id!r}, clients={sorted(self.clients)!r}, "
            f"token_lifetime={self.token_lifetime!r}, device_approval={self.device_approval!r})"
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
            path = _generation_path(self.root)
            tmp = path.with_name(f".generation.{os.getpid()}")
            tmp.write_text(str(self.generation))
            os.replace(tmp, path)
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
            "exp": now + lifetime,
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


# -- serving -------------------------------------------------------------------------------------


class ServerHandle:
    """A threaded werkzeug HTTPS server running in a background thread."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = int(server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r})"


def serve_app(app: Flask, host: str, port: int, tls: TlsFiles) -> ServerHandle:
    """Serve ``app`` over HTTPS on ``host:port`` (0 = a free port) in a daemon thread."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True, ssl_context=server_ssl_context(tls))
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-https-{server.server_port}", daemon=True)
    thread.start()
    return ServerHandle(server, thread, host)


def sandbox_auth_profile(
    livy_url: str,
    *,
    authority_host: str,
    vault_url: str,
    ca_pem: str | os.PathLike[str],
    name: str = "sandbox-auth",
) -> ClusterProfile:
    """The client profile for a bearer-protected Livy sandbox: the service principal's id,
    secret and tenant come from the sandbox vault, its token from the sandbox identity endpoint."""
    return ClusterProfile(
        name=name,
        flavour="sandbox",
        url=livy_url,
        auth="service-principal",
        authority_host=authority_host,
        secret_source="keyvault",  # noqa: S106 - a source name, not a secret
        vault_url=vault_url,
        verify=os.fspath(ca_pem),
    )


@dataclass
class AuthServices:
    """The running identity and vault endpoints and what a client needs to use them."""

    identity: ServerHandle
    vault: ServerHandle
    tenant_id: str
    tls: TlsFiles
    environment: dict[str, str] = field(repr=False)  # the vault reader's AZURE_* settings
    service_principal: dict[str, str] = field(repr=False)  # ids only; its secret is in the vault

    @property
    def authority_host(self) -> str:
        return self.identity.url

    @property
    def vault_url(self) -> str:
        return self.vault.url

    @property
    def ca_pem(self) -> Path:
        return self.tls.ca_pem

    def describe(self) -> dict[str, Any]:
        """What ``endpoints.json`` holds (the sandbox's throwaway vault-reader secret included)."""
        return {
            "authority_host": self.authority_host,
            "tenant_id": self.tenant_id,
            "vault_url": self.vault_url,
            "ca_pem": str(self.tls.ca_pem),
            "environment": dict(self.environment),
            "service_principal": dict(self.service_principal),
        }

    def write_endpoints(self, root: str | os.PathLike[str]) -> Path:
        """Write ``<root>/auth/endpoints.json`` (mode 0600, with this process's pid); returns it."""
        path = Path(root) / "auth" / "endpoints.json"
        _write_private_json(path, dict(self.describe(), pid=os.getpid()))
        return path

    def profile(self, livy_url: str, *, name: str = "sandbox-auth") -> ClusterProfile:
        """A profile for a bearer-protected Livy sandbox: service principal from this vault.

        The vault reader's settings are ``self.environment`` (pass as ``build_auth(environ=...)``
        or export them).
        """
        return sandbox_auth_profile(
            livy_url, authority_host=self.authority_host, vault_url=self.vault_url, ca_pem=self.tls.ca_pem, name=name
        )

    def shutdown(self) -> None:
        self.vault.shutdown()
        self.identity.shutdown()


def start_auth_services(
    root: str | os.PathLike[str],
    host: str = "127.0.0.1",
    *,
    identity_port: int = 0,
    vault_port: int = 0,
    tenant_id: str = DEFAULT_TENANT,
    clients: Mapping[str, str | None] | None = None,
    vault_secrets: Mapping[str, str] | None = None,
    forbidden: Sequence[str] = (),
    token_lifetime: int = 3600,
    device_approval: Literal["auto", "manual"] = "auto",
    variables_prefix: str = "hdinsight-aks-variables",
) -> AuthServices:
    """Start the identity and Key Vault endpoints over HTTPS in background threads.

    Without ``clients``/``vault_secrets`` a ready-made setup is generated with fresh random
    secrets: a service principal ``hdiaks-sandbox-app`` whose id, secret and tenant are stored
    in the vault as ``<variables_prefix>-api-client-id|api-secret|tenant-id``, a vault reader
    ``hdiaks-sandbox-vault-reader`` (see ``AuthServices.environment``) and a public client
    ``hdiaks-sandbox-notebook`` for device code sign-in.
    """
    from hdiaks_widgets.sandbox.vault import VaultConfig, create_vault_app

    tls = ensure_certificates(root)
    sp: dict[str, str] = {}
    environment: dict[str, str] = {}
    if clients is None:
        app_id, reader_id = "hdiaks-sandbox-app", "hdiaks-sandbox-vault-reader"
        app_secret, reader_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        clients = {app_id: app_secret, reader_id: reader_secret, "hdiaks-sandbox-notebook": None}
        sp = {"client_id": app_id, "tenant_id": tenant_id, "public_client_id": "hdiaks-sandbox-notebook"}
        environment = {
            "AZURE_CLIENT_ID": reader_id,
            "AZURE_TENANT_ID": tenant_id,
            "AZURE_CLIENT_SECRET": reader_secret,
        }
        if vault_secrets is None:
            vault_secrets = {
                f"{variables_prefix}-api-client-id": app_id,
                f"{variables_prefix}-api-secret": app_secret,
                f"{variables_prefix}-tenant-id": tenant_id,
            }
    config = IdentityConfig(
        tenant_id=tenant_id, clients=dict(clients), token_lifetime=token_lifetime, device_approval=device_approval
    )
    identity = serve_app(create_identity_app(root, config), host, identity_port, tls)
    try:
        vault_app = create_vault_app(
            root,
            VaultConfig(
                authority=f"{identity.url}/{tenant_id}",
                secrets=dict(vault_secrets or {}),
                forbidden=tuple(forbidden),
            ),
        )
        vault = serve_app(vault_app, host, vault_port, tls)
    except BaseException:
        identity.shutdown()
        raise
    if environment:
        environment["AZURE_AUTHORITY_HOST"] = identity.url
    return AuthServices(identity, vault, tenant_id, tls, environment, sp)


def _write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve identity + vault until SIGTERM/SIGINT; ``--config`` is a JSON file of
    ``start_auth_services`` keyword arguments (clients, vault_secrets, forbidden, ...)."""
    parser = argparse.ArgumentParser(prog="python -m hdiaks_widgets.sandbox.identity")
    parser.add_argument("--root", required=True, help="sandbox root (certificates, signing key)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--identity-port", type=int, default=0)
    parser.add_argument("--vault-port", type=int, default=0)
    parser.add_argument("--config", help="JSON file with start_auth_services keyword arguments")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    if args.config:
        options = json.loads(Path(args.config).read_text(encoding="utf-8"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    services = start_auth_services(
        args.root, args.host, identity_port=args.identity_port, vault_port=args.vault_port, **options
    )
    try:
        services.write_endpoints(args.root)
        stop.wait()
    finally:
        services.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover - process entry point
    raise SystemExit(main())
