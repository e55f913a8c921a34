"""Every field round-trips: form -> JobConfig -> JSON -> exported DAG -> load_dag_config -> form (issue 12 item 4).

The tables below name a value for every field of ``ClusterProfile`` and ``BatchSpec`` that differs from
its default, so a field lost anywhere on the way comes back as its default and fails the comparison.
The tables are checked against ``dataclasses.fields``: a field added later without a value here (and
without round-trip support) fails ``test_round_trip_tables_cover_every_dataclass_field``.
"""

from __future__ import annotations

import ast
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, get_args

import pytest

from hdiaks_widgets.airflow.runtime import effective_config
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.config.profile import Flavour
from hdiaks_widgets.dag_export import load_dag_config, read_dag_config, render_dag
from hdiaks_widgets.dag_export.render import _module_constants
from hdiaks_widgets.widgets.export import DagExportPanel
from hdiaks_widgets.widgets.form import JobForm

_ABFS = "abfss://jobs@myaccount.dfs.core.windows.net"
SPEC_VALUES: dict[str, Any] = {
    "file": f"{_ABFS}/apps/etl.py",
    "class_name": None,  # set per case: a Python file takes no main class (see JAR_SPEC)
    "args": ("--date", "2026-12-02", "  two words  ", "quote ' \" and ünïcode", "{}"),
    "name": "nightly-etl",
    "proxy_user": "etl-runner",
    "jars": (f"{_ABFS}/jars/delta.jar", f"{_ABFS}/jars/udf.jar"),
    "py_files": (f"{_ABFS}/py/helpers.zip",),
    "files": (f"{_ABFS}/conf/app.conf", f"{_ABFS}/conf/log4j2.properties"),
    "archives": (f"{_ABFS}/envs/pyenv.tar.gz#environment",),
    "driver_memory": "3g",
    "driver_cores": 2,
    "executor_memory": "5g",
    "executor_cores": 3,
    "num_executors": 7,
    "queue": "etl",
    "conf": {"spark.sql.shuffle.partitions": "64", "spark.pyspark.python": "./environment/bin/python"},
}
JAR_SPEC = {"file": f"{_ABFS}/apps/etl.jar", "class_name": "com.example.etl.Main", "py_files": ()}

# Profile fields every flavour carries (the form does not show them: they come from the loaded profile).
COMMON_PROFILE: dict[str, Any] = {
    "name": "team-prod",
    "authority_host": "https://login.microsoftonline.us",
    "secret_source": "keyvault",
    "vault_url": "https://team-vault.vault.azure.net",
    "variables_prefix": "team-etl-variables",
    "verify": False,
    "connect_timeout": 4.5,
    "read_timeout": 90.0,
    "tenant_id": "11111111-2222-3333-4444-555555555555",
    "client_id": "66666666-7777-8888-9999-000000000000",
    "username": "admin",
}
# Per flavour: its own address fields and a sign-in other than its default, with a scope.
FLAVOUR_PROFILE: dict[str, dict[str, Any]] = {
    "sandbox": {"url": "http://127.0.0.1:8998", "livy_path": "/livy-behind-proxy", "auth": "basic"},
    "livy": {"url": "https://livy.example.com:8998", "livy_path": "/gateway/livy", "auth": "device-code",
             "scope": "https://livy-gateway.example.com/.default"},
    "hdinsight-aks": {"fqdn": "mycluster.mypool.abc123.eastus.hdinsightaks.net", "livy_path": "/p/livy2",
                      "auth": "device-code", "scope": "https://hilo.azurehdinsight.net/.default"},
    "hdinsight": {"fqdn": "mycluster", "url": "http://127.0.0.1:8998", "livy_path": "/livy", "auth": "entra",
                  "scope": "https://mycluster.clusteraccess.azurehdinsight.net/.default"},
    "fabric": {"workspace_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "lakehouse_id":
               "bbbbbbbb-cccc-dddd-eeee-ffffffffffff", "environment_id": "cccccccc-dddd-eeee-ffff-000000000000",
               "api_version": "2024-07-30", "url": "http://127.0.0.1:8998", "auth": "device-code",
               "scope": "https://api.fabric.microsoft.com/.default"},
    "synapse": {"workspace": "myws", "pool": "sparkpool01", "api_version": "2019-11-01-preview",
                "url": "http://127.0.0.1:8998", "auth": "device-code", "scope": "https://dev.azuresynapse.net/.default"},
}  # fmt: skip
# Fields a flavour may not have: another flavour's address (the form hides it and leaves it out of that
# flavour's config), Livy's path on Fabric and Synapse (built from their ids; the profile refuses one), a
# scope on the sandbox's Basic sign-in. A case leaves them at their defaults; every other field is set.
FLAVOUR_ONLY_FIELDS = frozenset({"fqdn", "url", "workspace_id", "lakehouse_id", "environment_id", "workspace",
                                 "pool", "api_version", "livy_path", "scope"})  # fmt: skip
