"""The notebook form speaks every Livy dialect: each flavour's own fields, sign-in choices and
inline checks (the profile's own validators), form <-> JobConfig round trips for every flavour,
and UUID / int32 batch ids through the whole UI on the sandbox's Fabric and Synapse paths.

Headless widgets (set ``.value``, ``.click()``); the sandbox tests use the session sandbox over
real sockets with real Spark, one job at a time; one test switches the Service list in JupyterLab
in headless Chromium (the lab server of ``tests/test_browser.py``).
"""

from __future__ import annotations

import html
import re
import time
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SandboxHandle
from test_browser import ARTIFACTS, notebook_page
from test_browser import lab as lab  # noqa: F401 - the fixture "lab" (JupyterLab on notebook 01)

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.models import AppInfo, Batch, BatchState
from hdiaks_widgets.tables import BATCH_COLUMNS, batch_table, concat_batch_tables
from hdiaks_widgets.widgets import JobApp, JobForm, app

WS = "0b6f2c7e-8d3a-4c2e-9a43-1f0e6a7b8c9d"
LH = "5e8d1f4a-2b3c-4d5e-8f9a-0b1c2d3e4f5a"
ENV = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-4333-8444-555555555555"
PORTAL = f"https://app.fabric.microsoft.com/groups/{WS}/lakehouses/{LH}"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SPEC = BatchSpec(file="abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar",
                 class_name="org.apache.spark.examples.SparkPi", args=("10",), name="spark-pi")  # fmt: skip


def _messages(form: JobForm) -> dict[str, str]:
    return {key: widget.value for key, widget in form.messages.items() if widget.value}


def _shown(form: JobForm) -> set[str]:
    return {name for name, box in form._boxes.items() if box.layout.display != "none"}


def _form(profile: ClusterProfile | None = None) -> JobForm:
    return JobForm(JobConfig(profile=profile, spec=SPEC) if profile else None, profiles={})


# -- round trips: every profile field of every flavour -------------------------------------------

ROUND_TRIPS = {
    "sandbox": ClusterProfile(name="local", flavour="sandbox", url="http://127.0.0.1:8998"),
    "livy-basic": ClusterProfile(
        name="emr", flavour="livy", url="https://livy.example.com:8998", livy_path="/gateway/livy", auth="basic",
        username="hadoop", secret_source="keyvault", vault_url="https://kv.vault.azure.net",
        variables_prefix="emr-vars", verify=False, connect_timeout=3.0, read_timeout=30.0,
    ),
    "livy-device-code": ClusterProfile(
        name="k8s", flavour="livy", url="https://livy.example.com", auth="device-code", tenant_id=TENANT,
        client_id=CLIENT, scope="https://livy.example.com/.default", authority_host="https://login.microsoftonline.us",
    ),
    "hdinsight-aks": ClusterProfile(
        name="aks", flavour="hdinsight-aks", fqdn="c.pool.0b130652e15b417e885a050c9a3024a2.eastus.hdinsightaks.net",
        livy_path="/p/livy", auth="service-principal", tenant_id=TENANT, client_id=CLIENT,
    ),
    "hdinsight-basic": ClusterProfile(name="hdi", flavour="hdinsight", fqdn="mycluster", username="admin"),
    "hdinsight-entra": ClusterProfile(
        name="hdi-entra", flavour="hdinsight", fqdn="mycluster.azurehdinsight.net", auth="entra", tenant_id=TENANT,
        url="http://127.0.0.1:8998", scope="https://mycluster.clusteraccess.azurehdinsight.net/.default",
    ),
    "fabric": ClusterProfile(
        name="fab", flavour="fabric", workspace_id=WS, lakehouse_id=LH, environment_id=ENV, api_version="2024-07-30",
        tenant_id=TENANT, client_id=CLIENT, scope="https://api.fabric.microsoft.com/.default",
    ),
    "fabric-device-code": ClusterProfile(
        name="fab-me", flavour="fabric", workspace_id=WS, lakehouse_id=LH, auth="device-code", tenant_id=TENANT,
        client_id=CLIENT,
    ),
    "fabric-sandbox": ClusterProfile(name="fab-local", flavour="fabric", workspace_id=WS, lakehouse_id=LH,
                                     auth="none", url="http://127.0.0.1:8998"),  # fmt: skip
    "synapse": ClusterProfile(
        name="syn", flavour="synapse", workspace="myws", pool="sparkpool01", api_version="2020-12-01",
        auth="service-principal", url="https://127.0.0.1:8443",
    ),
}  # fmt: skip


