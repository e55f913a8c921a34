"""Protocol tests of the Livy sandbox with raw ``requests`` (real Spark, real sockets).

Spark jobs are few and run one at a time: module-scoped fixtures run each job once and several
tests read its result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from hdiaks_widgets.sandbox import EXAMPLES, SandboxServer

if TYPE_CHECKING:
    from conftest import SandboxHandle

LINES = 10_000


def _submit(sandbox: SandboxHandle, body: dict[str, Any], **kw: Any) -> requests.Response:
    with sandbox.http() as s:
        return s.post(f"{sandbox.url}/batches", json=body, timeout=30, **kw)


def _run(sandbox: SandboxHandle, body: dict[str, Any]) -> dict[str, Any]:
    answer = _submit(sandbox, body)
    assert answer.status_code == 201, answer.text
    return sandbox.wait_for_batch(answer.json()["id"])


def _log(sandbox: SandboxHandle, batch_id: int, **params: Any) -> dict[str, Any]:
    with sandbox.http() as s:
        answer = s.get(f"{sandbox.url}/batches/{batch_id}/log", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _wait_state(sandbox: SandboxHandle, batch_id: int, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with sandbox.http() as s:
        while s.get(f"{sandbox.url}/batches/{batch_id}/state", timeout=10).json()["state"] != state:
            assert time.monotonic() < deadline, f"batch {batch_id} never reached {state}"
            time.sleep(0.3)


def _group_members(pgid: int) -> list[int]:
    """Live processes in a process group, read from /proc (the JVM, Python driver, workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


# -- real Spark jobs (one each) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def spark_pi_jar(sandbox: SandboxHandle) -> dict[str, Any]:
    return _run(
        sandbox,
        {"file": sandbox.examples["jar"], "className": sandbox.spark_pi_class, "args": [2], "name": "pi-jar"},
    )


@pytest.fixture(scope="module")
def lines_batch(sandbox: SandboxHandle) -> dict[str, Any]:
    return _run(sandbox, {"file": sandbox.examples["lines_py"], "args": [str(LINES)]})


@pytest.mark.spark
def test_sandbox_jar_spark_pi_succeeds(spark_pi_jar: dict[str, Any]) -> None:
    assert spark_pi_jar["state"] == "success"


@pytest.mark.spark
def test_sandbox_jar_spark_pi_logs_result(sandbox: SandboxHandle, spark_pi_jar: dict[str, Any]) -> None:
    log = _log(sandbox, spark_pi_jar["id"], size=-1)["log"]
    assert any(line.startswith("Pi is roughly 3.1") for line in log)
    assert log[0] == "stdout: " and "\nstderr: " in log  # Livy's process-shape view (PROTOCOL.md §2.7)


@pytest.mark.spark
def test_sandbox_batch_has_local_app_id(spark_pi_jar: dict[str, Any]) -> None:
    assert spark_pi_jar["appId"].startswith("local-")


@pytest.mark.spark
def test_sandbox_batch_found_by_name(sandbox: SandboxHandle, spark_pi_jar: dict[str, Any]) -> None:
    with sandbox.http() as s:
        answer = s.get(f"{sandbox.url}/batches/pi-jar/state", timeout=10)
    assert answer.json() == {"id": spark_pi_jar["id"], "state": "success"}


@pytest.mark.spark
def test_sandbox_duplicate_name_rejected(sandbox: SandboxHandle, spark_pi_jar: dict[str, Any]) -> None:
    answer = _submit(sandbox, {"file": sandbox.examples["jar"], "name": "pi-jar"})
    assert answer.status_code == 400
    assert answer.json()["msg"].startswith("Rejected, Reason: Duplicate session name: Some(pi-jar) for session ")


@pytest.mark.spark
def test_sandbox_pyspark_pi_succeeds(sandbox: SandboxHandle) -> None:
    batch = _run(sandbox, {"file": sandbox.examples["pi_py"], "args": ["2"]})
    assert batch["state"] == "success"
    assert any(line.startswith("Pi is roughly 3.1") for line in _log(sandbox, batch["id"], size=-1)["log"])


@pytest.mark.spark
def test_sandbox_jar_word_count_reads_abfs_input(sandbox: SandboxHandle) -> None:
    batch = _run(
        sandbox,
        {
            "file": sandbox.examples["jar"],
            "className": sandbox.word_count_class,
            "args": [sandbox.examples["words_txt"]],
        },
    )
    assert batch["state"] == "success"
    assert "the: 4" in _log(sandbox, batch["id"], size=-1)["log"]


@pytest.mark.spark
def test_sandbox_failing_job_is_dead_with_its_error(sandbox: SandboxHandle) -> None:
    batch = _run(sandbox, {"file": sandbox.examples["fail_py"], "args": ["boom-42"]})
    assert batch["state"] == "dead"
    log = _log(sandbox, batch["id"], size=-1)["log"]
    assert any("RuntimeError: sandbox example failure: boom-42" in line for line in log)


@pytest.mark.spark
def test_sandbox_delete_kills_whole_spark_tree(sandbox: SandboxHandle) -> None:
    answer = _submit(sandbox, {"file": sandbox.examples["sleep_py"], "args": ["300"]})
    batch_id = answer.json()["id"]
    _wait_state(sandbox, batch_id, "running")
    with sandbox.http() as s:
        pgid = s.get(f"{sandbox.url}/_sandbox/batches/{batch_id}", timeout=10).json()["pgid"]
        assert s.delete(f"{sandbox.url}/batches/{batch_id}", timeout=60).json() == {"msg": "deleted"}
        assert s.get(f"{sandbox.url}/batches/{batch_id}", timeout=10).status_code == 404
        after = s.get(f"{sandbox.url}/_sandbox/batches/{batch_id}", timeout=10).json()
    assert after["batch"]["state"] == "killed"
    assert after["leftover_pids"] == []
    assert _group_members(pgid) == []


@pytest.mark.spark
def test_sandbox_queued_batch_stays_starting(sandbox: SandboxHandle) -> None:
    first = _submit(sandbox, {"file": sandbox.examples["sleep_py"], "args": ["300"]}).json()["id"]
    second = _submit(sandbox, {"file": sandbox.examples["sleep_py"], "args": ["300"]}).json()["id"]
    try:
        _wait_state(sandbox, first, "running")
        with sandbox.http() as s:
            queued = s.get(f"{sandbox.url}/batches/{second}", timeout=10).json()
        assert (queued["state"], queued["log"]) == ("starting", [])
    finally:
        with sandbox.http() as s:
            s.delete(f"{sandbox.url}/batches/{second}", timeout=60)
            s.delete(f"{sandbox.url}/batches/{first}", timeout=60)


@pytest.mark.spark
def test_sandbox_log_tail_by_default(sandbox: SandboxHandle, lines_batch: dict[str, Any]) -> None:
    """Livy's rules: 100 lines by default, the tail when ``from`` is absent, and a view bounded by
    two queues of ``livy.cache-log.size`` (200) however much the job printed."""
    page = _log(sandbox, lines_batch["id"])
    assert page["total"] <= 2 * 200 + 2
    assert (page["from"], len(page["log"])) == (page["total"] - 100, 100)


@pytest.mark.spark
def test_sandbox_log_keeps_only_the_last_200_lines_of_each_stream(
    sandbox: SandboxHandle, lines_batch: dict[str, Any]
) -> None:
    view = _log(sandbox, lines_batch["id"], **{"from": 0, "size": -1})["log"]
    cut = view.index("\nstderr: ")
    stdout, stderr = view[1:cut], view[cut + 1 :]
    assert view[0] == "stdout: "
    assert len(stdout) == 200 and len(stderr) <= 200
    # stdout holds exactly the job's last 200 lines: 9,800 were evicted for good.
    assert [line for line in stdout if line.startswith("line ")] == [
        f"line {i:06d} of {LINES}" for i in range(LINES - 199, LINES + 1)
    ]
    # The batch object's "log" field is the last 10 lines of the same view.
    with sandbox.http() as s:
        batch = s.get(f"{sandbox.url}/batches/{lines_batch['id']}", timeout=10).json()
    assert batch["log"] == view[-10:]


@pytest.mark.spark
def test_sandbox_log_size_minus_one_returns_all(sandbox: SandboxHandle, lines_batch: dict[str, Any]) -> None:
    page = _log(sandbox, lines_batch["id"], **{"from": 0, "size": -1})
    assert len(page["log"]) == page["total"]


@pytest.mark.spark
def test_sandbox_batch_object_carries_last_ten_lines(sandbox: SandboxHandle, lines_batch: dict[str, Any]) -> None:
    assert lines_batch["log"] == _log(sandbox, lines_batch["id"], size=10)["log"]


@pytest.mark.spark
def test_sandbox_pyspark_session_runs_python_and_sql(sandbox: SandboxHandle) -> None:
    with sandbox.http() as s:
        created = s.post(f"{sandbox.url}/sessions", json={"kind": "pyspark"}, timeout=30)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        try:
            deadline = time.monotonic() + 120
            while s.get(f"{sandbox.url}/sessions/{sid}/state", timeout=10).json()["state"] != "idle":
                assert time.monotonic() < deadline
                time.sleep(0.3)
            outputs = []
            for body in ({"code": "1+1"}, {"code": "SELECT 1 AS one, 'a' AS letter", "kind": "sql"}):
                stmt = s.post(f"{sandbox.url}/sessions/{sid}/statements", json=body, timeout=30).json()
                url = f"{sandbox.url}/sessions/{sid}/statements/{stmt['id']}"
                while (stmt := s.get(url, timeout=10).json())["state"] in ("waiting", "running"):
                    time.sleep(0.2)
                outputs.append(stmt)
        finally:
            s.delete(f"{sandbox.url}/sessions/{sid}", timeout=60)
    assert outputs[0]["output"]["data"]["text/plain"] == "2"
    assert outputs[1]["output"]["data"]["application/json"]["data"] == [[1, "a"]]


# -- protocol answers without Spark ------------------------------------------------------------


def test_sandbox_unknown_statement_is_404(sandbox: SandboxHandle) -> None:
    with sandbox.http() as s:
        answer = s.get(f"{sandbox.url}/sessions/424242/statements/0", timeout=10)
    assert (answer.status_code, answer.json()) == (404, {"msg": "Session '424242' not found."})


def test_sandbox_unknown_id_is_404_with_livy_message(sandbox: SandboxHandle) -> None:
    with sandbox.http() as s:
        answer = s.get(f"{sandbox.url}/batches/987654", timeout=10)
    assert (answer.status_code, answer.json()) == (404, {"msg": "Session '987654' not found."})


def test_sandbox_unknown_field_is_400(sandbox: SandboxHandle) -> None:
    answer = _submit(sandbox, {"file": sandbox.examples["jar"], "colour": "blue"})
    assert answer.status_code == 400
    assert answer.json()["msg"].startswith('Unrecognized field "colour"')


def test_sandbox_missing_file_field_is_400(sandbox: SandboxHandle) -> None:
    answer = _submit(sandbox, {"className": "x.Y"})
    assert (answer.status_code, answer.json()) == (400, {"msg": "File is required."})


def test_sandbox_missing_storage_file_makes_batch_dead(sandbox: SandboxHandle) -> None:
    uri = "abfs://examples@sandbox.dfs.core.windows.net/nope/missing.py"
    batch = _run(sandbox, {"file": uri})
    assert batch["state"] == "dead"
    assert any(f"File {uri} does not exist" in line for line in batch["log"])


def test_sandbox_post_answers_201_with_location(sandbox: SandboxHandle) -> None:
    answer = _submit(sandbox, {"file": "/nonexistent/app.py"})
    assert answer.status_code == 201
    assert answer.headers["Location"] == f"/{answer.json()['id']}"


def test_sandbox_list_reports_from_and_total(sandbox: SandboxHandle) -> None:
    _submit(sandbox, {"file": "/nonexistent/app.py"})
    with sandbox.http() as s:
        listing = s.get(f"{sandbox.url}/batches", params={"from": 0, "size": 1}, timeout=10).json()
    assert listing["from"] == 0 and len(listing["sessions"]) == 1 and listing["total"] >= 1


def test_sandbox_example_constants_match_server(sandbox: SandboxHandle) -> None:
    assert sandbox.examples == EXAMPLES


# -- options: CSRF, retention, authorizer ------------------------------------------------------


def test_sandbox_csrf_rejects_post_without_header(sandbox_factory: Callable[..., SandboxHandle]) -> None:
    box = sandbox_factory(csrf=True)
    answer = _submit(box, {"file": "/nonexistent/app.py"})
    assert (answer.status_code, answer.json()) == (400, {"msg": "Missing Required Header for CSRF protection."})


def test_sandbox_csrf_accepts_post_with_header(sandbox_factory: Callable[..., SandboxHandle]) -> None:
    box = sandbox_factory(csrf=True)
    answer = _submit(box, {"file": "/nonexistent/app.py"}, headers={"X-Requested-By": "tests"})
    assert answer.status_code == 201


def test_sandbox_retention_purges_finished_batch(sandbox_factory: Callable[..., SandboxHandle]) -> None:
    box = sandbox_factory(retain_seconds=0.5)
    batch = _run(box, {"file": "/nonexistent/app.py", "name": "short-lived"})
    deadline = time.monotonic() + 30
    with box.http() as s:
        while s.get(f"{box.url}/batches/{batch['id']}", timeout=10).status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert _submit(box, {"file": "/nonexistent/app.py", "name": "short-lived"}).status_code == 201


def test_sandbox_authorizer_refusal_is_401_bearer(tmp_path: Path) -> None:
    def authorizer(headers: Any) -> str | None:
        return None if headers.get("Authorization") == "Bearer good" else "token missing or invalid"

    server = SandboxServer(root=tmp_path, authorizer=authorizer).start()
    try:
        s = requests.Session()
        s.trust_env = False
        refused = s.get(f"{server.url}/batches", timeout=10)
        allowed = s.get(f"{server.url}/batches", headers={"Authorization": "Bearer good"}, timeout=10)
    finally:
        server.stop()
    assert (refused.status_code, refused.json()) == (401, {"msg": "token missing or invalid"})
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert allowed.status_code == 200


def test_sandbox_bearer_option_refuses_request_without_token(
    sandbox_factory: Callable[..., SandboxHandle],
) -> None:
    box = sandbox_factory(bearer=True)
    with box.http() as s:
        answer = s.get(f"{box.url}/batches", timeout=10)
    assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (401, "Bearer")


@pytest.mark.spark
def test_sandbox_sigterm_kills_running_job(sandbox_factory: Callable[..., SandboxHandle]) -> None:
    box = sandbox_factory()
    batch_id = _submit(box, {"file": box.examples["sleep_py"], "args": ["300"]}).json()["id"]
    _wait_state(box, batch_id, "running")
    assert box.processes()
    box.stop()  # SIGTERM; stop() asserts that no process mentioning the root is left
    assert box.process.proc.returncode == 0


# -- fault injection ---------------------------------------------------------------------------


def test_sandbox_fault_status_then_normal(sandbox_faults: SandboxHandle) -> None:
    box = sandbox_faults
    box.set_faults({"kind": "status", "status": 503, "retry_after": 1, "count": 2, "methods": ["GET"],
                    "path_prefix": "/batches"})  # fmt: skip
    with box.http() as s:
        answers = [s.get(f"{box.url}/batches", timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "1"


def test_sandbox_fault_drop_closes_connection(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "drop", "path_prefix": "/batches"})
    with sandbox_faults.http() as s, pytest.raises(requests.ConnectionError):
        s.get(f"{sandbox_faults.url}/batches", timeout=10)


def test_sandbox_fault_drop_after_creates_exactly_one_batch(sandbox_faults: SandboxHandle) -> None:
    box = sandbox_faults
    box.set_faults({"kind": "drop_after", "methods": ["POST"], "path_prefix": "/batches"})
    with pytest.raises(requests.ConnectionError):
        _submit(box, {"file": "/nonexistent/app.py", "name": "ambiguous-post"})
    with box.http() as s:
        answer = s.get(f"{box.url}/batches/ambiguous-post", timeout=10)
    assert answer.status_code == 200
    assert box.request_counts()["POST /batches"] == 1


def test_sandbox_fault_slow_still_answers(sandbox_faults: SandboxHandle) -> None:
    sandbox_faults.set_faults({"kind": "slow", "seconds": 0.2})
    with sandbox_faults.http() as s:
        assert s.get(f"{sandbox_faults.url}/batches", timeout=10).status_code == 200


# -- paths the sandbox does not map: as on a cluster without that file system --------------------------


@pytest.mark.parametrize(
    ("uri", "thrown"),
    [("hdfs:///apps/app.jar", "java.io.IOException: Incomplete HDFS URI, no host: hdfs:///apps/app.jar"),
     ("hdfs://namenode.example:8020/apps/app.jar",
      "java.lang.IllegalArgumentException: java.net.UnknownHostException: namenode.example"),
     ("s3a://bucket/apps/app.jar",
      "java.lang.RuntimeException: java.lang.ClassNotFoundException: Class org.apache.hadoop.fs.s3a.S3AFileSystem "
      "not found"),
     ("gs://bucket/app.jar", "java.lang.RuntimeException: java.lang.ClassNotFoundException: Class "
                             "org.apache.hadoop.fs.gs.GoogleHadoopFileSystem not found"),
     ("s3://bucket/app.jar", 'org.apache.hadoop.fs.UnsupportedFileSystemException: No FileSystem for scheme "s3"')],
    ids=["hdfs-no-host", "hdfs-host", "s3a", "gs", "s3"],
)
def test_sandbox_unmapped_application_path_dies_as_spark_submit_would(sandbox: SandboxHandle, uri: str,
                                                                      thrown: str) -> None:
    # Real Livy answers 201 and passes the path to spark-submit, which dies on it; the sandbox
    # starts none (an hdfs:// host is never contacted) and says why in the log.
    batch = _run(sandbox, {"file": uri, "className": "org.example.Main"})
    lines = _log(sandbox, batch["id"], size=-1)["log"]
    assert batch["state"] == "dead"
    assert f'Exception in thread "main" {thrown}' in lines
    assert any(line.startswith(f"sandbox: cannot read {uri}: the sandbox does not map") for line in lines)
    assert not any("log4j" in line or "SparkContext" in line for line in lines)  # no spark-submit ran


def test_sandbox_unmapped_dependency_path_fails_the_batch_too(sandbox: SandboxHandle) -> None:
    batch = _run(sandbox, {"file": sandbox.examples["jar"], "className": sandbox.spark_pi_class,
                           "jars": ["s3a://bucket/dep.jar"]})
    lines = _log(sandbox, batch["id"], size=-1)["log"]
    assert batch["state"] == "dead" and any("S3AFileSystem not found" in line for line in lines)


@pytest.mark.parametrize(("body", "path"), [({"file": "apps/app.py"}, "apps/app.py"),
                                            ({"file": "/a.py", "pyFiles": ["dep.zip#dep"]}, "dep.zip")])
def test_sandbox_relative_path_is_400_like_livys_resolve_uri(sandbox: SandboxHandle, body: dict[str, Any],
                                                             path: str) -> None:
    answer = _submit(sandbox, body)
    assert (answer.status_code, answer.json()) == (400, {"msg": f"requirement failed: Path '{path}' is not absolute."})
