"""Validation helpers of the job configuration: each ``_check_*`` appends ``ConfigProblem``s.

Every check names the field and the fix; none raises for a bad value, so ``problems()`` can
report all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import SplitResult, urlsplit

from hdiaks_widgets.errors import ConfigError, ConfigProblem

__all__ = ["validate_file_uri"]

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_JAVA_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Spark's JavaUtils.byteStringAs suffixes; a bare number is rejected because its unit differs
# between settings (bytes for some, MiB for others).
_MEMORY = re.compile(r"[1-9][0-9]*[kmgtp]b?", re.IGNORECASE)
_ABFS = re.compile(
    r"^abfss?://(?P<container>[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})"
    r"@(?P<account>[a-z0-9]{3,24})\.dfs\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)"
    r"/(?P<path>[^\s]+)$"
)
_WASB = re.compile(
    r"^wasbs?://(?P<container>[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})"
    r"@(?P<account>[a-z0-9]{3,24})\.blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)"
    r"/(?P<path>[^\s]+)$"
)
_KV_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Reserved words of the Java language (JLS §3.9) plus the literals true, false, null.
_JAVA_KEYWORDS = frozenset(
    {
        "abstract", "assert", "boolean", "break", "byte", "case", "catch", "char", "class",
        "const", "continue", "default", "do", "double", "else", "enum", "extends", "final",
        "finally", "float", "for", "goto", "if", "implements", "import", "instanceof", "int",
        "interface", "long", "native", "new", "package", "private", "protected", "public",
        "return", "short", "static", "strictfp", "super", "switch", "synchronized", "this",
        "throw", "throws", "transient", "try", "void", "volatile", "while", "true", "false", "null",
    }
)


def _shown(text: str) -> str:
    """A user's key as part of a field name: control characters escaped (``\\n``), so an error
    message stays one line and shows what is really there."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _problem(problems: list[ConfigProblem], name: str, message: str) -> None:
    problems.append(ConfigProblem(name, message))


def _split_url(value: str) -> SplitResult | None:
    """``urlsplit`` that never raises (it does for e.g. ``http://[::1``); ``None`` if unparsable."""
    try:
        parts = urlsplit(value)
        _ = parts.hostname, parts.port  # both parse lazily and may raise ValueError
    except ValueError:
        return None
    return parts


_URL_EXAMPLE = "e.g. http://127.0.0.1:8998"
_PORT = re.compile(r"(?:^|[^:]):(?P<port>[^:\]]*)$")  # the text after the host's last ':' ("[::1]:0" -> "0")
_PORT_MAX = 65535
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@")  # "user:password@" in the authority
# What str.splitlines breaks at, every other C0/C1 control, and the invisible ones.
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")


def _url_problem(value: Any, *, what: str = "the Livy server's URL") -> str | None:
    """Why ``value`` is not a usable server URL, in one sentence that never repeats the URL (it
    may hold a password); ``None`` when it is fine. A path is fine (Livy behind a proxy at
    ``/livy``); a query or fragment is not (the client appends Livy's routes to the URL)."""
    general = f"must be {what}, {_URL_EXAMPLE}"
    if not isinstance(value, str) or not value:
        return general
    if _URL_CONTROL.search(value):
        return f"must be one line without control characters (a pasted line break?); {_URL_EXAMPLE}"
    if any(ch.isspace() for ch in value):
        return f"must not contain spaces; {_URL_EXAMPLE}"
    if _USERINFO.match(value):  # before parsing: "http://u:pw@[::1" does not parse
        return ("credentials do not belong in the URL: set profile.username and keep the password in the "
                f"secret store; {_URL_EXAMPLE}")
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return general
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return general
    if "?" in value or "#" in value:
        return f"must not have a query (?...) or a fragment (#...): Livy's routes are added to its path; {_URL_EXAMPLE}"
    port = _PORT.search(parts.netloc)
    if port is not None and port["port"]:
        text = port["port"]
        if not text.isascii() or not text.isdigit():
            return f"has a port that is not a number; a port is a number 1-{_PORT_MAX}, {_URL_EXAMPLE}"
        if len(text) > len(str(_PORT_MAX)) + 4 or not 1 <= int(text) <= _PORT_MAX:  # int() of 5000 digits raises
            shown = int(text) if len(text) <= len(str(_PORT_MAX)) + 4 else f"of {len(text)} digits"
            return f"has the port {shown}; a port is a number 1-{_PORT_MAX}, {_URL_EXAMPLE}"
    split = _split_url(value)
    if split is None or not split.hostname:
        return general
    return None


