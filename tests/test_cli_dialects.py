"""The CLI with the Fabric, Synapse and classic HDInsight dialects (profiles, init, --url as origin)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Run, SandboxHandle, hdiaks

WS = "0b6f2c7e-8d3a-4c2e-9a43-1f0e6a7b8c9d"
LH = "5e8d1f4a-2b3c-4d5e-8f9a-0b1c2d3e4f5a"


def test_init_fabric_fills_workspace_and_lakehouse(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "job.json"
    code, _out, err = run("init", "--flavour", "fabric", "--workspace", WS, "--lakehouse", LH, "--out", str(out))
    assert code == 0, err
    from hdiaks_widgets.config import JobConfig

    profile = JobConfig.load(out).profile
    assert (profile.flavour, profile.workspace_id, profile.lakehouse_id) == ("fabric", WS, LH)


def test_init_synapse_fills_workspace_and_pool(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "job.json"
    code, _out, err = run("init", "--flavour", "synapse", "--workspace", "myws", "--pool", "pool1", "--out", str(out))
    assert code == 0, err
    from hdiaks_widgets.config import JobConfig

    profile = JobConfig.load(out).profile
    assert (profile.flavour, profile.workspace, profile.pool) == ("synapse", "myws", "pool1")


def test_init_profile_with_unfilled_ids_names_the_options(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDIAKS_PROFILES", str(tmp_path / "profiles.json"))
    code, _out, err = run("init", "--flavour", "fabric", "--profile", "f", "--out", str(tmp_path / "job.json"))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "--workspace" in err and "--lakehouse" in err and "--fqdn" not in err, err
    assert not (tmp_path / "profiles.json").exists() and not (tmp_path / "job.json").exists()


def test_url_is_another_origin_for_a_fabric_profile(run: Run, tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"profile": {"flavour": "fabric", "workspace_id": WS, "lakehouse_id": LH, "auth": "none",
                                           "url": "http://127.0.0.1:1"},
                               "spec": {"file": "abfss://c@onelake.dfs.fabric.microsoft.com/x.py"}}))  # fmt: skip
    code, _out, err = run("list", "--config", str(job), "--url", "http://127.0.0.1:9")
    assert code == 1 and "127.0.0.1:9" in err, err  # the override was used (nothing listens there)


def test_every_submitter_sends_the_fabric_conf_the_profile_injects() -> None:
    from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig

    env = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    profile = ClusterProfile(name="f", flavour="fabric", workspace_id=WS, lakehouse_id=LH, environment_id=env)
    cfg = JobConfig(profile=profile, spec=BatchSpec(file="abfss://c@onelake.dfs.fabric.microsoft.com/x.py",
                                                    conf={"spark.executor.cores": "2"}))  # fmt: skip
    conf = cfg.batch_spec.conf
    assert conf["spark.targetLakehouse"] == LH and env in conf["spark.fabric.environmentDetails"]
    assert conf["spark.executor.cores"] == "2" and cfg.spec.conf == {"spark.executor.cores": "2"}
    other = cfg.replace(spec=BatchSpec(file=cfg.spec.file, conf={"spark.targetLakehouse": WS}))
    assert any(p.field.startswith("spec.conf") and "lakehouse_id" in p.message for p in other.problems())
    livy = JobConfig(profile=ClusterProfile(url="http://127.0.0.1:8998"), spec=cfg.spec)
    assert livy.batch_spec is livy.spec  # nothing injected elsewhere


@pytest.mark.spark
def test_a_fabric_batch_keeps_its_uuid_through_the_cli(sandbox: SandboxHandle, tmp_path: Path) -> None:
    """submit --wait, status and list on the sandbox's Fabric path: the UUID id as the service gives it."""
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "profile": {"flavour": "fabric", "workspace_id": WS, "lakehouse_id": LH, "auth": "none", "url": sandbox.url},
        "spec": {"file": sandbox.examples["jar"], "class_name": sandbox.spark_pi_class, "args": ["2"]},
    }))  # fmt: skip
    done = hdiaks("submit", "--config", str(job), "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    match = re.search(r"submitted batch ([0-9a-f-]{36}) ", done.stderr)
    assert match, done.stderr
    uuid = match.group(1)
    assert "Pi is roughly" in done.stdout  # the driver log, through Fabric's monitoring API
    status = hdiaks("status", uuid, "--config", str(job), "--json", cwd=tmp_path)
    assert status.returncode == 0 and json.loads(status.stdout)["id"] == uuid, status.stderr
    listed = hdiaks("list", "--config", str(job), cwd=tmp_path)
    assert listed.returncode == 0 and any(line.split()[0] == uuid for line in listed.stdout.splitlines()), listed.stdout
