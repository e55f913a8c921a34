"""``hdiaks init`` and the job file format it writes (JSON plus full-line ``//`` comments):
starters that read back as written, placeholders that submit refuses by name, the profile it
saves, overwrite refusals, and a starter submitted twice against the sandbox (real Spark)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import get_args

import pytest
from auth_fixtures import closed_port
from conftest import Run, SandboxHandle, hdiaks, one_line_usage_error

from hdiaks_widgets import profiles
from hdiaks_widgets.config import ClusterProfile, JobConfig
from hdiaks_widgets.config.profile import Flavour
from hdiaks_widgets.errors import ConfigError
from hdiaks_widgets.starter import FLAVOURS, starter


@pytest.fixture(autouse=True)
def profile_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own profile file, never the user's."""
    path = tmp_path / "profiles.json"
    monkeypatch.setenv(profiles.PROFILES_ENV, str(path))
    return path


# -- the file format ----------------------------------------------------------------------------


def test_init_every_flavour_of_the_config_has_a_starter() -> None:
    assert set(FLAVOURS) == set(get_args(Flavour))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_init_writes_a_short_commented_file_that_reads_back_as_the_starter(
    run: Run, tmp_path: Path, flavour: str
) -> None:
    out = tmp_path / "job.json"
    code, said, err = run("init", "--flavour", flavour, "--out", str(out))
    assert (code, err) == (0, ""), err
    text = out.read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("//")]
    assert len(comments) >= 5 and len(text.splitlines()) <= 40
    assert JobConfig.load(out) == starter(flavour).config
    assert f"wrote {out} ({flavour})" in said
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # honest: it is not plain JSON, and the header says so
    assert "JSON plus full-line // comments" in text


def test_init_sandbox_starter_is_valid_and_names_no_job(tmp_path: Path) -> None:
    cfg = starter("sandbox").config
    assert cfg.problems() == []
    assert cfg.spec.name is None  # each submit gets a unique hdiaks-<hex> name
    assert cfg.spec.file.endswith("/jars/spark-examples.jar") and cfg.spec.class_name.endswith(".SparkPi")


@pytest.mark.parametrize("flavour", [f for f in FLAVOURS if f != "sandbox"])
def test_init_placeholders_are_refused_by_submit_naming_each_field(run: Run, tmp_path: Path, flavour: str) -> None:
    out = tmp_path / "job.json"
    code, said, _ = run("init", "--flavour", flavour, "--out", str(out))
    made = starter(flavour)
    assert code == 0 and made.placeholders
    assert f"fill in {', '.join(made.placeholders)}" in said
    err = one_line_usage_error(*run("submit", "--config", str(out)))
    for name in made.placeholders:
        assert f"{name}:" in err
    text = out.read_text(encoding="utf-8")
    assert text.count("FILL IN") >= len([p for p in made.placeholders if p != "spec.class_name"])


@pytest.mark.parametrize("flavour", [f for f in FLAVOURS if f != "sandbox"])
def test_init_placeholders_are_the_only_problems(flavour: str) -> None:
    made = starter(flavour)
    cfg = made.config
    assert sorted(p.field for p in cfg.problems()) == sorted(made.placeholders)
    filled = {"url": "http://127.0.0.1:8998", "fqdn": "mycluster.mypool.abc123.eastus.hdinsightaks.net",
              "workspace_id": "8b4c2c1e-1111-4222-8333-444455556666",
              "lakehouse_id": "9c5d3d2f-aaaa-4bbb-8ccc-ddddeeeeffff", "workspace": "myws", "pool": "sparkpool01"}
    profile = replace(cfg.profile, **{k.split(".")[1]: filled[k.split(".")[1]]
                                      for k in made.placeholders if k.startswith("profile.")})
    file = {"hdinsight": "wasbs:///example/jars/app.jar", "livy": "local:///opt/app.jar"}.get(
        flavour, "abfs://jobs@acct.dfs.core.windows.net/app.jar")
    spec = replace(cfg.spec, file=file, class_name="com.example.Main")
    assert cfg.replace(profile=profile, spec=spec).problems() == []


def test_init_url_and_fqdn_fill_their_placeholder(run: Run, tmp_path: Path) -> None:
    run("init", "--flavour", "livy", "--url", "http://127.0.0.1:9999", "--out", str(tmp_path / "a.json"))
    run("init", "--flavour", "hdinsight-aks", "--fqdn", "c.p.1.eastus.hdinsightaks.net", "--out",
        str(tmp_path / "b.json"))
    assert JobConfig.load(tmp_path / "a.json").profile.url == "http://127.0.0.1:9999"
    assert JobConfig.load(tmp_path / "b.json").profile.fqdn == "c.p.1.eastus.hdinsightaks.net"


@pytest.mark.parametrize(("argv", "option"), [
    (["--flavour", "hdinsight-aks", "--url", "http://127.0.0.1:1"], "--url"),
    (["--flavour", "sandbox", "--fqdn", "x.hdinsightaks.net"], "--fqdn"),
], ids=["url-for-aks", "fqdn-for-sandbox"])
def test_init_address_option_of_the_other_kind_is_refused(run: Run, tmp_path: Path, argv: list[str],
                                                          option: str) -> None:
    err = one_line_usage_error(*run("init", *argv, "--out", str(tmp_path / "job.json")))
    assert option in err
    assert not (tmp_path / "job.json").exists()


# -- overwriting --------------------------------------------------------------------------------


