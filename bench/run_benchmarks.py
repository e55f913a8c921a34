"""Benchmarks: hdiaks-widgets' Livy client beside the clients users pick today, on one sandbox.

Run with ``make bench`` (or ``.venv/bin/python bench/run_benchmarks.py``). Everything runs in ONE
run against ONE local sandbox (``start_sandbox_process`` on a temp root, port 0, loopback only),
stopped by its PID at the end. Peers:

- ``livy`` from PyPI (pylivy), in this venv;
- Airflow's ``LivyHook`` (apache-airflow-providers-apache-livy), in ``.venv-airflow3``, run as a
  subprocess script that times its own loops.

HTTP requests are counted by the sandbox (``GET /_sandbox/faults`` → ``requests``; ``DELETE``
resets them); control requests to ``/_sandbox/`` are not counted. Measurements, not tests: nothing
here asserts a time. Prints a table and writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from livy import LivyBatch
from livy.client import LivyClient as PyLivyClient

from hdiaks_widgets import LivyClient
from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.models import Batch, LogPage
from hdiaks_widgets.monitor import BatchMonitor, backoff, follow_batch
from hdiaks_widgets.sandbox.launcher import SandboxProcess, start_sandbox_process

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW3 = ROOT / ".venv-airflow3"
TAIL_APP = ROOT / "bench" / "apps" / "tail_lines.py"
TERMINAL = {"success", "dead", "killed", "error"}

# Runs in .venv-airflow3: the LivyHook paging loop of dump_batch_logs (default size 100, same loop
# condition), collecting lines instead of logging each one. Times itself, reads the sandbox's
# request counters around each repetition, prints one JSON list on stdout.
HOOK_SCRIPT = r"""
import json, sys, time
import requests
from airflow.providers.apache.livy.hooks.livy import LivyHook

url, batch_id, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
control = requests.Session()
hook = LivyHook(livy_conn_id="sandbox", extra_headers={"X-Requested-By": "airflow"})

def dump_like():
    lines, log_start_line, log_total_lines, log_batch_size = [], 0, 0, 100
    while log_start_line <= log_total_lines:
        response = hook.get_batch_logs(batch_id, log_start_line, log_batch_size)
        log_total_lines = response["total"]
        log_start_line += log_batch_size
        lines += response["log"]
    return lines

dump_like()  # warm-up: connection lookup, imports on first use
out = []
for _ in range(reps):
    control.delete(url + "/_sandbox/faults").raise_for_status()
    started = time.perf_counter()
    lines = dump_like()
    seconds = time.perf_counter() - started
    counts = control.get(url + "/_sandbox/faults").json()["requests"]
    out.append({"seconds": seconds, "requests": sum(counts.values()), "lines": len(lines)})
print(json.dumps(out))
"""


# -- sandbox helpers --------------------------------------------------------------------------


class Counters:
    """The sandbox's per-path request counters (``/_sandbox/faults``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def reset(self) -> None:
        self.http.delete(f"{self.url}/_sandbox/faults", timeout=10).raise_for_status()

    def read(self) -> dict[str, int]:
        response = self.http.get(f"{self.url}/_sandbox/faults", timeout=10)
        response.raise_for_status()
        return dict(response.json()["requests"])


def submit_and_wait(client: LivyClient, file: str, args: list[str], name: str) -> Batch:
    batch = client.submit_batch(BatchSpec(file=file, args=tuple(args), name=f"{name}-{time.monotonic_ns()}"))
    final = follow_batch(client, batch.id, timeout=600)
    if final.state.value != "success":
        raise RuntimeError(f"benchmark job {name} ended {final.state.value}")
    return final


# -- 1. whole log of a finished batch ---------------------------------------------------------


@dataclass
class Row:
    client: str
    how: str
    seconds: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_requests(self) -> float:
        return statistics.median(self.requests)


