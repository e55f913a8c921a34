"""Named cluster profiles in a user config file, chosen by name.

The file is ``$HDIAKS_PROFILES`` or ``~/.config/hdiaks/profiles.json``::

    {"version": 1, "profiles": {"prod-eastus": {<ClusterProfile fields>}, ...}}

Profiles say where secrets live (``secret_source``, ``vault_url``, ``variables_prefix``), never
what they are: ``ClusterProfile`` has no secret field and unknown keys are refused on load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.config.job import strict_json
from hdiaks_widgets.errors import ConfigError
from hdiaks_widgets.fileio import atomic_write_text

__all__ = [
    "PROFILES_ENV",
    "delete_profile",
    "get_profile",
    "list_profiles",
    "load_profiles",
    "profiles_path",
    "save_profile",
]

PROFILES_ENV = "HDIAKS_PROFILES"
_FORMAT_VERSION = 1


def profiles_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$HDIAKS_PROFILES`` if set, else ``~/.config/hdiaks/profiles.json``."""
    env = os.environ if environ is None else environ
    given = env.get(PROFILES_ENV)
    if given:
        return Path(given).expanduser()
    return Path("~/.config/hdiaks/profiles.json").expanduser()


def load_profiles(path: str | os.PathLike[str] | None = None) -> dict[str, ClusterProfile]:
    """All profiles in the file by name; an absent file means no profiles."""
    target = Path(path) if path is not None else profiles_path()
    try:
        # utf-8-sig, as for job.json: a byte order mark at the start (Windows Notepad) is skipped.
        text = target.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(target)!r}: {exc.strerror}", field="profiles") from exc
    except UnicodeDecodeError as exc:  # e.g. saved as UTF-16 by PowerShell's Out-File
        raise _not_utf8(target) from exc
    if "\x00" in text:  # UTF-16 without a byte order mark decodes as UTF-8 with a NUL in every other byte
        raise _not_utf8(target)
    try:
        data = strict_json(text, field="profiles")  # as job.json: no NaN/Infinity, no key twice
    except ConfigError as exc:
        raise ConfigError(f"{os.fspath(target)!r}: {exc.problems[0].message}" if len(exc.problems) == 1
                          else exc.problems, field="profiles") from None
    raw = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        raise ConfigError(f"{os.fspath(target)!r} must hold {{\"profiles\": {{name: profile}}}}", field="profiles")
    profiles: dict[str, ClusterProfile] = {}
    for name, fields in raw.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"profile {name!r} must be a JSON object", field=f"profiles.{name}")
        try:
            profiles[name] = ClusterProfile.from_dict({**fields, "name": name})
        except TypeError as exc:
            raise ConfigError(f"profile {name!r} has an invalid value: {exc}", field=f"profiles.{name}") from exc
    return profiles


def _not_utf8(target: Path) -> ConfigError:
    return ConfigError(f"{os.fspath(target)!r} is not UTF-8 text; save it as UTF-8", field="profiles")


def list_profiles(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Profile names, sorted."""
    return sorted(load_profiles(path))


def get_profile(name: str, path: str | os.PathLike[str] | None = None) -> ClusterProfile:
    """The profile called ``name``; ConfigError naming the known ones when it is absent."""
    profiles = load_profiles(path)
    try:
        return profiles[name]
    except KeyError:
        known = ", ".join(sorted(profiles)) or "none yet"
        where = os.fspath(path) if path is not None else os.fspath(profiles_path())
        raise ConfigError(
            f"no profile named {name!r} in {where!r} (known: {known}); save one with save_profile()",
            field="profile",
        ) from None


def _write(target: Path, profiles: Mapping[str, ClusterProfile]) -> None:
    data: dict[str, Any] = {
        "version": _FORMAT_VERSION,
        "profiles": {
            name: {k: v for k, v in p.to_dict().items() if k != "name"} for name, p in sorted(profiles.items())
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(data, indent=2) + "\n", mode=0o600)  # a crash never leaves half a file


def save_profile(profile: ClusterProfile, path: str | os.PathLike[str] | None = None) -> Path:
    """Add or replace ``profile`` (by its name) after validating it; returns the file path."""
    profile.validate()
    target = Path(path) if path is not None else profiles_path()
    profiles = load_profiles(target)
    profiles[profile.name] = profile
    _write(target, profiles)
    return target


def delete_profile(name: str, path: str | os.PathLike[str] | None = None) -> None:
    """Remove a profile; ConfigError if there is none by that name."""
    target = Path(path) if path is not None else profiles_path()
    profiles = load_profiles(target)
    if name not in profiles:
        get_profile(name, target)  # raises with the list of known names
    del profiles[name]
    _write(target, profiles)
