"""Job configuration: where to submit (``ClusterProfile``), what to submit (``BatchSpec``).

Construction never raises for bad values, so a half-filled form can hold them; ``validate()``
reports every problem at once, each naming the field and the fix (``ConfigError.problems``).
The Livy request body follows ``CreateBatchRequest`` (PROTOCOL.md §2.2): camelCase names,
absent fields omitted (``None`` means "not given"), ``args`` as strings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import SplitResult, urlsplit

from hdiaks_widgets import wire
from hdiaks_widgets.errors import ConfigError, ConfigProblem

__all__ = [
    "AuthMethod",
    "BatchSpec",
    "ClusterProfile",
    "DEFAULT_SCOPE",
    "Flavour",
    "JobConfig",
    "TRIGGER_KEYS",
    "validate_file_uri",
]

Flavour = Literal["hdinsight-aks", "hdinsight", "livy", "sandbox"]
AuthMethod = Literal["none", "basic", "service-principal", "device-code"]
SecretSource = Literal["keyvault", "env", "none"]

DEFAULT_SCOPE = "https://hilo.azurehdinsight.net/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_VARIABLES_PREFIX = "hdinsight-aks-variables"
TRIGGER_KEYS = wire.TRIGGER_KEYS

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


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """A list from JSON or a form as a tuple; a lone value becomes a 1-tuple (never raises)."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how to reach Livy. Holds no secret values, only where to find them."""

    name: str = "sandbox"
    flavour: Flavour = "sandbox"
    fqdn: str | None = None  # hdinsight-aks: cluster FQDN; hdinsight: cluster name or FQDN
    url: str | None = None  # livy / sandbox: base URL of the Livy server
    livy_path: str | None = None  # None -> the flavour's default (/p/livy, /livy, "")
    auth: AuthMethod | None = None  # None -> the flavour's default
    scope: str = DEFAULT_SCOPE
    authority_host: str = DEFAULT_AUTHORITY_HOST
    tenant_id: str | None = None
    client_id: str | None = None  # device code: the public client app id
    username: str | None = None  # basic auth user; the password comes from the secret store
    secret_source: SecretSource = "env"  # noqa: S105 - where secrets live, not a secret
    vault_url: str | None = None
    variables_prefix: str = DEFAULT_VARIABLES_PREFIX
    verify: bool | str = True  # True, False, or a CA bundle path
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def auth_method(self) -> AuthMethod:
        """The configured method, or the flavour's default when ``auth`` is not given."""
        if self.auth is not None:
            return self.auth
        self._check_flavour()
        method: AuthMethod = wire.DEFAULT_AUTH[self.flavour]  # type: ignore[assignment]
        return method

    @property
    def base_url(self) -> str:
        """The Livy endpoint root, e.g. ``https://{fqdn}/p/livy`` (no trailing slash)."""
        self._check_flavour()
        return wire.livy_base_url(self.flavour, fqdn=self.fqdn, url=self.url, livy_path=self.livy_path)

    def _check_flavour(self) -> None:
        if self.flavour not in wire.DEFAULT_LIVY_PATH:
            raise ConfigError(
                f"must be one of {', '.join(get_args(Flavour))}, got {self.flavour!r}",
                field="profile.flavour",
            )

    def problems(self) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        p = "profile."
        if self.flavour not in get_args(Flavour):
            _problem(problems, p + "flavour", f"must be one of {', '.join(get_args(Flavour))}")
            return problems
        if self.auth is not None and self.auth not in get_args(AuthMethod):
            _problem(problems, p + "auth", f"must be one of {', '.join(get_args(AuthMethod))}")
        if not isinstance(self.name, str) or not self.name.strip() or _CONTROL.search(self.name):
            _problem(problems, p + "name", "must be a short profile name, e.g. 'prod-eastus'")
        if self.flavour in ("hdinsight-aks", "hdinsight"):
            _check_host(self.fqdn if self.fqdn is not None else "", p + "fqdn", problems)
        else:
            url = self.url if isinstance(self.url, str) else ""
            parts = _split_url(url)
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
                _problem(
                    problems,
                    p + "url",
                    "must be the Livy server's URL, e.g. http://127.0.0.1:8998",
                )
        if self.livy_path is not None and (
            not isinstance(self.livy_path, str)
            or any(ch.isspace() or ch in "?#" for ch in self.livy_path)
            or "://" in self.livy_path
        ):
            _problem(problems, p + "livy_path", "must be a URL path like /p/livy or /livy")
        if self.auth is None or self.auth in get_args(AuthMethod):
            problems += self._auth_problems(self.auth_method)
        if self.secret_source not in get_args(SecretSource):
            _problem(problems, p + "secret_source", "must be one of keyvault, env, none")
        if self.secret_source == "keyvault" and not _is_https_url(self.vault_url):  # noqa: S105
            _problem(
                problems,
                p + "vault_url",
                "must be the vault's https URL, e.g. https://myvault.vault.azure.net",
            )
        if not isinstance(self.variables_prefix, str) or not _KV_NAME.fullmatch(self.variables_prefix):
            _problem(
                problems,
                p + "variables_prefix",
                "may hold only letters, digits and '-', e.g. hdinsight-aks-variables",
            )
        if not isinstance(self.verify, (bool, str)) or (isinstance(self.verify, str) and not self.verify.strip()):
            _problem(problems, p + "verify", "must be true, false or the path of a CA bundle file")
        for tname in ("connect_timeout", "read_timeout"):
            value = getattr(self, tname)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                _problem(problems, p + tname, f"must be a number of seconds above 0, got {value!r}")
        return problems

    def _auth_problems(self, method: AuthMethod) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        p = "profile."
        if method in ("service-principal", "device-code"):
            if not _is_https_url(self.scope):
                _problem(problems, p + "scope", f"must be an https resource scope, e.g. {DEFAULT_SCOPE}")
            elif method == "service-principal" and not self.scope.endswith("/.default"):
                # The client-credentials grant accepts only '<resource>/.default' scopes.
                _problem(
                    problems,
                    p + "scope",
                    f"must end in /.default for service-principal sign-in, e.g. {DEFAULT_SCOPE}",
                )
            if not _is_https_url(self.authority_host):
                _problem(
                    problems,
                    p + "authority_host",
                    "must be an https URL, e.g. https://login.microsoftonline.com",
                )
        if method == "device-code":
            if not self.client_id:
                _problem(
                    problems, p + "client_id", "is required for device-code sign-in (the app registration id)"
                )
            if not self.tenant_id:
                _problem(problems, p + "tenant_id", "is required for device-code sign-in (your directory id)")
        if method == "basic" and not self.username:
            _problem(problems, p + "username", "is required for basic auth, e.g. 'admin'")
        return problems

    def validate(self) -> ClusterProfile:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterProfile:
        return cls(**_known_keys(cls, data, "profile"))


