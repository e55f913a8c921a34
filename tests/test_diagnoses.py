"""What a new user is told when something is wrong (issue 11, items 4 and 5): a hung server, no
server, a host name that does not resolve, an unknown batch, a self-signed identity provider,
missing secrets, a secret written into a profile, and reprs that stay short in a notebook.

Servers are small loopback sockets started here; ``nohost.invalid`` never resolves (RFC 6761),
so nothing is sent anywhere. No test asserts a duration: the number of connections a server saw
(and the attempts the message names) is what shows that a request was or was not retried.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from auth_fixtures import (
    APP_ID,
    CANARY,
    PUBLIC_ID,
    TENANT,
    AuthSandbox,
    auth_sandbox_fixture,  # noqa: F401 - fixture "auth_sandbox"
    closed_port,
    requests_ca_bundle_fixture,  # noqa: F401 - fixture "requests_ca_bundle"
)
from conftest import Run
from IPython.lib.pretty import pretty
from servers import Listener, LoopbackHTTP, QuietHandler

from hdiaks_widgets import profiles
from hdiaks_widgets.auth import DeviceCodeAuth, ServicePrincipalAuth
from hdiaks_widgets.config import ClusterProfile, JobConfig
from hdiaks_widgets.connect import build_auth
from hdiaks_widgets.errors import AuthError, BatchNotFound, ConfigError, LivyError, LivyHTTPError, SecretError
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.models import Batch, BatchList, BatchState, LogPage
from hdiaks_widgets.run import BatchRun, Snapshot, describe_error
from hdiaks_widgets.secrets import DictSecretStore, EnvSecretStore, read_secrets


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback and .invalid only: a proxy from the environment must never see these requests."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def listener() -> Iterator[Callable[[bytes | None], Listener]]:
    """``listener(reply)`` starts a :class:`Listener`; all are closed after the test."""
    with ExitStack() as started:
        yield lambda reply=None: started.enter_context(Listener(reply))


def _http(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}",
            "Connection: close", *headers]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# -- 1. a hung server is given up at the stated timeout ----------------------------------------------


def test_livy_client_hung_server_is_given_up_after_one_read_timeout(
    listener: Callable[[bytes | None], Listener],
) -> None:
    hung = listener(None)
    with LivyClient(hung.url, timeout=(2.0, 0.3)) as client, pytest.raises(LivyError) as info:
        client.list_batches()  # default RetryPolicy: 4 retries for what a retry can fix
    message = str(info.value)
    assert hung.connections == 1
    assert f"Livy at {hung.url} did not answer GET /batches within the read timeout of 0.3 s" in message
    assert "gave up after 1 attempt, 0.3 s in all" in message
    assert "budget" in message


def test_livy_client_budget_lets_a_read_timeout_be_retried_and_says_so(
    listener: Callable[[bytes | None], Listener],
) -> None:
    hung = listener(None)
    retry = RetryPolicy(total=4, backoff_factor=0.0, backoff_jitter=0.0, budget=0.5)
    with LivyClient(hung.url, timeout=(2.0, 0.3), retry=retry) as client, pytest.raises(LivyError) as info:
        client.list_batches()
    assert hung.connections == 2  # 0.3 s spent < 0.5 s budget: one retry, then 0.6 s > 0.5 s
    assert "gave up after 2 attempts" in str(info.value)


def test_livy_client_retry_after_beyond_the_budget_is_not_waited_for(
    listener: Callable[[bytes | None], Listener],
) -> None:
    busy = listener(_http("503 Service Unavailable", b'{"msg": "restarting"}', "Retry-After: 3"))
    with LivyClient(busy.url, timeout=(2.0, 1.0)) as client, pytest.raises(LivyHTTPError) as info:
        client.list_batches()
    assert info.value.status == 503 and "restarting" in info.value.body
    assert busy.connections == 1


def test_livy_client_quick_failures_are_still_retried_within_the_budget(
    listener: Callable[[bytes | None], Listener],
) -> None:
    busy = listener(_http("503 Service Unavailable", b'{"msg": "restarting"}', "Retry-After: 0"))
    retry = RetryPolicy(total=2, backoff_factor=0.0, backoff_jitter=0.0)
    with LivyClient(busy.url, timeout=(2.0, 5.0), retry=retry) as client, pytest.raises(LivyHTTPError):
        client.list_batches()
    assert busy.connections == 3


# -- 3. no server, or no such host: at once, with what to check ----------------------------------------


def test_livy_client_connection_refused_is_not_retried_and_names_the_sandbox() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with LivyClient(url) as client, pytest.raises(LivyError) as info:  # default RetryPolicy
        client.list_batches()
    message = str(info.value)
    assert message.startswith(f"Cannot reach Livy at {url} (GET /batches): connection refused (not retried)")
    assert message.endswith("is the Livy server running? For the local sandbox run `hdiaks sandbox`")


def test_livy_client_unresolvable_host_names_the_host_and_is_not_retried() -> None:
    with LivyClient("http://nohost.invalid:8998") as client, pytest.raises(LivyError) as info:
        client.list_batches()
    message = str(info.value)
    assert "the host name 'nohost.invalid' does not resolve" in message
    assert "not retried" in message and "typo" in message
    assert "hdiaks sandbox" not in message


def test_livy_client_connect_timeout_is_named_as_such_and_not_retried() -> None:
    # A listener whose accept queue is full: Linux drops further SYNs, so connecting times out.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.5)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this system accepts connections beyond a full backlog")
        with LivyClient(f"http://127.0.0.1:{port}", timeout=(0.3, 5.0)) as client, \
                pytest.raises(LivyError) as info:  # fmt: skip
            client.list_batches()
    finally:
        for filler in fillers:
            filler.close()
        server.close()
    message = str(info.value)
    assert "did not accept a connection for GET /batches within the connect timeout of 0.3 s" in message
    assert "gave up after 1 attempt" in message and "read timeout" not in message


# -- 2. "not found" says "purged" only for a batch that was seen --------------------------------------


class _TinyLivy(LoopbackHTTP):
    """``GET /batches/{id}`` (and ``/log``) for the batches in ``batches``; Livy's JSON 404 otherwise."""

    def __init__(self) -> None:
        self.batches: dict[int, tuple[str, str]] = {}  # id -> (name, state)
        tiny = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                found = None
                if len(parts) >= 2 and parts[0] == "batches" and parts[1].isdigit():
                    found = tiny.batches.get(int(parts[1]))
                if found is None:
                    status, body = 404, {"msg": f"Session '{parts[-1]}' not found."}
                elif parts[2:] == ["log"]:
                    status, body = 200, {"id": int(parts[1]), "from": 0, "total": 0, "log": []}
                else:
                    status, body = 200, {"id": int(parts[1]), "name": found[0], "state": found[1],
                                         "appId": None, "appInfo": {}, "log": []}  # fmt: skip
                self.reply(status, json.dumps(body).encode())

        super().__init__(Handler)


