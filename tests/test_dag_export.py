"""dag_export without Airflow: rendering (thin and embedded), golden files, hostile values,
self-validation, the embedded modules, the setup sheet and the files."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dag_export import (
    export_dag_files,
    load_dag_config,
    read_dag_config,
    render_dag,
    render_setup_sheet,
    write_dag,
)
from hdiaks_widgets.dag_export.embed import EMBED_ROOT, module_sources
from hdiaks_widgets.dag_export.render import _module_constants, _validate_source
from hdiaks_widgets.errors import ConfigError, ExportError

GOLDEN = Path(__file__).parent / "golden"
RUFF = Path(sys.executable).parent / "ruff"
MODES = ("thin", "embedded")

HOSTILE = [
    pytest.param("it's \"quoted\"", id="quotes"),
    pytest.param('"""', id="triple-double"),
    pytest.param("'''", id="triple-single"),
    pytest.param("back\\slash\\", id="backslash"),
    pytest.param("line\nbreak\r\n", id="newlines"),
    pytest.param("{{ params.job_name }} {% raw %}", id="jinja"),
    pytest.param("${HOME} $(id) `id`", id="shell"),
    pytest.param("{}{0}%s", id="format"),
    pytest.param("ünïcødé ✓ 日本 \u2028\u2029 \U0001f680", id="unicode"),
    pytest.param("\x00\x1b[31m\x7f", id="control"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("x" * 10_000, id="10kB"),
    pytest.param('"); import os; os.system("id"); ("', id="injection"),
]


def sample_config() -> JobConfig:
    """The Microsoft sample's job (PROTOCOL.md §1) as a form would fill it."""
    return JobConfig(
        profile=ClusterProfile(
            name="prod-eastus2",
            flavour="hdinsight-aks",
            fqdn="demospark.63784884848.eastus2.hdinsightaks.net",
            tenant_id="00000000-0000-0000-0000-000000000000",
            secret_source="keyvault",
            vault_url="https://hdiaks-kv.vault.azure.net",
        ),
        spec=BatchSpec(
            file="abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar",
            class_name="org.apache.spark.examples.SparkPi",
            args=("10",),
            name="spark-pi",
            executor_memory="2g",
            conf={"spark.executor.instances": "2"},
        ),
    )


def hostile_config(text: str) -> JobConfig:
    return JobConfig(
        profile=ClusterProfile(name=text, flavour="hdinsight-aks", fqdn=text, tenant_id=text, scope=text),
        spec=BatchSpec(
            file=text, class_name=text, args=(text, "2"), name=text, queue=text, conf={text: text, "k": text}
        ),
    )


def render(cfg: JobConfig, mode: str, **options: object) -> str:
    return render_dag(cfg, embed=mode == "embedded", **options)  # type: ignore[arg-type]


def skeleton(source: str) -> str:
    """An embedded DAG with its module sources elided: what the golden file pins. The sources are
    the package's own files (checked verbatim by another test) and which modules they are changes
    with the package, so neither is pinned here."""
    head, rest = source.split("EMBEDDED_SOURCES = {\n", 1)
    _body, tail = rest.split("\n}\n", 1)
    head = re.sub(r"EMBED_PACKAGE = '[^']*'", "EMBED_PACKAGE = '<hash of the sources>'", head)
    return head + "EMBEDDED_SOURCES = {...}  # the operator's modules, verbatim; elided in this golden file\n" + tail


@pytest.mark.parametrize("mode", MODES)
def test_render_dag_matches_golden_file(mode: str) -> None:
    source = render(sample_config(), mode, dag_id="spark_pi")
    if mode == "embedded":
        source = skeleton(source)
    golden = GOLDEN / f"spark_pi_{mode}.py"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(source, encoding="utf-8")
    assert source == golden.read_text(encoding="utf-8")


def test_thin_dag_is_short() -> None:
    assert len(render_dag(sample_config(), dag_id="spark_pi").splitlines()) <= 85


@pytest.mark.parametrize("mode", MODES)
def test_render_dag_round_trips_job_config(mode: str) -> None:
    cfg = sample_config()
    assert read_dag_config(render(cfg, mode, dag_id="x")) == cfg


def test_livy_operator_style_is_refused_with_the_reason() -> None:
    # The provider-LivyOperator style was removed: it posted a second batch on every retry.
    with pytest.raises(ExportError, match="second batch on every retry"):
        render_dag(sample_config(), dag_id="x", style="livy-operator")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("mode", MODES)
