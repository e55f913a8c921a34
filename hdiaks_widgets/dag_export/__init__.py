"""``JobConfig`` -> a ready-to-import Apache Airflow DAG file, and back.

- :mod:`~hdiaks_widgets.dag_export.render`: the DAG source (thin, or ``embed=True``), checked by
  re-reading it; ``read_dag_config`` / ``load_dag_config`` read the job back.
- :mod:`~hdiaks_widgets.dag_export.embed`: the modules an embedded DAG inlines, and its loader.
- :mod:`~hdiaks_widgets.dag_export.sheet`: the setup sheet (Key Vault secrets, Airflow settings).
- :mod:`~hdiaks_widgets.dag_export.files`: writing the three files.

The DAG's task is :class:`hdiaks_widgets.airflow.operator.SparkBatchOperator`.
"""

from __future__ import annotations

from hdiaks_widgets.dag_export.files import export_dag_files, write_dag
from hdiaks_widgets.dag_export.render import (
    DagStyle,
    ExportOptionError,
    load_dag_config,
    read_dag_config,
    render_dag,
)
from hdiaks_widgets.dag_export.sheet import render_setup_sheet

__all__ = [
    "DagStyle",
    "ExportOptionError",
    "export_dag_files",
    "load_dag_config",
    "read_dag_config",
    "render_dag",
    "render_setup_sheet",
    "write_dag",
]