@pytest.mark.parametrize("profile", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_form_round_trips_every_field_of_each_flavour(profile: ClusterProfile) -> None:
    assert profile.problems() == [], profile.problems()  # each case is a profile a user could have
    form = _form(profile)
    cfg, problems = form.config()
    assert problems == []
    assert cfg.profile == profile and cfg.spec == SPEC
    again = JobForm(cfg, profiles={})  # and back once more: nothing drifts
    assert again.config()[0] == cfg


def test_form_round_trip_cases_set_every_profile_field() -> None:
    """Every ClusterProfile field differs from its default in at least one round trip above."""
    default = ClusterProfile()
    unset = [f.name for f in fields(ClusterProfile)
             if all(getattr(p, f.name) == getattr(default, f.name) for p in ROUND_TRIPS.values())]  # fmt: skip
    assert unset == []


# -- each flavour shows its own fields -----------------------------------------------------------

SHOWN = {
    "sandbox": {"url"},
    "livy": {"url"},
    "hdinsight-aks": {"fqdn", "tenant_id", "client_id", "scope"},
    "hdinsight": {"fqdn", "url", "username"},
    "fabric": {"workspace_id", "lakehouse_id", "environment_id", "api_version", "url", "tenant_id", "client_id",
               "scope"},
    "synapse": {"workspace", "pool", "api_version", "url", "tenant_id", "client_id", "scope"},
}  # fmt: skip


@pytest.mark.parametrize("flavour", list(SHOWN))
def test_form_flavour_shows_exactly_its_fields(flavour: str) -> None:
    form = _form()
    form.flavour.value = flavour
    assert _shown(form) == SHOWN[flavour]
    assert form.config()[0].profile.flavour == flavour


AUTH_CHOICES = {
    "sandbox": ["none", "basic", "service-principal", "device-code"],
    "livy": ["none", "basic", "service-principal", "device-code"],
    "hdinsight-aks": ["service-principal", "device-code"],
    "hdinsight": ["basic", "entra", "none"],
    "fabric": ["service-principal", "device-code", "none"],
    "synapse": ["service-principal", "device-code", "none"],
}


@pytest.mark.parametrize("flavour", list(AUTH_CHOICES))
def test_form_flavour_offers_its_sign_in_choices(flavour: str) -> None:
    form = _form()
    form.flavour.value = flavour
    assert [value for _label, value in form.auth.options] == AUTH_CHOICES[flavour]
    assert form.config()[0].profile.auth is None  # the flavour's default, not written out


@pytest.mark.parametrize(("method", "shown"), [
    ("basic", {"username"}), ("entra", {"tenant_id", "client_id", "scope"}), ("none", set()),
])  # fmt: skip
def test_form_hdinsight_sign_in_shows_its_fields(method: str, shown: set[str]) -> None:
    form = _form()
    form.flavour.value = "hdinsight"
    form.auth.value = method
    assert _shown(form) - {"fqdn", "url"} == shown
    assert form.config()[0].profile.auth == (None if method == "basic" else method)  # basic: the default


def test_form_hdinsight_entra_needs_a_tenant_said_under_its_field() -> None:
    form = _form()
    form.flavour.value = "hdinsight"
    form.fqdn.value = "mycluster"
    form.auth.value = "entra"
    shown = _messages(form)
    assert set(shown) == {"profile.tenant_id"} and "tenant" in shown["profile.tenant_id"]
    form.tenant_id.value = TENANT
    assert _messages(form) == {} and form.valid


def test_form_other_flavours_values_are_kept_while_hidden() -> None:
    form = _form()
    form.flavour.value = "fabric"
    form.workspace_id.value, form.lakehouse_id.value, form.api_version.value = WS, LH, "2024-07-30"
    form.flavour.value = "synapse"
    assert (form.workspace.value, form.pool.value, form.api_version.value) == ("", "", "")
    form.workspace.value, form.pool.value = "myws", "pool1"
    synapse = form.config()[0].profile
    assert (synapse.workspace_id, synapse.lakehouse_id, synapse.api_version) == (None, None, None)
    form.flavour.value = "sandbox"
    assert form.url.value == "http://127.0.0.1:8998"  # the sandbox's URL came back
    form.flavour.value = "fabric"
    fabric = form.config()[0].profile
    assert (fabric.workspace_id, fabric.lakehouse_id, fabric.api_version) == (WS, LH, "2024-07-30")
    assert (fabric.workspace, fabric.pool, fabric.url) == (None, None, None)
    form.flavour.value = "synapse"
    assert (form.workspace.value, form.pool.value) == ("myws", "pool1")


def test_form_empty_scope_box_means_the_flavours_scope() -> None:
    form = _form()
    form.flavour.value = "synapse"
    form.workspace.value, form.pool.value = "myws", "pool1"
    assert form.config()[0].profile.scope is None
    assert form.config()[0].profile.token_scope == "https://dev.azuresynapse.net/.default"
    assert "https://dev.azuresynapse.net/.default" in form.scope.placeholder
    form.scope.value = "https://dev.azuresynapse.net/.default"
    assert form.config()[0].profile.scope == "https://dev.azuresynapse.net/.default"
    form.flavour.value = "fabric"  # Synapse's scope stays Synapse's
    assert form.scope.value == "" and form.config()[0].profile.scope is None
    form.scope.value = "  "
    assert form.config()[0].profile.scope is None


def test_form_scope_of_another_service_is_said_under_scope() -> None:
    form = _form(ROUND_TRIPS["fabric"])
    form.scope.value = "https://dev.azuresynapse.net/.default"
    shown = _messages(form)
    assert set(shown) == {"profile.scope"} and "Synapse" in shown["profile.scope"]


# -- inline checks: the profile's own messages, under the field ----------------------------------

CHECKS = [
    ("fabric", "workspace_id", "not-a-guid", "is not a GUID"),
    ("fabric", "workspace_id", PORTAL, f"set workspace_id to {WS}"),
    ("fabric", "lakehouse_id", PORTAL, f"set lakehouse_id to {LH}"),
    ("fabric", "environment_id", "{" + ENV + "}", f"use {ENV}"),
    ("fabric", "api_version", "v1", "must be a date like 2023-12-01"),
    ("fabric", "url", f"https://api.fabric.microsoft.com/v1/workspaces/{WS}/lakehouses/{LH}/livyApi/versions/"
                      "2023-12-01", f"set workspace_id to {WS}"),
    ("synapse", "pool", "my-pool", "does not take in a pool name"),
    ("synapse", "pool", "p" * 16, "16 characters"),
    ("synapse", "pool", "1pool", "does not start with a letter"),
    ("synapse", "workspace", "https://myws.dev.azuresynapse.net", "set workspace to myws"),
    ("synapse", "workspace", "myws-ondemand", "-ondemand"),
    ("synapse", "api_version", "2020-13-45", "must be a date like 2020-12-01"),
    ("hdinsight", "url", "http://example.com", "https://"),
    ("hdinsight", "url", "http://127.0.0.1:8998/livy", "no path"),
    ("hdinsight", "fqdn", "https://mycluster.azurehdinsight.net/", "scheme"),
    ("hdinsight-aks", "fqdn", "", "is required"),
]  # fmt: skip


@pytest.mark.parametrize(("flavour", "field", "value", "said"), CHECKS,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CHECKS)])  # fmt: skip
def test_form_checks_each_field_as_typed(flavour: str, field: str, value: str, said: str) -> None:
    good = {"fabric": ROUND_TRIPS["fabric"], "synapse": ROUND_TRIPS["synapse"],
            "hdinsight": ROUND_TRIPS["hdinsight-entra"],
            "hdinsight-aks": ROUND_TRIPS["hdinsight-aks"]}[flavour]  # fmt: skip
    ui = app(JobConfig(profile=good, spec=SPEC), client_factory=lambda p: None, profiles={})  # type: ignore[arg-type,return-value]
    form = ui.form
    assert form.valid and not ui.submit_button.disabled
    getattr(form, field).value = value
    shown = _messages(form)
    key = f"profile.{field}"
    assert key in shown and said in shown[key], shown
    assert not form.valid and ui.submit_button.disabled
    # the very sentence the profile (and so the CLI) gives, not a copy of it
    cfg = form.config()[0]
    assert any(html.escape(p.message) in shown[p.field] for p in cfg.profile.problems() if p.field == key)