def measure(row: Row, counters: Counters, reps: int, read: Callable[[], list[str]]) -> Row:
    read()  # warm-up (connection set-up, first-use imports), not measured
    for _ in range(reps):
        counters.reset()
        started = time.perf_counter()
        lines = read()
        row.seconds.append(time.perf_counter() - started)
        row.requests.append(sum(counters.read().values()))
        row.lines.append(len(lines))
    return row


def hdiaks_reader(url: str, batch_id: int, page_size: int | None) -> Callable[[], list[str]]:
    client = LivyClient(url)

    def read() -> list[str]:
        pages = client.iter_log(batch_id) if page_size is None else client.iter_log(batch_id, page_size=page_size)
        return [line for page in pages for line in page.lines]

    return read


def pylivy_paging_reader(url: str, batch_id: int, size: int) -> Callable[[], list[str]]:
    client = PyLivyClient(url)

    def read() -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            page = client.get_batch_log(batch_id, from_=start, size=size)
            assert page is not None
            lines += page.lines
            start += len(page.lines)
            if not page.lines or start >= page.total:
                return lines

    return read


def pylivy_all_reader(url: str, batch_id: int) -> Callable[[], list[str]]:
    batch = LivyBatch(url, batch_id)
    return lambda: batch.log(from_=0, size=-1)


def airflow_env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_SANDBOX=url,
        PYTHONWARNINGS="ignore",
    )
    return env


def measure_hook(row: Row, url: str, batch_id: int, reps: int, home: Path) -> Row:
    done = subprocess.run(
        [str(AIRFLOW3 / "bin" / "python"), "-c", HOOK_SCRIPT, url, str(batch_id), str(reps)],
        env=airflow_env(home, url), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"LivyHook script failed:\n{done.stderr[-3000:]}")
    for item in json.loads(done.stdout.strip().splitlines()[-1]):
        row.seconds.append(float(item["seconds"]))
        row.requests.append(int(item["requests"]))
        row.lines.append(int(item["lines"]))
    return row


def bench_whole_log(sb: SandboxProcess, client: LivyClient, counters: Counters, args: argparse.Namespace,
                    home: Path) -> tuple[int, int, list[Row]]:  # fmt: skip
    batch = submit_and_wait(client, sb.examples["lines_py"], [str(args.lines)], "bench-lines")
    total = client.get_log(batch.id, start=0, size=0).total
    url, reps = sb.url, args.reps
    rows = [
        measure(Row("hdiaks-widgets", "iter_log (default page 10,000)"), counters, reps,
                hdiaks_reader(url, batch.id, None)),
        measure(Row("hdiaks-widgets", "iter_log(page_size=100)"), counters, reps, hdiaks_reader(url, batch.id, 100)),
        measure(Row("livy (pylivy)", "get_batch_log paging, size=100"), counters, reps,
                pylivy_paging_reader(url, batch.id, 100)),
        measure(Row("livy (pylivy)", "LivyBatch.log(from_=0, size=-1)"), counters, reps,
                pylivy_all_reader(url, batch.id)),
    ]  # fmt: skip
    if args.skip_airflow:
        print("skipping LivyHook (--skip-airflow)", file=sys.stderr)
    else:
        rows.append(measure_hook(Row("Airflow LivyHook", "get_batch_logs paging, size=100 (dump_batch_logs loop)"),
                                 url, batch.id, reps, home))  # fmt: skip
    return batch.id, total, rows


# -- 2. tailing a running job -----------------------------------------------------------------


@dataclass
class Tail:
    watcher: str
    log_total: int = 0
    lines_transferred: int = 0
    distinct_lines: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    seconds: float = 0.0

    @property
    def missed(self) -> int:
        return self.log_total - self.distinct_lines

    @property
    def request_total(self) -> int:
        return sum(self.requests.values())


class CountingClient:
    """Delegates to a LivyClient and counts the log lines each page carries (what crossed the wire)."""

    def __init__(self, inner: LivyClient) -> None:
        self.inner = inner
        self.lines = 0
        self.offsets: set[int] = set()

    def get_batch(self, batch_id: int | str) -> Batch:
        return self.inner.get_batch(batch_id)

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        page = self.inner.get_log(batch_id, start=start, size=size)
        self.lines += len(page.lines)
        self.offsets.update(range(page.start, page.end))
        return page


