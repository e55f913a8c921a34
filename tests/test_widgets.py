"""widgets: the form, status, tables and logs built headless; set values, click, observe.

A small fake client stands in for Livy (injected through ``client_factory``); one test drives a
real Jupyter kernel against the sandbox to show the kernel answers while a job is watched. The
device code tests sign in against the sandbox identity endpoint with the real ``msal``.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest
import requests
from auth_fixtures import (
    PUBLIC_ID,
    TENANT,
    AuthSandbox,
    auth_sandbox_factory_fixture,  # noqa: F401 - fixture "auth_sandbox_factory"
    auth_sandbox_fixture,  # noqa: F401 - fixture "auth_sandbox"
)

from hdiaks_widgets.auth import DeviceCodeAuth
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dag_export import load_dag_config
from hdiaks_widgets.errors import AuthError, BatchNotFound, LivyError
from hdiaks_widgets.models import AppInfo, Batch, BatchList, BatchState, LogLine, LogPage
from hdiaks_widgets.run import Snapshot
from hdiaks_widgets.sandbox.logbuf import LogBuffer
from hdiaks_widgets.widgets import JobApp, JobForm, app, default_config
from hdiaks_widgets.widgets.status import LogPanel, log_note_html

PI_LOG = [
    "stdout: ",
    "Pi is roughly 3.14158",
    "\nstderr: ",
    "25/11/24 08:01:02 INFO SparkContext: Running Spark version 4.0.0",
    "25/11/24 08:01:03 WARN NativeCodeLoader: Unable to load native-hadoop library",
    "25/11/24 08:01:04 ERROR Evil: <script>alert('x')</script>",
    "25/11/24 08:01:05 INFO SparkContext: Successfully stopped SparkContext",
]

PI_LOG_LINES = [line for line in PI_LOG if line not in ("stdout: ", "\nstderr: ")]  # the headers are structure


class FakeLivy:
    """Batches move through ``states`` one get_batch call at a time; the log is served by offset."""

    def __init__(
        self,
        states: Sequence[str] = ("starting", "running", "success"),
        log: Sequence[str] = PI_LOG,
        *,
        submit_error: BaseException | None = None,
        history: int = 0,
    ) -> None:
        self.states = list(states)
        self.log = list(log)
        self.submit_error = submit_error
        self.submitted: list[BatchSpec] = []
        self.killed: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.calls = 0
        self.history = [Batch(id=i, state=BatchState.SUCCESS, name=f"old-{i}") for i in range(history)]

    def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch:
        self.entered.set()
        self.release.wait(30)
        if self.submit_error is not None:
            raise self.submit_error
        self.submitted.append(spec)
        return Batch(id=len(self.submitted) - 1, state=BatchState.STARTING, name=spec.name)

    def get_batch(self, batch_id: int | str) -> Batch:
        self.calls += 1
        state = self.states[min(self.calls, len(self.states)) - 1]
        if state == "404":
            raise BatchNotFound(batch_id, '{"msg":"not found"}')
        info = AppInfo(spark_ui_url="http://127.0.0.1:4040/", driver_log_url="javascript:alert(1)")
        bid = int(batch_id)
        name = self.submitted[bid].name if bid < len(self.submitted) else "spark-pi"  # the name it was given
        return Batch(id=bid, state=BatchState(state), name=name, app_id="local-42", app_info=info)

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        first = 0 if start is None else start
        return LogPage(id=int(batch_id), start=first, total=len(self.log), lines=tuple(self.log[first : first + size]))

    def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList:
        return BatchList(start=start, total=len(self.history), batches=tuple(self.history[start : start + size]))

    def kill_batch(self, batch_id: int | str) -> None:
        self.killed.append(str(batch_id))

    def find_batch(self, name: str) -> Batch | None:
        return None


class StormLivy(FakeLivy):
    """Livy's real log view (a sandbox ``LogBuffer``: two evicting queues, rebuilt per request)
    while a job prints ``burst`` stderr lines per poll, more than the queue keeps."""

    def __init__(self, states: Sequence[str] = ("starting", "running", "running", "success"), *,
                 burst: int = 25, cache: int = 10, driver_log_url: str | None = "javascript:alert(1)") -> None:
        super().__init__(states, log=())
        self.buffer = LogBuffer("process", cache)
        self.buffer.append("stdout", "Pi is roughly 3.14158")
        self.burst = burst
        self.printed = 0
        self.driver_log_url = driver_log_url

    def get_batch(self, batch_id: int | str) -> Batch:
        batch = super().get_batch(batch_id)
        if not batch.state.is_terminal:
            for _ in range(self.burst):
                self.printed += 1
                self.buffer.append("stderr", f"25/11/24 08:01:02 INFO Storm: line {self.printed}")
        return Batch(id=batch.id, state=batch.state, name=batch.name, app_id=batch.app_id,
                     app_info=AppInfo(driver_log_url=self.driver_log_url))

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        return LogPage.from_json(self.buffer.page_json(int(batch_id), start, size))


def _app(fake: FakeLivy, cfg: JobConfig | None = None, **kw: object) -> JobApp:
    return app(cfg, client_factory=lambda profile: fake, profiles={}, monitor_interval=0.01, **kw)  # type: ignore[arg-type]


def _messages(form: JobForm) -> dict[str, str]:
    return {key: widget.value for key, widget in form.messages.items() if widget.value}


# -- form ----------------------------------------------------------------------------------------


def test_form_default_config_is_valid_and_submit_enabled() -> None:
    ui = _app(FakeLivy())
    assert ui.form.valid and _messages(ui.form) == {}
    assert not ui.submit_button.disabled
    cfg, problems = ui.form.config()
    assert problems == [] and cfg.spec.class_name == "org.apache.spark.examples.SparkPi"


def test_form_shows_each_message_under_its_field() -> None:
    form = JobForm(profiles={})
    form.driver_memory.value = "lots"
    form.name.value = "1234"
    shown = _messages(form)
    assert set(shown) == {"spec.driver_memory", "spec.name"}
    assert "512m" in shown["spec.driver_memory"] and "digits" in shown["spec.name"]


def test_form_shows_args_given_as_one_string_as_written() -> None:
    from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig

    form = JobForm(profiles={})
    spec = BatchSpec(file="abfs://c@a.dfs.core.windows.net/x.jar", class_name="a.B", args="10 20")  # type: ignore[arg-type]
    form.set_config(JobConfig(profile=ClusterProfile(url="http://127.0.0.1:8998"), spec=spec))
    assert form.args.value == "10 20"  # not one character per line


TEXT_FIELDS = ["url", "file", "class_name", "args", "name", "driver_memory", "driver_cores", "executor_memory",
               "executor_cores", "num_executors", "jars", "py_files", "files", "proxy_user", "queue"]
HOSTILE = {
    "empty": "",
    "spaces": "   ",
    "nul": "a\x00b",
    "script": "<script>alert(1)</script>",
    "huge-number": "9" * 5000,
    "negative": "-1",
    "emoji": "😀",
    "newline": "a\nb",
    "sql": "' OR 1=1 --",
    "traversal": "../../etc/passwd",
    "long": "x" * 10000,
}


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_form_hostile_value_gives_message_not_exception(field: str, value: str) -> None:
    ui = _app(FakeLivy())
    getattr(ui.form, field).value = value  # must not raise
    shown = _messages(ui.form)
    assert all("<script>" not in text for text in shown.values())
    # every problem is shown somewhere, and an invalid form cannot be submitted
    assert bool(shown) == bool(ui.form.problems)
    assert ui.submit_button.disabled == bool(ui.form.problems)


@pytest.mark.parametrize(
    "field,value,key",
    [
        ("url", "not a url", "profile.url"),
        ("file", "<script>alert(1)</script>", "spec.file"),
        ("class_name", "1abc", "spec.class_name"),
        ("args", "ok\nbad\x00arg", "spec.args"),
        ("name", "a/b", "spec.name"),
        ("driver_memory", "9" * 5000, "spec.driver_memory"),
        ("driver_cores", "9" * 5000, "spec.driver_cores"),
        ("executor_cores", "-1", "spec.executor_cores"),
        ("num_executors", "two", "spec.num_executors"),
        ("jars", "ftp://host/x.jar", "spec.jars"),
        ("py_files", "javascript:alert(1)", "spec.py_files"),
        ("files", "C:\\x y", "spec.files"),
        ("proxy_user", "a b", "spec.proxy_user"),
        ("queue", "a\nb", "spec.queue"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_form_invalid_value_message_under_field(field: str, value: str, key: str) -> None:
    form = JobForm(profiles={})
    getattr(form, field).value = value
    assert key in _messages(form)
    assert not form.valid


def test_form_conf_rows_add_and_remove() -> None:
    form = JobForm(profiles={})
    form.add_conf_button.click()
    row = form.conf_rows.children[0]
    row.children[0].value = "spark.executor.memoryOverhead"
    row.children[1].value = "512m"
    assert form.config()[0].spec.conf == {"spark.executor.memoryOverhead": "512m"}
    row.children[2].click()
    assert form.conf_rows.children == () and form.config()[0].spec.conf == {}


@pytest.mark.parametrize("key,value", [("bad key", "1"), ("", "orphan"), ("k", "line\nbreak")],
                         ids=["space", "no-key", "newline"])
def test_form_conf_bad_row_gives_message(key: str, value: str) -> None:
    form = JobForm(profiles={})
    form.add_conf_row(key, value)
    assert "spec.conf" in _messages(form)


def test_form_conf_duplicate_key_gives_message() -> None:
    form = JobForm(profiles={})
    form.add_conf_row("spark.a", "1")
    form.add_conf_row("spark.a", "2")
    assert "set twice" in _messages(form)["spec.conf"]


def test_form_profile_switch_shows_fqdn_field() -> None:
    prod = ClusterProfile(name="prod", flavour="hdinsight-aks", fqdn="c.pool.abc.eastus.hdinsightaks.net")
    form = JobForm(profiles={"prod": prod})
    assert "sandbox" in form.profile.options and "prod" in form.profile.options
    form.profile.value = "prod"
    assert form._fqdn_box.layout.display is None and form._url_box.layout.display == "none"
    assert form.fqdn.value == prod.fqdn
    form.fqdn.value = "https://c.pool.abc.eastus.hdinsightaks.net/"
    assert "scheme" in _messages(form)["profile.fqdn"]


def test_form_save_and_load_round_trip(tmp_path: Path) -> None:
    form = JobForm(profiles={})
    form.name.value = "round-trip"
    form.add_conf_row("spark.x", "y")
    form.config_path.value = str(tmp_path / "job.json")
    form.save_button.click()
    assert "Saved" in form.file_note.value
    other = JobForm(profiles={})
    other.config_path.value = str(tmp_path / "job.json")
    other.load_button.click()
    assert other.name.value == "round-trip"
    assert other.config()[0] == form.config()[0]


def test_form_load_bad_file_shows_sentence(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    form = JobForm(profiles={})
    form.config_path.value = str(tmp_path / "bad.json")
    form.load_button.click()
    assert "Could not load" in form.file_note.value and "Traceback" not in form.file_note.value


# -- app -----------------------------------------------------------------------------------------


def test_app_submit_disabled_while_form_invalid() -> None:
    ui = _app(FakeLivy())
    ui.form.file.value = ""
    assert ui.submit_button.disabled
    ui.form.file.value = default_config().spec.file
    assert not ui.submit_button.disabled


def test_app_double_click_submits_once() -> None:
    fake = FakeLivy()
    fake.release.clear()
    ui = _app(fake)
    ui.submit_button.click()
    assert fake.entered.wait(30)
    assert ui.submit_button.disabled and ui.submitting
    ui.submit_button.click()
    assert ui.submit() is None
    fake.release.set()
    snap = None
    for _ in range(300):
        snap = ui.wait(timeout=30)
        if snap is not None:
            break
        threading.Event().wait(0.02)
    assert snap is not None and snap.finished
    assert len(fake.submitted) == 1
    assert not ui.submit_button.disabled


def test_app_submit_shows_status_links_and_log() -> None:
    ui = _app(FakeLivy())
    batch = ui.submit()
    assert batch is not None and batch.name is not None and batch.name.startswith("spark-pi-")
    snap = ui.wait(timeout=30)
    assert snap is not None and snap.succeeded
    assert 'data-state="success"' in ui.status.value
    assert '<a href="http://127.0.0.1:4040/"' in ui.status.value
    assert 'href="javascript' not in ui.status.value
    assert "Pi is roughly" in ui.log.value
    table = ui.batches_table()
    assert list(table["state"]) == ["success"] and list(table["app_id"]) == ["local-42"]


def test_app_hostile_log_lines_are_escaped() -> None:
    ui = _app(FakeLivy())
    ui.submit()
    ui.wait(timeout=30)
    assert "<script>" not in ui.log.value
    assert "&lt;script&gt;" in ui.log.value


def test_app_log_filters_level_text_and_last() -> None:
    ui = _app(FakeLivy())
    ui.submit()
    ui.wait(timeout=30)
    ui.log_level.value = "ERROR"
    assert list(ui.log_table(filtered=True)["level"]) == ["", "ERROR"]
    ui.log_level.value = "ALL"
    ui.log_text.value = "stopped"
    assert list(ui.log_table(filtered=True)["logger"]) == ["SparkContext"]
    ui.log_text.value = ""
    ui.log_last.value = 2
    assert len(ui.log_table(filtered=True)) == 2
    assert "2 of 5 lines shown" in ui.log.value


@pytest.mark.parametrize(
    "exc,words",
    [
        (LivyError("Cannot reach Livy at http://127.0.0.1:1 (POST /batches): ConnectionError"), "Cannot reach"),
        (AuthError("AADSTS7000215: Invalid client secret provided"), "Sign-in failed"),
    ],
    ids=["network", "auth"],
)
def test_app_submit_failure_is_a_sentence(exc: BaseException, words: str) -> None:
    ui = _app(FakeLivy(submit_error=exc))
    assert ui.submit() is None
    assert words in ui.message.value and "Traceback" not in ui.message.value
    assert not ui.submit_button.disabled


def test_app_failed_job_shows_last_error_lines() -> None:
    log = ["stdout: ", "\nstderr: ", "Traceback (most recent call last):",
           "RuntimeError: sandbox example failure: boom"]
    ui = _app(FakeLivy(("running", "dead"), log))
    ui.submit()
    snap = ui.wait(timeout=30)
    assert snap is not None and snap.state is BatchState.DEAD
    assert "RuntimeError: sandbox example failure: boom" in ui.status.value
    assert 'data-state="dead"' in ui.status.value


def test_app_purged_batch_is_shown_as_purged() -> None:
    ui = _app(FakeLivy(("running", "404")))
    ui.submit()
    snap = ui.wait(timeout=30)
    assert snap is not None and snap.purged
    assert "purged" in ui.status.value


def test_app_kill_asks_for_confirmation() -> None:
    fake = FakeLivy(("running",) * 1000)
    ui = _app(fake, max_interval=0.05)
    batch = ui.submit()
    assert batch is not None and not ui.kill_button.disabled
    ui.kill_button.click()
    assert ui.kill_confirm.layout.display == "flex" and fake.killed == []
    ui.kill_no.click()
    assert ui.kill_confirm.layout.display == "none" and fake.killed == []
    ui.kill_button.click()
    ui.kill_yes.click()  # the kill request runs off the kernel thread
    assert ui.settle()
    assert fake.killed == [batch.id]
    assert "Kill requested" in ui.message.value
    ui.close()


def test_app_download_writes_full_log(tmp_path: Path) -> None:
    ui = _app(FakeLivy(), download_dir=tmp_path)
    batch = ui.submit()
    ui.wait(timeout=30)
    ui.download_button.click()
    assert batch is not None
    assert (tmp_path / f"batch-{batch.id}.log").read_text(encoding="utf-8").splitlines() == PI_LOG_LINES
    assert "Saved 5 log lines" in ui.log_note.value


def test_app_log_table_has_the_source_of_each_line() -> None:
    ui = _app(FakeLivy())
    ui.submit()
    ui.wait(timeout=30)
    assert list(ui.log_table()["source"]) == ["livy stdout"] + ["livy stderr"] * 4
    assert "<td>livy stderr</td>" in ui.log.value


def test_app_log_source_filter_offers_the_sources_present() -> None:
    ui = _app(FakeLivy())
    ui.submit()
    ui.wait(timeout=30)
    assert ui.log_source.options == ("all", "livy stdout", "livy stderr")
    ui.log_source.value = "livy stdout"
    assert list(ui.log_table(filtered=True)["message"]) == ["Pi is roughly 3.14158"]
    assert "1 of 5 lines shown" in ui.log.value and "Running Spark" not in ui.log.value
    ui.log_source.value = "all"
    assert "5 of 5 lines shown" in ui.log.value


def test_log_panel_source_choice_survives_new_sources_without_a_rerender() -> None:
    renders: list[int] = []
    panel = LogPanel(current=lambda: None, on_filter=lambda: renders.append(1))
    first = Snapshot(batch_id=0, lines=(LogLine("launching", "livy stderr"),))
    panel.extend(first)
    panel.render(0, first)
    panel.source.value = "livy stderr"
    assert renders == [1]
    later = Snapshot(batch_id=0, lines=(*first.lines, LogLine("Pi is roughly 3.1", "driver stdout"),
                                        LogLine("Exit code 0", "diagnostics")))
    panel.extend(later)
    panel.render(0, later)
    assert panel.source.options == ("all", "livy stderr", "driver stdout", "diagnostics")
    assert panel.source.value == "livy stderr" and renders == [1]  # new options are not a filter change
    assert "1 of 3 lines shown" in panel.view.value


def test_log_panel_source_filter_falls_back_to_all_for_a_batch_without_that_source() -> None:
    panel = LogPanel(current=lambda: None, on_filter=lambda: None)
    a = Snapshot(batch_id=0, lines=(LogLine("x", "driver stderr"),))
    b = Snapshot(batch_id=1, lines=(LogLine("y", "livy stdout"),))
    for snap in (a, b):
        panel.extend(snap)
    panel.render(0, a)
    panel.source.value = "driver stderr"
    panel.render(1, b)
    assert panel.source.value == "all" and "1 of 1 lines shown" in panel.view.value


def test_app_shows_the_note_when_livy_dropped_lines() -> None:
    fake = StormLivy()
    ui = _app(fake)
    ui.submit()
    snap = ui.wait(timeout=30)
    assert snap is not None and snap.finished and snap.log_gaps >= 1 and snap.log_note
    notice = ui.log_notice.value
    assert "lines were dropped before they could be read" in notice
    # The driver log URL Livy gave is javascript: — named as text, never a link.
    assert "javascript:alert(1)" in notice and "<a " not in notice
    assert "hdiaks-log-note" in notice


def test_app_note_links_an_http_driver_log() -> None:
    url = "http://nm.example:8042/node/containerlogs/container_1/livy"
    ui = _app(StormLivy(driver_log_url=url))
    ui.submit()
    ui.wait(timeout=30)
    assert f'<a href="{url}" target="_blank" rel="noopener noreferrer"' in ui.log_notice.value


def test_app_without_a_note_shows_none() -> None:
    ui = _app(FakeLivy())
    ui.submit()
    snap = ui.wait(timeout=30)
    assert snap is not None and snap.log_note is None and ui.log_notice.value == ""


HOSTILE_NOTES = {
    "script-text": ("<script>alert(1)</script> lines were dropped", "https://nm.example/logs"),
    "img-in-url": ("see {url}", 'https://nm.example/"><img src=x onerror=alert(1)>'),
    "javascript-url": ("the full driver log is here: {url}", "javascript:alert(document.cookie)"),
    "entity-text": ("&lt;b&gt; &amp; {url}", "http://nm.example/?a=<b>"),
}


@pytest.mark.parametrize(("text", "url"), list(HOSTILE_NOTES.values()), ids=list(HOSTILE_NOTES))
def test_log_note_html_cannot_inject_html(text: str, url: str) -> None:
    batch = Batch(id=0, state=BatchState.RUNNING, name="x", app_info=AppInfo(driver_log_url=url))
    out = log_note_html(Snapshot(batch_id=0, batch=batch, log_note=text.format(url=url)))
    assert re.findall(r"<(\w+)", out) in (["div"], ["div", "a"])  # only the note's own tags
    assert 'href="javascript' not in out and "<script" not in out and "<img" not in out


def test_app_history_opens_at_the_newest_batches() -> None:
    """One history panel (widgets/history.py); the app's history_* name its Refresh, pager, label and table."""
    ui = _app(FakeLivy(history=45))  # listed oldest first, as Apache Livy lists
    assert ui.history_section.children == (ui.batch_history.widget,)
    ui.history_button.click()  # each page is listed off the kernel thread
    assert ui.settle()
    assert "batches 1–20 of 45, newest first" in ui.history_label.value and ui.history_prev.disabled
    assert ui.history.value.index("old-44") < ui.history.value.index("old-25") and "old-24" not in ui.history.value
    ui.history_next.click()  # Older, twice
    ui.history_next.click()
    assert ui.settle()
    assert "batches 41–45 of 45" in ui.history_label.value and ui.history_next.disabled
    assert "old-0" in ui.history.value and "old-5" not in ui.history.value
    ui.history_prev.click()
    assert ui.settle()
    assert "batches 21–40 of 45" in ui.history_label.value
    assert list(ui.history_table()["name"]) == [f"old-{i}" for i in range(44, 24, -1)]


