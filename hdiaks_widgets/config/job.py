"""``JobConfig`` = profile + spec: validation of both at once, JSON text and files, trigger conf.

The file format (``job.json``) is JSON plus full-line comments: a line whose first non-blank
characters are ``//`` is a comment (JSON strings cannot hold a line break, so such a line is never
inside a value). Comments after a value on the same line, and ``/* */``, are not comments. ``load``
skips comment lines; ``save(comments=...)`` writes them, so what ``init`` writes reads back
unchanged. A file's own comments are not kept by ``load`` then ``save``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from hdiaks_widgets.config.profile import ClusterProfile
from hdiaks_widgets.config.spec import BatchSpec
from hdiaks_widgets.config.trigger import apply_trigger_conf, trigger_conf_of
from hdiaks_widgets.config.validators import _CONTROL
from hdiaks_widgets.errors import ConfigError, ConfigProblem
from hdiaks_widgets.fileio import atomic_write_text

__all__ = ["JobConfig"]


@dataclass(frozen=True)
class JobConfig:
    """A profile plus a batch spec: everything needed to submit, monitor and export a job."""

    profile: ClusterProfile = field(default_factory=ClusterProfile)
    spec: BatchSpec = field(default_factory=BatchSpec)

    FORMAT_VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        # JobConfig(profile={...}, spec={...}) works like from_dict; anything else that is not a
        # ClusterProfile / BatchSpec is refused naming the argument (not an AttributeError later).
        for name, cls in (("profile", ClusterProfile), ("spec", BatchSpec)):
            value = getattr(self, name)
            if isinstance(value, cls):
                continue
            if isinstance(value, Mapping):
                object.__setattr__(self, name, cls.from_dict(value))
            else:
                raise ConfigError(
                    f"must be a {cls.__name__} or a dict of its settings, got {type(value).__name__}",
                    field=name,
                )

    def problems(self) -> list[ConfigProblem]:
        # The flavour decides which application paths its cluster reads (an AKS cluster reads
        # abfs[s]:// only, the sandbox no hdfs://); allow_local is the fallback for an unknown one.
        allow_local = self.profile.flavour in ("sandbox", "livy")
        return (self.profile.problems() + self.spec.problems(allow_local=allow_local, flavour=self.profile.flavour)
                + self.profile.conf_problems(self.spec.conf))

    @property
    def batch_spec(self) -> BatchSpec:
        """The spec as submitted: with the ``conf`` the profile injects (Fabric's lakehouse and
        environment). Every submitter (CLI, notebook, demo, exported DAG) sends this one."""
        injected = self.profile.conf_injections()
        if not injected:
            return self.spec
        return replace(self.spec, conf=self.profile.merge_conf(self.spec.conf))

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
                [ConfigProblem(_one_line(str(k)), "is not a known section; use 'profile' and 'spec'") for k in unknown]
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

    def to_json(self, *, comments: Mapping[str, str] | None = None, omit_defaults: bool = False) -> str:
        """The file's text. ``comments``: ``//`` lines to write before the file (key ``""``), a
        section (``"profile"``, ``"spec"``) or one field (``"spec.file"``); a comment for a field
        that is not written raises. ``omit_defaults``: leave out the fields that equal their
        defaults (``from_dict`` restores them), except ``profile.name``, ``profile.flavour`` and
        ``spec.file``. Without either, plain ``json.dumps`` of :meth:`to_dict`."""
        if not comments and not omit_defaults:
            try:
                return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"cannot be written as JSON: {exc}", field="config") from exc
        text = _render(self._sections(omit_defaults), dict(comments or {}))
        if type(self).from_json(text) != self:  # built, then read back (STYLE.md 10)
            raise ConfigError("does not read back as the same job when written with comments", field="config")
        return text

    def _sections(self, omit_defaults: bool) -> dict[str, Any]:
        data = self.to_dict()
        if omit_defaults:
            for section, obj in (("profile", self.profile), ("spec", self.spec)):
                defaults = {f.name: getattr(type(obj)(), f.name) for f in fields(obj)}
                data[section] = {
                    k: v for k, v in data[section].items()
                    if k in _ALWAYS_WRITTEN[section] or not _same(v, defaults[k])
                }
        return data

    @classmethod
    def from_json(cls, text: str) -> JobConfig:
        """A config from the file's text: JSON, full-line ``//`` comments skipped. Stricter than
        ``json.loads``: NaN and Infinity (which JSON does not have), a number too long or too
        large, and a key given twice in one object are refused naming the line or the key."""
        data = _parse(_without_comments(text), text)
        try:
            return cls.from_dict(data)
        except RecursionError:
            raise ConfigError(_TOO_DEEP, field="config") from None

    def save(
        self, path: str | os.PathLike[str], *, comments: Mapping[str, str] | None = None,
        omit_defaults: bool = False,
    ) -> Path:
        """Write :meth:`to_json` atomically (``fileio.atomic_write_text``) so a crash or a full
        disk never leaves half a config behind; an existing file keeps its mode, a new one gets
        0644. ``comments``/``omit_defaults``: as for :meth:`to_json`; :meth:`load` reads it back."""
        target = Path(path)
        text = self.to_json(comments=comments, omit_defaults=omit_defaults)
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            raise ConfigError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}", field="config") from exc
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JobConfig:
        try:
            # utf-8-sig: a byte order mark at the start (Windows Notepad writes one) is skipped.
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}", field="config") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{os.fspath(path)!r} is not UTF-8 text (byte {exc.start})", field="config"
            ) from exc
        return cls.from_json(text)

    # -- the Microsoft sample's trigger conf (PROTOCOL.md §1) -------------------------------

    def to_trigger_conf(self) -> dict[str, Any]:
        return trigger_conf_of(self.profile, self.spec)

    def with_trigger_conf(self, conf: Mapping[str, Any]) -> JobConfig:
        """Apply a trigger conf on top of this config; empty values keep the defaults."""
        profile, spec = apply_trigger_conf(self.profile, self.spec, conf)
        return JobConfig(profile=profile, spec=spec)

    @classmethod
    def from_trigger_conf(
        cls, conf: Mapping[str, Any], *, profile: ClusterProfile | None = None
    ) -> JobConfig:
        """A config from the sample's trigger conf alone (HDInsight on AKS unless ``profile``)."""
        if profile is None:
            profile = ClusterProfile(name="hdinsight-aks", flavour="hdinsight-aks")
        base = cls(profile=profile)
        return base.with_trigger_conf(conf)


