"""Secrets never leak: a full submit / monitor / fail run on the bearer-protected sandbox with
known secret values, then a scan of captured logs, exception texts, reprs, printed output and
written files (job config, exported DAG and its setup sheet, the sandbox's own log)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SandboxHandle

from hdiaks_widgets.auth import vault_token_provider
from hdiaks_widgets.config import BatchSpec, JobConfig
from hdiaks_widgets.connect import build_auth
from hdiaks_widgets.dag_export import export_dag_files
from hdiaks_widgets.errors import AuthError, BatchFailed, LivyHTTPError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.monitor import BatchMonitor
from hdiaks_widgets.secrets import DictSecretStore, store_for_profile


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.spark
def test_canary_secrets_and_tokens_appear_nowhere(
    sandbox_factory: Callable[..., SandboxHandle],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = sandbox_factory(auth=True)
    endpoints = sandbox.process.endpoints()
    env = endpoints["environment"]
    profile = sandbox.process.auth_profile(name="canary")
    store = store_for_profile(profile, token_provider=vault_token_provider(profile, environ=env), environ=env)
    canaries = {
        "vault reader secret": env["AZURE_CLIENT_SECRET"],
        "service principal secret": store.get("api-secret"),
    }
    auth = build_auth(profile, secret_store=store)
    assert auth is not None
    canaries["bearer token"] = auth.token().token  # type: ignore[attr-defined]

    texts: dict[str, str] = {}
    with LivyClient.from_profile(profile, environ=env) as client:
        batch = client.submit_batch(BatchSpec(file=sandbox.examples["fail_py"], name="canary-fail"))
        snap = BatchMonitor(client, batch.id, interval=0.3, max_interval=1.0).run()
        with pytest.raises(BatchFailed) as failed:
            snap.raise_for_state()
        texts["batch failure"] = f"{failed.value}\n{failed.value!r}"
        texts["reprs"] = "\n".join(repr(x) for x in (client, auth, profile, store, snap, snap.batch))

    # The refusal paths: a wrong secret at the identity endpoint, and no token at all.
    wrong = DictSecretStore(
        {"api-client-id": "hdiaks-sandbox-app", "tenant-id": endpoints["tenant_id"],
         "api-secret": canaries["service principal secret"] + "-WRONG"}
    )  # fmt: skip
    bad_auth = build_auth(profile, secret_store=wrong)
    with LivyClient(sandbox.url, auth=bad_auth, verify=profile.verify) as bad, pytest.raises(AuthError) as refused:
        bad.list_batches()
    assert "invalid_client" in str(refused.value)
    with LivyClient(sandbox.url) as anonymous, pytest.raises(LivyHTTPError) as unauthorized:
        anonymous.list_batches()
    assert unauthorized.value.status == 401
    texts["auth failures"] = f"{refused.value}\n{refused.value!r}\n{unauthorized.value}"

    cfg = JobConfig(profile=profile, spec=BatchSpec(file=sandbox.examples["jar"], class_name="a.B", name="canary"))
    (tmp_path / "out").mkdir()
    cfg.save(tmp_path / "out" / "job.json")
    export_dag_files(cfg, tmp_path / "out" / "dags", dag_id="canary")
    texts["written files"] = _files_text(tmp_path / "out")
    texts["sandbox log"] = sandbox.log_path.read_text(encoding="utf-8", errors="replace")
    texts["captured logs"] = caplog.text
    out, err = capsys.readouterr()
    texts["printed output"] = out + err

    assert len(caplog.records) > 10, "the run should have logged something to scan"
    for what, secret in canaries.items():
        assert len(secret) >= 16
        for where, text in texts.items():
            assert secret not in text, f"{what} leaked into {where}"


NOTEBOOK_CELLS = [
    """import json, os
from hdiaks_widgets import BatchSpec, ClusterProfile, JobConfig, app
from hdiaks_widgets.livy import LivyClient
endpoints = json.load(open(os.environ["CANARY_ENDPOINTS"]))
os.environ.update(endpoints["environment"])  # the vault reader, exported as a user would
profile = ClusterProfile(
    name="canary", flavour="sandbox", url=os.environ["CANARY_LIVY_URL"], auth="service-principal",
    authority_host=endpoints["authority_host"], secret_source="keyvault",
    vault_url=endpoints["vault_url"], verify=endpoints["ca_pem"],
)
cfg = JobConfig(profile=profile, spec=BatchSpec(file=os.environ["CANARY_APP"], name="nb-canary"))
ui = app(cfg)
ui""",
    """ui.submit()
snap = ui.wait(300)
print(snap.state_label, snap.error)""",
    "ui.batches_table()",
    "ui.log_table().tail(5)",
    """client = LivyClient.from_profile(profile)
print(repr(client), repr(client.auth), repr(profile))
client.list_batches()""",
]
JWT_HEADER = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9"  # how every sandbox token starts


@pytest.mark.spark
@pytest.mark.notebook
def test_canary_saved_notebook_holds_no_secret_or_token(
    sandbox_factory: Callable[..., SandboxHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    sandbox = sandbox_factory(auth=True)
    endpoints = sandbox.process.endpoints()
    env = endpoints["environment"]
    profile = sandbox.process.auth_profile(name="canary")
    store = store_for_profile(profile, token_provider=vault_token_provider(profile, environ=env), environ=env)
    canaries = {"vault reader secret": env["AZURE_CLIENT_SECRET"], "service principal secret": store.get("api-secret")}

    monkeypatch.setenv("CANARY_ENDPOINTS", str(sandbox.root / "auth" / "endpoints.json"))
    monkeypatch.setenv("CANARY_LIVY_URL", sandbox.url)
    monkeypatch.setenv("CANARY_APP", sandbox.examples["pi_py"])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True).execute()
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text(encoding="utf-8")

    assert "success None" in saved, "the job should have succeeded in the notebook"
    assert "application/vnd.jupyter.widget-state+json" in saved
    for what, secret in canaries.items():
        assert secret not in saved, f"{what} leaked into the saved notebook"
    assert JWT_HEADER not in saved, "a bearer token leaked into the saved notebook"