def _check_url(value: Any, name: str, problems: list[ConfigProblem]) -> None:
    """A server URL (``profile.url``): see :func:`_url_problem`."""
    problem = _url_problem(value)
    if problem is not None:
        _problem(problems, name, problem)


def _is_https_url(value: Any) -> bool:
    parts = _split_url(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme == "https" and bool(parts.hostname)


_HOST_HINTS = {
    "hdinsight-aks": "paste only the host name, e.g. mycluster.mypool.<id>.eastus.hdinsightaks.net",
    "hdinsight": "give the cluster name or its host only, e.g. mycluster or mycluster.azurehdinsight.net",
}


def _check_host(value: str, name: str, problems: list[ConfigProblem], flavour: str = "hdinsight-aks") -> None:
    """A bare DNS host name: people paste URLs, ports and trailing slashes from the portal."""
    hint = _HOST_HINTS.get(flavour, _HOST_HINTS["hdinsight-aks"])
    if not isinstance(value, str):
        _problem(problems, name, f"must be text, got {value!r}; {hint}")
    elif not value.strip():
        _problem(problems, name, f"is required; {hint}")
    elif "://" in value:
        _problem(problems, name, f"must not include a scheme like 'https://'; {hint}")
    elif any(ch.isspace() for ch in value):
        _problem(problems, name, f"must not contain spaces; {hint}")
    elif "/" in value or "?" in value or "#" in value:
        _problem(problems, name, f"must not include a path; {hint}")
    elif ":" in value:
        _problem(problems, name, f"must not include a port; {hint}")
    elif len(value) > 253 or not all(_HOST_LABEL.fullmatch(lbl) for lbl in value.rstrip(".").split(".")):
        _problem(
            problems,
            name,
            f"is not a valid host name (letters, digits, '-' and dots only); {hint}",
        )


# -- application and dependency paths -----------------------------------------------------
#
# Livy hands ``file``, ``jars``, ``pyFiles``, ``files`` and ``archives`` to spark-submit after
# ``Session.resolveURI``: a path without a scheme is read from the cluster's default file system
# (``fs.defaultFS``: HDFS on plain Hadoop, the default container on classic HDInsight, hence
# Microsoft's ``/example/jars/...`` and ``wasbs:///example/jars/...``), a relative one is refused
# ("must be absolute"), ``file:`` must be under ``livy.file.local-dir-whitelist`` and ``local:``
# names a file present on every node. Which file systems a cluster has depends on the flavour.

_ONELAKE = re.compile(
    r"^abfss?://(?P<workspace>[^@/\s]+)@onelake\.dfs\.fabric\.microsoft\.com/(?P<path>[^\s]+)$", re.IGNORECASE
)
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):")
_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

_ABFS_FORM = "abfs[s]://<container>@<account>.dfs.core.windows.net/<path>"
_AKS_EXAMPLE = "an abfs[s]:// path like abfs://container@account.dfs.core.windows.net/path/app.jar"

