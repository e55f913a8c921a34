"""A throwaway certificate authority and server certificate for the sandbox's HTTPS endpoints.

MSAL only accepts an ``https://`` authority and ``SecretClient`` refuses bearer tokens over plain
HTTP (PROTOCOL.md §4-5), so the local identity and vault endpoints need TLS that real clients
trust: we make a CA with ``trustme`` at first start and point clients at its ``ca.pem``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_TLS_HOSTS", "TlsFiles", "ensure_certificates", "server_ssl_context"]

DEFAULT_TLS_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the sandbox CA certificate and the server's certificate chain and key."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def _files(folder: Path) -> TlsFiles:
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")


def ensure_certificates(root: str | os.PathLike[str], hosts: Sequence[str] = DEFAULT_TLS_HOSTS) -> TlsFiles:
    """Create ``<root>/tls/{ca.pem,server.pem,server-key.pem}`` once; later calls reuse them.

    The folder is written under a temporary name and renamed into place, so two sandbox
    processes starting at the same time never see half-written files.
    """
    import trustme

    folder = Path(root) / "tls"
    files = _files(folder)
    if all(p.is_file() for p in (files.ca_pem, files.cert_pem, files.key_pem)):
        return files
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tls-", dir=folder.parent))
    try:
        ca = trustme.CA(organization_name="hdiaks-widgets sandbox")
        cert = ca.issue_cert(*hosts)
        staged = _files(tmp)
        ca.cert_pem.write_to_path(str(staged.ca_pem))
        cert.private_key_pem.write_to_path(str(staged.key_pem))
        os.chmod(staged.key_pem, 0o600)
        with open(staged.cert_pem, "wb") as out:
            for blob in cert.cert_chain_pems:
                out.write(blob.bytes())
        try:
            os.rename(tmp, folder)
        except OSError:
            if not files.ca_pem.is_file():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A server-side TLS context for werkzeug's ``make_server(..., ssl_context=...)``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(files.cert_pem), str(files.key_pem))
    return ctx