@pytest.fixture
def tiny_livy() -> Iterator[_TinyLivy]:
    with _TinyLivy() as server:
        yield server


def test_batch_not_found_for_an_unseen_id_says_check_the_id_not_purged(tiny_livy: _TinyLivy) -> None:
    with LivyClient(tiny_livy.url) as client, pytest.raises(BatchNotFound) as info:
        client.get_batch(42)
    message = str(info.value)
    assert message.startswith("Batch 42 not found: there is no batch 42 on this server: check the id (hdiaks list")
    assert "purged" not in message and not info.value.seen
    kind, sentence = describe_error(info.value)
    assert sentence == "There is no batch 42 on this Livy server: check the id (hdiaks list)."


def test_batch_run_of_an_id_never_seen_says_check_the_id(tiny_livy: _TinyLivy) -> None:
    with LivyClient(tiny_livy.url) as client:
        snap = BatchRun(client, 42).poll()
    assert snap.finished and snap.error is not None
    assert "check the id (hdiaks list)" in snap.error and "purged" not in snap.error


def test_batch_run_of_a_batch_it_saw_says_purged_with_the_last_state(tiny_livy: _TinyLivy) -> None:
    tiny_livy.batches[3] = ("spark-pi", "running")
    with LivyClient(tiny_livy.url) as client:
        run = BatchRun.attach(client, 3)
        assert run.poll().error is None
        del tiny_livy.batches[3]  # Livy's retention (or a restart) forgot it
        snap = run.poll()
    assert snap.finished and snap.purged and snap.error is not None
    assert "was last seen running" in snap.error and "purged after Livy's retention time" in snap.error
    assert isinstance(snap.exception, BatchNotFound) and snap.exception.seen
    assert "it was purged after Livy's retention time (last seen running)" in str(snap.exception)