def test_app_history_error_is_a_sentence() -> None:
    class Down(FakeLivy):
        def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList:
            raise LivyError("Cannot reach Livy at http://127.0.0.1:1")

    ui = _app(Down())
    ui.history_button.click()
    assert ui.settle()
    note = ui.batch_history.note.value
    assert "The cluster did not answer" in note and "Cannot reach Livy at http://127.0.0.1:1" in note


# -- export DAG ----------------------------------------------------------------------------------


def _export(ui: JobApp, out_dir: Path, *, dag_id: str | None = None, schedule: str = "",
            style: str = "thin") -> list[Path]:
    panel = ui.export
    if dag_id is not None:
        panel.dag_id.value = dag_id
    panel.schedule.value = schedule
    panel.style.value = style
    panel.out_dir.value = str(out_dir)
    panel.export_button.click()
    return panel.files


def _download_bytes(link: str) -> bytes:
    match = re.search(r'href="data:text/x-python;base64,([A-Za-z0-9+/=]+)"', link)
    assert match is not None, link
    return base64.b64decode(match.group(1))


def test_export_dag_id_follows_job_name_until_edited() -> None:
    ui = _app(FakeLivy())
    assert ui.export.dag_id.value == "spark_pi"
    ui.form.name.value = "nightly load.v2"
    assert ui.export.dag_id.value == "nightly_load_v2"
    ui.export.dag_id.value = "my.own-id"
    ui.form.name.value = "other"
    assert ui.export.dag_id.value == "my.own-id"