def test_init_refuses_to_overwrite_without_force(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "job.json"
    out.write_text("mine\n", encoding="utf-8")
    err = one_line_usage_error(*run("init", "--out", str(out)))
    assert "already exists" in err and "--force" in err
    assert out.read_text(encoding="utf-8") == "mine\n"
    code, _, _ = run("init", "--out", str(out), "--force")
    assert code == 0 and JobConfig.load(out) == starter("sandbox").config


def test_init_refuses_a_folder_as_out(run: Run, tmp_path: Path) -> None:
    err = one_line_usage_error(*run("init", "--out", str(tmp_path), "--force"))
    assert "is a folder" in err


# -- --profile ------------------------------------------------------------------------------------


def test_init_profile_saves_the_same_profile_to_the_profile_file(run: Run, tmp_path: Path,
                                                                profile_file: Path) -> None:
    out = tmp_path / "job.json"
    url = f"http://127.0.0.1:{closed_port()}"
    code, said, err = run("init", "--url", url, "--profile", "dev", "--out", str(out))
    assert (code, err) == (0, "")
    saved = profiles.get_profile("dev")
    assert saved == JobConfig.load(out).profile == ClusterProfile(name="dev", flavour="sandbox", url=url)
    assert str(profile_file) in said
    # the profile works on its own: `list --profile dev` goes to that URL (nothing listens: exit 1)
    code, _, err = run("list", "--profile", "dev")
    assert code == 1 and f"Cannot reach Livy at {url}" in err


def test_init_profile_refuses_to_replace_an_existing_profile_without_force(run: Run, tmp_path: Path) -> None:
    profiles.save_profile(ClusterProfile(name="dev", flavour="livy", url="http://127.0.0.1:1"))
    err = one_line_usage_error(*run("init", "--profile", "dev", "--out", str(tmp_path / "job.json")))
    assert "--profile" in err and "already exists" in err and "--force" in err
    assert not (tmp_path / "job.json").exists()  # nothing written when anything is refused
    assert profiles.get_profile("dev").flavour == "livy"
    code, _, _ = run("init", "--profile", "dev", "--out", str(tmp_path / "job.json"), "--force")
    assert code == 0 and profiles.get_profile("dev").flavour == "sandbox"


def test_init_profile_with_placeholders_is_refused_and_writes_nothing(run: Run, tmp_path: Path,
                                                                      profile_file: Path) -> None:
    out = tmp_path / "job.json"
    err = one_line_usage_error(*run("init", "--flavour", "hdinsight-aks", "--profile", "prod", "--out", str(out)))
    assert "profile.fqdn" in err and "--fqdn" in err
    assert not out.exists() and not profile_file.exists()


# -- JobConfig.save(comments=) and load agree -----------------------------------------------------

_HOSTILE = {
    "newline": "first\nsecond",
    "crlf": "one\r\ntwo",
    "lone-cr": "a\rb",
    "escape": "red \x1b[31m",
    "json-ish": '"}, {"spec": 1',
    "block": "/* not a block */ // twice",
    "unicode": "日本語 🚀 \u2028 sep",
    "empty": "",
}


@pytest.mark.parametrize("text", list(_HOSTILE.values()), ids=list(_HOSTILE))
def test_jobconfig_save_with_hostile_comments_loads_back_the_same_job(tmp_path: Path, text: str) -> None:
    cfg = starter("livy", url="http://127.0.0.1:8998").config
    cfg = cfg.replace(spec=replace(cfg.spec, args=(f"x\u2028// {text}", "// not a comment", text)))
    comments = {"": text, "profile": text, "spec.file": text, "profile.url": text}
    path = cfg.save(tmp_path / "job.json", comments=comments, omit_defaults=True)
    assert JobConfig.load(path) == cfg
    for line in path.read_text(encoding="utf-8").splitlines():
        assert "\x1b" not in line and "\r" not in line


def test_jobconfig_save_without_comments_is_still_plain_json(tmp_path: Path) -> None:
    cfg = starter("sandbox").config
    path = cfg.save(tmp_path / "job.json")
    assert JobConfig.from_dict(json.loads(path.read_text(encoding="utf-8"))) == cfg


def test_jobconfig_comment_for_a_field_not_written_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        starter("sandbox").config.to_json(comments={"spec.name": "x"}, omit_defaults=True)
    assert "spec.name" in str(info.value)


def test_jobconfig_load_reads_comment_lines_with_crlf_and_a_byte_order_mark(tmp_path: Path) -> None:
    cfg = starter("sandbox").config
    text = cfg.to_json(comments={"": "header", "spec": "what"}, omit_defaults=True)
    path = tmp_path / "job.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert JobConfig.load(path) == cfg


def test_jobconfig_comment_after_a_value_is_a_one_line_error_that_says_why(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "spec": {"file": "/x.py"} // my job\n}\n', encoding="utf-8")
    err = one_line_usage_error(*run("submit", "--config", str(path)))
    assert "line 2" in err and "comment must be on its own line" in err


def test_jobconfig_json_errors_keep_their_line_number_after_comments(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('// one\n// two\n{\n  "spec": {"file": "/x.py",}\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        JobConfig.load(path)
    assert "line 4" in str(info.value)


# -- init, then submit --wait, twice, on the sandbox -------------------------------------------


@pytest.mark.spark
def test_init_then_submit_wait_succeeds_twice_in_a_row(run: Run, sandbox: SandboxHandle, tmp_path: Path) -> None:
    code, _, err = run("init", "--flavour", "sandbox", "--url", sandbox.url, "--out", str(tmp_path / "job.json"))
    assert code == 0, err
    names = []
    for _ in range(2):
        done = hdiaks("submit", "--config", "job.json", "--wait", "--poll", "0.3", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Pi is roughly 3.1" in done.stdout
        last = done.stdout.splitlines()[-1]
        assert last.endswith(": success")
        names.append(last.split("(", 1)[1].split(")", 1)[0])
    assert names[0] != names[1] and all(n.startswith("hdiaks-") for n in names)
