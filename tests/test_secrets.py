"""Secret stores; the Key Vault store runs the real SecretClient against the sandbox vault (HTTPS)."""

from __future__ import annotations

import pytest
from auth_fixtures import (
    CANARY,
    FORBIDDEN_NAME,
    PREFIX,
    READER_ID,
    READER_SECRET,
    TENANT,
    AuthSandbox,
    auth_sandbox_fixture,  # noqa: F401 - fixture "auth_sandbox"
    closed_port,
    requests_ca_bundle_fixture,  # noqa: F401 - fixture "requests_ca_bundle"
)

from hdiaks_widgets.auth import ClientCredentialsProvider
from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.errors import SecretError
from hdiaks_widgets.secrets import (
    BearerToken,
    DictSecretStore,
    EnvSecretStore,
    KeyVaultSecretStore,
    ProviderCredential,
    SecretStore,
    build_path,
    store_for_profile,
)

pytestmark = pytest.mark.usefixtures("requests_ca_bundle")


def _reader(sb: AuthSandbox, secret: str = READER_SECRET) -> ClientCredentialsProvider:
    return ClientCredentialsProvider(tenant_id=TENANT, client_id=READER_ID, client_secret=secret,
                                     authority_host=sb.authority_host, verify=sb.ca_pem)


def _vault(sb: AuthSandbox, **kw: object) -> KeyVaultSecretStore:
    return KeyVaultSecretStore(sb.vault_url, _reader(sb), verify=sb.ca_pem, **kw)  # type: ignore[arg-type]


# -- Airflow AzureKeyVaultBackend naming ----------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "key", "sep", "expected"),
    [
        pytest.param("hdinsight-aks-variables", "api-client-id", "-", "hdinsight-aks-variables-api-client-id",
                     id="sample-variable"),
        pytest.param("hdinsight-aks-variables", "spark_cluster_fqdn", "-",
                     "hdinsight-aks-variables-spark-cluster-fqdn", id="underscores-in-key"),
        pytest.param("airflow-connections", "smtp_default", "-", "airflow-connections-smtp-default",
                     id="connection"),
        pytest.param("my_prefix", "key", "-", "my-prefix-key", id="underscores-in-prefix"),
        pytest.param("", "api-secret", "-", "api-secret", id="empty-prefix"),
        pytest.param(None, "tenant_id", "-", "tenant-id", id="no-prefix"),
        pytest.param("hilo-variables", "api-secret", "-", "hilo-variables-api-secret", id="logic-app-prefix"),
    ],
)
def test_build_path_matches_airflow_key_vault_backend(prefix: str | None, key: str, sep: str, expected: str) -> None:
    assert build_path(prefix, key, sep) == expected


# -- Key Vault store over HTTPS -----------------------------------------------------------------------


def test_key_vault_store_reads_secret_with_real_secret_client(auth_sandbox: AuthSandbox) -> None:
    assert _vault(auth_sandbox).get("api-client-id") == "hdiaks-test-app"


def test_key_vault_store_many_reads_need_at_most_one_token_request(auth_sandbox: AuthSandbox) -> None:
    store = _vault(auth_sandbox)
    before, ids_before = auth_sandbox.vault_stats(), auth_sandbox.stats()
    values = [store.get("tenant-id") for _ in range(5)]
    after, ids_after = auth_sandbox.vault_stats(), auth_sandbox.stats()
    assert values == [TENANT] * 5
    assert after["served"] - before["served"] == 5
    assert after["challenges"] - before["challenges"] <= 1  # azure-core caches the challenge per vault
    assert ids_after["token_requests"] - ids_before["token_requests"] <= 1


def test_key_vault_store_missing_secret_names_it_and_the_az_command(auth_sandbox: AuthSandbox) -> None:
    with pytest.raises(SecretError) as info:
        _vault(auth_sandbox).get("no_such_key")
    name = f"{PREFIX}-no-such-key"
    assert info.value.secret_name == name
    assert f"az keyvault secret set --vault-name <vault-name> --name {name} --value <value>" in str(info.value)


def test_key_vault_store_az_command_names_a_public_vault() -> None:
    store = KeyVaultSecretStore("https://myvault.vault.azure.net/", lambda scopes: BearerToken("t", 0))
    assert "--vault-name myvault " in store._create_hint("x")


