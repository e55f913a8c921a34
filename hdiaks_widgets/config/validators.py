"""Validation helpers of the job configuration: each ``_check_*`` appends ``ConfigProblem``s.

Every check names the field and the fix; none raises for a bad value, so ``problems()`` can
report all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
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


def _is_https_url(value: Any) -> bool:
    parts = _split_url(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme == "https" and bool(parts.hostname)


def _check_host(value: str, name: str, problems: list[ConfigProblem]) -> None:
    """A bare DNS host name: people paste URLs, ports and trailing slashes from the portal."""
    hint = "paste only the host name, e.g. mycluster.mypool.<id>.eastus.hdinsightaks.net"
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


def validate_file_uri(value: str, name: str, *, allow_local: bool) -> list[ConfigProblem]:
    """Problems with an application or dependency path (empty list when it is fine)."""
    problems: list[ConfigProblem] = []
    example = "abfs://container@account.dfs.core.windows.net/path/app.jar"
    if not isinstance(value, str):
        _problem(problems, name, f"must be a path as text, got {value!r}, e.g. {example}")
        return problems
    if not value.strip():
        _problem(problems, name, f"is required, e.g. {example}")
        return problems
    if value != value.strip() or _CONTROL.search(value):
        _problem(problems, name, "must not have leading/trailing spaces or line breaks")
        return problems
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in ("abfs", "abfss"):
        if not _ABFS.fullmatch(value):
            _problem(
                problems,
                name,
                "is not a valid ABFS path; use abfs[s]://<container>@<account>.dfs.core.windows.net/"
                "<path> (container 3-63 lowercase letters, digits, '-'; account 3-24 lowercase "
                "letters and digits; a file path after the host)",
            )
    elif scheme in ("wasb", "wasbs"):
        if not _WASB.fullmatch(value):
            _problem(
                problems,
                name,
                "is not a valid WASB path; use wasb[s]://<container>@<account>.blob.core.windows.net/<path>",
            )
    elif scheme == "https":
        parts = _split_url(value)
        if parts is None or not parts.hostname or parts.path in ("", "/") or " " in value:
            _problem(
                problems,
                name,
                "must be a full https:// URL of the file (host and path, no spaces), "
                "e.g. https://account.blob.core.windows.net/container/app.jar",
            )
    elif scheme == "file" or value.startswith("local:/") or (not scheme and value.startswith("/")):
        if not allow_local:
            _problem(
                problems,
                name,
                f"is a local path, which the cluster cannot read; upload the file and use e.g. {example}",
            )
    else:
        _problem(
            problems,
            name,
            "must be an abfs[s]://, wasb[s]:// or https:// path (or a local path on the sandbox), "
            f"e.g. {example}",
        )
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
        raise ConfigError(
            [
                ConfigProblem(f"{prefix}.{k}", f"is not a known setting; known: {', '.join(sorted(names))}")
                for k in unknown
            ]
        )
    return dict(data)

