"""The dialect table (hdiaks_widgets.dialects) against PROTOCOL.md §8 and the sandbox's dialects."""

from __future__ import annotations

import json

import pytest

from hdiaks_widgets import dialects as d


def test_every_flavour_has_a_dialect() -> None:
    assert set(d.DIALECTS) >= {"livy", "sandbox", "hdinsight", "hdinsight-aks", "fabric", "synapse"}


@pytest.mark.parametrize(("flavour", "status"), [("livy", 201), ("fabric", 202), ("synapse", 200)])
def test_submit_answers(flavour: str, status: int) -> None:
    assert status in d.dialect_of(flavour).submit_status


def test_list_requests_follow_each_dialect() -> None:
    assert d.dialect_of("livy").list_params(40, 500) == {"from": "40", "size": "500"}
    assert d.dialect_of("synapse").list_params(0, 100) == {"from": "0", "size": "20"}
    assert d.dialect_of("fabric").list_params(5, 1000) == {"$top": "100", "$skip": "5"}


def test_list_answers_follow_each_dialect() -> None:
    fabric = {"items": [{"id": "a"}, {"id": "b"}], "totalCountOfMatchedItems": 7, "pageSize": 2}
    assert d.dialect_of("fabric").parse_list(fabric) == (7, [{"id": "a"}, {"id": "b"}])
    livy = {"from": 0, "total": 3, "sessions": [{"id": 1}]}
    assert d.dialect_of("livy").parse_list(livy) == (3, [{"id": 1}])
    assert d.dialect_of("livy").parse_list({"sessions": [{"id": 1}]}) == (1, [{"id": 1}])


def test_endpoints_the_services_do_not_have() -> None:
    for flavour in ("fabric", "synapse"):
        dialect = d.dialect_of(flavour)
        assert not dialect.has_state_endpoint and not dialect.has_log_endpoint, flavour
    assert d.dialect_of("livy").has_log_endpoint
    assert d.dialect_of("synapse").required_fields == {"name", "file"}
    assert d.dialect_of("fabric").refused_fields == {"proxy_user", "queue"}


@pytest.mark.parametrize(
    ("state", "result", "livy"),
    [
        ("submitting", None, "starting"),
        ("not_submitted", None, "not_started"),
        ("running", "Uncertain", "running"),
        ("dead", "Cancelled", "killed"),
        ("dead", "Failed", "dead"),
        ("success", "Succeeded", "success"),
        ("killed", None, "killed"),
    ],
)
def test_states_and_results_map_onto_livys(state: str, result: str | None, livy: str) -> None:
    assert d.livy_state(state, result) == livy


def test_error_bodies_of_every_dialect() -> None:
    assert d.error_message({"msg": "Rejected"}) == "Rejected"
    fabric = {"errorCode": "InvalidInput", "message": "bad", "requestId": "r",
              "moreDetails": [{"message": "proxyUser is not supported"}]}  # fmt: skip
    assert d.error_message(fabric) == "InvalidInput: bad (proxyUser is not supported)"
    assert d.error_message({"error": {"code": "X", "message": "y"}}) == "X: y"
    assert d.error_message({"TraceId": "t", "Message": "name is required"}) == "name is required"  # Synapse
    assert d.error_message("not json") is None


def test_throttling_answers() -> None:
    assert d.throttle_kind(430, {"errorCode": "TooManyRequestsForCapacity"}) == "capacity"
    assert d.throttle_kind(429, {}) == "rate"
    assert d.throttle_kind(500, {}) is None


def test_scopes_and_urls() -> None:
    assert d.hdinsight_entra_scope("mycluster") == "https://mycluster.clusteraccess.azurehdinsight.net/.default"
    assert d.hdinsight_entra_scope("c.azurehdinsight.cn") == "https://c.clusteraccess.azurehdinsight.cn/.default"
    ws, lh = "0b6f2c7e-8d3a-4c2e-9a43-1f0e6a7b8c9d", "5e8d1f4a-2b3c-4d5e-8f9a-0b1c2d3e4f5a"
    assert d.fabric_base_url(ws, lh) == (
        f"https://api.fabric.microsoft.com/v1/workspaces/{ws}/lakehouses/{lh}/livyApi/versions/2023-12-01"
    )
    assert d.synapse_base_url("myws", "pool1") == (
        "https://myws.dev.azuresynapse.net/livyApi/versions/2020-12-01/sparkPools/pool1"
    )
    assert d.is_guid(ws) and not d.is_guid("https://app.fabric.microsoft.com/groups/x")