# What each kind of path is, in a sentence ("spec.file is an HDFS path, which ...").
_KIND_TEXT: Mapping[str, str] = {
    "abfs": "an ADLS Gen2 (abfs) path",
    "onelake": "a OneLake path",
    "wasb": "a Blob storage (wasb) path",
    "azure-default": "a path on the cluster's default storage (wasb[s]:/// or abfs[s]:/// without a container)",
    "default": "a path without a scheme",
    "hdfs": "an HDFS path",
    "s3": "an S3 path",
    "gs": "a Google Cloud Storage path",
    "https": "an https:// URL",
    "http": "a plain http:// URL",
    "file": "a local path (file:)",
    "local": "a local: path (a file present on every node)",
}


@dataclass(frozen=True)
class _Reader:
    """What one flavour's cluster reads (``kinds``), said in words (``reads``), and the fix."""

    who: str
    kinds: frozenset[str]
    reads: str
    fix: str
    example: str


_SANDBOX_EXAMPLE = "abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar"
_ONELAKE_FORM = "abfss://<workspace>@onelake.dfs.fabric.microsoft.com/<lakehouse>.Lakehouse/Files/<path>"

_PATH_READERS: Mapping[str, _Reader] = {
    "hdinsight-aks": _Reader(
        "HDInsight on AKS",
        frozenset({"abfs", "https"}),
        "it reads ADLS Gen2 (abfs[s]://) only; a local path of this machine is not on the cluster",
        f"upload the file and give its full {_ABFS_FORM}",
        _AKS_EXAMPLE,
    ),
    "hdinsight": _Reader(
        "classic HDInsight",
        frozenset({"abfs", "wasb", "azure-default", "default", "hdfs", "https"}),
        "it reads its default storage, wasb[s]:// and abfs[s]:// paths",
        "upload the file and give e.g. wasbs:///example/jars/app.jar (the default storage), "
        f"wasbs://<container>@<account>.blob.core.windows.net/<path> or {_ABFS_FORM}",
        "wasbs:///example/jars/spark-examples.jar",
    ),
    "livy": _Reader(
        "this Livy server",
        frozenset(_KIND_TEXT),
        "it reads what its Hadoop reads",
        "give an absolute path or a URL, e.g. hdfs:///apps/app.jar, s3a://bucket/app.jar or local:///opt/app.jar",
        "hdfs:///apps/app.jar",
    ),
    "sandbox": _Reader(
        "the sandbox",
        frozenset({"abfs", "wasb", "azure-default", "onelake", "default", "https", "http", "file", "local"}),
        "it maps abfs[s]://, wasb[s]:// and OneLake paths to <root>/storage/<account>/<container>/<path> "
        "and reads local paths",
        f"put the file under the sandbox storage, e.g. {_SANDBOX_EXAMPLE}, or give its local path",
        _SANDBOX_EXAMPLE,
    ),
    "fabric": _Reader(
        "Microsoft Fabric",
        frozenset({"onelake", "abfs", "https"}),
        "it reads OneLake and ADLS Gen2",
        f"upload the file to the lakehouse and give its {_ONELAKE_FORM}",
        "abfss://myworkspace@onelake.dfs.fabric.microsoft.com/mylakehouse.Lakehouse/Files/app.py",
    ),
    "synapse": _Reader(
        "Azure Synapse",
        frozenset({"abfs", "wasb", "https"}),
        "it reads the workspace's storage accounts",
        f"upload the file and give its full {_ABFS_FORM}",
        _AKS_EXAMPLE,
    ),
    # Only "does the server read local paths" is known (no flavour given):
    "_cluster": _Reader(
        "the cluster",
        frozenset({"abfs", "wasb", "azure-default", "https"}),
        "it cannot read a local path of this machine",
        f"upload the file and give e.g. {_AKS_EXAMPLE} (classic HDInsight: wasbs:///example/jars/app.jar "
        "for its default storage)",
        _AKS_EXAMPLE,
    ),
    "_local": _Reader("the server", frozenset(_KIND_TEXT), "", "give an absolute path or a URL", _AKS_EXAMPLE),
}


