"""The notebooks, executed headless by nbclient against the shared sandbox (real Spark)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

pytestmark = [pytest.mark.notebook, pytest.mark.spark]


def _execute(name: str, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("HDIAKS_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("HDIAKS_AUTOSUBMIT", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    nbformat.write(nb, tmp_path / name)  # kept for inspection when a test fails
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            data = out.get("data", {})
            parts.append(str(data.get("text/plain", "")))
            parts.append(str(data.get("text/html", "")))
    return "\n".join(parts)


def test_notebook_01_submit_job_reaches_success_and_stores_widget_state(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _execute("01_submit_job.ipynb", sandbox, tmp_path, monkeypatch)
    text = _text(nb)
    assert ": success after" in text
    assert "Pi is roughly" in text
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert state, "no widget state stored"
    values = json.dumps(state)
    assert 'data-state=\\"success\\"' in values  # the status panel, as saved with the notebook
    assert "hdiaks-submit" in values


def test_notebook_02_explore_livy_shows_raw_answers_and_a_statement(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _execute("02_explore_livy.ipynb", sandbox, tmp_path, monkeypatch)
    text = _text(nb)
    assert "'total':" in text  # the raw GET /batches envelope
    assert "appInfo.sparkUiUrl" in text  # batch JSON flattened into a DataFrame
    assert "statement 0: available -> 5050" in text


def test_notebook_03_export_dag_runs(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _execute("03_export_dag.ipynb", sandbox, tmp_path, monkeypatch)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