def submit_tail_job(client: LivyClient, args: argparse.Namespace) -> int:
    spec = BatchSpec(file=str(TAIL_APP), args=(str(args.tail_lines), str(args.tail_seconds)),
                     name=f"bench-tail-{time.monotonic_ns()}")  # fmt: skip
    return client.submit_batch(spec).id


def tail_hdiaks(client: LivyClient, counters: Counters, args: argparse.Namespace) -> Tail:
    counters.reset()
    batch_id = submit_tail_job(client, args)
    counting = CountingClient(client)
    started = time.monotonic()
    snap = BatchMonitor(counting, batch_id).run()  # defaults: 0.5 s, x1.5 up to 5 s, page 1000
    result = Tail("hdiaks BatchMonitor (from=offset, defaults)", seconds=time.monotonic() - started)
    result.requests = {k: v for k, v in counters.read().items() if not k.startswith("POST")}
    result.log_total = client.get_log(batch_id, start=0, size=0).total
    result.lines_transferred = counting.lines
    result.distinct_lines = len(counting.offsets)
    result.polls = snap.polls
    return result


def tail_naive(client: LivyClient, counters: Counters, args: argparse.Namespace) -> Tail:
    """Every ``interval`` s: GET /batches/{id}/state and GET /batches/{id}/log with no ``from``
    (Livy answers the last 100 lines); one last log request after the end."""
    counters.reset()
    batch_id = submit_tail_job(client, args)
    http = requests.Session()
    base = f"{client.base_url}/batches/{batch_id}"
    result = Tail(f"naive: tail of 100 every {args.naive_interval:g} s")
    offsets: set[int] = set()
    started = time.monotonic()
    while True:
        state = http.get(f"{base}/state", timeout=30).json()["state"]
        page = http.get(f"{base}/log", timeout=30).json()
        result.polls += 1
        result.lines_transferred += len(page["log"])
        offsets.update(range(page["from"], page["from"] + len(page["log"])))
        if state in TERMINAL:
            break
        time.sleep(args.naive_interval)
    result.seconds = time.monotonic() - started
    result.requests = {k: v for k, v in counters.read().items() if not k.startswith("POST")}
    result.log_total = client.get_log(batch_id, start=0, size=0).total
    result.distinct_lines = len(offsets)
    return result


# -- 3. status polling while nothing happens ----------------------------------------------------


def backoff_polls(seconds: float) -> int:
    """Polls BatchMonitor makes in ``seconds`` of a quiet job (no new lines, no state change)."""
    polls, clock = 0, 0.0
    delays = backoff(0.5, factor=1.5, maximum=5.0)
    while clock <= seconds:
        polls += 1
        clock += next(delays)
    return polls


@dataclass
class Quiet:
    seconds: float
    monitor: dict[str, int]
    fixed: dict[str, int]
    fixed_polls: int


def bench_quiet(sb: SandboxProcess, client: LivyClient, counters: Counters, args: argparse.Namespace) -> Quiet:
    """A sleep_py job; BatchMonitor and a fixed 1 s GET /batches/{id}/state loop watch it at once
    (they use different paths, so the sandbox's per-path counters tell them apart)."""
    batch = client.submit_batch(BatchSpec(file=sb.examples["sleep_py"], args=(str(args.quiet_seconds),),
                                          name=f"bench-quiet-{time.monotonic_ns()}"))  # fmt: skip
    while client.get_batch_state(batch.id).value != "running":
        time.sleep(0.2)
    time.sleep(args.quiet_settle)  # let Spark's start-up output pass: measure the quiet part
    monitor = BatchMonitor(client, batch.id, log_start=client.get_log(batch.id, start=0, size=0).total)
    stop = threading.Event()
    fixed_polls = 0

    def fixed() -> None:
        nonlocal fixed_polls
        http = requests.Session()
        while not stop.is_set():
            http.get(f"{client.base_url}/batches/{batch.id}/state", timeout=30)
            fixed_polls += 1
            stop.wait(1.0)

    thread = threading.Thread(target=fixed, daemon=True)
    counters.reset()
    started = time.monotonic()
    monitor.start()
    thread.start()
    time.sleep(args.quiet_window)
    monitor.stop()
    stop.set()
    thread.join(10)
    monitor.join(10)
    elapsed = time.monotonic() - started
    counts = counters.read()
    client.kill_batch(batch.id)
    mon = {k: v for k, v in counts.items() if not k.endswith("/state")}
    fix = {k: v for k, v in counts.items() if k.endswith("/state")}
    return Quiet(elapsed, mon, fix, fixed_polls)


