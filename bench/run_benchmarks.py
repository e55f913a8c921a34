"""Benchmarks: hdiaks-widgets' Livy client beside the clients users pick today, on local sandboxes.

Run with ``make bench`` (or ``.venv/bin/python bench/run_benchmarks.py``; ``--only logs`` runs
section 1 alone and splices it into ``docs/benchmarks.md``). Sections:

1. log fidelity on Livy's real, bounded log (``bench/log_fidelity.py``): one sandbox in the
   ``process`` shape where the product, pylivy and Airflow's ``LivyHook`` (in ``.venv-airflow3``)
   watch the same running batch, then one in the ``yarn`` shape for the driver log by byte range;
2. tailing and 3. status polling: one sandbox started with ``log_shape="append"`` (the old
   unbounded log, where offsets never move) so that what they measure stays comparable.

Every sandbox is ``start_sandbox_process`` on a temp root, port 0, loopback only, stopped by its
PID. HTTP requests are counted by the sandbox (``GET /_sandbox/faults`` → ``requests``;
``DELETE`` resets them) or by a response hook on a reader's own session; control requests to
``/_sandbox/`` are not counted. Measurements, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

# bench/ is sys.path[0] when this file runs as a script
from log_fidelity import LogsResult, fidelity_table, render_logs, run_logs, transfer_table
from machine_info import cpu_model, version

from hdiaks_widgets import LivyClient
from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.models import Batch, LogPage
from hdiaks_widgets.monitor import BatchMonitor, backoff
from hdiaks_widgets.sandbox.launcher import SandboxProcess, start_sandbox_process

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW3 = ROOT / ".venv-airflow3"
TAIL_APP = ROOT / "bench" / "apps" / "tail_lines.py"
TERMINAL = {"success", "dead", "killed", "error"}
LOGS_BEGIN = "<!-- bench:logs begin (bench/run_benchmarks.py --only logs rewrites this section) -->"
LOGS_END = "<!-- bench:logs end -->"


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


def machine() -> dict[str, str]:
    cpu = cpu_model()
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


def render(info: dict[str, str], args: argparse.Namespace, logs: LogsResult | None, tails: list[Tail],
           quiet: Quiet | None) -> str:  # fmt: skip
    intro = ("Generated by `make bench` (`bench/run_benchmarks.py`); numbers from one run on the machine below. "
             "These are measurements, not tests: nothing asserts a time.")  # fmt: skip
    out = ["# Benchmarks", "", intro, "", "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in info.items()]
    out += [
        "",
        "## Method",
        "",
        "Local sandboxes (`start_sandbox_process` on a temporary root, port 0, 127.0.0.1 only; real "
        "`spark-submit`, `local[2]`), one at a time, each stopped by its PID. Section 1 starts one sandbox per "
        'log shape (see there); sections 2 and 3 share one started with `log_shape="append"`, the sandbox\'s '
        "old unbounded log (offsets never move), so that they keep measuring what they measured before the "
        "sandbox served Livy's real, bounded log. HTTP requests are counted by the sandbox itself "
        "(`GET /_sandbox/faults` → `requests`, reset with `DELETE /_sandbox/faults`) or, in section 1, by a "
        "response hook on each reader's own `requests.Session`; the `/_sandbox/` control calls are not "
        f"counted. Client and server share the same {os.cpu_count()} cores, so times include the server's "
        "work and are loopback times: on a real cluster each request adds a network round trip and the "
        "request count matters more than here.",
        "",
    ]
    if logs is not None:
        out += [LOGS_BEGIN, *render_logs(logs, info, logs_command(args)), LOGS_END, ""]
    out += [
        f"## 2. Tailing the log while the job runs ({args.tail_lines:,} lines over about {args.tail_seconds:g} s)",
        "",
        f"`bench/apps/tail_lines.py` (a PySpark script kept with the benchmarks) prints {args.tail_lines} "
        f"numbered lines in chunks every 0.1 s over about {args.tail_seconds:g} s, on the append-shape sandbox. "
        "It is submitted once per "
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


def logs_command(args: argparse.Namespace) -> str:
    command = ".venv/bin/python bench/run_benchmarks.py"
    if args.only == "logs":
        command += " --only logs"
    defaults = {"log_lines": 4000, "log_pause": 0.3, "log_interval": 0.5, "cache_log_size": 200}
    for name, default in defaults.items():
        if getattr(args, name) != default:
            command += f" --{name.replace('_', '-')} {getattr(args, name):g}"
    return command + (" --skip-airflow" if args.skip_airflow else "")


def splice_logs(document: str, section: list[str]) -> str:
    """``document`` with section 1 replaced: between the markers, or (the first time) the old
    "## 1." section up to "## 2."."""
    block = "\n".join([LOGS_BEGIN, *section, LOGS_END])
    if LOGS_BEGIN in document and LOGS_END in document:
        head, rest = document.split(LOGS_BEGIN, 1)
        return head + block + rest.split(LOGS_END, 1)[1]
    match = re.search(r"^## 1\..*?(?=^## 2\.)", document, re.S | re.M)
    if match is not None:
        return document[: match.start()] + block + "\n\n" + document[match.end() :]
    return document.rstrip("\n") + "\n\n" + block + "\n"


def print_logs(logs: LogsResult) -> None:
    print()
    print("\n".join(fidelity_table(logs.rows, logs.count)))
    print()
    print("\n".join(transfer_table(logs.transfers)))
    print()
    print("\n".join(fidelity_table(logs.yarn_rows, logs.yarn_count)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("all", "logs"), default="all",
                        help="logs: section 1 only, spliced into --out (the other sections are kept)")  # fmt: skip
    parser.add_argument("--log-lines", type=int, default=4000, help="storm.py N (section 1)")
    parser.add_argument("--log-pause", type=float, default=0.3, help="storm.py pause per 500 lines (section 1)")
    parser.add_argument("--log-interval", type=float, default=0.5, help="seconds between reads (section 1)")
    parser.add_argument("--log-timeout", type=float, default=600.0)
    parser.add_argument("--cache-log-size", type=int, default=200, help="the sandboxes' Livy cache-log-size")
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
    tails: list[Tail] = []
    quiet = None
    with tempfile.TemporaryDirectory(prefix="hdiaks-bench-") as tmp:
        logs = run_logs(args, Path(tmp))
        if args.only == "all":
            print(f"starting the append-shape sandbox under {tmp} ...", file=sys.stderr)
            sb = start_sandbox_process(Path(tmp) / "sandbox", port=0, log_shape="append")
            try:
                client = LivyClient(sb.url)
                counters = Counters(sb.url)
                print("2. tail ...", file=sys.stderr)
                tails = [tail_hdiaks(client, counters, args), tail_naive(client, counters, args)]
                if not args.skip_quiet:
                    print("3. quiet polling ...", file=sys.stderr)
                    quiet = bench_quiet(sb, client, counters, args)
            finally:
                left = sb.stop()
                if left:
                    print(f"warning: sandbox processes still alive: {left}", file=sys.stderr)
    print_logs(logs)
    if args.only == "logs":
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Benchmarks\n"
        args.out.write_text(splice_logs(old, render_logs(logs, info, logs_command(args))), encoding="utf-8")
    else:
        print()
        print("\n".join(tail_table(tails)))
        if quiet is not None:
            print()
            print("\n".join(quiet_table(quiet)))
        args.out.write_text(render(info, args, logs, tails, quiet), encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