HOSTILE = {"nul": "a\x00b", "script": "<script>alert(1)</script>", "newline": "a\nb", "long": "x" * 5000,
           "emoji": "😀", "spaces": "   "}  # fmt: skip
FIELDS = [("fabric", f) for f in ("workspace_id", "lakehouse_id", "environment_id", "api_version", "url", "scope",
                                  "tenant_id", "client_id")]  # fmt: skip
FIELDS += [("synapse", f) for f in ("workspace", "pool")] + [("hdinsight", f) for f in ("fqdn", "url", "username")]


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize(("flavour", "field"), FIELDS, ids=[f"{a}-{b}" for a, b in FIELDS])
def test_form_hostile_service_field_gives_message_not_exception(flavour: str, field: str, value: str) -> None:
    form = _form({"fabric": ROUND_TRIPS["fabric"], "synapse": ROUND_TRIPS["synapse"],
                  "hdinsight": ROUND_TRIPS["hdinsight-basic"]}[flavour])  # fmt: skip
    getattr(form, field).value = value
    shown = _messages(form)
    assert all("<script>" not in text for text in shown.values())
    assert bool(shown) == bool(form.problems)


def test_form_profile_list_switch_shows_the_saved_flavour() -> None:
    form = JobForm(profiles={"fab": ROUND_TRIPS["fabric"], "syn": ROUND_TRIPS["synapse"]})
    form.profile.value = "fab"
    assert form.flavour.value == "fabric" and form.workspace_id.value == WS and _shown(form) == SHOWN["fabric"]
    form.profile.value = "syn"
    assert form.flavour.value == "synapse" and form.pool.value == "sparkpool01"
    assert form.config()[0].profile == ROUND_TRIPS["synapse"]


