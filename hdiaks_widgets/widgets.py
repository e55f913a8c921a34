"""The notebook UI: a job form, a live status panel, batch tables and a log panel (ipywidgets).

Views render state and forward events (STYLE.md rule 8). Work happens below: ``config`` validates,
``livy`` submits and kills, ``monitor`` polls in a background thread, ``tables`` renders.

Threads: a monitor thread reaches the widgets only through :meth:`JobApp.apply`, which sets
``HTML.value`` of a few widgets under ``hold_sync()`` (rule 9); nothing here writes to an
``Output`` widget from a thread. Submitting also runs in a thread, so a click never blocks the
kernel, and an in-flight flag makes a double click submit once.

Device code sign-in (a ``device-code`` profile): ``DeviceCodeAuth`` asks for a code and waits in
its own thread; its callbacks only set the sign-in note and the Cancel button under ``hold_sync()``.
A submit from such a profile waits for the sign-in in the submit thread, never in the kernel's.

"Export DAG" (:class:`DagExportPanel`) writes the files with ``dag_export.export_dag_files`` in
the kernel's thread (milliseconds) and shows them, a highlighted preview and a download link.

Every failure is shown as a sentence (``monitor.describe_error``), never as a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import ipywidgets as w
import pandas as pd

from hdiaks_widgets import dag_export
from hdiaks_widgets.auth import DeviceCodeAuth, DeviceCodePrompt
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import AuthError, ConfigError, ConfigProblem, ExportError, HdiaksError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import Batch, BatchList, LogPage
from hdiaks_widgets.monitor import BatchMonitor, Snapshot, describe_error
from hdiaks_widgets.tables import (
    LogRecord,
    Stream,
    batch_html,
    batch_table,
    filter_log,
    link_html,
    log_html,
    log_table,
    parse_lines,
    state_html,
)

__all__ = ["DEFAULT_SANDBOX_URL", "DagExportPanel", "JobApp", "JobForm", "app", "default_config"]

log = logging.getLogger(__name__)

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8998"
SANDBOX_URL_ENV = "HDIAKS_SANDBOX_URL"
_EXAMPLE_JAR = "abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar"
_SPARK_PI = "org.apache.spark.examples.SparkPi"
_LEVEL_CHOICES = ("ALL", "DEBUG", "INFO", "WARN", "ERROR")
_WHOLE = re.compile(r"^[+-]?\d{1,18}$")
_DESC = {"description_width": "150px"}
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")  # Airflow's KEY_REGEX, as dag_export checks it
_SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
_DAG_STYLES = ("taskflow", "livy-operator")
# The form's labels, so an export problem reads "App file: ..." rather than "spec.file: ...".
_FIELD_LABELS = {
    "profile": "Profile", "profile.url": "Livy URL", "profile.fqdn": "Cluster FQDN", "spec.file": "App file",
    "spec.class_name": "Main class", "spec.args": "Arguments", "spec.name": "Job name",
    "spec.driver_memory": "Driver memory", "spec.driver_cores": "Driver cores",
    "spec.executor_memory": "Executor memory", "spec.executor_cores": "Executor cores",
    "spec.num_executors": "Executors", "spec.conf": "Spark configuration", "spec.jars": "Extra jars",
    "spec.py_files": "Py files", "spec.files": "Files", "spec.proxy_user": "Proxy user", "spec.queue": "Queue",
}  # fmt: skip
_WIDE = w.Layout(width="95%")


class LivyClientLike(Protocol):
    """What the UI needs from a client: ``LivyClient`` or a small fake in tests."""

    def submit_batch(self, spec: BatchSpec) -> Batch: ...

    def get_batch(self, batch_id: int | str) -> Batch: ...

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage: ...

    def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList: ...

    def kill_batch(self, batch_id: int | str) -> None: ...


ClientFactory = Callable[[ClusterProfile], LivyClientLike]


def sandbox_profile(url: str | None = None) -> ClusterProfile:
    """The local sandbox profile; the URL comes from ``$HDIAKS_SANDBOX_URL`` when not given."""
    return ClusterProfile(
        name="sandbox", flavour="sandbox", url=url or os.environ.get(SANDBOX_URL_ENV) or DEFAULT_SANDBOX_URL
    )


def default_config(url: str | None = None) -> JobConfig:
    """SparkPi on the sandbox: what the quickstart shows before the user changes anything."""
    return JobConfig(
        profile=sandbox_profile(url),
        spec=BatchSpec(file=_EXAMPLE_JAR, class_name=_SPARK_PI, args=("10",), name="spark-pi"),
    )


def _known_profiles() -> tuple[dict[str, ClusterProfile], str | None]:
    """Saved profiles (``hdiaks_widgets.profiles``) and a sentence if they could not be read."""
    try:
        from hdiaks_widgets import profiles as _profiles
    except ImportError:
        return {}, None
    try:
        return dict(_profiles.load_profiles()), None
    except Exception as exc:  # noqa: BLE001 - a broken profiles file must not break the form
        return {}, f"Saved profiles could not be read: {describe_error(exc)[1]}"


def _message_html(messages: Sequence[str]) -> str:
    if not messages:
        return ""
    items = "<br>".join(html.escape(m) for m in messages)
    return f'<div class="hdiaks-msg" style="color:#cf222e;font-size:12px;margin-left:155px">{items}</div>'


def _note_html(text: str, *, ok: bool = True) -> str:
    colour = "#1a7f37" if ok else "#cf222e"
    return f'<div class="hdiaks-note" style="color:{colour}">{html.escape(text)}</div>'


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _opt(text: str) -> str | None:
    return text if text.strip() else None


def _problem_sentence(problem: ConfigProblem) -> str:
    key = problem.field.split("[", 1)[0]
    label = _FIELD_LABELS.get(key) or _FIELD_LABELS.get(key.rsplit(".", 1)[0]) or problem.field
    detail = problem.field[len(key):]
    return f"{label}{' ' + detail if detail else ''}: {problem.message}"


def derive_dag_id(job_name: str | None) -> str:
    """A DAG id from a job name: runs of other characters become ``_`` (as ``dag_export`` does)."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", job_name or "").strip("_")
    return base[:200] or "spark_batch_job"


