"""Notebook responsiveness with many watched batches (issue 14): a real ipykernel, a loopback Livy.

Not a test: it measures. For each scenario a fresh ipykernel (``jupyter_client``) watches
``--batches`` running batches of ``bench/poll_server.py`` (each log growing by 2 lines a second)
and, after a warm-up, runs ``--cells`` trivial ``1+1`` cells spread over ``--seconds``:

- ``idle``: nothing watched (the floor);
- ``threads``: one ``BatchMonitor`` per batch, each with its own thread (the design before the poller);
- ``poller``: the same monitors on one shared ``Poller`` (``BatchMonitor(..., poller=p)``), one
  batch's log followed (``follow_logs=True``: the batch in view), the others' read at their end.

Measured per scenario: the cell's round trip (send to idle, p50/p99/max over every cell of every
run), the kernel process's CPU (% of one core, from ``psutil``), its threads, the Livy requests
the server counted per minute, and the machine's 1-minute load (on a shared machine other work
slows every cell: compare against ``idle`` of the same run). Then every batch is ended at once on
the server (half ``dead`` with an error line) and the kernel reports when each final snapshot
arrived and whether it carried the error line. The markdown table goes to stdout; ``--json`` writes the raw numbers.

- ``stall`` (issue 12; not in the default list): ``app()`` on a real sandbox
  (``python -m hdiaks_widgets.sandbox`` on a free loopback port, stopped by its PID) runs one
  ``sleep.py`` batch (one short Spark job per run); then the sandbox's fault injection holds every
  ``GET`` and ``DELETE`` under ``/batches`` for ``--stall`` seconds (default: the cell loop plus
  its warm-up plus 10 s, under the client's 60 s read timeout), the kernel clicks Kill (and "Yes,
  kill it") and the history pager's Refresh, Older and Newer, and the trivial cells run while
  those calls are out. Reported: cell p50/p95/p99/max, whether the kill and the page were still
  unanswered when the cells ended, when their answers reached the widgets, and, for comparison,
  one ``client.list_batches`` called from a cell on the kernel thread (what a click that made its
  call there would cost).

    .venv/bin/python bench/notebook_responsiveness.py            # make bench-notebook
    .venv/bin/python bench/notebook_responsiveness.py --runs 2 --scenarios idle,stall
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests
from jupyter_client.manager import start_new_kernel

from hdiaks_widgets.sandbox.launcher import SandboxProcess, start_sandbox_process

ROOT = Path(__file__).resolve().parent.parent

COMMON = """
import json, time, requests
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.monitor import BatchMonitor
from hdiaks_widgets.poller import Poller
_session = requests.Session(); _session.trust_env = False
_client = LivyClient({url!r}, session=_session)
_latest, _ends, _states = {{}}, {{}}, {{}}
def _on(snap):  # what a view keeps: the latest snapshot, and when the end arrived
    _latest[snap.batch_id] = snap
    if snap.state is not None and snap.state.is_terminal and snap.batch_id not in _states:
        _states[snap.batch_id] = time.time()  # the final state on show (its end sentence follows at finished)
    if snap.finished and snap.batch_id not in _ends:
        _ends[snap.batch_id] = (time.time(), snap.state_label, snap.error or "")
_mons, _poller = [], None
"""

SCENARIOS = {
    "idle": "",
    "threads": """
_mons = [BatchMonitor(_client, i, on_snapshot=_on) for i in range({n})]
for _m in _mons: _m.start()
""",
    # app(): JobApp watching the batches on its one poller (the batch on show followed), every comm
    # message the kernel publishes counted (a widget's open, its updates, its close: what a browser
    # would receive; no browser attached). Until 2026-12-02 only updates (Widget._send) were counted.
    "app": """
import ipywidgets as _w
from ipykernel.comm.comm import BaseComm as _Comm
from hdiaks_widgets import ClusterProfile, JobConfig, BatchSpec, app
_wmsgs = []
_publish = _Comm.publish_msg
def _count(self, msg_type, data=None, *args, **kwargs):
    _wmsgs.append((time.time(), len(json.dumps(data, default=str)), msg_type, self.comm_id))
    return _publish(self, msg_type, data, *args, **kwargs)
_Comm.publish_msg = _count
_ui = app(JobConfig(profile=ClusterProfile(name="bench", flavour="sandbox", url={url!r}),
                    spec=BatchSpec(file="local:///bench.py", name="bench")), monitor_interval=1.0)