def test_form_save_and_load_keep_a_fabric_profile(tmp_path: Path) -> None:
    form = _form(ROUND_TRIPS["fabric"])
    form.config_path.value = str(tmp_path / "job.json")
    form.save_button.click()
    other = _form()
    other.config_path.value = str(tmp_path / "job.json")
    other.load_button.click()
    assert other.flavour.value == "fabric" and other.config()[0] == form.config()[0]


# -- tables: several services in one table -------------------------------------------------------


def _batch(ident: int | str, state: str = "success") -> Batch:
    return Batch(id=ident, state=BatchState(state), name=f"job-{ident}", app_info=AppInfo())


def test_concat_batch_tables_labels_each_row_with_its_target() -> None:
    fabric_id = str(uuid.uuid4())
    joined = concat_batch_tables({
        "sandbox": batch_table([_batch(0), _batch(1, "dead")]),
        "fabric": batch_table([_batch(fabric_id)]),
        "synapse": batch_table([_batch(0)]),  # the same id on another service stays its own row
    })  # fmt: skip
    assert list(joined.columns) == ["target", *BATCH_COLUMNS]
    assert joined[["target", "id", "state"]].values.tolist() == [
        ["sandbox", "0", "success"], ["sandbox", "1", "dead"], ["fabric", fabric_id, "success"],
        ["synapse", "0", "success"],
    ]  # fmt: skip


def test_concat_batch_tables_of_nothing_has_the_columns() -> None:
    joined = concat_batch_tables({"fabric": batch_table([])})
    assert joined.empty and list(joined.columns) == ["target", *BATCH_COLUMNS]


# -- real sandbox, real Spark: ids as each service gives them, through the UI ----------------------


