"""The reliability campaign's scenarios (issue 13, item 4), each a bounded loop on loopback.

Every scenario runs the real client (``LivyClient``, ``BatchRun``, ``BatchMonitor``, real
``msal`` through ``ServicePrincipalAuth``) against the real sandbox (``python -m
hdiaks_widgets.sandbox``, its fault rules from ``hdiaks_widgets.sandbox.faults``) and counts on
the server side what really happened: the batch registry's records by name, the fault book's
request and fault counters, the identity endpoint's token counters, the log view it serves.

Scenarios return an :class:`Outcome` (attempted, survived, lost, details). ``bench/soak.py``
runs them at full size (``make soak``); ``tests/test_soak_short.py`` runs them small and asserts
the same invariants. Batches whose file does not exist cost no Spark (the sandbox says so in the
log and the batch is ``dead`` at once); the ones whose log matters run :data:`CHATTER`, a Python
file that prints numbered lines without starting a SparkSession (spark-submit's JVM only).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from hdiaks_widgets import wire
from hdiaks_widgets.auth import ServicePrincipalAuth, clear_token_cache
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.livy import LivyClient, RetryPolicy
from hdiaks_widgets.monitor import BatchMonitor
from hdiaks_widgets.run import BatchRun, Snapshot
from hdiaks_widgets.sandbox.launcher import SandboxProcess, start_sandbox_process

__all__ = [
    "CANARY_SECRET",
    "CHATTER",
    "Outcome",
    "Sandbox",
    "hostile_inputs",
    "restart_mid_watch",
    "scan_for_canaries",
    "submits_under_faults",
    "tokens_mid_watch",
    "watched_under_faults",
]

log = logging.getLogger("soak")

# Secrets the campaign hands the client; none may appear in any log, repr, file or message.
CANARY_SECRET = "CANARY-sp-" + "7c1e0d5a9b"  # the service principal's client secret
CANARY_PASSWORD = "CANARY-pw-" + "3f8a2b6e41"  # a password typed into a URL (hostile input)

APP_CONTAINER = "soak"
CHATTER_PATH = "py/chatter.py"
CHATTER_URI = f"abfs://{APP_CONTAINER}@sandbox.dfs.core.windows.net/{CHATTER_PATH}"
# Prints LINES numbered lines (one stderr line every tenth) PAUSE seconds apart; no SparkSession,
# so a batch costs one spark-submit JVM (about 4 s on the 2-core machine) and no executors.
CHATTER = '''"""Soak app: chatter.py LINES PAUSE -- numbered lines, no SparkSession."""
import sys
import time

lines = int(sys.argv[1]) if len(sys.argv) > 1 else 20
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
for i in range(1, lines + 1):
    print(f"chatter out {i:05d} of {lines}", flush=True)
    if i % 10 == 0:
        print(f"chatter err {i:05d} of {lines}", file=sys.stderr, flush=True)
    if pause:
        time.sleep(pause)
'''


def missing_uri(name: str) -> str:
    """A file that does not exist (the batch dies at once, no Spark); the name shows in its log."""
    return f"abfs://{APP_CONTAINER}@sandbox.dfs.core.windows.net/missing/{name}.py"


@dataclass
class Outcome:
    """One scenario's figure: what was attempted, what survived, what was lost, and how."""

    scenario: str
    attempted: int
    survived: int
    lost: int
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the first few losses, described
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "attempted": self.attempted, "survived": self.survived, "lost": self.lost,
            "details": self.details, "problems": self.problems, "seconds": round(self.seconds, 1),
        }  # fmt: skip


def _note(problems: list[str], text: str, limit: int = 12) -> None:
    if len(problems) < limit:
        problems.append(text)


# -- the sandbox under test -------------------------------------------------------------------


class Sandbox:
    """A sandbox process plus its control endpoints (faults, counters, raw views)."""

    def __init__(self, process: SandboxProcess) -> None:
        self.process = process
        self.url = process.url
        self.root = process.root
        self._http = requests.Session()
        self._http.trust_env = False  # this machine's proxy/CA variables must not touch loopback

    @classmethod
    def start(cls, root: Path, **options: Any) -> Sandbox:
        options.setdefault("retain_seconds", 3600.0)
        process = start_sandbox_process(root, **options)
        install_chatter(process.root)
        return cls(process)

    def stop(self) -> list[int]:
        self._http.close()
        return self.process.stop()

    def get(self, path: str, **params: Any) -> Any:
        answer = self._http.get(self.url + path, params=params or None, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def set_faults(self, rules: Sequence[dict[str, Any]]) -> None:
        self._http.post(f"{self.url}/_sandbox/faults", json=list(rules), timeout=10).raise_for_status()

    def fault_stats(self) -> dict[str, Any]:
        return dict(self.get("/_sandbox/faults"))

    def clear_faults(self) -> None:
        self._http.delete(f"{self.url}/_sandbox/faults", timeout=10).raise_for_status()

    def batches(self) -> list[dict[str, Any]]:
        """Every batch record the registry holds (Apache Livy's routes), by id."""
        return list(self.get("/batches", **{"from": 0, "size": -1})["sessions"])

    def full_log(self, batch_id: str) -> dict[str, list[str]]:
        """The whole log view as the server serves it, split into its sections."""
        view = self.get(f"/batches/{batch_id}/log", **{"from": 0, "size": 1_000_000})["log"]
        sections: dict[str, list[str]] = {"livy stdout": [], "livy stderr": []}
        current = None
        for line in view:
            if line == "stdout: ":
                current = "livy stdout"
            elif line == "\nstderr: ":
                current = "livy stderr"
            elif line.startswith("\n") and line.endswith(": "):
                current = None  # YARN/Kubernetes diagnostics: not in the process shape used here
            elif current is not None:
                sections[current].append(line)
        return sections


def install_chatter(root: Path) -> None:
    path = root / "storage" / "sandbox" / APP_CONTAINER / CHATTER_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CHATTER, encoding="utf-8")


