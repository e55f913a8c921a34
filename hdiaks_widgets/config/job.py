"""``JobConfig`` = profile + spec: validation of both at once, JSON text and files, trigger conf."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from hdiaks_widgets.config.profile import ClusterProfile
from hdiaks_widgets.config.spec import BatchSpec
from hdiaks_widgets.config.trigger import apply_trigger_conf, trigger_conf_of
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
            config = cls.from_dict(data)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", field="config"
            ) from exc
        except RecursionError:
            raise ConfigError(
                "is nested too deeply to read; a job configuration is two levels deep "
                '({"profile": {...}, "spec": {...}})',
                field="config",
            ) from None
        return config

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (``fileio.atomic_write_text``) so a crash or a full disk never leaves
        half a config behind; an existing file keeps its mode, a new one gets 0644."""
        target = Path(path)
        text = self.to_json()
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


def _problems_of(exc: Exception, prefix: str) -> list[ConfigProblem]:
    if isinstance(exc, ConfigError):
        return list(exc.problems)
    # TypeError from a dataclass constructor: wrong argument shape.
    return [ConfigProblem(prefix, f"has an invalid value: {exc}")]