# Written even when they equal their defaults: a reader needs to see where and what.
_ALWAYS_WRITTEN: Mapping[str, frozenset[str]] = {
    "profile": frozenset({"name", "flavour"}),
    "spec": frozenset({"file"}),
}


def _same(value: Any, default: Any) -> bool:
    # `True == 1`: a value of another type is never "the default" (verify=1 is not verify=True).
    if isinstance(default, tuple):
        default = list(default)
    return type(value) is type(default) and value == default


def _without_comments(text: str) -> str:
    """Full-line ``//`` comments blanked; the line breaks stay, so JSON errors keep their line."""
    if "//" not in text:
        return text
    # Split on "\n" only: str.splitlines also splits on U+2028 and others, which may sit inside a
    # JSON string (written unescaped), so a value could be taken for a comment.
    return "\n".join("" if line.lstrip(" \t\r").startswith("//") else line for line in text.split("\n"))


def _comment_lines(text: str, indent: str) -> list[str]:
    # Each line of a comment gets its own "//"; control characters (a CR that would end the line
    # for an editor but not for us, a terminal escape) become spaces.
    return [indent + ("// " + _CONTROL.sub(" ", line)).rstrip() for line in text.splitlines() or [""]]


def _render(data: Mapping[str, Any], comments: dict[str, str]) -> str:
    """``data`` (``{"version": 1, "profile": {...}, "spec": {...}}``) as indented JSON with the
    ``//`` lines of ``comments`` before the file, a section or a field; a value on one line."""

    def value(v: Any) -> str:
        try:
            return json.dumps(v, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cannot be written as JSON: {exc}", field="config") from exc

    out: list[str] = []
    if "" in comments:
        out += _comment_lines(comments.pop(""), "")
    out.append("{")
    keys = list(data)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        if key in comments:
            out += _comment_lines(comments.pop(key), "  ")
        section = data[key]
        if not isinstance(section, Mapping):
            out.append(f"  {value(key)}: {value(section)}{comma}")
            continue
        out.append(f"  {value(key)}: {{")
        names = list(section)
        for j, name in enumerate(names):
            dotted = f"{key}.{name}"
            if dotted in comments:
                out += _comment_lines(comments.pop(dotted), "    ")
            out.append(f"    {value(name)}: {value(section[name])}{',' if j < len(names) - 1 else ''}")
        out.append(f"  }}{comma}")
    out.append("}")
    if comments:
        raise ConfigError(
            f"comments for fields that are not written: {', '.join(sorted(comments))}", field="comments"
        )
    return "\n".join(out) + "\n"


def _problems_of(exc: Exception, prefix: str) -> list[ConfigProblem]:
    if isinstance(exc, ConfigError):
        return list(exc.problems)
    # TypeError from a dataclass constructor: wrong argument shape.
    return [ConfigProblem(prefix, f"has an invalid value: {exc}")]



# -- reading the file's JSON strictly ------------------------------------------------------------

_TOO_DEEP = ('is nested too deeply to read; a job configuration is two levels deep '
             '({"profile": {...}, "spec": {...}})')
# Digits of an integer: Python refuses more than 4300 (int_max_str_digits), and no setting needs
# more than a Java long's 19; a longer number would only be repeated back in an error message.
_MAX_DIGITS = 64
# What str.splitlines breaks a line at, and other control characters (a terminal escape).
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """A key or value for a one-line message: line breaks and control characters escaped as in
    Python (``a\\nb``), so the message stays one whole line in a terminal or a log."""
    return _LINE_BREAKING.sub(lambda m: repr(m.group())[1:-1], text)


class _Refused(Exception):
    """Raised from a ``json.loads`` hook: ``token`` (as written) and the sentence for it, whose
    ``{at}`` becomes the token's line (the hooks are not told where they are)."""

    def __init__(self, token: str, sentence: str) -> None:
        super().__init__(sentence)
        self.token = token
        self.sentence = sentence


def _parse_int(token: str) -> int:
    digits = len(token.lstrip("-"))
    if digits > _MAX_DIGITS:
        raise _Refused(token, f"is not valid JSON: a number is too long ({{at}}: {digits} digits; "
                              f"write at most {_MAX_DIGITS})")
    return int(token)


def _parse_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):  # 1e999 is read as inf
        shown = token if len(token) <= 20 else token[:19] + "\u2026"
        raise _Refused(token, f"the number {shown} is too large ({{at}}); write a plain number, e.g. 60")
    return value


