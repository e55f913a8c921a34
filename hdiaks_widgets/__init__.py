"""hdiaks-widgets: submit, watch and ship Spark batch jobs on Apache Livy from Jupyter.

The public names are re-exported here. Heavy modules (the notebook UI, the DAG exporter, the
monitor) load on first use, so ``import hdiaks_widgets`` never pulls in Jupyter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.connect import from_profile as _from_profile  # noqa: F401 - registers LivyClient.from_profile
from hdiaks_widgets.errors import (
    AuthError,
    BatchFailed,
    BatchNotFound,
    ConfigError,
    DuplicateBatchName,
    ExportError,
    HdiaksError,
    LivyError,
    LivyHTTPError,
    SecretError,
)
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import Batch, BatchState, LogPage
from hdiaks_widgets.run import BatchRun, Snapshot

if TYPE_CHECKING:  # pragma: no cover
    from hdiaks_widgets.dag_export import render_dag
    from hdiaks_widgets.monitor import BatchMonitor
    from hdiaks_widgets.widgets import app  # type: ignore[no-redef]  # the function, not the submodule

__all__ = [
    "AuthError",
    "Batch",
    "BatchFailed",
    "BatchMonitor",
    "BatchNotFound",
    "BatchRun",
    "BatchSpec",
    "BatchState",
    "ClusterProfile",
    "ConfigError",
    "DuplicateBatchName",
    "ExportError",
    "HdiaksError",
    "JobConfig",
    "LivyClient",
    "LivyError",
    "LivyHTTPError",
    "LogPage",
    "SecretError",
    "Snapshot",
    "__version__",
    "app",
    "render_dag",
]

__version__ = "0.1.0"

_LAZY = {
    "app": "hdiaks_widgets.widgets",
    "render_dag": "hdiaks_widgets.dag_export",
    "BatchMonitor": "hdiaks_widgets.monitor",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hdiaks_widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
