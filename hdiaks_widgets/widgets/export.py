"""The "Export DAG" panel: the form's job as Airflow DAG files, with a highlighted preview and a download link.

:class:`DagExportPanel` writes the files with ``dag_export.export_dag_files`` in the kernel's
thread (milliseconds) and shows them; problems read as the form's labels ("App file: ...").
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w

from hdiaks_widgets import dag_export
from hdiaks_widgets.errors import ConfigError, ConfigProblem, ExportError
from hdiaks_widgets.widgets._common import DESC, WIDE, message_html, note_html
from hdiaks_widgets.widgets.form import JobForm

__all__ = ["DagExportPanel", "derive_dag_id"]

_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")  # Airflow's KEY_REGEX, as dag_export checks it
_SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
# Thin: the DAG imports its operator from hdiaks-widgets[airflow]; embedded: self-contained.
_DAG_FORMS = (("thin (needs hdiaks-widgets[airflow])", "thin"), ("self-contained (embedded)", "embedded"))
# The form's labels, so an export problem reads "App file: ..." rather than "spec.file: ...".
_FIELD_LABELS = {
    "profile": "Profile", "profile.url": "Livy URL", "profile.fqdn": "Cluster FQDN", "spec.file": "App file",
    "spec.class_name": "Main class", "spec.args": "Arguments", "spec.name": "Job name",
    "spec.driver_memory": "Driver memory", "spec.driver_cores": "Driver cores",
    "spec.executor_memory": "Executor memory", "spec.executor_cores": "Executor cores",
    "spec.num_executors": "Executors", "spec.conf": "Spark configuration", "spec.jars": "Extra jars",
    "spec.py_files": "Py files", "spec.files": "Files", "spec.archives": "Archives",
    "spec.proxy_user": "Proxy user", "spec.queue": "Queue",
    "profile.flavour": "Service", "profile.workspace_id": "Workspace id", "profile.lakehouse_id": "Lakehouse id",
    "profile.environment_id": "Environment id", "profile.workspace": "Workspace", "profile.pool": "Spark pool",
    "profile.api_version": "API version", "profile.auth": "Sign-in", "profile.username": "User",
    "profile.tenant_id": "Tenant id", "profile.client_id": "Client id", "profile.scope": "Token scope",
}  # fmt: skip


def _problem_sentence(problem: ConfigProblem) -> str:
    key = problem.field.split("[", 1)[0]
    # A profile field the form has no box for (vault_url, timeouts, ...) is named as it is.
    parent = None if key.startswith("profile.") else _FIELD_LABELS.get(key.rsplit(".", 1)[0])
    label = _FIELD_LABELS.get(key) or parent or problem.field
    detail = problem.field[len(key) :]
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


class DagExportPanel:
    """The "Export DAG" panel: turns the form's job into Airflow DAG files (``dag_export.export_dag_files``)
    and shows the files written, a highlighted preview and a download link. Runs in the kernel's
    thread: rendering and writing three small files takes milliseconds."""

    def __init__(self, form: JobForm, *, out_dir: str = "dags") -> None:
        self.form = form
        self.files: list[Path] = []
        self.source: str | None = None
        self._derived = derive_dag_id(form.name.value)

        self.dag_id = w.Text(
            value=self._derived, description="DAG id", placeholder="letters, digits, _ . -", style=DESC, layout=WIDE
        )
        self.dag_id_message = w.HTML()
        self.schedule = w.Combobox(
            options=_SCHEDULE_PRESETS,
            ensure_option=False,
            description="Schedule",
            placeholder="none (trigger by hand), @daily or a cron expression",
            style=DESC,
            layout=WIDE,
        )
        self.schedule_message = w.HTML()
        self.style = w.Dropdown(options=_DAG_FORMS, value="thin", description="DAG file", style=DESC)
        self.out_dir = w.Text(value=out_dir, description="Output folder", style=DESC, layout=WIDE)
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
        self.preview_box = w.Box(
            [self.preview],
            layout=w.Layout(max_height="420px", overflow="auto", border="1px solid #d0d7de", display="none"),
        )
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
        with self.note.hold_sync(), self.written.hold_sync(), self.download.hold_sync(), self.preview.hold_sync():
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
                files = dag_export.export_dag_files(
                    cfg, out_dir, dag_id=dag_id, schedule=schedule, embed=self.style.value == "embedded"
                )
                dag_file = next(p for p in files if p.suffix == ".py")
                data = dag_file.read_bytes()
            except ConfigError as exc:
                self.note.value = self._problems_html(
                    "Nothing was exported. Fix these first:", [_problem_sentence(p) for p in exc.problems]
                )
                return []
            except (ExportError, OSError, StopIteration) as exc:
                self.note.value = note_html(f"Could not export the DAG: {self._reason(exc)}", ok=False)
                return []
            self.files, self.source = files, data.decode("utf-8")
            items = "".join(f"<li><code>{html.escape(str(p.resolve()))}</code></li>" for p in files)
            self.note.value = note_html(f"Exported DAG {dag_id} ({self.style.value}) to {out_dir}.")
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
        self.dag_id_message.value = message_html([p for p in problems if p.startswith("The DAG id")])
        self.schedule_message.value = message_html([p for p in problems if p.startswith("The schedule")])

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
        return (
            f'<div class="hdiaks-note" style="color:#cf222e">{html.escape(title)}'
            f'<ul style="margin:2px 0">{items}</ul></div>'
        )