def test_export_section_is_an_accordion_in_the_app() -> None:
    ui = _app(FakeLivy())
    assert ui.export_section.titles == ("Export DAG",) and ui.export_section in ui.widget.children
    assert ui.export.widget in ui.export_section.children
    assert isinstance(ui.export.schedule, w.Combobox) and "@daily" in ui.export.schedule.options
    assert [value for _label, value in ui.export.style.options] == ["thin", "embedded"]
    assert ui.export.out_dir.value == "dags"


@pytest.mark.parametrize("style", ["thin", "embedded"])
def test_export_click_writes_files_preview_and_download(tmp_path: Path, style: str) -> None:
    ui = _app(FakeLivy())
    files = _export(ui, tmp_path / "dags", dag_id="nightly_pi", schedule="@daily", style=style)
    assert ("EMBEDDED_SOURCES" in files[0].read_text(encoding="utf-8")) == (style == "embedded")
    assert [p.name for p in files] == ["nightly_pi.py", "nightly_pi.trigger-conf.json", "nightly_pi.setup.md"]
    assert all(p.parent == tmp_path / "dags" and p.is_file() for p in files)
    panel = ui.export
    assert all(str(p.resolve()) in panel.written.value for p in files)
    assert "Exported DAG nightly_pi" in panel.note.value
    # highlighted by pygments with inline styles, inside a scrollable box
    assert re.search(r'<span style="[^"]*color: ?#[0-9A-Fa-f]{3,6}', panel.preview.value)
    assert "nightly_pi" in panel.preview.value
    assert panel.preview_box.layout.overflow == "auto" and panel.preview_box.layout.display is None
    assert 'download="nightly_pi.py"' in panel.download.value
    assert _download_bytes(panel.download.value) == files[0].read_bytes()
    assert load_dag_config(files[0]) == ui.form.config()[0]


