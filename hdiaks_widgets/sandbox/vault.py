"""A local Azure Key Vault-style secrets endpoint over HTTPS for the real ``SecretClient``.

Behaves like the vault data plane as seen by azure-keyvault-secrets (PROTOCOL.md §5): a request
without ``Authorization`` gets a 401 challenge naming the authority (our identity endpoint) and
the resource ``https://vault.azure.net``; with a bearer token for that audience,
``GET /secrets/{name}[/{version}]?api-version=...`` returns a SecretBundle, 404 ``SecretNotFound``
for a missing name, 403 ``Forbidden`` for names configured as forbidden. Names are matched
case-insensitively, as Key Vault does.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hdiaks_widgets.sandbox.identity import _TokenValidator

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Flask

__all__ = ["VAULT_RESOURCE", "VaultConfig", "create_vault_app"]

VAULT_RESOURCE = "https://vault.azure.net"


@dataclass(frozen=True)
class VaultConfig:
    """``authority`` is ``https://<identity host>/<tenant>``, sent in the 401 challenge."""

    authority: str
    secrets: Mapping[str, str] = field(default_factory=dict)
    forbidden: Sequence[str] = ()

    def __repr__(self) -> str:  # values stay out of reprs
        return (
            f"VaultConfig(authority={self.authority!r}, secrets={sorted(self.secrets)!r}, "
            f"forbidden={list(self.forbidden)!r})"
        )


def create_vault_app(root: str | os.PathLike[str], config: VaultConfig) -> Flask:
    """The Flask app of the vault endpoint (serve it with ``identity.serve_app``)."""
    from flask import Flask, jsonify, request

    validator = _TokenValidator(root, audience=VAULT_RESOURCE)
    values = {name.lower(): value for name, value in config.secrets.items()}
    forbidden = {name.lower() for name in config.forbidden}
    created = int(time.time())
    lock = threading.Lock()
    stats = {"challenges": 0, "unauthorized": 0, "forbidden": 0, "not_found": 0, "served": 0}
    app = Flask("hdiaks_widgets.sandbox.vault")

    def count(name: str) -> None:
        with lock:
            stats[name] += 1

    def error(status: int, code: str, message: str, **extra: Any) -> Any:
        resp = jsonify({"error": {"code": code, "message": message, **extra}})
        resp.status_code = status
        return resp

    def challenge(detail: str | None) -> Any:
        resp = error(401, "Unauthorized", detail or "AKV10000: Request is missing a Bearer or PoP token.")
        value = f'Bearer authorization="{config.authority}", resource="{VAULT_RESOURCE}"'
        if detail:
            value += ', error="invalid_token"'
        resp.headers["WWW-Authenticate"] = value
        return resp

    @app.get("/secrets/<name>")
    @app.get("/secrets/<name>/")
    @app.get("/secrets/<name>/<version>")
    def get_secret(name: str, version: str = "") -> Any:
        header = request.headers.get("Authorization")
        if not header:
            count("challenges")
            return challenge(None)
        claims, message = validator.validate(header)
        if claims is None:
            count("unauthorized")
            return challenge(f"AKV10022: Invalid token: {message}")
        key = name.lower()
        host = request.host_url.rstrip("/")
        if key in forbidden:
            count("forbidden")
            return error(
                403,
                "Forbidden",
                f"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                f"assignments or role definitions were changed recently, please observe propagation "
                f"time.\r\nCaller: appid={claims.get('appid')}\r\nAction: "
                f"'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: '{host}/secrets/{name}'",
                innererror={"code": "ForbiddenByRbac"},
            )
        if key not in values:
            count("not_found")
            return error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name} was not found in this key vault. If you recently "
                "deleted this secret you may be able to recover it using the correct recovery command.",
            )
        count("served")
        current = hashlib.sha256(f"{key}\0{created}".encode()).hexdigest()[:32]
        return jsonify(
            {
                "value": values[key],
                "id": f"{host}/secrets/{name}/{version or current}",
                "attributes": {
                    "enabled": True,
                    "created": created,
                    "updated": created,
                    "recoveryLevel": "Recoverable+Purgeable",
                    "recoverableDays": 90,
                },
                "tags": {},
            }
        )

    @app.get("/_vault/stats")
    def vault_stats() -> Any:
        with lock:
            return jsonify(dict(stats))

    return app
