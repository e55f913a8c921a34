"""The notebook UI (ipywidgets): a job form, DAG export, a live status panel, batch tables and a log.

Views render state and forward events (STYLE.md rule 8). Work happens below: ``config``
validates, ``livy`` submits and kills, ``monitor`` polls in a background thread, ``tables``
renders. This package is the only place that imports ``ipywidgets``; ``import hdiaks_widgets``
loads it only when ``app`` is first used.

Modules, one job each:

- ``_common``: the client seam (``LivyClientLike``), the default sandbox job, shared layouts and notes;
- ``form``: :class:`JobForm`, every batch field with its problems shown as the user types;
- ``export``: :class:`DagExportPanel`, the form's job as Airflow DAG files;
- ``status``: the status line, the cluster history pager and the driver log panel;
- ``signin``: device code sign-in for ``device-code`` profiles;
- ``app``: :class:`JobApp`, which wires them to ``livy`` and ``monitor``, and :func:`app`.
"""

from __future__ import annotations

from hdiaks_widgets.widgets._common import (
    DEFAULT_SANDBOX_URL,
    ClientFactory,
    LivyClientLike,
    default_config,
    sandbox_profile,
)
from hdiaks_widgets.widgets.app import JobApp, app
from hdiaks_widgets.widgets.export import DagExportPanel, derive_dag_id
from hdiaks_widgets.widgets.form import JobForm

__all__ = [
    "DEFAULT_SANDBOX_URL",
    "ClientFactory",
    "DagExportPanel",
    "JobApp",
    "JobForm",
    "LivyClientLike",
    "app",
    "default_config",
    "derive_dag_id",
    "sandbox_profile",
]
