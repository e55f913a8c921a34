"""What ``hdiaks`` prints for people (issue 11, "the first hour"): submit --wait's narration and
Ctrl-C advice, logs --follow's closing line, the list table, kill of a finished batch, and what
``hdiaks sandbox`` says once it is ready. Against the session sandbox (real Spark) or a Livy
fake served on a loopback port."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import requests
import wcwidth
from auth_fixtures import closed_port
from conftest import HDIAKS, Run, SandboxHandle, hdiaks
from livy_memory import BASE_URL, MemBatch, MemoryLivy, respond
from servers import LoopbackHTTP, QuietHandler, RecordingServer

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.sandbox.apps import EXAMPLE_PATHS

# -- a Livy fake on a real loopback socket ---------------------------------------------------


class LoopbackLivy(LoopbackHTTP):
    """``MemoryLivy`` (Apache Livy's batch routes in memory) behind a threaded HTTP server on
    127.0.0.1, so the CLI talks to it over a real socket with its ordinary client."""

    def __init__(self, livy: MemoryLivy) -> None:
        class Handler(QuietHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                prepared = requests.Request(self.command, BASE_URL + self.path, data=body,
                                            headers={"Content-Type": "application/json"}).prepare()
                answer = livy.send(prepared)
                self.reply(answer.status_code, answer.content or b"",
                           answer.headers.get("Content-Type", "application/json"))

            do_GET = do_POST = do_DELETE = _answer

        self.livy = livy
        super().__init__(Handler)


@pytest.fixture
def livy() -> Iterator[LoopbackLivy]:
    with LoopbackLivy(MemoryLivy()) as server:
        yield server


# -- list -------------------------------------------------------------------------------------

_NAMES = ["pi", "日本語のジョブ名", "nightly-🚀-etl", "x" * 45, "終わりの長い名前" * 4, "evil\x1b[2Jname\nnext"]


def _columns(line: str) -> int:
    """The display column where the APP ID cell starts (after the name cell and two spaces)."""
    before = line[: line.index("app-") if "app-" in line else line.index("APP ID")]
    return int(wcwidth.width(before))


def test_list_prints_a_header_and_aligns_wide_names(run: Run, livy: LoopbackLivy) -> None:
    for name in _NAMES:
        livy.livy.add(name, "success")
    code, out, err = run("list", "--url", livy.url)
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[1].split() == ["ID", "STATE", "NAME", "APP", "ID"]
    rows = lines[2:]
    assert len(rows) == len(_NAMES)
    assert len({_columns(line) for line in lines[1:]}) == 1  # APP ID starts in one column, CJK and emoji too
    assert "日本語のジョブ名" in rows[1] and "nightly-🚀-etl" in rows[2]


def test_list_cuts_long_names_with_an_ellipsis(run: Run, livy: LoopbackLivy) -> None:
    for name in _NAMES:
        livy.livy.add(name, "success")
    _, out, _ = run("list", "--url", livy.url)
    rows = out.splitlines()[2:]
    assert "x" * 45 not in out and "x" * 29 + "\u2026" in rows[3]
    assert "\u2026" in rows[4] and "終わりの長い名前" in rows[4]
    assert "\x1b" not in out and len(rows) == len(_NAMES)  # a name cannot clear the screen or add a row


def test_list_of_an_empty_server_has_no_header(run: Run, livy: LoopbackLivy) -> None:
    code, out, _ = run("list", "--url", livy.url)
    assert code == 0 and out == "0 batches on the server; showing 0 from 0\n"


# -- kill -------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["success", "dead", "killed"])
def test_kill_of_a_finished_batch_says_so_and_sends_no_delete(run: Run, livy: LoopbackLivy, state: str) -> None:
    livy.livy.add("done-job", state)
    code, out, err = run("kill", "0", "--url", livy.url)
    assert (code, err) == (0, "")
    assert out == f"batch 0 (done-job) had already finished (state {state}); nothing to kill\n"
    assert livy.livy.count("DELETE", "/batches/0") == 0
    assert 0 in livy.livy.batches  # its record and log are still there


def test_kill_of_a_finished_batch_json_says_not_killed(run: Run, livy: LoopbackLivy) -> None:
    livy.livy.add("done-job", "success")
    code, out, _ = run("kill", "done-job", "--url", livy.url, "--json")
    assert code == 0 and json.loads(out) == {"id": "0", "killed": False, "state": "success", "state_after": None}


def test_kill_of_a_running_batch_by_name_deletes_it_by_id(run: Run, livy: LoopbackLivy) -> None:
    livy.livy.add("busy-job", "running")
    code, out, _ = run("kill", "busy-job", "--url", livy.url)
    assert code == 0 and out == "killed batch 0 (busy-job)\n"
    assert livy.livy.count("DELETE", "/batches/0") == 1


def _on_delete(livy: LoopbackLivy, then: Callable[[requests.PreparedRequest], requests.Response | None]) -> None:
    livy.livy.before.append(lambda request: then(request) if request.method == "DELETE" else None)


def test_kill_of_a_batch_that_finished_before_the_delete_says_so(run: Run, livy: LoopbackLivy) -> None:
    batch = livy.livy.add("racy-job", "running")

    def finish_first(request: requests.PreparedRequest) -> requests.Response:
        batch.state = "success"  # it ended between the check and the DELETE; this server keeps its record
        return respond(request, 200, {"msg": "deleted"})

    _on_delete(livy, finish_first)
    code, out, err = run("kill", "racy-job", "--url", livy.url)
    assert (code, err) == (0, "")
    assert out == "batch 0 (racy-job) finished (state success) before the kill reached it; nothing was killed\n"
    assert livy.livy.requests[-2:] == [("DELETE", "/batches/0"), ("GET", "/batches/0")]  # read again after


def test_kill_json_of_a_batch_that_finished_first(run: Run, livy: LoopbackLivy) -> None:
    batch = livy.livy.add("racy-job", "running")

    def finish_first(request: requests.PreparedRequest) -> requests.Response:
        batch.state = "dead"
        return respond(request, 200, {"msg": "deleted"})

    _on_delete(livy, finish_first)
    code, out, _ = run("kill", "0", "--url", livy.url, "--json")
    assert code == 0 and json.loads(out) == {"id": "0", "killed": False, "state": "running", "state_after": "dead"}


def test_kill_json_of_a_batch_the_server_forgets_on_delete(run: Run, livy: LoopbackLivy) -> None:
    livy.livy.add("busy-job", "running")  # Apache Livy: DELETE, then 404
    code, out, _ = run("kill", "0", "--url", livy.url, "--json")
    assert code == 0 and json.loads(out) == {"id": "0", "killed": True, "state": "running", "state_after": None}


def test_kill_of_a_batch_whose_record_stays_killed_says_killed(run: Run, livy: LoopbackLivy) -> None:
    batch = livy.livy.add("busy-job", "running")

    def keep_killed(request: requests.PreparedRequest) -> requests.Response:
        batch.state = "killed"  # a server that keeps the cancelled record (Fabric, Synapse)
        return respond(request, 200, {"msg": "deleted"})

    _on_delete(livy, keep_killed)
    code, out, _ = run("kill", "0", "--url", livy.url)
    assert code == 0 and out == "killed batch 0 (busy-job)\n"


def test_kill_of_a_batch_gone_before_the_delete_says_so(run: Run, livy: LoopbackLivy) -> None:
    livy.livy.add("busy-job", "running")

    def purge_first(request: requests.PreparedRequest) -> None:
        livy.livy.batches.clear()  # purged between the check and the DELETE: the DELETE answers 404

    _on_delete(livy, purge_first)
    code, out, err = run("kill", "0", "--url", livy.url)
    assert (code, err) == (0, "")
    assert out == ("batch 0 (busy-job) was running a moment ago but was gone when the kill reached it "
                   "(deleted or purged in between); nothing to kill\n")


# -- numbers Livy reads as a 32-bit Int ----------------------------------------------------------


@pytest.mark.parametrize("argv", [("list", "--size"), ("list", "--from"), ("logs", "1", "--size"),
                                  ("logs", "1", "--from")], ids=["list-size", "list-from", "logs-size", "logs-from"])
@pytest.mark.parametrize("number", ["2147483648", "99999999999999999999"])
def test_cli_refuses_a_number_above_livys_int(run: Run, recorder: RecordingServer, argv: tuple[str, ...],
                                              number: str) -> None:
    code, out, err = run(*argv, number, "--url", recorder.url)
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert f"argument {argv[-1]}: must be 2147483647 or less (Livy reads it as a 32-bit number), got {number}" in err
    assert recorder.lines == []


def test_cli_list_size_at_livys_int_reaches_the_server(run: Run, recorder: RecordingServer) -> None:
    run("list", "--size", "2147483647", "--url", recorder.url)
    assert recorder.lines == ["GET /batches?from=0&size=2147483647 HTTP/1.1"]


# -- a reader that goes away (| head) -------------------------------------------------------------


def _read_one_line_and_close(argv: list[str]) -> tuple[str, int, str]:
    """Run ``hdiaks`` with stdout on a pipe, read one line and close the pipe (``| head -1``)."""
    with subprocess.Popen([HDIAKS, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        told = Drain(proc.stderr)
        try:
            first = proc.stdout.readline()
            proc.stdout.close()
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        return first, code, told.text()


_WIDE = "x" * 1000  # lines long enough that the output overflows a pipe's buffer (64 KiB)


def test_list_into_a_closed_pipe_exits_quietly(livy: LoopbackLivy) -> None:
    for i in range(2000):
        livy.livy.add(f"job-{i}-{'y' * 20}", "success")
    first, code, err = _read_one_line_and_close(["list", "--size", "2000", "--url", livy.url])
    assert first.startswith("2000 batches on the server")
    assert (code, err) == (141, "")


def test_logs_follow_into_a_closed_pipe_exits_quietly_and_leaves_the_batch(livy: LoopbackLivy) -> None:
    livy.livy.add("busy-job", "running", tuple(f"line {i} {_WIDE}" for i in range(300)))
    first, code, err = _read_one_line_and_close(["logs", "0", "--follow", "--poll", "0.2", "--url", livy.url])
    assert first.startswith("line 0 ")
    assert code == 141 and all(line.startswith("note: ") for line in err.splitlines()), err  # no traceback
    assert livy.livy.count("DELETE", "/batches/0") == 0


def test_submit_wait_into_a_closed_pipe_exits_quietly_and_leaves_the_batch(livy: LoopbackLivy) -> None:
    def start(batch: MemBatch) -> None:
        batch.state, batch.log = "running", [f"line {i} {_WIDE}" for i in range(300)]

    livy.livy.after_post.append(start)
    first, code, err = _read_one_line_and_close(["submit", "--url", livy.url, "--file", "/apps/a.py", "--wait",
                                                 "--poll", "0.2"])
    assert first.startswith("line 0 ")
    assert code == 141 and err.startswith("submitted batch 0 (hdiaks-") and "Traceback" not in err
    assert "Exception ignored" not in err and livy.livy.batches[0].state == "running"
    assert livy.livy.count("DELETE", "/batches/0") == 0


def test_help_names_the_closed_pipe_exit_code(run: Run) -> None:
    code, out, _ = run("--help")
    assert code == 0 and "141  the output was closed early (e.g. '| head')" in out


# -- Ctrl-C while the POST is on its way ------------------------------------------------------------


class HangingPost(LoopbackHTTP):
    """A loopback Livy whose POST /batches never answers (the request is read, then held), and
    whose name lookups answer 404: where a Ctrl-C leaves it unknown whether the batch exists."""

    def __init__(self) -> None:
        self.posted = threading.Event()
        self.release = threading.Event()
        self.bodies: list[dict[str, object]] = []
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                payload = json.dumps({"msg": f"Session '{self.path.rsplit('/', 1)[-1]}' not found."}).encode()
                self.reply(404, payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                outer.posted.set()
                outer.release.wait(60)

        super().__init__(Handler)

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def hanging() -> Iterator[HangingPost]:
    with HangingPost() as server:
        yield server


def _interrupt_the_post(hanging: HangingPost, *argv: str) -> tuple[int, str]:
    with subprocess.Popen([HDIAKS, "submit", "--url", hanging.url, "--file", "/apps/a.py", *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        told = Drain(proc.stderr)
        try:
            assert hanging.posted.wait(60), "the POST never arrived"
            proc.send_signal(signal.SIGINT)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        return code, told.text()


def _commands(err: str) -> dict[str, list[str]]:
    return {line.split(":", 1)[0].strip(): shlex.split(line.split(":", 1)[1])
            for line in err.splitlines() if line.startswith("  ")}


def test_submit_ctrl_c_during_the_post_says_the_batch_may_exist_and_how_to_look(hanging: HangingPost) -> None:
    code, err = _interrupt_the_post(hanging, "--name", "nightly-etl")
    assert code == 130 and "Traceback" not in err
    assert err.splitlines()[0].startswith(
        "interrupted while submitting: batch nightly-etl may or may not have been created")
    assert _commands(err) == {"look for it": ["hdiaks", "status", "nightly-etl", "--url", hanging.url],
                              "list them": ["hdiaks", "list", "--url", hanging.url],
                              "kill it": ["hdiaks", "kill", "nightly-etl", "--url", hanging.url]}


def test_submit_ctrl_c_during_the_post_names_the_generated_name_that_was_posted(hanging: HangingPost) -> None:
    code, err = _interrupt_the_post(hanging)
    posted = hanging.bodies[0]["name"]
    assert code == 130 and isinstance(posted, str) and posted.startswith("hdiaks-")
    assert f"batch {posted} may or may not have been created" in err
    assert _commands(err)["look for it"] == ["hdiaks", "status", posted, "--url", hanging.url]


# -- submit --wait and logs --follow against real Spark ----------------------------------------


def _job(sandbox: SandboxHandle, tmp_path: Path, example: str, *args: str) -> Path:
    cfg = JobConfig(profile=ClusterProfile(flavour="sandbox", url=sandbox.url),
                    spec=BatchSpec(file=sandbox.examples[example], args=args))
    return cfg.save(tmp_path / "job.json")


@pytest.mark.spark
def test_submit_wait_narrates_on_stderr_and_prints_only_the_log(sandbox: SandboxHandle, tmp_path: Path) -> None:
    done = hdiaks("submit", "--config", str(_job(sandbox, tmp_path, "pi_py", "2")), "--wait", "--poll", "0.3")
    assert done.returncode == 0, done.stderr
    told = done.stderr.splitlines()
    assert told[0].startswith("submitted batch ") and "(hdiaks-" in told[0]
    batch_id = told[0].split()[2]
    states = [line.split(": ", 1)[1].split()[0] for line in told[1:] if line.startswith(f"batch {batch_id}: ")]
    assert states and "running" in states and len(states) == len(set(states))  # each change once
    out = done.stdout.splitlines()
    assert "Pi is roughly" in done.stdout
    assert "stdout: " not in out and "stderr: " not in out and "\nstderr: " not in done.stdout
    assert out[-1].startswith(f"batch {batch_id} (hdiaks-") and out[-1].endswith("): success")


@pytest.mark.spark
def test_submit_wait_of_a_failing_job_ends_with_its_last_error_lines(sandbox: SandboxHandle, tmp_path: Path) -> None:
    done = hdiaks("submit", "--config", str(_job(sandbox, tmp_path, "fail_py", "boom-42")), "--wait",
                   "--poll", "0.3")
    assert done.returncode == 3
    last = done.stderr.splitlines()[-1]
    assert " ended: dead" in last and "last error lines:" in last and "boom-42" in last
    assert done.stdout.splitlines()[-1].endswith("): dead")


@pytest.mark.spark
def test_logs_follow_ends_with_a_closing_line(sandbox: SandboxHandle, tmp_path: Path) -> None:
    job = str(_job(sandbox, tmp_path, "sleep_py", "2"))
    submitted = json.loads(hdiaks("submit", "--config", job, "--json").stdout)
    followed = hdiaks("logs", str(submitted["id"]), "--config", job, "--follow", "--poll", "0.3")
    assert followed.returncode == 0, followed.stderr
    assert "woke up" in followed.stdout
    last = followed.stderr.splitlines()[-1]
    assert last.startswith(f"batch {submitted['id']} ended: success (followed for ") and last.endswith(" s)")
    again = hdiaks("logs", str(submitted["id"]), "--config", job, "--follow", "--poll", "0.3")
    assert again.returncode == 0
    assert again.stderr.splitlines()[-1] == f"batch {submitted['id']} had already ended: success"


class Drain:
    """Reads a child's stream to its end in a thread (so a full pipe never blocks the child);
    :meth:`wait_for` returns the first line containing a text."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, needle: str, timeout: float = 300.0) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if needle in line), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or self._ended, timeout)
            line = found()
        assert line is not None, f"never printed {needle!r}: {''.join(self.lines)[-3000:]}"
        return line

    def text(self, timeout: float = 60.0) -> str:
        """Everything, once the stream ended."""
        self._thread.join(timeout)
        return "".join(self.lines)


@pytest.mark.spark
def test_submit_wait_ctrl_c_leaves_the_batch_running_and_prints_the_commands(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    job = str(_job(sandbox, tmp_path, "sleep_py", "120"))
    with subprocess.Popen([HDIAKS, "submit", "--config", job, "--wait", "--poll", "0.3"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        told = Drain(proc.stderr)
        try:
            batch_id = told.wait_for("submitted batch").split()[2]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 130
            rest = told.text()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in rest
    assert f"batch {batch_id} (" in rest and "keeps running" in rest
    with sandbox.http() as http:
        assert http.get(f"{sandbox.url}/batches/{batch_id}", timeout=10).json()["state"] not in (
            "killed", "dead", "success")
    commands = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
                for line in rest.splitlines() if line.startswith("  ")}
    assert shlex.split(commands["follow it"]) == ["hdiaks", "logs", batch_id, "--follow", "--config", job]
    kill = shlex.split(commands["kill it"])
    assert kill == ["hdiaks", "kill", batch_id, "--config", job]
    killed = hdiaks(*kill[1:])  # the printed command, as printed
    assert killed.returncode == 0 and killed.stdout.startswith(f"killed batch {batch_id} ")
    # Livy forgets a deleted batch at once; the sandbox still shows it, killed, under /_sandbox.
    with sandbox.http() as http:
        assert http.get(f"{sandbox.url}/batches/{batch_id}", timeout=10).status_code == 404
        kept = http.get(f"{sandbox.url}/_sandbox/batches/{batch_id}", timeout=10).json()
    assert kept["deleted"] is True and kept["batch"]["state"] == "killed"


# -- hdiaks sandbox ---------------------------------------------------------------------------


@pytest.mark.sandbox
@pytest.mark.spark
def test_sandbox_prints_its_examples_and_a_command_that_runs_one(tmp_path: Path) -> None:
    port = closed_port()
    env = {**os.environ, "HDIAKS_PROFILES": str(tmp_path / "profiles.json")}
    with subprocess.Popen([HDIAKS, "sandbox", "--port", str(port), "--root", str(tmp_path / "root")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        said = Drain(proc.stdout)
        try:
            command = said.wait_for("hdiaks init").strip()
            banner = "".join(said.lines)
            for rel in EXAMPLE_PATHS.values():
                assert f"abfs://examples@sandbox.dfs.core.windows.net/{rel}" in banner
            assert "org.apache.spark.examples.SparkPi" in banner
            assert command == (f"hdiaks init --flavour sandbox --url http://127.0.0.1:{port} && "
                               "hdiaks submit --config job.json --wait")
            work = tmp_path / "work"
            work.mkdir()
            for step in command.split(" && "):
                done = hdiaks(*shlex.split(step)[1:], cwd=work)  # the printed commands, as printed
                assert done.returncode == 0, done.stderr
            assert "Pi is roughly 3.1" in done.stdout
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        said.text()
