"""The Fabric and Synapse driver-log readers (``logview.FabricLogReader``, ``SynapseLogReader``).

Unit tests use small in-memory ``TextFetcher``s that answer like the services (Fabric's byte
ranges, with the documented "offset has no effect once the application stopped"; Synapse's whole
file). The end-to-end tests submit real Spark jobs with raw ``requests`` to each dialect's path
on the shared sandbox and follow them with the readers, the real ``LivyClient`` being the
``TextFetcher``: each job runs once (module-scoped fixtures), one job at a time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pytest

from hdiaks_widgets import dialects, logview
from hdiaks_widgets.errors import ConfigError, LivyHTTPError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.logview import (
    FabricLogReader,
    FileTail,
    ServiceDriverLogReader,
    SynapseLogReader,
    dialect_log_reader,
    service_log_reader,
)
from hdiaks_widgets.models import Batch, BatchState, LogLine
from hdiaks_widgets.sandbox.apps import FAILING_JOB_CLASS

if TYPE_CHECKING:
    from conftest import SandboxHandle

FABRIC_VERSION = "2023-12-01"
SYNAPSE_VERSION = "2020-12-01"
TERMINAL = ("success", "dead", "killed", "error")


# -- in-memory services ------------------------------------------------------------------------------


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")  # as requests' Response.text decodes


class Files:
    """The driver's two files, as bytes that grow."""

    def __init__(self) -> None:
        self.data = {"stdout": b"", "stderr": b""}

    def write(self, name: str, text: str) -> None:
        self.data[name] += text.encode("utf-8")


class FabricMemory:
    """``get_text`` answering Fabric's monitoring API from :class:`Files`.

    ``honour_offset=False`` plays the documented behaviour once the application stopped (the
    offset has no effect: the range starts at byte 0); ``max_offset`` refuses larger offsets
    with a 400, as the docs' "valid range is 0 to 20,000" may mean.
    """

    def __init__(self, files: Files, *, max_offset: int | None = None) -> None:
        self.files = files
        self.honour_offset = True
        self.max_offset = max_offset
        self.calls: list[dict[str, Any]] = []

    def get_text(self, url: str, *, params: Mapping[str, str | int] | None = None) -> str:
        p = dict(params or {})
        self.calls.append(p)
        assert p["type"] == "driver" and url.endswith("/logs")
        data = self.files.data[str(p["fileName"])]
        if p.get("meta") == "true":
            return json.dumps({"containerId": "c1", "nodeId": "n1",
                               "containerLogMeta": {"fileName": p["fileName"], "length": len(data)}})  # fmt: skip
        if p.get("isPartial") == "true":
            offset, size = int(p["offset"]), int(p["size"])
            if self.max_offset is not None and offset > self.max_offset:
                raise LivyHTTPError(400, '{"errorCode": "InvalidInput"}', method="GET", url=url)
            start = offset if self.honour_offset else 0
            return _text(data[start : start + size])
        return _text(data)


