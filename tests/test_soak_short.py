"""The reliability campaign, short: each scenario of ``make soak`` (``bench/soak.py``) run small
on the real sandbox, asserting the same invariants — no duplicate or lost submit under dropped,
refused and stalled POSTs; no lost state or lost/repeated log line under 20 % faulty GETs; no
failed call through token expiry and revocation; a restarted sandbox's reused ids never followed;
hostile inputs refused in one line naming the field; canary secrets nowhere. The scenario code is
``bench/soak_scenarios.py`` (shared with the full run); the fault and identity knobs it needs
are tested here on their own too."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from soak_scenarios import (  # noqa: E402 - the campaign's scenarios live in bench/
    CANARY_PASSWORD,
    CANARY_SECRET,
    Sandbox,
    hostile_inputs,
    restart_mid_watch,
    scan_for_canaries,
    submits_under_faults,
    tokens_mid_watch,
    watched_under_faults,
)

from hdiaks_widgets.config import ClusterProfile, JobConfig  # noqa: E402
from hdiaks_widgets.errors import ConfigError  # noqa: E402
from hdiaks_widgets.sandbox.faults import FaultBook, FaultRule  # noqa: E402


@pytest.fixture(scope="module")
def soak_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sandbox root for the module's sandboxes, started one after another (the examples are
    built once)."""
    return tmp_path_factory.mktemp("soak")


@pytest.fixture
def soak_sandbox(soak_root: Path) -> Iterator[Sandbox]:
    sb = Sandbox.start(soak_root, max_running=2)
    try:
        yield sb
    finally:
        assert not sb.stop(), "processes of the soak sandbox outlived it"


def _no_canary(caplog: pytest.LogCaptureFixture, folder: Path, texts: list[str], canary: str) -> None:
    outcome = scan_for_canaries({"canary": canary}, folders=[folder], texts=[*texts, caplog.text])
    assert outcome.attempted > 1 and outcome.lost == 0, outcome.problems


# -- the knobs the campaign added to the sandbox -------------------------------------------------


def test_fault_rule_probability_fires_on_a_seeded_share_and_only_firings_count() -> None:
    def fired(seed: int) -> list[bool]:
        book = FaultBook()
        book.add([FaultRule.from_json({"kind": "drop", "probability": 0.25, "seed": seed, "count": None})])
        return [book.observe("GET", "/batches/1") is not None for _ in range(400)]

    first = fired(7)
    assert first == fired(7)  # the same seed, the same requests meet the fault
    assert first != fired(8)
    assert 60 <= sum(first) <= 140  # about a quarter of 400
    book = FaultBook()
    book.add([FaultRule.from_json({"kind": "status", "status": 503, "probability": 0.0, "count": None}),
              FaultRule.from_json({"kind": "drop", "count": 2})])  # fmt: skip
    assert [r.kind if (r := book.observe("POST", "/batches")) else None for _ in range(3)] == ["drop", "drop", None]
    assert book.to_json()["fired"] == {"POST drop": 2}


@pytest.mark.parametrize("probability", [-0.1, 1.5])
def test_fault_rule_probability_outside_0_to_1_is_refused(probability: float) -> None:
    from hdiaks_widgets.sandbox.bodies import BadRequest

    with pytest.raises(BadRequest, match="probability"):
        FaultRule.from_json({"kind": "drop", "probability": probability})


@pytest.mark.sandbox
def test_identity_clock_skew_makes_the_token_expire_before_expires_in_says(tmp_path: Path) -> None:
    import base64

    import requests

    from hdiaks_widgets.sandbox.identity import make_bearer_authorizer, start_auth_services

    services = start_auth_services(tmp_path, tenant_id="t", clients={"app": CANARY_SECRET}, vault_secrets={},
                                   token_lifetime=3600, clock_skew=3599)  # fmt: skip
    try:
        answer = requests.post(f"{services.authority_host}/t/oauth2/v2.0/token", verify=str(services.ca_pem),
                               data={"grant_type": "client_credentials", "client_id": "app",
                                     "client_secret": CANARY_SECRET, "scope": "https://x.test/.default"},
                               timeout=10)  # fmt: skip
        answer.raise_for_status()
    finally:
        services.shutdown()
    body = answer.json()
    payload = body["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body["expires_in"] == 3600  # what the client's cache believes
    assert claims["exp"] - claims["iat"] < 2  # what the service checks
    header = {"Authorization": f"Bearer {body['access_token']}"}
    authorize = make_bearer_authorizer(tmp_path)
    time.sleep(max(0.0, claims["exp"] + 0.5 - time.time()))  # past exp, long before expires_in
    assert "expired" in (authorize(header) or "")


# -- what the campaign found in the client ----------------------------------------------------------


def test_profile_timeout_past_a_day_is_refused_naming_the_field(tmp_path: Path) -> None:
    # It used to pass validation and end in an OverflowError traceback inside urllib3.
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"profile": {"flavour": "sandbox", "url": "http://127.0.0.1:9",
                                            "connect_timeout": 1e308},
                                "spec": {"file": "abfs://c1c@acct1.dfs.core.windows.net/a.py"}}))  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        JobConfig.load(path).validate()
    assert str(caught.value) == "profile.connect_timeout: must be at most 86400 seconds (a day), got 1e+308"