def _highlight(source: str) -> str:
    """Python source as inline-styled HTML; pygments comes with Jupyter, escaped ``<pre>`` without it."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f'<pre style="margin:0">{html.escape(source)}</pre>'
    return str(highlight(source, PythonLexer(), HtmlFormatter(noclasses=True)))


def _download_html(filename: str, data: bytes) -> str:
    payload = base64.b64encode(data).decode("ascii")
    name = html.escape(filename, quote=True)
    return (
        f'<a class="hdiaks-dag-download" download="{name}" href="data:text/x-python;base64,{payload}" '
        f'style="color:#0969da;text-decoration:underline">Download {html.escape(filename)}</a>'
    )


def _device_prompt_html(prompt: DeviceCodePrompt) -> str:
    """The sign-in message with its link clickable and its code in bold; everything else escaped."""
    uri, code = prompt.verification_uri, prompt.user_code
    link = link_html(uri) if uri else ""
    code_html = (f'<code class="hdiaks-user-code" style="font-size:15px;font-weight:bold">'
                 f"{html.escape(code)}</code>")
    text = prompt.message or f"Open {uri} and enter the code {code} to sign in."
    wanted = [t for t in (uri, code) if t]
    pieces = re.split("(" + "|".join(re.escape(t) for t in wanted) + ")", text) if wanted else [text]
    out, seen = [], set()
    for i, piece in enumerate(pieces):
        if i % 2 and piece == uri:
            out.append(link)
        elif i % 2 and piece == code:
            out.append(code_html)
        else:
            out.append(html.escape(piece))
        seen.add(piece)
    if uri and uri not in seen:
        out.append(f" Link: {link}")
    if code and code not in seen:
        out.append(f" Code: {code_html}")
    return f'<div class="hdiaks-device-prompt" style="color:#24292f">{"".join(out)}</div>'


class JobForm:
    """The job form. ``config()`` turns the fields into a :class:`JobConfig` plus every problem;
    each problem is shown under its field as the user types."""

    def __init__(
        self,
        cfg: JobConfig | None = None,
        *,
        profiles: Mapping[str, ClusterProfile] | None = None,
    ) -> None:
        cfg = cfg or default_config()
        loaded, profile_note = ({}, None) if profiles is not None else _known_profiles()
        self._profiles: dict[str, ClusterProfile] = {"sandbox": sandbox_profile()}
        self._profiles.update(profiles if profiles is not None else loaded)
        self._profiles[cfg.profile.name] = cfg.profile
        self._listeners: list[Callable[[list[ConfigProblem]], None]] = []
        self._quiet = False
        self.problems: list[ConfigProblem] = []

        self.profile = w.Dropdown(options=sorted(self._profiles), value=cfg.profile.name,
                                  description="Profile", style=_DESC)
        self.url = w.Text(description="Livy URL", placeholder="http://127.0.0.1:8998", style=_DESC, layout=_WIDE)
        self.fqdn = w.Text(description="Cluster FQDN", placeholder="mycluster.mypool.<id>.eastus.hdinsightaks.net",
                           style=_DESC, layout=_WIDE)
        self.file = w.Text(description="App file", placeholder="abfs://container@account.dfs.core.windows.net/app.jar",
                           style=_DESC, layout=_WIDE)
        self.class_name = w.Text(description="Main class", placeholder="org.apache.spark.examples.SparkPi",
                                 style=_DESC, layout=_WIDE)
        self.args = w.Textarea(description="Arguments", placeholder="one argument per line", style=_DESC,
                               layout=w.Layout(width="95%", height="60px"))
        self.name = w.Text(description="Job name", placeholder="spark-pi", style=_DESC, layout=_WIDE)
        self.unique_name = w.Checkbox(value=True, description="add a unique suffix to the job name on submit",
                                      indent=False, layout=w.Layout(width="auto", margin="0 0 0 155px"))
        self.driver_memory = w.Text(description="Driver memory", placeholder="e.g. 2g", style=_DESC)
        self.driver_cores = w.Text(description="Driver cores", placeholder="e.g. 1", style=_DESC)
        self.executor_memory = w.Text(description="Executor memory", placeholder="e.g. 4g", style=_DESC)
        self.executor_cores = w.Text(description="Executor cores", placeholder="e.g. 2", style=_DESC)
        self.num_executors = w.Text(description="Executors", placeholder="e.g. 2", style=_DESC)
        self.jars = w.Textarea(description="Extra jars", placeholder="one path per line", style=_DESC, layout=_WIDE)
        self.py_files = w.Textarea(description="Py files", placeholder="one path per line", style=_DESC,
                                   layout=_WIDE)
        self.files = w.Textarea(description="Files", placeholder="one path per line", style=_DESC, layout=_WIDE)
        self.proxy_user = w.Text(description="Proxy user", style=_DESC)
        self.queue = w.Text(description="Queue", style=_DESC)
        self.conf_rows = w.VBox([])
        self.add_conf_button = w.Button(description="Add Spark setting", icon="plus")
        self.add_conf_button.add_class("hdiaks-add-conf")
        self.config_path = w.Text(value="job.json", description="Config file", style=_DESC)
        self.save_button = w.Button(description="Save", icon="save")
        self.load_button = w.Button(description="Load", icon="folder-open")
        self.file_note = w.HTML()
        self.profile_note = w.HTML(_note_html(profile_note, ok=False) if profile_note else "")
        self._extra_profile = cfg.profile

        self.messages: dict[str, w.HTML] = {
            key: w.HTML()
            for key in (
                "profile", "profile.url", "profile.fqdn", "spec.file", "spec.class_name", "spec.args",
                "spec.name", "spec.driver_memory", "spec.driver_cores", "spec.executor_memory",
                "spec.executor_cores", "spec.num_executors", "spec.conf", "spec.jars", "spec.py_files",
                "spec.files", "spec.proxy_user", "spec.queue", "other",
            )
        }  # fmt: skip
        m = self.messages
        self._url_box = w.VBox([self.url, m["profile.url"]])
        self._fqdn_box = w.VBox([self.fqdn, m["profile.fqdn"]])
        resources = w.VBox([
            w.HBox([self.driver_memory, self.driver_cores]),
            m["spec.driver_memory"], m["spec.driver_cores"],
            w.HBox([self.executor_memory, self.executor_cores]),
            m["spec.executor_memory"], m["spec.executor_cores"],
            self.num_executors, m["spec.num_executors"],
        ])  # fmt: skip
        advanced = w.VBox([
            w.HTML("<b>Spark configuration</b>"), self.conf_rows, self.add_conf_button, m["spec.conf"],
            self.jars, m["spec.jars"], self.py_files, m["spec.py_files"], self.files, m["spec.files"],
            self.proxy_user, m["spec.proxy_user"], self.queue, m["spec.queue"],
        ])  # fmt: skip
        self.advanced = w.Accordion(children=[advanced], titles=("Advanced",), selected_index=None)
        self.widget = w.VBox([
            w.HBox([self.profile]), m["profile"], self.profile_note,
            self._url_box, self._fqdn_box,
            self.file, m["spec.file"], self.class_name, m["spec.class_name"],
            self.args, m["spec.args"], self.name, m["spec.name"], self.unique_name,
            w.HTML("<b>Resources</b>"), resources, self.advanced, m["other"],
            w.HBox([self.config_path, self.save_button, self.load_button]), self.file_note,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-form")

        self.set_config(cfg)
        for widget in (self.url, self.fqdn, self.file, self.class_name, self.args, self.name,
                       self.driver_memory, self.driver_cores, self.executor_memory, self.executor_cores,
                       self.num_executors, self.jars, self.py_files, self.files, self.proxy_user, self.queue):
            widget.observe(self._on_field_change, names="value")
        self.profile.observe(self._on_profile_change, names="value")
        self.add_conf_button.on_click(self._on_add_conf_click)
        self.save_button.on_click(self._on_save_click)
        self.load_button.on_click(self._on_load_click)
        self.validate()

    # -- public ------------------------------------------------------------------------------

    def on_validate(self, listener: Callable[[list[ConfigProblem]], None]) -> None:
        self._listeners.append(listener)

    @property
    def valid(self) -> bool:
        return not self.problems

    def selected_profile(self) -> ClusterProfile:
        base = self._profiles.get(self.profile.value) or self._extra_profile
        if base.flavour in ("hdinsight-aks", "hdinsight"):
            return replace(base, fqdn=self.fqdn.value.strip() or None)
        return replace(base, url=self.url.value.strip() or None)

    def config(self) -> tuple[JobConfig, list[ConfigProblem]]:
        """The configuration the fields describe and every problem with it. Never raises."""
        problems: list[ConfigProblem] = []
        ints: dict[str, int | None] = {}
        for attr in ("driver_cores", "executor_cores", "num_executors"):
            text = getattr(self, attr).value.strip()
            if not text:
                ints[attr] = None
            elif _WHOLE.match(text):
                ints[attr] = int(text)
            else:
                ints[attr] = None
                problems.append(ConfigProblem(f"spec.{attr}", f"must be a whole number like 2, got {text[:40]!r}"))
        conf, conf_problems = self._conf()
        problems += conf_problems
        spec = BatchSpec(
            file=self.file.value.strip(),
            class_name=_opt(self.class_name.value.strip()),
            args=tuple(line for line in self.args.value.split("\n") if line != "") if self.args.value else (),
            name=_opt(self.name.value),
            proxy_user=_opt(self.proxy_user.value),
            jars=_lines(self.jars.value),
            py_files=_lines(self.py_files.value),
            files=_lines(self.files.value),
            driver_memory=_opt(self.driver_memory.value.strip()),
            executor_memory=_opt(self.executor_memory.value.strip()),
            queue=_opt(self.queue.value),
            conf=conf,
            driver_cores=ints["driver_cores"],
            executor_cores=ints["executor_cores"],
            num_executors=ints["num_executors"],
        )
        cfg = JobConfig(profile=self.selected_profile(), spec=spec)
        try:
            problems = cfg.problems() + problems
        except Exception as exc:  # noqa: BLE001 - validation must answer, not crash the form
            problems.append(ConfigProblem("other", f"could not check the form: {exc}"))
        return cfg, problems

    def validate(self) -> list[ConfigProblem]:
        """Check the fields and show each problem under its field."""
        _, problems = self.config()
        self.problems = problems
        grouped: dict[str, list[str]] = {key: [] for key in self.messages}
        for p in problems:
            key = p.field.split("[", 1)[0]
            detail = p.field[len(key):]
            text = f"{detail[1:-1]}: {p.message}" if detail.startswith("[") else p.message
            if key.startswith("profile.") and key not in grouped:
                key = "profile"
            grouped.get(key, grouped["other"]).append(text)
        with contextlib.ExitStack() as stack:
            for widget in self.messages.values():
                stack.enter_context(widget.hold_sync())
            for key, widget in self.messages.items():
                value = _message_html(grouped[key])
                if widget.value != value:
                    widget.value = value
        for listener in list(self._listeners):
            listener(problems)
        return problems

    def set_config(self, cfg: JobConfig) -> None:
        """Show a configuration in the fields (used by Load and by ``app(cfg)``)."""
        self._quiet = True
        try:
            name = cfg.profile.name
            self._profiles.setdefault(name, cfg.profile)
            if name not in self.profile.options:
                self.profile.options = sorted(self._profiles)
            self._profiles[name] = cfg.profile
            self.profile.value = name
            self._show_profile(cfg.profile)
            s = cfg.spec
            self.file.value = s.file
            self.class_name.value = s.class_name or ""
            self.args.value = "\n".join(s.args)
            self.name.value = s.name or ""
            self.driver_memory.value = s.driver_memory or ""
            self.driver_cores.value = "" if s.driver_cores is None else str(s.driver_cores)
            self.executor_memory.value = s.executor_memory or ""
            self.executor_cores.value = "" if s.executor_cores is None else str(s.executor_cores)
            self.num_executors.value = "" if s.num_executors is None else str(s.num_executors)
            self.jars.value = "\n".join(s.jars)
            self.py_files.value = "\n".join(s.py_files)
            self.files.value = "\n".join(s.files)
            self.proxy_user.value = s.proxy_user or ""
            self.queue.value = s.queue or ""
            self.conf_rows.children = ()
            for key, value in s.conf.items():
                self.add_conf_row(str(key), str(value))
        finally:
            self._quiet = False
        self.validate()

    def add_conf_row(self, key: str = "", value: str = "") -> w.HBox:
        key_w = w.Text(value=key, placeholder="spark.executor.memoryOverhead", layout=w.Layout(width="40%"))
        value_w = w.Text(value=value, placeholder="value", layout=w.Layout(width="40%"))
        remove = w.Button(icon="trash", tooltip="Remove this setting", layout=w.Layout(width="40px"))
        row = w.HBox([key_w, value_w, remove])
        row.add_class("hdiaks-conf-row")
        key_w.observe(self._on_field_change, names="value")
        value_w.observe(self._on_field_change, names="value")
        remove.on_click(lambda _b, r=row: self._remove_conf_row(r))
        self.conf_rows.children = (*self.conf_rows.children, row)
        if not self._quiet:
            self.validate()
        return row

    # -- handlers ----------------------------------------------------------------------------

    def _on_field_change(self, change: Mapping[str, Any]) -> None:
        if not self._quiet:
            self.validate()

    def _on_profile_change(self, change: Mapping[str, Any]) -> None:
        profile = self._profiles.get(change["new"])
        if profile is None:
            return
        self._quiet = True
        try:
            self._show_profile(profile)
        finally:
            self._quiet = False
        self.validate()

    def _on_add_conf_click(self, _button: w.Button) -> None:
        self.add_conf_row()

    def _on_save_click(self, _button: w.Button) -> None:
        cfg, problems = self.config()
        try:
            path = cfg.save(self.config_path.value.strip() or "job.json")
        except (OSError, HdiaksError) as exc:
            self.file_note.value = _note_html(f"Could not save: {describe_error(exc)[1]}", ok=False)
            return
        note = f"Saved to {path}."
        if problems:
            note += f" The configuration still has {len(problems)} problem(s) shown above."
        self.file_note.value = _note_html(note, ok=not problems)

    def _on_load_click(self, _button: w.Button) -> None:
        try:
            cfg = JobConfig.load(self.config_path.value.strip() or "job.json")
        except Exception as exc:  # noqa: BLE001 - any bad file becomes a sentence
            self.file_note.value = _note_html(f"Could not load: {describe_error(exc)[1]}", ok=False)
            return
        self.set_config(cfg)
        self.file_note.value = _note_html(f"Loaded {self.config_path.value.strip()}.")

    # -- helpers -----------------------------------------------------------------------------

    def _show_profile(self, profile: ClusterProfile) -> None:
        cluster = profile.flavour in ("hdinsight-aks", "hdinsight")
        self.fqdn.value = (profile.fqdn or "") if cluster else ""
        self.url.value = "" if cluster else (profile.url or "")
        self._fqdn_box.layout.display = None if cluster else "none"
        self._url_box.layout.display = "none" if cluster else None

    def _remove_conf_row(self, row: w.HBox) -> None:
        self.conf_rows.children = tuple(r for r in self.conf_rows.children if r is not row)
        self.validate()

    def _conf(self) -> tuple[dict[str, str], list[ConfigProblem]]:
        conf: dict[str, str] = {}
        problems: list[ConfigProblem] = []
        for row in self.conf_rows.children:
            key_w, value_w = row.children[0], row.children[1]
            key, value = str(key_w.value).strip(), str(value_w.value)
            if not key and not value.strip():
                continue
            if not key:
                problems.append(ConfigProblem("spec.conf", "a setting has a value but no name"))
            elif key in conf:
                problems.append(ConfigProblem(f"spec.conf[{key}]", "is set twice; keep one row"))
            else:
                conf[key] = value
        return conf, problems


class DagExportPanel:
    """"Export DAG": turns the form's job into Airflow DAG files (``dag_export.export_dag_files``)
    and shows the files written, a highlighted preview and a download link. Runs in the kernel's
    thread: rendering and writing three small files takes milliseconds."""

    def __init__(self, form: JobForm, *, out_dir: str = "dags") -> None:
        self.form = form
        self.files: list[Path] = []
        self.source: str | None = None
        self._derived = derive_dag_id(form.name.value)

        self.dag_id = w.Text(value=self._derived, description="DAG id", placeholder="letters, digits, _ . -",
                             style=_DESC, layout=_WIDE)
        self.dag_id_message = w.HTML()
        self.schedule = w.Combobox(options=_SCHEDULE_PRESETS, ensure_option=False, description="Schedule",
                                   placeholder="none (trigger by hand), @daily or a cron expression",
                                   style=_DESC, layout=_WIDE)
        self.schedule_message = w.HTML()
        self.style = w.Dropdown(options=_DAG_STYLES, value="taskflow", description="Style", style=_DESC)
        self.out_dir = w.Text(value=out_dir, description="Output folder", style=_DESC, layout=_WIDE)
        self.export_button = w.Button(description="Export", icon="file-code", button_style="info")
        self.export_button.add_class("hdiaks-export")
        self.note = w.HTML()
        self.note.add_class("hdiaks-export-note")
        self.written = w.HTML()
        self.written.add_class("hdiaks-export-files")
        self.download = w.HTML()
        self.download.add_class("hdiaks-export-download")
        self.preview = w.HTML()
        self.preview.add_class("hdiaks-dag-preview")
        self.preview_box = w.Box([self.preview], layout=w.Layout(max_height="420px", overflow="auto",
                                                                  border="1px solid #d0d7de", display="none"))
        self.widget = w.VBox([
            self.dag_id, self.dag_id_message, self.schedule, self.schedule_message, self.style, self.out_dir,
            self.export_button, self.note, self.written, self.download, self.preview_box,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-export-panel")

        self.form.name.observe(self._on_name_change, names="value")
        self.dag_id.observe(self._on_dag_id_change, names="value")
        self.schedule.observe(self._on_schedule_change, names="value")
        self.export_button.on_click(self._on_export_click)

    # -- public ------------------------------------------------------------------------------

    def options(self) -> tuple[str, str | None, list[str]]:
        """The DAG id, the schedule (``None`` when empty) and a sentence per problem with them."""
        dag_id = self.dag_id.value.strip()
        schedule = self.schedule.value.strip() or None
        problems: list[str] = []
        if not dag_id:
            problems.append("The DAG id is required.")
        elif not _DAG_ID.match(dag_id):
            problems.append("The DAG id may hold only letters, digits, '_', '.' and '-' (at most 250).")
        if schedule is not None and re.search(r"[\x00-\x1f\x7f]", schedule):
            problems.append("The schedule must be one line: a preset like @daily or a cron expression.")
        return dag_id, schedule, problems

    def export(self) -> list[Path]:
        """Validate the form and the export options, write the DAG files, show them. Never raises."""
        self.files, self.source = [], None
        with self.note.hold_sync(), self.written.hold_sync(), self.download.hold_sync(), \
                self.preview.hold_sync():
            self.written.value = self.download.value = self.preview.value = ""
            self.preview_box.layout.display = "none"
            self._show_option_problems()
            dag_id, schedule, option_problems = self.options()
            cfg, problems = self.form.config()
            if problems:
                self.form.validate()
            sentences = option_problems + [_problem_sentence(p) for p in problems]
            if sentences:
                self.note.value = self._problems_html("Nothing was exported. Fix these first:", sentences)
                return []
            out_dir = self.out_dir.value.strip() or "dags"
            try:
                files = dag_export.export_dag_files(cfg, out_dir, dag_id=dag_id, schedule=schedule,
                                                    style=self.style.value)
                dag_file = next(p for p in files if p.suffix == ".py")
                data = dag_file.read_bytes()
            except ConfigError as exc:
                self.note.value = self._problems_html("Nothing was exported. Fix these first:",
                                                      [_problem_sentence(p) for p in exc.problems])
                return []
            except (ExportError, OSError, StopIteration) as exc:
                self.note.value = _note_html(f"Could not export the DAG: {self._reason(exc)}", ok=False)
                return []
            self.files, self.source = files, data.decode("utf-8")
            items = "".join(f"<li><code>{html.escape(str(p.resolve()))}</code></li>" for p in files)
            self.note.value = _note_html(f"Exported DAG {dag_id} ({self.style.value}) to {out_dir}.")
            self.written.value = f'<ul style="margin:2px 0">{items}</ul>'
            self.download.value = _download_html(f"{dag_id}.py", data)
            self.preview.value = _highlight(self.source)
            self.preview_box.layout.display = None
        return files

    # -- handlers ----------------------------------------------------------------------------

    def _on_name_change(self, change: Mapping[str, Any]) -> None:
        # The DAG id follows the job name until the user types their own.
        derived = derive_dag_id(change["new"])
        if self.dag_id.value == self._derived:
            self.dag_id.value = derived
        self._derived = derived

    def _on_dag_id_change(self, _change: Mapping[str, Any]) -> None:
        self._show_option_problems()

    def _on_schedule_change(self, _change: Mapping[str, Any]) -> None:
        self._show_option_problems()

    def _on_export_click(self, _button: w.Button) -> None:
        self.export()

    # -- helpers -----------------------------------------------------------------------------

    def _show_option_problems(self) -> None:
        _, _, problems = self.options()
        self.dag_id_message.value = _message_html([p for p in problems if p.startswith("The DAG id")])
        self.schedule_message.value = _message_html([p for p in problems if p.startswith("The schedule")])

    @staticmethod
    def _reason(exc: BaseException) -> str:
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            return f"{exc.strerror or exc}{where}."
        if isinstance(exc, StopIteration):
            return "no DAG file was written."
        return str(exc)

    @staticmethod
    def _problems_html(title: str, sentences: Sequence[str]) -> str:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
        return (f'<div class="hdiaks-note" style="color:#cf222e">{html.escape(title)}'
                f'<ul style="margin:2px 0">{items}</ul></div>')


class JobApp:
    """Form + live status + tables + logs for batches submitted from this notebook."""

    def __init__(
        self,
        cfg: JobConfig | None = None,
        *,
        client_factory: ClientFactory | None = None,
        profiles: Mapping[str, ClusterProfile] | None = None,
        monitor_interval: float = 0.5,
        max_interval: float = 5.0,
        history_page_size: int = 20,
        log_last: int = 200,
        download_dir: str | os.PathLike[str] = ".",
        export_dir: str = "dags",
    ) -> None:
        self.form = JobForm(cfg, profiles=profiles)
        self.export = DagExportPanel(self.form, out_dir=export_dir)
        self._client_factory: ClientFactory = client_factory or self._livy_client
        self._sign_in_auth: DeviceCodeAuth | None = None
        self._clients_lock = threading.Lock()
        self._sign_in_lock = threading.Lock()
        self._clients: dict[ClusterProfile, LivyClientLike] = {}
        self._interval = monitor_interval
        self._max_interval = max_interval
        self._history_size = history_page_size
        self._history_start = 0
        self._history_total = 0
        self._download_dir = Path(download_dir)
        self._lock = threading.RLock()
        self._in_flight = False
        self.monitors: dict[int, BatchMonitor] = {}
        self.snapshots: dict[int, Snapshot] = {}
        self._clients_of: dict[int, LivyClientLike] = {}
        self._records: dict[int, list[LogRecord]] = {}
        self._frames: dict[int, pd.DataFrame] = {}
        self._parsed: dict[int, tuple[int, Stream]] = {}
        self.current: int | None = None

        self.submit_button = w.Button(description="Submit", button_style="primary", icon="play")
        self.submit_button.add_class("hdiaks-submit")
        self.message = w.HTML()
        self.message.add_class("hdiaks-message")
        self.batch_selector = w.Dropdown(options=[], description="Batch", style={"description_width": "50px"})
        self.kill_button = w.Button(description="Kill", button_style="danger", icon="stop", disabled=True)
        self.kill_button.add_class("hdiaks-kill")
        self.kill_yes = w.Button(description="Yes, kill it", button_style="danger")
        self.kill_no = w.Button(description="Cancel")
        self.kill_question = w.HTML()
        self.kill_confirm = w.HBox([self.kill_question, self.kill_yes, self.kill_no],
                                   layout=w.Layout(display="none"))
        self.sign_in_button = w.Button(description="Sign in", icon="sign-in",
                                       tooltip="Sign in with a device code (opens nothing; shows a link and a code)")
        self.sign_in_button.add_class("hdiaks-sign-in")
        self.cancel_sign_in_button = w.Button(description="Cancel sign-in", icon="times", disabled=True)
        self.cancel_sign_in_button.add_class("hdiaks-cancel-sign-in")
        self.sign_in_note = w.HTML()
        self.sign_in_note.add_class("hdiaks-sign-in-status")
        self.sign_in_box = w.VBox([w.HBox([self.sign_in_button, self.cancel_sign_in_button]), self.sign_in_note],
                                  layout=w.Layout(display="none"))
        self.status = w.HTML(self._status_html(None))
        self.status.add_class("hdiaks-status")
        self.batches = w.HTML(batch_html(batch_table([])))
        self.batches.add_class("hdiaks-batches")
        self.history_button = w.Button(description="Show cluster history", icon="list")
        self.history_prev = w.Button(description="◀ Newer", disabled=True)
        self.history_next = w.Button(description="Older ▶", disabled=True)
        self.history_label = w.HTML()
        self.history = w.HTML()
        self.history.add_class("hdiaks-history")
        self.log_level = w.Dropdown(options=_LEVEL_CHOICES, value="ALL", description="Level",
                                    style={"description_width": "50px"}, layout=w.Layout(width="160px"))
        self.log_text = w.Text(placeholder="filter text", description="Text", style={"description_width": "40px"})
        self.log_last = w.BoundedIntText(value=log_last, min=0, max=1_000_000, description="Last N",
                                         style={"description_width": "60px"}, layout=w.Layout(width="160px"))
        self.download_button = w.Button(description="Download full log", icon="download", disabled=True,
                                        layout=w.Layout(width="auto"))
        self.log_note = w.HTML()
        self.log = w.HTML(layout=w.Layout(max_height="520px", overflow="auto"))
        self.log.add_class("hdiaks-log")

        history_box = w.VBox([
            w.HBox([self.history_button, self.history_prev, self.history_next, self.history_label]),
            self.history,
        ])  # fmt: skip
        self.export_section = w.Accordion(children=[self.export.widget], titles=("Export DAG",),
                                          selected_index=None)
        self.widget = w.VBox([
            self.form.widget, self.export_section,
            w.HBox([self.submit_button, self.batch_selector, self.kill_button]),
            self.kill_confirm, self.message, self.sign_in_box, self.status,
            w.HTML("<b>Batches submitted from this notebook</b>"), self.batches,
            w.Accordion(children=[history_box], titles=("Cluster batch history",), selected_index=None),
            w.HTML("<b>Driver log</b>"),
            w.HBox([self.log_level, self.log_text, self.log_last, self.download_button]),
            self.log_note, self.log,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-app")

        self.form.on_validate(self._on_form_validate)
        self.submit_button.on_click(self._on_submit_click)
        self.kill_button.on_click(self._on_kill_click)
        self.kill_yes.on_click(self._on_kill_yes_click)
        self.kill_no.on_click(self._on_kill_no_click)
        self.batch_selector.observe(self._on_batch_selector_change, names="value")
        self.history_button.on_click(self._on_history_click)
        self.history_prev.on_click(self._on_history_prev_click)
        self.history_next.on_click(self._on_history_next_click)
        for widget in (self.log_level, self.log_text, self.log_last):
            widget.observe(self._on_log_filter_change, names="value")
        self.download_button.on_click(self._on_download_click)
        self.sign_in_button.on_click(self._on_sign_in_click)
        self.cancel_sign_in_button.on_click(self._on_cancel_sign_in_click)
        self._sync_submit()
        self._sync_sign_in()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- public API --------------------------------------------------------------------------

    @property
    def submitting(self) -> bool:
        return self._in_flight

    def submit(self) -> Batch | None:
        """Submit the form's job now (in the calling thread) and start watching it.

        Returns the batch, or ``None`` when the form is invalid, a submit is already in flight,
        or Livy refused (the reason is shown in the UI and in ``message``).
        """
        cfg = self._begin_submit()
        if cfg is None:
            return None
        return self._submit(cfg)

    def wait(self, timeout: float | None = None, *, batch_id: int | None = None) -> Snapshot | None:
        """Block until the batch (default: the current one) finishes; its latest snapshot."""
        bid = self.current if batch_id is None else batch_id
        monitor = self.monitors.get(bid) if bid is not None else None
        if monitor is None:
            return None
        snap = monitor.wait(timeout)
        return self.snapshots.get(snap.batch_id, snap)

    def batches_table(self) -> pd.DataFrame:
        """Every batch submitted from this app, as a DataFrame."""
        with self._lock:
            snaps = [s for s in self.snapshots.values() if s.batch is not None]
        return batch_table([s.batch for s in snaps if s.batch is not None],
                           elapsed={s.batch_id: round(s.elapsed, 1) for s in snaps})

    def log_table(self, batch_id: int | None = None, *, filtered: bool = False) -> pd.DataFrame:
        """The parsed driver log of a batch (default: the current one)."""
        bid = self.current if batch_id is None else batch_id
        with self._lock:
            frame = self._frames.get(bid) if bid is not None else None
        if frame is None:
            frame = log_table([])
        return self._filtered(frame) if filtered else frame

    def history_table(self, *, start: int = 0, size: int | None = None) -> pd.DataFrame:
        """One page of the cluster's batch history (``GET /batches?from=&size=``)."""
        page = self._client(self.form.selected_profile()).list_batches(start=start, size=size or self._history_size)
        self._history_total = page.total
        return batch_table(page.batches)

    def watch(self, batch_id: int, *, profile: ClusterProfile | None = None) -> BatchMonitor:
        """Watch an existing batch (submitted elsewhere) in this app."""
        client = self._client(profile or self.form.selected_profile())
        return self._start_monitor(client, int(batch_id), None)

    def apply(self, snap: Snapshot) -> None:
        """The one way from monitor threads to the widgets: show a snapshot."""
        try:
            with self._lock:
                self.snapshots[snap.batch_id] = snap
                self._extend_log(snap)
                with self.status.hold_sync(), self.batches.hold_sync(), self.log.hold_sync(), \
                        self.kill_button.hold_sync(), self.download_button.hold_sync():
                    self.batches.value = batch_html(self.batches_table())
                    if snap.batch_id == self.current:
                        self._render_current()
        except Exception as exc:  # noqa: BLE001 - a view error is shown, never raised in the thread
            log.warning("could not show batch %s: %s", snap.batch_id, exc)
            self.message.value = _note_html(f"Could not show batch {snap.batch_id}: {describe_error(exc)[1]}",
                                            ok=False)

    def close(self) -> None:
        """Stop every monitor and any sign-in wait (returns at once)."""
        for monitor in self.monitors.values():
            monitor.stop()
        if self._sign_in_auth is not None:
            self._sign_in_auth.cancel()

    def sign_in(self) -> DeviceCodeAuth | None:
        """Start device code sign-in for the selected profile (returns at once; the wait runs in
        MSAL's background thread). The link and code appear in ``sign_in_note``. ``None`` when the
        profile does not sign in with a device code or the client could not be built (shown)."""
        try:
            auth = _device_auth_of(self._client(self.form.selected_profile()))
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self._show_sign_in(_note_html(f"Could not sign in: {describe_error(exc)[1]}", ok=False))
            return None
        if auth is None:
            self._show_sign_in(_note_html("This profile does not sign in with a device code.", ok=False))
            return None
        if auth.status == "signed-in":
            self._show_sign_in(_note_html("Already signed in."))
            return auth
        self._start_sign_in(auth)
        return auth

    def cancel_sign_in(self) -> None:
        """Stop waiting for a device code sign-in (the wait ends within about a second)."""
        auth = self._sign_in_auth
        if auth is not None and auth.status == "pending":
            self._show_sign_in(_note_html("Cancelling sign-in…"))  # before cancel(): on_done may follow at once
            auth.cancel()

    # -- handlers ----------------------------------------------------------------------------

    def _on_form_validate(self, _problems: list[ConfigProblem]) -> None:
        self._sync_submit()
        self._sync_sign_in()

    def _on_sign_in_click(self, _button: w.Button) -> None:
        # Building the client and asking for a code are network calls: keep the kernel free.
        threading.Thread(target=self.sign_in, name="hdiaks-sign-in", daemon=True).start()

    def _on_cancel_sign_in_click(self, _button: w.Button) -> None:
        self.cancel_sign_in()

    def _on_submit_click(self, _button: w.Button) -> None:
        cfg = self._begin_submit()
        if cfg is not None:
            threading.Thread(target=self._submit, args=(cfg,), name="hdiaks-submit", daemon=True).start()

    def _on_kill_click(self, _button: w.Button) -> None:
        if self.current is None:
            return
        snap = self.snapshots.get(self.current)
        name = snap.batch.name if snap is not None and snap.batch is not None else None
        label = f"batch {self.current}" + (f" ({name})" if name else "")
        self.kill_question.value = f"<b>Kill {html.escape(label)}?</b> This stops the Spark application."
        self.kill_confirm.layout.display = "flex"

    def _on_kill_yes_click(self, _button: w.Button) -> None:
        self.kill_confirm.layout.display = "none"
        bid = self.current
        client = self._clients_of.get(bid) if bid is not None else None
        if bid is None or client is None:
            return
        try:
            client.kill_batch(bid)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self.message.value = _note_html(f"Could not kill batch {bid}: {describe_error(exc)[1]}", ok=False)
            return
        self.message.value = _note_html(f"Kill requested for batch {bid}.")

    def _on_kill_no_click(self, _button: w.Button) -> None:
        self.kill_confirm.layout.display = "none"

    def _on_batch_selector_change(self, change: Mapping[str, Any]) -> None:
        if change["new"] is None:
            return
        with self._lock:
            self.current = int(change["new"])
            self._render_current()

    def _on_history_click(self, _button: w.Button) -> None:
        self._show_history(0)

    def _on_history_prev_click(self, _button: w.Button) -> None:
        self._show_history(max(0, self._history_start - self._history_size))

    def _on_history_next_click(self, _button: w.Button) -> None:
        self._show_history(self._history_start + self._history_size)

    def _on_log_filter_change(self, _change: Mapping[str, Any]) -> None:
        with self._lock:
            self._render_current()

    def _on_download_click(self, _button: w.Button) -> None:
        bid = self.current
        snap = self.snapshots.get(bid) if bid is not None else None
        if snap is None:
            return
        target = self._download_dir / f"batch-{bid}.log"
        try:
            target.write_text("".join(f"{line}\n" for line in snap.lines), encoding="utf-8")
        except OSError as exc:
            self.log_note.value = _note_html(f"Could not write {target}: {exc.strerror}", ok=False)
            return
        more = "" if snap.finished else " (the job is still running; download again for the rest)"
        self.log_note.value = _note_html(f"Saved {len(snap.lines)} log lines to {target.resolve()}{more}.")

    # -- submit ------------------------------------------------------------------------------

    def _begin_submit(self) -> JobConfig | None:
        """Claim the in-flight flag (so a double click submits once) and read the form."""
        with self._lock:
            if self._in_flight:
                return None
            cfg, problems = self.form.config()
            if problems:
                self.form.validate()
                self.message.value = _note_html(
                    f"Fix the {len(problems)} problem(s) shown in the form before submitting.", ok=False
                )
                return None
            self._in_flight = True
            self._sync_submit()
        self.message.value = _note_html("Submitting…")
        return cfg

    def _submit(self, cfg: JobConfig) -> Batch | None:
        spec = cfg.spec
        if self.form.unique_name.value:
            base = spec.name or "job"
            spec = replace(spec, name=f"{base[:180]}-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}")
        batch: Batch | None = None
        try:
            client = self._client(cfg.profile)
            self._wait_signed_in(client)
            batch = client.submit_batch(spec)
            self._start_monitor(client, batch.id, batch)
            note = _note_html(f"Submitted batch {batch.id} ({batch.name}).")
        except AuthError as exc:
            reason = "sign-in was cancelled." if exc.error == "cancelled" else describe_error(exc)[1]
            note = _note_html(f"Not submitted: {reason}", ok=False)
        except Exception as exc:  # noqa: BLE001 - a submit failure is a sentence in the UI
            note = _note_html(f"Not submitted: {describe_error(exc)[1]}", ok=False)
        finally:
            with self._lock:
                self._in_flight = False
                self._sync_submit()
        self.message.value = note
        return batch

    def _start_monitor(self, client: LivyClientLike, batch_id: int, batch: Batch | None) -> BatchMonitor:
        with self._lock:
            old = self.monitors.get(batch_id)
            if old is not None:
                old.stop()
            monitor = BatchMonitor(client, batch_id, on_snapshot=self.apply, interval=self._interval,
                                   max_interval=self._max_interval)
            self.monitors[batch_id] = monitor
            self._clients_of[batch_id] = client
            self.snapshots[batch_id] = replace(monitor.snapshot, batch=batch)
            self.current = batch_id
            with self.batch_selector.hold_sync():
                self.batch_selector.options = [(f"{bid}", bid) for bid in sorted(self.monitors, reverse=True)]
                self.batch_selector.value = batch_id
            self.apply(self.snapshots[batch_id])
        monitor.start()
        return monitor

    def _client(self, profile: ClusterProfile) -> LivyClientLike:
        with self._clients_lock:  # not self._lock: building a client may read Key Vault
            client = self._clients.get(profile)
            if client is None:
                client = self._client_factory(profile)
                self._clients[profile] = client
            return client

    def _livy_client(self, profile: ClusterProfile) -> LivyClientLike:
        return LivyClient.from_profile(profile, on_device_code=self._on_device_code)

    # -- device code sign-in ------------------------------------------------------------------
    # DeviceCodeAuth.start() asks for a code and waits in its own thread; its callbacks come from
    # that thread (or ours) and only set two widgets' values under hold_sync (rule 9).

    def _start_sign_in(self, auth: DeviceCodeAuth) -> Exception | None:
        """Start the flow unless it is pending; the error (already shown) when it could not start."""
        # One start at a time: a second caller (a click during a submit) finds the flow pending.
        with self._sign_in_lock:
            if auth.status == "pending":
                return None
            self._sign_in_auth = auth
            self._show_sign_in(_note_html("Asking the identity provider for a sign-in code…"))
            try:
                # The code reaches _on_device_code through the client (LivyClient.from_profile) or here.
                auth.start(None if auth.on_code is not None else self._on_device_code,
                           on_done=self._on_sign_in_done)
            except Exception as exc:  # noqa: BLE001 - shown as a sentence
                self._show_sign_in(_note_html(f"Could not start sign-in: {describe_error(exc)[1]}", ok=False))
                return exc
        return None

    def _on_device_code(self, prompt: DeviceCodePrompt) -> None:
        self._show_sign_in(_device_prompt_html(prompt)
                           + '<div style="color:#57606a">Waiting for you to sign in…</div>', cancellable=True)

    def _on_sign_in_done(self, error: AuthError | None) -> None:
        if error is None:
            self._show_sign_in(_note_html("Signed in."))
        elif error.error == "cancelled":
            self._show_sign_in(_note_html("Sign-in was cancelled.", ok=False))
        else:
            self._show_sign_in(_note_html(describe_error(error)[1], ok=False))

    def _wait_signed_in(self, client: LivyClientLike) -> None:
        """Before a submit from a device-code profile: sign in first (in the submit thread)."""
        auth = _device_auth_of(client)
        if auth is None or auth.status == "signed-in":
            return
        error = self._start_sign_in(auth)
        if error is not None:
            raise error
        self.message.value = _note_html("Sign in with the code shown below; the job is submitted after that.")
        auth.wait()  # raises AuthError when the sign-in fails or is cancelled

    def _show_sign_in(self, note: str, *, cancellable: bool = False) -> None:
        try:
            with self.sign_in_note.hold_sync(), self.cancel_sign_in_button.hold_sync():
                self.sign_in_note.value = note
                self.cancel_sign_in_button.disabled = not cancellable
        except Exception as exc:  # noqa: BLE001 - called from MSAL's thread: log, never raise there
            log.warning("could not show the sign-in state: %s", exc)

    def _sync_sign_in(self) -> None:
        try:
            device = self.form.selected_profile().auth_method == "device-code"
        except Exception:  # noqa: BLE001 - a half-typed profile has no sign-in
            device = False
        self.sign_in_box.layout.display = None if device else "none"

    def _sync_submit(self) -> None:
        disabled = self._in_flight or not self.form.valid
        with self.submit_button.hold_sync():
            self.submit_button.disabled = disabled
            self.submit_button.description = "Submitting…" if self._in_flight else "Submit"

    # -- rendering ---------------------------------------------------------------------------

    def _extend_log(self, snap: Snapshot) -> None:
        """Parse only the lines not parsed before (a snapshot carries every line so far)."""
        bid = snap.batch_id
        done, stream = self._parsed.get(bid, (0, "stdout"))
        fresh = snap.lines[done:]
        if not fresh:
            return
        records, stream = parse_lines(fresh, start=snap.log_start + done, stream=stream)
        self._parsed[bid] = (done + len(fresh), stream)
        if not records:
            return
        new = log_table(records)
        old = self._frames.get(bid)
        self._frames[bid] = new if old is None or old.empty else pd.concat([old, new], ignore_index=True)

    def _filtered(self, frame: pd.DataFrame) -> pd.DataFrame:
        return filter_log(frame, level=self.log_level.value, text=self.log_text.value or None,
                          last=int(self.log_last.value))

    def _render_current(self) -> None:
        snap = self.snapshots.get(self.current) if self.current is not None else None
        self.status.value = self._status_html(snap)
        frame = self._frames.get(self.current) if self.current is not None else None
        shown = self._filtered(frame if frame is not None else log_table([]))
        total = 0 if frame is None else len(frame)
        self.log.value = (
            f'<div style="font-size:12px;color:#57606a">{len(shown)} of {total} lines shown</div>'
            + log_html(shown)
        )
        running = snap is not None and not snap.finished and not (snap.state and snap.state.is_terminal)
        self.kill_button.disabled = not running
        self.download_button.disabled = snap is None or not snap.lines

    def _status_html(self, snap: Snapshot | None) -> str:
        if snap is None:
            return '<div class="hdiaks-status-line" style="color:#57606a">No batch submitted yet.</div>'
        parts = [
            f"<b>Batch {snap.batch_id}</b>",
            html.escape(snap.batch.name or "") if snap.batch is not None else "",
            state_html(snap.state_label),
            f"elapsed {snap.elapsed:.1f} s",
        ]
        if snap.app_id:
            parts.append(f"app id <code>{html.escape(snap.app_id)}</code>")
        if snap.spark_ui_url:
            parts.append(link_html(snap.spark_ui_url, "Spark UI"))
        if snap.driver_log_url:
            parts.append(link_html(snap.driver_log_url, "driver log"))
        if not snap.finished and not (snap.state and snap.state.is_terminal):
            parts.append('<span style="color:#57606a">watching…</span>')
        line = " · ".join(p for p in parts if p)
        out = f'<div class="hdiaks-status-line" data-state="{html.escape(snap.state_label, quote=True)}">{line}</div>'
        if snap.error:
            ok = snap.purged and snap.succeeded
            out += _note_html(snap.error, ok=ok)
        return out

    def _show_history(self, start: int) -> None:
        try:
            frame = self.history_table(start=start)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self.history.value = _note_html(f"Could not list batches: {describe_error(exc)[1]}", ok=False)
            return
        self._history_start = start
        end = start + len(frame)
        with self.history.hold_sync(), self.history_label.hold_sync():
            self.history.value = batch_html(frame)
            self.history_label.value = f"batches {start + 1 if len(frame) else 0}–{end} of {self._history_total}"
            self.history_prev.disabled = start <= 0
            self.history_next.disabled = end >= self._history_total


def _device_auth_of(client: LivyClientLike) -> DeviceCodeAuth | None:
    """The client's device code auth, if it has one."""
    auth = getattr(client, "auth", None)
    return auth if isinstance(auth, DeviceCodeAuth) else None


def app(
    cfg: JobConfig | None = None,
    *,
    client_factory: ClientFactory | None = None,
    profiles: Mapping[str, ClusterProfile] | None = None,
    **options: Any,
) -> JobApp:
    """The notebook UI for ``cfg`` (default: SparkPi on the sandbox). Display it as a cell's value."""
    return JobApp(cfg, client_factory=client_factory, profiles=profiles, **options)

