"""Repository-level checks: layering, import cost, and the files that must stay in step."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hdiaks_widgets"

LEVELS = {
    "errors": 0, "models": 0, "config": 0, "wire": 0, "dialects": 0, "fileio": 0,
    "livy": 1, "auth": 1, "secrets": 1, "profiles": 1, "progress": 1,
    "connect": 2, "starter": 2, "run": 2, "poller": 2, "monitor": 2, "tables": 2, "dag_export": 2, "airflow": 2,
    "widgets": 3, "cli": 3, "demo": 3,
}
# Each third-party SDK may be imported by one module only (a package counts as one module).
SDK_OWNER = {"msal": "auth", "msal_extensions": "auth", "azure": "secrets", "ipywidgets": "widgets",
             "matplotlib": "widgets"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "hdiaks_widgets":
                names.update(f"hdiaks_widgets.{alias.name}" for alias in node.names)
    return names


def _module_files(module: str) -> list[Path]:
    """The files of a package module: ``<module>.py``, or every file of the ``<module>/`` package."""
    if (PKG / module).is_dir():
        return sorted((PKG / module).rglob("*.py"))
    path = PKG / f"{module}.py"
    return [path] if path.exists() else []


def _owner(path: Path) -> str:
    """The top-level package module a file belongs to: ``widgets`` for ``widgets/form.py``."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


@pytest.mark.parametrize("module", sorted(LEVELS), ids=sorted(LEVELS))
def test_layers_lower_modules_never_import_higher(module: str) -> None:
    files = _module_files(module)
    if not files:
        pytest.fail(f"{module} is missing; DESIGN.md lists it")
    for path in files:
        for name in _imports(path):
            if name.startswith("hdiaks_widgets."):
                target = name.split(".")[1]
                if target in LEVELS:
                    assert LEVELS[target] <= LEVELS[module], (
                        f"{path.relative_to(PKG)} ({module}, level {LEVELS[module]}) imports {target}"
                    )


def test_layers_widgets_package_covers_its_modules() -> None:
    files = {p.name for p in _module_files("widgets")}
    assert {"__init__.py", "app.py", "form.py"} <= files


def test_layers_sdks_are_imported_by_one_module_each() -> None:
    files = sorted(PKG.rglob("*.py"))
    assert any(p.parent.name == "widgets" for p in files) and any(p.parent.name == "sandbox" for p in files)
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            owner = SDK_OWNER.get(top)
            if owner is not None:
                assert _owner(path) == owner, f"{path.relative_to(PKG)} imports {top}; only {owner} may"


def test_sandbox_imports_only_level_zero_package_modules() -> None:
    for path in sorted((PKG / "sandbox").glob("*.py")):
        for name in _imports(path):
            if name.startswith("hdiaks_widgets.") and not name.startswith("hdiaks_widgets.sandbox"):
                target = name.split(".")[1]
                assert LEVELS.get(target, 99) == 0, f"sandbox/{path.name} imports {target}"


def test_import_package_does_not_load_jupyter_or_azure() -> None:
    code = (
        "import sys, hdiaks_widgets\n"
        "heavy = [m for m in ('ipywidgets', 'IPython', 'msal', 'azure', 'pyspark', 'flask') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _pyproject_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    reqs = list(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        if name != "all":
            reqs += extra
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def _environment_packages() -> set[str]:
    names: set[str] = set()
    for line in (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)\s*(?:[<>=].*)?$", line)
        if m and m.group(1) not in ("pip", "python", "openjdk", "conda-forge"):
            names.add(m.group(1).lower())
    return names


def test_environment_yml_names_the_same_packages_as_pyproject() -> None:
    assert _environment_packages() == _pyproject_packages()


def test_environment_yml_uses_the_same_lower_bounds_as_pyproject() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    reqs = list(data["project"]["dependencies"])
    for name, extra in data["project"]["optional-dependencies"].items():
        if name != "all":
            reqs += extra
    env_text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    for req in reqs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)>=([0-9.]+)$", req)
        assert m, f"pyproject requirement {req!r} should be 'name>=version'"
        assert f"{m.group(1)}>={m.group(2)}" in env_text, f"environment.yml lacks {req}"


def test_makefile_has_the_readme_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "lab", "test", "test-fast"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"Makefile lacks '{target}'"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("make demo") < readme.index("make test")


def test_ci_runs_make_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -e" in ci and "make test" in ci


def test_no_absolute_machine_paths_in_tracked_files() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    pattern = re.compile(r"/(?:root|home/[a-z]+|work/main)/")
    offenders = []
    for name in files.stdout.split():
        path = ROOT / name
        if path.suffix in {".png", ".jar"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        if pattern.search(text):
            offenders.append(name)
    assert offenders == []
