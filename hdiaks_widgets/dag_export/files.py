"""Writing an exported DAG: ``<dag>.py``, ``<dag>.trigger-conf.json`` and ``<dag>.setup.md``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hdiaks_widgets.config import JobConfig
from hdiaks_widgets.dag_export.render import (
    DagStyle,
    ExportOptionError,
    default_dag_id,
    render_dag,
    schedule_problem,
)
from hdiaks_widgets.dag_export.sheet import file_stem, render_setup_sheet
from hdiaks_widgets.errors import ConfigProblem, ExportError
from hdiaks_widgets.fileio import atomic_write_text

__all__ = ["export_dag_files", "write_dag"]


def _file_in_the_way(out_dir: Path) -> Path | None:
    """The file where ``out_dir`` or one of its parents would have to be a folder, if any."""
    for path in (out_dir, *out_dir.parents):
        if path.is_dir():
            return None
        if path.exists():
            return path
    return None


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
    """Write ``<dag>.py``, ``<dag>.trigger-conf.json`` and ``<dag>.setup.md`` into ``out_dir``
    (made if absent). An invalid option, or an ``out_dir`` that is a file, is an
    ``ExportOptionError`` naming it, raised before anything is written."""
    dag_id = default_dag_id(cfg) if dag_id is None else dag_id
    source = render_dag(cfg, dag_id=dag_id, schedule=schedule, style=style, embed=embed, **options)
    sheet = render_setup_sheet(cfg, dag_id=dag_id, embed=embed, deferrable=options.get("deferrable", True))
    folder = Path(out_dir)
    blocker = _file_in_the_way(folder)
    if blocker == folder:  # the user's own mistake, said before anything is written
        raise ExportOptionError([ConfigProblem("out_dir", f"{os.fspath(folder)!r} is a file; give a folder")])
    if blocker is not None:
        raise ExportError(f"cannot write the DAG files into {os.fspath(out_dir)!r}: {os.fspath(blocker)!r} is a "
                          "file; give a folder")
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
    naming the fields) and the options (``ExportOptionError``, a ``ConfigError`` naming each),
    then write."""
    cfg.validate()
    problem = schedule_problem(schedule)
    if problem is not None:
        raise ExportOptionError([ConfigProblem("schedule", problem)])
    return write_dag(cfg, out_dir, dag_id=dag_id, schedule=schedule, style=style, embed=embed)
