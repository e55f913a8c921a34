"""Job files that are JSON in form but wrong in content, read by ``JobConfig.from_json`` /
``load`` and by ``hdiaks submit --config``: paths the profile's flavour cannot read, NaN and
Infinity, numbers too long for Python, duplicate keys, keys with line breaks. Each is refused in
one line naming the field (or the line) and the fix, before any request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Run
from servers import RecordingServer

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import ConfigError

AKS = ClusterProfile(name="aks", flavour="hdinsight-aks", fqdn="c.p.1.eastus.hdinsightaks.net")
SANDBOX = ClusterProfile(name="sb", flavour="sandbox", url="http://127.0.0.1:8998")


def _refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        JobConfig.from_json(text)
    return str(caught.value)


# -- 1. the profile's flavour decides which paths are accepted ------------------------------------


@pytest.mark.parametrize(
    ("profile", "path", "said"),
    [
        (AKS, "wasbs://cont@acct.blob.core.windows.net/x.jar", "HDInsight on AKS cannot read"),
        (AKS, "wasbs:///example/jars/x.jar", "HDInsight on AKS cannot read"),
        (SANDBOX, "hdfs:///x.jar", "the sandbox cannot read"),
    ],
    ids=["aks-wasbs", "aks-default-storage", "sandbox-hdfs"],
)
def test_jobconfig_problems_use_the_profile_flavour(profile: ClusterProfile, path: str, said: str) -> None:
    problems = JobConfig(profile=profile, spec=BatchSpec(file=path, class_name="a.B")).problems()
    assert [p.field for p in problems] == ["spec.file"]
    assert said in problems[0].message


def test_jobconfig_problems_flavour_reaches_dependency_paths() -> None:
    spec = BatchSpec(file="abfs://c1c@acct1.dfs.core.windows.net/a.py", py_files=("hdfs:///dep.zip",))
    assert [p.field for p in JobConfig(profile=SANDBOX, spec=spec).problems()] == ["spec.py_files[0]"]


def test_jobconfig_validate_accepts_what_the_flavour_reads() -> None:
    JobConfig(profile=AKS, spec=BatchSpec(file="abfss://c1c@acct1.dfs.core.windows.net/app.py")).validate()
    JobConfig(profile=ClusterProfile(flavour="livy", url="http://127.0.0.1:1"),
              spec=BatchSpec(file="hdfs:///apps/app.py")).validate()


# -- 2. NaN and Infinity ------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_jobconfig_from_json_refuses_nan_and_infinity_naming_the_line(token: str) -> None:
    text = '{\n  "profile": {\n    "flavour": "livy",\n    "read_timeout": ' + token + '\n  }\n}'
    said = _refusal(text)
    assert said == f"config: {token} is not a number JSON allows (line 4); write a plain number, e.g. 60"


def test_jobconfig_from_json_nan_inside_a_string_is_text() -> None:
    cfg = JobConfig.from_json('{"spec": {"file": "/a.py", "args": ["NaN", "Infinity"]}}')
    assert cfg.spec.args == ("NaN", "Infinity")


def test_jobconfig_from_json_refuses_a_float_that_overflows() -> None:
    said = _refusal('{"profile": {"flavour": "livy",\n "connect_timeout": 1e999}}')
    assert said.startswith("config: the number 1e999 is too large (line 2)")


# -- 3. numbers too long ----------------------------------------------------------------------


def test_jobconfig_from_json_refuses_a_5000_digit_number_naming_the_line() -> None:
    text = '{\n"spec": {"name": "' + "9" * 5000 + '",\n  "driver_cores": 1' + "0" * 5000 + "}}"
    said = _refusal(text)
    assert said == "config: is not valid JSON: a number is too long (line 3: 5001 digits; write at most 64)"


def test_jobconfig_from_json_negative_long_number() -> None:
    assert "a number is too long (line 1:" in _refusal('{"spec": {"driver_cores": -' + "1" * 65 + "}}")


def test_jobconfig_from_json_keeps_ordinary_numbers() -> None:
    cfg = JobConfig.from_json('{"spec": {"file": "/a.py", "driver_cores": 4, "conf": {"spark.x": 1.5e3}}}')
    assert cfg.spec.driver_cores == 4 and cfg.spec.conf == {"spark.x": 1500.0}


# -- 4. duplicate keys --------------------------------------------------------------------------


def test_jobconfig_from_json_refuses_a_duplicate_section() -> None:
    text = '{"profile": {"flavour": "livy"},\n "profile": {"flavour": "sandbox"}}'
    assert _refusal(text) == 'config: "profile" appears twice; keep one'


def test_jobconfig_from_json_names_the_path_of_a_nested_duplicate() -> None:
    text = json.dumps({"spec": {"file": "/a.py", "conf": {}}}).replace(
        '"conf": {}', '"conf": {"spark.x": "1", "spark.x": "2"}')
    assert _refusal(text) == 'config: "spark.x" appears twice in spec.conf; keep one'


def test_jobconfig_from_json_names_every_duplicate() -> None:
    text = '{"spec": {"file": "/a.py", "file": "/b.py", "args": [{"k": 1, "k": 2}]}, "version": 1, "version": 1}'
    said = _refusal(text)
    assert '"version" appears twice; keep one' in said
    assert '"file" appears twice in spec; keep one' in said
    assert '"k" appears twice in spec.args[0]; keep one' in said


def test_jobconfig_from_json_duplicate_key_with_a_line_break_stays_one_line() -> None:
    said = _refusal('{"spec": {"a\\nb": 1, "a\\nb": 2}}')
    assert "\n" not in said and '"a\\nb" appears twice in spec' in said


# -- 5. keys with line breaks ------------------------------------------------------------------


@pytest.mark.parametrize(("key", "shown"), [("a\nb", "a\\nb"), ("a\u2028b", "a\\u2028b"), ("a\x85b", "a\\x85b"),
                                            ("a\x1b[2Jb", "a\\x1b[2Jb")],
                         ids=["newline", "line-separator", "next-line", "escape"])
def test_jobconfig_from_dict_escapes_an_unknown_section_key(key: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JobConfig.from_dict({key: 1})
    assert str(caught.value) == f"{shown}: is not a known section; use 'profile' and 'spec'"
    assert len(str(caught.value).splitlines()) == 1


# -- through the CLI: one line, exit 2, nothing sent ---------------------------------------------


def _job(url: str, **spec: object) -> dict[str, object]:
    return {"profile": {"flavour": "livy", "url": url}, "spec": {"file": "/a.py", **spec}}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"profile": {"flavour": "livy", "url": "{url}", "read_timeout": NaN}, "spec": {"file": "/a.py"}}',
         "config: NaN is not a number JSON allows (line 1)"),
        ('{"profile": {"flavour": "livy", "url": "{url}",\n"connect_timeout": Infinity}, "spec": {"file": "/a.py"}}',
         "config: Infinity is not a number JSON allows (line 2)"),
        ('{"profile": {"flavour": "livy", "url": "{url}"}, "spec": {"file": "/a.py", "driver_cores": 1'
         + "0" * 5000 + "}}", "config: is not valid JSON: a number is too long (line 1"),
        ('{"profile": {"flavour": "livy", "url": "{url}"}, "profile": {"flavour": "livy", "url": "{url}"},'
         ' "spec": {"file": "/a.py"}}', 'config: "profile" appears twice; keep one'),
        ('{"profile": {"flavour": "livy", "url": "{url}"}, "spec": {"file": "/a.py"}, "a\\nb": 1}',
         "a\\nb: is not a known section; use 'profile' and 'spec'"),
        ('{"profile": {"flavour": "sandbox", "url": "{url}"}, "spec": {"file": "hdfs:///x.py"}}',
         "spec.file: is an HDFS path, which the sandbox cannot read"),
        ('{"profile": {"flavour": "hdinsight-aks", "fqdn": "c.p.1.eastus.hdinsightaks.net"},'
         ' "spec": {"file": "wasbs://cont@acct.blob.core.windows.net/x.py"}}',
         "spec.file: is a Blob storage (wasb) path, which HDInsight on AKS cannot read"),
    ],
    ids=["nan", "infinity", "long-number", "duplicate-profile", "key-newline", "sandbox-hdfs", "aks-wasbs"],
)
def test_cli_submit_refuses_the_job_file_in_one_line(run: Run, recorder: RecordingServer, tmp_path: Path,
                                                     text: str, said: str) -> None:
    job = tmp_path / "job.json"
    job.write_text(text.replace("{url}", recorder.url), encoding="utf-8")
    code, out, err = run("submit", "--config", str(job))
    assert "Traceback" not in err
    assert (code, out) == (2, "")
    assert err.startswith(f"hdiaks: error: {said}") and err.count("\n") == 1, err
    assert recorder.lines == []


# -- the notebook form checks through JobConfig, so it gets the flavour too -------------------------


@pytest.mark.parametrize(("profile", "path", "said"), [
    (AKS, "wasbs://cont@acct.blob.core.windows.net/x.py", "HDInsight on AKS cannot read"),
    (SANDBOX, "hdfs:///x.py", "the sandbox cannot read"),
], ids=["aks-wasbs", "sandbox-hdfs"])  # fmt: skip
def test_form_refuses_a_path_the_selected_flavour_cannot_read(profile: ClusterProfile, path: str, said: str) -> None:
    from hdiaks_widgets.widgets.form import JobForm

    form = JobForm(profiles={profile.name: profile})
    form.profile.value = profile.name
    form.file.value = path
    problems = [p for p in form.validate() if p.field == "spec.file"]
    assert len(problems) == 1 and said in problems[0].message