def test_render_dag_carries_hostile_values_exactly(mode: str, text: str) -> None:
    cfg = hostile_config(text)
    schedule = None if any(ord(ch) < 0x20 for ch in text) else text
    source = render(cfg, mode, dag_id="hostile", schedule=schedule)
    compile(source, "dag.py", "exec")
    assert read_dag_config(source) == cfg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.text(st.characters(exclude_categories=())), min_size=6, max_size=6),
    args=st.lists(st.text(), max_size=4),
    conf=st.dictionaries(st.text(), st.text(), max_size=3),
    cores=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
    timeout=st.floats(allow_nan=False, allow_infinity=False),
)
def test_render_dag_property_any_text_round_trips(
    texts: list[str], args: list[str], conf: dict[str, str], cores: int | None, timeout: float
) -> None:
    cfg = JobConfig(
        profile=ClusterProfile(
            name=texts[0], fqdn=texts[1], url=texts[2], tenant_id=texts[3], connect_timeout=timeout
        ),
        spec=BatchSpec(file=texts[4], name=texts[5], args=tuple(args), conf=conf, driver_cores=cores),
    )
    source = render_dag(cfg, dag_id="prop")
    ast.parse(source)
    assert read_dag_config(source) == cfg


@pytest.mark.parametrize("kind", ["sample", "hostile"])
@pytest.mark.parametrize("mode", MODES)
def test_render_dag_passes_ruff_airflow_and_pyflakes_rules(mode: str, kind: str, tmp_path: Path) -> None:
    # ruff's Airflow rules (AIR: removed/moved names, explicit schedule), unused imports,
    # undefined names, syntax errors; py38: Airflow hosts may run old Pythons.
    cfg = sample_config() if kind == "sample" else hostile_config("".join(str(p.values[0]) for p in HOSTILE))
    dag_file = tmp_path / "dag.py"
    dag_file.write_text(render(cfg, mode, dag_id="x"), encoding="utf-8")
    cmd = [str(RUFF), "check", "--isolated", "--no-cache", "--select", "AIR,F,E9", "--target-version", "py38"]
    proc = subprocess.run([*cmd, str(dag_file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imported_modules(source: str) -> set[str]:
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return imported | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_thin_dag_imports_only_the_operator_module_of_the_package() -> None:
    imported = _imported_modules(render_dag(sample_config(), dag_id="x"))
    assert {m for m in imported if m.startswith("hdiaks")} == {"hdiaks_widgets.airflow.operator"}
    assert {m.split(".")[0] for m in imported} <= {"__future__", "datetime", "hdiaks_widgets", "airflow"}


def test_embedded_dag_never_imports_hdiaks_widgets() -> None:
    imported = _imported_modules(render_dag(sample_config(), dag_id="x", embed=True))
    assert not {m for m in imported if m.startswith("hdiaks")}
    assert {m.split(".")[0] for m in imported} <= {
        "__future__", "ast", "datetime", "importlib", "linecache", "sys", "airflow",
    }  # fmt: skip


def test_embedded_dag_carries_the_installed_modules_verbatim() -> None:
    constants = _module_constants(ast.parse(render_dag(sample_config(), dag_id="x", embed=True)))
    sources = constants["EMBEDDED_SOURCES"]
    for name, text in sources.items():
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin
        assert text == Path(spec.origin).read_text(encoding="utf-8"), name
    assert constants["DEFERRABLE"] is False
    assert re.fullmatch(r"hdiaks_embedded_[0-9a-f]{12}", constants["EMBED_PACKAGE"])


def test_embedded_module_closure_is_the_operator_and_its_imports_only() -> None:
    names = set(module_sources())
    assert {EMBED_ROOT, "hdiaks_widgets", "hdiaks_widgets.airflow", "hdiaks_widgets.airflow.trigger",
            "hdiaks_widgets.run", "hdiaks_widgets.livy", "hdiaks_widgets.wire"} <= names  # fmt: skip
    heavy = {"hdiaks_widgets.widgets", "hdiaks_widgets.tables", "hdiaks_widgets.dag_export", "hdiaks_widgets.sandbox"}
    assert not {n for n in names if any(n == h or n.startswith(h + ".") for h in heavy)}
    heavy_import = re.compile(r"^\s*(import|from) (pandas|ipywidgets)", re.M)
    assert not [n for n, text in module_sources().items() if heavy_import.search(text)]


def test_deferrable_option_reaches_the_dag() -> None:
    constants = _module_constants(ast.parse(render_dag(sample_config(), dag_id="x", deferrable=False)))
    assert constants["DEFERRABLE"] is False
    assert _module_constants(ast.parse(render_dag(sample_config(), dag_id="x")))["DEFERRABLE"] is True


def test_render_dag_reads_no_variable_at_module_level() -> None:
    tree = ast.parse(render_dag(sample_config(), dag_id="x"))
    top_level_calls = {
        n.func.id
        for stmt in tree.body
        if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef))
        for n in ast.walk(stmt)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert "get_variable" not in top_level_calls
    assert "Variable" not in ast.dump(ast.Module(body=[s for s in tree.body if isinstance(s, ast.Assign)]))


def test_render_dag_sets_schedule_and_catchup_explicitly() -> None:
    source = render_dag(sample_config(), dag_id="x", schedule="@daily")
    assert "SCHEDULE = '@daily'" in source
    assert "schedule=SCHEDULE," in source and "catchup=False," in source


def test_render_dag_rejects_bad_dag_id() -> None:
    with pytest.raises(ExportError, match="dag_id"):
        render_dag(sample_config(), dag_id="bad id/..")


def test_render_dag_rejects_unknown_style() -> None:
    with pytest.raises(ExportError, match="style"):
        render_dag(sample_config(), dag_id="x", style="bash")  # type: ignore[arg-type]


def test_render_dag_rejects_non_finite_number() -> None:
    cfg = JobConfig(profile=ClusterProfile(read_timeout=math.inf), spec=sample_config().spec)
    with pytest.raises(ExportError, match="finite"):
        render_dag(cfg, dag_id="x")


def test_render_dag_rejects_value_that_is_not_data() -> None:
    cfg = JobConfig(spec=BatchSpec(file="/x.py", conf={"k": object()}))  # type: ignore[dict-item]
    with pytest.raises(ExportError, match="type object"):
        render_dag(cfg, dag_id="x")


def test_validate_source_rejects_tampered_constant() -> None:
    cfg = sample_config()
    source = render_dag(cfg, dag_id="x").replace("'spark-pi'", "'other'", 1)
    with pytest.raises(ExportError, match="JOB_CONFIG"):
        _validate_source(source, {"JOB_CONFIG": cfg.to_dict()})


def test_validate_source_rejects_code_that_does_not_compile() -> None:
    with pytest.raises(ExportError, match="compile"):
        _validate_source("JOB_CONFIG = {\n", {})


def test_validate_source_rejects_import_of_the_package() -> None:
    with pytest.raises(ExportError, match="must not import"):
        _validate_source("import hdiaks_widgets.config\n", {})
    with pytest.raises(ExportError, match="must not import"):
        _validate_source("from hdiaks_widgets.airflow.operator import SparkBatchOperator\n", {}, embedded=True)
    _validate_source("from hdiaks_widgets.airflow.operator import SparkBatchOperator\n", {})


def test_read_dag_config_rejects_file_without_config() -> None:
    with pytest.raises(ExportError, match="no JOB_CONFIG"):
        read_dag_config("x = 1\n")


def test_load_dag_config_reads_written_file(tmp_path: Path) -> None:
    cfg = sample_config()
    dag_file = write_dag(cfg, tmp_path, dag_id="spark_pi")[0]
    assert load_dag_config(dag_file) == cfg


def test_load_dag_config_missing_file_raises_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        load_dag_config(tmp_path / "nope.py")


def test_write_dag_writes_dag_trigger_conf_and_setup_sheet(tmp_path: Path) -> None:
    paths = write_dag(sample_config(), tmp_path, dag_id="spark.pi")
    assert [p.name for p in paths] == ["spark_pi.py", "spark_pi.trigger-conf.json", "spark_pi.setup.md"]
    assert json.loads(paths[1].read_text()) == sample_config().to_trigger_conf()


def test_export_dag_files_validates_the_job_first(tmp_path: Path) -> None:
    cfg = JobConfig(profile=ClusterProfile(flavour="hdinsight-aks", fqdn="https://x"), spec=BatchSpec())
    with pytest.raises(ConfigError):
        export_dag_files(cfg, tmp_path, dag_id="x")
    assert not list(tmp_path.iterdir())


def test_export_dag_files_returns_the_written_paths(tmp_path: Path) -> None:
    paths = export_dag_files(sample_config(), tmp_path, dag_id="spark_pi", schedule=None, embed=True)
    assert all(p.is_file() for p in paths)
    assert "EMBEDDED_SOURCES" in paths[0].read_text(encoding="utf-8")
    assert "cannot import a class that lives only in a DAG file" in paths[2].read_text(encoding="utf-8")


def test_setup_sheet_lists_key_vault_names_and_backend_settings() -> None:
    sheet = render_setup_sheet(sample_config(), dag_id="spark_pi")
    for name in ("api-client-id", "api-secret"):
        assert f"--name hdinsight-aks-variables-{name} --value '<{name}>'" in sheet
    # The profile names its tenant: the Variable overrides it but need not be set.
    assert "| `tenant-id` | `hdinsight-aks-variables-tenant-id` | no |" in sheet
    assert "--vault-name hdiaks-kv" in sheet
    assert (
        "AIRFLOW__SECRETS__BACKEND=airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend"
        in sheet
    )
    kwargs = json.loads(sheet.split("AIRFLOW__SECRETS__BACKEND_KWARGS='")[1].split("'\n")[0])
    assert kwargs == {
        "connections_prefix": "airflow-connections",
        "variables_prefix": "hdinsight-aks-variables",
        "vault_url": "https://hdiaks-kv.vault.azure.net",
    }


def test_setup_sheet_documents_reattach_clear_and_kill_while_deferred() -> None:
    sheet = render_setup_sheet(sample_config(), dag_id="spark_pi")
    assert "hdiaks-widgets[airflow]" in sheet and "airflow triggerer" in sheet
    assert "**Clearing a task runs the job again**" in sheet
    assert "reattaches instead of submitting a second one" in sheet
    assert "Airflow 3.3+" in sheet and "3.0-3.2" in sheet


def test_setup_sheet_of_an_embedded_dag_says_it_does_not_defer() -> None:
    sheet = render_setup_sheet(sample_config(), dag_id="x", embed=True)
    assert "does not defer" in sheet and "hdiaks-widgets[airflow]" not in sheet


def test_cli_export_dag_embed_writes_a_self_contained_dag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hdiaks_widgets.cli import main

    job = tmp_path / "job.json"
    sample_config().save(job)
    args = ["export-dag", "--config", str(job), "--out", str(tmp_path / "dags")]
    assert main([*args, "--dag-id", "cli_pi", "--embed"]) == 0
    source = (tmp_path / "dags" / "cli_pi.py").read_text(encoding="utf-8")
    assert "EMBEDDED_SOURCES" in source and "DEFERRABLE = False" in source
    assert read_dag_config(source) == sample_config()
    assert main([*args, "--dag-id", "thin_pi"]) == 0
    assert "EMBEDDED_SOURCES" not in (tmp_path / "dags" / "thin_pi.py").read_text(encoding="utf-8")
    capsys.readouterr()


# -- refusing an invalid job and a schedule Airflow would refuse ----------------------------------

from hdiaks_widgets.dag_export.render import dag_id_problem, schedule_problem  # noqa: E402 - appended section


@pytest.mark.parametrize(
    "schedule",
    [None, "@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly",
     "0 0 * * *", "30 2 * * *", "*/15 * * * *", "0 9-17 * * MON-FRI", "0 0 1,15 * *", "0 0 * JAN sun", "5 4 * * 7",
     # days some month lacks, but not every month named: they fire (Feb 29 in leap years; Monday
     # or the 31st when both day fields are given, as cron and croniter read them; August has 31)
     "0 0 29 2 *", "0 0 31 2 1", "0 0 30,31 2 */2", "0 0 31 */2 *", "0 0 31 4/2 *", "0 0 */31 2 *", "0 0 30 1-2 *"],
)
def test_schedule_problem_accepts_cron_and_presets(schedule: str | None) -> None:
    assert schedule_problem(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "says"),
    [("@nightly", "not a preset"), ("daily", "five fields"), ("0 0 * *", "five fields"),
     ("0 0 * * * *", "five fields"), ("60 * * * *", "minute"), ("0 24 * * *", "hour"), ("0 0 0 * *", "day of month"),
     ("0 0 * 13 *", "month"), ("0 0 * * 8", "day of week"), ("*/0 * * * *", "minute"), ("5-1 * * * *", "minute"),
     ("0 0 * * FOO", "day of week"), ("1h", "five fields"), ("", "five fields"), ("@daily\nrm -rf /", "not a preset")],
)
def test_schedule_problem_names_what_airflow_would_refuse(schedule: str, says: str) -> None:
    problem = schedule_problem(schedule)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    ("schedule", "says"),
    [("0 0 31 2 *", "(February has at most 29 days)"), ("0 0 30 2 *", "(February has at most 29 days)"),
     ("0 0 30-31 FEB *", "(February has at most 29 days)"), ("0 0 31 2 *,1", "(February has at most 29 days)"),
     ("0 0 31 4,6 *", "(April has at most 30 days; June has at most 30 days)"),
     ("15 3 31 2-4/2 *", "(February has at most 29 days; April has at most 30 days)")],
)
def test_schedule_problem_refuses_a_day_no_named_month_has(schedule: str, says: str) -> None:
    # croniter (Airflow's cron parser) fails such a DAG with "failed to find next date".
    expected = f"{schedule!r} never fires {says}; e.g. @daily or '30 2 * * *' (02:30 every day)"
    assert schedule_problem(schedule) == expected


