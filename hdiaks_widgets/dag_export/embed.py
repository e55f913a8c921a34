"""The package modules an embedded DAG inlines, and the loader that makes them importable.

``embed=True`` DAG files run on Airflow hosts where nothing can be installed. They carry the
verbatim source of every ``hdiaks_widgets`` module the operator needs, read from the installed
package at export time: the closure of absolute ``hdiaks_widgets.*`` imports of
``hdiaks_widgets.airflow.operator`` (computed with ``ast``; imports under ``if TYPE_CHECKING:``
do not count), plus their parent packages. A small ``importlib`` finder in the DAG serves them
under a private package name that includes a hash of the sources, so two DAGs embedding
different versions do not share modules; it renames the modules' absolute ``hdiaks_widgets``
imports to that name with ``ast`` as each module loads, so the embedded text stays the
package's source.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

from hdiaks_widgets.errors import ExportError

__all__ = ["EMBED_ROOT", "LOADER", "embedded_package_name", "module_sources"]

PACKAGE = "hdiaks_widgets"
EMBED_ROOT = "hdiaks_widgets.airflow.operator"


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            out.update(id(n) for n in ast.walk(node))
    return out


def _is_package(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def _imported(name: str, tree: ast.Module) -> set[str]:
    """The ``hdiaks_widgets`` modules one module imports (absolute imports only)."""
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                raise ExportError(f"{name} uses a relative import; the embedded loader renames absolute ones only")
            if module != PACKAGE and not module.startswith(PACKAGE + "."):
                continue
            found.add(module)
            if _is_package(module):  # ``from hdiaks_widgets import wire`` imports a submodule
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    if importlib.util.find_spec(sub) is not None:
                        found.add(sub)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    raise ExportError(
                        f"{name} has 'import {alias.name}'; the embedded loader supports 'from ... import' only"
                    )
    return found


def module_sources(root: str = EMBED_ROOT) -> dict[str, str]:
    """``{module name: source}`` of ``root``'s import closure, read from the installed package."""
    sources: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in sources:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise ExportError(f"cannot embed {name}: its source file is not installed")
        source = Path(spec.origin).read_text(encoding="utf-8")
        sources[name] = source
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += sorted(_imported(name, ast.parse(source, filename=spec.origin)))
    return dict(sorted(sources.items()))


def embedded_package_name(sources: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, source in sorted(sources.items()):
        digest.update(name.encode() + b"\x00" + source.encode("utf-8", "surrogatepass") + b"\x00")
    return f"hdiaks_embedded_{digest.hexdigest()[:12]}"


# Fixed code of the embedded DAG: no value from the form in it (STYLE.md rule 10).
LOADER = '''

class EmbeddedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves EMBEDDED_SOURCES as the package EMBED_PACKAGE.

    Each module's absolute hdiaks_widgets imports are renamed to EMBED_PACKAGE (with ast) when
    it loads, so the text above stays the package's verbatim source.
    """

    def __init__(self, package, sources):
        self.package, self.sources = package, sources

    def original(self, fullname):
        if fullname == self.package or fullname.startswith(self.package + "."):
            name = "hdiaks_widgets" + fullname[len(self.package):]
            if name in self.sources:
                return name
        return None

    def find_spec(self, fullname, path=None, target=None):
        name = self.original(fullname)
        if name is None:
            return None
        is_package = any(other.startswith(name + ".") for other in self.sources)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = self.original(module.__name__)
        source = self.sources[name]
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "hdiaks_widgets" or node.module.startswith("hdiaks_widgets."):
                    node.module = self.package + node.module[len("hdiaks_widgets"):]
        filename = "<" + name + " embedded in " + __file__ + ">"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(tree, filename, "exec"), module.__dict__)


if not any(getattr(finder, "package", None) == EMBED_PACKAGE for finder in sys.meta_path):
    sys.meta_path.insert(0, EmbeddedModules(EMBED_PACKAGE, EMBEDDED_SOURCES))
_operator = importlib.import_module(EMBED_PACKAGE + ".airflow.operator")
SparkBatchOperator, trigger_params = _operator.SparkBatchOperator, _operator.trigger_params
'''