# -- report -----------------------------------------------------------------------------------


def version(dist: str, python: Path | None = None) -> str:
    if python is None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else "not installed"


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": f"{os.cpu_count()} cores ({cpu})",
        "python": platform.python_version(),
        "hdiaks-widgets": version("hdiaks-widgets"),
        "livy (pylivy)": version("livy"),
        "requests": version("requests"),
        "pyspark": version("pyspark"),
        "apache-airflow (.venv-airflow3)": version("apache-airflow", AIRFLOW3 / "bin" / "python"),
        "apache-airflow-providers-apache-livy (.venv-airflow3)": version(
            "apache-airflow-providers-apache-livy", AIRFLOW3 / "bin" / "python"
        ),
    }


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def whole_log_table(rows: list[Row], total: int) -> list[str]:
    base = rows[0]
    body = []
    for r in rows:
        complete = "yes" if all(n == total for n in r.lines) else f"no ({min(r.lines)}–{max(r.lines)} of {total})"
        body.append([
            r.client, r.how, f"{r.median_s * 1000:.1f}", f"{min(r.seconds) * 1000:.1f}–{max(r.seconds) * 1000:.1f}",
            f"{r.median_requests:g}", f"{r.median_s / base.median_s:.2f}×",
            f"{r.median_requests / base.median_requests:.1f}×", complete,
        ])  # fmt: skip
    header = ["client", "how", "median ms", "range ms", "HTTP requests", "time / hdiaks", "requests / hdiaks",
              "all lines"]  # fmt: skip
    return table(header, body)


def endpoint(key: str) -> str:
    """``GET /batches/7/log`` -> ``log``; ``GET /batches/7`` -> ``batch``."""
    return key.rsplit("/", 1)[-1] if key.count("/") > 2 else "batch"


def tail_table(tails: list[Tail]) -> list[str]:
    body = [
        [t.watcher, str(t.log_total), str(t.lines_transferred), f"{t.lines_transferred / max(1, t.log_total):.2f}",
         str(t.distinct_lines), str(t.lines_transferred - t.distinct_lines), str(t.missed), str(t.polls),
         str(t.request_total),
         ", ".join(f"{endpoint(k)}: {v}" for k, v in sorted(t.requests.items())),
         f"{t.seconds:.1f}"]
        for t in tails
    ]  # fmt: skip
    header = ["watcher", "lines in log", "lines transferred", "transferred / log", "distinct lines seen",
              "lines re-sent", "lines never seen", "polls", "HTTP requests", "by endpoint", "watch s"]  # fmt: skip
    return table(header, body)


def quiet_table(q: Quiet) -> list[str]:
    minutes = q.seconds / 60
    mon, fix = sum(q.monitor.values()), sum(q.fixed.values())
    sim = backoff_polls(60.0)
    return table(
        ["poller", "HTTP requests", "requests / min", "note"],
        [
            ["hdiaks BatchMonitor (0.5 s ×1.5 → 5 s)", str(mon), f"{mon / minutes:.1f}",
             "GET /batches/{id} + GET /log?from=offset per poll; also tails the log"],
            ["fixed 1 s GET /batches/{id}/state", str(fix), f"{fix / minutes:.1f}", "state only, no log"],
            ["simulated: BatchMonitor, 60 s quiet, from the first poll", str(2 * sim), f"{2 * sim:.0f}",
             f"{sim} polls from backoff(); 2 requests each"],
        ],
    )  # fmt: skip


