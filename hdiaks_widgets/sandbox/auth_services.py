"""Serving the sandbox's identity and vault endpoints over HTTPS, in threads or their own process.

:func:`start_auth_services` starts both with a ready-made set of clients and secrets;
:func:`main` (``python -m hdiaks_widgets.sandbox.identity``) serves them until SIGTERM and writes
``<root>/auth/endpoints.json`` when ready.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.fileio import atomic_write_text
from hdiaks_widgets.sandbox.identity_app import DEFAULT_TENANT, IdentityConfig, create_identity_app
from hdiaks_widgets.sandbox.tls import TlsFiles, ensure_certificates, server_ssl_context

if TYPE_CHECKING:  # pragma: no cover - typing only
    from flask import Flask
    from werkzeug.serving import BaseWSGIServer

__all__ = [
    "AuthServices",
    "ServerHandle",
    "main",
    "sandbox_auth_profile",
    "serve_app",
    "start_auth_services",
]


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
    clock_skew: int = 0,
) -> AuthServices:
    """Start the identity and Key Vault endpoints over HTTPS in background threads.

    Without ``clients``/``vault_secrets`` a ready-made setup is generated with fresh random
    secrets: a service principal ``hdiaks-sandbox-app`` whose id, secret and tenant are stored
    in the vault as ``<variables_prefix>-api-client-id|api-secret|tenant-id``, a vault reader
    ``hdiaks-sandbox-vault-reader`` (see ``AuthServices.environment``) and a public client
    ``hdiaks-sandbox-notebook`` for device code sign-in. ``clock_skew``: see ``IdentityConfig``.
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
        tenant_id=tenant_id,
        clients=dict(clients),
        token_lifetime=token_lifetime,
        device_approval=device_approval,
        clock_skew=clock_skew,
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
    atomic_write_text(path, json.dumps(data, indent=2), mode=0o600)


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