def _fill(form: JobForm, flavour: str, sandbox: SandboxHandle, **values: str) -> None:
    """What a user does: pick the service, type its fields, point it at the sandbox, no sign-in."""
    form.flavour.value = flavour
    for name, value in values.items():
        getattr(form, name).value = value
    form.url.value = sandbox.url
    form.auth.value = "none"


def _ui(sandbox: SandboxHandle, tmp_path: Path, file: str, args: tuple[str, ...]) -> JobApp:
    cfg = JobConfig(profile=ClusterProfile(name="sandbox", flavour="sandbox", url=sandbox.url),
                    spec=BatchSpec(file=file, class_name=sandbox.spark_pi_class if file.endswith(".jar") else None,
                                   args=args, name="ui-dialect"))  # fmt: skip
    return app(cfg, profiles={}, monitor_interval=0.2, max_interval=1.0, download_dir=tmp_path)


def _until_running(ui: JobApp, bid: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while ui.snapshots[bid].state_label != "running":
        assert time.monotonic() < deadline and not ui.snapshots[bid].finished, ui.snapshots[bid]
        time.sleep(0.2)


def _check_ui_follows(ui: JobApp, bid: str, tmp_path: Path) -> None:
    """Selector, status badge, batch table, log view and download all carry the id as given."""
    assert bid in [value for _label, value in ui.batch_selector.options] and ui.batch_selector.value == bid
    snap = ui.wait(timeout=300)
    assert snap is not None and snap.batch_id == bid and snap.state_label == "success", snap
    assert f"<b>Batch {bid}</b>" in ui.status.value and 'data-state="success"' in ui.status.value
    table = ui.batches_table()
    assert table.loc[table["id"] == bid, "state"].tolist() == ["success"]
    assert bid in ui.batches.value
    log = ui.log_table(bid)
    assert log["message"].str.contains("Pi is roughly", regex=False).any()
    assert "Pi is roughly" in ui.log.value
    ui.download_button.click()
    assert "Pi is roughly" in (tmp_path / f"batch-{bid}.log").read_text(encoding="utf-8")


@pytest.mark.spark
def test_app_fabric_uuid_id_through_the_whole_ui(sandbox: SandboxHandle, tmp_path: Path) -> None:
    ui = _ui(sandbox, tmp_path, sandbox.examples["jar"], ("2",))
    try:
        _fill(ui.form, "fabric", sandbox, workspace_id=str(uuid.uuid4()), lakehouse_id=str(uuid.uuid4()))
        assert ui.form.valid, _messages(ui.form)
        batch = ui.submit()
        assert batch is not None, ui.message.value
        bid = str(batch.id)
        assert UUID_RE.match(bid), bid  # Fabric's ids are UUIDs
        assert f"Submitted batch {bid}" in ui.message.value
        _check_ui_follows(ui, bid, tmp_path)
        assert ui.targets[bid] == "fabric"
    finally:
        ui.close()


@pytest.mark.spark
def test_app_synapse_int_id_through_the_whole_ui(sandbox: SandboxHandle, tmp_path: Path) -> None:
    ui = _ui(sandbox, tmp_path, sandbox.examples["jar"], ("2",))
    try:
        _fill(ui.form, "synapse", sandbox, workspace="sandboxws", pool=f"p{uuid.uuid4().hex[:10]}")
        assert ui.form.valid, _messages(ui.form)
        batch = ui.submit()
        assert batch is not None, ui.message.value
        bid = str(batch.id)
        assert bid.isdigit(), bid  # Synapse's ids are int32 (sparkJob.json), shown as the service gives them
        _check_ui_follows(ui, bid, tmp_path)
        assert ui.targets[bid] == "synapse"
    finally:
        ui.close()


@pytest.mark.spark
@pytest.mark.parametrize("flavour", ["fabric", "synapse"])
def test_app_kill_stops_a_batch_by_its_service_id(sandbox: SandboxHandle, tmp_path: Path, flavour: str) -> None:
    ui = _ui(sandbox, tmp_path, sandbox.examples["sleep_py"], ("120",))
    try:
        if flavour == "fabric":
            _fill(ui.form, "fabric", sandbox, workspace_id=str(uuid.uuid4()), lakehouse_id=str(uuid.uuid4()))
        else:
            _fill(ui.form, "synapse", sandbox, workspace="sandboxws", pool=f"p{uuid.uuid4().hex[:10]}")
        batch = ui.submit()
        assert batch is not None, ui.message.value
        bid = str(batch.id)
        _until_running(ui, bid)
        assert not ui.kill_button.disabled
        ui.kill_button.click()
        assert bid in ui.kill_question.value
        ui.kill_yes.click()  # the kill request runs off the kernel thread
        assert ui.settle()
        assert f"Kill requested for batch {bid}." in ui.message.value
        snap = ui.wait(timeout=120)
        assert snap is not None and snap.state_label == "killed", snap
        assert ui.kill_button.disabled
    finally:
        ui.close()


def test_app_batch_table_names_each_batchs_target_once_there_are_two() -> None:
    class Fake:
        def __init__(self, ident: str) -> None:
            self.ident = ident
            self.name: str | None = None

        def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch:
            self.name = spec.name
            return Batch(id=self.ident, state=BatchState.STARTING, name=spec.name)

        def get_batch(self, batch_id: int | str) -> Batch:
            return Batch(id=batch_id, state=BatchState.SUCCESS, name=self.name)

        def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> Any:
            from hdiaks_widgets.models import LogPage

            return LogPage(id=str(batch_id), start=0, total=0, lines=())

        def list_batches(self, *, start: int = 0, size: int = 100) -> Any:
            raise AssertionError("not listed")

        def kill_batch(self, batch_id: int | str) -> None:
            return None

        def find_batch(self, name: str) -> Batch | None:
            return None

    fabric_id = str(uuid.uuid4())
    clients = {"sandbox": Fake("7"), "fabric": Fake(fabric_id)}
    ui = app(client_factory=lambda profile: clients[profile.flavour], profiles={}, monitor_interval=0.01)  # type: ignore[arg-type,return-value]
    try:
        assert ui.submit() is not None
        ui.wait(timeout=30)
        assert "<th>target</th>" not in ui.batches.value  # one service: no target column
        ui.form.flavour.value = "fabric"
        ui.form.workspace_id.value, ui.form.lakehouse_id.value = WS, LH
        ui.form.url.value, ui.form.auth.value = "http://127.0.0.1:8998", "none"
        assert ui.submit() is not None
        ui.wait(timeout=30)
        table = ui.batches_table(by_target=True)
        assert sorted(table[["target", "id"]].values.tolist()) == [["fabric", fabric_id], ["sandbox", "7"]]
        assert "<th>target</th>" in ui.batches.value
        assert isinstance(ui.batches_table(), pd.DataFrame) and "target" not in ui.batches_table().columns
    finally:
        ui.close()


# -- a real browser: JupyterLab in headless Chromium (the lab server of tests/test_browser.py) -----


@pytest.mark.browser
def test_browser_service_switch_shows_its_fields_and_checks_them(lab: str) -> None:
    """In JupyterLab: pick Microsoft Fabric, see only its fields, get the profile's message under
    the field as you type (a bad GUID, a pasted portal address), switch back and find the URL kept."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-service-switch.png"
    with notebook_page(f"{lab}/lab/tree/01_submit_job.ipynb", height=2200) as page:
        page.get_by_text("Nothing submitted yet").first.wait_for(timeout=180_000)
        submit = page.locator("button.hdiaks-submit")
        expect(submit).to_be_enabled(timeout=60_000)
        url = page.locator(".hdiaks-field-url input")
        sandbox_url = url.input_value()

        page.locator(".hdiaks-flavour select").select_option(label="Microsoft Fabric")
        workspace = page.locator(".hdiaks-field-workspace-id")
        expect(workspace.locator("input")).to_be_visible()
        expect(page.locator(".hdiaks-field-lakehouse-id input")).to_be_visible()
        expect(page.locator(".hdiaks-field-pool")).to_be_hidden()
        expect(page.locator(".hdiaks-field-fqdn")).to_be_hidden()
        expect(url).to_have_value("")  # Fabric's own origin box, empty: the real service
        expect(submit).to_be_disabled()

        workspace.locator("input").fill("not-a-guid")
        expect(workspace.locator(".hdiaks-msg")).to_contain_text("is not a GUID")
        workspace.locator("input").fill(PORTAL)
        expect(workspace.locator(".hdiaks-msg")).to_contain_text(f"set workspace_id to {WS}")
        workspace.locator("input").fill(WS)
        page.locator(".hdiaks-field-lakehouse-id input").fill(LH)
        expect(workspace.locator(".hdiaks-msg")).to_have_count(0)
        page.locator(".hdiaks-field-workspace-id").scroll_into_view_if_needed()
        page.screenshot(path=str(shot))

        page.locator(".hdiaks-flavour select").select_option(label="Local sandbox")
        expect(url).to_have_value(sandbox_url)
        expect(workspace).to_be_hidden()
        expect(submit).to_be_enabled()
    assert shot.stat().st_size > 10_000


@pytest.mark.sandbox  # dialect_auth_sandbox is not among conftest's auto-marked fixtures
@pytest.mark.spark
def test_app_hdinsight_entra_profile_submits_with_real_tokens(
    dialect_auth_sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved classic HDInsight profile with Entra sign-in, picked in the Profile list: the form
    shows the cluster and the Entra fields, keeps what it does not show (authority, vault, CA
    bundle) and the job runs on a sandbox that takes only tokens for the cluster's audience
    (the real msal against its identity endpoint, the secret read from its vault)."""
    box = dialect_auth_sandbox
    ep = box.process.endpoints()
    for key, value in ep["environment"].items():  # the Key Vault reader's AZURE_* settings
        monkeypatch.setenv(key, value)
    saved = ClusterProfile(
        name="hdi", flavour="hdinsight", fqdn="mycluster", url=box.url, auth="entra",
        tenant_id=ep["environment"]["AZURE_TENANT_ID"], authority_host=ep["authority_host"],
        secret_source="keyvault", vault_url=ep["vault_url"], verify=ep["ca_pem"],
    )  # fmt: skip
    spec = BatchSpec(file=box.examples["jar"], class_name=box.spark_pi_class, args=("2",), name="ui-entra")
    ui = app(JobConfig(spec=spec), profiles={"hdi": saved}, monitor_interval=0.2, max_interval=1.0,
             download_dir=tmp_path)  # fmt: skip
    try:
        ui.form.profile.value = "hdi"
        assert ui.form.flavour.value == "hdinsight" and ui.form.auth.value == "entra"
        assert _shown(ui.form) == {"fqdn", "url", "tenant_id", "client_id", "scope"}
        assert "https://mycluster.clusteraccess.azurehdinsight.net/.default" in ui.form.scope.placeholder
        assert ui.form.selected_profile() == saved and ui.form.valid, _messages(ui.form)
        batch = ui.submit()
        assert batch is not None, ui.message.value
        snap = ui.wait(timeout=300)
        assert snap is not None and snap.state_label == "success", snap
        assert ui.log_table()["message"].str.contains("Pi is roughly", regex=False).any()
    finally:
        ui.close()


def test_form_problem_of_a_field_without_a_box_names_the_field() -> None:
    """What the form does not show (here the vault of a saved profile) is said above, by name."""
    form = _form(ClusterProfile(name="kv", flavour="sandbox", url="http://127.0.0.1:8998", secret_source="keyvault"))
    shown = _messages(form)
    assert set(shown) == {"profile"} and "profile.vault_url must be the vault&#x27;s https URL" in shown["profile"]


def test_export_problems_name_the_service_fields_by_their_labels(tmp_path: Path) -> None:
    ui = app(JobConfig(profile=ROUND_TRIPS["fabric"], spec=SPEC), client_factory=lambda p: None, profiles={})  # type: ignore[arg-type,return-value]
    ui.form.lakehouse_id.value = "not-a-guid"
    ui.export.out_dir.value = str(tmp_path / "dags")
    ui.export.export_button.click()
    note = ui.export.note.value
    assert "Nothing was exported" in note and "Lakehouse id: is not a GUID" in note, note
    assert not (tmp_path / "dags").exists()
