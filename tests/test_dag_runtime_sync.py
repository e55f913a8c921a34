"""The exported DAG must not import hdiaks_widgets, so its runtime carries small copies of
library tables. These tests fail when a copy drifts from the library's own table."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from hdiaks_widgets import config, dag_export
from hdiaks_widgets.models import TERMINAL_STATES


def _runtime_constant(name: str) -> Any:
    tree = ast.parse(dag_export._COMMON_RUNTIME)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "frozenset":
                return frozenset(ast.literal_eval(value.args[0]))
            return ast.literal_eval(value)
    raise AssertionError(f"{name} is not defined in the DAG runtime")


@pytest.mark.parametrize(
    ("runtime_name", "library_value"),
    [
        ("LIVY_FIELDS", dict(config.BatchSpec._LIVY_NAMES)),
        ("DEFAULT_LIVY_PATH", config._DEFAULT_LIVY_PATH),
        ("DEFAULT_AUTH", config._DEFAULT_AUTH),
        ("DEFAULT_AUTHORITY_HOST", config.DEFAULT_AUTHORITY_HOST),
        ("TERMINAL_STATES", frozenset(s.value for s in TERMINAL_STATES)),
    ],
    ids=["livy-fields", "livy-paths", "auth-defaults", "authority-host", "terminal-states"],
)
def test_dag_runtime_tables_match_the_library(runtime_name: str, library_value: Any) -> None:
    assert _runtime_constant(runtime_name) == library_value