FLAVOURS = get_args(Flavour)


def every_field_config(flavour: str, *, jar: bool = False) -> JobConfig:
    spec = BatchSpec(**{**SPEC_VALUES, **(JAR_SPEC if jar else {})})
    profile = ClusterProfile(flavour=flavour, **COMMON_PROFILE, **FLAVOUR_PROFILE[flavour])  # type: ignore[arg-type]
    return JobConfig(profile=profile, spec=spec)


def lost_fields(expected: JobConfig, got: JobConfig, step: str) -> list[str]:
    """One line per field that differs, naming the step where it was lost."""
    out = []
    for section in fields(JobConfig):
        want, have = getattr(expected, section.name), getattr(got, section.name)
        for f in fields(want):
            a, b = getattr(want, f.name), getattr(have, f.name)
            if a != b or type(a) is not type(b):
                out.append(f"{step}: {section.name}.{f.name} was {a!r}, came back as {b!r}")
    return out


def form_round_trip(cfg: JobConfig) -> JobConfig:
    form = JobForm(cfg, profiles={})
    got, _problems = form.config()
    return got


CASES = [pytest.param(f, False, id=f) for f in FLAVOURS] + [pytest.param("livy", True, id="livy-jar"),
                                                            pytest.param("fabric", True, id="fabric-jar")]


def test_round_trip_tables_cover_every_dataclass_field() -> None:
    profile_fields = {f.name for f in fields(ClusterProfile)}
    spec_fields = {f.name for f in fields(BatchSpec)}
    assert set(SPEC_VALUES) == spec_fields, "give every BatchSpec field a value in SPEC_VALUES"
    covered = set(COMMON_PROFILE) | {"flavour"} | {k for v in FLAVOUR_PROFILE.values() for k in v}
    assert covered == profile_fields, "give every ClusterProfile field a value in COMMON_PROFILE or FLAVOUR_PROFILE"
    assert set(FLAVOUR_PROFILE) == set(FLAVOURS), "every flavour needs its own row in FLAVOUR_PROFILE"
    assert {f.name for f in fields(JobConfig)} == {"profile", "spec"}


@pytest.mark.parametrize(("flavour", "jar"), CASES)
def test_round_trip_every_value_differs_from_its_default(flavour: str, jar: bool) -> None:
    """A lost field must be visible: each value set here is not the field's default."""
    cfg = every_field_config(flavour, jar=jar)
    defaults = JobConfig()
    for section in ("profile", "spec"):
        for f in fields(getattr(cfg, section)):
            value, default = getattr(getattr(cfg, section), f.name), getattr(getattr(defaults, section), f.name)
            if section == "profile" and f.name in FLAVOUR_ONLY_FIELDS and f.name not in FLAVOUR_PROFILE[flavour]:
                continue  # not a field of this flavour
            if section == "profile" and f.name == "flavour" and flavour == "sandbox":
                continue  # the default flavour is one of the cases
            if section == "spec" and f.name in ("class_name", "py_files") and (f.name == "class_name") != jar:
                continue  # a Python file has no main class; the jar case carries no py_files
            assert value != default, f"{section}.{f.name} equals its default; pick another value"