def test_export_empty_schedule_means_none(tmp_path: Path) -> None:
    ui = _app(FakeLivy())
    files = _export(ui, tmp_path, schedule="  ")
    assert "SCHEDULE = None" in files[0].read_text(encoding="utf-8")


def test_export_invalid_form_shows_problems_and_writes_nothing(tmp_path: Path) -> None:
    ui = _app(FakeLivy())
    ui.form.file.value = ""
    ui.form.driver_cores.value = "two"
    assert _export(ui, tmp_path / "dags") == []
    note = ui.export.note.value
    assert "Nothing was exported" in note and "App file:" in note and "Driver cores:" in note
    assert "Traceback" not in note and "spec.file" not in note
    assert not (tmp_path / "dags").exists()
    assert ui.export.preview.value == "" and ui.export.download.value == ""


HOSTILE_DAG_IDS = {
    "empty": "",
    "space": "my dag",
    "quote": 'a"b',
    "single-quote": "a'b",
    "newline": "a\nb",
    "jinja": "{{ ds }}",
    "script": "</script><script>alert(1)</script>",
    "slash": "../evil",
    "unicode": "dág",
    "too-long": "x" * 251,
}


@pytest.mark.parametrize("dag_id", list(HOSTILE_DAG_IDS.values()), ids=list(HOSTILE_DAG_IDS))
def test_export_hostile_dag_id_gives_message_not_exception(tmp_path: Path, dag_id: str) -> None:
    ui = _app(FakeLivy())
    assert _export(ui, tmp_path / "dags", dag_id=dag_id) == []
    assert "DAG id" in ui.export.dag_id_message.value and "DAG id" in ui.export.note.value
    assert "<script>" not in ui.export.note.value + ui.export.dag_id_message.value
    assert not (tmp_path / "dags").exists()


