"""Log fidelity on Livy's real log: what each reader shows of one running storm job.

Livy keeps the last ``cache-log-size`` (200) lines of each of spark-submit's streams and rebuilds
``GET /batches/{id}/log`` from them per request. This benchmark submits one paced storm job
(``storm.py N ok PAUSE``: N numbered ``out``/``err`` lines, a pause every 500) to a sandbox in the
``process`` shape and lets every reader watch THE SAME batch from one loop, interleaved (the
order rotates each tick), every ``interval`` seconds:

- the product: ``BatchRun.poll()`` (default reader ``logview.LivyLogReader``);
- pylivy: ``LivyClient.get_batch_log(from_=<last offset>, size=100)`` pages until ``total``,
  and ``LivyBatch.log(from_=0, size=-1)`` once after the end;
- Airflow's ``LivyHook`` (in ``.venv-airflow3``, a subprocess that answers one command per tick):
  ``get_batch_logs(<last offset>, 100)`` pages until ``total``, and the real ``dump_batch_logs``
  once after the end (what ``LivyOperator`` does), its log records collected.

Then, in the ``yarn`` shape, the driver's own stdout/stderr behind ``appInfo.driverLogUrl``:
``logview.DriverLogReader`` (byte ranges through ``LivyClient.get_text``) against a raw
``requests`` loop that downloads ``?start=0`` of both files every tick, and one full download
after the end. Requests and response bytes are counted by a response hook on each reader's own
``requests.Session``; time is ``perf_counter`` around each reader's calls.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livy import LivyBatch
from livy.client import LivyClient as PyLivyClient
from requests import Response, Session

from hdiaks_widgets import LivyClient
from hdiaks_widgets.config import BatchSpec
from hdiaks_widgets.logview import DriverLogReader, parse_container_page
from hdiaks_widgets.run import BatchRun
from hdiaks_widgets.sandbox.launcher import start_sandbox_process

__all__ = ["Fidelity", "LogsResult", "Transfer", "render_logs", "run_logs"]

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW3 = ROOT / ".venv-airflow3"
NUMBERED = re.compile(r"^(out|err) (\d{6}) of (\d+)$")
TAIL_WINDOW = 100

# Runs in .venv-airflow3 for the whole watch; one JSON answer per command read on stdin.
HOOK_SCRIPT = r"""
import json, logging, sys
from airflow.providers.apache.livy.hooks.livy import LivyHook

hook = LivyHook(livy_conn_id="sandbox", extra_headers={"X-Requested-By": "airflow"})

class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
    def emit(self, record):
        self.records.append(record)

# Airflow 3 logs through structlog; a plain logger in its place lets us keep the records the
# unchanged dump_batch_logs writes (one per log line, as the task log would show them).
collect = Collect()
hook._log = logging.getLogger("bench.livyhook")
hook._log.addHandler(collect)
hook._log.setLevel(logging.INFO)
hook._log.propagate = False
offset = 0
hook.get_connection(hook.http_conn_id)  # imports and connection parsing before the watch
print(json.dumps({"ready": True}), flush=True)
for command in sys.stdin:
    command, _, batch = command.strip().partition(" ")
    batch_id = int(batch or 0)
    if command == "tail":  # get_batch_logs paging from the last offset, as far as total
        lines, requests = [], 0
        while True:
            page = hook.get_batch_logs(batch_id, offset, 100)
            requests += 1
            lines += page["log"]
            offset += len(page["log"])
            if not page["log"] or offset >= page["total"]:
                break
        print(json.dumps({"lines": lines, "requests": requests, "said": []}), flush=True)
    elif command == "dump":  # the provider's own loop, as LivyOperator calls it after the end
        collect.records.clear()
        hook.dump_batch_logs(batch_id)
        records = collect.records[1:]  # the first is "Fetching the logs for batch session ..."
        said = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
        lines = [r.getMessage() for r in records if r.levelno < logging.WARNING]
        print(json.dumps({"lines": lines, "requests": None, "said": said}), flush=True)
    else:
        break
