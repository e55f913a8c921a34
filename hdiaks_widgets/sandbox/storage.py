"""Map Azure storage URIs to folders under the sandbox root.

``abfs[s]://container@account.dfs.core.windows.net/path`` and
``wasb[s]://container@account.blob.core.windows.net/path`` resolve to
``<root>/storage/<account>/<container>/<path>``, so one job configuration text works against the
sandbox and against Azure. Classic HDInsight's default-storage form (``wasbs:///path``,
``abfs:///path``: no container, no account) resolves to the sandbox's default container
(``examples@sandbox``, where the example apps are), and OneLake's
``abfss://<workspace>@onelake.dfs.fabric.microsoft.com/<path>`` to
``<root>/storage/onelake/<workspace>/<path>``. Local absolute paths, ``file:`` and ``local:``
URIs are used as they are. Anything else (``hdfs://``, ``s3a://``...) is not mapped:
:meth:`Storage.refusal` says so in a sentence.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_CONTAINER", "Storage", "storage_uri"]

# The sandbox's "default storage": where wasbs:///path and abfs:///path land (HDInsight's form).
DEFAULT_ACCOUNT = "sandbox"
DEFAULT_CONTAINER = "examples"

_AZURE = re.compile(
    r"^(?P<scheme>abfss?|wasbs?)://(?P<container>[^@/]+)@(?P<account>[^./]+)"
    r"\.(?:dfs|blob)\.core\.[a-z.]+/(?P<path>.*)$",
    re.IGNORECASE,
)
_ONELAKE = re.compile(
    r"^abfss?://(?P<container>[^@/]+)@(?P<account>onelake)\.dfs\.fabric\.microsoft\.com/(?P<path>.*)$",
    re.IGNORECASE,
)
_DEFAULT = re.compile(r"^(?:abfss?|wasbs?):///(?P<path>.+)$", re.IGNORECASE)
_DOWNLOADED = re.compile(r"^https?://", re.IGNORECASE)
_LOCAL = re.compile(r"^(?:file|local):(?://(?=/))?(?P<path>/.*)$", re.IGNORECASE)


def storage_uri(container: str, account: str, path: str) -> str:
    """The ``abfs://`` URI of a file in the sandbox storage."""
    return f"abfs://{container}@{account}.dfs.core.windows.net/{path.lstrip('/')}"


class Storage:
    """Resolves storage URIs to local paths under ``<root>/storage``."""

    def __init__(self, root: Path) -> None:
        self.base = root / "storage"

    def path_for(self, container: str, account: str, path: str = "") -> Path:
        return self.base / account.lower() / container / path.lstrip("/")

    def _mapped(self, container: str, account: str, path: str) -> Path | None:
        rel = unquote(path)
        if ".." in Path(rel).parts:
            return None
        return self.path_for(container, account, rel)

    def resolve(self, uri: str) -> Path | None:
        """The local path for a storage URI, a ``file:``/``local:`` URI or an absolute path;
        ``None`` for what the sandbox does not map (see :meth:`refusal`)."""
        match = _AZURE.match(uri) or _ONELAKE.match(uri)
        if match:
            return self._mapped(match["container"], match["account"], match["path"])
        match = _DEFAULT.match(uri)
        if match:
            return self._mapped(DEFAULT_CONTAINER, DEFAULT_ACCOUNT, match["path"])
        match = _LOCAL.match(uri)
        if match:
            return Path(unquote(match["path"]))
        if uri.startswith("/"):
            return Path(uri)
        return None

    def refusal(self, uri: str) -> str | None:
        """Why the sandbox cannot read ``uri`` (one sentence), or ``None`` when it maps it (or,
        for ``http(s)://``, spark-submit downloads it)."""
        if self.resolve(uri.partition("#")[0]) is not None or _DOWNLOADED.match(uri):
            return None
        if ".." in uri:
            return f"sandbox: {uri} leaves its container ('..'); give the path inside the container"
        scheme = uri.split(":", 1)[0] if ":" in uri else ""
        what = f"{scheme}: paths" if scheme else "relative paths"
        return (
            f"sandbox: cannot read {uri}: the sandbox does not map {what}; it maps abfs[s]://, wasb[s]:// and "
            f"OneLake paths to {self.base}/<account>/<container>/<path> and reads local paths: put the file "
            f"there (e.g. {storage_uri(DEFAULT_CONTAINER, DEFAULT_ACCOUNT, 'jars/app.jar')}) or give its local path"
        )

    def is_storage_uri(self, value: str) -> bool:
        return bool(_AZURE.match(value) or _ONELAKE.match(value) or _DEFAULT.match(value))

    def map_arg(self, value: str) -> str:
        """Rewrite a program argument that names a storage URI; leave everything else alone."""
        if self.is_storage_uri(value):
            path = self.resolve(value)
            if path is not None:
                return str(path)
        return value