@pytest.mark.parametrize("schedule", ["@daily\nrm -rf /", "0 0 * * *\x00"], ids=["newline", "nul"])
def test_export_hostile_schedule_gives_message(tmp_path: Path, schedule: str) -> None:
    ui = _app(FakeLivy())
    assert _export(ui, tmp_path / "dags", schedule=schedule) == []
    assert "schedule" in ui.export.schedule_message.value and not (tmp_path / "dags").exists()


HOSTILE_JOB_VALUES: dict[str, tuple[str, str]] = {
    "args-quotes": ("args", "it's \"quoted\"\n'''\n\"\"\"\n\\"),
    "args-jinja": ("args", "{{ ds }}\n{% raw %}{{ var.value.x }}"),
    "args-script": ("args", "</script><script>alert(1)</script>\n<b>bold</b>"),
    "name-quote": ("name", "a\"b'c"),
    "name-jinja": ("name", "{{ dag_run.conf }}"),
    "queue-braces": ("queue", "{}{{}}"),
}


@pytest.mark.parametrize("field,value", list(HOSTILE_JOB_VALUES.values()), ids=list(HOSTILE_JOB_VALUES))
def test_export_hostile_job_values_are_carried_and_escaped(tmp_path: Path, field: str, value: str) -> None:
    ui = _app(FakeLivy())
    getattr(ui.form, field).value = value
    files = _export(ui, tmp_path, dag_id="hostile")
    assert files, ui.export.note.value
    assert load_dag_config(files[0]) == ui.form.config()[0]  # carried exactly
    preview = ui.export.preview.value
    assert "<script>" not in preview and "</script>" not in preview and "<b>" not in preview
    assert _download_bytes(ui.export.download.value) == files[0].read_bytes()