"""


# -- what a reader showed ---------------------------------------------------------------------


@dataclass
class Fidelity:
    reader: str
    how: str
    shown: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # what it told the user about lost lines
    polls: int = 0
    seconds: float = 0.0

    def add(self, lines: Iterable[str]) -> None:
        self.shown.extend(lines)


@dataclass(frozen=True)
class Score:
    printed: int
    shown: int
    distinct: int
    twice: int
    out_of_order: int
    final_out: int  # of the last TAIL_WINDOW numbered lines of each stream, how many were shown
    final_err: int


def score(shown: list[str], count: int) -> Score:
    """Numbered lines only. ``out_of_order``: a line shown for the first time after a later line
    of its own stream (a repeat counts as ``twice``, not also as out of order)."""
    seen: set[tuple[str, int]] = set()
    top = {"out": 0, "err": 0}
    numbered = twice = disorder = 0
    for line in shown:
        match = NUMBERED.match(str(line))
        if match is None or int(match.group(3)) != count:
            continue
        numbered += 1
        key = (match.group(1), int(match.group(2)))
        if key in seen:
            twice += 1
            continue
        seen.add(key)
        if key[1] < top[key[0]]:
            disorder += 1
        top[key[0]] = max(top[key[0]], key[1])
    last = range(count - TAIL_WINDOW + 1, count + 1)
    return Score(
        printed=2 * count, shown=numbered, distinct=len(seen), twice=twice, out_of_order=disorder,
        final_out=sum(("out", n) in seen for n in last), final_err=sum(("err", n) in seen for n in last),
    )  # fmt: skip


# -- bytes and requests on the wire -----------------------------------------------------------


@dataclass
class Wire:
    requests: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def session(self) -> Session:
        """A session of this reader's own that counts each response (body bytes as received)."""
        session = Session()
        session.trust_env = False  # loopback: this machine's proxy settings must not apply

        def count(response: Response, *args: Any, **kwargs: Any) -> None:
            self.requests += 1
            self.bytes += len(response.content)

        session.hooks["response"].append(count)
        return session

    def timed(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds += time.perf_counter() - started


@dataclass
class Transfer:
    reader: str
    how: str
    wire: Wire
    lines: int  # driver stdout+stderr lines it ended with
    complete: bool  # its final text equals the files' final content


@dataclass
class LogsResult:
    count: int
    pause: float
    interval: float
    cache_log_size: int
    batch_id: str
    ticks: int
    watch_seconds: float
    rows: list[Fidelity]
    yarn_count: int
    transfers: list[Transfer]
    yarn_rows: list[Fidelity]
    driver_bytes: int


# -- the watchers ------------------------------------------------------------------------------


def airflow_env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW_CONN_SANDBOX=url,
               PYTHONWARNINGS="ignore", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")  # fmt: skip
    return env


class HookProcess:
    """The LivyHook subprocess: one command, one JSON answer."""

    def __init__(self, url: str, home: Path) -> None:
        self.stderr = home.parent / "livyhook.stderr"
        with open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(
                [str(AIRFLOW3 / "bin" / "python"), "-c", HOOK_SCRIPT],
                env=airflow_env(home, url), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        self._answer()  # ready: Airflow imported, connection parsed

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            tail = self.stderr.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the LivyHook process ended (exit {self.proc.wait(10)}):\n{tail}")
        return dict(json.loads(line))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def pylivy_tail(client: PyLivyClient, batch_id: int, offset: int) -> tuple[list[str], int]:
    """pylivy's paging from the last offset (what test_compat and the old benchmark did)."""
    lines: list[str] = []
    while True:
        page = client.get_batch_log(batch_id, from_=offset, size=100)
        if page is None:
            raise RuntimeError(f"batch {batch_id} vanished")
        lines += page.lines
        offset += len(page.lines)
        if not page.lines or offset >= page.total:
            return lines, offset


def said_by(note: str | None, gaps: int) -> list[str]:
    """What the product told its user: the run's note, and the gap count it keeps."""
    return ([f"note: “{note}”"] if note else []) + ([f"`Snapshot.log_gaps` = {gaps}"] if gaps else [])


def storm_spec(example: str, count: int, pause: float, label: str) -> BatchSpec:
    return BatchSpec(file=example, args=(str(count), "ok", f"{pause:g}"), name=f"{label}-{time.monotonic_ns()}")


def watch_process_shape(url: str, example: str, args: Any, home: Path) -> tuple[str, int, float, list[Fidelity]]:
    product = Fidelity("hdiaks-widgets", "`BatchRun.poll()` (LivyLogReader) every tick")
    py_tail = Fidelity("livy (pylivy)", "`get_batch_log(from_=<last offset>, size=100)` to `total`, every tick")
    py_end = Fidelity("livy (pylivy)", "`LivyBatch.log(from_=0, size=-1)` once after the end")
    af_tail = Fidelity("Airflow LivyHook", "`get_batch_logs(<last offset>, 100)` to `total`, every tick")
    af_end = Fidelity("Airflow LivyHook", "`dump_batch_logs` once after the end (as `LivyOperator`)")

    hook = None if args.skip_airflow else HookProcess(url, home)  # started first: Airflow imports slowly
    client = LivyClient(url, session=Wire().session())
    run = BatchRun.submit(client, storm_spec(example, args.log_lines, args.log_pause, "bench-fidelity"))
    batch_id = str(run.batch_id)
    py_session = Wire().session()
    pylivy = PyLivyClient(url, requests_session=py_session)
    offset = 0
    ended = False

    def poll_product() -> None:
        snap = run.poll()
        product.add(snap.new_lines)
        product.polls += 1

    def poll_pylivy() -> None:
        nonlocal offset
        lines, offset = pylivy_tail(pylivy, int(batch_id), offset)
        py_tail.add(lines)
        py_tail.polls += 1

    def poll_hook() -> None:
        if hook is not None:
            af_tail.add(hook.ask(f"tail {batch_id}")["lines"])
            af_tail.polls += 1

    watchers: list[Callable[[], None]] = [poll_product, poll_pylivy, poll_hook]
    ticks = 0
    started = time.monotonic()
    try:
        while True:
            tick = time.monotonic()
            order = watchers[ticks % 3 :] + watchers[: ticks % 3]  # nobody always reads first
            for watch in order:
                if watch is poll_product and run.finished:
                    continue
                watch()
            ticks += 1
            state = run.snapshot.state
            if ended and run.finished:
                break
            # the peers get one more tick after the product saw the end, as a tailer would
            ended = ended or (state is not None and state.is_terminal)
            if time.monotonic() - started > args.log_timeout:
                raise RuntimeError(f"batch {batch_id} still {run.snapshot.state_label} after {args.log_timeout} s")
            time.sleep(max(0.0, args.log_interval - (time.monotonic() - tick)))
        watch_seconds = time.monotonic() - started
        if run.snapshot.state_label != "success":
            raise RuntimeError(f"benchmark storm batch {batch_id} ended {run.snapshot.state_label}")
        snap = run.snapshot
        product.said = said_by(snap.log_note, snap.log_gaps)
        py_end.add(LivyBatch(url, int(batch_id), requests_session=py_session).log(from_=0, size=-1))
        py_end.polls = 1
        rows = [product, py_tail, py_end]
        if hook is not None:
            answer = hook.ask(f"dump {batch_id}")
            af_end.add(answer["lines"])
            af_end.said = list(answer["said"])
            af_end.polls = 1
            rows += [af_tail, af_end]
    finally:
        if hook is not None:
            hook.close()
    return batch_id, ticks, watch_seconds, rows


def download(session: Session, url: str) -> str:
    """The whole file, parsed as the product parses a page (timed with the request, as its reads are)."""
    response = session.get(url, params={"start": 0}, timeout=60)
    response.raise_for_status()
    return parse_container_page(response.text)[0]


def watch_yarn_shape(url: str, example: str, args: Any) -> tuple[list[Transfer], list[Fidelity], int]:
    """One storm job in the yarn shape: its driver files read three ways, and BatchRun's view."""
    product_wire, raw_wire, full_wire = Wire(), Wire(), Wire()
    run = BatchRun.submit(LivyClient(url, session=Wire().session()),
                          storm_spec(example, args.log_lines, args.log_pause, "bench-driverlog"))  # fmt: skip
    product_run = Fidelity("hdiaks-widgets", "`BatchRun.poll()` in the yarn shape (driver log + Livy's view)")
    reader_client = LivyClient(url, session=product_wire.session())
    raw = raw_wire.session()
    reader: DriverLogReader | None = None
    reader_lines: list[str] = []
    raw_text: dict[str, str] = {}
    started = time.monotonic()
    final_done = False
    while not final_done:
        tick = time.monotonic()
        snap = run.poll()
        product_run.add(snap.new_lines)
        product_run.polls += 1
        finished = snap.state is not None and snap.state.is_terminal
        driver_url = snap.batch.app_info.driver_log_url if snap.batch is not None else None
        if driver_url:
            if reader is None:
                reader = DriverLogReader(reader_client.resolve_log_url(driver_url))
            got, at_end = product_wire.timed(functools.partial(reader.read, reader_client, finished=finished))
            reader_lines += got
            for name in DriverLogReader.FILES:
                raw_text[name] = raw_wire.timed(functools.partial(download, raw, f"{driver_url}/{name}/"))
            final_done = finished and at_end and run.finished
        if time.monotonic() - started > args.log_timeout:
            raise RuntimeError(f"yarn batch {run.batch_id} still {snap.state_label} after {args.log_timeout} s")
        if not final_done:
            time.sleep(max(0.0, args.log_interval - (time.monotonic() - tick)))
    if run.snapshot.state_label != "success" or reader is None:
        raise RuntimeError(f"yarn storm batch {run.batch_id} ended {run.snapshot.state_label}, driver log {reader}")
    driver_url = run.snapshot.batch.app_info.driver_log_url if run.snapshot.batch is not None else None
    assert driver_url
    full = full_wire.session()
    final: dict[str, str] = {}
    for name in DriverLogReader.FILES:
        final[name] = full_wire.timed(functools.partial(download, full, f"{driver_url}/{name}/"))
    final_lines = [ln for name in DriverLogReader.FILES for ln in final[name].splitlines()]
    total_bytes = sum(len(t.encode("utf-8")) for t in final.values())
    transfers = [
        Transfer("hdiaks-widgets", "`DriverLogReader.read` (byte ranges, `LivyClient.get_text`) every tick",
                 product_wire, len(reader_lines), sorted(reader_lines) == sorted(final_lines)),
        Transfer("raw `requests`", "`GET <driverLogUrl>/{stdout,stderr}/?start=0` every tick", raw_wire,
                 sum(len(t.splitlines()) for t in raw_text.values()), raw_text == final),
        Transfer("raw `requests`", "one full download of both files after the end", full_wire, len(final_lines),
                 True),
    ]  # fmt: skip
    snap = run.snapshot
    product_run.said = said_by(snap.log_note, snap.log_gaps)
    return transfers, [product_run], total_bytes


def run_logs(args: Any, tmp: Path) -> LogsResult:
    """Both shapes, one sandbox each, one after the other (2 cores: one Spark job at a time)."""
    common = {"port": 0, "cache_log_size": args.cache_log_size, "report_interval": 1.0}
    print(f"logs: process shape, storm {args.log_lines} ...", file=sys.stderr)
    sb = start_sandbox_process(tmp / "sandbox-process", log_shape="process", **common)
    try:
        batch_id, ticks, seconds, rows = watch_process_shape(sb.url, sb.examples["storm_py"], args, tmp / "airflow")
    finally:
        left = sb.stop()
        if left:
            print(f"warning: sandbox processes still alive: {left}", file=sys.stderr)
    print(f"logs: yarn shape, storm {args.log_lines} ...", file=sys.stderr)
    sb = start_sandbox_process(tmp / "sandbox-yarn", log_shape="yarn", **common)
    try:
        transfers, yarn_rows, driver_bytes = watch_yarn_shape(sb.url, sb.examples["storm_py"], args)
    finally:
        left = sb.stop()
        if left:
            print(f"warning: sandbox processes still alive: {left}", file=sys.stderr)
    return LogsResult(
        count=args.log_lines, pause=args.log_pause, interval=args.log_interval, cache_log_size=args.cache_log_size,
        batch_id=batch_id, ticks=ticks, watch_seconds=seconds, rows=rows, yarn_count=args.log_lines,
        transfers=transfers, yarn_rows=yarn_rows, driver_bytes=driver_bytes,
    )  # fmt: skip


# -- report ------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _said(row: Fidelity) -> str:
    if not row.said:
        return "nothing"
    return "; ".join(s.replace("|", "\\|") for s in row.said)


def fidelity_table(rows: list[Fidelity], count: int) -> list[str]:
    body = []
    for r in rows:
        s = score(r.shown, count)
        final = "yes" if s.final_out == s.final_err == TAIL_WINDOW else f"no (out {s.final_out}, err {s.final_err})"
        body.append([r.reader, r.how, str(r.polls), f"{s.distinct:,} / {s.printed:,} ({s.distinct / s.printed:.1%})",
                     str(s.twice), str(s.out_of_order), final, _said(r)])  # fmt: skip
    header = ["reader", "how", "reads", "numbered lines shown / printed", "shown twice", "out of order",
              f"last {TAIL_WINDOW} of each stream", "said about lost lines"]  # fmt: skip
    return _table(header, body)


def transfer_table(transfers: list[Transfer]) -> list[str]:
    base = transfers[0].wire
    body = [
        [t.reader, t.how, str(t.wire.requests), f"{t.wire.bytes:,}", f"{t.wire.seconds * 1000:.1f}",
         f"{t.wire.requests / base.requests:.2f}×", f"{t.wire.bytes / base.bytes:.2f}×",
         f"{t.wire.seconds / base.seconds:.2f}×", f"{t.lines:,}", "yes" if t.complete else "no"]
        for t in transfers
    ]  # fmt: skip
    header = ["reader", "how", "HTTP requests", "bytes received", "ms in reads", "requests / hdiaks",
              "bytes / hdiaks", "time / hdiaks", "driver lines", "matches the final files"]  # fmt: skip
    return _table(header, body)


def render_logs(r: LogsResult, info: dict[str, str], command: str) -> list[str]:
    out = [
        "## 1. Log fidelity on Livy's real (bounded) log",
        "",
        'This section replaces the earlier "reading the whole driver log of a finished batch (10,062 lines)" '
        "table, which was measured on the sandbox's old append-only log (before commit 25b431a): every "
        "client read every line there because that log never evicted anything, which real Livy does not do. "
        "Here the sandbox serves Livy's real log: two evicting queues of `--cache-log-size` "
        f"{r.cache_log_size} lines, the view rebuilt per request.",
        "",
        f"Command: `{command}` (one run; {info['date']}; {info['cpu']}; Python {info['python']}; "
        f"livy {info['livy (pylivy)']}; apache-airflow-providers-apache-livy "
        f"{info['apache-airflow-providers-apache-livy (.venv-airflow3)']}).",
        "",
        "### 1a. Watching a running job in the process shape",
        "",
        f'One sandbox with `log_shape="process"`; one batch, `storm.py {r.count} ok {r.pause:g}` '
        f"({r.count:,} `out` and {r.count:,} `err` numbered lines, a {r.pause:g} s pause after every 500 of "
        "each; Spark's PythonRunner merges a Python driver's stderr into spark-submit's stdout, so both "
        "numbered streams share Livy's stdout queue). Every reader watched that same batch from one loop, "
        f"one read each per tick, every {r.interval:g} s, the order rotating each tick "
        f"({r.ticks} ticks, {r.watch_seconds:.1f} s from submit to the end). The readers that tail also "
        'read once more after the product saw the terminal state; the rows "once after the end" read '
        "the finished batch's log once.",
        "",
        "`numbered lines shown` counts distinct numbered lines a reader returned; `shown twice` counts "
        "repeats; `out of order` counts lines first shown after a later line of their own stream; "
        f"`last {TAIL_WINDOW} of each stream` is whether all of `out`/`err` {r.count - TAIL_WINDOW + 1:06d}–"
        f"{r.count:06d} were shown; `said about lost lines` is what the reader told its user (the product's "
        "`Snapshot.log_note` and `log_gaps`; for Airflow, any WARNING record of `dump_batch_logs`).",
        "",
    ]
    out += fidelity_table(r.rows, r.count)
    product, tails = score(r.rows[0].shown, r.count), [score(x.shown, r.count) for x in r.rows[1:] if x.polls > 1]
    out += [
        "",
        f"Reading the numbers: the job printed about 1,000 lines per {r.pause:g} s into one 200-line queue, so no "
        f"reader of Livy's view polling every {r.interval:g} s can show most of them; the product showed "
        f"{product.distinct:,} ({product.distinct / product.printed:.1%}), each once and in order, the final window "
        "included, and said that lines were lost. The offset tails "
        + (f"showed {max(t.distinct for t in tails):,} at most and stopped moving once `total` stopped growing "
           "(the offsets of a full view never advance), so they missed the end and said nothing"
           if tails else "were not run")
        + "; a read after the end returns only the last window. Only the driver's own log, read by byte range "
        "where Livy points to it (the yarn shape, 1b), has all of it.",
    ]  # fmt: skip
    out += [
        "",
        "### 1b. The YARN driver log: byte ranges against re-downloading",
        "",
        f'A second sandbox with `log_shape="yarn"`; the same storm job. Its driver\'s own stdout/stderr '
        f"({r.driver_bytes:,} bytes at the end) are served as NodeManager-style HTML pages behind "
        "`appInfo.driverLogUrl`. Every tick once the URL was there: the product's "
        "`logview.DriverLogReader` (reads `?start=<offset>&end=<offset + 1 MiB>` of each file, keeps "
        "only whole lines) and a raw `requests` loop that downloads `?start=0` of both files; after the "
        "end, one full download of both files. Requests and bytes (response bodies, HTML included) are "
        "counted by a response hook on each reader's own session; time is `perf_counter` around its "
        "reads only (the raw loop's HTML parse included, as the product's is). Ratios are reader / hdiaks. "
        "Times are loopback times on shared cores and moved between runs by more than the gap between the "
        "first two rows (the re-download loop took 0.6×–1.7× the product's time over four runs), while "
        "the request ratio stayed 1.00× and the byte ratio 9.9×–12.2×.",
        "",
    ]
    out += transfer_table(r.transfers)
    out += [
        "",
        "What the product's `BatchRun` showed of that yarn batch (same scoring as 1a):",
        "",
    ]
    out += fidelity_table(r.yarn_rows, r.yarn_count)
    return out
