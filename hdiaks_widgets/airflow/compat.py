"""The few Airflow names the operator and trigger use, from Airflow 3's task SDK or Airflow 2.4+.

Airflow 3 moved the authoring interface to ``airflow.sdk`` (PROTOCOL.md §6.3); the old paths
still exist there with deprecation warnings, and are the only ones on 2.x.
"""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

try:  # Airflow 3
    from airflow.sdk import BaseOperator, Param
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.models.baseoperator import BaseOperator  # type: ignore[no-redef,unused-ignore]
    from airflow.models.param import Param  # type: ignore[no-redef,unused-ignore]

__all__ = [
    "TRIGGER_HAS_ON_KILL",
    "AirflowException",
    "BaseOperator",
    "BaseTrigger",
    "Param",
    "TriggerEvent",
    "get_variable",
]

# Airflow 3.3+ (apache/airflow#65590) calls BaseTrigger.on_kill when a user marks a deferred
# task failed or succeeded or clears it; older versions only cancel the trigger.
TRIGGER_HAS_ON_KILL = hasattr(BaseTrigger, "on_kill")


def get_variable(key: str) -> str | None:
    """An Airflow Variable, read at run time (worker or triggerer), or ``None`` if unset."""
    try:
        from airflow.sdk import Variable
    except ImportError:  # Airflow 2
        from airflow.models import Variable  # type: ignore[no-redef,unused-ignore]
    value: Any = Variable.get(key, None)
    return None if value is None else str(value)