@pytest.mark.parametrize(
    ("dag_id", "says"),
    [("../evil", "'../evil' may hold only letters, digits, '_', '-' and '.'"),
     ("a b", "'a b' may hold only letters, digits"), ("", "is empty; use letters, digits"),
     ("x\n", "'x\\n' may hold only letters"), ("spark..pi", "must not contain '..'"),
     ("x" * 251, "is 251 characters; at most 250"), ("caf\u00e9", "may hold only letters, digits")],
    ids=["traversal", "space", "empty", "trailing-newline", "double-dot", "long", "unicode"],
)
def test_export_dag_files_refuses_a_dag_id_airflow_would_refuse_naming_dag_id(
    tmp_path: Path, dag_id: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        export_dag_files(sample_config(), tmp_path / "dags", dag_id=dag_id)
    assert isinstance(info.value, ExportError) and info.value.fields == ("dag_id",)
    assert says in str(info.value) and "e.g. spark_pi" in str(info.value)
    assert not (tmp_path / "dags").exists()


def test_dag_id_problem_never_repeats_more_than_about_40_characters_of_the_value() -> None:
    problem = dag_id_problem("/" + "A" * 200)
    assert problem is not None and "A" * 40 not in problem and "\u2026" in problem


@pytest.mark.parametrize("good", ["spark_pi", "a", "x" * 250, "team.nightly-etl_v2", "-x", "."])
def test_dag_id_problem_accepts_what_airflow_accepts(good: str) -> None:
    assert dag_id_problem(good) is None


def test_export_dag_files_refuses_an_out_dir_that_is_a_file_naming_out_dir(tmp_path: Path) -> None:
    target = tmp_path / "dags.py"
    target.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        export_dag_files(sample_config(), target, dag_id="x")
    assert str(info.value) == f"out_dir: {str(target)!r} is a file; give a folder"
    assert target.read_text(encoding="utf-8") == "keep me\n" and sorted(tmp_path.iterdir()) == [target]


def test_export_dag_files_under_a_file_names_the_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x", encoding="utf-8")
    with pytest.raises(ExportError, match="'.*blocker' is a file; give a folder"):
        export_dag_files(sample_config(), tmp_path / "blocker" / "dags", dag_id="x")


def test_export_dag_files_refuses_a_bad_schedule_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="schedule: '0 0 \\* \\*'.*e.g. @daily") as info:
        export_dag_files(sample_config(), tmp_path / "dags", dag_id="x", schedule="0 0 * *")
    assert isinstance(info.value, ConfigError) and info.value.fields == ("schedule",)
    assert not (tmp_path / "dags").exists()
    assert len(export_dag_files(sample_config(), tmp_path / "dags", dag_id="x", schedule="30 2 * * *")) == 3


def test_export_dag_files_refuses_an_invalid_job_naming_the_fields(tmp_path: Path) -> None:
    cfg = JobConfig(profile=sample_config().profile, spec=BatchSpec(file="", executor_memory="2"))
    with pytest.raises(ConfigError) as info:
        export_dag_files(cfg, tmp_path / "dags", dag_id="x")
    assert set(info.value.fields) == {"spec.file", "spec.executor_memory"}
    assert not (tmp_path / "dags").exists()


def test_render_dag_validate_refuses_an_invalid_job_and_schedule() -> None:
    bad = JobConfig(profile=sample_config().profile, spec=BatchSpec(file="", args=(["a"],)))  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        render_dag(bad, dag_id="x", validate=True)
    assert set(info.value.fields) == {"spec.file", "spec.args[0]"}
    with pytest.raises(ExportError, match="schedule"):
        render_dag(sample_config(), dag_id="x", schedule="@nightly", validate=True)
    assert "SCHEDULE = '@daily'" in render_dag(sample_config(), dag_id="x", schedule="@daily", validate=True)