def test_profile_repr_hides_a_password_typed_into_the_url() -> None:
    profile = ClusterProfile(flavour="livy", url=f"http://admin:{CANARY_PASSWORD}@127.0.0.1:9/livy")
    assert CANARY_PASSWORD not in repr(profile)
    assert "url='http://***@127.0.0.1:9/livy'" in repr(profile)
    assert profile.problems()[0].field == "profile.url"  # and it is still refused


# -- the scenarios, small -----------------------------------------------------------------------------


@pytest.mark.sandbox
def test_soak_submits_under_faults_make_no_duplicate_and_lose_none(soak_sandbox: Sandbox) -> None:
    outcome = submits_under_faults(soak_sandbox, n=12, workers=3, seed=5)
    assert outcome.lost == 0 and outcome.survived == 12, outcome.problems
    assert outcome.details["duplicates"] == 0 and outcome.details["orphans"] == 0
    assert outcome.details["crashed"] == 0
    assert sum(outcome.details["faults_fired"].values()) > 0  # the faults really happened
    # Every POST that arrived is a created batch, a refusal or a resend after an ambiguous answer.
    assert outcome.details["posts_arrived"] >= outcome.details["created"]


@pytest.mark.sandbox
def test_soak_watched_batches_under_faults_lose_no_state_and_no_line(soak_sandbox: Sandbox) -> None:
    outcome = watched_under_faults(soak_sandbox, n=2, rate=0.2, lines=30, clients=2, seed=3, timeout=300)
    assert outcome.lost == 0 and outcome.survived == 2, outcome.problems
    d = outcome.details
    assert d["lines_served"] >= 2 * 30 and d["lines_lost"] == 0 and d["lines_repeated"] == 0
    assert d["states_lost"] == 0 and d["monitors_unfinished"] == 0
    assert sum(d["faults_fired"].values()) > 0


@pytest.mark.sandbox
def test_soak_token_expiry_and_revocation_fail_no_call(
    soak_root: Path, caplog: pytest.LogCaptureFixture
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    outcome = tokens_mid_watch(soak_root, n=4, clients=2, revocations=2, valid_for=3, lines=4, pause=0.5,
                               timeout=120)  # fmt: skip
    assert outcome.lost == 0 and outcome.survived == 4, outcome.problems
    d = outcome.details
    assert d["direct_calls_failed"] == 0 and d["polls_failed"] == 0 and d["revocations"] == 2
    assert d["tokens_issued"] >= 2  # the tokens really were refused and renewed mid-watch
    _no_canary(caplog, soak_root, [], CANARY_SECRET)


@pytest.mark.sandbox
def test_soak_restart_with_reused_ids_is_said_never_followed(soak_root: Path) -> None:
    outcome = restart_mid_watch(soak_root, n=3, timeout=90, backoff=0.2)
    assert outcome.lost == 0 and outcome.survived == 3, outcome.problems
    assert outcome.details["ids_reused"] == 3
    assert outcome.details["said_purged"] + outcome.details["said_replaced"] == 3


@pytest.mark.sandbox
def test_soak_hostile_inputs_are_one_line_refusals_naming_the_field(
    soak_sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    outcome, messages = hostile_inputs(soak_sandbox, tmp_path / "inputs", cli_limit=8)
    assert outcome.attempted >= 60 and outcome.lost == 0, outcome.problems
    assert outcome.details["posts_reached_server"] == 0
    assert outcome.details["by_surface"]["cli"] == 8
    _no_canary(caplog, soak_sandbox.root, messages, CANARY_PASSWORD)