_mons = [_ui.watch(i) for i in range({n})]
for _m in _mons: _m.add_callback(_on)
_poller = next(iter(_ui._pollers.values()))
""",
    "poller": """
_poller = Poller(_client)
_mons = [BatchMonitor(_client, i, on_snapshot=_on, poller=_poller, follow_logs=(i == 0)) for i in range({n})]
for _m in _mons: _m.start()
""",
}

REPORT = """
_deadline = time.time() + {timeout}
while len(_ends) < {n} and time.time() < _deadline:
    time.sleep(0.05)
_roles = {{}}  # comm id -> what it is in the app (the widgets alive now; a closed one is "gone")
if "_ui" in globals():
    from ipywidgets.widgets.widget import _instances
    for _name in ("status", "poller_line", "message", "batch_selector", "kill_button", "log"):
        _roles[getattr(_ui, _name).model_id] = _name
    _roles[_ui.progress.elapsed.model_id] = "clock"
    for _wid, _obj in list(_instances.items()):
        _classes = set(getattr(_obj, "_dom_classes", ()))
        if "hdiaks-log-chunk" in _classes: _roles[_wid] = "log chunk"
        elif "hdiaks-batch-row" in _classes: _roles[_wid] = "batch row"
        else: _roles.setdefault(_wid, type(_obj).__name__)
print(json.dumps({{"ends": _ends, "states": _states, "stats": str(_poller.stats()) if _poller else None,
                  "python": __import__("sys").executable, "widget_msgs": globals().get("_wmsgs", []),
                  "roles": _roles}}))
"""


def time_cells(kc: Any, cells: int, seconds: float, *, after: Callable[[], object] | None = None) -> list[float]:
    """``cells`` trivial cells (``1+1``) spread over ``seconds``: each one's milliseconds from
    ``execute_request`` sent to the kernel idle again; ``after`` runs after each cell (a sample)."""
    spacing = seconds / cells
    latencies: list[float] = []
    for _ in range(cells):
        start = time.perf_counter()
        run_cell(kc, "1+1", timeout=30)
        took = time.perf_counter() - start
        latencies.append(took * 1000)
        if after is not None:
            after()
        time.sleep(max(0.0, spacing - took))
    return latencies


def run_cell(kc: Any, code: str, timeout: float = 120.0) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, store_history=False, output_hook=hook, timeout=timeout)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel cell failed: {''.join(out)}")
    return "".join(out)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def scenario(name: str, url: str, args: argparse.Namespace, http: requests.Session) -> dict[str, Any]:
    http.post(f"{url}/_poll/reset", timeout=10).raise_for_status()
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        proc = psutil.Process(km.provisioner.process.pid)  # type: ignore[union-attr]
        run_cell(kc, COMMON.format(url=url))
        run_cell(kc, SCENARIOS[name].format(n=args.batches, url=url))
        time.sleep(args.warmup)
        http.delete(f"{url}/_poll/stats", timeout=10).raise_for_status()
        cpu0, t0, wall0 = sum(proc.cpu_times()[:2]), time.monotonic(), time.time()
        threads: list[int] = []
        latencies = time_cells(kc, args.cells, args.seconds, after=lambda: threads.append(proc.num_threads()))
        cpu1, t1, wall1 = sum(proc.cpu_times()[:2]), time.monotonic(), time.time()
        load = os.getloadavg()[0]  # the machine's 1-minute load: other work slows every cell too
        counted = http.get(f"{url}/_poll/stats", timeout=10).json()
        result: dict[str, Any] = {
            "scenario": name,
            "latency_ms": latencies,
            "cpu_pct": (cpu1 - cpu0) / (t1 - t0) * 100,
            "threads": max(threads),
            "requests_per_min": counted["requests"] / (t1 - t0) * 60,
            "load": load,
            "by_route": counted["by_route"],
        }
        if name != "idle":
            ended_at = http.post(f"{url}/_poll/end", timeout=10).json()["ended_at"]
            report = json.loads(run_cell(kc, REPORT.format(n=args.batches, timeout=60)).strip().splitlines()[-1])
            ends = report["ends"]
            delays = [at - ended_at for at, _state, _error in ends.values()]
            state_delays = [at - ended_at for at in report.get("states", {}).values()]
            failed = [str(i) for i in range(1, args.batches, 2) if str(i) in ends]
            errors_ok = all(f"failure in batch {i}" in ends[i][2] for i in failed)
            result.update(
                ends=len(ends),
                end_delay_max_s=max(delays) if delays else None,
                end_delay_p50_s=statistics.median(delays) if delays else None,
                state_delay_max_s=max(state_delays) if state_delays else None,
                error_lines=errors_ok,
                poller_stats=report["stats"],
                python=report["python"],
            )
            window = [m for m in report.get("widget_msgs", []) if wall0 <= m[0] <= wall1]
            if name == "app":
                span = wall1 - wall0
                roles = report.get("roles", {})
                by_source: dict[str, int] = {}
                for _at, _size, kind, cid in window:
                    source = f"{roles.get(cid, 'gone')} {kind.removeprefix('comm_')}"
                    by_source[source] = by_source.get(source, 0) + 1
                result.update(widget_msgs_per_s=len(window) / span,
                              widget_updates_per_s=sum(1 for m in window if m[2] == "comm_msg") / span,
                              widget_kb_per_s=sum(m[1] for m in window) / 1024 / span,
                              widget_by_source={k: round(v / span, 2) for k, v in sorted(by_source.items())})
        return result
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


STALL_SETUP = """
from hdiaks_widgets import ClusterProfile, JobConfig, BatchSpec, app
_ui = app(JobConfig(profile=ClusterProfile(name="bench", flavour="sandbox", url={url!r}),
                    spec=BatchSpec(file={file!r}, args=("600",), name="bench-stall")), monitor_interval=1.0)