def render(info: dict[str, str], args: argparse.Namespace, total: int, rows: list[Row], tails: list[Tail],
           quiet: Quiet | None) -> str:  # fmt: skip
    intro = ("Generated by `make bench` (`bench/run_benchmarks.py`); numbers from one run on the machine below. "
             "These are measurements, not tests: nothing asserts a time.")  # fmt: skip
    out = ["# Benchmarks", "", intro, "", "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in info.items()]
    out += [
        "",
        "## Method",
        "",
        "One local sandbox (`start_sandbox_process` on a temporary root, port 0, 127.0.0.1 only; real "
        "`spark-submit`, `local[2]`), started once for the whole run and stopped by its PID at the end. "
        "HTTP requests are counted by the sandbox itself (`GET /_sandbox/faults` → `requests`, reset with "
        "`DELETE /_sandbox/faults` before each repetition); its `/_sandbox/` control calls are not counted. "
        "Wall time is `time.perf_counter()` around the reading loop only, in the client's own process, "
        "after one unmeasured warm-up read (connection set-up, first-use imports); Airflow's `LivyHook` runs "
        "in `.venv-airflow3` as a subprocess script that times its own loop the same way, so its interpreter "
        "start and Airflow import are not in the numbers. Client and server share the same "
        f"{os.cpu_count()} cores, so times include the server's work and are loopback times: on a real "
        "cluster each request adds a network round trip and the request count matters more than here.",
        "",
        f"## 1. Reading the whole driver log of a finished batch ({args.lines:,} printed lines)",
        "",
        f"The sandbox example `lines_py` with argument {args.lines} was submitted once with `LivyClient` and "
        f"waited for with `monitor.follow_batch`; its log has {total:,} lines (the printed lines plus Livy's "
        "`stdout:`/`stderr:` headers and Spark's start-up output). Each client then read the whole log "
        f"{args.reps} times; the table gives the median (and range) of those repetitions.",
        "",
        "- hdiaks-widgets: `LivyClient.iter_log(batch_id)` (default page size 10,000); also with `page_size=100` "
        "to separate page size from per-request overhead.",
        "- livy (pylivy): `LivyClient.get_batch_log(batch_id, from_=start, size=100)` in a loop until "
        "`start >= total` (the paging its docs show, with the usual page of 100), and `LivyBatch.log(from_=0, "
        "size=-1)` — one request for everything, which Livy supports.",
        "- Airflow `LivyHook`: `get_batch_logs(batch_id, start, 100)` in exactly the loop of "
        "`LivyHook.dump_batch_logs` (page 100, `while start <= total`), collecting lines instead of logging "
        "each one (so Airflow's logging cost is not counted).",
        "",
        "Ratios are peer / hdiaks (default): above 1× means the peer took longer or sent more requests. "
        "`all lines` checks that every repetition returned all lines of the log.",
        "",
    ]
    out += whole_log_table(rows, total)
    out += [
        "",
        f"## 2. Tailing the log while the job runs ({args.tail_lines:,} lines over about {args.tail_seconds:g} s)",
        "",
        f"`bench/apps/tail_lines.py` (a PySpark script kept with the benchmarks) prints {args.tail_lines} "
        f"numbered lines in chunks every 0.1 s over about {args.tail_seconds:g} s. It is submitted once per "
        "watcher (each watcher gets its own run of the same job, one after the other, so the sandbox's "
        "counters belong to one watcher); the watcher starts right after the submit and stops when the batch "
        "has ended. Nothing is simulated here: both watchers poll a real running job.",
        "",
        "- hdiaks: `BatchMonitor(client, batch_id).run()` with its defaults (polls after 0.5 s, growing ×1.5 "
        "up to 5 s, back to 0.5 s whenever new lines arrive; each poll is `GET /batches/{id}` plus "
        "`GET /batches/{id}/log?from=<offset>&size=1000` pages). Lines transferred are counted by a thin "
        "wrapper around the real `LivyClient` that adds up the lines of each page.",
        f"- naive: every {args.naive_interval:g} s `GET /batches/{{id}}/state` and `GET /batches/{{id}}/log` "
        "without `from` (Livy answers the last 100 lines), until the state is terminal — the loop the "
        "project's brief attributes to the Microsoft sample (not re-checked against that sample here).",
        "",
        "`lines transferred` counts every log line in every response; `distinct lines seen` counts log "
        "offsets that appeared in at least one response; `lines re-sent` = transferred − distinct (the same "
        "line sent again by a later poll); `lines never seen` = lines in the final log that "
        "the watcher never received (the naive tail skips whatever was printed beyond 100 lines between "
        "two polls). `by endpoint`: `batch` = `GET /batches/{id}`.",
        "",
    ]
    out += tail_table(tails)
    if quiet is not None:
        out += [
            "",
            "## 3. Status polling while the job is quiet",
            "",
            f"The sandbox example `sleep_py` ({args.quiet_seconds:g} s) was submitted; once it was running and "
            f"{args.quiet_settle:g} s later (Spark's start-up output over), `BatchMonitor` (defaults, starting "
            "at the log's current end) and a fixed 1 s `GET /batches/{id}/state` loop (what "
            "`LivyOperator(polling_interval=1)` does) watched it at the same time for "
            f"{quiet.seconds:.0f} s; the sandbox's per-path counters tell them apart. The last row is "
            "computed, not measured: `backoff()` delays summed over 60 s with no activity.",
            "",
        ]
        out += quiet_table(quiet)
    out.append("")
    return "\n".join(out)


def print_summary(total: int, rows: list[Row], tails: list[Tail], quiet: Quiet | None) -> None:
    print()
    print("\n".join(whole_log_table(rows, total)))
    print()
    print("\n".join(tail_table(tails)))
    if quiet is not None:
        print()
        print("\n".join(quiet_table(quiet)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--tail-lines", type=int, default=3000)
    parser.add_argument("--tail-seconds", type=float, default=6.0)
    parser.add_argument("--naive-interval", type=float, default=1.0)
    parser.add_argument("--quiet-seconds", type=float, default=90.0)
    parser.add_argument("--quiet-settle", type=float, default=5.0)
    parser.add_argument("--quiet-window", type=float, default=60.0)
    parser.add_argument("--skip-quiet", action="store_true", help="skip section 3 (status polling)")
    parser.add_argument("--skip-airflow", action="store_true", help="skip LivyHook (no .venv-airflow3)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    if not args.skip_airflow and not (AIRFLOW3 / ".installed").exists():
        parser.error(f"{AIRFLOW3} is missing: `make -f Makefile .venv-airflow3/.installed` or --skip-airflow")
    info = machine()
    with tempfile.TemporaryDirectory(prefix="hdiaks-bench-") as tmp:
        print(f"starting the sandbox under {tmp} ...", file=sys.stderr)
        sb = start_sandbox_process(Path(tmp) / "sandbox", port=0)
        try:
            client = LivyClient(sb.url)
            counters = Counters(sb.url)
            print("1. whole log ...", file=sys.stderr)
            _, total, rows = bench_whole_log(sb, client, counters, args, Path(tmp) / "airflow")
            print("2. tail ...", file=sys.stderr)
            tails = [tail_hdiaks(client, counters, args), tail_naive(client, counters, args)]
            quiet = None
            if not args.skip_quiet:
                print("3. quiet polling ...", file=sys.stderr)
                quiet = bench_quiet(sb, client, counters, args)
        finally:
            left = sb.stop()
            if left:
                print(f"warning: sandbox processes still alive: {left}", file=sys.stderr)
    print_summary(total, rows, tails, quiet)
    args.out.write_text(render(info, args, total, rows, tails, quiet), encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