def _path_kind(value: str) -> tuple[str | None, str | None]:
    """``(kind, None)`` for a well-formed path, ``(None, sentence)`` for a malformed one; a
    sentence's ``<EXAMPLE>`` becomes the flavour's example."""
    if _WINDOWS.match(value):
        return None, "is a Windows path of this machine, which the cluster cannot read; upload the file, e.g. <EXAMPLE>"
    if any(ch.isspace() for ch in value):
        # Livy parses every path with java.net.URI, which refuses a space ("Illegal character").
        return None, "contains a space, which Livy cannot parse; rename the file or write the space as %20"
    match = _SCHEME.match(value)
    if match is None:
        if value.startswith("/"):
            return "default", None
        return None, (
            "is a relative path; Livy needs an absolute path or a URL (it refuses relative paths: "
            "'must be absolute'), e.g. <EXAMPLE>"
        )
    scheme = match["scheme"].lower()
    parts = _split_url(value)
    if scheme in ("https", "http"):
        if parts is None or not parts.hostname or parts.path in ("", "/"):
            return None, (
                f"must be a full {scheme}:// URL of the file (host and path, no spaces), "
                "e.g. https://account.blob.core.windows.net/container/app.jar"
            )
        return scheme, None
    if parts is None:
        return None, "is not a valid URL (check the brackets and the port), e.g. <EXAMPLE>"
    path, empty = parts.path, parts.path in ("", "/")
    if scheme in ("abfs", "abfss", "wasb", "wasbs") and not parts.netloc:
        return ("azure-default", None) if not empty else (None, _MISSING_FILE)
    if scheme in ("abfs", "abfss"):
        if _ONELAKE.fullmatch(value):
            return "onelake", None
        if not _ABFS.fullmatch(value):
            return None, (
                f"is not a valid ABFS path; use {_ABFS_FORM} (container 3-63 lowercase letters, digits, '-'; "
                "account 3-24 lowercase letters and digits; a file path after the host)"
            )
        return "abfs", None
    if scheme in ("wasb", "wasbs"):
        if not _WASB.fullmatch(value):
            return None, (
                "is not a valid WASB path; use wasb[s]://<container>@<account>.blob.core.windows.net/<path>, "
                "or wasbs:///<path> for the cluster's default storage"
            )
        return "wasb", None
    if scheme == "hdfs":
        if empty:
            return None, "names no file; use hdfs:///<path> (the default name node) or hdfs://<namenode>:8020/<path>"
        return "hdfs", None
    if scheme in ("s3a", "s3"):
        if not _BUCKET.fullmatch(parts.netloc) or empty:
            return None, f"is not a valid S3 path; use {scheme}://<bucket>/<key>, e.g. s3a://my-bucket/jars/app.jar"
        return "s3", None
    if scheme == "s3n":
        return None, "uses s3n://, which Hadoop 3 removed; use s3a://<bucket>/<key>"
    if scheme == "gs":
        if not parts.netloc or empty:
            return None, "is not a valid Cloud Storage path; use gs://<bucket>/<object>"
        return "gs", None
    if scheme in ("file", "local"):
        if parts.netloc:
            return None, (
                f"names a host ({parts.netloc!r}), which a {scheme}: path has not: write {scheme}:///<absolute "
                f"path>, e.g. {scheme}:///opt/apps/app.jar"
            )
        if not path.startswith("/") or empty:
            return None, f"must be an absolute path, e.g. {scheme}:///opt/apps/app.jar"
        return scheme, None
    if scheme == "adl":
        return None, (
            "is an ADLS Gen1 path (adl://); Gen1 was retired in February 2024: move the file to ADLS Gen2 "
            f"and use {_ABFS_FORM}"
        )
    return None, (
        f"uses {scheme}:, which no supported cluster reads; use abfs[s]://, wasb[s]://, hdfs://, s3a://, "
        "local:/// or https://, e.g. <EXAMPLE>"
    )


_MISSING_FILE = "names no file; add the file's path, e.g. wasbs:///example/jars/spark-examples.jar"


