"""Fixtures for the Entra ID / Key Vault tests: the sandbox identity + vault endpoints (HTTPS).

The endpoints run in their own process (``python -m hdiaks_widgets.sandbox.identity``), are
stopped by that PID, and every test runs with ``REQUESTS_CA_BUNDLE`` set to the system bundle
to prove the sandbox's own CA is still honoured. Test modules import the ``*_fixture`` functions
(pytest finds them under their ``name=``); a conftest may do the same to share them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

TENANT = "sandbox-tenant"
APP_ID = "hdiaks-test-app"
READER_ID = "hdiaks-test-vault-reader"
PUBLIC_ID = "hdiaks-test-notebook"
# The service principal's secret: it must never show up in logs, reprs or error messages.
CANARY = "CANARY-s3cr3t-4b1d9e7c"
READER_SECRET = "reader-secret-not-a-canary"
PREFIX = "hdinsight-aks-variables"
FORBIDDEN_NAME = f"{PREFIX}-locked-away"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class AuthSandbox:
    root: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(repr=False)

    @property
    def authority_host(self) -> str:
        return str(self.info["authority_host"])

    @property
    def vault_url(self) -> str:
        return str(self.info["vault_url"])

    @property
    def ca_pem(self) -> str:
        return str(self.info["ca_pem"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _get(self, path: str) -> dict[str, Any]:
        # verify= per request: REQUESTS_CA_BUNDLE would override a Session's verify.
        resp = requests.get(self.authority_host + path, verify=self.ca_pem, timeout=10)
        resp.raise_for_status()
        return dict(resp.json())

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._get("/_identity/stats").items()}

    def vault_stats(self) -> dict[str, int]:
        resp = requests.get(self.vault_url + "/_vault/stats", verify=self.ca_pem, timeout=10)
        resp.raise_for_status()
        return {k: int(v) for k, v in resp.json().items()}

    def revoke(self) -> None:
        requests.post(self.authority_host + "/_identity/revoke", verify=self.ca_pem, timeout=10).raise_for_status()

    def reader_env(self) -> dict[str, str]:
        return {
            "AZURE_CLIENT_ID": READER_ID,
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_SECRET": READER_SECRET,
            "AZURE_AUTHORITY_HOST": self.authority_host,
        }

    @property
    def whoami_url(self) -> str:
        return self.authority_host + "/_identity/whoami"

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        assert self.proc.returncode is not None


def default_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "tenant_id": TENANT,
        "clients": {APP_ID: CANARY, READER_ID: READER_SECRET, PUBLIC_ID: None},
        "vault_secrets": {
            f"{PREFIX}-api-client-id": APP_ID,
            f"{PREFIX}-api-secret": CANARY,
            f"{PREFIX}-tenant-id": TENANT,
            FORBIDDEN_NAME: "never-served",
        },
        "forbidden": [FORBIDDEN_NAME],
    }
    config.update(overrides)
    return config


def start_auth_sandbox(root: Path, **overrides: Any) -> AuthSandbox:
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "auth-config.json"
    config_path.write_text(json.dumps(default_config(**overrides)), encoding="utf-8")
    ready = root / "auth" / "endpoints.json"
    log = open(root / "auth-server.log", "wb")  # noqa: SIM115 - the child keeps writing to it
    proc = subprocess.Popen(
        [sys.executable, "-m", "hdiaks_widgets.sandbox.identity", "--root", str(root), "--config", str(config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"auth sandbox exited: {(root / 'auth-server.log').read_text()}")
        if ready.is_file():
            info = json.loads(ready.read_text(encoding="utf-8"))
            if info.get("pid") == proc.pid:
                return AuthSandbox(root, proc, info)
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    raise RuntimeError("auth sandbox did not become ready in 60 s")


@pytest.fixture(scope="session", name="auth_sandbox")
def auth_sandbox_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthSandbox]:
    server = start_auth_sandbox(tmp_path_factory.mktemp("auth-sandbox"))
    yield server
    server.stop()


@pytest.fixture(name="auth_sandbox_factory")
def auth_sandbox_factory_fixture(tmp_path: Path) -> Iterator[Callable[..., AuthSandbox]]:
    started: list[AuthSandbox] = []

    def factory(**overrides: Any) -> AuthSandbox:
        server = start_auth_sandbox(tmp_path / f"auth-{len(started)}", **overrides)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(name="requests_ca_bundle")
def requests_ca_bundle_fixture(monkeypatch: pytest.MonkeyPatch) -> str:
    """REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE set (as on this machine), not pointing at our CA."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or SYSTEM_BUNDLE
    if not Path(bundle).is_file():
        import certifi

        bundle = certifi.where()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)
    return bundle


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
