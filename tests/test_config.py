"""Unit tests of hdiaks_widgets.config: validation, Livy request bodies, JSON files, trigger conf."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import ConfigError, HdiaksError

FQDN = "sparksample.aksclusterpool.0b130652e15b417e885a050c9a3024a2.eastus.hdinsightaks.net"
JAR = "abfs://jars@account1.dfs.core.windows.net/apps/spark-examples_2.12-3.3.3.jar"


def _aks_profile(**changes: Any) -> ClusterProfile:
    base = ClusterProfile(name="prod-eastus", flavour="hdinsight-aks", fqdn=FQDN)
    return dataclasses.replace(base, **changes)


def _spec(**changes: Any) -> BatchSpec:
    base = BatchSpec(file=JAR, class_name="org.apache.spark.examples.SparkPi", args=("10",), name="spark-pi")
    return dataclasses.replace(base, **changes)


def _job(profile: dict[str, Any] | None = None, spec: dict[str, Any] | None = None) -> JobConfig:
    return JobConfig(profile=_aks_profile(**(profile or {})), spec=_spec(**(spec or {})))


P, S = "profile", "spec"

# (section, changes, field that must be reported, key phrase of the fix)
BAD_INPUTS = [
    pytest.param(P, {"fqdn": "https://" + FQDN}, "profile.fqdn", "paste only the host name", id="fqdn-scheme"),
    pytest.param(P, {"fqdn": FQDN + "/p/livy"}, "profile.fqdn", "paste only the host name", id="fqdn-path"),
    pytest.param(P, {"fqdn": FQDN + "/"}, "profile.fqdn", "must not include a path", id="fqdn-trailing-slash"),
    pytest.param(P, {"fqdn": FQDN + ":443"}, "profile.fqdn", "must not include a port", id="fqdn-port"),
    pytest.param(P, {"fqdn": "spark sample.hdinsightaks.net"}, "profile.fqdn", "spaces", id="fqdn-space"),
    pytest.param(P, {"fqdn": ""}, "profile.fqdn", "paste only the host name", id="fqdn-empty"),
    pytest.param(P, {"fqdn": None}, "profile.fqdn", "is required", id="fqdn-missing"),
    pytest.param(P, {"fqdn": "bad_host.eastus.net"}, "profile.fqdn", "not a valid host name", id="fqdn-underscore"),
    pytest.param(P, {"fqdn": "a..b.net"}, "profile.fqdn", "paste only the host name", id="fqdn-empty-label"),
    pytest.param(P, {"flavour": "emr"}, "profile.flavour", "must be one of", id="flavour-unknown"),
    pytest.param(P, {"auth": "kerberos"}, "profile.auth", "must be one of", id="auth-unknown"),
    pytest.param(P, {"scope": "https://hilo.azurehdinsight.net/user_impersonation"}, "profile.scope",
                 "/.default", id="scope-sp-not-default"),
    pytest.param(P, {"scope": "http://hilo.azurehdinsight.net/.default"}, "profile.scope", "https",
                 id="scope-http"),
    pytest.param(P, {"authority_host": "login.microsoftonline.com"}, "profile.authority_host", "https URL",
                 id="authority-no-scheme"),
    pytest.param(P, {"auth": "basic"}, "profile.username", "required for basic auth", id="basic-no-user"),
    pytest.param(P, {"auth": "device-code", "tenant_id": "t"}, "profile.client_id", "app registration",
                 id="device-code-no-client"),
    pytest.param(P, {"secret_source": "keyvault"}, "profile.vault_url", "vault.azure.net",
                 id="keyvault-no-url"),
    pytest.param(P, {"variables_prefix": "hdinsight_aks"}, "profile.variables_prefix", "letters, digits",
                 id="prefix-underscore"),
    pytest.param(P, {"connect_timeout": 0}, "profile.connect_timeout", "above 0", id="timeout-zero"),
    pytest.param(P, {"livy_path": "/p/livy?x=1"}, "profile.livy_path", "/p/livy", id="livy-path-query"),
    pytest.param(P, {"name": " "}, "profile.name", "profile name", id="profile-name-blank"),
    pytest.param(S, {"file": ""}, "spec.file", "is required", id="file-empty"),
    pytest.param(S, {"file": "http://example.com/app.jar"}, "spec.file", "abfs[s]://", id="file-http"),
    pytest.param(S, {"file": "hdfs:///apps/app.jar"}, "spec.file", "abfs[s]://", id="file-hdfs"),
    pytest.param(S, {"file": "apps/app.jar"}, "spec.file", "abfs[s]://", id="file-relative"),
    pytest.param(S, {"file": "abfs://filesystem@account1.dfs.core.windows.net"}, "spec.file",
                 "not a valid ABFS path", id="file-abfs-no-path"),
    pytest.param(S, {"file": "abfs://jars@account1.blob.core.windows.net/app.jar"}, "spec.file",
                 "dfs.core.windows.net", id="file-abfs-blob-host"),
    pytest.param(S, {"file": "abfss://jars@MyAccount.dfs.core.windows.net/app.jar"}, "spec.file",
                 "not a valid ABFS path", id="file-abfs-uppercase-account"),
    pytest.param(S, {"file": "abfs://account1.dfs.core.windows.net/app.jar"}, "spec.file",
                 "<container>@<account>", id="file-abfs-no-container"),
    pytest.param(S, {"file": "wasbs://jars@account1.dfs.core.windows.net/app.jar"}, "spec.file",
                 "not a valid WASB path", id="file-wasb-dfs-host"),
    pytest.param(S, {"file": "https://account1.blob.core.windows.net"}, "spec.file", "full https:// URL",
                 id="file-https-no-path"),
    pytest.param(S, {"file": "https://[::1/app.jar"}, "spec.file", "full https:// URL", id="file-https-broken"),
    pytest.param(S, {"file": "/tmp/app.jar"}, "spec.file", "local path", id="file-local-on-aks"),
    pytest.param(S, {"file": JAR + "\n"}, "spec.file", "line breaks", id="file-trailing-newline"),
    pytest.param(S, {"jars": ("s3://bucket/dep.jar",)}, "spec.jars[0]", "abfs[s]://", id="jars-s3"),
    pytest.param(S, {"py_files": (JAR, "deps.zip")}, "spec.py_files[1]", "abfs[s]://", id="py-files-relative"),
    pytest.param(S, {"class_name": "org.apache Spark"}, "spec.class_name", "not a Java class name",
                 id="class-space"),
    pytest.param(S, {"class_name": "org.class.Main"}, "spec.class_name", "not a Java class name",
                 id="class-keyword"),
    pytest.param(S, {"class_name": "1abc.Main"}, "spec.class_name", "fully qualified", id="class-digit"),
    pytest.param(S, {"class_name": "org.apache."}, "spec.class_name", "not a Java class name",
                 id="class-trailing-dot"),
    pytest.param(S, {"class_name": "SparkPi\n"}, "spec.class_name", "not a Java class name",
                 id="class-newline"),
    pytest.param(S, {"file": "abfs://jars@account1.dfs.core.windows.net/wc.py"}, "spec.class_name",
                 "only for JVM", id="class-on-python"),
    pytest.param(S, {"driver_memory": "4"}, "spec.driver_memory", "512m, 4g", id="memory-no-unit"),
    pytest.param(S, {"driver_memory": "1.5g"}, "spec.driver_memory", "512m, 4g", id="memory-fraction"),
    pytest.param(S, {"executor_memory": "4 g"}, "spec.executor_memory", "512m, 4g", id="memory-space"),
    pytest.param(S, {"executor_memory": "0g"}, "spec.executor_memory", "512m, 4g", id="memory-zero"),
    pytest.param(S, {"executor_memory": "4gigs"}, "spec.executor_memory", "512m, 4g", id="memory-word"),
    pytest.param(S, {"executor_memory": "4g\n"}, "spec.executor_memory", "512m, 4g", id="memory-newline"),
    pytest.param(S, {"driver_cores": 0}, "spec.driver_cores", "1 or more", id="driver-cores-zero"),
    pytest.param(S, {"executor_cores": -1}, "spec.executor_cores", "1 or more", id="executor-cores-negative"),
    pytest.param(S, {"num_executors": 0}, "spec.num_executors", "1 or more", id="num-executors-zero"),
    pytest.param(S, {"num_executors": "2"}, "spec.num_executors", "whole number", id="num-executors-text"),
    pytest.param(S, {"driver_cores": True}, "spec.driver_cores", "whole number", id="driver-cores-bool"),
    pytest.param(S, {"conf": {"": "x"}}, "spec.conf", "empty key", id="conf-empty-key"),
    pytest.param(S, {"conf": {"  ": "x"}}, "spec.conf", "empty key", id="conf-blank-key"),
    pytest.param(S, {"conf": {"spark x": "1"}}, "spec.conf[spark x]", "spaces", id="conf-key-space"),
    pytest.param(S, {"conf": {"spark.x": True}}, "spec.conf[spark.x]", "text or a number", id="conf-value-bool"),
    pytest.param(S, {"conf": {"spark.x": None}}, "spec.conf[spark.x]", "needs a value", id="conf-value-null"),
    pytest.param(S, {"conf": ["spark.x=1"]}, "spec.conf", "object of Spark settings", id="conf-not-object"),
    pytest.param(S, {"name": "42"}, "spec.name", "only digits", id="name-digits"),
    pytest.param(S, {"name": "team/job"}, "spec.name", "must not contain /", id="name-slash"),
    pytest.param(S, {"name": ""}, "spec.name", "must not be empty", id="name-empty"),
    pytest.param(S, {"name": "job\n"}, "spec.name", "line breaks", id="name-newline"),
    pytest.param(S, {"name": "x" * 201}, "spec.name", "200 or fewer", id="name-too-long"),
    pytest.param(S, {"name": 7}, "spec.name", "must be text", id="name-number"),
    pytest.param(S, {"proxy_user": "john doe"}, "spec.proxy_user", "without spaces", id="proxy-user-space"),
    pytest.param(S, {"queue": ""}, "spec.queue", "without spaces", id="queue-empty"),
    pytest.param(S, {"args": ("10", None)}, "spec.args[1]", "must be text", id="args-null"),
]


@pytest.mark.parametrize(("section", "changes", "field", "phrase"), BAD_INPUTS)
def test_jobconfig_validate_names_field_and_fix(
    section: str, changes: dict[str, Any], field: str, phrase: str
) -> None:
    cfg = _job(profile=changes) if section == P else _job(spec=changes)
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    assert info.value.fields == (field,)
    assert phrase in " ".join(info.value.for_field(field))
    assert phrase in str(info.value)


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        pytest.param("127.0.0.1:8998", "Livy server's URL", id="no-scheme"),
        pytest.param("http://[::1", "Livy server's URL", id="broken-ipv6"),
        pytest.param("", "Livy server's URL", id="empty"),
        pytest.param("ftp://livy:8998", "Livy server's URL", id="ftp"),
    ],
)
def test_clusterprofile_validate_rejects_bad_livy_url(url: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterProfile(name="local", flavour="livy", url=url).validate()
    assert info.value.fields == ("profile.url",)
    assert phrase in str(info.value)


def test_jobconfig_validate_accepts_good_config() -> None:
    cfg = _job(spec={"driver_memory": "512m", "executor_memory": "4G", "driver_cores": 1,
                     "conf": {"spark.eventLog.enabled": "true", "spark.executor.instances": 2}})
    assert cfg.validate() is cfg


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("abfss://jars@account1.dfs.core.windows.net/apps/app.jar", id="abfss"),
        pytest.param("wasbs://jars@account1.blob.core.windows.net/apps/app.jar", id="wasbs"),
        pytest.param("https://account1.blob.core.windows.net/jars/app.jar", id="https"),
        pytest.param("/tmp/apps/app.jar", id="local-absolute"),
        pytest.param("local:/opt/apps/app.jar", id="local-scheme"),
        pytest.param("file:///tmp/apps/app.jar", id="file-uri"),
    ],
)
def test_batchspec_validate_accepts_paths_on_sandbox(path: str) -> None:
    assert _spec(file=path).validate(allow_local=True).file == path


def test_batchspec_validate_rejects_local_path_when_not_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        _spec(file="/tmp/app.jar").validate(allow_local=False)
    assert info.value.fields == ("spec.file",)


def test_jobconfig_validate_allows_local_paths_on_sandbox() -> None:
    cfg = JobConfig(profile=ClusterProfile(url="http://127.0.0.1:8998"), spec=_spec(file="/tmp/app.jar"))
    assert cfg.validate() is cfg


def test_clusterprofile_validate_device_code_accepts_delegated_scope() -> None:
    profile = _aks_profile(auth="device-code", client_id="app", tenant_id="tenant",
                           scope="https://hilo.azurehdinsight.net/user_impersonation")
    assert profile.validate() is profile


def test_jobconfig_validate_reports_every_problem_at_once() -> None:
    cfg = _job(
        profile={"fqdn": "https://" + FQDN + "/"},
        spec={"driver_memory": "4", "driver_cores": 0, "conf": {"": "x"}, "class_name": "a b"},
    )
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    assert set(info.value.fields) == {
        "profile.fqdn", "spec.driver_memory", "spec.driver_cores", "spec.conf", "spec.class_name"
    }
    assert str(info.value).startswith("5 problems in the job configuration:")


def test_jobconfig_problems_empty_for_valid_config() -> None:
    assert _job().problems() == []


def test_batchspec_construction_never_raises_on_bad_shapes() -> None:
    spec = BatchSpec(file=3, jars=5, args=7, conf="spark.x=1")  # type: ignore[arg-type]
    fields = {p.field for p in spec.problems()}
    assert {"spec.file", "spec.jars[0]", "spec.conf"} <= fields
    assert spec.args == ("7",)


def test_batchspec_is_hashable() -> None:
    a = _spec(conf={"spark.a": "1"})
    b = _spec(conf={"spark.a": "1"})
    assert a == b
    assert hash(a) == hash(b)


# -- Livy request body -------------------------------------------------------------------------


def test_batchspec_to_livy_body_maps_every_field() -> None:
    spec = BatchSpec(
        file=JAR,
        class_name="org.apache.spark.examples.SparkPi",
        args=("10", "--verbose"),
        name="spark-pi",
        proxy_user="alice",
        jars=("abfs://jars@account1.dfs.core.windows.net/dep.jar",),
        py_files=("abfs://jars@account1.dfs.core.windows.net/dep.py",),
        files=("abfs://jars@account1.dfs.core.windows.net/data.txt",),
        archives=("abfs://jars@account1.dfs.core.windows.net/env.zip",),
        driver_memory="1g",
        driver_cores=2,
        executor_memory="512m",
        executor_cores=3,
        num_executors=4,
        queue="default",
        conf={"spark.eventLog.enabled": "true"},
    )
    assert spec.to_livy_body() == {
        "file": JAR,
        "proxyUser": "alice",
        "className": "org.apache.spark.examples.SparkPi",
        "args": ["10", "--verbose"],
        "jars": ["abfs://jars@account1.dfs.core.windows.net/dep.jar"],
        "pyFiles": ["abfs://jars@account1.dfs.core.windows.net/dep.py"],
        "files": ["abfs://jars@account1.dfs.core.windows.net/data.txt"],
        "driverMemory": "1g",
        "driverCores": 2,
        "executorMemory": "512m",
        "executorCores": 3,
        "numExecutors": 4,
        "archives": ["abfs://jars@account1.dfs.core.windows.net/env.zip"],
        "queue": "default",
        "name": "spark-pi",
        "conf": {"spark.eventLog.enabled": "true"},
    }


def test_batchspec_to_livy_body_omits_absent_fields() -> None:
    assert BatchSpec(file=JAR).to_livy_body() == {"file": JAR}


def test_batchspec_to_livy_body_never_sends_null() -> None:
    body = BatchSpec(file=JAR, name=None, driver_memory=None).to_livy_body()
    assert None not in body.values()


@pytest.mark.parametrize("attr", ["driver_cores", "executor_cores", "num_executors"])
def test_batchspec_to_livy_body_keeps_zero(attr: str) -> None:
    body = dataclasses.replace(BatchSpec(file=JAR), **{attr: 0}).to_livy_body()
    camel = {"driver_cores": "driverCores", "executor_cores": "executorCores", "num_executors": "numExecutors"}
    assert body[camel[attr]] == 0


def test_batchspec_args_are_stringified() -> None:
    spec = BatchSpec(file=JAR, args=[10, 2.5, True, "x"])  # type: ignore[arg-type]
    assert spec.to_livy_body()["args"] == ["10", "2.5", "true", "x"]


def test_batchspec_conf_values_are_stringified_in_body() -> None:
    spec = BatchSpec(file=JAR, conf={"spark.executor.instances": 2})  # type: ignore[dict-item]
    assert spec.to_livy_body()["conf"] == {"spark.executor.instances": "2"}


def test_batchspec_from_livy_body_reads_azure_sample_body() -> None:
    body = {"className": "org.apache.spark.examples.SparkPi", "args": [10], "name": "job", "file": JAR}
    spec = BatchSpec.from_livy_body(body)
    assert spec == BatchSpec(file=JAR, class_name="org.apache.spark.examples.SparkPi", args=("10",), name="job")


def test_batchspec_livy_body_round_trip() -> None:
    spec = _spec(driver_cores=0, jars=(JAR,), conf={"spark.a": "b"}, queue="q")
    assert BatchSpec.from_livy_body(spec.to_livy_body()) == spec


def test_batchspec_from_livy_body_rejects_unknown_field() -> None:
    with pytest.raises(ConfigError) as info:
        BatchSpec.from_livy_body({"file": JAR, "driver_memory": "1g"})
    assert info.value.fields == ("spec.driver_memory",)
    assert "not a Livy batch field" in str(info.value)


def test_batchspec_is_python_for_py_file() -> None:
    assert BatchSpec(file="abfs://c1x@account1.dfs.core.windows.net/wc.PY").is_python


# -- profiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "url"),
    [
        pytest.param(_aks_profile(), f"https://{FQDN}/p/livy", id="hdinsight-aks"),
        pytest.param(ClusterProfile(flavour="hdinsight", fqdn="mycluster"),
                     "https://mycluster.azurehdinsight.net/livy", id="hdinsight-short-name"),
        pytest.param(ClusterProfile(flavour="livy", url="http://127.0.0.1:8998/"), "http://127.0.0.1:8998",
                     id="livy-trailing-slash"),
        pytest.param(ClusterProfile(flavour="livy", url="https://gw.example.com", livy_path="gateway/livy/"),
                     "https://gw.example.com/gateway/livy", id="livy-custom-path"),
    ],
)
def test_clusterprofile_base_url(profile: ClusterProfile, url: str) -> None:
    assert profile.base_url == url


@pytest.mark.parametrize(
    ("flavour", "method"),
    [("hdinsight-aks", "service-principal"), ("hdinsight", "basic"), ("livy", "none"), ("sandbox", "none")],
)
def test_clusterprofile_auth_method_defaults_by_flavour(flavour: str, method: str) -> None:
    assert ClusterProfile(flavour=flavour).auth_method == method  # type: ignore[arg-type]


def test_clusterprofile_base_url_unknown_flavour_raises_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        _ = ClusterProfile(flavour="emr").base_url  # type: ignore[arg-type]
    assert info.value.fields == ("profile.flavour",)


# -- JSON files ----------------------------------------------------------------------------------


def _full_job() -> JobConfig:
    return JobConfig(
        profile=_aks_profile(secret_source="keyvault", vault_url="https://kv1.vault.azure.net", verify="ca.pem"),
        spec=_spec(driver_memory="1g", driver_cores=0, jars=(JAR,), conf={"spark.a": "b"}),
    )


def test_jobconfig_save_load_round_trip(tmp_path: Path) -> None:
    cfg = _full_job()
    path = cfg.save(tmp_path / "job.json")
    assert JobConfig.load(path) == cfg


def test_jobconfig_save_leaves_no_temp_files(tmp_path: Path) -> None:
    _full_job().save(tmp_path / "job.json")
    _job().save(tmp_path / "job.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]
    assert JobConfig.load(tmp_path / "job.json") == _job()


def test_jobconfig_save_keeps_mode_of_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text("{}", encoding="utf-8")
    os.chmod(path, 0o640)
    _job().save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_jobconfig_save_into_missing_directory_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _job().save(tmp_path / "missing" / "job.json")
    assert info.value.fields == ("config",)
    assert "cannot write" in str(info.value)


def test_jobconfig_json_round_trip() -> None:
    cfg = _full_job()
    assert JobConfig.from_json(cfg.to_json()) == cfg


def test_jobconfig_to_json_is_plain_json() -> None:
    data = json.loads(_full_job().to_json())
    assert data["version"] == 1
    assert data["spec"]["jars"] == [JAR]
    assert data["spec"]["driver_cores"] == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"profile": {"colour": "red"}}, "profile.colour", id="profile-key"),
        pytest.param({"spec": {"file": JAR, "className": "X"}}, "spec.className", id="spec-key"),
        pytest.param({"profiles": {}}, "profiles", id="top-level-key"),
    ],
)
def test_jobconfig_load_unknown_key_names_it(tmp_path: Path, data: dict[str, Any], field: str) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        JobConfig.load(path)
    assert info.value.fields == (field,)
    assert field.rsplit(".", 1)[-1] in str(info.value)


def test_jobconfig_from_dict_reports_unknown_keys_of_both_sections() -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig.from_dict({"profile": {"colour": 1}, "spec": {"size": 2}})
    assert set(info.value.fields) == {"profile.colour", "spec.size"}


def test_jobconfig_load_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "profile": {},\n  "spec": {"file": "x",}\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        JobConfig.load(path)
    assert info.value.fields == ("config",)
    assert "line 3, column" in str(info.value)


def test_jobconfig_load_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig.load(tmp_path / "nope.json")
    assert "cannot read" in str(info.value)


def test_jobconfig_load_non_utf8_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_bytes(b'{"spec": {"name": "\xff"}}')
    with pytest.raises(ConfigError) as info:
        JobConfig.load(path)
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize("text", ["[]", '"job"', "null"], ids=["list", "string", "null"])
def test_jobconfig_from_json_rejects_non_object(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig.from_json(text)
    assert info.value.fields == ("config",)


def test_jobconfig_from_dict_rejects_newer_version() -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig.from_dict({"version": 2, "spec": {"file": JAR}})
    assert info.value.fields == ("version",)


def test_jobconfig_from_dict_section_not_object_names_section() -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig.from_dict({"spec": ["file"]})
    assert info.value.fields == ("spec",)


def test_config_error_is_hdiaks_error() -> None:
    with pytest.raises(HdiaksError):
        JobConfig.from_json("{")


def test_jobconfig_replace_swaps_one_part() -> None:
    cfg = _job()
    spec = _spec(name="other")
    assert cfg.replace(spec=spec) == JobConfig(profile=cfg.profile, spec=spec)


# -- trigger conf (Microsoft sample) -------------------------------------------------------------

DOC_TRIGGER_CONF = {
    "spark_cluster_fqdn": "demospark.eastus2.hdinsightaks.net",
    "app_jar_path": "abfs://filesystem@storageaccount1.dfs.core.windows.net/spark-examples_2.12-3.3.3.jar",
    "job_name": "wordcount",
}


def test_jobconfig_to_trigger_conf_uses_sample_keys() -> None:
    assert _job().to_trigger_conf() == {
        "spark_cluster_fqdn": FQDN,
        "app_jar_path": JAR,
        "job_name": "spark-pi",
        "class_name": "org.apache.spark.examples.SparkPi",
        "args": ["10"],
    }


@pytest.mark.parametrize("flavour", ["fabric", "synapse", "livy", "sandbox"])
def test_trigger_conf_of_a_service_without_a_cluster_fqdn_has_no_fqdn_key(flavour: str) -> None:
    profile = ClusterProfile(name="p", flavour=flavour)
    conf = JobConfig(profile=profile, spec=BatchSpec(file=JAR, name="pi")).to_trigger_conf()
    assert conf == {"app_jar_path": JAR, "job_name": "pi"}


def test_jobconfig_from_trigger_conf_builds_aks_job() -> None:
    cfg = JobConfig.from_trigger_conf(DOC_TRIGGER_CONF)
    assert cfg.profile.flavour == "hdinsight-aks"
    assert cfg.profile.base_url == "https://demospark.eastus2.hdinsightaks.net/p/livy"
    assert cfg.spec.to_livy_body() == {"file": DOC_TRIGGER_CONF["app_jar_path"], "name": "wordcount"}


def test_jobconfig_trigger_conf_round_trip() -> None:
    cfg = _job()
    assert JobConfig.from_trigger_conf(cfg.to_trigger_conf(), profile=cfg.profile) == cfg


def test_jobconfig_with_trigger_conf_overrides_and_keeps_the_rest() -> None:
    cfg = _job(spec={"driver_memory": "2g", "conf": {"spark.a": "b"}})
    out = cfg.with_trigger_conf({**DOC_TRIGGER_CONF, "args": [100]})
    assert out.profile.fqdn == "demospark.eastus2.hdinsightaks.net"
    assert out.spec.file == DOC_TRIGGER_CONF["app_jar_path"]
    assert out.spec.name == "wordcount"
    assert out.spec.args == ("100",)
    assert (out.spec.driver_memory, out.spec.conf, out.spec.class_name) == (
        "2g", {"spark.a": "b"}, "org.apache.spark.examples.SparkPi")


def test_jobconfig_with_trigger_conf_empty_values_keep_defaults() -> None:
    cfg = _job()
    assert cfg.with_trigger_conf({"spark_cluster_fqdn": "", "app_jar_path": None, "job_name": ""}) == cfg


def test_jobconfig_with_trigger_conf_unknown_key_names_it() -> None:
    with pytest.raises(ConfigError) as info:
        _job().with_trigger_conf({"spark_cluster": "x"})
    assert info.value.fields == ("spark_cluster",)
    assert "spark_cluster_fqdn" in str(info.value)


def test_jobconfig_with_trigger_conf_rejects_non_text_value() -> None:
    with pytest.raises(ConfigError) as info:
        _job().with_trigger_conf({"job_name": {"a": 1}, "args": {"x": 1}})
    assert set(info.value.fields) == {"job_name", "args"}


def test_jobconfig_from_trigger_conf_then_validate_reports_doc_placeholder_path() -> None:
    conf = {**DOC_TRIGGER_CONF, "app_jar_path": "abfs://filesystem@<storageaccount>.dfs.core.windows.net"}
    with pytest.raises(ConfigError) as info:
        JobConfig.from_trigger_conf(conf).validate()
    assert info.value.fields == ("spec.file",)


# -- args that are not text or numbers, dicts for the parts, CA bundle path, deep JSON --------


@pytest.mark.parametrize(
    ("arg", "says"),
    [(["a", "b"], "not a list"), ({"k": "v"}, "not an object"), (None, "not empty (null)")],
    ids=["list", "dict", "null"],
)
def test_batchspec_args_that_are_not_scalars_are_refused_naming_the_index(arg: Any, says: str) -> None:
    spec = BatchSpec.from_dict({"file": "/x.py", "args": ["10", arg]})
    assert spec.args[0] == "10" and spec.args[1] == arg  # kept as given, never its repr text
    with pytest.raises(ConfigError) as info:
        spec.validate()
    assert info.value.fields == ("spec.args[1]",)
    assert says in str(info.value)


def test_batchspec_scalar_args_are_still_text() -> None:
    spec = BatchSpec(file="/x.py", args=(10, 2.5, True, "x"))  # type: ignore[arg-type]
    assert spec.validate().args == ("10", "2.5", "true", "x")
    assert hash(BatchSpec(file="/x.py", args=(["a"],))) is not None  # type: ignore[arg-type]


def test_jobconfig_accepts_dicts_for_profile_and_spec() -> None:
    cfg = JobConfig(profile={"flavour": "livy", "url": "http://127.0.0.1:8998"},  # type: ignore[arg-type]
                    spec={"file": "/x.py", "args": [1]})  # type: ignore[arg-type]
    assert isinstance(cfg.profile, ClusterProfile) and isinstance(cfg.spec, BatchSpec)
    assert cfg.profile.url == "http://127.0.0.1:8998" and cfg.spec.args == ("1",)
    assert cfg.validate() == JobConfig.from_dict({"profile": cfg.profile.to_dict(), "spec": cfg.spec.to_dict()})


@pytest.mark.parametrize(("name", "value"), [("profile", "sandbox"), ("spec", ["/x.py"]), ("profile", None)])
def test_jobconfig_refuses_other_types_naming_the_argument(name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig(**{name: value})
    assert info.value.fields == (name,)
    assert "dict" in str(info.value)


def test_jobconfig_dict_with_unknown_key_names_it() -> None:
    with pytest.raises(ConfigError) as info:
        JobConfig(spec={"file": "/x.py", "clas_name": "A"})  # type: ignore[arg-type]
    assert info.value.fields == ("spec.clas_name",)


def test_clusterprofile_verify_path_that_does_not_exist_is_a_problem(tmp_path: Path) -> None:
    base = {"flavour": "livy", "url": "https://127.0.0.1:8998"}
    with pytest.raises(ConfigError) as info:
        ClusterProfile.from_dict({**base, "verify": "/no/such/ca.pem"}).validate()
    assert info.value.fields == ("profile.verify",) and "not found" in str(info.value)
    with pytest.raises(ConfigError, match="a folder"):
        ClusterProfile.from_dict({**base, "verify": str(tmp_path)}).validate()
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    ClusterProfile.from_dict({**base, "verify": str(bundle)}).validate()
    ClusterProfile.from_dict({**base, "verify": False}).validate()


def test_deeply_nested_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"spec": {"conf": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(ConfigError) as info:
        JobConfig.load(path)
    assert info.value.fields == ("config",) and "nested too deeply" in str(info.value)