def _rules(rate: float, kinds: Sequence[dict[str, Any]], *, methods: Sequence[str], prefix: str, seed: int
           ) -> list[dict[str, Any]]:  # fmt: skip
    """Fault rules that together fire on about ``rate`` of the matching requests: each rule is
    tried in turn with the same probability p, so 1 - (1 - p) ** len(kinds) == rate."""
    p = 1.0 - (1.0 - rate) ** (1.0 / len(kinds))
    return [
        {**kind, "methods": list(methods), "path_prefix": prefix, "count": None, "probability": round(p, 6),
         "seed": seed + i}
        for i, kind in enumerate(kinds)
    ]  # fmt: skip


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"


# -- 1. submits under faults -------------------------------------------------------------------


def submits_under_faults(sb: Sandbox, *, n: int = 200, workers: int = 4, seed: int = 13) -> Outcome:
    """``n`` submits while POSTs are dropped after the batch was created, refused with 503/429 and
    ``Retry-After``, or stalled past the client's read timeout (and the name lookups that resolve
    an ambiguous POST meet 503s and drops too). Half the names are the caller's (looked up before
    the POST), half ``hdiaks-<hex>`` made by ``wire.unique_batch_name`` (not looked up, as the CLI
    does). Counted on the server: records per name, POSTs that arrived, faults that fired."""
    started = time.monotonic()
    tag = secrets.token_hex(3)
    before = {str(b["id"]) for b in sb.batches()}
    sb.clear_faults()
    post_kinds = [
        {"kind": "drop_after"},
        {"kind": "status", "status": 503, "retry_after": 1},
        {"kind": "status", "status": 429, "retry_after": 1},
        {"kind": "slow", "seconds": 1.5},  # the client's read timeout is 1 s: the POST is handled later
    ]
    get_kinds = [{"kind": "status", "status": 503}, {"kind": "drop"}]
    sb.set_faults(_rules(0.4, post_kinds, methods=["POST"], prefix="/batches", seed=seed)
                  + _rules(0.15, get_kinds, methods=["GET"], prefix="/batches", seed=seed + 100))  # fmt: skip
    results: list[tuple[str, str, str | None, str]] = []
    lock = threading.Lock()
    todo = list(range(n))

    def worker() -> None:
        client = LivyClient(sb.url, timeout=(2.0, 1.0), retry=RetryPolicy(budget=20.0))
        with client:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop(0)
                caller_named = i % 2 == 0
                name = f"soak-{tag}-{i:04d}" if caller_named else wire.unique_batch_name()
                spec = BatchSpec(file=missing_uri(name), name=name)
                try:
                    batch = client.submit_batch(spec, name_checked=not caller_named)
                    row = (name, "created", batch.id, "")
                except HdiaksError as exc:
                    row = (name, "refused", None, _one_line(exc))
                except Exception as exc:  # noqa: BLE001 - a crash is what the campaign counts
                    row = (name, "crashed", None, "".join(traceback.format_exception_only(exc)).strip())
                with lock:
                    results.append(row)

    threads = [threading.Thread(target=worker, name=f"soak-submit-{k}") for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = sb.fault_stats()
    sb.clear_faults()
    records = [b for b in sb.batches() if str(b["id"]) not in before]
    ours = {name for name, *_ in results}
    by_name: dict[str, list[str]] = {}
    for rec in records:
        by_name.setdefault(str(rec["name"]), []).append(str(rec["id"]))
    problems: list[str] = []
    survived = 0
    outcomes: Counter[str] = Counter()
    for name, outcome, batch_id, message in results:
        ids = by_name.get(name, [])
        ok = (outcome == "created" and ids == [batch_id]) or (outcome == "refused" and not ids)
        outcomes[outcome if ok else f"{outcome}, server has {len(ids)}"] += 1
        if outcome == "refused":
            outcomes["refused: " + message.split(":", 1)[0]] += 1
            if "\n" in message or "Traceback" in message:
                ok = False
                _note(problems, f"{name}: refusal is not one line: {message!r}")
        if ok:
            survived += 1
        else:
            _note(problems, f"{name}: client says {outcome} ({batch_id or message}), server has ids {ids}")
    duplicates = sum(len(ids) - 1 for ids in by_name.values() if len(ids) > 1)
    orphans = sorted(name for name in by_name if name not in ours)
    for name in orphans:
        _note(problems, f"server has batch {by_name[name]} named {name!r} that no submit returned or refused")
    fired = stats.get("fired", {})
    return Outcome(
        "submits under faults", attempted=n, survived=survived, lost=n - survived + len(orphans),
        details={
            "created": sum(1 for r in results if r[1] == "created"),
            "refused": sum(1 for r in results if r[1] == "refused"),
            "crashed": sum(1 for r in results if r[1] == "crashed"),
            "duplicates": duplicates,
            "orphans": len(orphans),
            "posts_arrived": int(stats["requests"].get("POST /batches", 0)),
            "faults_fired": dict(sorted(fired.items())),
            "outcomes": dict(sorted(outcomes.items())),
            "refusals_said": sorted({r[3][:160] for r in results if r[1] == "refused"})[:3],
        },
        problems=problems, seconds=time.monotonic() - started,
    )  # fmt: skip


# -- 2. watched batches under faults ------------------------------------------------------------


class _Watch:
    """What one monitor showed: every state change and whether a poll failed (user-visible)."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.failed_polls = 0
        self.errors: list[str] = []

    def __call__(self, snap: Snapshot) -> None:
        label = snap.state_label
        if not self.states or self.states[-1] != label:
            self.states.append(label)
        if snap.errors:
            self.failed_polls += 1
            if snap.error and len(self.errors) < 3:
                self.errors.append(snap.error)


_LIFECYCLE = ["unknown", "not_started", "starting", "running", "success", "dead", "killed", "error"]


def _in_order(states: Iterable[str]) -> bool:
    """States seen only move forward through Livy's batch lifecycle (no terminal state but the last)."""
    positions = [_LIFECYCLE.index(s) if s in _LIFECYCLE else -1 for s in states]
    return -1 not in positions and positions == sorted(positions) and sum(p >= 4 for p in positions) <= 1


def _compare_lines(shown: Sequence[Any], served: dict[str, list[str]]) -> tuple[int, int, int, bool]:
    """(served, lost, repeated, in order) of what a monitor showed against the server's view."""
    total = lost = repeated = 0
    in_order = True
    for section, lines in served.items():
        mine = [str(line) for line in shown if getattr(line, "source", None) == section]
        total += len(lines)
        lost += sum((Counter(lines) - Counter(mine)).values())
        repeated += sum((Counter(mine) - Counter(lines)).values())
        in_order = in_order and mine == lines
    others = [line for line in shown if getattr(line, "source", None) not in served]
    repeated += len(others)  # a line from nowhere the server served
    return total, lost, repeated, in_order


def _watch_all(
    runs: Sequence[BatchRun], *, timeout: float, interval: float = 0.5, max_interval: float = 3.0
) -> tuple[list[BatchMonitor], list[_Watch]]:
    watches = [_Watch() for _ in runs]
    monitors = [BatchMonitor(run, on_snapshot=w, interval=interval, max_interval=max_interval)
                for run, w in zip(runs, watches, strict=True)]  # fmt: skip
    for m in monitors:
        m.start()
    deadline = time.monotonic() + timeout
    for m in monitors:
        m.wait(max(0.0, deadline - time.monotonic()))
    return monitors, watches


def watched_under_faults(
    sb: Sandbox, *, n: int = 100, rate: float = 0.2, lines: int = 40, clients: int = 10, seed: int = 17,
    timeout: float = 1200.0,
) -> Outcome:  # fmt: skip
    """``n`` batches of :data:`CHATTER` watched by ``n`` monitors (one thread each, ``clients``
    clients shared among them) while ``rate`` of every GET under ``/batches/`` meets a fault
    (503, 502, a dropped connection before or after the answer was made, a 0.3 s stall).
    The sandbox keeps every line (``cache_log_size`` above a batch's output), so what the server
    served is its final view: each monitor must show exactly those lines, each once, in order,
    and end on the server's final state having moved forward through the lifecycle only."""
    started = time.monotonic()
    tag = secrets.token_hex(3)
    sb.clear_faults()
    livy = [LivyClient(sb.url, timeout=(2.0, 5.0)) for _ in range(clients)]
    runs = [BatchRun.submit(livy[i % clients], BatchSpec(file=CHATTER_URI, args=(str(lines), "0.02"),
                                                          name=f"soak-watch-{tag}-{i:03d}"))
            for i in range(n)]  # fmt: skip
    kinds = [
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 502},
        {"kind": "drop"},
        {"kind": "drop_after"},
        {"kind": "slow", "seconds": 0.3},
    ]
    sb.set_faults(_rules(rate, kinds, methods=["GET"], prefix="/batches/", seed=seed))
    try:
        monitors, watches = _watch_all(runs, timeout=timeout)
    finally:
        stats = sb.fault_stats()
        sb.clear_faults()
    problems: list[str] = []
    survived = served_total = lost_lines = repeated_lines = lost_states = unfinished = failed_polls = 0
    for run, monitor, watch in zip(runs, monitors, watches, strict=True):
        snap = monitor.snapshot
        server = sb.get(f"/batches/{run.batch_id}")
        served = sb.full_log(run.batch_id)
        total, lost, repeated, in_order = _compare_lines(snap.lines, served)
        served_total += total
        lost_lines += lost
        repeated_lines += repeated
        failed_polls += watch.failed_polls
        state_ok = snap.finished and snap.state_label == server["state"] and _in_order(watch.states)
        lost_states += not state_ok
        unfinished += not snap.finished
        lines_ok = lost == 0 and repeated == 0 and in_order and snap.log_gaps == 0 and snap.dropped_lines == 0
        if state_ok and lines_ok:
            survived += 1
        else:
            _note(problems, f"batch {run.batch_id}: states {watch.states} (server {server['state']}), "
                            f"finished={snap.finished}, lines served {total} lost {lost} repeated {repeated} "
                            f"in order {in_order}, gaps {snap.log_gaps}, errors {watch.errors}")  # fmt: skip
    for client in livy:
        client.close()
    requests_seen = stats["requests"]
    return Outcome(
        "watched batches under faults", attempted=n, survived=survived, lost=n - survived,
        details={
            "fault_rate": rate,
            "gets": sum(v for k, v in requests_seen.items() if k.startswith("GET /batches/")),
            "faults_fired": dict(sorted(stats.get("fired", {}).items())),
            "lines_served": served_total,
            "lines_lost": lost_lines,
            "lines_repeated": repeated_lines,
            "states_lost": lost_states,
            "monitors_unfinished": unfinished,
            "polls_failed_after_retries": failed_polls,
        },
        problems=problems, seconds=time.monotonic() - started,
    )  # fmt: skip


