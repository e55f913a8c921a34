"""Auth plug-ins against the sandbox identity endpoint: real msal over HTTPS on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msal
import pytest
import requests
from auth_fixtures import (
    APP_ID,
    CANARY,
    PREFIX,
    PUBLIC_ID,
    READER_SECRET,
    TENANT,
    AuthSandbox,
    auth_sandbox_factory_fixture,  # noqa: F401 - fixture "auth_sandbox_factory"
    auth_sandbox_fixture,  # noqa: F401 - fixture "auth_sandbox"
    closed_port,
    requests_ca_bundle_fixture,  # noqa: F401 - fixture "requests_ca_bundle"
)

from hdiaks_widgets.auth import (
    BasicAuth,
    DeviceCodeAuth,
    DeviceCodePrompt,
    ServicePrincipalAuth,
    clear_token_cache,
    pinned_session,
    vault_token_provider,
)
from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.connect import build_auth
from hdiaks_widgets.errors import AuthError, SecretError
from hdiaks_widgets.sandbox.identity import make_bearer_authorizer
from hdiaks_widgets.secrets import DictSecretStore

pytestmark = pytest.mark.usefixtures("requests_ca_bundle")


def _sp_auth(sb: AuthSandbox, secret: str = CANARY, **kw: Any) -> ServicePrincipalAuth:
    return ServicePrincipalAuth(
        tenant_id=TENANT, client_id=APP_ID, client_secret=secret, authority_host=sb.authority_host,
        verify=sb.ca_pem, **kw,
    )


def _whoami(sb: AuthSandbox, auth: requests.auth.AuthBase, session: requests.Session | None = None
            ) -> requests.Response:
    http = session or requests
    return http.get(sb.whoami_url, auth=auth, verify=sb.ca_pem, timeout=10)


def _keyvault_profile(sb: AuthSandbox, **kw: Any) -> ClusterProfile:
    fields: dict[str, Any] = dict(
        name="aks-sandbox", flavour="hdinsight-aks", fqdn="mycluster.pool.eastus.hdinsightaks.net",
        authority_host=sb.authority_host, secret_source="keyvault", vault_url=sb.vault_url,
        variables_prefix=PREFIX, verify=sb.ca_pem,
    )
    fields.update(kw)
    return ClusterProfile(**fields)


# -- the local CA under REQUESTS_CA_BUNDLE --------------------------------------------------------


def test_msal_own_session_ignores_local_ca_when_requests_ca_bundle_set(auth_sandbox: AuthSandbox) -> None:
    # The trap we work around: msal's default session takes verify=, the env var wins.
    with pytest.raises(requests.exceptions.SSLError):
        msal.ConfidentialClientApplication(
            APP_ID, client_credential=CANARY, authority=f"{auth_sandbox.authority_host}/{TENANT}",
            instance_discovery=False, verify=auth_sandbox.ca_pem,
        )


def test_pinned_session_honours_local_ca_when_requests_ca_bundle_set(auth_sandbox: AuthSandbox) -> None:
    with pinned_session(auth_sandbox.ca_pem) as session:
        assert session.get(auth_sandbox.authority_host + "/_identity/stats", timeout=10).status_code == 200


def test_service_principal_auth_gets_token_from_sandbox(auth_sandbox: AuthSandbox) -> None:
    resp = _whoami(auth_sandbox, _sp_auth(auth_sandbox))
    assert resp.status_code == 200
    assert resp.json()["appid"] == APP_ID
    assert resp.json()["aud"] == "https://hilo.azurehdinsight.net"


def test_service_principal_auth_uses_configured_scope(auth_sandbox: AuthSandbox) -> None:
    auth = _sp_auth(auth_sandbox, scope="https://clusteraccess.hdinsightaks.net/.default")
    assert _whoami(auth_sandbox, auth).json()["aud"] == "https://clusteraccess.hdinsightaks.net"


# -- token cache and refresh ------------------------------------------------------------------------


def test_service_principal_auth_one_token_request_serves_many_calls(auth_sandbox: AuthSandbox) -> None:
    clear_token_cache()
    before = auth_sandbox.stats()
    with requests.Session() as session:
        statuses = [_whoami(auth_sandbox, _sp_auth(auth_sandbox), session).status_code for _ in range(120)]
    after = auth_sandbox.stats()
    assert statuses == [200] * 120
    assert after["token_requests"] - before["token_requests"] == 1
    assert after["whoami_ok"] - before["whoami_ok"] == 120


def test_service_principal_auth_refreshes_once_after_server_side_expiry(auth_sandbox: AuthSandbox) -> None:
    auth = _sp_auth(auth_sandbox)
    assert _whoami(auth_sandbox, auth).status_code == 200
    auth_sandbox.revoke()  # every token issued so far is now refused with 401
    before = auth_sandbox.stats()
    responses = [_whoami(auth_sandbox, auth) for _ in range(5)]
    after = auth_sandbox.stats()
    assert [r.status_code for r in responses] == [200] * 5
    assert [len(r.history) for r in responses] == [1, 0, 0, 0, 0]
    assert responses[0].history[0].status_code == 401
    assert after["token_requests"] - before["token_requests"] == 1
    assert after["whoami_unauthorized"] - before["whoami_unauthorized"] == 1


def test_service_principal_auth_resends_post_body_after_401(auth_sandbox: AuthSandbox) -> None:
    auth = _sp_auth(auth_sandbox)
    _whoami(auth_sandbox, auth)
    auth_sandbox.revoke()
    # The vault answers 401 to the hilo token; a body must survive the resend (no exception).
    resp = requests.post(auth_sandbox.authority_host + "/_identity/approve", json={"user_code": "NOPE"},
                         auth=auth, verify=auth_sandbox.ca_pem, timeout=10)
    assert resp.status_code == 404


def test_service_principal_auth_retries_a_401_only_once(auth_sandbox: AuthSandbox) -> None:
    clear_token_cache()
    before = auth_sandbox.stats()
    # The vault refuses tokens for another audience, so the retry is refused too.
    resp = requests.get(f"{auth_sandbox.vault_url}/secrets/{PREFIX}-tenant-id", auth=_sp_auth(auth_sandbox),
                        verify=auth_sandbox.ca_pem, timeout=10)
    after = auth_sandbox.stats()
    assert resp.status_code == 401
    assert len(resp.history) == 1
    assert after["token_requests"] - before["token_requests"] == 2


def test_service_principal_auth_short_lived_tokens_never_fail_a_call(
    auth_sandbox_factory: Callable[..., AuthSandbox],
) -> None:
    sb = auth_sandbox_factory(token_lifetime=1)
    auth = _sp_auth(sb)
    first = _whoami(sb, auth)
    time.sleep(1.2)  # the first token has expired on the server
    second = _whoami(sb, auth)
    assert (first.status_code, second.status_code) == (200, 200)
    assert sb.stats()["whoami_unauthorized"] == 0


# -- errors -----------------------------------------------------------------------------------------


def test_service_principal_auth_wrong_secret_raises_auth_error_with_entra_text(auth_sandbox: AuthSandbox) -> None:
    wrong = "WRONG-s3cr3t-value-123"
    with pytest.raises(AuthError) as info:
        _sp_auth(auth_sandbox, secret=wrong).token()
    assert info.value.error == "invalid_client"
    assert "AADSTS7000215" in str(info.value)
    assert "Invalid client secret provided" in (info.value.description or "")
    assert wrong not in str(info.value) and wrong not in repr(info.value)


def test_service_principal_auth_unknown_tenant_raises_auth_error(auth_sandbox: AuthSandbox) -> None:
    auth = ServicePrincipalAuth(tenant_id="no-such-tenant", client_id=APP_ID, client_secret=CANARY,
                                authority_host=auth_sandbox.authority_host, verify=auth_sandbox.ca_pem)
    with pytest.raises(AuthError, match="no-such-tenant"):
        auth.token()


def test_service_principal_auth_unreachable_identity_raises_auth_error() -> None:
    auth = ServicePrincipalAuth(tenant_id=TENANT, client_id=APP_ID, client_secret=CANARY,
                                authority_host=f"https://127.0.0.1:{closed_port()}", verify=True)
    with pytest.raises(AuthError, match="Cannot reach the identity provider") as info:
        auth.token()
    assert CANARY not in str(info.value)


def test_service_principal_auth_repr_hides_secret(auth_sandbox: AuthSandbox) -> None:
    auth = _sp_auth(auth_sandbox)
    assert APP_ID in repr(auth)
    assert CANARY not in repr(auth) and CANARY not in repr(auth.provider)


def test_basic_auth_repr_hides_password() -> None:
    assert "hunter2" not in repr(BasicAuth("admin", "hunter2"))


# -- build_auth --------------------------------------------------------------------------------------


def test_build_auth_none_returns_none() -> None:
    assert build_auth(ClusterProfile(flavour="livy", url="http://127.0.0.1:8998")) is None


def test_build_auth_basic_reads_password_from_store() -> None:
    profile = ClusterProfile(flavour="hdinsight", fqdn="mycluster", username="admin")
    auth = build_auth(profile, DictSecretStore({"livy-password": "pw-123"}))
    assert isinstance(auth, BasicAuth)
    assert (auth.username, auth.password) == ("admin", "pw-123")


def test_build_auth_service_principal_reads_airflow_variable_keys(auth_sandbox: AuthSandbox) -> None:
    store = DictSecretStore({"api-client-id": APP_ID, "api-secret": CANARY, "tenant-id": TENANT})
    profile = _keyvault_profile(auth_sandbox, secret_source="env")
    auth = build_auth(profile, store)
    assert isinstance(auth, ServicePrincipalAuth)
    assert _whoami(auth_sandbox, auth).json()["appid"] == APP_ID


def test_build_auth_reads_service_principal_from_key_vault(auth_sandbox: AuthSandbox) -> None:
    auth = build_auth(_keyvault_profile(auth_sandbox), environ=auth_sandbox.reader_env())
    assert isinstance(auth, ServicePrincipalAuth)
    assert _whoami(auth_sandbox, auth).status_code == 200


def test_build_auth_key_vault_without_reader_environment_raises_secret_error(auth_sandbox: AuthSandbox) -> None:
    with pytest.raises(SecretError, match="AZURE_CLIENT_SECRET"):
        build_auth(_keyvault_profile(auth_sandbox), environ={"AZURE_CLIENT_ID": "x", "AZURE_TENANT_ID": TENANT})


def test_build_auth_device_code_returns_device_code_auth(auth_sandbox: AuthSandbox) -> None:
    profile = _keyvault_profile(auth_sandbox, auth="device-code", client_id=PUBLIC_ID, tenant_id=TENANT)
    assert isinstance(build_auth(profile), DeviceCodeAuth)


def test_vault_token_provider_reads_azure_environment(auth_sandbox: AuthSandbox) -> None:
    provider = vault_token_provider(_keyvault_profile(auth_sandbox), environ=auth_sandbox.reader_env())
    token = provider(["https://vault.azure.net/.default"])
    assert token.expires_on > time.time()
    assert token.token not in repr(token) and READER_SECRET not in repr(provider)


# -- device code ---------------------------------------------------------------------------------------


def _device_auth(sb: AuthSandbox) -> DeviceCodeAuth:
    return DeviceCodeAuth(tenant_id=TENANT, client_id=PUBLIC_ID, authority_host=sb.authority_host, verify=sb.ca_pem)


def test_device_code_auth_signs_in_in_background(auth_sandbox: AuthSandbox) -> None:
    prompts: list[DeviceCodePrompt] = []
    auth = _device_auth(auth_sandbox)
    auth.start(prompts.append)
    assert auth.wait(timeout=30)
    assert prompts and prompts[0].user_code in prompts[0].message
    assert prompts[0].verification_uri.startswith(auth_sandbox.authority_host)
    resp = _whoami(auth_sandbox, auth)
    assert resp.status_code == 200 and resp.json()["appid"] == PUBLIC_ID


def test_device_code_auth_cancel_stops_waiting(auth_sandbox_factory: Callable[..., AuthSandbox]) -> None:
    sb = auth_sandbox_factory(device_approval="manual")
    auth = _device_auth(sb)
    done: list[AuthError | None] = []
    auth.start(on_done=done.append)
    assert auth.status == "pending"
    auth.cancel()
    with pytest.raises(AuthError, match="cancelled"):
        auth.wait(timeout=30)
    assert auth.status == "cancelled" and done and done[0] is not None


def test_device_code_auth_manual_approval_completes(auth_sandbox_factory: Callable[..., AuthSandbox]) -> None:
    sb = auth_sandbox_factory(device_approval="manual")
    auth = _device_auth(sb)
    prompt = auth.start()
    assert not auth.wait(timeout=0.1)
    requests.post(sb.authority_host + "/_identity/approve", json={"user_code": prompt.user_code},
                  verify=sb.ca_pem, timeout=10).raise_for_status()
    assert auth.wait(timeout=30)
    assert auth.status == "signed-in"


def test_device_code_auth_before_sign_in_raises_auth_error(auth_sandbox: AuthSandbox) -> None:
    with pytest.raises(AuthError, match="Not signed in"):
        _whoami(auth_sandbox, _device_auth(auth_sandbox))


def test_device_code_auth_refreshes_with_refresh_token_after_401(auth_sandbox: AuthSandbox) -> None:
    auth = _device_auth(auth_sandbox)
    auth.start()
    auth.wait(timeout=30)
    assert _whoami(auth_sandbox, auth).status_code == 200
    auth_sandbox.revoke()
    before = auth_sandbox.stats()
    resp = _whoami(auth_sandbox, auth)
    assert resp.status_code == 200 and len(resp.history) == 1
    assert auth_sandbox.stats()["refresh_token"] - before["refresh_token"] == 1


# -- the sandbox's bearer authorizer (plugged into the Livy sandbox) -------------------------------------


def _bearer(sb: AuthSandbox) -> dict[str, str]:
    clear_token_cache()  # other tests revoke tokens server-side; start from a fresh one
    return {"Authorization": f"Bearer {_sp_auth(sb).token().token}"}


def test_bearer_authorizer_accepts_token_from_identity_endpoint(auth_sandbox: AuthSandbox) -> None:
    assert make_bearer_authorizer(auth_sandbox.root)(_bearer(auth_sandbox)) is None


def test_bearer_authorizer_rejects_missing_token(auth_sandbox: AuthSandbox) -> None:
    assert "missing bearer token" in (make_bearer_authorizer(auth_sandbox.root)({}) or "")


def test_bearer_authorizer_rejects_expired_token(auth_sandbox: AuthSandbox) -> None:
    later = make_bearer_authorizer(auth_sandbox.root, clock=lambda: time.time() + 7200)
    assert "expired" in (later(_bearer(auth_sandbox)) or "")


def test_bearer_authorizer_rejects_foreign_token(auth_sandbox: AuthSandbox, tmp_path: Any) -> None:
    other = make_bearer_authorizer(tmp_path)  # another signing key
    assert "not issued by this sandbox" in (other(_bearer(auth_sandbox)) or "")


def test_bearer_authorizer_rejects_wrong_audience(auth_sandbox: AuthSandbox) -> None:
    pinned = make_bearer_authorizer(auth_sandbox.root, audience="https://vault.azure.net")
    assert "audience" in (pinned(_bearer(auth_sandbox)) or "")


# -- the canary: the secret never leaks ---------------------------------------------------------------


def test_secrets_never_appear_in_logs_reprs_or_errors(
    auth_sandbox: AuthSandbox, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("msal", "azure", "urllib3", "requests", "hdiaks_widgets"):
        caplog.set_level(logging.DEBUG, logger=name)
    clear_token_cache()
    texts: list[str] = []
    profile = _keyvault_profile(auth_sandbox)
    auth = build_auth(profile, environ=auth_sandbox.reader_env())  # reads the canary from the vault
    assert isinstance(auth, ServicePrincipalAuth)
    texts += [repr(auth), repr(auth.provider), str(auth.__dict__.get("scopes"))]
    tokens = [auth.token().token]
    for _ in range(3):
        assert _whoami(auth_sandbox, auth).status_code == 200
    auth_sandbox.revoke()
    assert _whoami(auth_sandbox, auth).status_code == 200  # the 401 + refresh path
    tokens.append(auth.token().token)
    failures: list[BaseException] = []
    for attempt in (
        lambda: build_auth(_keyvault_profile(auth_sandbox, variables_prefix="missing-prefix"),
                           environ=auth_sandbox.reader_env()),
        lambda: _sp_auth(auth_sandbox, secret=CANARY + "-but-wrong").token(),
        lambda: build_auth(profile, environ={**auth_sandbox.reader_env(), "AZURE_CLIENT_SECRET": CANARY}),
    ):
        with pytest.raises((AuthError, SecretError)) as info:
            attempt()
        failures.append(info.value)
    for exc in failures:
        texts += [str(exc), repr(exc), str(exc.__cause__), repr(getattr(exc, "args", ""))]
        texts += [str(getattr(exc, "description", "")), str(getattr(exc, "secret_name", ""))]
    out = capsys.readouterr()
    haystack = "\n".join([caplog.text, out.out, out.err, *texts,
                          *(r.getMessage() for r in caplog.records)])
    assert caplog.records  # logging really was captured
    assert CANARY not in haystack
    for token in tokens:
        assert token not in haystack


def test_auth_services_profile_reaches_bearer_protected_endpoint(tmp_path: Any) -> None:
    from hdiaks_widgets.sandbox.identity import start_auth_services

    services = start_auth_services(tmp_path)  # the ready-made setup `sandbox --auth` uses
    try:
        profile = services.profile("http://127.0.0.1:8998").validate()
        auth = build_auth(profile, environ=services.environment)
        resp = requests.get(services.authority_host + "/_identity/whoami", auth=auth, verify=str(services.ca_pem),
                            timeout=10)
        assert resp.json()["appid"] == services.service_principal["client_id"]
        assert services.write_endpoints(tmp_path).stat().st_mode & 0o077 == 0
    finally:
        services.shutdown()