@pytest.mark.parametrize(("flavour", "jar"), CASES)
def test_round_trip_config_is_valid(flavour: str, jar: bool) -> None:
    """The values are ones a user could submit (so no step may 'fix' them away)."""
    assert every_field_config(flavour, jar=jar).problems() == []


@pytest.mark.parametrize(("flavour", "jar"), CASES)
def test_round_trip_form_json_dag_form_keeps_every_field(flavour: str, jar: bool, tmp_path: Path) -> None:
    original = every_field_config(flavour, jar=jar)
    lost: list[str] = []

    from_form = form_round_trip(original)
    lost += lost_fields(original, from_form, "form -> JobConfig")

    text = from_form.to_json()
    from_json = JobConfig.from_json(text)
    lost += lost_fields(original, from_json, "JobConfig -> JSON")
    compact = JobConfig.from_json(from_json.to_json(omit_defaults=True, comments={"": "round trip"}))
    lost += lost_fields(original, compact, "JSON without defaults, with comments")
    saved = from_json.save(tmp_path / "job.json")
    from_file = JobConfig.load(saved)
    lost += lost_fields(original, from_file, "JobConfig.save -> load")

    for embed in (False, True):
        dag = tmp_path / f"dag_{int(embed)}.py"
        dag.write_text(render_dag(from_file, dag_id="round_trip", embed=embed), encoding="utf-8")
        from_dag = load_dag_config(dag)
        lost += lost_fields(original, from_dag, f"render_dag(embed={embed}) -> load_dag_config")
        back = form_round_trip(from_dag)
        lost += lost_fields(original, back, f"load_dag_config(embed={embed}) -> form")
    assert lost == [], "\n".join(lost)


@pytest.mark.parametrize(("flavour", "jar"), CASES)
def test_round_trip_form_save_load_buttons_keep_every_field(flavour: str, jar: bool, tmp_path: Path) -> None:
    original = every_field_config(flavour, jar=jar)
    form = JobForm(original, profiles={})
    form.config_path.value = str(tmp_path / "saved.json")
    form.save_button.click()
    other = JobForm(profiles={})
    other.config_path.value = form.config_path.value
    other.load_button.click()
    got, _ = other.config()
    assert lost_fields(original, got, "Save -> Load") == []


@pytest.mark.parametrize(("flavour", "jar"), CASES)
def test_round_trip_export_panel_dag_loads_back_with_every_field(flavour: str, jar: bool, tmp_path: Path) -> None:
    """The DAG the notebook's Export panel writes carries every field, and the runtime reads them all."""
    original = every_field_config(flavour, jar=jar)
    form = JobForm(original, profiles={})
    panel = DagExportPanel(form, out_dir=str(tmp_path / "dags"))
    panel.dag_id.value = "round_trip_panel"
    files = panel.export()
    dag = next(p for p in files if p.suffix == ".py")
    from_dag = load_dag_config(dag)
    assert lost_fields(original, from_dag, "DagExportPanel -> load_dag_config") == []
    # What the task runs with when triggered without a conf: the same job, every field.
    job_config = _module_constants(ast.parse(dag.read_text(encoding="utf-8")))["JOB_CONFIG"]
    assert read_dag_config(dag.read_text(encoding="utf-8")) == from_dag
    ran = effective_config(job_config, {})
    assert lost_fields(original, ran, "JOB_CONFIG -> effective_config") == []


@pytest.mark.parametrize("field", ["jars", "py_files", "files", "archives"])
def test_round_trip_form_shows_each_list_field_one_per_line(field: str) -> None:
    """Each list field has its own box in the form: set, read back, cleared."""
    cfg = every_field_config("livy")
    form = JobForm(cfg, profiles={})
    box = getattr(form, field)
    assert box.value.splitlines() == list(getattr(cfg.spec, field))
    box.value = ""
    got, _ = form.config()
    assert getattr(got.spec, field) == ()
    assert lost_fields(replace(cfg, spec=replace(cfg.spec, **{field: ()})), got, "cleared") == []