def test_cli_status_of_an_unknown_batch_says_check_the_id(tiny_livy: _TinyLivy, run: Run) -> None:
    code, out, err = run("status", "42", "--url", tiny_livy.url)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "check the id (hdiaks list" in err and "purged" not in err


# -- 4. an identity provider whose certificate is signed by a CA we do not trust ------------------------


@pytest.mark.parametrize("flow", ["service-principal", "device-code"])
@pytest.mark.usefixtures("requests_ca_bundle")
def test_sign_in_to_an_identity_provider_with_an_unknown_ca_suggests_the_profiles_verify(
    auth_sandbox: AuthSandbox, flow: str
) -> None:
    # verify=True: the system's CAs (REQUESTS_CA_BUNDLE), which never signed the sandbox's certificate.
    with pytest.raises(AuthError) as info:
        if flow == "service-principal":
            ServicePrincipalAuth(tenant_id=TENANT, client_id=APP_ID, client_secret=CANARY,
                                 authority_host=auth_sandbox.authority_host, verify=True).token()  # fmt: skip
        else:
            DeviceCodeAuth(tenant_id=TENANT, client_id=PUBLIC_ID, authority_host=auth_sandbox.authority_host,
                           verify=True).start()  # fmt: skip
    message = str(info.value)
    assert "the identity provider's TLS certificate is not trusted (certificate verify failed" in message
    assert "set the profile's 'verify' to the path of that CA bundle" in message
    assert "`hdiaks sandbox --auth` prints its CA path" in message
    assert CANARY not in message and info.value.error == "tls"
    assert "client id and credentials" not in describe_error(info.value)[1]  # not the wrong advice


# -- 5. the environment store names every missing secret, and what AZURE_* is for ------------------------


def _sp_profile() -> ClusterProfile:
    return ClusterProfile(name="aks", flavour="hdinsight-aks", fqdn="c.p.1.eastus.hdinsightaks.net")


def test_build_auth_names_every_missing_secret_in_one_message() -> None:
    with pytest.raises(SecretError) as info:
        build_auth(_sp_profile(), environ={"TENANT_ID": "t-1"})
    message = str(info.value)
    assert info.value.missing == ("api-client-id", "api-secret")
    assert message.startswith("2 secrets are not set in the environment: 'api-client-id' "
                              "(set AIRFLOW_VAR_API_CLIENT_ID or API_CLIENT_ID), 'api-secret' "
                              "(set AIRFLOW_VAR_API_SECRET or API_SECRET).")  # fmt: skip
    assert "tenant-id" not in message


def test_env_store_message_explains_the_key_vault_readers_azure_variables() -> None:
    with pytest.raises(SecretError) as info:
        EnvSecretStore({}).get("api-secret")
    message = str(info.value)
    assert message.startswith("Secret 'api-secret' is not set in the environment; set one of "
                              "AIRFLOW_VAR_API_SECRET, API_SECRET.")  # fmt: skip
    assert "secret_source to 'keyvault'" in message
    assert "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET" in message
    assert "EnvironmentCredential" in message and "DefaultAzureCredential" in message


def test_read_secrets_names_every_key_missing_from_any_store() -> None:
    store = DictSecretStore({"tenant-id": "t-1"})
    assert read_secrets(store, ["tenant-id"]) == {"tenant-id": "t-1"}
    with pytest.raises(SecretError) as info:
        read_secrets(store, ["tenant-id", "api-client-id", "api-secret"])
    assert info.value.missing == ("api-client-id", "api-secret")
    assert "'api-client-id'" in str(info.value) and "'api-secret'" in str(info.value)


# -- 6. a secret written into a profile is refused by name, its value never repeated ---------------------

_SECRET_KEYS = ["client_secret", "password", "secret", "token", "api_key", "api-secret", "livy-password",
                "AZURE_CLIENT_SECRET"]  # fmt: skip
_SENTENCE = "secrets belong in the environment or Key Vault, not in the profile"


