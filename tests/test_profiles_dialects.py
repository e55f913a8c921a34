"""Profiles of the service flavours: fabric, synapse, classic HDInsight with Entra ID.

Validation (each bad value names its field and the fix; a pasted portal or endpoint address gives
the id in it), base URLs and token scopes per flavour, the JSON file round trip, Fabric's conf
injections, the auth plug-ins ``connect.build_auth`` makes, secrets kept out of reprs and errors,
and, against the sandbox (real Key Vault client, real ``msal``), a service principal's token for
each flavour's scope accepted at that dialect's path and refused at another's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from hdiaks_widgets import dialects
from hdiaks_widgets.auth import DeviceCodeAuth, ServicePrincipalAuth, vault_token_provider
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.connect import build_auth
from hdiaks_widgets.errors import ConfigError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.secrets import CLIENT_ID_KEY, CLIENT_SECRET_KEY, TENANT_ID_KEY, DictSecretStore, store_for_profile

if TYPE_CHECKING:
    from conftest import SandboxHandle

WS = "8b4c2c1e-1111-4222-8333-444455556666"
LH = "9c5d3d2f-aaaa-4bbb-8ccc-ddddeeeeffff"
ENV = "41ce06d1-d81b-4ea0-bc6d-2ce3dd2f8e87"
CANARY = "CANARY~pr0f1le.9f3e7a"  # a secret value (Entra secrets hold ~ and .): never in a repr or an error
PORTAL = f"https://app.fabric.microsoft.com/groups/{WS}/lakehouses/{LH}?experience=data-engineering"
FABRIC_API = f"https://api.fabric.microsoft.com/v1/workspaces/{WS}/lakehouses/{LH}/livyApi/versions/2023-12-01"
SYNAPSE_ENDPOINT = "https://myws.dev.azuresynapse.net/livyApi/versions/2020-12-01/sparkPools/mypool"
STUDIO = ("https://web.azuresynapse.net/en/home?workspace=%2Fsubscriptions%2F0000%2FresourceGroups%2Frg%2F"
          "providers%2FMicrosoft.Synapse%2Fworkspaces%2Fmyws")  # fmt: skip


def _fabric(**changes: Any) -> ClusterProfile:
    return dataclasses.replace(ClusterProfile(name="fab", flavour="fabric", workspace_id=WS, lakehouse_id=LH),
                               **changes)  # fmt: skip


def _synapse(**changes: Any) -> ClusterProfile:
    return dataclasses.replace(ClusterProfile(name="syn", flavour="synapse", workspace="myws", pool="pool1"),
                               **changes)  # fmt: skip


def _hdi(**changes: Any) -> ClusterProfile:
    base = ClusterProfile(name="hdi", flavour="hdinsight", fqdn="mycluster", auth="entra", tenant_id="contoso")
    return dataclasses.replace(base, **changes)


_BUILD = {"fabric": _fabric, "synapse": _synapse, "hdinsight": _hdi}


def _messages(profile: ClusterProfile, field: str) -> list[str]:
    return [p.message for p in profile.problems() if p.field == field]


# -- validation ----------------------------------------------------------------------------------

# (flavour, changes, field that must be reported, a phrase of the fix)
BAD = [
    pytest.param("fabric", {"workspace_id": None}, "profile.workspace_id", "after /groups/", id="fabric-ws-missing"),
    pytest.param("fabric", {"lakehouse_id": ""}, "profile.lakehouse_id", "after /lakehouses/", id="fabric-lh-empty"),
    pytest.param("fabric", {"workspace_id": "my workspace"}, "profile.workspace_id", "is not a GUID",
                 id="fabric-ws-name"),
    pytest.param("fabric", {"lakehouse_id": LH[:-1]}, "profile.lakehouse_id", "8-4-4-4-12", id="fabric-lh-short"),
    pytest.param("fabric", {"lakehouse_id": "{" + LH + "}"}, "profile.lakehouse_id", f"braces around the GUID; "
                 f"use {LH}", id="fabric-lh-braces"),
    pytest.param("fabric", {"workspace_id": 42}, "profile.workspace_id", "as text", id="fabric-ws-number"),
    pytest.param("fabric", {"environment_id": "dev"}, "profile.environment_id", "is not a GUID",
                 id="fabric-env-name"),
    pytest.param("fabric", {"workspace_id": PORTAL}, "profile.workspace_id",
                 f"looks like a Fabric URL: the workspace id is {WS}", id="fabric-portal-url-as-ws"),
    pytest.param("fabric", {"lakehouse_id": PORTAL}, "profile.lakehouse_id",
                 f"looks like a Fabric URL: the lakehouse id is {LH}", id="fabric-portal-url-as-lh"),
    pytest.param("fabric", {"workspace_id": FABRIC_API + "/batches"}, "profile.workspace_id",
                 f"the workspace id is {WS}", id="fabric-api-url-as-ws"),
    pytest.param("fabric", {"workspace_id": f"app.fabric.microsoft.com/groups/{WS}/list"}, "profile.workspace_id",
                 f"set workspace_id to {WS}", id="fabric-url-without-scheme"),
    pytest.param("fabric", {"lakehouse_id": f"https://app.fabric.microsoft.com/groups/{WS}/list"},
                 "profile.lakehouse_id", "address without the lakehouse id", id="fabric-url-without-the-id"),
    pytest.param("fabric", {"environment_id": f"https://app.fabric.microsoft.com/groups/{WS}/environments/{ENV}"},
                 "profile.environment_id", f"the environment id is {ENV}", id="fabric-env-url"),
    pytest.param("fabric", {"url": FABRIC_API + "/batches", "workspace_id": None, "lakehouse_id": None},
                 "profile.url", f"set workspace_id to {WS} and lakehouse_id to {LH}", id="fabric-endpoint-as-url"),
    pytest.param("fabric", {"url": "http://127.0.0.1:8998/v1"}, "profile.url", "no path", id="fabric-url-path"),
    pytest.param("fabric", {"url": "http://10.1.2.3:8998"}, "profile.url", "https://", id="fabric-url-http-remote"),
    pytest.param("fabric", {"url": "http://u:pw@127.0.0.1:8998"}, "profile.url", "credentials",
                 id="fabric-url-credentials"),
    pytest.param("fabric", {"url": "127.0.0.1:8998"}, "profile.url", "scheme://host", id="fabric-url-no-scheme"),
    pytest.param("fabric", {"api_version": "2023-12"}, "profile.api_version", "YYYY-MM-DD", id="fabric-api-short"),
    pytest.param("fabric", {"api_version": "2023-13-01"}, "profile.api_version", "like 2023-12-01",
                 id="fabric-api-month-13"),
    pytest.param("fabric", {"api_version": "v1"}, "profile.api_version", "leave it out", id="fabric-api-v1"),
    pytest.param("fabric", {"auth": "basic"}, "profile.auth", "accepts only Entra ID", id="fabric-basic"),
    pytest.param("fabric", {"auth": "none"}, "profile.auth", "only works with a url pointing at the local sandbox",
                 id="fabric-none-real-host"),
    pytest.param("fabric", {"livy_path": "/livy"}, "profile.livy_path", "not used by Fabric", id="fabric-livy-path"),
    pytest.param("fabric", {"scope": ClusterProfile().token_scope}, "profile.scope",
                 "remove scope to use https://api.fabric.microsoft.com/.default", id="fabric-aks-scope-left-over"),
    pytest.param("fabric", {"scope": "https://api.fabric.microsoft.com/Lakehouse.Execute.All"}, "profile.scope",
                 "/.default", id="fabric-sp-delegated-scope"),
    pytest.param("synapse", {"workspace": None}, "profile.workspace", "myws for https://myws.dev.azuresynapse.net",
                 id="synapse-ws-missing"),
    pytest.param("synapse", {"workspace": "myws.dev.azuresynapse.net"}, "profile.workspace",
                 "the workspace name is myws; set workspace to myws", id="synapse-ws-host"),
    pytest.param("synapse", {"workspace": "https://myws.dev.azuresynapse.net/"}, "profile.workspace",
                 "set workspace to myws", id="synapse-ws-url"),
    pytest.param("synapse", {"workspace": "myws-ondemand.sql.azuresynapse.net"}, "profile.workspace",
                 "set workspace to myws", id="synapse-ws-serverless-host"),
    pytest.param("synapse", {"workspace": STUDIO}, "profile.workspace", "set workspace to myws",
                 id="synapse-ws-studio-url"),
    pytest.param("synapse", {"workspace": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Synapse/"
                             "workspaces/myws"}, "profile.workspace", "set workspace to myws",
                 id="synapse-ws-resource-id"),
    pytest.param("synapse", {"workspace": "my_ws"}, "profile.workspace", "letters, digits and '-'",
                 id="synapse-ws-underscore"),
    pytest.param("synapse", {"workspace": "myws-"}, "profile.workspace", "ending", id="synapse-ws-trailing-hyphen"),
    pytest.param("synapse", {"workspace": "myws-ondemand"}, "profile.workspace", "without it",
                 id="synapse-ws-ondemand"),
    pytest.param("synapse", {"workspace": "w" * 51}, "profile.workspace", "at most 50", id="synapse-ws-51"),
    pytest.param("synapse", {"pool": ""}, "profile.pool", "Apache Spark pools", id="synapse-pool-empty"),
    pytest.param("synapse", {"pool": "spark-pool"}, "profile.pool", "only letters and digits",
                 id="synapse-pool-hyphen"),
    pytest.param("synapse", {"pool": "spark_pool"}, "profile.pool", "only letters and digits",
                 id="synapse-pool-underscore"),
    pytest.param("synapse", {"pool": "1pool"}, "profile.pool", "start with a letter", id="synapse-pool-digit-first"),
    pytest.param("synapse", {"pool": "p" * 16}, "profile.pool", "at most 15", id="synapse-pool-16"),
    pytest.param("synapse", {"pool": "pool 1"}, "profile.pool", "only letters and digits", id="synapse-pool-space"),
    pytest.param("synapse", {"pool": SYNAPSE_ENDPOINT}, "profile.pool", "the pool name is mypool; set pool to mypool",
                 id="synapse-pool-url"),
    pytest.param("synapse", {"url": SYNAPSE_ENDPOINT, "workspace": None, "pool": None}, "profile.url",
                 "set workspace to myws and pool to mypool", id="synapse-endpoint-as-url"),
    pytest.param("synapse", {"api_version": "2020-12-01/batches"}, "profile.api_version", "like 2020-12-01",
                 id="synapse-api-path"),
    pytest.param("synapse", {"auth": "basic"}, "profile.auth", "accepts only Entra ID", id="synapse-basic"),
    pytest.param("synapse", {"fqdn": "myws.dev.azuresynapse.net"}, "profile.fqdn", "not used by Synapse",
                 id="synapse-fqdn"),
    pytest.param("synapse", {"scope": dialects.FABRIC_SCOPE}, "profile.scope",
                 "is Fabric's scope, not Synapse's", id="synapse-fabric-scope"),
    pytest.param("hdinsight", {"tenant_id": None}, "profile.tenant_id", "required for auth 'entra'",
                 id="hdi-entra-no-tenant"),
    pytest.param("hdinsight", {"scope": "https://other.clusteraccess.azurehdinsight.net/.default"}, "profile.scope",
                 "cluster other", id="hdi-entra-scope-of-another-cluster"),
    pytest.param("hdinsight", {"url": "http://127.0.0.1:8998/livy"}, "profile.url", "no path",
                 id="hdi-url-with-path"),
    pytest.param("hdinsight", {"fqdn": "https://mycluster.azurehdinsight.net"}, "profile.fqdn",
                 "give the cluster name or its host only", id="hdi-fqdn-url"),
]


@pytest.mark.parametrize(("flavour", "changes", "field", "fix"), BAD)
def test_profile_bad_value_names_the_field_and_the_fix(flavour: str, changes: dict[str, Any], field: str,
                                                       fix: str) -> None:  # fmt: skip
    profile = _BUILD[flavour](**changes)
    messages = _messages(profile, field)
    assert messages, [str(p) for p in profile.problems()]
    assert any(fix in m for m in messages), messages
    with pytest.raises(ConfigError) as caught:
        profile.validate()
    assert field in caught.value.fields


@pytest.mark.parametrize("profile", [
    _fabric(),
    _fabric(environment_id=ENV, api_version="2024-07-30", auth="device-code", client_id="app", tenant_id="t"),
    _fabric(url="http://127.0.0.1:8998", auth="none"), _fabric(url="https://fabric-proxy.example.com", auth="entra"),
    _fabric(lakehouse_id=LH.upper()), _fabric(scope="https://analysis.windows.net/powerbi/api/.default"),
    _synapse(), _synapse(workspace="My-WS-01", pool="SparkPool01", api_version="2019-11-01-preview"),
    _synapse(url="http://localhost:8998"), _synapse(pool="p" * 15),
    _hdi(), _hdi(auth=None, username="admin", tenant_id=None), _hdi(url="http://127.0.0.1:8998"),
    _hdi(fqdn="mycluster.azurehdinsight.cn"),
], ids=["fabric", "fabric-all-fields", "fabric-sandbox-no-auth", "fabric-https-origin", "fabric-upper-guid",
        "fabric-power-bi-scope", "synapse", "synapse-mixed-case", "synapse-localhost", "synapse-pool-15",
        "hdi-entra", "hdi-basic", "hdi-entra-sandbox", "hdi-china"])  # fmt: skip
def test_profile_good_service_profiles_have_no_problems(profile: ClusterProfile) -> None:
    assert profile.problems() == []


def test_profile_pasted_portal_url_names_both_ids() -> None:
    (message,) = _messages(_fabric(workspace_id=PORTAL), "profile.workspace_id")
    assert f"set workspace_id to {WS}" in message and f"its lakehouse id, {LH}, goes in lakehouse_id" in message


def test_profile_endpoint_pasted_as_url_is_said_once() -> None:
    problems = _fabric(url=FABRIC_API, workspace_id=None, lakehouse_id=None).problems()
    assert [p.field for p in problems] == ["profile.url"]


def test_profile_basic_on_fabric_does_not_also_ask_for_a_username() -> None:
    assert [p.field for p in _fabric(auth="basic").problems()] == ["profile.auth"]


def test_profile_every_problem_is_reported_at_once() -> None:
    profile = _synapse(workspace="myws.dev.azuresynapse.net", pool="my-pool", api_version="x", auth="basic")
    assert {p.field for p in profile.problems()} == {"profile.workspace", "profile.pool", "profile.api_version",
                                                     "profile.auth"}  # fmt: skip


# -- base URLs, scopes, auth methods ---------------------------------------------------------------


@pytest.mark.parametrize(("profile", "base_url"), [
    (_fabric(), FABRIC_API),
    (_fabric(api_version="2024-07-30"), FABRIC_API.replace("2023-12-01", "2024-07-30")),
    (_fabric(url="http://127.0.0.1:8998/"),
     f"http://127.0.0.1:8998/v1/workspaces/{WS}/lakehouses/{LH}/livyApi/versions/2023-12-01"),
    (_synapse(), "https://myws.dev.azuresynapse.net/livyApi/versions/2020-12-01/sparkPools/pool1"),
    (_synapse(url="http://127.0.0.1:8998"), "http://127.0.0.1:8998/livyApi/versions/2020-12-01/sparkPools/pool1"),
    (_hdi(), "https://mycluster.azurehdinsight.net/livy"),
    (_hdi(url="http://127.0.0.1:8998"), "http://127.0.0.1:8998/livy"),
    (_hdi(url="http://127.0.0.1:8998", livy_path="/gateway/livy"), "http://127.0.0.1:8998/gateway/livy"),
    (ClusterProfile(flavour="hdinsight-aks", fqdn="c.p.1.eastus.hdinsightaks.net"),
     "https://c.p.1.eastus.hdinsightaks.net/p/livy"),
], ids=["fabric", "fabric-version", "fabric-sandbox", "synapse", "synapse-sandbox", "hdi", "hdi-sandbox",
        "hdi-sandbox-path", "aks"])  # fmt: skip
def test_profile_base_url_per_flavour(profile: ClusterProfile, base_url: str) -> None:
    assert profile.base_url == base_url


@pytest.mark.parametrize(("profile", "scope"), [
    (_fabric(), "https://api.fabric.microsoft.com/.default"),
    (_fabric(url="http://127.0.0.1:8998"), "https://api.fabric.microsoft.com/.default"),
    (_synapse(), "https://dev.azuresynapse.net/.default"),
    (_hdi(), "https://mycluster.clusteraccess.azurehdinsight.net/.default"),
    (_hdi(fqdn="mycluster.azurehdinsight.net"), "https://mycluster.clusteraccess.azurehdinsight.net/.default"),
    (_hdi(fqdn="mycluster.azurehdinsight.cn"), "https://mycluster.clusteraccess.azurehdinsight.cn/.default"),
    (ClusterProfile(flavour="hdinsight-aks", fqdn="c.hdinsightaks.net"), "https://hilo.azurehdinsight.net/.default"),
    (ClusterProfile(flavour="sandbox", url="http://127.0.0.1:8998"), "https://hilo.azurehdinsight.net/.default"),
    (_fabric(scope="https://analysis.windows.net/powerbi/api/.default"),
     "https://analysis.windows.net/powerbi/api/.default"),
], ids=["fabric", "fabric-sandbox", "synapse", "hdi-name", "hdi-fqdn", "hdi-china", "aks", "sandbox",
        "given"])  # fmt: skip
def test_profile_token_scope_per_flavour(profile: ClusterProfile, scope: str) -> None:
    assert profile.token_scope == scope


@pytest.mark.parametrize(("profile", "method"), [
    (_fabric(), "service-principal"), (_synapse(), "service-principal"), (_fabric(auth="entra"), "service-principal"),
    (_fabric(auth="device-code"), "device-code"), (_hdi(), "service-principal"), (_hdi(auth=None), "basic"),
], ids=["fabric", "synapse", "fabric-entra", "fabric-device-code", "hdi-entra", "hdi-default"])  # fmt: skip
def test_profile_auth_method_per_flavour(profile: ClusterProfile, method: str) -> None:
    assert profile.auth_method == method


def test_profile_flavours_match_the_dialects() -> None:
    for flavour in ("fabric", "synapse", "hdinsight", "hdinsight-aks", "livy", "sandbox"):
        assert dialects.dialect_of(flavour).name == flavour


# -- the job file ----------------------------------------------------------------------------------


NEW_FIELDS = [
    _fabric(environment_id=ENV, api_version="2024-07-30", url="http://127.0.0.1:8998", auth="entra", tenant_id="t"),
    _synapse(api_version="2020-12-01", scope="https://dev.azuresynapse.net/.default", auth="device-code",
             client_id="app", tenant_id="t"),
    _hdi(url="http://127.0.0.1:8998", livy_path="/livy"),
]


@pytest.mark.parametrize("profile", NEW_FIELDS, ids=["fabric", "synapse", "hdi-entra"])
@pytest.mark.parametrize("style", ["plain", "commented"])
def test_profile_new_fields_round_trip_through_the_job_file(tmp_path: Path, profile: ClusterProfile,
                                                            style: str) -> None:  # fmt: skip
    cfg = JobConfig(profile=profile, spec=BatchSpec(file="abfss://jobs@acct1.dfs.core.windows.net/app.py", name="j"))
    path = tmp_path / "job.json"
    if style == "plain":
        cfg.save(path)
    else:
        cfg.save(path, comments={"profile": "a comment"}, omit_defaults=True)
    loaded = JobConfig.load(path)
    assert loaded == cfg
    assert loaded.profile.base_url == profile.base_url and loaded.profile.token_scope == profile.token_scope


def test_profile_scope_left_out_is_not_written_and_reads_back_as_the_flavours(tmp_path: Path) -> None:
    cfg = JobConfig(profile=_synapse(), spec=BatchSpec(file="abfss://jobs@acct1.dfs.core.windows.net/app.py"))
    text = cfg.to_json(omit_defaults=True, comments={"": "x"})
    assert '"scope"' not in text and '"api_version"' not in text
    assert JobConfig.from_json(text).profile.token_scope == dialects.SYNAPSE_SCOPE


def test_profile_old_file_with_the_hilo_scope_on_a_fabric_profile_is_named() -> None:
    data = {"profile": {**_fabric().to_dict(), "scope": "https://hilo.azurehdinsight.net/.default"},
            "spec": {"file": "abfss://jobs@acct1.dfs.core.windows.net/app.py"}}  # fmt: skip
    problems = JobConfig.from_dict(data).problems()
    assert [p.field for p in problems] == ["profile.scope"]


# -- Fabric's conf ---------------------------------------------------------------------------------


def test_profile_conf_injections_carry_fabric_lakehouse_and_environment() -> None:
    assert _fabric().conf_injections() == {"spark.targetLakehouse": LH}
    assert _fabric(environment_id=ENV).conf_injections() == dialects.fabric_conf(LH, ENV)
    assert _synapse().conf_injections() == {} and _hdi().conf_injections() == {}


def test_profile_merge_conf_adds_the_injections_to_the_jobs_conf() -> None:
    merged = _fabric(environment_id=ENV).merge_conf({"spark.executor.instances": "2"})
    assert merged == {"spark.executor.instances": "2", **dialects.fabric_conf(LH, ENV)}
    assert _fabric().merge_conf(None) == {"spark.targetLakehouse": LH}
    assert _synapse().merge_conf({"a": "1"}) == {"a": "1"}


def test_profile_merge_conf_takes_the_same_lakehouse_in_any_case() -> None:
    assert _fabric().merge_conf({"spark.targetLakehouse": LH.upper()}) == {"spark.targetLakehouse": LH}


def test_profile_merge_conf_refuses_another_lakehouse_naming_both_fields() -> None:
    with pytest.raises(ConfigError) as caught:
        _fabric().merge_conf({"spark.targetLakehouse": WS})
    assert caught.value.fields == ("spec.conf[spark.targetLakehouse]",)
    assert "profile.lakehouse_id" in str(caught.value) and "spec.conf" in str(caught.value)


def test_profile_merge_conf_refuses_another_environment() -> None:
    conf = {"spark.fabric.environmentDetails": json.dumps({"id": WS})}
    with pytest.raises(ConfigError) as caught:
        _fabric(environment_id=ENV).merge_conf(conf)
    assert caught.value.fields == ("spec.conf[spark.fabric.environmentDetails]",)
    assert "profile.environment_id" in str(caught.value)
    # Without an environment in the profile the job's own stays.
    assert _fabric().merge_conf(conf)["spark.fabric.environmentDetails"] == conf["spark.fabric.environmentDetails"]


# -- auth plug-ins per flavour (no network: building them asks nothing yet) ---------------------------


SP_SECRETS = DictSecretStore({TENANT_ID_KEY: "contoso", CLIENT_ID_KEY: "app-id", CLIENT_SECRET_KEY: CANARY})


@pytest.mark.parametrize("profile", [_fabric(), _synapse(), _hdi()], ids=["fabric", "synapse", "hdi-entra"])
def test_build_auth_service_principal_asks_for_the_flavours_scope(profile: ClusterProfile) -> None:
    auth = build_auth(profile, SP_SECRETS)
    assert isinstance(auth, ServicePrincipalAuth)
    assert auth.scopes == [profile.token_scope]
    assert auth.provider.tenant_id == (profile.tenant_id or "contoso")


@pytest.mark.parametrize("build", [_fabric, _synapse, _hdi], ids=["fabric", "synapse", "hdi"])
def test_build_auth_device_code_asks_for_the_flavours_scope(build: Callable[..., ClusterProfile]) -> None:
    profile = build(auth="device-code", client_id="public-app", tenant_id="contoso")
    assert profile.problems() == []
    auth = build_auth(profile, DictSecretStore({}))
    assert isinstance(auth, DeviceCodeAuth) and auth.scopes == [profile.token_scope]


@pytest.mark.parametrize("profile", [_fabric(), _synapse(), _hdi()], ids=["fabric", "synapse", "hdi-entra"])
def test_profile_secrets_stay_out_of_reprs(profile: ClusterProfile) -> None:
    auth = build_auth(profile, SP_SECRETS)
    texts = [repr(profile), str(profile.to_dict()), repr(auth), repr(getattr(auth, "provider", None))]
    assert not any(CANARY in t for t in texts)


@pytest.mark.parametrize("flavour", ["fabric", "synapse", "hdinsight"])
@pytest.mark.parametrize("key", ["client_secret", "api_secret", "password"])
def test_profile_secret_key_in_a_service_profile_is_refused_without_its_value(flavour: str, key: str) -> None:
    data = {**_BUILD[flavour]().to_dict(), key: CANARY}
    with pytest.raises(ConfigError) as caught:
        ClusterProfile.from_dict(data)
    assert f"profile.{key}" in caught.value.fields and CANARY not in str(caught.value)


@pytest.mark.parametrize(("flavour", "field"), [
    ("fabric", "workspace_id"), ("fabric", "lakehouse_id"), ("fabric", "environment_id"), ("fabric", "api_version"),
    ("fabric", "url"), ("synapse", "workspace"), ("synapse", "pool"), ("synapse", "api_version"),
    ("synapse", "url"), ("hdinsight", "url"),
])  # fmt: skip
def test_profile_secret_pasted_into_a_field_is_not_repeated_in_the_error(flavour: str, field: str) -> None:
    value = f"http://u:{CANARY}@10.0.0.1:1" if field == "url" else CANARY
    profile = _BUILD[flavour](**{field: value})
    problems = [str(p) for p in profile.problems()]
    assert any(p.startswith(f"profile.{field}:") for p in problems), problems
    assert not any(CANARY in p for p in problems)


# -- against the sandbox: per-audience tokens, real Key Vault client and msal --------------------------

FABRIC_AUD = "https://api.fabric.microsoft.com"
SYNAPSE_AUD = "https://dev.azuresynapse.net"
HDI_AUD = "https://mycluster.clusteraccess.azurehdinsight.net"  # the fixture's --hdinsight-cluster


def _sandbox_profiles(box: SandboxHandle, **auth: Any) -> dict[str, ClusterProfile]:
    """One profile per Entra dialect, pointed at the sandbox's origin, signed in as the sandbox's
    service principal whose id, secret and tenant are read from its vault (Airflow's names)."""
    ep = box.process.endpoints()
    common: dict[str, Any] = dict(url=box.url, authority_host=ep["authority_host"], secret_source="keyvault",
                                  vault_url=ep["vault_url"], verify=ep["ca_pem"], **auth)  # fmt: skip
    return {
        "fabric": ClusterProfile(name="f", flavour="fabric", workspace_id=WS, lakehouse_id=LH, **common),
        "synapse": ClusterProfile(name="s", flavour="synapse", workspace="sandboxws", pool="authpool", **common),
        "hdinsight": ClusterProfile(name="h", flavour="hdinsight", fqdn="mycluster",
                                    tenant_id=ep["environment"]["AZURE_TENANT_ID"], **{"auth": "entra", **common}),
    }  # fmt: skip


def _get(box: SandboxHandle, url: str, auth: requests.auth.AuthBase | None) -> requests.Response:
    with box.http() as s:
        return s.get(url + "/batches", auth=auth, headers={"X-Requested-By": "hdiaks-tests"}, timeout=30)


def _refusal(answer: requests.Response) -> str:
    data = answer.json()
    return str(data.get("message") or data.get("msg") or data)


@pytest.mark.sandbox
@pytest.mark.parametrize("flavour", ["fabric", "synapse", "hdinsight"])
def test_sandbox_service_principal_token_for_the_flavours_scope_is_taken_at_its_path(
    dialect_auth_sandbox: SandboxHandle, flavour: str
) -> None:
    profile = _sandbox_profiles(dialect_auth_sandbox)[flavour]
    assert profile.problems() == []
    auth = build_auth(profile, environ=dialect_auth_sandbox.process.endpoints()["environment"])
    assert isinstance(auth, ServicePrincipalAuth) and auth.scopes == [profile.token_scope]
    answer = _get(dialect_auth_sandbox, profile.base_url, auth)
    assert answer.status_code == 200, answer.text


# (whose token, whose path, the audience the refusal must name)
CROSSED = [("fabric", "synapse", SYNAPSE_AUD), ("synapse", "fabric", FABRIC_AUD), ("fabric", "hdinsight", HDI_AUD),
           ("hdinsight", "synapse", SYNAPSE_AUD)]  # fmt: skip


@pytest.mark.sandbox
@pytest.mark.parametrize(("token_of", "path_of", "audience"), CROSSED, ids=[f"{a}-at-{b}" for a, b, _ in CROSSED])
def test_sandbox_token_of_one_flavour_is_refused_at_another_naming_its_audience(
    dialect_auth_sandbox: SandboxHandle, token_of: str, path_of: str, audience: str
) -> None:
    profiles = _sandbox_profiles(dialect_auth_sandbox)
    auth = build_auth(profiles[token_of], environ=dialect_auth_sandbox.process.endpoints()["environment"])
    answer = _get(dialect_auth_sandbox, profiles[path_of].base_url, auth)
    assert answer.status_code == 401 and audience in _refusal(answer), answer.text
    assert len(answer.history) == 1  # refused once more after the one refresh, not retried further


@pytest.mark.sandbox
@pytest.mark.parametrize("flavour", ["fabric", "synapse", "hdinsight"])
def test_sandbox_device_code_sign_in_for_the_flavours_scope_is_taken_at_its_path(
    dialect_auth_sandbox: SandboxHandle, flavour: str
) -> None:
    ep = dialect_auth_sandbox.process.endpoints()
    profile = dataclasses.replace(
        _sandbox_profiles(dialect_auth_sandbox)[flavour], auth="device-code", secret_source="none",
        client_id="hdiaks-sandbox-notebook", tenant_id=ep["environment"]["AZURE_TENANT_ID"],
    )  # fmt: skip
    assert profile.problems() == []
    auth = build_auth(profile)
    assert isinstance(auth, DeviceCodeAuth)
    auth.sign_in(timeout=60)  # the sandbox approves the code at once
    assert _get(dialect_auth_sandbox, profile.base_url, auth).status_code == 200


@pytest.mark.sandbox
def test_sandbox_fabric_profile_without_auth_is_refused_and_the_secret_never_shows(
    dialect_auth_sandbox: SandboxHandle,
) -> None:
    profiles = _sandbox_profiles(dialect_auth_sandbox)
    answer = _get(dialect_auth_sandbox, profiles["fabric"].base_url, None)
    assert answer.status_code == 401
    env = dialect_auth_sandbox.process.endpoints()["environment"]
    auth = build_auth(profiles["fabric"], environ=env)
    assert isinstance(auth, ServicePrincipalAuth)
    store = store_for_profile(profiles["fabric"], token_provider=vault_token_provider(profiles["fabric"], environ=env))
    secret = store.get(CLIENT_SECRET_KEY)
    assert secret and all(secret not in text for text in (repr(auth), repr(auth.provider), repr(profiles["fabric"]),
                                                          answer.text))  # fmt: skip


@pytest.mark.sandbox
@pytest.mark.parametrize("flavour", ["fabric", "synapse", "hdinsight"])
def test_sandbox_from_profile_speaks_the_flavours_dialect_with_csrf_only_where_it_wants_it(
    dialect_auth_sandbox: SandboxHandle, flavour: str
) -> None:
    profile = _sandbox_profiles(dialect_auth_sandbox)[flavour]
    sent: list[requests.PreparedRequest] = []
    with dialect_auth_sandbox.http() as session:
        session.hooks["response"].append(lambda r, *args, **kwargs: sent.append(r.request))
        client = LivyClient.from_profile(profile, session=session,
                                         environ=dialect_auth_sandbox.process.endpoints()["environment"])  # fmt: skip
        assert client.dialect.name == flavour and client.base_url == profile.base_url
        assert not client.list_batches().batches  # a fresh lakehouse / pool: nothing in it yet
    assert sent and all(r.headers["Authorization"].startswith("Bearer ") for r in sent)
    assert {"X-Requested-By" in r.headers for r in sent} == {dialects.dialect_of(flavour).csrf_header}


@pytest.mark.parametrize(("flavour", "example"), [("hdinsight", "mycluster.azurehdinsight.net"),
                                                   ("hdinsight-aks", "hdinsightaks.net")])  # fmt: skip
def test_a_missing_cluster_host_gives_the_flavours_own_example(flavour: str, example: str) -> None:
    problems = ClusterProfile(name="p", flavour=flavour).problems()
    fqdn = [p.message for p in problems if p.field == "profile.fqdn"]
    assert len(fqdn) == 1 and example in fqdn[0]
    assert flavour == "hdinsight-aks" or "hdinsightaks" not in fqdn[0]


def test_classic_hdinsight_without_sign_in_is_refused_unless_it_points_at_the_local_sandbox() -> None:
    real = ClusterProfile(name="p", flavour="hdinsight", fqdn="mycluster", auth="none")
    assert [p.field for p in real.problems()] == ["profile.auth"]
    assert "basic" in real.problems()[0].message and "entra" in real.problems()[0].message
    local = ClusterProfile(name="p", flavour="hdinsight", fqdn="mycluster", auth="none", url="http://127.0.0.1:8998")
    assert local.problems() == []
