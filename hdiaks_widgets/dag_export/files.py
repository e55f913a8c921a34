"""Writing an exported DAG: ``<dag>.py``, ``<dag>.trigger-conf.json`` and ``<dag>.setup.md``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hdiaks_widgets.config import JobConfig
from hdiaks_widgets.dag_export.render import DagStyle, default_dag_id, render_dag, schedule_problem
from hdiaks_widgets.dag_export.sheet import file_stem, render_setup_sheet
from hdiaks_widgets.errors import ExportError
from hdiaks_widgets.fileio import atomic_write_text

__all__ = ["export_dag_files", "write_dag"]


def write_dag(
    cfg: JobConfig,
    out_dir: str | os.PathLike[str],
    *,
    dag_id: str | None = None,
    schedule: str | None = None,
    style: DagStyle = "taskflow",
    embed: bool = False,
    **options: Any,
) -> list[Path]:
    """Write ``<dag>.py``, ``<dag>.trigger-conf.json`` and ``<dag>.setup.md`` into ``out_dir``."""
    dag_id = default_dag_id(cfg) if dag_id is None else dag_id
    source = render_dag(cfg, dag_id=dag_id, schedule=schedule, style=style, embed=embed, **options)
    sheet = render_setup_sheet(cfg, dag_id=dag_id, embed=embed, deferrable=options.get("deferrable", True))
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = file_stem(dag_id)
        # Atomic: a scheduler parsing the folder never sees half a DAG file.
        return [
            atomic_write_text(folder / f"{stem}.py", source),
            atomic_write_text(
                folder / f"{stem}.trigger-conf.json",
                json.dumps(cfg.to_trigger_conf(), indent=2, ensure_ascii=False) + "\n",
            ),
            atomic_write_text(folder / f"{stem}.setup.md", sheet),
        ]
    except OSError as exc:
        raise ExportError(f"cannot write the DAG files into {os.fspath(out_dir)!r}: {exc.strerror}") from exc


def export_dag_files(
    cfg: JobConfig,
    out_dir: str | os.PathLike[str],
    *,
    dag_id: str | None = None,
    schedule: str | None = None,
    style: DagStyle = "taskflow",
    embed: bool = False,
) -> list[Path]:
    """For ``hdiaks export-dag`` and the form's Export button: validate the job (``ConfigError``
    naming the fields) and the schedule (``ExportError``), then write."""
    cfg.validate()
    problem = schedule_problem(schedule)
    if problem is not None:
        raise ExportError(f"schedule {problem}")
    return write_dag(cfg, out_dir, dag_id=dag_id, schedule=schedule, style=style, embed=embed)