def test_fabric_conf() -> None:
    conf = d.fabric_conf("lh", "env")
    assert conf["spark.targetLakehouse"] == "lh"
    assert json.loads(conf["spark.fabric.environmentDetails"]) == {"id": "env"}
    assert d.fabric_conf("lh") == {"spark.targetLakehouse": "lh"}


def test_a_final_result_wins_over_a_state_that_is_not_final() -> None:
    # Fabric: spark-submit never ran (a missing file) -> not_submitted with result Failed.
    assert d.livy_state("not_submitted", "Failed") == "dead"
    assert d.livy_state("not_submitted", "Uncertain") == "not_started"


@pytest.mark.parametrize(("text", "version"), [("0.7.1-incubating", (0, 7, 1)), ("0.9.0", (0, 9, 0)),
                                               ("1.0", (1, 0, 0)), ("", None), ("dev", None), (None, None)])
def test_livy_version_parses_versions_servers_send(text: object, version: tuple[int, int, int] | None) -> None:
    assert d.livy_version(text) == version


def test_name_lookup_per_dialect() -> None:
    assert d.dialect_of("livy").name_lookup == "version" and d.dialect_of("sandbox").name_lookup == "version"
    assert d.dialect_of("fabric").name_lookup == "list" and d.dialect_of("synapse").name_lookup == "list"
    assert d.dialect_of("hdinsight").name_lookup == "try"


def test_log_location_of_each_service() -> None:
    ws, lh = "0b6f2c7e-8d3a-4c2e-9a43-1f0e6a7b8c9d", "5e8d1f4a-2b3c-4d5e-8f9a-0b1c2d3e4f5a"
    where = d.log_location(d.dialect_of("fabric"), d.fabric_base_url(ws, lh, host="http://127.0.0.1:9") + "/",
                           "b-1", "app 1")  # fmt: skip
    assert (where.origin, where.workspace_id, where.lakehouse_id) == ("http://127.0.0.1:9", ws, lh)
    assert where.batch_id == "b-1"
    assert where.url == (f"http://127.0.0.1:9/v1/workspaces/{ws}/lakehouses/{lh}/livySessions/b-1/applications/"
                         "app%201/logs")  # fmt: skip
    where = d.log_location(d.dialect_of("synapse"), "https://gw.example/proxy/livyApi/versions/v/sparkPools/p1", 4, "a")
    assert where.url == "https://gw.example/proxy/sparkhistory/api/v1/sparkpools/p1/livyid/4/applications/a/driverlog"
    assert where.origin == "https://gw.example" and where.pool == "p1"
    odd = d.log_location(d.dialect_of("fabric"), "https://example.test/not/fabric", "x", "a")
    assert odd.url is None and odd.origin == "https://example.test"
    hdi = d.log_location(d.dialect_of("hdinsight"), "https://c.azurehdinsight.net/livy", 3, None)
    assert hdi.source == "nodemanager" and hdi.url is None
    assert d.fabric_lakehouse(d.fabric_base_url(ws, lh)) == lh and d.fabric_lakehouse("http://x/batches") is None


def test_token_scope_per_dialect() -> None:
    assert d.token_scope(d.dialect_of("fabric"), "http://127.0.0.1:1/v1") == d.FABRIC_SCOPE
    assert d.token_scope(d.dialect_of("synapse"), "https://w.dev.azuresynapse.net") == d.SYNAPSE_SCOPE
    hdi = d.dialect_of("hdinsight")
    assert d.token_scope(hdi, "https://mycluster.azurehdinsight.net/livy") == d.hdinsight_entra_scope("mycluster")
    assert d.token_scope(hdi, "http://127.0.0.1:8998/livy") is None
    assert d.token_scope(d.dialect_of("livy"), "https://x.azurehdinsight.net") is None