class SynapseMemory:
    """``get_text`` answering Synapse's ``driverlog`` download: always the whole file."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.calls: list[str] = []

    def get_text(self, url: str, *, params: Mapping[str, str | int] | None = None) -> str:
        assert dict(params or {}) == {"isDownload": "true"}
        name = url.rstrip("/").rsplit("/", 1)[1]
        self.calls.append(name)
        return _text(self.files.data[name])


def _by_source(lines: list[LogLine], name: str) -> list[str]:
    return [str(x) for x in lines if x.source == f"driver {name}"]


def _fabric(files: Files, **kw: Any) -> tuple[FabricLogReader, FabricMemory]:
    fetch = FabricMemory(files, **{k: v for k, v in kw.items() if k == "max_offset"})
    reader = FabricLogReader("https://api.fabric.example", str(uuid.uuid4()), str(uuid.uuid4()),
                             str(uuid.uuid4()), "application_1_0001", **{k: v for k, v in kw.items()
                                                                           if k != "max_offset"})  # fmt: skip
    return reader, fetch


# Pieces that cut lines and UTF-8 characters at every place: a write ends mid-line, mid-character.
PIECES = ["Pi is rough", "ly 3.14159 π≈", "3\nsecond line ", "€ and more\n\nfourth ", "line ✓", "\nfifth"]
EXPECTED = ["Pi is roughly 3.14159 π≈3", "second line € and more", "", "fourth line ✓", "fifth"]


def test_file_tail_keeps_a_partial_line_and_a_cut_character_for_the_next_read() -> None:
    tail = FileTail("stdout")
    data = "ab π\ncd €".encode()
    cut = data[: len(data) - 1]  # the € cut in two: decoded as U+FFFD at the end
    assert tail.take(_text(cut), window_full=False, finished=False) == ["ab π"]
    assert tail.pending == "" and tail.offset == len("ab π\n".encode())
    lines, grew = tail.take_whole(_text(data + b"\n"), finished=False)
    assert lines == ["cd €"] and grew == len("cd €\n".encode())


def test_synapse_reader_shows_only_the_new_tail_of_a_growing_file() -> None:
    files = Files()
    fetch = SynapseMemory(files)
    reader = SynapseLogReader("https://ws.dev.azuresynapse.example", "pool1", "7", "application_1_0001")
    got: list[LogLine] = []
    for piece in PIECES:
        files.write("stdout", piece)
        files.write("stderr", f"err {piece.count(' ')}\n")
        lines, at_end = reader.read(fetch, finished=False)
        assert at_end
        got += lines
    assert "fifth" not in _by_source(got, "stdout")  # no newline yet: the job may still write it
    lines, at_end = reader.read(fetch, finished=True)  # the last line without newline is a line now
    got += lines
    assert _by_source(got, "stdout") == EXPECTED
    assert _by_source(got, "stderr") == [f"err {p.count(' ')}" for p in PIECES]
    # Finished: the files are read until they stop growing, then never again.
    while not at_end:
        lines, at_end = reader.read(fetch, finished=True)
        assert lines == []
    calls = len(fetch.calls)
    assert reader.read(fetch, finished=True) == ([], True) and len(fetch.calls) == calls
    # The re-download cost: every poll downloaded each file whole.
    assert reader.downloaded > sum(len(d) for d in files.data.values())


def test_synapse_reader_repeats_nothing_when_the_file_becomes_shorter() -> None:
    files = Files()
    fetch = SynapseMemory(files)
    reader = SynapseLogReader("https://ws.dev.azuresynapse.example", "pool1", "7", "application_1_0001")
    files.write("stdout", "".join(f"line {i}\n" for i in range(10)))
    first, _ = reader.read(fetch, finished=False)
    files.data["stdout"] = b"line 0\nline 1\n"  # truncated (Synapse can cut logs once a job ends)
    again, _ = reader.read(fetch, finished=False)
    assert len(first) == 10 and again == []
    assert reader.note is not None and "shorter" in reader.note
    files.data["stdout"] = "".join(f"line {i}\n" for i in range(12)).encode()
    more, _ = reader.read(fetch, finished=False)
    assert [str(x) for x in more] == ["line 10", "line 11"]


@pytest.mark.parametrize("chunk", [5, 16, 1 << 20], ids=["5B", "16B", "1MiB"])
def test_fabric_reader_reads_each_byte_once_by_range(chunk: int) -> None:
    files = Files()
    reader, fetch = _fabric(files, chunk=chunk, max_chunks=10_000)
    got: list[LogLine] = []
    for piece in PIECES:
        files.write("stderr", piece)
        got += reader.read(fetch, finished=False)[0]
    running = list(fetch.calls)
    got += reader.read(fetch, finished=True)[0]
    assert _by_source(got, "stderr") == EXPECTED and _by_source(got, "stdout") == []
    assert all(c["isDownload"] == "true" and c["isPartial"] == "true" for c in running)
    if chunk == 1 << 20:  # one range per file per poll while running: no meta request first
        assert len(running) == 2 * len(PIECES)
    # The end: the length of each file, then at most the bytes still missing (a short range).
    final = fetch.calls[len(running) :]
    assert [(c["fileName"], c.get("meta")) for c in final[:2]] == [("stdout", "true"), ("stderr", "true")]
    assert all(c["fileName"] == "stderr" and int(c["size"]) < 100 for c in final[2:]) and len(final) <= 3


def test_fabric_reader_after_the_end_asks_the_length_and_downloads_nothing_read_already() -> None:
    files = Files()
    reader, fetch = _fabric(files)
    files.write("stdout", "Pi is roughly 3.14\n")
    files.write("stderr", "INFO SparkContext: stopped\n")
    got, _ = reader.read(fetch, finished=False)
    fetch.calls.clear()
    fetch.honour_offset = False  # the application stopped: offsets have no effect any more
    lines, at_end = reader.read(fetch, finished=True)
    assert lines == [] and at_end
    assert [c.get("meta") for c in fetch.calls] == ["true", "true"]  # one small request per file
    assert len(got) == 2


def test_fabric_reader_notices_an_ignored_offset_and_repeats_nothing() -> None:
    files = Files()
    reader, fetch = _fabric(files)
    for i in range(50):  # longer than the anchor a range starts with
        files.write("stderr", f"line {i}\n")
    first, _ = reader.read(fetch, finished=False)
    fetch.honour_offset = False  # the app stopped before the batch's state says so
    for i in range(50, 60):
        files.write("stderr", f"line {i}\n")
    second, _ = reader.read(fetch, finished=False)
    files.write("stderr", "last words")
    third, _ = reader.read(fetch, finished=True)
    assert _by_source(first + second + third, "stderr") == [f"line {i}" for i in range(60)] + ["last words"]
    assert reader.whole["stderr"]


def test_fabric_reader_refused_offset_reads_the_file_whole() -> None:
    files = Files()
    reader, fetch = _fabric(files, max_offset=40)
    got: list[LogLine] = []
    for i in range(30):
        files.write("stdout", f"out {i:02d}\n")  # 7 bytes a line: offset - anchor passes 40 soon
        got += reader.read(fetch, finished=False)[0]
    assert _by_source(got, "stdout") == [f"out {i:02d}" for i in range(30)]
    assert reader.whole["stdout"] and not reader.whole["stderr"]


def test_readers_make_no_request_before_the_batch_has_an_application() -> None:
    files = Files()
    fabric = FabricLogReader("https://api.fabric.example", "w", "l", "b", None)
    synapse = SynapseLogReader("https://ws.example", "pool1", "3", None)
    fetch_f, fetch_s = FabricMemory(files), SynapseMemory(files)
    assert fabric.read(fetch_f, finished=False) == ([], True) and fetch_f.calls == []
    assert synapse.read(fetch_s, finished=True) == ([], True) and fetch_s.calls == []


@pytest.mark.parametrize("hostile", ["a/b", "../x", "id?doAs=admin", "50%", "ü#1"], ids=repr)
def test_reader_ids_are_one_percent_encoded_path_segment_each(hostile: str) -> None:
    fabric = FabricLogReader("https://api.fabric.example/", hostile, hostile, hostile, hostile)
    synapse = SynapseLogReader("https://ws.example", hostile, hostile, hostile)
    fabric_url, synapse_url = fabric.url, synapse.file_url("stdout")
    assert fabric_url is not None and synapse_url is not None
    fabric_path, synapse_path = urlsplit(fabric_url), urlsplit(synapse_url)
    assert not (fabric_path.query or fabric_path.fragment or synapse_path.query or synapse_path.fragment)
    # /v1/workspaces/{ws}/lakehouses/{lh}/livySessions/{id}/applications/{app}/logs: 10 segments
    assert [unquote(x) for x in fabric_path.path.split("/")[1:]] == [
        "v1", "workspaces", hostile, "lakehouses", hostile, "livySessions", hostile, "applications", hostile, "logs"]
    assert [unquote(x) for x in synapse_path.path.split("/")[1:]] == [
        "sparkhistory", "api", "v1", "sparkpools", hostile, "livyid", hostile, "applications", hostile,
        "driverlog", "stdout", ""]  # fmt: skip


def test_dialect_log_reader_builds_each_service_reader_and_refuses_the_rest() -> None:
    fabric = dialect_log_reader("fabric", origin="https://f", batch_id="b", app_id="a", workspace_id="w",
                                lakehouse_id="l")  # fmt: skip
    synapse = dialect_log_reader("synapse", origin="https://s", batch_id="3", app_id="a", pool="p")
    assert isinstance(fabric, FabricLogReader) and isinstance(synapse, SynapseLogReader)
    with pytest.raises(ConfigError, match="lakehouse"):
        dialect_log_reader("fabric", origin="https://f", batch_id="b", app_id="a", workspace_id="w")
    with pytest.raises(ConfigError, match="pool"):
        dialect_log_reader("synapse", origin="https://s", batch_id="3", app_id="a")
    with pytest.raises(ConfigError, match="LivyLogReader"):
        dialect_log_reader("hdinsight", origin="https://h", batch_id="3", app_id="a")


class Refusing:
    def get_text(self, url: str, *, params: Mapping[str, str | int] | None = None) -> str:
        raise LivyHTTPError(403, '{"errorCode": "Forbidden"}', method="GET", url=url)


@dataclass(frozen=True)
class Where:
    source: str
    origin: str
    batch_id: str
    app_id: str | None = None
    workspace_id: str | None = None
    lakehouse_id: str | None = None
    pool: str | None = None
    url: str | None = None


def test_service_reader_says_once_that_the_log_cannot_be_read() -> None:
    where = Where("synapse-driverlog", "https://ws.example", "3", "application_1", pool="p",
                  url="https://ws.example/sparkhistory/api/v1/sparkpools/p/livyid/3/applications/application_1/driverlog")
    reader = service_log_reader(where, Refusing())
    batch = Batch("3", BatchState.RUNNING, app_id="application_1")
    notes = [reader.read(None, batch).note for _ in range(6)]
    assert [n for n in notes if n] == [notes[2]] and notes[2] and "HTTP 403" in notes[2]


# -- end to end: real Spark jobs on the sandbox's Fabric and Synapse paths ---------------------------


@dataclass
class Followed:
    """A job followed to its end through a reader: what it showed, poll by poll."""

    batch: dict[str, Any]
    lines: list[LogLine] = field(default_factory=list)
    polls: int = 0
    polls_with_lines: int = 0
    files: dict[str, str] = field(default_factory=dict)  # the whole files at the end (raw requests)
    requests: int = 0
    downloaded: int = 0


class Service:
    """One dialect path on the sandbox: submit and poll with raw requests, logs through a reader."""

    def __init__(self, sandbox: SandboxHandle, flavour: str) -> None:
        self.sandbox = sandbox
        self.flavour = flavour
        self.ws, self.lh, self.pool = str(uuid.uuid4()), str(uuid.uuid4()), "logpool"
        self.http = sandbox.http()

    @property
    def livy(self) -> str:
        if self.flavour == "fabric":
            return f"{self.sandbox.url}/v1/workspaces/{self.ws}/lakehouses/{self.lh}/livyApi/versions/{FABRIC_VERSION}"
        return f"{self.sandbox.url}/livyApi/versions/{SYNAPSE_VERSION}/sparkPools/{self.pool}"

    def submit(self, body: dict[str, Any]) -> str:
        if self.flavour == "fabric":
            body = {**body, "conf": {"spark.targetLakehouse": self.lh}}
        answer = self.http.post(f"{self.livy}/batches", json=body, timeout=30)
        assert answer.status_code == (202 if self.flavour == "fabric" else 200), answer.text
        return str(answer.json()["id"])

    def get(self, batch_id: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.livy}/batches/{batch_id}", params={"detailed": "true"}, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def reader(self, batch_id: str, app_id: str) -> FabricLogReader | SynapseLogReader:
        return dialect_log_reader(self.flavour, origin=self.sandbox.url, batch_id=batch_id, app_id=app_id,
                                  workspace_id=self.ws, lakehouse_id=self.lh, pool=self.pool)  # fmt: skip

    def whole(self, batch: dict[str, Any], name: str) -> str:
        if self.flavour == "fabric":
            url = (f"{self.sandbox.url}/v1/workspaces/{self.ws}/lakehouses/{self.lh}/livySessions/{batch['id']}"
                   f"/applications/{batch['appId']}/logs")  # fmt: skip
            answer = self.http.get(url, params={"type": "driver", "fileName": name, "isDownload": "true"}, timeout=30)
        else:
            url = (f"{self.sandbox.url}/sparkhistory/api/v1/sparkpools/{self.pool}/livyid/{batch['id']}"
                   f"/applications/{batch['appId']}/driverlog/{name}/")  # fmt: skip
            answer = self.http.get(url, params={"isDownload": "true"}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.content.decode("utf-8")

    def follow(self, body: dict[str, Any], *, interval: float = 0.2, timeout: float = 180) -> Followed:
        batch_id = self.submit(body)
        client = LivyClient(self.livy, dialect=self.flavour, session=self.sandbox.http())
        reader: FabricLogReader | SynapseLogReader | None = None
        followed = Followed({})
        terminal_polls = 0
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get(batch_id)
            finished = batch["state"] in TERMINAL and batch.get("result") != "Uncertain"
            if reader is None and batch.get("appId"):
                reader = self.reader(batch_id, str(batch["appId"]))
            at_end = True
            if reader is not None:
                lines, at_end = reader.read(client, finished=finished)
                followed.polls += 1
                followed.polls_with_lines += bool(lines)
                followed.lines += lines
            terminal_polls = terminal_polls + 1 if finished else 0
            if terminal_polls >= 2 and at_end:
                break
            assert time.monotonic() < deadline, f"batch {batch_id} still {batch['state']}"
            time.sleep(interval)
        assert reader is not None, "the batch never had an application id"
        followed.batch = batch
        followed.files = {name: self.whole(batch, name) for name in ("stdout", "stderr")}
        followed.requests, followed.downloaded = reader.requests, reader.downloaded
        return followed


def _pi(sandbox: SandboxHandle) -> dict[str, Any]:
    return {"file": sandbox.examples["jar"], "className": sandbox.spark_pi_class, "args": ["20"]}


@pytest.fixture(scope="module")
def fabric_service(sandbox: SandboxHandle) -> Service:
    return Service(sandbox, "fabric")


@pytest.fixture(scope="module")
def synapse_service(sandbox: SandboxHandle) -> Service:
    return Service(sandbox, "synapse")


@pytest.fixture(scope="module")
def fabric_pi(fabric_service: Service) -> Followed:
    body = _pi(fabric_service.sandbox)
    return fabric_service.follow({**body, "name": f"fabric-log-pi-{uuid.uuid4().hex[:6]}"})


def _failing_jar(sandbox: SandboxHandle, word: str) -> dict[str, Any]:
    return {"file": sandbox.examples["jar"], "className": FAILING_JOB_CLASS, "args": [f"boom-{word}-log"],
            "name": f"{word}-log-fail-{uuid.uuid4().hex[:6]}"}  # fmt: skip


@pytest.fixture(scope="module")
def fabric_fail(fabric_service: Service) -> Followed:
    return fabric_service.follow(_failing_jar(fabric_service.sandbox, "fabric"))


@pytest.fixture(scope="module")
def synapse_pi(synapse_service: Service) -> Followed:
    body = _pi(synapse_service.sandbox)
    return synapse_service.follow({**body, "name": f"synapse-log-pi-{uuid.uuid4().hex[:6]}"})


@pytest.fixture(scope="module")
def synapse_fail(synapse_service: Service) -> Followed:
    return synapse_service.follow(_failing_jar(synapse_service.sandbox, "synapse"))


@pytest.fixture(scope="module")
def synapse_fail_py(synapse_service: Service) -> Followed:
    return synapse_service.follow({"file": synapse_service.sandbox.examples["fail_py"], "args": ["boom-py-log"],
                                   "name": f"synapse-log-fail-py-{uuid.uuid4().hex[:6]}"})  # fmt: skip


JOBS = ["fabric_pi", "fabric_fail", "synapse_pi", "synapse_fail", "synapse_fail_py"]


@pytest.mark.spark
@pytest.mark.parametrize("job", JOBS)
def test_service_reader_shows_every_driver_line_once_in_order(job: str, request: pytest.FixtureRequest) -> None:
    followed: Followed = request.getfixturevalue(job)
    for name in ("stdout", "stderr"):
        assert _by_source(followed.lines, name) == followed.files[name].splitlines(), name
    assert followed.polls_with_lines >= 2, "the lines should arrive over several polls while the job runs"


@pytest.mark.spark
@pytest.mark.parametrize("job", ["fabric_pi", "synapse_pi"])
def test_service_reader_shows_spark_pis_result_in_driver_stdout(job: str, request: pytest.FixtureRequest) -> None:
    followed: Followed = request.getfixturevalue(job)
    assert followed.batch["state"] == "success"
    assert any(line.startswith("Pi is roughly 3.1") for line in _by_source(followed.lines, "stdout"))


@pytest.mark.spark
@pytest.mark.parametrize("job", ["fabric_fail", "synapse_fail"])
def test_service_reader_shows_the_failing_jobs_exception_in_driver_stderr(
    job: str, request: pytest.FixtureRequest
) -> None:
    followed: Followed = request.getfixturevalue(job)
    assert followed.batch["state"] == "dead"
    word = job.split("_")[0]
    stderr = _by_source(followed.lines, "stderr")
    assert any(f"java.lang.IllegalStateException: sandbox failing job: boom-{word}-log" in ln for ln in stderr)


@pytest.mark.spark
def test_service_reader_shows_a_pyspark_drivers_traceback_in_driver_stdout(synapse_fail_py: Followed) -> None:
    """Spark's PythonRunner merges the Python driver's stderr into its stdout
    (``builder.redirectErrorStream(true)``), so a PySpark job's traceback is in driver stdout."""
    assert synapse_fail_py.batch["state"] == "dead"
    assert "RuntimeError: sandbox example failure: boom-py-log" in _by_source(synapse_fail_py.lines, "stdout")


