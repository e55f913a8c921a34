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

    .venv/bin/python bench/notebook_responsiveness.py            # make bench-notebook
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parent.parent

COMMON = """
import json, time, requests
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.monitor import BatchMonitor
from hdiaks_widgets.poller import Poller
_session = requests.Session(); _session.trust_env = False
_client = LivyClient({url!r}, session=_session)
_latest, _ends = {{}}, {{}}
def _on(snap):  # what a view keeps: the latest snapshot, and when the end arrived
    _latest[snap.batch_id] = snap
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
print(json.dumps({{"ends": _ends, "stats": str(_poller.stats()) if _poller else None,
                  "python": __import__("sys").executable, "widget_msgs": globals().get("_wmsgs", []),
                  "roles": _roles}}))
"""


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
        spacing = args.seconds / args.cells
        latencies: list[float] = []
        threads: list[int] = []
        for _ in range(args.cells):
            start = time.perf_counter()
            run_cell(kc, "1+1", timeout=30)
            took = time.perf_counter() - start
            latencies.append(took * 1000)
            threads.append(proc.num_threads())
            time.sleep(max(0.0, spacing - took))
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
            failed = [str(i) for i in range(1, args.batches, 2) if str(i) in ends]
            errors_ok = all(f"failure in batch {i}" in ends[i][2] for i in failed)
            result.update(
                ends=len(ends),
                end_delay_max_s=max(delays) if delays else None,
                end_delay_p50_s=statistics.median(delays) if delays else None,
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


def table(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    rows = ["| scenario | cell p50 ms | p99 ms | max ms | kernel CPU % | threads | Livy requests/min "
            "| all ends arrived | last end after s | error lines | machine load |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        lat = [x for r in runs for x in r["latency_ms"]]
        s = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat),
             "cpu": statistics.median(r["cpu_pct"] for r in runs), "threads": max(r["threads"] for r in runs),
             "rpm": statistics.median(r["requests_per_min"] for r in runs)}  # fmt: skip
        summary[name] = s
        if name == "idle":
            ends, delay, errors = "–", "–", "–"
        else:
            ends = "yes" if all(r["ends"] == args.batches for r in runs) else "no"
            delay = f"{max(r['end_delay_max_s'] for r in runs):.1f}"
            errors = "yes" if all(r["error_lines"] for r in runs) else "no"
        load = "–".join(f"{x:.1f}" for x in sorted({min(r["load"] for r in runs), max(r["load"] for r in runs)}))
        rows.append(f"| {name} | {s['p50']:.1f} | {s['p99']:.1f} | {s['max']:.1f} | {s['cpu']:.0f} | "
                    f"{s['threads']:.0f} | {s['rpm']:.0f} | {ends} | {delay} | {errors} | {load} |")  # fmt: skip
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
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "poll_server.py"), "--batches", str(args.batches)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = json.loads(server.stdout.readline())["url"]
        http = requests.Session()
        http.trust_env = False
        results: dict[str, list[dict[str, Any]]] = {}
        for run in range(args.runs):
            for name in args.scenarios.split(","):
                r = scenario(name, url, args, http)
                results.setdefault(name, []).append(r)
                print(f"run {run + 1} {name}: p50 {pct(r['latency_ms'], 0.5):.1f} ms, p99 "
                      f"{pct(r['latency_ms'], 0.99):.1f} ms, cpu {r['cpu_pct']:.0f} %, threads {r['threads']}, "
                      f"{r['requests_per_min']:.0f} req/min {r.get('poller_stats') or ''}",
                      file=sys.stderr, flush=True)  # fmt: skip
        print(table(results, args))
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    finally:
        server.terminate()
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