def _parse_constant(token: str) -> float:
    # json.loads reads NaN, Infinity and -Infinity by default; JSON itself (RFC 8259 §6) has none.
    raise _Refused(token, f"{token} is not a number JSON allows ({{at}}); write a plain number, e.g. 60")


class _Repeated(dict):  # type: ignore[type-arg]
    """A JSON object in which some key was given more than once (the last value kept)."""

    repeated: list[str]


def _line_of(text: str, token: str) -> int:
    """The line of the first ``token`` outside a JSON string (0 when not found). Strings are
    matched whole, so a token inside one (``"NaN"``) is skipped."""
    pattern = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.+\-])' + re.escape(token) + r"(?![\w.])")
    for match in pattern.finditer(text):
        if not match.group().startswith('"'):
            return text.count("\n", 0, match.start()) + 1
    return 0


def strict_json(text: str, *, field: str = "config") -> Any:
    """``text`` as JSON, strictly (no NaN/Infinity, no endless numbers, no key twice); every
    failure a one-line ``ConfigError`` of ``field``. The profiles file is read with it too."""
    return _parse(text, text, field=field)


def _parse(text: str, original: str, *, field: str = "config") -> Any:
    """``text`` (comments blanked) as JSON, strictly; every failure a ``ConfigError`` of
    ``field``. ``original``: the file's text, for the line a JSON error points at."""
    repeated: list[_Repeated] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        marked = _Repeated(obj)
        seen: set[str] = set()
        marked.repeated = []
        for key, _ in items:
            if key in seen and key not in marked.repeated:
                marked.repeated.append(key)
            seen.add(key)
        repeated.append(marked)
        return marked

    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant,
                          object_pairs_hook=pairs)
    except _Refused as exc:
        number = _line_of(text, exc.token)
        raise ConfigError(exc.sentence.format(at=f"line {number}" if number else "line ?"), field=field) from None
    except json.JSONDecodeError as exc:
        lines = original.splitlines()
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        hint = "; a comment must be on its own line, starting with //" if "//" in line or "/*" in line else ""
        raise ConfigError(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}){hint}", field=field
        ) from exc
    except RecursionError:
        raise ConfigError(_TOO_DEEP, field=field) from None
    if repeated:
        raise ConfigError(_repeated_problems(data, field))
    return data


def _repeated_problems(data: Any, field: str = "config") -> list[ConfigProblem]:
    """One problem per key given twice, in file order, naming the object it is in."""
    problems: list[ConfigProblem] = []
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:  # depth first without recursion; children pushed in reverse to keep file order
        value, path = stack.pop()
        if isinstance(value, _Repeated):
            where = f" in {path}" if path else ""
            problems += [ConfigProblem(field, f"{_one_line(json.dumps(key, ensure_ascii=False))} appears twice"
                                                 f"{where}; keep one") for key in value.repeated]
        if isinstance(value, dict):
            children = [(v, _child_path(path, str(k))) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        stack += [child for child in reversed(children) if isinstance(child[0], (dict, list))]
    return problems


def _child_path(path: str, key: str) -> str:
    if re.fullmatch(r"\w+", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_one_line(key)}]"