@pytest.mark.spark
def test_fabric_reader_downloads_each_byte_about_once(fabric_pi: Followed) -> None:
    size = sum(len(text.encode("utf-8")) for text in fabric_pi.files.values())
    print(f"\nFabric: {fabric_pi.downloaded:,} bytes over {fabric_pi.requests} requests ({fabric_pi.polls} polls) "
          f"for {size:,} bytes of driver log")  # fmt: skip
    # Byte ranges: the file once, plus a short anchor per range request and the small meta answers.
    assert fabric_pi.downloaded <= size + 64 * 4 * fabric_pi.requests


@pytest.mark.spark
def test_synapse_reader_re_downloads_the_whole_file_each_poll(synapse_pi: Followed) -> None:
    size = sum(len(text.encode("utf-8")) for text in synapse_pi.files.values())
    print(f"\nSynapse re-download: {synapse_pi.downloaded:,} bytes over {synapse_pi.requests} requests "
          f"({synapse_pi.polls} polls) for {size:,} bytes of driver log")  # fmt: skip
    assert synapse_pi.downloaded > size  # every poll re-downloads what was already shown


@pytest.mark.spark
def test_service_log_reader_follows_a_fabric_batch_through_the_run_seam(
    fabric_service: Service, fabric_pi: Followed
) -> None:
    """``service_log_reader(LivyClient.log_location(batch), client)``, as ``run.ServiceLogReader`` calls it."""
    raw = fabric_pi.batch
    client = LivyClient(fabric_service.livy, dialect="fabric", session=fabric_service.sandbox.http())
    batch = Batch(str(raw["id"]), BatchState.SUCCESS, app_id=str(raw["appId"]))
    location = dialects.log_location(dialects.dialect_of("fabric"), fabric_service.livy, batch.id, batch.app_id)
    reader = service_log_reader(location, client)
    assert isinstance(reader, ServiceDriverLogReader)
    lines: list[LogLine] = []
    for _ in range(5):
        delta = reader.read(client, batch)
        lines += [x for x in delta.lines if isinstance(x, LogLine)]
        if delta.at_end:
            break
    assert _by_source(lines, "stdout") == fabric_pi.files["stdout"].splitlines()
    assert _by_source(lines, "stderr") == fabric_pi.files["stderr"].splitlines()


