"""Peer benchmark: raw ``requests`` (the floor), hdiaks-widgets, pylivy and Airflow's ``LivyHook``
on one load server (``bench/load_server.py``), each client in its own process, results as ratios.

Run with ``make bench-peers`` (part of ``make bench``) or ``.venv/bin/python bench/peers.py``; it
writes its section of ``docs/benchmarks.md`` (between the ``bench:peers`` markers) and the raw
numbers to ``build/bench/peers.json``. Scenarios (issue 13, item 1):

- S1 per-call overhead: 2,000 sequential state reads; µs per call and client CPU per call;
- S2 the state of 1,000 batches as a DataFrame: requests and time;
- S3 the whole driver log of 1,000,000 lines by byte range, written to a file: requests, MB, wall,
  client CPU, peak RSS above the process's RSS before the scenario;
- S4 live tail of two growing batches (100,000 lines in 20 s each): Livy's bounded view
  (``grow-view``) and a YARN batch's driver log (``grow-driver``), one read of each per 0.5 s tick;
- snapshot cost: ``BatchRun.poll`` over a 1,000,000-line driver log, CPU and memory per poll.

Each (client, scenario) is a fresh subprocess (``peers.py worker ...``) that times its own loop
(``perf_counter``, ``process_time``) after a warm-up, so interpreter start and imports are not
in the numbers; the load server counts requests and bytes (``/_load/stats``). The worker code
imports only the standard library and ``requests`` at module level, so the same file runs in
``.venv-airflow3`` for the ``LivyHook``. Measurements, not tests: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

# bench/ is sys.path[0] when this file runs as a script (also in the Airflow venv's workers)
from machine_info import cpu_model, version

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW3 = ROOT / ".venv-airflow3"
BEGIN = "<!-- bench:peers begin (bench/peers.py rewrites this section) -->"
END = "<!-- bench:peers end -->"
CHUNK = 1 << 20  # bytes per range request, as logview.DriverLogReader reads
TERMINAL = {"success", "dead", "killed", "error"}
_NUMBERED = re.compile(r"(9000|9001) stdout line (\d{7})")
VIEW, DRIVER = "9000", "9001"  # the load server's grow-view and grow-driver batches


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _peak_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# -- the clients, each as the few calls a user of it would write ---------------------------------


def _raw_session() -> requests.Session:
    return requests.Session()


def _hdiaks(url: str) -> Any:
    from hdiaks_widgets import LivyClient

    return LivyClient(url)


def _pylivy(url: str) -> Any:
    from livy.client import LivyClient as PyLivyClient

    return PyLivyClient(url)


def _hook() -> Any:
    from airflow.providers.apache.livy.hooks.livy import LivyHook

    return LivyHook(livy_conn_id="load")


def s1_reader(client: str, url: str) -> Callable[[int], str]:
    """One state read of batch ``i`` as each client does it."""
    if client == "raw":
        s = _raw_session()
        return lambda i: s.get(f"{url}/batches/{i}/state", timeout=60).json()["state"]
    if client == "raw-batch":
        s = _raw_session()
        return lambda i: s.get(f"{url}/batches/{i}", timeout=60).json()["state"]
    if client == "hdiaks":
        c = _hdiaks(url)
        return lambda i: c.get_batch_state(i).value
    if client == "hdiaks-batch":
        c = _hdiaks(url)
        return lambda i: c.get_batch(i).state.value
    if client == "pylivy":  # pylivy has no /state call: get_batch is its state read
        p = _pylivy(url)
        return lambda i: p.get_batch(i).state.value
    if client == "airflow":
        h = _hook()
        return lambda i: h.get_batch_state(i).value
    raise ValueError(client)


def work_s1(client: str, url: str, opts: dict[str, Any]) -> dict[str, Any]:
    read = s1_reader(client, url)
    for i in range(20):
        read(i)
    n = int(opts.get("n", 2000))
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        read(i % 1000)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"calls": n, "us_per_call": wall / n * 1e6, "cpu_us_per_call": cpu / n * 1e6}


def s2_frame(client: str, url: str) -> Callable[[], Any]:
    import pandas as pd

    if client == "raw":
        s = _raw_session()
        cols = ["id", "name", "state", "app_id", "spark_ui", "driver_log", "owner"]

        def raw() -> Any:
            data = s.get(f"{url}/batches", params={"from": 0, "size": 1000}, timeout=60).json()
            rows = [(str(b["id"]), b.get("name") or "", b["state"], b.get("appId") or "",
                     (b.get("appInfo") or {}).get("sparkUiUrl") or "", (b.get("appInfo") or {}).get("driverLogUrl")
                     or "", b.get("owner") or "") for b in data["sessions"]]  # fmt: skip
            return pd.DataFrame(rows, columns=cols)

        return raw
    if client in ("hdiaks", "hdiaks-iter"):
        from hdiaks_widgets.tables import batch_table

        c = _hdiaks(url)
        if client == "hdiaks":  # `hdiaks list --size 1000`, the notebook's history: list_batches
            return lambda: batch_table(c.list_batches(size=1000).batches)
        return lambda: batch_table(list(c.iter_batches()))
    if client == "pylivy":
        p = _pylivy(url)
        return lambda: pd.DataFrame([{"id": b.batch_id, "state": b.state.value, "app_id": b.app_id}
                                     for b in p.list_batches()])  # fmt: skip
    raise ValueError(client)


def work_s2(client: str, url: str, opts: dict[str, Any]) -> dict[str, Any]:
    make = s2_frame(client, url)
    frame = make()
    reps = int(opts.get("reps", 20))
    walls, cpus = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        frame = make()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"rows": len(frame), "reps": reps + 1, "ms": statistics.median(walls) * 1000,
            "cpu_ms": statistics.median(cpus) * 1000}  # fmt: skip


def s3_raw(url: str, out: Any) -> int:
    """The floor: ``GET ?start=&end=`` windows of 1 MiB, the ``<pre>`` unescaped, written out."""
    s = _raw_session()
    start = lines = 0
    while True:
        page = s.get(f"{url}/stdout/", params={"start": start, "end": start + CHUNK}, timeout=60).text
        text = html.unescape(page[page.index("<pre>") + 5 : page.rindex("</pre>")])
        data = text.encode("utf-8")
        out.write(text)
        lines += text.count("\n")
        start += len(data)
        if len(data) < CHUNK:
            return lines


def s3_hdiaks(url: str, out: Any, opts: dict[str, Any]) -> int:
    """The product's byte-range reader (``logview.DriverLogReader``), each read's lines written out."""
    from hdiaks_widgets import LivyClient
    from hdiaks_widgets.logview import DriverLogReader

    base = url.rsplit("/node/", 1)[0]
    client = LivyClient(base)
    reader = DriverLogReader(url, max_chunks=int(opts.get("max_chunks", 16)))
    reader.FILES = ("stdout",)  # type: ignore[misc]  # the benchmark reads one file, as the floor does
    reader.files = {"stdout": reader.files["stdout"]}
    if opts.get("copy"):  # DriverLogReader.copy: each window's text straight to the file
        total = 0

        def write(name: str, text: str) -> None:
            nonlocal total
            out.write(text)
            total += text.count("\n")

        while not reader.copy(client, write, finished=True):
            pass
        return total
    lines = 0
    while True:
        got, at_end = reader.read(client, finished=True)
        for line in got:
            out.write(line)
            out.write("\n")
        lines += len(got)
        if at_end:
            return lines


def work_s3(client: str, url: str, opts: dict[str, Any]) -> dict[str, Any]:
    log_url = opts["log_url"]
    if client != "raw":  # imported before the clock and the memory baseline start, as requests is
        import hdiaks_widgets.livy
        import hdiaks_widgets.logview  # noqa: F401
    before = _rss_kb()
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".log", delete=False) as out:
        c0, t0 = time.process_time(), time.perf_counter()
        lines = s3_raw(log_url, out) if client == "raw" else s3_hdiaks(log_url, out, opts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_kb()  # before the check below reads the file
    path = Path(out.name)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    size = path.stat().st_size
    path.unlink()
    return {"lines": lines, "file_bytes": size, "sha256": digest.hexdigest(), "s": wall, "cpu_s": cpu,
            "rss_before_mb": before / 1024, "peak_above_mb": max(0, peak - before) / 1024}  # fmt: skip


# -- S4: live tail ----------------------------------------------------------------------------------


class Shown:
    """Numbered lines a client printed, with the time of the first (from the growth's start)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.lines: dict[str, list[int]] = {VIEW: [], DRIVER: []}
        self.first: dict[str, float | None] = {VIEW: None, DRIVER: None}
        self.printed = 0

    def show(self, batch: str, texts: Any) -> None:
        for text in texts:
            self.printed += 1
            m = _NUMBERED.search(str(text))
            if m and m.group(1) == batch:
                self.lines[batch].append(int(m.group(2)))
                if self.first[batch] is None:
                    self.first[batch] = time.perf_counter() - self.t0


def _offset_tail(
    get: Callable[[int, int], tuple[list[str], int, int]], offset: int, size: int
) -> tuple[list[str], int]:
    """Pages from ``offset`` to ``total`` (what pylivy's and Airflow's users write)."""
    out: list[str] = []
    while True:
        lines, start, total = get(offset, size)
        out.extend(lines)
        offset = start + len(lines)
        if not lines or offset >= total:
            return out, offset


def _raw_driver(s: requests.Session, url: str, state: dict[str, Any]) -> list[str]:
    """The floor for the driver log: byte ranges from the offset reached, complete lines only."""
    out: list[str] = []
    while True:
        page = s.get(f"{url}/stdout/", params={"start": state["off"], "end": state["off"] + CHUNK}, timeout=60).text
        text = html.unescape(page[page.index("<pre>") + 5 : page.rindex("</pre>")])
        cut = text.rfind("\n")
        if cut < 0:
            return out
        out.extend(text[:cut].split("\n"))
        state["off"] += len(text[: cut + 1].encode("utf-8"))
        if len(text.encode("utf-8")) < CHUNK:
            return out


def work_s4(client: str, url: str, opts: dict[str, Any]) -> dict[str, Any]:
    batches = (VIEW, DRIVER)
    tick = float(opts.get("tick", 0.5))
    pollers: dict[str, Callable[[], bool]] = {}
    control = requests.Session()
    if client == "hdiaks":
        from hdiaks_widgets import LivyClient
        from hdiaks_widgets.run import BatchRun

        c = LivyClient(url)
        runs = {b: BatchRun.attach(c, b) for b in batches}
    elif client == "pylivy":
        p = _pylivy(url)
    elif client == "airflow":
        h = _hook()
    else:
        s = _raw_session()
    t0 = time.perf_counter()
    control.post(f"{url}/_load/grow", json={"lines": opts.get("lines", 100_000), "seconds": opts.get("seconds", 20)},
                 timeout=60).raise_for_status()  # fmt: skip
    shown = Shown(t0)
    for b in batches:
        if client == "hdiaks":

            def poll(b: str = b) -> bool:
                snap = runs[b].poll()
                shown.show(b, snap.new_lines)
                return snap.finished
        else:
            state: dict[str, Any] = {"off": 0, "ended": False, "url": None}

            def poll(b: str = b, state: dict[str, Any] = state) -> bool:
                if client == "pylivy":
                    st = p.get_batch(b)
                    now, state["url"] = st.state.value, None

                    def get(o: int, n: int) -> tuple[list[str], int, int]:
                        page = p.get_batch_log(b, from_=o, size=n)
                        return list(page.lines), page.from_, page.total
                elif client == "airflow":
                    now = h.get_batch_state(b).value

                    def get(o: int, n: int) -> tuple[list[str], int, int]:
                        data = h.get_batch_logs(b, o, n)
                        return list(data.get("log") or []), int(data.get("from", o)), int(data.get("total", 0))
                else:
                    batch = s.get(f"{url}/batches/{b}", timeout=60).json()
                    now, state["url"] = batch["state"], (batch.get("appInfo") or {}).get("driverLogUrl")

                    def get(o: int, n: int) -> tuple[list[str], int, int]:
                        d = s.get(f"{url}/batches/{b}/log", params={"from": o, "size": n}, timeout=60).json()
                        return list(d.get("log") or []), int(d["from"]), int(d["total"])

                if state["url"]:
                    shown.show(b, _raw_driver(s, state["url"], state))
                else:
                    lines, state["off"] = _offset_tail(get, state["off"], 1000 if client == "raw" else 100)
                    shown.show(b, lines)
                done = bool(state["ended"])
                state["ended"] = now in TERMINAL  # one more read after the end was seen
                return done

        pollers[b] = poll
    deadline = t0 + float(opts.get("seconds", 20)) + 30
    finished: set[str] = set()
    ticks = 0
    while len(finished) < len(batches) and time.perf_counter() < deadline:
        begin = time.perf_counter()
        for b in batches:
            if b not in finished and pollers[b]():
                finished.add(b)
        ticks += 1
        time.sleep(max(0.0, tick - (time.perf_counter() - begin)))
    out: dict[str, Any] = {"ticks": ticks, "printed": shown.printed, "finished": sorted(finished)}
    for b in batches:
        nums = shown.lines[b]
        out[b] = {"shown": len(set(nums)), "repeats": len(nums) - len(set(nums)), "first_s": shown.first[b],
                  "out_of_order": sum(1 for x, y in zip(nums, nums[1:], strict=False) if y < x),
                  "numbers": sorted(set(nums)) if b == VIEW else []}  # fmt: skip
    return out


# -- snapshot cost ----------------------------------------------------------------------------------


def work_snap(client: str, url: str, opts: dict[str, Any]) -> dict[str, Any]:
    from hdiaks_widgets import LivyClient
    from hdiaks_widgets.run import BatchRun

    c = LivyClient(url)
    run = BatchRun.attach(c, DRIVER)
    control = requests.Session()
    control.post(
        f"{url}/_load/grow",
        json={"batches": [DRIVER], "lines": opts.get("lines", 1_000_000), "seconds": opts.get("seconds", 20)},
        timeout=60,
    ).raise_for_status()
    polls: list[dict[str, float]] = []
    deadline = time.perf_counter() + float(opts.get("seconds", 20)) + 60
    while time.perf_counter() < deadline:
        begin = time.perf_counter()
        c0 = time.process_time()
        snap = run.poll()
        cpu = time.process_time() - c0
        polls.append({"lines": len(snap.lines), "new": len(snap.new_lines), "cpu_ms": cpu * 1000,
                      "rss_mb": _rss_kb() / 1024})  # fmt: skip
        if snap.finished:
            break
        time.sleep(max(0.0, float(opts.get("tick", 0.5)) - (time.perf_counter() - begin)))
    return {"polls": polls, "lines": len(run.snapshot.lines), "finished": run.snapshot.finished}


WORKERS = {"s1": work_s1, "s2": work_s2, "s3": work_s3, "s4": work_s4, "snap": work_snap}


def worker(argv: list[str]) -> int:
    client, scenario, url, opts = argv[0], argv[1], argv[2], json.loads(argv[3]) if len(argv) > 3 else {}
    result = WORKERS[scenario](client, url, opts)
    print(json.dumps(result), flush=True)
    return 0


# -- the orchestrator -------------------------------------------------------------------------------


class LoadServer:
    """``bench/load_server.py`` as a subprocess, stopped by its own PID."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "load_server.py"), *extra],
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None
        self.url = str(json.loads(self.proc.stdout.readline())["url"])
        self.http = requests.Session()

    def reset(self) -> None:
        self.http.delete(f"{self.url}/_load/stats", timeout=60).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/_load/stats", timeout=60)
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def run_worker(server: LoadServer, client: str, scenario: str, opts: dict[str, Any], home: Path) -> dict[str, Any]:
    python = str(AIRFLOW3 / "bin" / "python") if client == "airflow" else sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW_CONN_LOAD=server.url,
               PYTHONWARNINGS="ignore", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")  # fmt: skip
    server.reset()
    done = subprocess.run([python, __file__, "worker", client, scenario, server.url, json.dumps(opts)], env=env,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"worker {client} {scenario} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["server"] = server.stats()
    return result


def machine() -> dict[str, str]:
    cpu = cpu_model()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": f"{os.cpu_count()} cores ({cpu})",
        "python": platform.python_version(),
        "hdiaks-widgets": version("hdiaks-widgets"),
        "requests": version("requests"),
        "livy (pylivy)": version("livy"),
        "apache-airflow-providers-apache-livy (.venv-airflow3)": version(
            "apache-airflow-providers-apache-livy", AIRFLOW3 / "bin" / "python"),
    }  # fmt: skip


def measure(args: argparse.Namespace) -> dict[str, Any]:
    airflow = (AIRFLOW3 / "bin" / "python").exists() and version(
        "apache-airflow-providers-apache-livy", AIRFLOW3 / "bin" / "python") != "not installed"  # fmt: skip
    results: dict[str, Any] = {"machine": machine(), "airflow": airflow, "args": vars(args)}
    server = LoadServer("--big-lines", str(args.big_lines))
    try:
        with tempfile.TemporaryDirectory(prefix="hdiaks-peers-") as tmp:
            home = Path(tmp)
            if "s1" in args.only:
                clients = ["raw", "raw-batch", "hdiaks", "hdiaks-batch", "pylivy"] + (["airflow"] if airflow else [])
                runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
                for rep in range(args.reps):
                    for c in clients if rep % 2 == 0 else clients[::-1]:  # interleaved, order alternating
                        runs[c].append(run_worker(server, c, "s1", {"n": args.calls}, home))
                        print(f"s1 {c} {runs[c][-1]['us_per_call']:.0f} us/call", file=sys.stderr)
                results["s1"] = runs
            if "s2" in args.only:  # rounds of fresh processes, interleaved, order alternating (as S1)
                s2: dict[str, list[dict[str, Any]]] = {c: [] for c in ("raw", "hdiaks", "hdiaks-iter", "pylivy")}
                for rep in range(args.s2_reps):
                    for c in list(s2) if rep % 2 == 0 else list(s2)[::-1]:
                        s2[c].append(run_worker(server, c, "s2", {"reps": 20}, home))
                        print(f"s2 {c} {s2[c][-1]['cpu_ms']:.1f} ms CPU", file=sys.stderr)
                results["s2"] = s2
            if "s3" in args.only:
                log_url = f"{server.url}/node/containerlogs/container_7/livy"
                s3: dict[str, list[dict[str, Any]]] = {
                    c: [] for c in ("raw", "hdiaks", "hdiaks-bounded", "hdiaks-copy")
                }
                for rep in range(args.s3_reps):
                    for c in list(s3) if rep % 2 == 0 else list(s3)[::-1]:  # interleaved, order alternating
                        opts = {
                            "log_url": log_url,
                            "max_chunks": 1 if c == "hdiaks-bounded" else 16,
                            "copy": c == "hdiaks-copy",
                        }
                        s3[c].append(run_worker(server, "raw" if c == "raw" else "hdiaks", "s3", opts, home))
                        print(f"s3 {c} {s3[c][-1]['s']:.2f} s", file=sys.stderr)
                results["s3"] = s3
            if "s4" in args.only:
                clients = ["raw", "hdiaks", "pylivy"] + (["airflow"] if airflow else [])
                opts = {"lines": args.grow_lines, "seconds": args.grow_seconds}
                results["s4"] = {}
                for c in clients:
                    results["s4"][c] = run_worker(server, c, "s4", opts, home)
                    print(f"s4 {c} done", file=sys.stderr)
            if "snap" in args.only:
                results["snap"] = run_worker(server, "hdiaks", "snap", {"lines": args.snap_lines, "seconds": 20}, home)
    finally:
        server.stop()
    return results


# -- the report ------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _med(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def _paired(runs: list[dict[str, Any]], floor: list[dict[str, Any]], key: str) -> float:
    """The median of per-round ratios: each run against the floor's run of the same round (the two
    ran next to each other, so a slow moment of the shared machine weighs on both)."""
    return float(statistics.median(x[key] / max(y[key], 1e-12) for x, y in zip(runs, floor, strict=False)))


def _runs(value: Any) -> list[dict[str, Any]]:
    """S2 results of a run older than the rounds (one process per client) as a list of one."""
    return value if isinstance(value, list) else [value]


def render(r: dict[str, Any], command: str) -> list[str]:
    out = [BEGIN, "## Peers on one load server (issue 13: S1–S4, snapshot cost)", ""]
    m = r["machine"]
    out += [f"Commands: {command} (one run each; {m['cpu']}; {m['os']}; Python {m['python']}; "
            f"requests {m['requests']}; livy {m['livy (pylivy)']}; apache-airflow-providers-apache-livy "
            f"{m['apache-airflow-providers-apache-livy (.venv-airflow3)']}). Raw numbers: `build/bench/peers.json`.",
            ""]  # fmt: skip
    out += [
        "`bench/load_server.py` answers Livy's REST shapes from memory (no Spark), so what a client costs per "
        "call is what is measured; it shares the 2 cores with the client. Every client runs in its own "
        "process and times its own loop after a warm-up; requests and bytes are counted by the server.",
        "",
    ]
    if "s1" in r:
        s1 = r["s1"]
        floor = _med(s1["raw"], "us_per_call")
        floor_cpu = _med(s1["raw"], "cpu_us_per_call")
        floor_b = _med(s1["raw-batch"], "us_per_call")
        floor_b_cpu = _med(s1["raw-batch"], "cpu_us_per_call")
        how = {"raw": "`Session.get(/batches/{id}/state).json()`", "raw-batch": "`Session.get(/batches/{id}).json()`",
               "hdiaks": "`LivyClient.get_batch_state(id)`", "hdiaks-batch": "`LivyClient.get_batch(id)`",
               "pylivy": "`LivyClient.get_batch(id)` (GET /batches/{id}: pylivy has no /state call)",
               "airflow": "`LivyHook.get_batch_state(id)`"}  # fmt: skip
        rows = []
        for c, runs in s1.items():
            batch = c in ("raw-batch", "hdiaks-batch", "pylivy")
            f, fc = (floor_b, floor_b_cpu) if batch else (floor, floor_cpu)
            us, cpu = _med(runs, "us_per_call"), _med(runs, "cpu_us_per_call")
            reqs = statistics.median(x["server"]["requests"] for x in runs)
            base = s1["raw-batch" if batch else "raw"]
            rows.append([c, how[c], f"{us:.0f}", f"{cpu:.0f}", f"{us / f:.2f}×", f"{cpu / fc:.2f}×",
                         f"{_paired(runs, base, 'cpu_us_per_call'):.2f}×", f"{reqs / (r['args']['calls'] + 20):.2f}",
                         " / ".join(f"{x['us_per_call']:.0f}" for x in runs)])  # fmt: skip
        out += ["### S1. Per-call overhead: 2,000 sequential state reads", "",
                f"Median of {r['args']['reps']} interleaved runs (each a fresh process; 20 warm-up calls first). "
                "Ratios are to the raw loop reading the same endpoint (`raw` for `/state`, `raw-batch` for "
                "`/batches/{id}`). CPU is the client process's `process_time`. `CPU / raw, paired` is the median of "
                "the per-round ratios (each run against the raw run of the same round).", ""]  # fmt: skip
        out += _table(["client", "call", "µs/call", "client CPU µs/call", "time / raw", "CPU / raw",
                       "CPU / raw, paired", "requests/call", "µs/call per run"], rows)  # fmt: skip
        out.append("")
    if "s2" in r:
        s2 = {c: _runs(x) for c, x in r["s2"].items()}
        floor, floor_cpu = _med(s2["raw"], "ms"), _med(s2["raw"], "cpu_ms")
        how = {"raw": "one `GET /batches?from=0&size=1000`, rows → `pd.DataFrame`",
               "hdiaks": "`batch_table(client.list_batches(size=1000).batches)` (the list answer as a table)",
               "hdiaks-iter": "`batch_table(list(client.iter_batches()))`",
               "pylivy": "`pd.DataFrame(... for b in client.list_batches())`"}  # fmt: skip
        rows = [[c, how[c], str(xs[0]["rows"]), f"{xs[0]['server']['requests'] / xs[0]['reps']:.0f}",
                 f"{_med(xs, 'ms'):.1f}", f"{_med(xs, 'cpu_ms'):.1f}", f"{_med(xs, 'ms') / floor:.2f}×",
                 f"{_med(xs, 'cpu_ms') / floor_cpu:.2f}×", f"{_paired(xs, s2['raw'], 'ms'):.2f}×",
                 f"{_paired(xs, s2['raw'], 'cpu_ms'):.2f}×", " / ".join(f"{x['cpu_ms']:.1f}" for x in xs)]
                for c, xs in s2.items()]  # fmt: skip
        out += [
            "### S2. The state of 1,000 batches as a DataFrame",
            "",
            f"{len(s2['raw'])} rounds; in each, every client in a fresh process (interleaved, order alternating) "
            "times 20 builds after one warm-up build and gives their median; the table gives the median over "
            "the rounds, and the median of the per-round ratios (`paired`: each client against the raw process "
            "of the same round). LivyHook has no list call.",
            "",
        ]
        out += _table(["client", "how", "rows", "requests", "ms", "client CPU ms", "time / raw", "CPU / raw",
                       "time / raw, paired", "CPU / raw, paired", "client CPU ms per round"], rows)  # fmt: skip
        out.append("")
    if "s3" in r:
        s3 = r["s3"]
        raw = s3["raw"]
        floor, floor_mem = _med(raw, "s"), _med(raw, "peak_above_mb")
        how = {"raw": "`GET ?start=&end=` 1 MiB windows, `<pre>` unescaped, written to a file",
               "hdiaks": "`DriverLogReader(url).read()` until at end (defaults: 1 MiB × up to 16 windows per read)",
               "hdiaks-bounded": "`DriverLogReader(url, max_chunks=1).read()` until at end",
               "hdiaks-copy": "`DriverLogReader(url).copy(client, write)` until at end (text per window)"}  # fmt: skip
        rows = []
        for c, runs in s3.items():
            x = runs[0]
            same = "yes" if all(y["sha256"] == raw[0]["sha256"] for y in runs) else "no"
            mb = x["server"]["bytes"] / 1e6
            rows.append([c, how[c], f"{x['lines']:,}", str(x["server"]["requests"]), f"{mb:.1f}",
                         f"{_med(runs, 's'):.2f}", f"{_med(runs, 'cpu_s'):.2f}", f"{_med(runs, 'peak_above_mb'):.0f}",
                         f"{_med(runs, 's') / floor:.2f}×", f"{_paired(runs, raw, 's'):.2f}×",
                         f"{_med(runs, 'peak_above_mb') / max(floor_mem, 1):.2f}×", same])  # fmt: skip
        out += ["### S3. The whole driver log of 1,000,000 lines by byte range", "",
                f"Median of {r['args']['s3_reps']} runs each (rounds of fresh processes, interleaved, order "
                "alternating; `paired`: the median of per-round ratios to the raw run of the same round). "
                "`peak RSS above start` is `ru_maxrss` at the end minus "
                "the RSS before the scenario (imports done). pylivy and LivyHook have no driver-log reader (they read "
                "only Livy's `/log` view, 200 lines per stream on a real server).", ""]  # fmt: skip
        out += _table(
            [
                "client",
                "how",
                "lines",
                "requests",
                "MB received",
                "wall s",
                "client CPU s",
                "peak RSS above start MB",
                "time / raw",
                "time / raw, paired",
                "memory / raw",
                "same file as raw",
            ],
            rows,
        )
        out.append("")
    if "s4" in r:
        s4 = r["s4"]
        rows = []
        for c, x in s4.items():
            windows = [w for w in x["server"]["windows"] if w[0] <= w[1]]
            had: set[int] = set()
            for lo, hi in windows:
                had.update(range(lo, hi + 1))
            v, d = x[VIEW], x[DRIVER]
            missed = len(had - set(v["numbers"]))
            fmt = lambda t: "–" if t is None else f"{t:.2f}"  # noqa: E731
            rows.append([c, f"{v['shown']:,}", f"{len(had):,}", f"{missed:,}", str(v["repeats"]), fmt(v["first_s"]),
                         f"{d['shown']:,}", str(d["repeats"]), fmt(d["first_s"]), f"{x['printed']:,}",
                         str(x["server"]["requests"]), f"{x['server']['bytes'] / 1e6:.1f}"])  # fmt: skip
        a = r["args"]
        out += ["### S4. Live tail of a growing log", "",
                f"Both growing batches print {a['grow_lines']:,} numbered lines evenly over {a['grow_seconds']} s from "
                "the worker's `POST /_load/grow`; each client reads each batch once per 0.5 s tick until it has seen "
                "the end (plus one read after). `grow-view` (batch 9000) is Livy's bounded view (200 lines per "
                "stream); `grow-driver` (9001) is a YARN batch whose lines are only in the driver log. `the server "
                "still had` is "
                "the union of the numbered lines in the view at each of that client's log reads (the server "
                "records it); `missed` is how many of those the client did not show. The product: "
                "`BatchRun.poll()`; raw: offset pages of 1,000 on the view and byte ranges on the driver log; "
                "pylivy: `get_batch_log(from_=offset, size=100)`; LivyHook: `get_batch_logs(id, offset, 100)`, to "
                "`total` each tick.", ""]  # fmt: skip
        out += _table(["client", "view: shown", "view: the server still had", "view: missed", "view: repeats",
                       "view: first line s", "driver: shown", "driver: repeats", "driver: first line s",
                       "lines printed", "requests", "MB"], rows)  # fmt: skip
        out.append("")
    if "snap" in r:
        polls = [p for p in r["snap"]["polls"] if p["new"]]
        if polls:
            tenth = max(1, len(polls) // 10)
            first, last = polls[:tenth], polls[-tenth:]

            def per(ps: list[dict[str, float]], key: str) -> float:
                return sum(p[key] for p in ps) / max(1, sum(p["new"] for p in ps)) * 1000

            growth = [
                (b["rss_mb"] - a["rss_mb"]) / max(1, b["new"]) * 1e6 for a, b in zip(polls, polls[1:], strict=False)
            ]

            def rss(ps: list[dict[str, float]]) -> float:  # RSS growth over these polls per new line
                i, j = polls.index(ps[0]), polls.index(ps[-1])
                span = polls[max(0, i - 1) : j + 1]
                return (span[-1]["rss_mb"] - span[0]["rss_mb"]) * 1e6 / max(1, sum(p["new"] for p in span[1:]))

            rows = [
                [name, f"{ps[0]['lines']:,}–{ps[-1]['lines']:,}", f"{per(ps, 'cpu_ms'):.2f}", f"{rss(ps):.0f}"]
                for name, ps in (("first tenth", first), ("last tenth", last))
            ]
            out += ["### Snapshot cost over a 1,000,000-line job", "",
                    f"`BatchRun.poll()` on `grow-driver` printing {r['args']['snap_lines']:,} lines over 20 s, every "
                    f"0.5 s: {len(polls)} polls with new lines, {r['snap']['lines']:,} lines at the end. CPU per "
                    "1,000 new lines in the poll (the client's `process_time`), early against late; memory: RSS "
                    f"growth per new line, median {statistics.median(growth):.0f} bytes (first half "
                    f"{statistics.median(growth[: len(growth) // 2]):.0f}, second half "
                    f"{statistics.median(growth[len(growth) // 2 :]):.0f}).", ""]  # fmt: skip
            out += _table(["polls", "lines held", "client CPU ms per 1,000 new lines", "RSS bytes per new line"], rows)
            out.append("")
    out += [
        "![Left: each client's ratio to the raw loop in S1-S3 (log scale). Right: client CPU per 1,000 new lines "
        "of BatchRun.poll() (solid) and RSS bytes added per new line (dashed) against the lines the run "
        "holds.](peers.png)",
        "",
        END,
    ]
    return out


def plot(r: dict[str, Any], path: Path) -> bool:
    """``docs/peers.png``: ratios to raw per scenario, and CPU per poll against lines held.
    matplotlib is optional here (not a dependency of the package): without it, no figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)", file=sys.stderr)
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    bars: list[tuple[str, str, float]] = []
    if "s1" in r:
        for c, floor in (("hdiaks", "raw"), ("hdiaks-batch", "raw-batch"), ("pylivy", "raw-batch"), ("airflow", "raw")):
            if c in r["s1"]:
                ratio = _med(r["s1"][c], "cpu_us_per_call") / _med(r["s1"][floor], "cpu_us_per_call")
                bars.append(("S1 CPU/call", c, ratio))
    if "s2" in r:
        for c in ("hdiaks", "hdiaks-iter"):
            bars.append(("S2 CPU", c, _paired(_runs(r["s2"][c]), _runs(r["s2"]["raw"]), "cpu_ms")))
    if "s3" in r:
        for c in ("hdiaks", "hdiaks-bounded", "hdiaks-copy"):
            bars.append(("S3 time", c, _paired(r["s3"][c], r["s3"]["raw"], "s")))
            bars.append(
                ("S3 memory", c, _med(r["s3"][c], "peak_above_mb") / max(_med(r["s3"]["raw"], "peak_above_mb"), 1))
            )
    labels = [f"{group}\n{c}" for group, c, _ in bars]
    left.bar(range(len(bars)), [v for _, _, v in bars], color=["#0969da" if "hdiaks" in c else "#9a6700"
                                                                 for _, c, _ in bars])  # fmt: skip
    left.axhline(1.0, color="#57606a", linewidth=1)
    left.set_xticks(range(len(bars)), labels, fontsize=7, rotation=60, ha="right")
    left.set_yscale("log")
    left.set_ylabel("ratio to raw requests (log scale; 1 = the floor)")
    left.set_title("S1-S3: each client against the raw loop")
    if "snap" in r:
        polls = [p for p in r["snap"]["polls"] if p["new"]]
        right.plot([p["lines"] for p in polls], [p["cpu_ms"] / p["new"] * 1000 for p in polls], marker="o")
        right.set_xlabel("lines held by the run")
        right.set_ylabel("client CPU ms per 1,000 new lines")
        right.set_ylim(bottom=0)
        memory = right.twinx()  # the memory a poll adds per new line, on the same polls
        pairs = list(zip(polls, polls[1:], strict=False))
        memory.plot([b["lines"] for _, b in pairs], [(b["rss_mb"] - a["rss_mb"]) * 1e6 / b["new"] for a, b in pairs],
                    marker=".", color="#9a6700", linestyle="--")  # fmt: skip
        memory.set_ylabel("RSS bytes added per new line (dashed)")
        memory.set_ylim(bottom=0)
        right.set_title("Snapshot cost: BatchRun.poll() over a 1,000,000-line log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def splice(document: str, section: list[str]) -> str:
    """``document`` with the part between ``section``'s own first and last lines (its markers)
    replaced by ``section``, or with ``section`` appended when the markers are not there yet."""
    begin, end = section[0], section[-1]
    text = "\n".join(section)
    if begin in document and end in document:
        head, rest = document.split(begin, 1)
        return head + text + rest.split(end, 1)[1]
    return document.rstrip("\n") + "\n\n" + text + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "worker":
        return worker(argv[1:])
    parser = argparse.ArgumentParser(description="peer benchmark on bench/load_server.py")
    parser.add_argument("--only", nargs="+", default=["s1", "s2", "s3", "s4", "snap"])
    parser.add_argument("--reps", type=int, default=5, help="S1 runs per client")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--s2-reps", type=int, default=7, help="S2 rounds (a fresh process per client each)")
    parser.add_argument("--s3-reps", type=int, default=5)
    parser.add_argument("--big-lines", type=int, default=1_000_000)
    parser.add_argument("--grow-lines", type=int, default=100_000)
    parser.add_argument("--grow-seconds", type=float, default=20.0)
    parser.add_argument("--snap-lines", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing the docs")
    parser.add_argument("--render-only", action="store_true", help="rewrite the section from build/bench/peers.json")
    args = parser.parse_args(argv)
    if args.render_only:
        results = json.loads((ROOT / "build" / "bench" / "peers.json").read_text())
        section = render(results, str(results.get("command", "")))
        plot(results, ROOT / "docs" / "peers.png")
        doc = ROOT / "docs" / "benchmarks.md"
        doc.write_text(splice(doc.read_text(), section))
        print("\n".join(section))
        return 0
    results = measure(args)
    out_dir = ROOT / "build" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = out_dir / "peers.json"
    command = ".venv/bin/python bench/peers.py" + ("" if argv == [] else " " + " ".join(argv))
    stamp = f"`{command}` ({results['machine']['date']})"
    runs = {key: stamp for key in WORKERS if key in results}
    if saved.is_file():  # a partial run (--only) keeps the other scenarios of the last run
        earlier = json.loads(saved.read_text())
        for key in WORKERS:
            if key in earlier and key not in results:
                results[key] = earlier[key]
                runs[key] = earlier.get("runs", {}).get(key, "an earlier run")
    results["runs"] = runs
    results["command"] = "; ".join(
        f"{', '.join(k for k in runs if runs[k] == v)}: {v}" for v in dict.fromkeys(runs.values())
    )
    saved.write_text(json.dumps(results, indent=1))
    section = render(results, str(results["command"]))
    if args.no_write:
        print("\n".join(section))
        return 0
    doc = ROOT / "docs" / "benchmarks.md"
    doc.write_text(splice(doc.read_text(), section))
    plot(results, ROOT / "docs" / "peers.png")
    print("\n".join(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
