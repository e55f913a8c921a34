"""The ``hdiaks`` command against the sandbox: exit codes, one-line errors, --json output; and its
log output (lines, sources, the note on stderr) against the in-memory Livy serving Livy's real view."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from auth_fixtures import closed_port
from conftest import Run, SandboxHandle, memory_cli
from livy_memory import BASE_URL, MemBatch, MemoryLivy
from servers import RecordingServer

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.sandbox.logbuf import LogBuffer


@pytest.fixture(scope="module")
def job_json(sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = JobConfig(
        profile=ClusterProfile(name="sandbox", flavour="sandbox", url=sandbox.url),
        spec=BatchSpec(file=sandbox.examples["pi_py"], args=("3",), name="cli-pi"),
    )
    return cfg.save(tmp_path_factory.mktemp("cli") / "job.json")


@pytest.fixture(scope="module")
def submitted(job_json: Path) -> dict[str, Any]:
    """One `hdiaks submit --wait --json` run (real Spark), shared by the read-only tests."""
    done = subprocess.run(
        [sys.executable, "-m", "hdiaks_widgets.cli", "submit", "--config", str(job_json),
         "--name", f"cli-pi-{time.monotonic_ns()}", "--wait", "--poll", "0.3", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.spark
def test_cli_submit_wait_json_reports_success(submitted: dict[str, Any]) -> None:
    assert submitted["state"] == "success"
    assert submitted["appId"].startswith("local-")


@pytest.mark.spark
def test_cli_status_json(run: Run, job_json: Path, submitted: dict[str, Any]) -> None:
    code, out, _ = run("status", str(submitted["id"]), "--config", str(job_json), "--json")
    assert code == 0
    assert json.loads(out)["state"] == "success"


@pytest.mark.spark
def test_cli_status_by_name(run: Run, job_json: Path, submitted: dict[str, Any]) -> None:
    code, out, _ = run("status", submitted["name"], "--config", str(job_json))
    assert code == 0
    assert f"batch {submitted['id']} ({submitted['name']}): success" in out


@pytest.mark.spark
def test_cli_logs_prints_whole_log(run: Run, job_json: Path, submitted: dict[str, Any]) -> None:
    code, out, _ = run("logs", str(submitted["id"]), "--config", str(job_json))
    assert code == 0
    assert "Pi is roughly" in out


@pytest.mark.spark
def test_cli_logs_size_prints_the_tail(run: Run, job_json: Path, submitted: dict[str, Any]) -> None:
    code, out, _ = run("logs", str(submitted["id"]), "--config", str(job_json), "--size", "4", "--json")
    page = json.loads(out)
    assert code == 0
    assert len(page["log"]) == 4
    assert page["from"] == page["total"] - 4


@pytest.mark.spark
def test_cli_logs_follow_of_finished_batch_exits_zero(run: Run, job_json: Path, submitted: dict[str, Any]) -> None:
    code, out, _ = run("logs", str(submitted["id"]), "--config", str(job_json), "--follow", "--poll", "0.2")
    assert code == 0
    assert "Pi is roughly" in out


@pytest.mark.spark
def test_cli_list_json_includes_the_batch(run: Run, job_json: Path, submitted: dict[str, Any]) -> None:
    code, out, _ = run("list", "--config", str(job_json), "--json")
    assert code == 0
    assert submitted["id"] in [b["id"] for b in json.loads(out)["batches"]]


def test_cli_unknown_batch_is_one_line_error(run: Run, job_json: Path) -> None:
    code, out, err = run("status", "424242", "--config", str(job_json))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("hdiaks: error: Batch 424242 not found")


def test_cli_kill_unknown_batch_fails(run: Run, job_json: Path) -> None:
    code, _, err = run("kill", "424243", "--config", str(job_json), "--json")
    assert code == 1
    assert "not found" in err


def test_cli_invalid_config_names_every_field(run: Run, tmp_path: Path) -> None:
    bad = JobConfig(
        profile=ClusterProfile(name="aks", flavour="hdinsight-aks", fqdn="https://x.hdinsightaks.net/"),
        spec=BatchSpec(file="C:\\app.jar", driver_memory="4 gigs"),
    )
    path = bad.save(tmp_path / "bad.json")
    code, out, err = run("submit", "--config", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    for field in ("profile.fqdn", "spec.file", "spec.driver_memory"):
        assert field in err


def test_cli_unreadable_config_is_one_line_error(run: Run, tmp_path: Path) -> None:
    (tmp_path / "job.json").write_text("{not json", encoding="utf-8")
    code, _, err = run("list", "--config", str(tmp_path / "job.json"))
    assert code == 2
    assert err.count("\n") == 1 and "line 1" in err


def test_cli_unreachable_server_is_one_line_error(run: Run) -> None:
    port = closed_port()
    code, _, err = run("list", "--url", f"http://127.0.0.1:{port}")
    assert code == 1
    assert err.count("\n") == 1 and "Cannot reach Livy" in err


def test_cli_export_dag_writes_files(run: Run, job_json: Path, tmp_path: Path) -> None:
    code, out, _ = run("export-dag", "--config", str(job_json), "--dag-id", "cli_pi", "--out", str(tmp_path), "--json")
    files = [Path(p) for p in json.loads(out)["files"]]
    assert code == 0
    assert {p.name for p in files} == {"cli_pi.py", "cli_pi.trigger-conf.json", "cli_pi.setup.md"}
    assert all(p.exists() for p in files)


def test_cli_console_script_help_lists_every_subcommand() -> None:
    script = Path(sys.executable).parent / "hdiaks"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for sub in ("submit", "status", "logs", "kill", "list", "export-dag", "sandbox", "demo", "lab"):
        assert sub in done.stdout


@pytest.mark.spark
def test_cli_demo_runs_end_to_end(tmp_path: Path) -> None:
    """`hdiaks demo` (what `make demo` runs): vault -> MSAL -> Livy, SparkPi, a failing job, a DAG."""
    script = Path(sys.executable).parent / "hdiaks"
    done = subprocess.run(
        [str(script), "demo", "--root", str(tmp_path / "root"), "--out", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Pi is roughly 3.1" in done.stdout
    assert "everything worked" in done.stdout
    summary = json.loads(done.stdout[done.stdout.index("{\n"): done.stdout.rindex("}") + 1])
    assert summary["pi"]["state"] == "success"
    assert summary["pi"]["result_from"] == ["driver stdout"]  # cluster mode: from the worker's driver log
    assert summary["fail"]["state"] == "dead"
    assert any("fails on purpose" in line for line in summary["fail"]["error"])
    assert (tmp_path / "out" / "spark_pi_demo.py").exists()


@pytest.mark.notebook
def test_cli_lab_serves_quickstart_and_sigterm_stops_everything(tmp_path: Path) -> None:
    """`hdiaks lab` (what `make lab` runs): sandbox + JupyterLab; SIGTERM stops both."""
    import os
    import signal

    import requests

    from hdiaks_widgets.sandbox.launcher import processes_mentioning

    port = closed_port()
    root = tmp_path / "root"
    script = Path(sys.executable).parent / "hdiaks"
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [str(script), "lab", "--root", str(root), "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    http = requests.Session()
    http.trust_env = False
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "lab.log").read_text()
            try:
                answer = http.get(f"http://127.0.0.1:{port}/lab", timeout=5, allow_redirects=False)
                if answer.status_code in (200, 302):
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "JupyterLab never answered"
            time.sleep(0.5)
        sandbox_url = json.loads((root / "ready.json").read_text())["url"]
        assert http.get(f"{sandbox_url}/batches", timeout=10).json()["total"] == 0
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    deadline = time.monotonic() + 30
    while processes_mentioning(str(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_mentioning(str(root)) == []
    with pytest.raises(requests.ConnectionError):
        http.get(f"http://127.0.0.1:{port}/lab", timeout=5)


@pytest.mark.parametrize(
    ("command", "hostile"),
    [("kill", "../sessions/0"), ("kill", "0?doAs=admin"), ("status", "0/log"), ("logs", "0#frag"),
     ("kill", "%2e%2e%2fsessions%2f0"), ("status", "0 1")],
    ids=["kill-traversal", "kill-doAs", "status-subpath", "logs-fragment", "kill-encoded", "status-space"],
)
def test_cli_hostile_batch_id_sends_no_request_and_names_the_field(run: Run, command: str, hostile: str) -> None:
    with RecordingServer() as server:
        code, out, err = run(command, hostile, "--url", server.url)
    assert server.lines == []
    assert code == 2 and out == ""
    assert err.startswith("hdiaks: error: batch") and "may hold only" in err and "Traceback" not in err


def test_cli_valid_batch_name_reaches_the_server_percent_encoded(run: Run) -> None:
    with RecordingServer() as server:
        code, _out, err = run("status", "nightly+etl@team", "--url", server.url)
    assert server.lines == ["GET /batches/nightly%2Betl%40team HTTP/1.1"]
    assert code == 1 and "not found" in err.lower()


# -- logs as the run core reads them, against an in-memory Livy with its real log view -----------


class Storm:
    """A batch on the in-memory Livy whose log is Livy's real view (a sandbox ``LogBuffer``, two
    evicting queues of ``cache`` lines): each poll of the batch prints ``burst`` stderr lines, more
    than a queue keeps, until the bursts run out and the batch succeeds. ``batch``: a batch the
    in-memory Livy made on a POST (default: one added now)."""

    def __init__(self, livy: MemoryLivy, *, batch: MemBatch | None = None, bursts: int = 3, burst: int = 25,
                 cache: int = 10) -> None:
        self.buffer = LogBuffer("process", cache)
        self.buffer.append("stdout", "Pi is roughly 3.14")
        if batch is None:
            batch = livy.add("storm", "running")
        batch.buffer, batch.state = self.buffer, "running"
        self.batch = batch
        self.bursts, self.burst, self.printed = bursts, burst, 0
        livy.before.append(self._on_request)

    def _on_request(self, request: requests.PreparedRequest) -> None:
        if request.method != "GET" or urlsplit(request.url or "").path != f"/batches/{self.batch.id}":
            return None
        if self.bursts == 0:
            self.batch.state = "success"
            return None
        self.bursts -= 1
        for _ in range(self.burst):
            self.printed += 1
            self.buffer.append("stderr", f"25/11/24 08:01:02 INFO Storm: line {self.printed}")
        return None


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note: ")]


def test_cli_logs_follow_prints_the_note_once(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    storm = Storm(livy, bursts=4)
    code, out, err = memory_cli(livy, capsys, "logs", "0", "--follow", "--poll", "0.01")
    assert code == 0
    notes = _notes(err)
    assert len(notes) == 1  # gaps on every poll, one note
    assert "lines were dropped before they could be read" in notes[0]
    assert len(err.splitlines()) == 2 and "ended: success" in err.splitlines()[-1]  # the note, the closing line
    lines = out.splitlines()
    assert lines[0] == "Pi is roughly 3.14" and f"line {storm.printed}" in lines[-1]
    assert "stdout: " not in lines and "\nstderr: " not in out  # Livy's headers are not lines
    assert len(lines) == len(set(lines))  # nothing shown twice


def test_cli_logs_follow_json_lines_carry_their_source(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    Storm(livy, bursts=3)  # the attach, then two polls whose windows do not overlap: a gap
    code, out, err = memory_cli(livy, capsys, "logs", "0", "--follow", "--poll", "0.01", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {"text": "Pi is roughly 3.14", "source": "livy stdout"}
    assert {row["source"] for row in rows[1:]} == {"livy stderr"}
    assert len(_notes(err)) == 1 and "note" not in out


def test_cli_logs_follow_from_offset_pages_the_raw_view(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    Storm(livy, bursts=0)
    code, out, _ = memory_cli(livy, capsys, "logs", "0", "--follow", "--from", "0", "--poll", "0.01", "--json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()][:2] == [
        {"text": "stdout: ", "source": None}, {"text": "Pi is roughly 3.14", "source": None}]


def test_cli_submit_wait_prints_the_note_once(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    storms: list[Storm] = []
    livy.after_post.append(lambda batch: storms.append(Storm(livy, batch=batch, bursts=4)))
    code, out, err = memory_cli(livy, capsys, "submit", "--file", "abfs://jobs@acct.dfs.core.windows.net/storm.py",
                                "--name", "storm", "--wait", "--poll", "0.01")
    assert code == 0
    assert len(_notes(err)) == 1 and "dropped" in _notes(err)[0]
    assert out.splitlines()[-1] == "batch 0 (storm): success"
    assert f"line {storms[0].printed}" in out


def test_cli_logs_one_read_prints_lines_and_the_note(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    buffer = LogBuffer("process", 200)
    for i in range(250):
        buffer.append("stderr", f"err {i}")
    buffer.append("stdout", "Pi is roughly 3.14")
    livy.add("full", "success", buffer=buffer)
    code, out, err = memory_cli(livy, capsys, "logs", "0")
    assert code == 0
    assert out.splitlines() == ["Pi is roughly 3.14", *(f"err {i}" for i in range(50, 250))]
    assert len(_notes(err)) == 1 and "only the last 200 lines" in _notes(err)[0]


def test_cli_logs_one_read_json_carries_sources_and_the_note(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    buffer = LogBuffer("yarn", 200)
    buffer.append("stdout", "Pi is roughly 3.14")
    buffer.append("stderr", "INFO Client: Application report (state: FINISHED)")
    buffer.set_diagnostics(["Application finished"])
    url = f"{BASE_URL}/node/containerlogs/container_gone/livy"
    livy.add("yarn", "success", buffer=buffer, driver_log_url=url)
    code, out, err = memory_cli(livy, capsys, "logs", "0", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["lines"] == [
        {"text": "Pi is roughly 3.14", "source": "livy stdout"},
        {"text": "INFO Client: Application report (state: FINISHED)", "source": "livy stderr"},
        {"text": "Application finished", "source": "diagnostics"},
    ]
    assert data["log"] == [row["text"] for row in data["lines"]]
    assert data["state"] == "success" and data["gaps"] == 0
    assert data["note"].startswith(f"The driver log at {url} could not be read")
    assert _notes(err) == [f"note: {data['note']}"]


def test_cli_logs_one_read_without_a_note_prints_none(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    Storm(livy, bursts=0)
    code, out, err = memory_cli(livy, capsys, "logs", "0")
    assert code == 0 and out == "Pi is roughly 3.14\n" and err == ""


def test_cli_note_with_control_characters_stays_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    livy.add("yarn", "success", buffer=LogBuffer("yarn", 200),
             driver_log_url=f"{BASE_URL}/node/containerlogs/x\nnote: forged\x1b[2J/livy")
    code, _out, err = memory_cli(livy, capsys, "logs", "0")
    assert code == 0
    assert len(err.splitlines()) == 1 and err.startswith("note: ") and "\x1b" not in err


def test_cli_logs_one_read_of_unknown_batch_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = memory_cli(MemoryLivy(), capsys, "logs", "7")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("hdiaks: error: Batch 7 not found")
