"""Application and dependency paths people really use: which flavour reads which, the message
naming the field and the fix when one cannot, the sandbox's storage mapping, and the CLI
(in-process, against a loopback server that records the raw request lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Run, SandboxHandle
from servers import RecordingServer

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import ConfigError
from hdiaks_widgets.sandbox import apps
from hdiaks_widgets.sandbox.storage import DEFAULT_ACCOUNT, DEFAULT_CONTAINER, Storage

ABFS = "abfs://jars@account1.dfs.core.windows.net/apps/app.jar"
ABFSS = "abfss://jars@account1.dfs.core.windows.net/apps/app.jar"
WASBS = "wasbs://jars@account1.blob.core.windows.net/apps/app.jar"
HDI_DEFAULT = "wasbs:///example/jars/spark-examples.jar"  # Microsoft's own HDInsight docs
HDI_DEFAULT_ABFS = "abfs:///example/jars/spark-examples.jar"
HDI_BARE = "/example/jars/spark-examples.jar"
ONELAKE = "abfss://myworkspace@onelake.dfs.fabric.microsoft.com/mylakehouse.Lakehouse/Files/app.py"
HDFS = "hdfs:///apps/app.jar"
HDFS_NN = "hdfs://namenode.internal:8020/apps/app.jar"
S3A = "s3a://my-bucket/jars/app.jar"
S3 = "s3://my-bucket/jars/app.jar"  # EMR's EMRFS
GS = "gs://my-bucket/jars/app.jar"
LOCAL = "local:///opt/spark/examples/jars/spark-examples.jar"
FILE = "file:///tmp/apps/app.jar"
HTTPS = "https://account1.blob.core.windows.net/jars/app.jar"

READS: dict[str, list[str]] = {
    "hdinsight-aks": [ABFS, ABFSS, HTTPS],
    "hdinsight": [ABFS, ABFSS, WASBS, HDI_DEFAULT, HDI_DEFAULT_ABFS, HDI_BARE, "wasb:///example/data/x.txt",
                  HDFS, HTTPS],
    "livy": [HDFS, HDFS_NN, S3A, S3, GS, LOCAL, FILE, HDI_BARE, ABFS, WASBS, HDI_DEFAULT, HTTPS,
             "local:/opt/app.py"],
    "sandbox": [ABFS, ABFSS, WASBS, HDI_DEFAULT, HDI_DEFAULT_ABFS, ONELAKE, LOCAL, FILE, HDI_BARE, HTTPS],
    "fabric": [ONELAKE, ABFSS],
    "synapse": [ABFSS, WASBS],
}

FIELDS = ["file", "jars", "py_files", "files", "archives"]


def _spec(field: str, path: str) -> BatchSpec:
    """A valid spec with ``path`` in ``field`` (a list field gets a good path first, so the
    message must name index 1)."""
    if field == "file":
        return BatchSpec(file=path)
    return BatchSpec(file=ABFS if path != ABFS else ABFSS, **{field: (ABFS, path)})


def _field_name(field: str) -> str:
    return "spec.file" if field == "file" else f"spec.{field}[1]"


def _refusal(spec: BatchSpec, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        spec.validate(**kwargs)
    return info.value


# -- 1. each flavour reads what its cluster reads, in every path field -----------------------


@pytest.mark.parametrize(
    ("flavour", "path", "field"),
    [(f, p, fld) for f, paths in READS.items() for p in paths for fld in FIELDS],
)
def test_batchspec_validate_accepts_the_paths_the_flavour_reads(flavour: str, path: str, field: str) -> None:
    spec = BatchSpec(file=path) if field == "file" else BatchSpec(file=ABFSS, **{field: (path,)})
    assert spec.validate(flavour=flavour) is spec


# -- 2. a path the flavour cannot read: the field, what the path is, what to do -------------------

REFUSED = [
    ("hdinsight-aks", WASBS, "a Blob storage (wasb) path", "HDInsight on AKS", "abfs[s]://<container>@<account>"),
    ("hdinsight-aks", HDI_DEFAULT, "default storage", "HDInsight on AKS", "abfs[s]://<container>@<account>"),
    ("hdinsight-aks", HDI_BARE, "without a scheme", "HDInsight on AKS", "abfs[s]://<container>@<account>"),
    ("hdinsight-aks", HDFS, "an HDFS path", "HDInsight on AKS", "upload the file"),
    ("hdinsight-aks", S3A, "an S3 path", "HDInsight on AKS", "abfs[s]://"),
    ("hdinsight-aks", LOCAL, "local: path", "HDInsight on AKS", "abfs[s]://"),
    ("hdinsight-aks", FILE, "a local path", "HDInsight on AKS", "abfs[s]://"),
    ("hdinsight-aks", ONELAKE, "a OneLake path", "HDInsight on AKS", "abfs[s]://"),
    ("hdinsight", S3A, "an S3 path", "classic HDInsight", "wasbs:///example/jars/app.jar"),
    ("hdinsight", GS, "Google Cloud Storage", "classic HDInsight", "wasbs:///example/jars/app.jar"),
    ("hdinsight", LOCAL, "local: path", "classic HDInsight", "upload the file"),
    ("hdinsight", FILE, "a local path", "classic HDInsight", "upload the file"),
    ("sandbox", HDFS, "an HDFS path", "the sandbox", "abfs://examples@sandbox.dfs.core.windows.net"),
    ("sandbox", S3A, "an S3 path", "the sandbox", "give its local path"),
    ("sandbox", GS, "Google Cloud Storage", "the sandbox", "<root>/storage/<account>/<container>/<path>"),
    ("fabric", WASBS, "a Blob storage (wasb) path", "Microsoft Fabric", "onelake.dfs.fabric.microsoft.com"),
    ("fabric", HDI_BARE, "without a scheme", "Microsoft Fabric", ".Lakehouse/Files/"),
    ("synapse", HDFS, "an HDFS path", "Azure Synapse", "abfs[s]://"),
]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize(("flavour", "path", "what", "who", "fix"), REFUSED,
                         ids=[f"{r[0]}-{r[1]}" for r in REFUSED])  # fmt: skip
def test_batchspec_validate_refuses_a_path_the_flavour_cannot_read(
    flavour: str, path: str, what: str, who: str, fix: str, field: str
) -> None:
    error = _refusal(_spec(field, path), flavour=flavour)
    assert error.fields == (_field_name(field),)
    message = " ".join(error.for_field(_field_name(field)))
    assert what in message and f"which {who}" in message and fix in message


# -- 3. malformed paths: refused for every flavour, with the form to write ------------------------

MALFORMED = [
    ("apps/app.jar", "relative path", "absolute path or a URL"),
    ("app.jar", "relative path", "e.g. "),
    ("local://opt/app.jar", "names a host ('opt')", "local:///<absolute path>"),
    ("file://host/tmp/app.jar", "names a host ('host')", "file:///<absolute path>"),
    ("local:opt/app.jar", "must be an absolute path", "local:///opt/apps/app.jar"),
    ("s3n://my-bucket/app.jar", "Hadoop 3 removed", "s3a://<bucket>/<key>"),
    ("s3a://my-bucket", "not a valid S3 path", "s3a://<bucket>/<key>"),
    ("hdfs://", "names no file", "hdfs:///<path>"),
    ("wasbs:///", "names no file", "wasbs:///example/jars/spark-examples.jar"),
    ("adl://store.azuredatalakestore.net/app.jar", "ADLS Gen1", "abfs[s]://<container>@<account>"),
    ("C:\\jobs\\app.jar", "Windows path", "upload the file"),
    ("hdfs:///apps/my app.jar", "contains a space", "%20"),
    ("ftp://files.example.com/app.jar", "uses ftp:", "hdfs://, s3a://"),
    ("wasbs://jars@account1.dfs.core.windows.net/app.jar", "not a valid WASB path", "blob.core.windows.net"),
]


@pytest.mark.parametrize("flavour", ["hdinsight-aks", "hdinsight", "livy", "sandbox"])
@pytest.mark.parametrize(("path", "problem", "fix"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_batchspec_validate_refuses_malformed_paths_saying_the_form(
    flavour: str, path: str, problem: str, fix: str
) -> None:
    error = _refusal(BatchSpec(file=ABFS, jars=(path,)), flavour=flavour)
    assert error.fields == ("spec.jars[0]",)
    assert problem in str(error) and fix in str(error)


# -- 4. through JobConfig and the CLI (the profile decides) ----------------------------------------


def test_jobconfig_classic_hdinsight_accepts_its_default_storage_form() -> None:
    cfg = JobConfig(profile=ClusterProfile(name="hdi", flavour="hdinsight", fqdn="mycluster.azurehdinsight.net",
                                           username="admin"),
                    spec=BatchSpec(file=HDI_DEFAULT, class_name="org.apache.spark.examples.SparkPi",
                                   jars=("wasb:///example/jars/dep.jar",)))  # fmt: skip
    assert cfg.validate() is cfg


@pytest.mark.parametrize("path", [HDFS, HDFS_NN, S3A, S3, LOCAL])
def test_jobconfig_plain_livy_accepts_hadoop_paths(path: str) -> None:
    cfg = JobConfig(profile=ClusterProfile(name="emr", flavour="livy", url="http://127.0.0.1:8998"),
                    spec=BatchSpec(file=path, py_files=(path.replace("app.jar", "deps.zip"),)))  # fmt: skip
    assert cfg.validate() is cfg


@pytest.mark.parametrize("path", [HDFS, S3A, "s3://emr-bucket/jobs/etl.py"])
def test_cli_submit_sends_a_hadoop_path_to_plain_livy(run: Run, path: str) -> None:
    with RecordingServer() as server:
        code, _out, err = run("submit", "--url", server.url, "--file", path)
    assert server.lines == ["POST /batches HTTP/1.1"]  # the recording server answers 404
    assert code == 1 and "spec.file" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("path", "says"),
    [("app.py", "relative path"), ("local://opt/app.py", "names a host"), ("s3n://b/app.py", "s3a://")],
)
def test_cli_submit_refuses_a_malformed_path_before_any_request(run: Run, path: str, says: str) -> None:
    with RecordingServer() as server:
        code, out, err = run("submit", "--url", server.url, "--file", path)
    assert server.lines == []
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("hdiaks: error: spec.file: ") and says in err


# -- 5. the sandbox maps what it can, and says plainly what it cannot -------------------------------


def test_sandbox_default_storage_is_the_examples_container() -> None:
    assert (DEFAULT_CONTAINER, DEFAULT_ACCOUNT) == (apps.EXAMPLES_CONTAINER, apps.EXAMPLES_ACCOUNT)


@pytest.mark.parametrize(
    ("uri", "relative"),
    [
        ("wasbs:///py/pi.py", "storage/sandbox/examples/py/pi.py"),
        ("wasb:///example/jars/spark-examples.jar", "storage/sandbox/examples/example/jars/spark-examples.jar"),
        ("abfs:///jars/spark-examples.jar", "storage/sandbox/examples/jars/spark-examples.jar"),
        ("abfss:///data/words%20list.txt", "storage/sandbox/examples/data/words list.txt"),
        (ONELAKE, "storage/onelake/myworkspace/mylakehouse.Lakehouse/Files/app.py"),
        ("abfs://jars@Account1.dfs.core.windows.net/a.jar", "storage/account1/jars/a.jar"),
    ],
)
def test_storage_maps_default_and_onelake_forms_under_the_root(tmp_path: Path, uri: str, relative: str) -> None:
    storage = Storage(tmp_path)
    assert storage.resolve(uri) == tmp_path / relative
    assert storage.refusal(uri) is None
    assert storage.map_arg(uri) == str(tmp_path / relative)


@pytest.mark.parametrize(
    ("uri", "local"),
    [("local:///opt/app.jar", "/opt/app.jar"), ("local:/opt/app.jar", "/opt/app.jar"),
     ("file:///tmp/a%20b.py", "/tmp/a b.py"), ("file:/tmp/x.py", "/tmp/x.py"), ("/tmp/x.py", "/tmp/x.py")],
)
def test_storage_reads_local_forms_as_local_paths(tmp_path: Path, uri: str, local: str) -> None:
    assert Storage(tmp_path).resolve(uri) == Path(local)
    assert Storage(tmp_path).map_arg(uri) == uri  # program arguments: only storage URIs are rewritten


@pytest.mark.parametrize("uri", [HDFS, S3A, GS, "app.jar"])
def test_storage_refusal_names_the_uri_and_what_it_maps(tmp_path: Path, uri: str) -> None:
    storage = Storage(tmp_path)
    assert storage.resolve(uri) is None
    sentence = storage.refusal(uri) or ""
    assert sentence.startswith(f"sandbox: cannot read {uri}: ")
    assert "abfs[s]://, wasb[s]://" in sentence and str(tmp_path / "storage") in sentence


def test_storage_refuses_a_default_path_leaving_the_container(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    assert storage.resolve("wasbs:///../other/x.jar") is None
    assert "('..')" in (storage.refusal("wasbs:///../other/x.jar") or "")


@pytest.mark.spark
def test_sandbox_runs_an_app_given_in_hdinsight_default_storage_form(sandbox: SandboxHandle) -> None:
    spec = BatchSpec(file="wasbs:///py/pi.py", args=("2",), name="default-storage-form")
    cfg = JobConfig(profile=ClusterProfile(url=sandbox.url), spec=spec).validate()
    spec.validate(flavour="sandbox")
    with sandbox.http() as http:
        answer = http.post(f"{sandbox.url}/batches", json=cfg.spec.to_livy_body(), timeout=30)
        assert answer.status_code == 201, answer.text
        final = sandbox.wait_for_batch(answer.json()["id"])
        log = http.get(f"{sandbox.url}/batches/{final['id']}/log", params={"size": 1000}, timeout=30).json()
    assert final["state"] == "success", log
    assert any("Pi is roughly" in line for line in log["log"])
