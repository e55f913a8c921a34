"""Device-code sign-in kept across processes and kernels, sign-out, and the 401 refresh decided per
request: real msal (and msal-extensions) against the sandbox identity endpoint over HTTPS on
127.0.0.1, loopback HTTP servers for the protected service.

Every test gets its own cache directory (``HDIAKS_TOKEN_CACHE_DIR``, set by conftest's autouse
``private_token_cache``), and children (processes, kernels) inherit it from the environment.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from auth_fixtures import (
    PUBLIC_ID,
    TENANT,
    AuthSandbox,
    auth_sandbox_factory_fixture,  # noqa: F401 - fixture "auth_sandbox_factory"
    auth_sandbox_fixture,  # noqa: F401 - fixture "auth_sandbox"
    requests_ca_bundle_fixture,  # noqa: F401 - fixture "requests_ca_bundle"
)
from servers import LoopbackHTTP, QuietHandler

from hdiaks_widgets.auth import DeviceCodeAuth, DeviceCodePrompt, sign_out
from hdiaks_widgets.auth.cache import CACHE_DIR_ENV, CACHE_MODE_ENV
from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.errors import AuthError

pytestmark = pytest.mark.usefixtures("requests_ca_bundle")

HILO = "https://hilo.azurehdinsight.net/.default"
FABRIC = "https://api.fabric.microsoft.com/.default"


@pytest.fixture
def cache_dir(private_token_cache: Path) -> Path:
    """This test's token cache directory (conftest's autouse ``private_token_cache``)."""
    return private_token_cache


def _auth(sb: AuthSandbox, scope: str = HILO, prompts: list[DeviceCodePrompt] | None = None) -> DeviceCodeAuth:
    return DeviceCodeAuth(tenant_id=TENANT, client_id=PUBLIC_ID, scope=scope, authority_host=sb.authority_host,
                          verify=sb.ca_pem, on_code=None if prompts is None else prompts.append)  # fmt: skip


def _signed_in(sb: AuthSandbox, scope: str = HILO) -> DeviceCodeAuth:
    auth = _auth(sb, scope)
    auth.sign_in(timeout=30)  # the sandbox approves device codes at once
    return auth


def _whoami(sb: AuthSandbox, auth: requests.auth.AuthBase) -> requests.Response:
    return requests.get(sb.whoami_url, auth=auth, verify=sb.ca_pem, timeout=10)


def _cached_secrets(cache_dir: Path) -> list[str]:
    """Every access, refresh and id token held in the cache files (the canary's needles)."""
    found: list[str] = []
    for path in cache_dir.glob("msal-*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for section in ("AccessToken", "RefreshToken", "IdToken"):
            found += [str(item["secret"]) for item in data.get(section, {}).values()]
    return found


# -- the 401 refresh is decided per request ------------------------------------------------------


class _RefusesEachRequestOnce(LoopbackHTTP):
    """Answers 401 to the first attempt of each path and to any token it refused before (as a
    service does once a token is revoked), 200 otherwise. The first attempts of ``together``
    requests are held until all have arrived, so their 401s are in flight at the same time."""

    def __init__(self, together: int) -> None:
        self.seen: set[str] = set()
        self.refused: set[str] = set()
        self.accepted: dict[str, str] = {}
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(together, timeout=20)
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                token = self.headers.get("Authorization", "")
                with outer.lock:
                    first = self.path not in outer.seen
                    outer.seen.add(self.path)
                    if first:
                        outer.refused.add(token)
                    refuse = first or token in outer.refused
                    if not refuse:
                        outer.accepted[self.path] = token
                if first:
                    outer.barrier.wait()
                self.reply(401 if refuse else 200, b"{}")

        super().__init__(Handler)


def test_device_code_auth_interleaved_401s_each_resend_with_a_fresh_token_after_one_refresh(
    auth_sandbox: AuthSandbox,
) -> None:
    auth = _signed_in(auth_sandbox)
    stale = f"Bearer {auth.token().token}"
    before = auth_sandbox.stats()
    results: dict[str, requests.Response | BaseException] = {}

    def get(path: str) -> None:
        try:
            results[path] = requests.get(server.url + path, auth=auth, timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[path] = exc

    with _RefusesEachRequestOnce(together=2) as server:
        threads = [threading.Thread(target=get, args=(p,)) for p in ("/a", "/b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    after = auth_sandbox.stats()
    statuses = {p: getattr(r, "status_code", repr(r)) for p, r in results.items()}
    assert statuses == {"/a": 200, "/b": 200}
    assert server.refused == {stale}  # both first attempts carried the token cached before
    assert server.accepted["/a"] == server.accepted["/b"] != stale
    # The second 401 found the token already renewed by the first: one refresh serves both.
    assert after["refresh_token"] - before["refresh_token"] == 1
    assert after["devicecode_requests"] == before["devicecode_requests"]


def test_service_principal_auth_interleaved_401s_cost_one_new_token(auth_sandbox: AuthSandbox) -> None:
    from auth_fixtures import APP_ID, CANARY

    from hdiaks_widgets.auth import ServicePrincipalAuth, clear_token_cache

    clear_token_cache()
    auth = ServicePrincipalAuth(tenant_id=TENANT, client_id=APP_ID, client_secret=CANARY,
                                authority_host=auth_sandbox.authority_host, verify=auth_sandbox.ca_pem)  # fmt: skip
    stale = f"Bearer {auth.token().token}"
    before = auth_sandbox.stats()
    results: dict[str, int] = {}
    with _RefusesEachRequestOnce(together=3) as server:
        threads = [threading.Thread(target=lambda p=p: results.__setitem__(
            p, requests.get(server.url + p, auth=auth, timeout=30).status_code)) for p in ("/x", "/y", "/z")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert results == {"/x": 200, "/y": 200, "/z": 200}
    assert len(set(server.accepted.values())) == 1 and stale not in server.accepted.values()
    assert auth_sandbox.stats()["client_credentials"] - before["client_credentials"] == 1


def test_device_code_auth_request_without_401_never_refreshes(auth_sandbox: AuthSandbox) -> None:
    auth = _signed_in(auth_sandbox)
    before = auth_sandbox.stats()
    with _RefusesEachRequestOnce(together=1) as server:
        first = requests.get(server.url + "/once", auth=auth, timeout=30)
        again = requests.get(server.url + "/once", auth=auth, timeout=30)  # path seen: no 401 for it
    assert (first.status_code, len(first.history)) == (200, 1)
    assert (again.status_code, len(again.history)) == (200, 0)
    assert auth_sandbox.stats()["refresh_token"] - before["refresh_token"] == 1


# -- the cache on disk ------------------------------------------------------------------------


def test_token_cache_file_is_0600_in_a_0700_directory(auth_sandbox: AuthSandbox, cache_dir: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hdiaks_widgets.auth")
    cache_dir.mkdir(mode=0o755, parents=True)
    os.chmod(cache_dir, 0o755)  # an existing, too wide directory is tightened
    auth = _signed_in(auth_sandbox)
    location = auth.token_cache.location
    assert location.parent == cache_dir and location.is_file()
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(location.stat().st_mode) == 0o600
    assert _cached_secrets(cache_dir)  # the sign-in really is on disk
    # One line says which store is used, and why (this machine has no Secret Service / PyGObject).
    lines = [r.getMessage() for r in caplog.records if "token cache:" in r.getMessage()]
    stores = [line for line in lines if " at " in line]
    assert len(stores) == 1 and "plain file readable by you only (0600)" in stores[0], lines
    assert str(location) in stores[0] and "no platform keyring here" in stores[0]
    assert f"device-code token cache: folder {cache_dir} made private (was mode 755)" in lines


def test_token_cache_refuses_a_shared_folder_and_leaves_it_unchanged(
    auth_sandbox: AuthSandbox, cache_dir: Path
) -> None:
    cache_dir.mkdir(parents=True)
    os.chmod(cache_dir, 0o1777)  # sticky and writable by all, like /tmp
    with pytest.raises(AuthError) as info:
        _auth(auth_sandbox).sign_in(timeout=30)
    message = str(info.value)
    assert "\n" not in message and "is shared (mode 1777" in message and CACHE_DIR_ENV in message
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o1777 and not list(cache_dir.iterdir())


def test_token_cache_memory_mode_writes_nothing(auth_sandbox: AuthSandbox, cache_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_MODE_ENV, "memory")
    auth = _signed_in(auth_sandbox)
    assert _whoami(auth_sandbox, auth).status_code == 200
    assert not cache_dir.exists()
    assert not _auth(auth_sandbox).restore()


def test_token_cache_unknown_mode_is_a_one_line_error_naming_the_variable(
    auth_sandbox: AuthSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_MODE_ENV, "keychain please")
    with pytest.raises(AuthError) as info:
        _auth(auth_sandbox)
    message = str(info.value)
    assert "\n" not in message and CACHE_MODE_ENV in message and "auto, file, memory" in message


# -- sign in once: a new process, a new kernel -------------------------------------------------

_CHILD = f"""
import json, sys
import requests
from hdiaks_widgets.auth import DeviceCodeAuth
authority_host, ca, whoami, scope = sys.argv[1:5]
prompts = []
auth = DeviceCodeAuth(tenant_id={TENANT!r}, client_id={PUBLIC_ID!r}, scope=scope,
                      authority_host=authority_host, verify=ca, on_code=prompts.append)
restored = auth.restore()
status = requests.get(whoami, auth=auth, verify=ca, timeout=10).status_code if restored else None
print(json.dumps({{"restored": restored, "prompts": len(prompts), "status": auth.status, "whoami": status}}))
"""


def _in_new_process(sb: AuthSandbox, scope: str = HILO) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _CHILD, sb.authority_host, sb.ca_pem, sb.whoami_url, scope],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_device_code_auth_without_msal_extensions_keeps_the_sign_in_in_memory(
    auth_sandbox: AuthSandbox, cache_dir: Path
) -> None:
    child = (
        "import logging, sys\n"
        "sys.modules['msal_extensions'] = None  # as if not installed: importing it raises ImportError\n"
        "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\n"
        "from hdiaks_widgets.auth import DeviceCodeAuth\n"
        f"auth = DeviceCodeAuth(tenant_id={TENANT!r}, client_id={PUBLIC_ID!r}, authority_host=sys.argv[1], "
        "verify=sys.argv[2])\n"
        "auth.sign_in(timeout=30)\n"
        "print(auth.status, '|', auth.token_cache.store)\n"
    )
    done = subprocess.run([sys.executable, "-c", child, auth_sandbox.authority_host, auth_sandbox.ca_pem],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "signed-in | memory (msal-extensions is not installed)"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "install msal-extensions" in warnings[0], done.stderr
    assert not cache_dir.exists()


def test_device_code_auth_new_process_signs_in_from_the_cache_without_a_prompt(auth_sandbox: AuthSandbox) -> None:
    _signed_in(auth_sandbox)
    before = auth_sandbox.stats()
    child = _in_new_process(auth_sandbox)
    after = auth_sandbox.stats()
    assert child == {"restored": True, "prompts": 0, "status": "signed-in", "whoami": 200}
    assert after["devicecode_requests"] == before["devicecode_requests"]  # no device-code flow
    assert after["whoami_ok"] - before["whoami_ok"] == 1


def test_device_code_auth_sign_out_removes_the_cache_and_the_next_sign_in_prompts(auth_sandbox: AuthSandbox) -> None:
    auth = _signed_in(auth_sandbox)
    other = _auth(auth_sandbox)  # another user of the same cache in this process
    assert other.restore()
    location = auth.token_cache.location
    assert auth.sign_out() is True
    assert not location.exists() and auth.status == "signed-out"
    with pytest.raises(AuthError, match="Not signed in"):
        other.token()  # its in-memory copy was emptied too
    assert _in_new_process(auth_sandbox)["restored"] is False
    before = auth_sandbox.stats()
    prompts: list[DeviceCodePrompt] = []
    again = _auth(auth_sandbox, prompts=prompts)
    again.sign_in(timeout=30)
    assert len(prompts) == 1
    assert auth_sandbox.stats()["devicecode_requests"] - before["devicecode_requests"] == 1
    assert auth.sign_out() is True and auth.sign_out() is False  # nothing left the second time


def test_device_code_auth_sign_out_in_one_process_signs_out_another_running_one(auth_sandbox: AuthSandbox) -> None:
    auth = _signed_in(auth_sandbox)
    other = (
        "import sys\n"
        "from hdiaks_widgets.auth import DeviceCodeAuth\n"
        "from hdiaks_widgets.errors import AuthError\n"
        f"auth = DeviceCodeAuth(tenant_id={TENANT!r}, client_id={PUBLIC_ID!r}, authority_host=sys.argv[1], "
        "verify=sys.argv[2])\n"
        "print('restored', auth.restore(), flush=True)\n"
        "sys.stdin.readline()  # the other kernel signs out now\n"
        "try:\n"
        "    auth.token(); print('still signed in')\n"
        "except AuthError as exc:\n"
        "    print('after sign-out:', exc)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", other, auth_sandbox.authority_host, auth_sandbox.ca_pem],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "restored True"
        mine = _auth(auth_sandbox)
        assert mine.restore() and mine.status == "signed-in"
        assert auth.sign_out() is True
        assert mine.status == "signed-out"  # read from the file, before any request
        out, err = child.communicate("go\n", timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.strip().startswith("after sign-out: Not signed in"), out
    assert not auth.token_cache.location.exists()  # the running process did not write its copy back


def test_sign_out_of_a_profile_removes_its_cache_without_a_client(auth_sandbox: AuthSandbox) -> None:
    auth = _signed_in(auth_sandbox)
    profile = ClusterProfile(name="me", flavour="hdinsight-aks", fqdn="mycluster.pool.eastus.hdinsightaks.net",
                             auth="device-code", tenant_id=TENANT, client_id=PUBLIC_ID,
                             authority_host=auth_sandbox.authority_host, verify=auth_sandbox.ca_pem)  # fmt: skip
    assert profile.token_scope == HILO
    assert sign_out(profile) is True
    assert not auth.token_cache.location.exists()
    assert not _auth(auth_sandbox).restore()


def test_device_code_auth_token_of_one_scope_is_never_returned_for_another(
    auth_sandbox: AuthSandbox, cache_dir: Path
) -> None:
    hilo = _signed_in(auth_sandbox, HILO)
    before = auth_sandbox.stats()
    fabric = _auth(auth_sandbox, FABRIC)
    assert fabric.token_cache.location != hilo.token_cache.location
    assert fabric.restore() is False
    with pytest.raises(AuthError, match="Not signed in"):
        fabric.token()
    assert _in_new_process(auth_sandbox, FABRIC)["restored"] is False
    assert auth_sandbox.stats()["tokens_issued"] == before["tokens_issued"]  # nothing issued for Fabric
    fabric.sign_in(timeout=30)
    assert _whoami(auth_sandbox, fabric).json()["aud"] == "https://api.fabric.microsoft.com"
    assert _whoami(auth_sandbox, hilo).json()["aud"] == "https://hilo.azurehdinsight.net"
    assert len(list(cache_dir.glob("msal-*.json"))) == 2


def test_device_code_auth_status_reads_a_cached_sign_in_without_the_network(
    auth_sandbox_factory: Callable[..., AuthSandbox],
) -> None:
    sb = auth_sandbox_factory()
    _signed_in(sb)
    sb.stop()  # the identity endpoint is gone: a status read must not need it
    fresh = _auth(sb)
    assert fresh.status == "signed-in"  # what the notebook's Sign in / submit check before prompting
    with pytest.raises(AuthError, match="Cannot"):
        fresh.restore()  # a token does need the identity provider (discovery), and says so in a sentence


def test_device_code_auth_refused_cached_sign_in_reads_signed_out(auth_sandbox: AuthSandbox, cache_dir: Path) -> None:
    auth = _signed_in(auth_sandbox)
    (path,) = cache_dir.glob("msal-*.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    for item in data["AccessToken"].values():
        item["expires_on"] = item["extended_expires_on"] = "1"  # expired long ago
    for item in data["RefreshToken"].values():
        item["secret"] = "revoked-by-the-test"  # the identity endpoint answers invalid_grant
    path.write_text(json.dumps(data), encoding="utf-8")
    later = _auth(auth_sandbox)
    assert later.status == "signed-in"
    with pytest.raises(AuthError, match="sign in again") as info:
        later.token()
    assert info.value.error == "invalid_grant" and "\n" not in str(info.value)
    assert later.status == "signed-out" and later.restore() is False  # Sign in is offered again
    assert auth.status == "signed-in"  # the object that signed in keeps its own state until it asks


def test_notebook_app_after_a_restart_is_signed_in_without_a_prompt(auth_sandbox: AuthSandbox) -> None:
    from hdiaks_widgets.config import BatchSpec, JobConfig
    from hdiaks_widgets.widgets import app

    signer = (f"import sys\nfrom hdiaks_widgets.auth import DeviceCodeAuth\n"
              f"DeviceCodeAuth(tenant_id={TENANT!r}, client_id={PUBLIC_ID!r}, authority_host=sys.argv[1], "
              f"verify=sys.argv[2]).sign_in(timeout=60)\n")  # fmt: skip
    subprocess.run([sys.executable, "-c", signer, auth_sandbox.authority_host, auth_sandbox.ca_pem],
                   check=True, capture_output=True, timeout=120)  # the kernel before the restart
    before = auth_sandbox.stats()
    profile = ClusterProfile(name="entra", flavour="hdinsight-aks", fqdn="mycluster.pool.eastus.hdinsightaks.net",
                             auth="device-code", client_id=PUBLIC_ID, tenant_id=TENANT,
                             authority_host=auth_sandbox.authority_host, verify=auth_sandbox.ca_pem)  # fmt: skip
    ui = app(JobConfig(profile=profile, spec=BatchSpec(file="abfs://apps@acct.dfs.core.windows.net/app.py")),
             profiles={})
    auth = ui.sign_in()  # what the Sign in button's thread runs
    assert isinstance(auth, DeviceCodeAuth) and auth.status == "signed-in"
    assert "Already signed in." in ui.sign_in_note.value
    assert _whoami(auth_sandbox, auth).status_code == 200
    assert auth_sandbox.stats()["devicecode_requests"] == before["devicecode_requests"]
    ui.close()


# -- the canary ----------------------------------------------------------------------------------


def test_token_cache_tokens_never_appear_in_logs_reprs_or_errors(
    auth_sandbox: AuthSandbox, cache_dir: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("msal", "msal_extensions", "urllib3", "requests", "hdiaks_widgets"):
        caplog.set_level(logging.DEBUG, logger=name)
    auth = _signed_in(auth_sandbox)
    tokens = [auth.token().token]
    assert _whoami(auth_sandbox, auth).status_code == 200
    auth_sandbox.revoke()
    assert _whoami(auth_sandbox, auth).status_code == 200  # the 401 + refresh path
    tokens.append(auth.token().token)
    assert _in_new_process(auth_sandbox)["restored"] is True
    needles = sorted(set(tokens + _cached_secrets(cache_dir)))
    texts = [repr(auth), repr(auth.token_cache), str(auth.token_cache.store)]
    auth.sign_out()
    with pytest.raises(AuthError) as info:
        auth.token()
    texts += [str(info.value), repr(info.value)]
    out = capsys.readouterr()
    haystack = "\n".join([caplog.text, out.out, out.err, *texts, *(r.getMessage() for r in caplog.records)])
    assert caplog.records and len(needles) >= 4  # access + refresh + id tokens were really collected
    for needle in needles:
        assert needle not in haystack


# -- two real kernels (nbclient) ---------------------------------------------------------------

_KERNEL_SETUP = """import os, requests
from hdiaks_widgets.auth import DeviceCodeAuth
prompts = []
auth = DeviceCodeAuth(tenant_id={tenant!r}, client_id={client!r}, authority_host={host!r}, verify={ca!r},
                      on_code=prompts.append)
print("pid", os.getpid())"""


def _run_kernel(sb: AuthSandbox, tmp_path: Path, name: str, *cells: str) -> tuple[str, str]:
    """Run the setup cell and ``cells`` in a fresh kernel; (the printed text, the saved notebook)."""
    import nbformat
    from nbclient import NotebookClient

    setup = _KERNEL_SETUP.format(tenant=TENANT, client=PUBLIC_ID, host=sb.authority_host, ca=sb.ca_pem)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in (setup, *cells)])
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    printed = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
    return printed, path.read_text(encoding="utf-8")


_WHOAMI = "print('whoami', requests.get({url!r}, auth=auth, verify={ca!r}, timeout=10).status_code)"


@pytest.mark.notebook
def test_device_code_sign_in_survives_a_kernel_restart_and_sign_out_ends_it(
    auth_sandbox: AuthSandbox, cache_dir: Path, tmp_path: Path
) -> None:
    whoami = _WHOAMI.format(url=auth_sandbox.whoami_url, ca=auth_sandbox.ca_pem)
    start = auth_sandbox.stats()
    sign_in = "auth.sign_in(timeout=60)\nprint('prompts', len(prompts))"
    first, nb1 = _run_kernel(auth_sandbox, tmp_path, "first", sign_in, whoami, "print(repr(auth))")
    assert "prompts 1" in first and "whoami 200" in first, first
    needles = _cached_secrets(cache_dir)
    signed_in = auth_sandbox.stats()
    assert signed_in["devicecode_requests"] - start["devicecode_requests"] == 1

    second, nb2 = _run_kernel(auth_sandbox, tmp_path, "second", "print('restored', auth.restore(), len(prompts))",
                              whoami, "print('signed out', auth.sign_out())")  # fmt: skip
    assert first.split()[1] != second.split()[1], "the two notebooks must run in two kernels"
    assert "restored True 0" in second and "whoami 200" in second and "signed out True" in second, second
    assert auth_sandbox.stats()["devicecode_requests"] == signed_in["devicecode_requests"]  # no prompt
    assert not list(cache_dir.glob("msal-*.json"))

    third, _ = _run_kernel(auth_sandbox, tmp_path, "third", "print('restored', auth.restore(), len(prompts))")
    assert "restored False 0" in third, third
    assert needles
    for needle in needles:  # the saved notebooks hold no token
        assert needle not in nb1 and needle not in nb2
