"""notebooks/04_targets.ipynb executed headless by nbclient in a real kernel against the shared
sandbox (real Spark): one form, the same SparkPi job on each Livy dialect the sandbox serves, one
batch table. The table is read back from the kernel itself, not parsed from the rendered output."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import SandboxHandle
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_targets.ipynb"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DIALECTS = ["sandbox", "hdinsight", "fabric", "synapse"]
# Run in the notebook's kernel after its own cells: the table it built, as JSON on stdout.
READ_BACK = 'print("TABLE=" + table[["target", "id", "state"]].to_json(orient="records"))'

pytestmark = [pytest.mark.notebook, pytest.mark.spark]


@pytest.fixture(scope="module")
def executed(sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]]]:
    """The notebook run once (four Spark jobs, one at a time) and the table its kernel holds."""
    tmp_path = tmp_path_factory.mktemp("nb04")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HDIAKS_SANDBOX_URL", sandbox.url)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        own = len(nb.cells)
        nb.cells.append(nbformat.v4.new_code_cell(READ_BACK))
        client = NotebookClient(nb, timeout=900, kernel_name="python3", store_widget_state=True,
                                resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
        client.execute()
    nbformat.write(nb, tmp_path / NOTEBOOK.name)  # kept for inspection when a test fails
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    match = re.search(r"^TABLE=(.*)$", text, re.MULTILINE)
    assert match, text
    rows = json.loads(match.group(1))
    nb.cells = nb.cells[:own]
    return nb, rows


def test_notebook_targets_one_succeeded_batch_per_dialect(executed: tuple[Any, list[dict[str, Any]]]) -> None:
    _nb, rows = executed
    assert sorted(row["target"] for row in rows) == sorted(DIALECTS), rows
    assert all(row["state"] == "success" for row in rows), rows


def test_notebook_targets_fabric_id_is_a_uuid_and_the_others_are_numbers(
    executed: tuple[Any, list[dict[str, Any]]],
) -> None:
    _nb, rows = executed
    ids = {row["target"]: row["id"] for row in rows}
    assert UUID_RE.match(ids["fabric"]), ids
    assert all(ids[t].isdigit() for t in ("sandbox", "hdinsight", "synapse")), ids


def test_notebook_targets_reads_each_driver_log_and_stores_widget_state(
    executed: tuple[Any, list[dict[str, Any]]],
) -> None:
    nb, _rows = executed
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for dialect in DIALECTS:
        assert re.search(rf"^{dialect}\s+Pi is roughly 3\.1", printed, re.MULTILINE), printed
    state = json.dumps(nb.metadata["widgets"][WIDGET_STATE]["state"])
    assert "hdiaks-flavour" in state and "<th>target</th>" in state  # the form's Service list, the table