def test_export_hostile_conf_value_is_carried(tmp_path: Path) -> None:
    ui = _app(FakeLivy())
    ui.form.add_conf_row("spark.app.note", "'\"{{ ds }}</script>")
    files = _export(ui, tmp_path, dag_id="conf_value")
    assert load_dag_config(files[0]).spec.conf == {"spark.app.note": "'\"{{ ds }}</script>"}
    assert "</script>" not in ui.export.preview.value


def test_export_hostile_job_name_gives_message_not_exception(tmp_path: Path) -> None:
    ui = _app(FakeLivy())
    ui.form.name.value = "</script>"
    assert _export(ui, tmp_path / "dags", dag_id="ok") == []
    assert "Job name:" in ui.export.note.value and "</script>" not in ui.export.note.value
    assert not (tmp_path / "dags").exists()


def test_export_unwritable_folder_is_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    ui = _app(FakeLivy())
    assert _export(ui, blocker / "dags") == []
    assert "Could not export the DAG" in ui.export.note.value and "Traceback" not in ui.export.note.value


def test_export_preview_without_pygments_is_escaped_pre(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pygments", None)  # "import pygments" now raises ImportError
    ui = _app(FakeLivy())
    ui.form.args.value = "</script>"
    _export(ui, tmp_path, dag_id="plain")
    preview = ui.export.preview.value
    assert preview.startswith("<pre") and "&lt;/script&gt;" in preview and "</script>" not in preview


# -- device code sign-in -------------------------------------------------------------------------


def _device_cfg(sb: AuthSandbox) -> JobConfig:
    profile = ClusterProfile(
        name="entra", flavour="hdinsight-aks", fqdn="mycluster.pool.eastus.hdinsightaks.net",
        auth="device-code", client_id=PUBLIC_ID, tenant_id=TENANT, authority_host=sb.authority_host,
        verify=sb.ca_pem,
    )
    return JobConfig(profile=profile, spec=default_config().spec)


def _device_auth(sb: AuthSandbox) -> DeviceCodeAuth:
    return DeviceCodeAuth(tenant_id=TENANT, client_id=PUBLIC_ID, authority_host=sb.authority_host, verify=sb.ca_pem)


def _until(widget: w.HTML, text: str, timeout: float = 30) -> str:
    """The first value of ``widget`` holding ``text`` (observed, so a passing value is not missed)."""
    seen: list[str] = []
    hit = threading.Event()

    def look(change: dict[str, Any] | None = None) -> None:
        value = widget.value if change is None else change["new"]
        if text in value and not hit.is_set():
            seen.append(value)
            hit.set()

    widget.observe(look, names="value")
    try:
        look()
        assert hit.wait(timeout), f"{text!r} never shown; last: {widget.value!r}"
    finally:
        widget.unobserve(look, names="value")
    return seen[0]


def test_app_sign_in_hidden_for_profiles_without_device_code() -> None:
    ui = _app(FakeLivy())
    assert ui.sign_in_box.layout.display == "none"


def test_app_device_code_prompt_shown_and_sign_in_completes(auth_sandbox: AuthSandbox) -> None:
    ui = app(_device_cfg(auth_sandbox), profiles={})  # the real LivyClient.from_profile(on_device_code=)
    assert ui.sign_in_box.layout.display is None
    shown: list[str] = []
    ui.sign_in_note.observe(lambda change: shown.append(change["new"]), names="value")
    auth = ui.sign_in()  # what the button's thread runs; returns once the code is shown
    assert isinstance(auth, DeviceCodeAuth)
    _until(ui.sign_in_note, "Signed in.")
    prompt = next(v for v in shown if "hdiaks-user-code" in v)
    assert f'<a href="{auth_sandbox.authority_host}/_identity/device"' in prompt
    assert re.search(r'<code class="hdiaks-user-code"[^>]*>[A-Z0-9]{9}</code>', prompt)
    assert auth.status == "signed-in"
    resp = requests.get(auth_sandbox.whoami_url, auth=auth, verify=auth_sandbox.ca_pem, timeout=10)
    assert resp.status_code == 200 and resp.json()["appid"] == PUBLIC_ID


def test_app_sign_in_click_shows_prompt_until_approved(auth_sandbox_factory: Callable[..., AuthSandbox]) -> None:
    sb = auth_sandbox_factory(device_approval="manual")
    ui = app(_device_cfg(sb), profiles={})
    ui.sign_in_button.click()  # returns at once; the code is fetched in a thread
    prompt = _until(ui.sign_in_note, "hdiaks-user-code")
    assert not ui.cancel_sign_in_button.disabled
    code = re.search(r'<code class="hdiaks-user-code"[^>]*>([A-Z0-9]+)</code>', prompt)
    assert code is not None and f'href="{sb.authority_host}/_identity/device"' in prompt
    requests.post(sb.authority_host + "/_identity/approve", json={"user_code": code.group(1)},
                  verify=sb.ca_pem, timeout=10).raise_for_status()
    _until(ui.sign_in_note, "Signed in.")
    assert ui.cancel_sign_in_button.disabled


def test_app_cancel_sign_in_stops_the_wait(auth_sandbox_factory: Callable[..., AuthSandbox]) -> None:
    sb = auth_sandbox_factory(device_approval="manual")
    ui = app(_device_cfg(sb), profiles={})
    auth = ui.sign_in()
    assert auth is not None and auth.status == "pending"
    ui.cancel_sign_in_button.click()
    with pytest.raises(AuthError, match="cancelled"):
        auth.wait(timeout=30)
    _until(ui.sign_in_note, "Sign-in was cancelled.")
    assert auth.status == "cancelled" and ui.cancel_sign_in_button.disabled


def test_app_submit_signs_in_first_with_device_code(auth_sandbox: AuthSandbox) -> None:
    device = _device_auth(auth_sandbox)

    class SignedFake(FakeLivy):
        auth = device

        def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch:
            if device.status != "signed-in":  # a real Livy call would be refused
                raise AuthError("Not signed in")
            return super().submit_batch(spec)

    ui = _app(SignedFake(), _device_cfg(auth_sandbox))
    batch = ui.submit()
    assert batch is not None and "Submitted batch" in ui.message.value
    assert device.status == "signed-in"
    ui.close()


def test_app_submit_after_cancelled_sign_in_is_a_sentence(auth_sandbox_factory: Callable[..., AuthSandbox]
                                                           ) -> None:
    sb = auth_sandbox_factory(device_approval="manual")
    device = _device_auth(sb)

    class SignedFake(FakeLivy):
        auth = device

    fake = SignedFake()
    ui = _app(fake, _device_cfg(sb))
    ui.submit_button.click()  # the submit thread waits for the sign-in
    _until(ui.sign_in_note, "hdiaks-user-code")
    ui.cancel_sign_in_button.click()
    note = _until(ui.message, "Not submitted")
    assert "Not submitted: sign-in was cancelled." in note and "Traceback" not in note
    assert fake.submitted == []


# -- real kernel, real sandbox -------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.notebook
def test_app_kernel_answers_while_a_job_is_watched(sandbox) -> None:  # type: ignore[no-untyped-def]
    """A real ipykernel runs the app against the sandbox; while the monitor thread watches a
    running Spark job, execute_requests complete and the monitor keeps producing snapshots."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run(code: str) -> str:
            reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: outputs.append(msg))
            assert reply["content"]["status"] == "ok", reply["content"]
            return "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")

        outputs: list[dict] = []
        run(
            "from hdiaks_widgets import JobConfig, ClusterProfile, BatchSpec, app\n"
            f"cfg = JobConfig(profile=ClusterProfile(name='sandbox', flavour='sandbox', url={sandbox.url!r}),\n"
            f"                spec=BatchSpec(file={sandbox.examples['sleep_py']!r}, args=('4',), name='kernel-free'))\n"
            "ui = app(cfg, monitor_interval=0.2, max_interval=0.5)\n"
            "batch = ui.submit()\n"
            "print(batch.id)\n"
        )
        polls = []
        finished = False
        while not finished:
            outputs = []
            text = run("s = ui.snapshots[batch.id]; print(s.polls, s.finished, s.state_label)")
            count, done, _state = text.split()
            polls.append(int(count))
            finished = done == "True"
            threading.Event().wait(0.3)
        outputs = []
        final = run("s = ui.wait(timeout=120); print(s.state_label, len(s.lines))")
        assert final.split()[0] == "success"
        # several requests answered while the job was being watched, and the polls kept rising
        assert len(polls) >= 3  # at least two answers came back before the job had finished
        assert polls == sorted(polls) and polls[-1] > polls[0]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