# -- 3. token expiry and revocation mid-watch ------------------------------------------------------

TENANT = "soak-tenant"
APP_ID = "soak-service-principal"


_NOTEBOOK_CELLS = [
    "import os\n"
    "from hdiaks_widgets.auth import ServicePrincipalAuth\n"
    "from hdiaks_widgets.livy import LivyClient\n"
    "from hdiaks_widgets.monitor import BatchMonitor\n"
    "from hdiaks_widgets.tables import batch_table\n"
    "auth = ServicePrincipalAuth(tenant_id={tenant!r}, client_id={client!r},\n"
    "                            client_secret=os.environ['SOAK_SP_SECRET'], authority_host={authority!r},\n"
    "                            verify={ca!r})\n"
    "client = LivyClient({url!r}, auth=auth)\n"
    "client, auth",
    "page = client.list_batches(start=0, size=20)\npage",
    "batch_table(page.batches)",
    "monitor = BatchMonitor(client, page.batches[0].id, interval=0.2, max_interval=0.5)\n"
    "snap = monitor.run()\nsnap, monitor, snap.batch",
    "auth.token()  # the token object itself, as a user might display it",
]


def _run_notebook(path: Path, values: dict[str, str]) -> None:
    """Execute a small notebook that signs in with the canary secret (from the kernel's
    environment, never in the source), lists, tables and follows batches and shows the objects,
    then save it with its outputs for the canary scan."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell.format(**values)) for cell in _NOTEBOOK_CELLS]
    os.environ["SOAK_SP_SECRET"] = CANARY_SECRET  # the kernel inherits it
    try:
        NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    finally:
        os.environ.pop("SOAK_SP_SECRET", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def tokens_mid_watch(
    root: Path, *, n: int = 50, clients: int = 5, revocations: int = 3, valid_for: int = 6, lines: int = 20,
    pause: float = 1.0, timeout: float = 300.0, notebook: Path | None = None, canaries: dict[str, str] | None = None,
) -> Outcome:  # fmt: skip
    """``n`` monitors (over ``clients`` LivyClients, each with its own ``ServicePrincipalAuth``;
    real msal against the sandbox identity endpoint) watch batches on a bearer-protected sandbox.
    Every token stops being accepted ``valid_for`` seconds after it was issued although msal's
    cache holds it for an hour (``IdentityConfig.clock_skew``: the service's clock runs ahead),
    and all tokens are revoked ``revocations`` times mid-watch. Meanwhile the main thread makes
    direct calls (``get_batch``, ``list_batches``) through the same clients. Counted: polls and
    calls that failed where a user would see it, token requests the identity endpoint served.
    ``notebook``: afterwards run and save a notebook signed in the same way (see ``_run_notebook``).
    ``canaries`` receives the last bearer token the clients held, for the canary scan."""
    from hdiaks_widgets.sandbox.identity import start_auth_services

    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    clear_token_cache()
    services = start_auth_services(root, tenant_id=TENANT, clients={APP_ID: CANARY_SECRET}, vault_secrets={},
                                   token_lifetime=3600, clock_skew=3600 - valid_for)  # fmt: skip
    sb = Sandbox.start(root, bearer=True, max_running=1)
    ca = str(services.ca_pem)
    identity = requests.Session()
    identity.trust_env = False

    def identity_stats() -> dict[str, int]:
        answer = identity.get(services.authority_host + "/_identity/stats", verify=ca, timeout=10)
        answer.raise_for_status()
        return {k: int(v) for k, v in answer.json().items()}

    livy: list[LivyClient] = []
    texts: list[str] = []
    try:
        for _ in range(clients):
            auth = ServicePrincipalAuth(tenant_id=TENANT, client_id=APP_ID, client_secret=CANARY_SECRET,
                                        authority_host=services.authority_host, verify=ca)  # fmt: skip
            livy.append(LivyClient(sb.url, auth=auth, timeout=(2.0, 10.0)))
        tag = secrets.token_hex(3)
        # One batch runs (CHATTER, ~lines*pause seconds); the others queue behind it (max_running 1)
        # and are watched ``starting`` until it ends, then die at once (no such file).
        specs = [BatchSpec(file=CHATTER_URI, args=(str(lines), str(pause)), name=f"soak-token-{tag}-000")]
        specs += [BatchSpec(file=missing_uri(f"soak-token-{tag}-{i:03d}"), name=f"soak-token-{tag}-{i:03d}")
                  for i in range(1, n)]  # fmt: skip
        runs = [BatchRun.submit(livy[i % clients], spec) for i, spec in enumerate(specs)]
        before = identity_stats()
        watches = [_Watch() for _ in runs]
        monitors = [BatchMonitor(run, on_snapshot=w, interval=0.5, max_interval=2.0)
                    for run, w in zip(runs, watches, strict=True)]  # fmt: skip
        for m in monitors:
            m.start()
        calls = call_failures = 0
        revoke_at = [time.monotonic() + 2.0 + k * (valid_for * 0.7) for k in range(revocations)]
        done_revoking = 0
        deadline = time.monotonic() + timeout
        while not all(m.snapshot.finished for m in monitors) and time.monotonic() < deadline:
            if done_revoking < revocations and time.monotonic() >= revoke_at[done_revoking]:
                identity.post(services.authority_host + "/_identity/revoke", verify=ca, timeout=10).raise_for_status()
                done_revoking += 1
            client = livy[calls % clients]
            calls += 1
            try:
                if calls % 2:
                    client.get_batch(runs[calls % n].batch_id)
                else:
                    client.list_batches(start=0, size=100)
            except HdiaksError as exc:
                call_failures += 1
                texts.append(_one_line(exc))
            time.sleep(0.2)
        for m in monitors:
            m.wait(max(0.0, deadline - time.monotonic()))
        after = identity_stats()
        problems: list[str] = []
        survived = 0
        failed_polls = 0
        for run, monitor, watch in zip(runs, monitors, watches, strict=True):
            snap = monitor.snapshot
            texts.extend([repr(snap), repr(monitor), *watch.errors])
            server = {"state": livy[0].get_batch(run.batch_id).state.value}  # the sandbox wants a token
            failed_polls += watch.failed_polls
            if snap.finished and watch.failed_polls == 0 and snap.state_label == server["state"]:
                survived += 1
            else:
                _note(problems, f"batch {run.batch_id}: states {watch.states} (server {server['state']}), "
                                f"failed polls {watch.failed_polls}: {watch.errors}")  # fmt: skip
        texts.extend(repr(c) for c in livy)
        if canaries is not None:
            canaries["bearer token"] = (
                ServicePrincipalAuth(
                    tenant_id=TENANT,
                    client_id=APP_ID,
                    client_secret=CANARY_SECRET,
                    authority_host=services.authority_host,
                    verify=ca,
                )
                .token()
                .token
            )  # the same msal app and cache as the clients': their current token
        if notebook is not None:
            _run_notebook(notebook, {"tenant": TENANT, "client": APP_ID, "authority": services.authority_host,
                                     "ca": ca, "url": sb.url})  # fmt: skip
        for line in texts:
            log.debug("soak tokens: %s", line)
        return Outcome(
            "token expiry and revocation mid-watch", attempted=n, survived=survived, lost=n - survived,
            details={
                "monitors": n, "clients": clients, "revocations": done_revoking,
                "token_valid_seconds": valid_for,
                "direct_calls": calls, "direct_calls_failed": call_failures,
                "polls_failed": failed_polls,
                "token_requests": after["token_requests"] - before["token_requests"],
                "tokens_issued": after["tokens_issued"] - before["tokens_issued"],
            },
            problems=problems, seconds=time.monotonic() - started,
        )  # fmt: skip
    finally:
        for client in livy:
            client.close()
        identity.close()
        left = sb.stop()
        services.shutdown()
        clear_token_cache()
        if left:
            raise RuntimeError(f"processes of the token sandbox outlived it: {left}")


# -- 4. sandbox restart mid-watch ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def restart_mid_watch(root: Path, *, n: int = 20, timeout: float = 120.0, backoff: float = 0.5) -> Outcome:
    """``n`` monitors follow batches (one runs, the rest queue behind it); the sandbox is stopped
    and started again on the same port, and ``n`` other batches are submitted at once, so the
    ids are reused (PROTOCOL.md §2.5: without recovery ids restart at 0). Every monitor must
    stop and say its batch is gone (``purged`` on a 404, ``replaced`` when the id has another
    name) and never show the other batch's state or lines. ``backoff``: the monitors' client's
    retry back-off factor (``RetryPolicy.backoff_factor``; how fast it tries the port again)."""
    started = time.monotonic()
    port = _free_port()
    first = Sandbox.start(root, port=port, max_running=1)
    client = LivyClient(first.url, timeout=(2.0, 5.0), retry=RetryPolicy(backoff_factor=backoff))
    specs = [BatchSpec(file=CHATTER_URI, args=("200", "0.5"), name="soak-before-000")]
    specs += [BatchSpec(file=missing_uri(f"soak-before-{i:03d}"), name=f"soak-before-{i:03d}") for i in range(1, n)]
    second: Sandbox | None = None
    try:
        runs = [BatchRun.submit(client, spec) for spec in specs]
        watches = [_Watch() for _ in runs]
        monitors = [BatchMonitor(run, on_snapshot=w, interval=0.3, max_interval=1.0)
                    for run, w in zip(runs, watches, strict=True)]  # fmt: skip
        for m in monitors:
            m.start()
        wait_until = time.monotonic() + 60
        while any(m.snapshot.polls == 0 for m in monitors) and time.monotonic() < wait_until:
            time.sleep(0.1)
        polled_before = sum(m.snapshot.polls > 0 for m in monitors)
        left = first.stop()
        if left:
            raise RuntimeError(f"processes of the first sandbox outlived it: {left}")
        second = Sandbox.start(root, port=port, max_running=1)
        other = LivyClient(second.url, timeout=(2.0, 5.0))
        reused = [other.submit_batch(BatchSpec(file=missing_uri(f"soak-after-{i:03d}"), name=f"soak-after-{i:03d}"))
                  for i in range(n)]  # fmt: skip
        other.close()
        deadline = time.monotonic() + timeout
        for m in monitors:
            m.wait(max(0.0, deadline - time.monotonic()))
        kinds: Counter[str] = Counter()
        problems: list[str] = []
        survived = 0
        for run, monitor in zip(runs, monitors, strict=True):
            snap = monitor.snapshot
            kinds[str(snap.error_kind)] += 1
            foreign = [line for line in snap.lines if "soak-after-" in line]
            seen_name = snap.batch.name if snap.batch is not None else run.name
            if snap.finished and snap.error_kind in ("purged", "replaced") and not foreign and seen_name == run.name:
                survived += 1
            else:
                _note(
                    problems,
                    f"batch {run.batch_id} ({run.name}): finished={snap.finished} kind={snap.error_kind} "
                    f"state={snap.state_label} name seen {seen_name!r}, foreign lines {len(foreign)}",
                )
        return Outcome(
            "sandbox restart mid-watch (ids reused)", attempted=n, survived=survived, lost=n - survived,
            details={
                "polled_before_restart": polled_before,
                "ids_reused": sum(str(b.id) in {r.batch_id for r in runs} for b in reused),
                "said_purged": kinds["purged"], "said_replaced": kinds["replaced"],
                "other_endings": sum(v for k, v in kinds.items() if k not in ("purged", "replaced")),
                "example": next((m.snapshot.error for m in monitors if m.snapshot.error), None),
            },
            problems=problems, seconds=time.monotonic() - started,
        )  # fmt: skip
    finally:
        client.close()
        first.stop()
        if second is not None:
            left = second.stop()
            if left:
                raise RuntimeError(f"processes of the restarted sandbox outlived it: {left}")


# -- 5. hostile inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One hostile input: where it goes, what it is, and the field its refusal must name."""

    surface: str  # "job.json", "cli", "form"
    case: str
    value: Any
    names: str  # text the one-line refusal must contain (the field or option)


def _job(spec: dict[str, Any] | None = None, profile: dict[str, Any] | None = None, **top: Any) -> str:
    data: dict[str, Any] = {
        "profile": {"name": "soak", "flavour": "sandbox", "url": "http://127.0.0.1:9"} | (profile or {}),
        "spec": {"file": "abfs://examples@sandbox.dfs.core.windows.net/py/pi.py"} | (spec or {}),
    }
    data.update(top)
    return json.dumps(data)


# job.json texts: each must be refused by JobConfig.load in one line naming the field.
JOB_FILES: list[tuple[str, str, str]] = [
    ("not-json", "{profile: sandbox}", "line 1"),
    ("empty", "", "config"),
    ("a-list", "[1, 2]", "object"),
    ("a-string", '"job"', "object"),
    ("nan", _job().replace('pi.py"', 'pi.py", "driver_cores": NaN'), "NaN"),
    ("infinity", _job().replace('pi.py"', 'pi.py", "num_executors": Infinity'), "Infinity"),
    ("endless-number", _job().replace('pi.py"', 'pi.py", "driver_cores": ' + "9" * 5000), "line 1"),
    ("duplicate-key", _job()[:-1] + ', "spec": {"file": "x"}}', "spec"),
    ("unknown-top-key", _job(extra=1), "extra"),
    ("unknown-spec-key", _job({"fil": "x"}), "fil"),
    ("unknown-profile-key", _job(profile={"passwd": CANARY_PASSWORD}), "passwd"),
    ("spec-not-object", json.dumps({"profile": {"flavour": "sandbox"}, "spec": "pi.py"}), "spec"),
    ("profile-null", json.dumps({"profile": None, "spec": {"file": "x"}}), "profile"),
    ("file-missing", _job({"file": ""}), "spec.file"),
    ("file-number", _job({"file": 5}), "spec.file"),
    ("file-relative", _job({"file": "app.py"}), "spec.file"),
    ("file-hdfs", _job({"file": "hdfs:///apps/app.py"}), "spec.file"),
    ("file-dotdot", _job({"file": "abfs://c@a.dfs.core.windows.net/../../etc/passwd"}), "spec.file"),
    ("file-newline", _job({"file": "abfs://c@a.dfs.core.windows.net/a.py\nX-Evil: 1"}), "spec.file"),
    ("file-nul", _job({"file": "abfs://c@a.dfs.core.windows.net/a\u0000.py"}), "spec.file"),
    ("args-string", _job({"args": "--n 10"}), "spec.args"),
    ("args-nested", _job({"args": [["a"]]}), "spec.args"),
    ("cores-negative", _job({"driver_cores": -1}), "spec.driver_cores"),
    ("cores-float", _job({"executor_cores": 1.5}), "spec.executor_cores"),
    ("cores-bool", _job({"num_executors": True}), "spec.num_executors"),
    ("cores-string", _job({"driver_cores": "two"}), "spec.driver_cores"),
    ("memory-words", _job({"driver_memory": "lots"}), "spec.driver_memory"),
    ("memory-negative", _job({"executor_memory": "-4g"}), "spec.executor_memory"),
    ("conf-list", _job({"conf": ["a=b"]}), "spec.conf"),
    ("conf-key-newline", _job({"conf": {"spark.a\nb": "1"}}), "spec.conf"),
    ("conf-value-object", _job({"conf": {"spark.a": {"b": 1}}}), "spec.conf"),
    ("name-newline", _job({"name": "job\nname"}), "spec.name"),
    ("name-huge", _job({"name": "n" * 100_000}), "spec.name"),
    ("jars-string", _job({"jars": "a.jar"}), "spec.jars"),
    ("py-files-null-item", _job({"py_files": [None]}), "spec.py_files"),
    ("proxy-user-newline", _job({"proxy_user": "bob\nadmin"}), "spec.proxy_user"),
    ("flavour-unknown", _job(profile={"flavour": "emr"}), "profile.flavour"),
    ("url-javascript", _job(profile={"url": "javascript:alert(1)"}), "profile.url"),
    ("url-credentials", _job(profile={"url": f"http://admin:{CANARY_PASSWORD}@127.0.0.1:9"}), "profile.url"),
    ("url-port-zero", _job(profile={"url": "http://127.0.0.1:0"}), "profile.url"),
    ("url-query", _job(profile={"url": "http://127.0.0.1:9/?doAs=admin"}), "profile.url"),
    ("timeout-negative", _job(profile={"read_timeout": -1}), "profile.read_timeout"),
    ("timeout-huge", _job(profile={"connect_timeout": 1e308}), "profile.connect_timeout"),
]


def _cli_cases(url: str, folder: Path) -> list[tuple[str, list[str], str]]:
    """``hdiaks`` argument vectors that must each end with one line on stderr naming the option."""
    cases: list[tuple[str, list[str], str]] = [
        ("status-path-traversal", ["status", "../sessions/0", "--url", url], "batch"),
        ("status-query-in-id", ["status", "0?doAs=admin", "--url", url], "batch"),
        ("status-newline-id", ["status", "1\n2", "--url", url], "batch"),
        ("kill-empty-id", ["kill", "", "--url", url], "batch"),
        ("logs-negative-poll", ["logs", "0", "--follow", "--poll", "-1", "--url", url], "--poll"),
        ("submit-nan-poll", ["submit", "--file", CHATTER_URI, "--wait", "--poll", "nan", "--url", url], "--poll"),
        ("list-size-word", ["list", "--size", "ten", "--url", url], "--size"),
        ("url-not-a-url", ["list", "--url", "not a url"], "url"),
        ("url-credentials", ["list", "--url", f"http://admin:{CANARY_PASSWORD}@127.0.0.1:9"], "url"),
        ("url-ftp", ["list", "--url", "ftp://127.0.0.1:21"], "url"),
        ("submit-blank-file", ["submit", "--file", " ", "--url", url], "file"),
        ("submit-relative-file", ["submit", "--file", "x.py", "--url", url], "file"),
        ("submit-name-newline", ["submit", "--file", CHATTER_URI, "--name", "a\nb", "--url", url], "name"),
        ("config-missing", ["submit", "--config", str(folder / "nope.json")], "nope.json"),
        ("config-and-profile", ["submit", "--config", str(folder / "x.json"), "--profile", "p"], "--profile"),
        ("export-bad-dag-id", ["export-dag", "--config", str(folder / "good.json"), "--dag-id", "bad id!",
                               "--out", str(folder / "dags")], "--dag-id"),
        ("export-bad-schedule", ["export-dag", "--config", str(folder / "good.json"), "--dag-id", "soak",
                                 "--schedule", "@nightly", "--out", str(folder / "dags")], "--schedule"),
    ]  # fmt: skip
    for case, _text, names in JOB_FILES[::3]:  # a third of the job files through the CLI as well
        cases.append((f"config-{case}", ["submit", "--config", str(folder / f"{case}.json")], names))
    return cases


# Form fields set to hostile text: (field attribute, value, problem field the form must name).
FORM_CASES: list[tuple[str, str, str]] = [
    ("file", "", "spec.file"),
    ("file", "hdfs:///x.py", "spec.file"),
    ("file", "relative.py", "spec.file"),
    ("file", "abfs://c@a.dfs.core.windows.net/a.py\nX: 1", "spec.file"),
    ("driver_cores", "two", "spec.driver_cores"),
    ("driver_cores", "-1", "spec.driver_cores"),
    ("executor_cores", "1.5", "spec.executor_cores"),
    ("num_executors", "1e9999", "spec.num_executors"),
    ("driver_memory", "lots", "spec.driver_memory"),
    ("executor_memory", "4 GB please", "spec.executor_memory"),
    ("name", "job\nname", "spec.name"),
    ("proxy_user", "bob\nadmin", "spec.proxy_user"),
    ("jars", "hdfs:///x.jar", "spec.jars"),
    ("py_files", "ftp://x/y.py", "spec.py_files"),
    ("url", "javascript:alert(1)", "profile.url"),
    ("url", f"http://admin:{CANARY_PASSWORD}@127.0.0.1:9", "profile.url"),
    ("url", "http://127.0.0.1:0", "profile.url"),
    ("url", "", "profile.url"),
]


_PROBLEMS = re.compile(r"\b\d+ problems\b")


def _one_line_naming(text: str, names: str) -> str | None:
    """Why ``text`` is not a one-line refusal naming ``names`` (None when it is)."""
    stripped = text.strip()
    if not stripped:
        return "no message"
    if "Traceback" in text:
        return "a traceback"
    lines = stripped.splitlines()
    # Several problems at once (ConfigError reports them all): a count, then one line per problem.
    listed = len(lines) > 1 and _PROBLEMS.search(lines[0]) and all(x.lstrip().startswith("- ") for x in lines[1:])
    if len(lines) > 1 and not listed:
        return f"{len(lines)} lines"
    if names.lower() not in stripped.lower():
        return f"does not name {names!r}"
    return None


def hostile_inputs(sb: Sandbox, folder: Path, *, cli_limit: int | None = None) -> tuple[Outcome, list[str]]:
    """Hostile values at ``JobConfig.load``, the ``hdiaks`` command (a process each) and the
    notebook form (ipywidgets objects in-process): each must be refused with one line naming
    the field or option and no traceback, and nothing may reach the server (POST count 0).
    Returns the outcome and every message (for the canary scan)."""
    from hdiaks_widgets.errors import ConfigError

    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    sb.clear_faults()
    messages: list[str] = []
    problems: list[str] = []
    attempted = survived = 0
    by_surface: Counter[str] = Counter()

    def judge(surface: str, case: str, text: str, names: str, *, crashed: bool = False) -> None:
        nonlocal attempted, survived
        attempted += 1
        by_surface[surface] += 1
        messages.append(text)
        why = "a crash" if crashed else _one_line_naming(text, names)
        if why is None:
            survived += 1
        else:
            _note(problems, f"{surface} {case}: {why}: {text.strip()[:200]!r}")

    for case, text, names in JOB_FILES:
        path = folder / f"{case}.json"
        path.write_text(text, encoding="utf-8")
        try:
            JobConfig.load(path).validate()
        except ConfigError as exc:
            judge("job.json", case, str(exc), names)
        except Exception as exc:  # noqa: BLE001 - a crash is what the campaign counts
            judge("job.json", case, "".join(traceback.format_exception(exc)), names, crashed=True)
        else:
            judge("job.json", case, "accepted", names, crashed=True)
    good = JobConfig(profile=ClusterProfile(name="soak", flavour="sandbox", url=sb.url),
                     spec=BatchSpec(file=CHATTER_URI))  # fmt: skip
    good.save(folder / "good.json")
    good.save(folder / "x.json")

    hdiaks = str(Path(sys.executable).parent / "hdiaks")
    cli = _cli_cases(sb.url, folder)
    for case, argv, names in cli[:cli_limit]:
        done = subprocess.run([hdiaks, *argv], capture_output=True, text=True, timeout=120, cwd=folder)
        bad_exit = done.returncode == 0 or bool(done.stdout.strip())
        judge("cli", case, done.stderr if not bad_exit else f"exit {done.returncode}: {done.stdout}{done.stderr}",
              names, crashed=bad_exit)  # fmt: skip

    from hdiaks_widgets.widgets.form import JobForm

    for attr, value, names in FORM_CASES:
        form = JobForm(good, profiles={})
        try:
            getattr(form, attr).value = value
            found = [p for p in form.validate() if p.field.startswith(names)]
            shown = form.messages[names].value if names in form.messages else ""
            crash = [p for p in form.problems if p.field == "other"]
            text = "; ".join(p.message for p in found) if found else "no problem named " + names
            judge("form", f"{attr}={value[:30]!r}", f"{names}: {text}", names,
                  crashed=not found or bool(crash) or not shown)  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            judge("form", f"{attr}={value[:30]!r}", "".join(traceback.format_exception(exc)), names, crashed=True)
        messages.append(repr(form.config()[0]))
    posts = int(sb.fault_stats()["requests"].get("POST /batches", 0))
    if posts:
        _note(problems, f"{posts} POST /batches reached the server during the hostile inputs")
    return Outcome(
        "hostile inputs (job.json, CLI, form)", attempted=attempted, survived=survived - min(posts, survived),
        lost=attempted - survived + min(posts, survived),
        details={"by_surface": dict(by_surface), "posts_reached_server": posts},
        problems=problems, seconds=time.monotonic() - started,
    ), messages  # fmt: skip


# -- 6. canaries -------------------------------------------------------------------------------------


def scan_for_canaries(
    canaries: dict[str, str], *, folders: Sequence[Path], texts: Sequence[str] = (), dag_dir: Path | None = None,
    cfg_for_dag: JobConfig | None = None, exclude: Sequence[Path] = (),
) -> Outcome:  # fmt: skip
    """Every file under ``folders`` (sandbox logs and roots, the campaign's own log, exported
    DAGs and setup sheets) but those under ``exclude`` (the hostile inputs the campaign wrote
    itself) and every collected text (messages, reprs) is searched for each canary."""
    started = time.monotonic()
    if dag_dir is not None and cfg_for_dag is not None:
        from hdiaks_widgets.dag_export import export_dag_files

        export_dag_files(cfg_for_dag, dag_dir, dag_id="soak_canary")
        export_dag_files(cfg_for_dag, dag_dir / "embedded", dag_id="soak_canary_embedded", embed=True)
    places = 0
    problems: list[str] = []
    found = 0
    for folder in folders:
        skipped = [e.resolve() for e in exclude]
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if any(path.resolve().is_relative_to(e) for e in skipped):
                continue
            places += 1
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for label, value in canaries.items():
                if value.encode() in data:
                    found += 1
                    _note(problems, f"{label} found in {path.name}")
    for i, text in enumerate(texts):
        places += 1
        for label, value in canaries.items():
            if value in text:
                found += 1
                _note(problems, f"{label} found in collected text {i}: {text[:120]!r}")
    return Outcome(
        "canary secrets (logs, reprs, files, notebook, DAGs)", attempted=places, survived=places - found, lost=found,
        details={"canaries": sorted(canaries), "files_and_texts_scanned": places}, problems=problems,
        seconds=time.monotonic() - started,
    )  # fmt: skip
