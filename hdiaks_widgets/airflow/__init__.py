"""Apache Airflow integration: the operator and trigger the exported DAG files use.

Importable in an Airflow environment with only ``requests`` and ``msal`` added
(``pip install "hdiaks-widgets[airflow]"``): nothing here imports pandas or Jupyter.
``operator`` and ``trigger`` import Airflow; this package and ``runtime`` (the decisions) do not,
so the DAG exporter can share ``runtime``'s tables without Airflow installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hdiaks_widgets.airflow.operator import SparkBatchOperator, trigger_params
    from hdiaks_widgets.airflow.trigger import SparkBatchTrigger

__all__ = ["SparkBatchOperator", "SparkBatchTrigger", "trigger_params"]

_LAZY = {
    "SparkBatchOperator": "hdiaks_widgets.airflow.operator",
    "trigger_params": "hdiaks_widgets.airflow.operator",
    "SparkBatchTrigger": "hdiaks_widgets.airflow.trigger",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hdiaks_widgets.airflow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
