"""``BatchSpec``: what to submit — every field of Livy's ``POST /batches`` body.

The body follows ``CreateBatchRequest`` (PROTOCOL.md §2.2): camelCase names, absent fields
omitted (``None`` means "not given"), ``args`` as strings.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from hdiaks_widgets import wire
from hdiaks_widgets.config.validators import (
    _CONTROL,
    _check_class_name,
    _check_memory,
    _check_name,
    _check_positive_int,
    _check_token,
    _known_keys,
    _problem,
    _shown,
    validate_file_uri,
)
from hdiaks_widgets.errors import ConfigError, ConfigProblem

__all__ = ["BatchSpec"]


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """A list from JSON or a form as a tuple; a lone value becomes a 1-tuple (never raises)."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


_arg_text = wire.arg_text


def _is_scalar(value: Any) -> bool:
    """Text, a number or a boolean: what ``wire.arg_text`` turns into the text a shell would pass."""
    return isinstance(value, (str, int, float))


def _args_example(text: str) -> str:
    """``"10 20"`` as the list it was probably meant to be, ``["10", "20"]`` (a short one)."""
    if not text.strip():
        return "[] for none"
    try:
        words = shlex.split(text)
    except ValueError:  # an unclosed quote
        words = text.split()
    example = json.dumps(words[:4] if words and len(text) <= 60 else ["10", "20"], ensure_ascii=False)
    return _shown(example)


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
        # args are stringified as Livy requires (the Azure sample sends args=[10]); anything that
        # is not text, a number or a boolean (None, a list, an object) is kept as given so that
        # validation can name it instead of sending its Python repr ("None", "['a']").
        # A single string where the list belongs ("args": "10 20") is kept as given, so that
        # validation can refuse it: splitting it would guess at the quoting.
        if not isinstance(self.args, str):
            args = _as_tuple(self.args)
            object.__setattr__(self, "args", tuple(_arg_text(a) if _is_scalar(a) else a for a in args))
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
        values = tuple(getattr(self, f.name) for f in fields(self) if f.name not in ("conf", "args"))
        args = tuple(a if a is None or isinstance(a, str) else repr(a) for a in self.args)
        values += (args,)
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
                [ConfigProblem(f"spec.{_shown(str(k))}", "is not a Livy batch field; remove it") for k in unknown]
            )
        return cls(**{reverse[k]: v for k, v in body.items()})

    @property
    def is_python(self) -> bool:
        return isinstance(self.file, str) and self.file.lower().endswith(".py")

    def problems(self, *, allow_local: bool = True, flavour: str | None = None) -> list[ConfigProblem]:
        """Every problem of the spec. ``flavour`` (the profile's) decides which paths the cluster
        reads (``validators.validate_file_uri``); without it ``allow_local`` says whether the
        server reads local paths (plain Livy, the sandbox) or not (an Azure cluster)."""
        problems: list[ConfigProblem] = []
        s = "spec."
        problems += validate_file_uri(self.file, s + "file", allow_local=allow_local, flavour=flavour)
        if self.class_name is not None:
            if self.is_python:
                _problem(
                    problems,
                    s + "class_name",
                    "is only for JVM (jar) applications; leave it empty for a Python file",
                )
            else:
                _check_class_name(self.class_name, s + "class_name", problems)
        if isinstance(self.args, str):
            _problem(problems, s + "args", f"must be a list of arguments, e.g. {_args_example(self.args)}")
        for i, arg in enumerate(() if isinstance(self.args, str) else self.args):
            if arg is None:
                _problem(problems, f"{s}args[{i}]", "must be text or a number, not empty (null)")
            elif not isinstance(arg, str):
                kind = "a list" if isinstance(arg, (list, tuple)) else (
                    "an object" if isinstance(arg, Mapping) else f"a {type(arg).__name__}")
                _problem(
                    problems,
                    f"{s}args[{i}]",
                    f"must be text or a number, not {kind}; give each argument as its own item, "
                    'e.g. ["--input", "abfs://..."]',
                )
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
                problems += validate_file_uri(item, f"{s}{attr}[{i}]", allow_local=allow_local, flavour=flavour)
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
                _problem(problems, f"{name}[{_shown(key)}]", "key must not contain spaces or line breaks")
            elif value is None or (isinstance(value, str) and _CONTROL.search(value)):
                _problem(problems, f"{name}[{key}]", "needs a value without line breaks")
            elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
                _problem(
                    problems, f"{name}[{key}]", 'value must be text or a number (write booleans as "true")'
                )
        return problems

    def validate(self, *, allow_local: bool = True, flavour: str | None = None) -> BatchSpec:
        problems = self.problems(allow_local=allow_local, flavour=flavour)
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