def validate_file_uri(
    value: str, name: str, *, allow_local: bool = True, flavour: str | None = None
) -> list[ConfigProblem]:
    """Problems with an application or dependency path (empty list when it is fine).

    ``flavour`` (a profile flavour) decides which file systems count as readable; without it,
    ``allow_local`` says whether the server reads local paths (plain Livy, the sandbox) or not
    (an Azure cluster).
    """
    problems: list[ConfigProblem] = []
    reader = _PATH_READERS.get(flavour or "", _PATH_READERS["_local" if allow_local else "_cluster"])
    example = reader.example
    if not isinstance(value, str):
        _problem(problems, name, f"must be a path as text, got {value!r}, e.g. {example}")
        return problems
    if not value.strip():
        _problem(problems, name, f"is required, e.g. {example}")
        return problems
    if value != value.strip() or _CONTROL.search(value):
        _problem(problems, name, "must not have leading/trailing spaces or line breaks")
        return problems
    kind, malformed = _path_kind(value)
    if kind is None:
        _problem(problems, name, (malformed or "is not a path").replace("<EXAMPLE>", example))
    elif kind not in reader.kinds:
        verb = "does not take" if kind == "default" else "cannot read"
        _problem(problems, name, f"is {_KIND_TEXT[kind]}, which {reader.who} {verb} ({reader.reads}); {reader.fix}")
    return problems


def _check_class_name(value: Any, name: str, problems: list[ConfigProblem]) -> None:
    parts = value.split(".") if isinstance(value, str) else [""]
    if not all(_JAVA_IDENT.fullmatch(p) and p not in _JAVA_KEYWORDS for p in parts):
        _problem(
            problems,
            name,
            "is not a Java class name; use the fully qualified name, e.g. org.apache.spark.examples.SparkPi",
        )


def _check_memory(value: Any, name: str, problems: list[ConfigProblem]) -> None:
    if not isinstance(value, str) or not _MEMORY.fullmatch(value):
        _problem(
            problems,
            name,
            f"{value!r} is not a size Spark accepts; use a number with a unit, e.g. 512m, 4g",
        )


def _check_positive_int(value: Any, name: str, problems: list[ConfigProblem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _problem(problems, name, f"must be a whole number, got {value!r}")
    elif value <= 0:
        _problem(problems, name, f"must be 1 or more, got {value}")


def _check_name(value: Any, name: str, problems: list[ConfigProblem]) -> None:
    """Livy accepts any string, but a name is also a path segment for lookups (LIVY-41)."""
    if not isinstance(value, str):
        _problem(problems, name, f"must be text, got {value!r}; e.g. 'spark-pi'")
    elif not value.strip():
        _problem(problems, name, "must not be empty; leave it out or give a name like 'spark-pi'")
    elif value != value.strip() or _CONTROL.search(value):
        _problem(problems, name, "must not have leading/trailing spaces or line breaks")
    elif value.isdigit():
        _problem(
            problems,
            name,
            "must not be only digits (Livy would read it as a batch id); add a letter, e.g. 'job-42'",
        )
    elif len(value) > 200:
        _problem(problems, name, f"is {len(value)} characters long; keep it to 200 or fewer")
    elif any(ch in value for ch in "/?#%\\"):
        _problem(problems, name, "must not contain / ? # % or \\ (it is used in Livy URLs)")


def _check_token(value: Any, name: str, problems: list[ConfigProblem], what: str) -> None:
    if not isinstance(value, str) or not value.strip() or any(ch.isspace() for ch in value):
        _problem(problems, name, f"must be a {what} without spaces")


def _known_keys(cls: type, data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a JSON object, got {type(data).__name__}", field=prefix)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise ConfigError(
            [ConfigProblem(f"{prefix}.{_shown(str(k))}", f"is not a known setting; known: {known}") for k in unknown]
        )
    return dict(data)

