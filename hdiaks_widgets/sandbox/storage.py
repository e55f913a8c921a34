"""Map Azure storage URIs to folders under the sandbox root.

``abfs[s]://container@account.dfs.core.windows.net/path`` and
``wasb[s]://container@account.blob.core.windows.net/path`` resolve to
``<root>/storage/<account>/<container>/<path>``, so one job configuration text works against the
sandbox and against Azure. Local absolute paths and ``file://`` URIs are used as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["Storage", "storage_uri"]

_AZURE = re.compile(
    r"^(?P<scheme>abfss?|wasbs?)://(?P<container>[^@/]+)@(?P<account>[^./]+)"
    r"\.(?:dfs|blob)\.core\.[a-z.]+/(?P<path>.*)$",
    re.IGNORECASE,
)


def storage_uri(container: str, account: str, path: str) -> str:
    """The ``abfs://`` URI of a file in the sandbox storage."""
    return f"abfs://{container}@{account}.dfs.core.windows.net/{path.lstrip('/')}"


class Storage:
    """Resolves storage URIs to local paths under ``<root>/storage``."""

    def __init__(self, root: Path) -> None:
        self.base = root / "storage"

    def path_for(self, container: str, account: str, path: str = "") -> Path:
        return self.base / account.lower() / container / path.lstrip("/")

    def resolve(self, uri: str) -> Path | None:
        """The local path for a storage URI, a ``file://`` URI or an absolute path; else ``None``."""
        match = _AZURE.match(uri)
        if match:
            rel = unquote(match["path"])
            if ".." in Path(rel).parts:
                return None
            return self.path_for(match["container"], match["account"], rel)
        if uri.startswith("file:"):
            return Path(unquote(urlsplit(uri).path))
        if uri.startswith("/"):
            return Path(uri)
        return None

    def is_storage_uri(self, value: str) -> bool:
        return bool(_AZURE.match(value))

    def map_arg(self, value: str) -> str:
        """Rewrite a program argument that names a storage URI; leave everything else alone."""
        if self.is_storage_uri(value):
            path = self.resolve(value)
            if path is not None:
                return str(path)
        return value
