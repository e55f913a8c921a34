"""dag_export without Airflow: rendering, golden files, hostile values, self-validation, files."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.dag_export import (
    _validate_source,
    export_dag_files,
    load_dag_config,
    read_dag_config,
    render_dag,
    render_setup_sheet,
    write_dag,
)
from hdiaks_widgets.errors import ConfigError, ExportError

GOLDEN = Path(__file__).parent / "golden"
RUFF = Path(sys.executable).parent / "ruff"
STYLES = ("taskflow", "livy-operator")

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


@pytest.mark.parametrize("style", STYLES)
def test_render_dag_matches_golden_file(style: str) -> None:
    source = render_dag(sample_config(), dag_id="spark_pi", style=style)  # type: ignore[arg-type]
    golden = GOLDEN / f"spark_pi_{style.replace('-', '_')}.py"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(source, encoding="utf-8")
    assert source == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("style", STYLES)
def test_render_dag_round_trips_job_config(style: str) -> None:
    cfg = sample_config()
    assert read_dag_config(render_dag(cfg, dag_id="x", style=style)) == cfg  # type: ignore[arg-type]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("style", STYLES)
def test_render_dag_carries_hostile_values_exactly(style: str, text: str) -> None:
    cfg = hostile_config(text)
    schedule = None if any(ord(ch) < 0x20 for ch in text) else text
    source = render_dag(cfg, dag_id="hostile", schedule=schedule, style=style)  # type: ignore[arg-type]
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
@pytest.mark.parametrize("style", STYLES)
def test_render_dag_passes_ruff_pyflakes_for_python_3_8(style: str, kind: str, tmp_path: Path) -> None:
    # Unused imports, undefined names, syntax errors; py38: Airflow hosts may run old Pythons.
    cfg = sample_config() if kind == "sample" else hostile_config("".join(str(p.values[0]) for p in HOSTILE))
    dag_file = tmp_path / "dag.py"
    dag_file.write_text(render_dag(cfg, dag_id="x", style=style), encoding="utf-8")  # type: ignore[arg-type]
    cmd = [str(RUFF), "check", "--isolated", "--no-cache", "--select", "F,E9", "--target-version", "py38"]
    proc = subprocess.run([*cmd, str(dag_file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_render_dag_never_imports_hdiaks_widgets() -> None:
    tree = ast.parse(render_dag(sample_config(), dag_id="x"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m.startswith("hdiaks")}
    assert {m.split(".")[0] for m in imported} <= {
        "__future__", "datetime", "hashlib", "logging", "re", "time", "collections", "urllib",
        "requests", "urllib3", "airflow", "msal",
    }  # fmt: skip


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
    paths = export_dag_files(sample_config(), tmp_path, dag_id="spark_pi", schedule=None, style="livy-operator")
    assert all(p.is_file() for p in paths)


def test_setup_sheet_lists_key_vault_names_and_backend_settings() -> None:
    sheet = render_setup_sheet(sample_config(), dag_id="spark_pi")
    for name in ("api-client-id", "api-secret", "tenant-id"):
        assert f"--name hdinsight-aks-variables-{name} --value '<{name}>'" in sheet
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


def test_setup_sheet_names_the_connection_secret_for_the_operator_style() -> None:
    sheet = render_setup_sheet(sample_config(), dag_id="x", style="livy-operator", conn_id="hdiaks_livy")
    assert "--name airflow-connections-hdiaks-livy" in sheet


def test_setup_sheet_connection_uri_sets_https_schema_for_the_livy_hook() -> None:
    sheet = render_setup_sheet(sample_config(), dag_id="x", style="livy-operator")
    assert "--value 'livy://msal@<cluster-fqdn>:443/https'" in sheet