@dataclass(frozen=True)
class BatchSpec:
    """Every field of Livy's ``POST /batches`` body (``CreateBatchRequest``)."""

    file: str = ""
    class_name: str | None = None
    args: tuple[str, ...] = ()
    name: str | None = None
    proxy_user: str | None = None
    jars: tuple[str, ...] = ()
    py_files: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    archives: tuple[str, ...] = ()
    driver_memory: str | None = None
    driver_cores: int | None = None
    executor_memory: str | None = None
    executor_cores: int | None = None
    num_executors: int | None = None
    queue: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists from JSON or a form become tuples so the spec stays hashable and immutable.
        # args are stringified as Livy requires (the Azure sample sends args=[10]); None stays
        # None so that validation can point at it instead of sending the text "None".
        args = _as_tuple(self.args)
        object.__setattr__(self, "args", tuple(a if a is None else _arg_text(a) for a in args))
        for name in ("jars", "py_files", "files", "archives"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        # A non-mapping conf is kept as given so validation can name it (construction never raises).
        if self.conf is None:
            object.__setattr__(self, "conf", {})
        elif isinstance(self.conf, Mapping):
            object.__setattr__(self, "conf", dict(self.conf))

    def __hash__(self) -> int:
        # The generated hash would fail on the conf dict; hash its items instead.
        conf = self.conf.items() if isinstance(self.conf, Mapping) else ()
        values = tuple(getattr(self, f.name) for f in fields(self) if f.name != "conf")
        return hash((values, frozenset((str(k), str(v)) for k, v in conf)))

    _LIVY_NAMES: ClassVar[Mapping[str, str]] = wire.LIVY_FIELDS

    def to_livy_body(self) -> dict[str, Any]:
        """The JSON body for ``POST /batches``: absent fields omitted, never ``null``."""
        return wire.livy_body({attr: getattr(self, attr) for attr in wire.LIVY_FIELDS})

    @classmethod
    def from_livy_body(cls, body: Mapping[str, Any]) -> BatchSpec:
        """The spec of a ``POST /batches`` body; unknown fields raise (Livy answers 400 to them)."""
        if not isinstance(body, Mapping):
            raise ConfigError(f"must be a JSON object, got {type(body).__name__}", field="spec")
        reverse = {v: k for k, v in cls._LIVY_NAMES.items()}
        unknown = sorted(set(body) - set(reverse))
        if unknown:
            raise ConfigError(
                [ConfigProblem(f"spec.{k}", "is not a Livy batch field; remove it") for k in unknown]
            )
        return cls(**{reverse[k]: v for k, v in body.items()})

    @property
    def is_python(self) -> bool:
        return isinstance(self.file, str) and self.file.lower().endswith(".py")

    def problems(self, *, allow_local: bool = True) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        s = "spec."
        problems += validate_file_uri(self.file, s + "file", allow_local=allow_local)
        if self.class_name is not None:
            if self.is_python:
                _problem(
                    problems,
                    s + "class_name",
                    "is only for JVM (jar) applications; leave it empty for a Python file",
                )
            else:
                _check_class_name(self.class_name, s + "class_name", problems)
        for i, arg in enumerate(self.args):
            if not isinstance(arg, str):
                _problem(problems, f"{s}args[{i}]", "must be text or a number, not empty (null)")
            elif "\x00" in arg:
                _problem(problems, f"{s}args[{i}]", "must not contain NUL characters")
        if self.name is not None:
            _check_name(self.name, s + "name", problems)
        for attr in ("proxy_user", "queue"):
            value = getattr(self, attr)
            if value is not None:
                _check_token(value, s + attr, problems, "single word")
        for attr in ("jars", "py_files", "files", "archives"):
            for i, item in enumerate(getattr(self, attr)):
                problems += validate_file_uri(item, f"{s}{attr}[{i}]", allow_local=allow_local)
        for attr in ("driver_memory", "executor_memory"):
            value = getattr(self, attr)
            if value is not None:
                _check_memory(value, s + attr, problems)
        for attr in ("driver_cores", "executor_cores", "num_executors"):
            value = getattr(self, attr)
            if value is not None:
                _check_positive_int(value, s + attr, problems)
        problems += self._conf_problems()
        return problems

    def _conf_problems(self) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        name = "spec.conf"
        if not isinstance(self.conf, Mapping):
            _problem(problems, name, 'must be an object of Spark settings, e.g. {"spark.eventLog.enabled": "true"}')
            return problems
        for key, value in self.conf.items():
            if not isinstance(key, str) or not key.strip():
                _problem(
                    problems,
                    name,
                    "has an empty key; every Spark setting needs a name like spark.executor.memoryOverhead",
                )
            elif any(ch.isspace() for ch in key) or _CONTROL.search(key):
                _problem(problems, f"{name}[{key}]", "key must not contain spaces")
            elif value is None or (isinstance(value, str) and _CONTROL.search(value)):
                _problem(problems, f"{name}[{key}]", "needs a value without line breaks")
            elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
                _problem(
                    problems, f"{name}[{key}]", 'value must be text or a number (write booleans as "true")'
                )
        return problems

    def validate(self, *, allow_local: bool = True) -> BatchSpec:
        problems = self.problems(allow_local=allow_local)
        if problems:
            raise ConfigError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchSpec:
        return cls(**_known_keys(cls, data, "spec"))


_arg_text = wire.arg_text


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


@dataclass(frozen=True)
class JobConfig:
    """A profile plus a batch spec: everything needed to submit, monitor and export a job."""

    profile: ClusterProfile = field(default_factory=ClusterProfile)
    spec: BatchSpec = field(default_factory=BatchSpec)

    FORMAT_VERSION: ClassVar[int] = 1

    def problems(self) -> list[ConfigProblem]:
        allow_local = self.profile.flavour in ("sandbox", "livy")
        return self.profile.problems() + self.spec.problems(allow_local=allow_local)

    def validate(self) -> JobConfig:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    def replace(self, *, profile: ClusterProfile | None = None, spec: BatchSpec | None = None) -> JobConfig:
        return replace(
            self,
            profile=profile if profile is not None else self.profile,
            spec=spec if spec is not None else self.spec,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.FORMAT_VERSION,
            "profile": self.profile.to_dict(),
            "spec": self.spec.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobConfig:
        if not isinstance(data, Mapping):
            raise ConfigError("a job configuration must be a JSON object", field="config")
        unknown = sorted(set(data) - {"version", "profile", "spec"})
        if unknown:
            raise ConfigError(
                [ConfigProblem(k, "is not a known section; use 'profile' and 'spec'") for k in unknown]
            )
        problems: list[ConfigProblem] = []
        version = data.get("version", cls.FORMAT_VERSION)
        if isinstance(version, bool) or version != cls.FORMAT_VERSION:
            problems.append(
                ConfigProblem(
                    "version",
                    f"is {version!r} but this hdiaks-widgets reads version {cls.FORMAT_VERSION}; "
                    "upgrade hdiaks-widgets or remove the key",
                )
            )
        profile, spec = ClusterProfile(), BatchSpec()
        try:
            profile = ClusterProfile.from_dict(data.get("profile") or {})
        except (ConfigError, TypeError) as exc:
            problems += _problems_of(exc, "profile")
        try:
            spec = BatchSpec.from_dict(data.get("spec") or {})
        except (ConfigError, TypeError) as exc:
            problems += _problems_of(exc, "spec")
        if problems:
            raise ConfigError(problems)
        return cls(profile=profile, spec=spec)

    def to_json(self) -> str:
        try:
            return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cannot be written as JSON: {exc}", field="config") from exc

    @classmethod
    def from_json(cls, text: str) -> JobConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", field="config"
            ) from exc
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically so a crash or a full disk never leaves half a config behind.

        The text goes to a unique temporary file in the same directory, is flushed to disk, then
        renamed over the target (``os.replace`` is atomic on POSIX and Windows).
        """
        target = Path(path)
        text = self.to_json()
        tmp_name: str | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
            os.chmod(tmp_name, mode)  # mkstemp creates 0600; keep the usual mode of a config file
            os.replace(tmp_name, target)
            tmp_name = None
        except OSError as exc:
            raise ConfigError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}", field="config") from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JobConfig:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}", field="config") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{os.fspath(path)!r} is not UTF-8 text (byte {exc.start})", field="config"
            ) from exc
        return cls.from_json(text)

    # -- the Microsoft sample's trigger conf (PROTOCOL.md §1) -------------------------------

    def to_trigger_conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "spark_cluster_fqdn": self.profile.fqdn or "",
            "app_jar_path": self.spec.file,
            "job_name": self.spec.name or "",
        }
        if self.spec.class_name:
            conf["class_name"] = self.spec.class_name
        if self.spec.args:
            conf["args"] = list(self.spec.args)
        return conf

    def with_trigger_conf(self, conf: Mapping[str, Any]) -> JobConfig:
        """Apply a trigger conf on top of this config; empty values keep the defaults."""
        if not isinstance(conf, Mapping):
            raise ConfigError(f"must be a JSON object, got {type(conf).__name__}", field="trigger_conf")
        problems = [
            ConfigProblem(str(k), f"is not a trigger-conf key; known: {', '.join(TRIGGER_KEYS)}")
            for k in sorted(set(conf) - set(TRIGGER_KEYS), key=str)
        ]
        for key in ("spark_cluster_fqdn", "app_jar_path", "job_name", "class_name"):
            value = conf.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(ConfigProblem(key, f"must be text, got {value!r}"))
        args = conf.get("args")
        if args is not None and isinstance(args, Mapping):
            problems.append(ConfigProblem("args", 'must be a list of arguments, e.g. ["10"]'))
        if problems:
            raise ConfigError(problems)
        profile, spec = wire.merge_trigger_conf(self.profile.to_dict(), self.spec.to_dict(), conf)
        return JobConfig(profile=ClusterProfile.from_dict(profile), spec=BatchSpec.from_dict(spec))

    @classmethod
    def from_trigger_conf(
        cls, conf: Mapping[str, Any], *, profile: ClusterProfile | None = None
    ) -> JobConfig:
        """A config from the sample's trigger conf alone (HDInsight on AKS unless ``profile``)."""
        if profile is None:
            profile = ClusterProfile(name="hdinsight-aks", flavour="hdinsight-aks")
        base = cls(profile=profile)
        return base.with_trigger_conf(conf)


def _problems_of(exc: Exception, prefix: str) -> list[ConfigProblem]:
    if isinstance(exc, ConfigError):
        return list(exc.problems)
    # TypeError from a dataclass constructor: wrong argument shape.
    return [ConfigProblem(prefix, f"has an invalid value: {exc}")]

