"""A local Entra ID-style identity endpoint over HTTPS, so the real ``msal`` runs unchanged.

Speaks the parts of the Microsoft identity platform v2.0 that MSAL Python uses (PROTOCOL.md §4):
OIDC discovery, the token endpoint for client credentials, device code and refresh tokens, and
the device code endpoint. Access tokens are HS256-signed JWTs; the signing key lives under the
sandbox root so a Livy sandbox in another process can check them with
:func:`make_bearer_authorizer`.

The parts: ``sandbox.tokens`` (issuing and checking tokens), ``sandbox.identity_app`` (the Flask
app) and ``sandbox.auth_services`` (HTTPS serving, the identity + vault pair, the process entry
point). Every name is importable from here as well.

Run ``python -m hdiaks_widgets.sandbox.identity --root DIR`` to serve the identity and vault
endpoints in their own process; it writes ``DIR/auth/endpoints.json`` when ready.
"""

from __future__ import annotations

from hdiaks_widgets.sandbox.auth_services import (
    AuthServices,
    ServerHandle,
    main,
    serve_app,
    start_auth_services,
)
from hdiaks_widgets.sandbox.auth_services import sandbox_auth_profile as sandbox_auth_profile
from hdiaks_widgets.sandbox.identity_app import DEFAULT_TENANT as DEFAULT_TENANT
from hdiaks_widgets.sandbox.identity_app import DEVICE_CODE_GRANT as DEVICE_CODE_GRANT
from hdiaks_widgets.sandbox.identity_app import IdentityConfig, create_identity_app
from hdiaks_widgets.sandbox.tokens import Authorizer, make_bearer_authorizer
from hdiaks_widgets.sandbox.tokens import _TokenValidator as _TokenValidator

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


if __name__ == "__main__":  # pragma: no cover - process entry point
    raise SystemExit(main())