@pytest.mark.parametrize("key", _SECRET_KEYS)
def test_profile_with_a_secret_key_is_refused_naming_the_key_not_the_value(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterProfile.from_dict({"flavour": "livy", "url": "http://127.0.0.1:8998", key: CANARY})
    assert info.value.fields == (f"profile.{key}",)
    assert _SENTENCE in str(info.value)
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)
    assert all(CANARY not in str(arg) for arg in info.value.args)


def test_profile_secret_source_and_client_id_are_still_settings() -> None:
    profile = ClusterProfile.from_dict({"flavour": "hdinsight-aks", "fqdn": "c.p.1.eastus.hdinsightaks.net",
                                        "secret_source": "env", "client_id": "app", "tenant_id": "t"})  # fmt: skip
    assert (profile.secret_source, profile.client_id) == ("env", "app")


def test_job_config_file_with_a_secret_in_its_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"profile": {"flavour": "livy", "url": "http://127.0.0.1:8998",
                                            "password": CANARY, "colour": "blue"}}))  # fmt: skip
    with pytest.raises(ConfigError) as info:
        JobConfig.load(path)
    assert set(info.value.fields) == {"profile.password", "profile.colour"}  # every problem, as ever
    assert _SENTENCE in str(info.value) and CANARY not in str(info.value)


def test_cli_profile_file_with_a_secret_is_one_line_without_the_value(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": {"prod": {"flavour": "livy", "url": "http://127.0.0.1:9",
                                                      "client_secret": CANARY}}}))  # fmt: skip
    monkeypatch.setenv(profiles.PROFILES_ENV, str(path))
    code, out, err = run("list", "--profile", "prod")
    assert code != 0 and out == "" and err.count("\n") == 1
    assert "client_secret" in err and _SENTENCE in err and CANARY not in err


# -- 7. reprs stay short in a notebook cell ---------------------------------------------------------------


def _running(batch_id: int = 3, name: str = "spark-pi", log: int = 0) -> Batch:
    return Batch(batch_id, BatchState.RUNNING, name=name, log=tuple(f"log {i}" for i in range(log)))


def test_snapshot_repr_of_a_huge_log_is_one_short_line_with_the_key_facts() -> None:
    lines = tuple(f"line {i}" for i in range(100_000))
    snap = Snapshot(batch_id=3, name="spark-pi", batch=_running(log=100),
                    lines=lines, new_lines=lines[-2:], polls=7)  # fmt: skip
    for text in (repr(snap), pretty(snap)):
        assert "\n" not in text and len(text) < 160, text
        for fact in ("batch=3", "'spark-pi'", "state=running", "lines=100000", "new=2", "polls=7"):
            assert fact in text, (fact, text)
    assert len(snap.lines) == 100_000 and snap.new_lines == lines[-2:]  # the fields are untouched


def test_snapshot_repr_cuts_a_long_name() -> None:
    text = repr(Snapshot(batch_id=3, name="n" * 5000))
    assert len(text) < 160 and "nnn…'" in text


def test_batch_list_repr_of_a_thousand_batches_is_one_line_with_counts() -> None:
    batches = tuple(Batch(i, BatchState.SUCCESS if i % 10 else BatchState.DEAD, name=f"job-{i}",
                          log=tuple(f"l{j}" for j in range(100))) for i in range(1000))  # fmt: skip
    page = BatchList(start=0, total=1200, batches=batches)
    for text in (repr(page), pretty(page)):
        assert "\n" not in text and len(text) < 160, text
        for fact in ("start=0", "total=1200", "1000 batches", "900 success", "100 dead", "ids 0…999"):
            assert fact in text, (fact, text)
    assert len(page.batches) == 1000


def test_batch_list_repr_of_a_few_batches_names_them() -> None:
    page = BatchList(start=0, total=1, batches=(_running(),))
    assert repr(page) == "BatchList(start=0, total=1, 1 batch: [3 'spark-pi' running])"


def test_batch_and_log_page_reprs_count_their_lines() -> None:
    assert repr(_running(log=100)) == "Batch(id=3, state=running, name='spark-pi', log=100 lines)"
    page = LogPage(id=3, start=0, total=100_000, lines=tuple(str(i) for i in range(10_000)))
    assert repr(page) == "LogPage(id=3, start=0, total=100000, lines=10000)"
