"""Named profiles in the user's profiles file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.errors import ConfigError
from hdiaks_widgets.profiles import (
    delete_profile,
    get_profile,
    list_profiles,
    load_profiles,
    profiles_path,
    save_profile,
)

AKS = ClusterProfile(name="prod-eastus", flavour="hdinsight-aks", fqdn="c1.pool1.abc.eastus.hdinsightaks.net",
                     secret_source="keyvault", vault_url="https://kv1.vault.azure.net")


def test_profiles_path_prefers_environment_variable(tmp_path: Path) -> None:
    assert profiles_path({"HDIAKS_PROFILES": str(tmp_path / "p.json")}) == tmp_path / "p.json"


def test_profiles_path_defaults_to_user_config() -> None:
    assert profiles_path({}).parts[-3:] == (".config", "hdiaks", "profiles.json")


def test_save_profile_then_get_profile_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    save_profile(AKS, path)
    assert get_profile("prod-eastus", path) == AKS


def test_list_profiles_is_sorted(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    save_profile(AKS, path)
    save_profile(ClusterProfile(name="local", flavour="livy", url="http://127.0.0.1:8998"), path)
    assert list_profiles(path) == ["local", "prod-eastus"]


def test_get_profile_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    save_profile(AKS, path)
    with pytest.raises(ConfigError, match="known: prod-eastus"):
        get_profile("staging", path)


def test_load_profiles_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_profiles(tmp_path / "absent.json") == {}


def test_load_profiles_refuses_a_secret_field(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": {"p": {"flavour": "livy", "password": "x"}}}))
    with pytest.raises(ConfigError, match="password"):
        load_profiles(path)


def test_save_profile_file_is_private_and_holds_no_secret_values(tmp_path: Path) -> None:
    path = save_profile(AKS, tmp_path / "profiles.json")
    assert path.stat().st_mode & 0o077 == 0
    data = json.loads(path.read_text())["profiles"]["prod-eastus"]
    assert not {k for k in data if "secret" in k and k != "secret_source"}


def test_save_profile_rejects_invalid_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="profile.fqdn"):
        save_profile(ClusterProfile(name="bad", flavour="hdinsight-aks", fqdn="https://x"), tmp_path / "p.json")


def test_delete_profile_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    save_profile(AKS, path)
    delete_profile("prod-eastus", path)
    assert list_profiles(path) == []


def test_load_profiles_skips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    text = json.dumps({"profiles": {"local": {"flavour": "livy", "url": "http://127.0.0.1:8998"}}})
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # what Windows Notepad writes
    assert load_profiles(path)["local"].url == "http://127.0.0.1:8998"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1"])
def test_load_profiles_refuses_text_that_is_not_utf8_in_one_sentence(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "profiles.json"
    path.write_bytes(json.dumps({"profiles": {"caf\u00e9": {"flavour": "livy"}}}, ensure_ascii=False).encode(encoding))
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    assert str(info.value) == f"profiles: {str(path)!r} is not UTF-8 text; save it as UTF-8"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"profiles": {"p": {"url": "http://127.0.0.1:1", "connect_timeout": Infinity}}}', "Infinity is not a number"),
        ('{"profiles": {"p": {"url": "http://127.0.0.1:1", "read_timeout": NaN}}}', "NaN is not a number"),
        ('{"profiles": {"p": {"url": "http://127.0.0.1:1", "read_timeout": 1e999}}}', "is too large"),
        ('{"profiles": {"p": {"url": "http://127.0.0.1:1", "read_timeout": 1' + "0" * 5000 + "}}}", "too long"),
        ('{"profiles": {"p": {"url": "http://127.0.0.1:1"}, "p": {"url": "http://127.0.0.1:2"}}}', "appears twice"),
    ],
    ids=["infinity", "nan", "1e999", "5000-digits", "profile-twice"],
)
def test_load_profiles_reads_json_as_strictly_as_job_files(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    message = str(info.value)
    assert says in message and "\n" not in message and "profiles" in message, message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0])
def test_timeouts_must_be_finite_seconds_above_zero(value: float) -> None:
    from hdiaks_widgets.config import ClusterProfile

    problems = ClusterProfile(url="http://127.0.0.1:8998", read_timeout=value).problems()
    assert [p.field for p in problems] == ["profile.read_timeout"], problems