def test_synapse_reader_downloads_at_most_every_min_interval_while_running() -> None:
    files = Files()
    fetch = SynapseMemory(files)
    now = [0.0]
    reader = SynapseLogReader("https://ws.example", "pool1", "3", "application_1", min_interval=5.0,
                              clock=lambda: now[0])  # fmt: skip
    got: list[LogLine] = []
    for i in range(10):  # a poll a second
        files.write("stdout", f"line {i}\n")
        got += reader.read(fetch, finished=False)[0]
        now[0] += 1.0
    assert len(fetch.calls) == 2 * 2  # at t=0 and t=5, both files
    got += reader.read(fetch, finished=True)[0]  # the end is never skipped
    assert _by_source(got, "stdout") == [f"line {i}" for i in range(10)]


def test_service_reader_of_a_running_synapse_batch_downloads_at_most_every_few_seconds_by_default() -> None:
    files = Files()
    files.write("stdout", "first\n")
    fetch = SynapseMemory(files)
    where = Where("synapse-driverlog", "https://ws.example", "3", pool="p")
    reader = service_log_reader(where, fetch)
    running = Batch("3", BatchState.RUNNING, app_id="application_1")
    shown = [str(x) for _ in range(5) for x in reader.read(None, running).lines]  # a busy monitor's polls
    assert logview.SYNAPSE_MIN_INTERVAL >= 1.0 and fetch.calls == ["stdout", "stderr"] and shown == ["first"]
    files.write("stdout", "second\n")
    ended = Batch("3", BatchState.SUCCESS, app_id="application_1")
    assert [str(x) for x in reader.read(None, ended).lines] == ["second"]  # the end is never skipped