def test_key_vault_store_forbidden_secret_raises_clear_secret_error(auth_sandbox: AuthSandbox) -> None:
    with pytest.raises(SecretError, match="HTTP 403") as info:
        _vault(auth_sandbox).get("locked_away")
    assert info.value.secret_name == FORBIDDEN_NAME
    assert "Key Vault Secrets User" in str(info.value)


def test_key_vault_store_unreachable_vault_raises_clear_secret_error(auth_sandbox: AuthSandbox) -> None:
    store = KeyVaultSecretStore(f"https://127.0.0.1:{closed_port()}", _reader(auth_sandbox),
                                verify=auth_sandbox.ca_pem, retry_total=0)
    with pytest.raises(SecretError, match="Cannot reach vault"):
        store.get("api-secret")


def test_key_vault_store_reader_with_wrong_secret_raises_secret_error(auth_sandbox: AuthSandbox) -> None:
    wrong = "reader-wrong-secret-xyz"
    with pytest.raises(SecretError, match="AADSTS7000215") as info:
        KeyVaultSecretStore(auth_sandbox.vault_url, _reader(auth_sandbox, wrong), verify=auth_sandbox.ca_pem
                            ).get("api-secret")
    assert wrong not in str(info.value)


def test_key_vault_store_rejects_names_key_vault_cannot_hold(auth_sandbox: AuthSandbox) -> None:
    with pytest.raises(SecretError, match="does not allow"):
        _vault(auth_sandbox).get("spark.conf value")


def test_key_vault_store_repr_shows_no_secret(auth_sandbox: AuthSandbox) -> None:
    store = _vault(auth_sandbox)
    assert store.get("api-secret") == CANARY
    assert READER_SECRET not in repr(store) and CANARY not in repr(store)


def test_provider_credential_returns_access_token_for_azure_core() -> None:
    credential = ProviderCredential(lambda scopes: BearerToken("tok-" + scopes[0], 1234))
    token = credential.get_token("https://vault.azure.net/.default", tenant_id="t", enable_cae=True)
    assert (token.token, token.expires_on) == ("tok-https://vault.azure.net/.default", 1234)


# -- environment and dict stores ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["AIRFLOW_VAR_API-SECRET", "AIRFLOW_VAR_API_SECRET", "API_SECRET"],
    ids=["airflow-exact", "airflow-shell", "plain"],
)
def test_env_store_reads_airflow_and_plain_names(name: str) -> None:
    assert EnvSecretStore({name: "v1"}).get("api-secret") == "v1"


def test_env_store_missing_names_the_variables_to_set() -> None:
    with pytest.raises(SecretError, match="AIRFLOW_VAR_API_SECRET, API_SECRET") as info:
        EnvSecretStore({"OTHER": "x"}).get("api-secret")
    assert info.value.secret_name == "api-secret"


def test_dict_store_repr_lists_keys_not_values() -> None:
    store = DictSecretStore({"api-secret": CANARY})
    assert store.get("api-secret") == CANARY
    assert "api-secret" in repr(store) and CANARY not in repr(store)


def test_dict_store_missing_key_raises_secret_error() -> None:
    with pytest.raises(SecretError, match="'tenant-id'"):
        DictSecretStore({}).get("tenant-id")


# -- store_for_profile ----------------------------------------------------------------------------------


def test_store_for_profile_env_source_gives_env_store() -> None:
    store = store_for_profile(ClusterProfile(secret_source="env"), environ={"TENANT_ID": "t1"})
    assert isinstance(store, SecretStore) and store.get("tenant-id") == "t1"


def test_store_for_profile_none_source_explains_itself() -> None:
    with pytest.raises(SecretError, match="secret_source is 'none'"):
        store_for_profile(ClusterProfile(secret_source="none")).get("api-secret")


def test_store_for_profile_key_vault_needs_a_token_provider() -> None:
    profile = ClusterProfile(secret_source="keyvault", vault_url="https://kv1.vault.azure.net")
    with pytest.raises(SecretError, match="token provider"):
        store_for_profile(profile)


def test_store_for_profile_key_vault_uses_profile_prefix(auth_sandbox: AuthSandbox) -> None:
    profile = ClusterProfile(secret_source="keyvault", vault_url=auth_sandbox.vault_url,
                             variables_prefix="hilo-variables", verify=auth_sandbox.ca_pem)
    store = store_for_profile(profile, token_provider=_reader(auth_sandbox))
    assert isinstance(store, KeyVaultSecretStore)
    assert store.secret_name("api-secret") == "hilo-variables-api-secret"