_batch = _ui.submit()
_hp = _ui.batch_history
print(_batch.id)
"""

# The clicks as a browser sends them: each handler runs on the kernel's thread and must hand its
# network call to the dispatcher's pool (DELETE for the kill, GET /batches for each page).
STALL_CLICKS = ("_ui.kill_button.click(); _ui.kill_yes.click(); "
                "_hp.refresh_button.click(); _hp.older_button.click(); _hp.newer_button.click()")
STALL_STATE = ("print(json.dumps({'message': _ui.message.value, "
               "'kill_pending': 'Asking Livy to kill' in _ui.message.value, 'page_pending': _hp._pending}))")


def stall_scenario(sb: SandboxProcess, args: argparse.Namespace, http: requests.Session) -> dict[str, Any]:
    """``app()`` on the sandbox, Kill and the history pager out against answers held ``--stall`` s."""
    stall = args.stall if args.stall is not None else args.seconds + args.warmup + 10.0
    http.delete(f"{sb.url}/_sandbox/faults", timeout=10).raise_for_status()
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        proc = psutil.Process(km.provisioner.process.pid)  # type: ignore[union-attr]
        run_cell(kc, COMMON.format(url=sb.url))
        bid = int(run_cell(kc, STALL_SETUP.format(url=sb.url, file=sb.examples["sleep_py"])).split()[-1])
        deadline, state = time.monotonic() + 180, ""
        while time.monotonic() < deadline:  # the Spark job up (read from the bench, not a waiting cell)
            state = http.get(f"{sb.url}/batches/{bid}/state", timeout=10).json()["state"]
            if state in ("running", "dead", "success", "killed"):
                break
            time.sleep(0.5)
        if state != "running":
            tail = "\n".join(sb.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
            raise RuntimeError(f"stall: the sandbox batch {bid} is {state!r}, not running; its log ends:\n{tail}")
        rules = [{"kind": "slow", "seconds": stall, "methods": [m], "path_prefix": "/batches", "count": None}
                 for m in ("GET", "DELETE")]  # fmt: skip
        http.post(f"{sb.url}/_sandbox/faults", json=rules, timeout=10).raise_for_status()
        clicked = time.monotonic()
        run_cell(kc, STALL_CLICKS, timeout=30)
        click_ms = (time.monotonic() - clicked) * 1000
        time.sleep(args.warmup)
        latencies = time_cells(kc, args.cells, args.seconds)
        loop_end_s = time.monotonic() - clicked
        load = os.getloadavg()[0]
        at_end = json.loads(run_cell(kc, STALL_STATE).strip().splitlines()[-1])
        counts = http.get(f"{sb.url}/_sandbox/faults", timeout=10).json().get("requests", {})
        kill_at: float | None = None
        page_at: float | None = None
        kill_message = ""
        deadline = time.monotonic() + stall + 60
        while (kill_at is None or page_at is None) and time.monotonic() < deadline:
            now = json.loads(run_cell(kc, STALL_STATE).strip().splitlines()[-1])
            if kill_at is None and not now["kill_pending"]:
                kill_at, kill_message = time.monotonic() - clicked, re.sub(r"<[^>]+>", "", now["message"])
            if page_at is None and now["page_pending"] == 0:
                page_at = time.monotonic() - clicked
            time.sleep(0.25)
        start = time.perf_counter()  # the same kind of call, made on the kernel thread: the cell waits for it
        run_cell(kc, "_client.list_batches(size=5)", timeout=stall + 60)
        direct_s = time.perf_counter() - start
        http.delete(f"{sb.url}/_sandbox/faults", timeout=10).raise_for_status()
        final = run_cell(kc, "_s = _ui.wait(timeout=120); print(_s.state_label if _s else None); _ui.close()")
        return {
            "scenario": "stall", "latency_ms": latencies, "stall_s": stall, "click_cell_ms": click_ms,
            "loop_end_s": loop_end_s, "load": load, "threads": proc.num_threads(),
            "kill_pending_at_end": at_end["kill_pending"], "pages_pending_at_end": at_end["page_pending"],
            "kill_answered_s": kill_at, "page_answered_s": page_at,
            "kill_message": kill_message,
            "deletes_out": counts.get(f"DELETE /batches/{bid}", 0), "lists_out": counts.get("GET /batches", 0),
            "direct_call_s": direct_s, "final_state": final.strip().splitlines()[-1] if final.strip() else "",
        }  # fmt: skip
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def stall_table(results: dict[str, list[dict[str, Any]]]) -> str:
    rows = ["| scenario | cells | cell p50 ms | p95 ms | p99 ms | max ms | ≤ 100 ms "
            "| Kill / pages out while the cells ran | Kill answered after s | page after s "
            "| a direct `list_batches` from a cell s | machine load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in ("idle", "stall"):
        runs = results.get(name, [])
        if not runs:
            continue
        lat = [x for r in runs for x in r["latency_ms"]]
        within = sum(1 for x in lat if x <= 100) / len(lat) * 100
        load = "–".join(f"{x:.1f}" for x in sorted({min(r["load"] for r in runs), max(r["load"] for r in runs)}))
        if name == "stall":
            out = " / ".join(f"{'yes' if r['kill_pending_at_end'] and r['pages_pending_at_end'] else 'no'} "
                             f"({r['deletes_out']} DELETE, {r['lists_out']} list GET)" for r in runs)  # fmt: skip
            kill = " / ".join("–" if r["kill_answered_s"] is None else f"{r['kill_answered_s']:.1f}" for r in runs)
            page = " / ".join("–" if r["page_answered_s"] is None else f"{r['page_answered_s']:.1f}" for r in runs)
            direct = " / ".join(f"{r['direct_call_s']:.1f}" for r in runs)
        else:
            out = kill = page = direct = "–"
        rows.append(f"| {name} | {len(lat)} | {pct(lat, 0.5):.1f} | {pct(lat, 0.95):.1f} | {pct(lat, 0.99):.1f} | "
                    f"{max(lat):.1f} | {within:.1f} % | {out} | {kill} | {page} | {direct} | {load} |")  # fmt: skip
    for r in results.get("stall", []):
        rows.append(f"\nstall run: answers held {r['stall_s']:.0f} s; the click cell took {r['click_cell_ms']:.0f} ms; "
                    f"cells ended {r['loop_end_s']:.1f} s after the click; kill said {r['kill_message']!r}; "
                    f"the batch ended {r['final_state']}")  # fmt: skip
    return "\n".join(rows)


def table(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    rows = ["| scenario | cell p50 ms | p99 ms | max ms | kernel CPU % | threads | Livy requests/min "
            "| all ends arrived | last final state shown after s | last end (error lines) after s | error lines "
            "| machine load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        lat = [x for r in runs for x in r["latency_ms"]]
        s = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat),
             "cpu": statistics.median(r["cpu_pct"] for r in runs), "threads": max(r["threads"] for r in runs),
             "rpm": statistics.median(r["requests_per_min"] for r in runs)}  # fmt: skip
        summary[name] = s
        if name == "idle":
            ends, shown, delay, errors = "–", "–", "–", "–"
        else:
            shown = f"{max(r['state_delay_max_s'] or 0.0 for r in runs):.2f}"
            ends = "yes" if all(r["ends"] == args.batches for r in runs) else "no"
            delay = f"{max(r['end_delay_max_s'] for r in runs):.2f}"
            errors = "yes" if all(r["error_lines"] for r in runs) else "no"
        load = "–".join(f"{x:.1f}" for x in sorted({min(r["load"] for r in runs), max(r["load"] for r in runs)}))
        rows.append(f"| {name} | {s['p50']:.1f} | {s['p99']:.1f} | {s['max']:.1f} | {s['cpu']:.0f} | "
                    f"{s['threads']:.0f} | {s['rpm']:.0f} | {ends} | {shown} | {delay} | {errors} "
                    f"| {load} |")  # fmt: skip
    for r in results.get("app", []):
        rows.append(f"\napp widget messages: {r['widget_msgs_per_s']:.2f}/s (updates alone "
                    f"{r['widget_updates_per_s']:.2f}/s), {r['widget_kb_per_s']:.2f} KB/s; per second by source: "
                    + ", ".join(f"{k} {v}" for k, v in r["widget_by_source"].items()))  # fmt: skip
    if "threads" in summary and "poller" in summary:
        a, b = summary["threads"], summary["poller"]
        rows += ["", "poller / threads: " + ", ".join(
            f"{k} {b[k] / a[k]:.2f}×" for k in ("p50", "p99", "max", "cpu", "threads", "rpm") if a[k])]  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0, help="the cells are spread over this long")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default="idle,threads,poller,app")
    parser.add_argument("--stall", type=float, default=None,
                        help="stall: seconds the sandbox holds each answer (default: warm-up + cells + 10 s)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    names = args.scenarios.split(",")
    unknown = sorted(set(names) - set(SCENARIOS) - {"stall"})
    if unknown:
        parser.error(f"--scenarios: unknown {', '.join(unknown)}; known: {', '.join([*SCENARIOS, 'stall'])}")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "poll_server.py"), "--batches", str(args.batches)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    sandbox_root = tempfile.TemporaryDirectory(prefix="bench-stall-") if "stall" in names else None
    sb: SandboxProcess | None = None
    try:
        assert server.stdout is not None
        url = json.loads(server.stdout.readline())["url"]
        if sandbox_root is not None:
            sb = start_sandbox_process(Path(sandbox_root.name) / "sandbox", port=0)
        http = requests.Session()
        http.trust_env = False
        results: dict[str, list[dict[str, Any]]] = {}
        for run in range(args.runs):
            for name in names:
                if name == "stall":
                    assert sb is not None
                    r = stall_scenario(sb, args, http)
                    results.setdefault(name, []).append(r)
                    print(f"run {run + 1} stall: p50 {pct(r['latency_ms'], 0.5):.1f} ms, p99 "
                          f"{pct(r['latency_ms'], 0.99):.1f} ms, max {max(r['latency_ms']):.1f} ms, kill answered "
                          f"{r['kill_answered_s']} s, page {r['page_answered_s']} s, direct {r['direct_call_s']:.1f} s",
                          file=sys.stderr, flush=True)  # fmt: skip
                    continue
                r = scenario(name, url, args, http)
                results.setdefault(name, []).append(r)
                print(f"run {run + 1} {name}: p50 {pct(r['latency_ms'], 0.5):.1f} ms, p99 "
                      f"{pct(r['latency_ms'], 0.99):.1f} ms, cpu {r['cpu_pct']:.0f} %, threads {r['threads']}, "
                      f"{r['requests_per_min']:.0f} req/min {r.get('poller_stats') or ''}",
                      file=sys.stderr, flush=True)  # fmt: skip
        plain = {k: v for k, v in results.items() if k != "stall"}
        if plain:
            print(table(plain, args))
        if "stall" in results:
            print("\n" + stall_table(results))
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    finally:
        if sb is not None:
            left = sb.stop()  # by its PID; then its process group's leftovers are listed
            if left:
                print(f"sandbox processes still alive: {left}", file=sys.stderr)
        if sandbox_root is not None:
            sandbox_root.cleanup()
        server.terminate()
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
