"""The ``hdiaks`` command: wiring only — every subcommand calls the library.

Every subcommand takes ``--config job.json`` (or ``--url`` for a plain Livy server), prints
machine-readable output with ``--json``, and exits non-zero with a one-line error on failure.

Logs are read the way the run core reads them (``logview.LivyLogReader``: Livy's bounded view
aligned by content, the driver log when it can be read). When the reader has something to say
about what it could not read (lines Livy dropped, an unreadable driver log), that note is printed
once to stderr as ``note: ...``, so stdout stays the log (or the JSON) alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from hdiaks_widgets import __version__, wire
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import BatchNotFound, ConfigError, ConfigProblem, HdiaksError, LivyError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.logview import job_output
from hdiaks_widgets.models import Batch, BatchList, BatchState, LogPage
from hdiaks_widgets.progress import ProgressReader
from hdiaks_widgets.run import BatchRun, LivyLogReader, OffsetLogReader, Snapshot, failure_lines
from hdiaks_widgets.sandbox.logbuf import DEFAULT_CACHE_LOG_SIZE, LOG_SHAPES  # stdlib only, no server

__all__ = ["main"]

# Exit codes: what `main` and the subcommands return (kept in one place for --help and tests).
EXIT_OK = 0
EXIT_LIVY = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool its reader went away from
LIVY_INT_MAX = 2**31 - 1  # Livy reads from/size as a Scala Int; a bigger one never reaches a batch


def _batch_dict(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "name": batch.name,
        "state": batch.state.value,
        "appId": batch.app_id,
        "sparkUiUrl": batch.app_info.spark_ui_url,
        "driverLogUrl": batch.app_info.driver_log_url,
    }


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _line_dict(line: str) -> dict[str, Any]:
    """A log line for ``--json``: its text and where it was read from (``models.LOG_SOURCES``;
    ``None`` for a raw page of Livy's view, read by offset)."""
    return {"text": str(line), "source": getattr(line, "source", None)}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")  # what str.splitlines also breaks at


class _Notes:
    """Prints each note of a run once, to stderr: ``note: <sentence>``. The note names URLs the
    server gave, so control characters (a newline faking another line, a terminal escape) are
    replaced."""

    def __init__(self, line: _ProgressLine | None = None) -> None:
        self.shown: list[str] = []
        self._line = line

    def show(self, snap: Snapshot) -> None:
        notes = [snap.log_note, snap.progress.note if snap.progress is not None else None]
        for note in notes:
            if note and note not in self.shown:
                self.shown.append(note)
                text = f"note: {_CONTROL.sub(' ', note)}"
                if self._line is not None:
                    self._line.write(text, sys.stderr)
                else:
                    print(text, file=sys.stderr, flush=True)


def _stderr_size() -> tuple[int, int]:
    """Columns and rows of the terminal stderr is on. A terminal that reports 0 (a fresh
    pseudo-terminal, some containers) would get nothing from tqdm: ``$COLUMNS``/``$LINES``,
    else 100 x 24, then."""
    try:
        columns, rows = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        columns = rows = 0

    def env(name: str, fallback: int) -> int:
        raw = os.environ.get(name, "")
        return int(raw) if raw.isdigit() and int(raw) > 0 else fallback

    return (columns if columns > 0 else env("COLUMNS", 100)), (rows if rows > 1 else env("LINES", 24))


class _ProgressLine:
    """One line on a terminal's stderr, redrawn in place by tqdm: the batch's state, Spark's
    progress (a bar over the known tasks, jobs and stages done) and the time followed. Log lines
    and notes are written above it (``tqdm.write``), so the bar never garbles them. Only for a
    terminal: on a pipe or file the CLI prints plain state lines as before."""

    # tqdm's own fields; the progress text goes in as literal text (braces escaped).
    _KNOWN = "{desc} {percentage:3.0f}%|{bar:20}| <detail> [{elapsed}]"
    _UNKNOWN = "{desc} <detail>[{elapsed}]"

    def __init__(self, batch_id: str) -> None:
        from tqdm import tqdm  # only a terminal follow needs it

        self._tqdm = tqdm
        self._batch_id = batch_id
        columns, rows = _stderr_size()
        self._bar = tqdm(total=1, file=sys.stderr, bar_format=self._UNKNOWN.replace("<detail>", ""), ncols=columns,
                         nrows=rows, leave=True, desc=f"batch {_printable(batch_id)}", mininterval=0)  # fmt: skip
        # The elapsed time ticks every second between polls (which back off to --poll x 5).
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="hdiaks-progress-line", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._bar.refresh()

    @staticmethod
    def wanted() -> bool:
        stream = sys.stderr
        return bool(getattr(stream, "isatty", None)) and stream.isatty() and os.environ.get("TERM") != "dumb"

    def write(self, text: str, file: Any) -> None:
        """A line above the bar, flushed at once (``tqdm.write`` does not flush: a piped stdout
        would hold the log back until the end)."""
        with self._tqdm.external_write_mode(file=file):
            print(text, file=file, flush=True)

    def show(self, snap: Snapshot) -> None:
        with self._lock:
            self._show(snap)

    def _show(self, snap: Snapshot) -> None:
        bar = self._bar
        progress = snap.progress
        bar.set_description_str(f"batch {_printable(self._batch_id)}: {snap.state_label}", refresh=False)
        detail = ""
        if progress is not None and (progress.known or not progress.complete):
            detail = _printable(progress.describe()).replace("{", "{{").replace("}", "}}")
        if progress is not None and progress.fraction is not None:
            total = max(progress.tasks_total, 1)
            bar.total = total
            bar.n = total if progress.complete else min(progress.tasks_done, total)
            bar.bar_format = self._KNOWN.replace("<detail>", detail)
        else:
            bar.bar_format = self._UNKNOWN.replace("<detail>", f"{detail} " if detail else "")
        bar.refresh()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(5)
        with self._lock:
            self._bar.close()


# --url replaces a livy/sandbox profile's URL, or gives fabric/synapse/hdinsight another origin for the
# service's host (the local sandbox speaks each dialect at its real path).
_URL_FLAVOURS = ("livy", "sandbox", "fabric", "synapse", "hdinsight")


def _load_config(args: argparse.Namespace) -> JobConfig:
    """The job of --config, --profile or --url. Rules (stated in the options' help):
    --config and --profile exclude each other (a job file holds its own profile); --url replaces
    the Livy URL of a livy or sandbox profile and is refused for an HDInsight one, which is
    addressed by its fqdn."""
    if args.config and getattr(args, "profile", None):
        raise ConfigError(
            "cannot be used with --config: the job file holds its own profile; give one of them",
            field="--profile",
        )
    if args.config:
        cfg = JobConfig.load(args.config)
    elif getattr(args, "profile", None):
        from hdiaks_widgets import profiles

        cfg = JobConfig(profile=profiles.get_profile(args.profile))
    elif args.url:
        cfg = JobConfig(profile=ClusterProfile(name="cli", flavour="livy", url=args.url))
    else:
        raise ConfigError("give --config job.json, --profile NAME or --url http://host:8998", field="--config")
    if args.url:
        if cfg.profile.flavour not in _URL_FLAVOURS:
            source = "--config" if args.config else "--profile"
            raise ConfigError(
                f"cannot override the {cfg.profile.flavour} profile of {source}, which is addressed by "
                "profile.fqdn; --url works with a livy, sandbox, fabric, synapse or hdinsight profile, or alone",
                field="--url",
            )
        cfg = cfg.replace(profile=replace(cfg.profile, url=args.url))
    verify = [p for p in cfg.profile.problems() if p.field == "profile.verify"]
    if verify:
        raise ConfigError(verify)
    return cfg


def _client(args: argparse.Namespace) -> LivyClient:
    return _connect(args)(_load_config(args).profile)


def _connect(args: argparse.Namespace) -> Callable[[ClusterProfile], LivyClient]:
    """How a profile becomes a client (``main(connect=...)``; default ``LivyClient.from_profile``)."""
    connect: Callable[[ClusterProfile], LivyClient] | None = getattr(args, "connect", None)
    return connect if connect is not None else LivyClient.from_profile


def _spec_with_overrides(spec: BatchSpec, args: argparse.Namespace) -> BatchSpec:
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.file is not None:
        changes["file"] = args.file
    if args.class_name is not None:
        changes["class_name"] = args.class_name
    if args.arg is not None:
        changes["args"] = tuple(args.arg)
    return replace(spec, **changes) if changes else spec


def _follow(
    run: BatchRun, *, emit: Callable[[str], None], poll: float, on_state: Callable[[Snapshot], None] | None = None,
    line: _ProgressLine | None = None,
) -> Snapshot:
    """Print new log lines until the batch reaches a terminal state; return the last snapshot.

    The run's note is printed once, before the lines of the poll that brought it (or at the end,
    when that poll brought none). ``on_state`` hears each state the batch moves into (the first
    one seen included). Raises the run's error when watching failed (what ``follow_batch`` does).
    ``line``: the terminal's progress line, redrawn after each poll (state lines then stay in it).
    """
    notes = _Notes(line)
    last: list[BatchState | None] = [None]

    def on_update(snap: Snapshot) -> None:
        notes.show(snap)
        if line is None and on_state is not None and snap.state is not None and snap.state != last[0]:
            last[0] = snap.state
            on_state(snap)
        for text in snap.new_lines:
            emit(text)
        if line is not None:
            line.show(snap)

    try:
        snap = run.wait(on_update=on_update, interval=poll, max_interval=max(poll, 5.0))
    finally:
        notes.show(run.snapshot)
        if line is not None:
            line.close()
    if snap.batch is not None and (snap.batch.state.is_terminal or snap.purged):
        return snap
    if isinstance(snap.exception, HdiaksError):
        raise snap.exception
    raise LivyError(snap.error or f"Stopped watching batch {run.batch_id}")


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _printable(text: object) -> str:
    """Server text for one terminal line: control characters (a newline, an escape) as spaces."""
    return _CONTROL.sub(" ", str(text))


def _target_args(args: argparse.Namespace) -> str:
    """The --config/--profile/--url options of this command, quoted for a shell."""
    parts: list[str] = []
    if args.config:
        parts += ["--config", args.config]
    elif getattr(args, "profile", None):
        parts += ["--profile", args.profile]
    if args.url:
        parts += ["--url", args.url]
    return shlex.join(parts)


def _still_running(args: argparse.Namespace, run: BatchRun) -> None:
    """What to say after Ctrl-C: the batch was not killed, and the commands that follow or kill it."""
    target = _target_args(args)
    bid = shlex.quote(str(run.batch_id))
    name = f" ({_printable(run.name)})" if run.name else ""
    _err(f"interrupted: batch {run.batch_id}{name} keeps running on the server (only kill stops it)")
    _err(f"  follow it: hdiaks logs {bid} --follow {target}".rstrip())
    _err(f"  kill it:   hdiaks kill {bid} {target}".rstrip())


def _maybe_submitted(args: argparse.Namespace, name: str) -> None:
    """What to say after Ctrl-C during the submit: a POST cut off mid-flight may or may not have
    created the batch (Livy may have read it before the connection closed), and how to find out."""
    target = _target_args(args)
    quoted = shlex.quote(name)
    _err(f"interrupted while submitting: batch {_printable(name)} may or may not have been created (a request "
         "cut off mid-flight can still reach Livy); if status says not found, it was not")
    _err(f"  look for it: hdiaks status {quoted} {target}".rstrip())
    _err(f"  list them:   hdiaks list {target}".rstrip())
    _err(f"  kill it:     hdiaks kill {quoted} {target}".rstrip())


def _state_line(snap: Snapshot) -> str:
    app = f" (app {_printable(snap.app_id)})" if snap.app_id else ""
    return f"batch {snap.batch_id}: {snap.state_label}{app}"


def _closing_line(snap: Snapshot, *, followed_running: bool) -> str:
    """``batch 3 ended: success (followed for 12 s)``; a failed batch's last error lines; a batch
    that had ended before it was followed says so instead of a duration (which would be invented:
    Livy gives no start or end times)."""
    if snap.batch is not None and snap.batch.state.is_terminal:
        verb = "ended" if followed_running else "had already ended"
        line = f"batch {snap.batch_id} {verb}: {snap.state_label}"
        if followed_running:
            line += f" (followed for {snap.elapsed:.0f} s)"
        if not snap.succeeded and snap.state is not BatchState.KILLED:
            tail = failure_lines(job_output(snap.lines))
            if tail:
                line += " - last error lines: " + " | ".join(t.strip() for t in tail)
        return _printable(line)
    return _printable(snap.error or f"batch {snap.batch_id}: {snap.state_label}")


def _line_text(args: argparse.Namespace) -> Callable[[str], str]:
    """A followed line as printed: as text, or with ``--json`` one JSON object (text and source)."""
    if args.json:
        return lambda line: json.dumps(_line_dict(line))
    return lambda line: line


def _emit_line(args: argparse.Namespace, line: _ProgressLine | None = None) -> Callable[[str], None]:
    """Print followed lines (above the terminal's progress line when there is one)."""
    text = _line_text(args)
    if line is not None:
        return lambda item: line.write(text(item), sys.stdout)
    return lambda item: print(text(item), flush=True)


# -- subcommands --------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    spec = _spec_with_overrides(cfg.spec, args)
    cfg = cfg.replace(spec=spec).validate()
    # An unnamed spec is named here, in the client's own form, so that after a Ctrl-C during the
    # POST we can say which name to look for; like the client's own, it is not looked up first.
    generated = cfg.spec.name is None
    spec = replace(cfg.batch_spec, name=wire.unique_batch_name()) if generated else cfg.batch_spec
    with _connect(args)(cfg.profile) as client:
        try:
            run = BatchRun.submit(client, spec, name_checked=generated)
        except KeyboardInterrupt:
            _maybe_submitted(args, str(spec.name))
            return EXIT_INTERRUPTED
        try:
            return _submitted(args, run)
        except KeyboardInterrupt:  # from here on the batch exists: say how to reach it
            _still_running(args, run)
            return EXIT_INTERRUPTED


def _submitted(args: argparse.Namespace, run: BatchRun) -> int:
    batch = run.first_batch
    assert batch is not None  # submit always has the POST's answer
    if not args.wait:
        if args.json:
            _print_json(_batch_dict(batch))
        else:
            print(f"submitted batch {batch.id} ({batch.name}): {batch.state.value}")
        return 0
    # The narration goes to stderr: stdout stays the log and the final line (or the JSON).
    _err(f"submitted batch {batch.id} ({_printable(batch.name)})")
    line = _ProgressLine(str(batch.id)) if _ProgressLine.wanted() else None
    if line is not None:
        run.progress_reader = ProgressReader()
        emit = (lambda text: None) if args.json else (lambda text: line.write(text, sys.stdout))
    else:
        emit = (lambda text: None) if args.json else (lambda text: print(text, flush=True))

    def on_state(snap: Snapshot) -> None:
        if snap.state is not None and not snap.state.is_terminal:
            _err(_state_line(snap))

    snap = _follow(run, emit=emit, poll=args.poll, on_state=on_state, line=line)
    final = snap.batch
    assert final is not None  # _follow returns only a snapshot with a batch
    if args.json:
        _print_json(_batch_dict(final))
    else:
        print(f"batch {final.id} ({final.name}): {final.state.value}")
    if final.state is not BatchState.SUCCESS:
        _err(_closing_line(snap, followed_running=True))
    return EXIT_OK if final.state is BatchState.SUCCESS else EXIT_JOB_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        batch = client.get_batch(args.batch)
    if args.json:
        _print_json(_batch_dict(batch))
    else:
        print(f"batch {batch.id} ({batch.name}): {batch.state.value}"
              + (f"  app {batch.app_id}" if batch.app_id else ""))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.follow:
            # --from N pages Livy's view by offset from N (exact only on an append-only log).
            reader = None if args.start is None else OffsetLogReader(start=args.start)
            run = BatchRun.attach(client, args.batch, log_reader=reader)
            first = run.first_batch
            running = first is not None and not first.state.is_terminal
            bar = _ProgressLine(run.batch_id) if running and _ProgressLine.wanted() else None
            if bar is not None:
                run.progress_reader = ProgressReader()
            try:
                snap = _follow(run, emit=_emit_line(args, bar), poll=args.poll, line=bar)
            except KeyboardInterrupt:
                _err(f"stopped following batch {run.batch_id}; it keeps running "
                     f"(hdiaks kill {shlex.quote(str(run.batch_id))} {_target_args(args)} stops it)")
                return EXIT_INTERRUPTED
            _err(_closing_line(snap, followed_running=running))
            return EXIT_OK if snap.succeeded else EXIT_JOB_FAILED
        if args.start is None and args.size is None:
            return _read_log_once(client, args)
        if args.start is None and args.size is not None:
            page = client.get_log(args.batch, size=args.size)
            pages: list[LogPage] = [page]
        else:
            pages = list(client.iter_log(args.batch, start=args.start or 0))
    lines = [line for page in pages for line in page.lines]
    if args.json:
        _print_json({"id": pages[0].id if pages else args.batch,
                     "from": pages[0].start if pages else 0,
                     "total": pages[-1].total if pages else 0, "log": lines})
    else:
        for line in lines:
            print(line)
    return 0


def _read_log_once(client: LivyClient, args: argparse.Namespace) -> int:
    """The whole log as the run core reads it, in one read: lines with their sources, the note."""
    # One read: a driver log that fails once is reported at once, not after three polls.
    run = BatchRun.attach(client, args.batch, log_reader=LivyLogReader(max_driver_failures=1))
    snap = run.poll()
    if snap.exception is not None:  # the read failed (a poll reports, never raises)
        if isinstance(snap.exception, HdiaksError):
            raise snap.exception
        raise HdiaksError(snap.error or f"cannot read the log of batch {run.batch_id}")
    if args.json:
        _print_json({"id": run.batch_id, "state": snap.state_label, "log": [str(ln) for ln in snap.lines],
                     "lines": [_line_dict(ln) for ln in snap.lines], "gaps": snap.log_gaps,
                     "note": snap.log_note})
    else:
        for line in snap.lines:
            print(line)
    _Notes().show(snap)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    """Kill a running batch. A finished one is left as it is (its record and log stay until
    Livy's retention time) and the command says so, exit 0.

    A batch can finish between the check and the DELETE; Apache Livy then deletes it all the same
    and forgets it, so the command cannot tell that from a kill and reports it killed. It reads
    the batch again after the DELETE: a server that keeps the record (Fabric, Synapse) shows the
    real end, and a batch that had finished first (not ``killed``) is reported as such."""
    after: Batch | None = None
    gone = False
    with _client(args) as client:
        batch = client.get_batch(args.batch)
        if not batch.state.is_terminal:
            try:
                client.kill_batch(batch.id)
            except BatchNotFound:  # purged between the check and the DELETE
                gone = True
            else:
                after = _read_again(client, batch.id)
    finished_first = after is not None and after.state.is_terminal and after.state is not BatchState.KILLED
    killed = not batch.state.is_terminal and not gone and not finished_first
    label = f"batch {batch.id} ({_printable(batch.name)})"
    if args.json:
        _print_json({"id": batch.id, "killed": killed, "state": batch.state.value,
                     "state_after": None if after is None else after.state.value})
    elif killed:
        print(f"killed {label}")
    elif gone:
        print(f"{label} was {batch.state.value} a moment ago but was gone when the kill reached it "
              "(deleted or purged in between); nothing to kill")
    elif after is not None and finished_first:
        print(f"{label} finished (state {after.state.value}) before the kill reached it; nothing was killed")
    else:
        print(f"{label} had already finished (state {batch.state.value}); nothing to kill")
    return 0


def _read_again(client: LivyClient, batch_id: int | str) -> Batch | None:
    """The batch after its DELETE, or None when the server forgot it (Apache Livy does) or could
    not be asked: the DELETE was answered, so a failure here does not fail the kill."""
    try:
        return client.get_batch(batch_id)
    except HdiaksError:
        return None


_NAME_WIDTH = 30  # display cells; a longer name is cut and ends in "…"


def _cell(text: str, width: int) -> str:
    """``text`` in exactly ``width`` terminal cells: wide characters (CJK, emoji) count two,
    control characters become spaces, a longer text is cut and ends in ``…``."""
    import wcwidth  # display width of wide characters and grapheme clusters

    text = _printable(text)
    if wcwidth.width(text) > width:
        text = wcwidth.clip(text, 0, width - 1) + "\u2026"
    return text + " " * max(0, width - wcwidth.width(text))


def cmd_list(args: argparse.Namespace) -> int:
    """A header and one row per batch. Plain Livy's batch objects carry no times, so the table
    shows none (rather than a made-up age)."""
    with _client(args) as client:
        page: BatchList = client.list_batches(start=args.start, size=args.size)
    if args.json:
        _print_json({"from": page.start, "total": page.total,
                     "batches": [_batch_dict(b) for b in page.batches]})
        return 0
    print(f"{page.total} batches on the server; showing {len(page.batches)} from {page.start}")
    if not page.batches:
        return 0
    import wcwidth

    width = min(_NAME_WIDTH, max([4, *(wcwidth.width(_printable(b.name or "")) for b in page.batches)]))
    id_width = max([6, *(len(_printable(str(b.id))) for b in page.batches)])  # a Fabric UUID is 36
    print(f"{'ID':>{id_width}}  {'STATE':<13}  {_cell('NAME', width)}  APP ID")
    for b in page.batches:
        print(f"{_printable(str(b.id)):>{id_width}}  {b.state.value:<13}  {_cell(b.name or '', width)}  "
              f"{_printable(b.app_id or '')}".rstrip())
    return 0


_EXPORT_FLAGS = {"dag_id": "--dag-id", "out_dir": "--out", "schedule": "--schedule"}


def cmd_export_dag(args: argparse.Namespace) -> int:
    from hdiaks_widgets.dag_export import export_dag_files
    from hdiaks_widgets.dag_export.render import ExportOptionError, schedule_problem

    problem = schedule_problem(args.schedule)
    if problem is not None:
        raise ConfigError(problem, field="--schedule")
    cfg = _load_config(args)
    try:
        paths = export_dag_files(cfg, Path(args.out), dag_id=args.dag_id, schedule=args.schedule,
                                 embed=args.embed)
    except ExportOptionError as exc:  # name the options as the user typed them
        raise ConfigError([ConfigProblem(_EXPORT_FLAGS.get(p.field, p.field), p.message)
                           for p in exc.problems]) from exc
    if args.json:
        _print_json({"files": [str(p) for p in paths]})
    else:
        for p in paths:
            print(f"wrote {p}")
    return 0


_INIT_OPTIONS = {"profile.url": "--url", "profile.fqdn": "--fqdn", "profile.workspace_id": "--workspace",
                 "profile.workspace": "--workspace", "profile.lakehouse_id": "--lakehouse", "profile.pool": "--pool"}


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter job file (and with --profile, the same profile into the profile file).
    Everything is checked before anything is written."""
    from hdiaks_widgets import profiles
    from hdiaks_widgets.starter import starter

    made = starter(args.flavour, url=args.url, fqdn=args.fqdn, name=args.profile, out=args.out,
                   workspace=args.workspace, lakehouse=args.lakehouse, pool=args.pool)
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"{args.out} is a folder; give a file name such as job.json", field="--out")
    if out.exists() and not args.force:
        raise ConfigError(f"{args.out} already exists; give --force to replace it", field="--out")
    profile_file: Path | None = None
    if args.profile:
        profile_file = profiles.profiles_path()
        unfilled = [f for f in made.placeholders if f.startswith("profile.")]
        if unfilled:
            options = sorted({_INIT_OPTIONS.get(f, f) for f in unfilled})
            raise ConfigError(
                f"profile {args.profile!r} cannot be saved with {', '.join(unfilled)} empty; give "
                f"{' and '.join(options)}, "
                "or leave out --profile and fill in the job file",
                field="--profile",
            )
        if args.profile in profiles.load_profiles(profile_file) and not args.force:
            raise ConfigError(
                f"profile {args.profile!r} already exists in {str(profile_file)!r}; give --force to replace it",
                field="--profile",
            )
    made.save(out)
    if profile_file is not None:
        profiles.save_profile(made.config.profile, profile_file)
    run = f"hdiaks submit --config {shlex.quote(args.out)} --wait"
    if args.json:
        _print_json({"file": str(out), "flavour": args.flavour, "fill_in": list(made.placeholders),
                     "profile": args.profile, "profile_file": None if profile_file is None else str(profile_file),
                     "next": run})
        return 0
    print(f"wrote {out} ({args.flavour})")
    if profile_file is not None:
        print(f"saved profile {args.profile!r} to {profile_file} (use it as --profile {shlex.quote(args.profile)})")
    if made.placeholders:
        print(f"fill in {', '.join(made.placeholders)} (marked FILL IN), then run: {run}")
    else:
        print(f"run it: {run}")
    return 0


def _sandbox_banner(info: dict[str, Any]) -> str:
    """What a ready sandbox serves and a command that runs one of its examples."""
    from hdiaks_widgets.sandbox.apps import FAILING_JOB_CLASS, LOG_STORM_CLASS

    examples = info.get("examples") or {}
    uris: dict[str, str] = dict(examples.get("uris") or {})
    classes = [examples.get("spark_pi_class"), examples.get("word_count_class"), FAILING_JOB_CLASS, LOG_STORM_CLASS]
    lines = ["examples the sandbox serves:"]
    width = max((len(k) for k in uris), default=0)
    for key, uri in uris.items():
        lines.append(f"  {key:<{width}}  {uri}")
        if key == "jar":
            lines.append(f"  {'':<{width}}  classes: {', '.join(str(c) for c in classes if c)}")
    url = shlex.quote(str(info.get("url", "")))
    lines += ["run SparkPi on it (init writes job.json; later runs need only the submit):",
              f"  hdiaks init --flavour sandbox --url {url} && hdiaks submit --config job.json --wait"]
    return "\n".join(lines)


def cmd_sandbox(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from hdiaks_widgets.sandbox.service import main as sandbox_main

    argv = ["--host", args.host, "--port", str(args.port), "--max-running", str(args.max_running)]
    if args.root:
        argv += ["--root", args.root]
    if args.csrf:
        argv.append("--csrf")
    if args.auth:
        argv.append("--auth")
    if args.cluster:
        argv += ["--cluster", str(args.cluster)]
    if args.log_shape:
        argv += ["--log-shape", args.log_shape]
    argv += ["--cache-log-size", str(args.cache_log_size)]
    # The sandbox writes its ready file once it answers; a fresh folder, so it is never a stale one.
    folder = Path(tempfile.mkdtemp(prefix="hdiaks-sandbox-"))
    ready = folder / "ready.json"
    argv += ["--ready-file", str(ready)]
    done = threading.Event()

    def announce() -> None:
        while not done.wait(0.2):
            try:
                info = json.loads(ready.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not written yet
            print(_sandbox_banner(info), flush=True)
            return

    thread = threading.Thread(target=announce, name="hdiaks-sandbox-ready", daemon=True)
    thread.start()
    try:
        return sandbox_main(argv)
    finally:
        done.set()
        thread.join(5)
        shutil.rmtree(folder, ignore_errors=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from hdiaks_widgets.demo import run_demo

    return run_demo(root=args.root, out=args.out, json_output=args.json)


def cmd_lab(args: argparse.Namespace) -> int:
    from hdiaks_widgets.demo import run_lab

    return run_lab(root=args.root, port=args.port)


# -- parser -------------------------------------------------------------------------------

DESCRIPTION = """\
Submit Spark batch jobs to an Apache Livy server (HDInsight on AKS, HDInsight, plain Livy or
the local sandbox), follow their state and driver log, list and kill them, and export a job
as an Airflow DAG."""

EPILOG = f"""\
exit codes:
  {EXIT_OK}    ok
  {EXIT_LIVY}    Livy, network or sign-in failure (the one-line error says which)
  {EXIT_USAGE}    bad input: a wrong option, or an invalid job configuration or profile
  {EXIT_JOB_FAILED}    the job ended in a state other than success (submit --wait, logs --follow)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); a submitted batch keeps running, and the message says how to reach it
  {EXIT_CLOSED_PIPE}  the output was closed early (e.g. '| head'); nothing more is printed and a batch
       being followed keeps running

profiles: --profile NAME reads the profile file, $HDIAKS_PROFILES if set, else
~/.config/hdiaks/profiles.json.

Run 'hdiaks COMMAND --help' for the options of one command."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _port(text: str) -> int:
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _livy_int(check: Callable[[str], int]) -> Callable[[str], int]:
    """``check`` and at most ``LIVY_INT_MAX``: a number Livy reads as a 32-bit Int (from, size)."""

    def parse(text: str) -> int:
        value = check(text)
        if value > LIVY_INT_MAX:
            raise argparse.ArgumentTypeError(
                f"must be {LIVY_INT_MAX} or less (Livy reads it as a 32-bit number), got {text}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, e.g. 1 or 0.5, got {text}")
    return value


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="job configuration JSON (profile + spec); not with --profile")
    p.add_argument("--profile", help="a named cluster profile from the user profile file; not with --config")
    p.add_argument("--url", help="Livy URL; alone, a plain Livy server; with --config/--profile it replaces "
                                 "the url of a livy or sandbox profile, or is another origin for a fabric, "
                                 "synapse or hdinsight profile (e.g. the sandbox's); refused for HDInsight on AKS")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _starter_flavours() -> tuple[str, ...]:
    from hdiaks_widgets.starter import FLAVOURS

    return FLAVOURS


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hdiaks", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (each has its own --help)")

    p = sub.add_parser("init", help="write a starter job.json (commented) to fill in and submit",
                       description="Write a short starter job file: JSON with full-line // comments. The sandbox "
                                   "starter runs as written (SparkPi); the others have empty fields marked "
                                   "FILL IN, which submit refuses by name until they are filled. No job name "
                                   "is set, so each submit gets a unique one.")
    p.add_argument("--flavour", choices=_starter_flavours(), default="sandbox",
                   help="where the job will run (default sandbox)")
    p.add_argument("--url", help="the Livy URL (livy, sandbox; default for the sandbox http://127.0.0.1:8998); "
                                 "fabric, synapse: the sandbox's origin instead of the service's host")
    p.add_argument("--fqdn", help="the cluster's host name (hdinsight-aks, hdinsight)")
    p.add_argument("--workspace", help="fabric: the workspace id (a GUID); synapse: the workspace name")
    p.add_argument("--lakehouse", help="fabric: the lakehouse id (a GUID)")
    p.add_argument("--pool", help="synapse: the Spark pool name")
    p.add_argument("--profile", metavar="NAME",
                   help="also save the profile under this name in the profile file ($HDIAKS_PROFILES)")
    p.add_argument("--out", default="job.json", help="the file to write (default job.json)")
    p.add_argument("--force", action="store_true", help="replace an existing file or profile")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("submit", help="submit the configured batch job")
    _add_target(p)
    p.add_argument("--name", help="job name (overrides the config)")
    p.add_argument("--file", help="application file (overrides the config)")
    p.add_argument("--class-name", help="main class (overrides the config)")
    p.add_argument("--arg", action="append", help="an application argument (repeatable)")
    p.add_argument("--wait", action="store_true",
                   help="follow the log until the job ends (states on stderr; Ctrl-C stops watching, not the job)")
    p.add_argument("--poll", type=_seconds, default=1.0, help="seconds between polls (with --wait)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="state of one batch")
    _add_target(p)
    p.add_argument("batch", help="batch id or name")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("logs", help="driver log of one batch",
                       description="Print a batch's log: Livy's view aligned by content and the driver "
                                   "log when it can be read; a note on stderr says when lines were "
                                   "dropped or the driver log could not be read. --json: each line "
                                   "with its source (livy stdout, driver stderr, ...). --from/--size "
                                   "print a raw page of Livy's view by offset instead.")
    _add_target(p)
    p.add_argument("batch", help="batch id or name")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing until the job ends (--json: one JSON object per line)")
    p.add_argument("--from", dest="start", type=_livy_int(_non_negative),
                   help="a raw page of Livy's view from this offset (default: the whole log, read by content)")
    p.add_argument("--size", type=_livy_int(_non_negative), help="with no --from: the last N lines of Livy's raw view")
    p.add_argument("--poll", type=_seconds, default=1.0, help="seconds between polls (with --follow)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("kill", help="kill a running batch (a finished one is left as it is)",
                       description="Kill a running batch. A batch that has already finished is left as it "
                                   "is (Livy keeps its record and log until its retention time); the command "
                                   "says it had already finished, with its state, and exits 0. A batch that "
                                   "finishes in the moment between the check and the DELETE is deleted all the "
                                   "same: Apache Livy then forgets it, so it is reported killed; a server that "
                                   "keeps the record after a DELETE shows the real end, and the command says the "
                                   "batch finished before the kill reached it. --json: state is the state before "
                                   "the kill, state_after the one read after it (null when none was read).")
    _add_target(p)
    p.add_argument("batch", help="batch id or name")
    p.set_defaults(func=cmd_kill)

    p = sub.add_parser("list", help="batches on the server")
    _add_target(p)
    p.add_argument("--from", dest="start", type=_livy_int(_non_negative), default=0,
                   help="index of the first batch (default 0)")
    p.add_argument("--size", type=_livy_int(_positive), default=100, help="how many batches to show (default 100)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("export-dag", help="write the job as an Airflow DAG")
    _add_target(p)
    p.add_argument("--out", default=".", help="folder for the DAG and its setup files")
    p.add_argument("--dag-id", required=True, help="the DAG's id (also the file name)")
    p.add_argument("--schedule", default=None, help="a five-field cron expression like '30 2 * * *' or a preset: "
                        "@once, @continuous, @hourly, @daily, @weekly, @monthly, @quarterly, @yearly "
                        "(default: none)")
    p.add_argument("--embed", action="store_true",
                   help="self-contained DAG for Airflow hosts where nothing can be installed: inlines the "
                        "operator's hdiaks-widgets modules (the task then does not defer)")
    p.set_defaults(func=cmd_export_dag)

    p = sub.add_parser("sandbox", help="run the local Livy sandbox (Ctrl-C stops it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8998, help="port to listen on (default 8998)")
    p.add_argument("--root", help="sandbox folder (default .sandbox)")
    p.add_argument("--max-running", type=_positive, default=1, help="Spark jobs run at once (default 1)")
    p.add_argument("--csrf", action="store_true", help="require X-Requested-By like Livy's CSRF filter")
    p.add_argument("--auth", action="store_true", help="also run identity + vault; Livy requires tokens")
    p.add_argument("--cluster", type=_positive, default=0, metavar="N",
                   help="run jobs on a Spark standalone cluster of N workers (jars in cluster deploy mode) "
                        "with the Spark History Server")
    p.add_argument("--log-shape", choices=LOG_SHAPES, default=None,
                   help="how /log looks: process (Livy in local mode; default), yarn (default with --cluster: "
                        "the driver log behind driverLogUrl), kubernetes (a rotating driver-pod window), "
                        "append (unbounded; tests only, no real Livy serves it)")
    p.add_argument("--cache-log-size", type=_positive, default=DEFAULT_CACHE_LOG_SIZE,
                   help="lines Livy keeps of each spark-submit stream (livy.cache-log.size, default 200)")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("demo", help="end-to-end demo on the sandbox with real Spark")
    p.add_argument("--root", default=".sandbox", help="sandbox folder (default .sandbox)")
    p.add_argument("--out", default="demo-output", help="folder for the exported DAG")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("lab", help="JupyterLab on the quickstart notebook against the sandbox")
    p.add_argument("--root", default=".sandbox", help="sandbox folder (default .sandbox)")
    p.add_argument("--port", type=_port, default=8888, help="JupyterLab's port (default 8888)")
    p.set_defaults(func=cmd_lab)
    return parser


def main(
    argv: Sequence[str] | None = None, *, connect: Callable[[ClusterProfile], LivyClient] | None = None
) -> int:
    """Run ``hdiaks``; ``connect`` turns the chosen profile into a client (default
    ``LivyClient.from_profile``; tests pass one on an in-memory transport)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, a usage error: return the code, do not exit
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.connect = connect
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_CLOSED_PIPE
    except HdiaksError as exc:
        if isinstance(exc, ConfigError) and exc.problems:
            # Each problem on the one line, its line breaks escaped (a key or value may hold one).
            message = "; ".join(_one_line(str(p)) for p in exc.problems)
        else:
            first = str(exc).strip().splitlines()
            message = first[0] if first else type(exc).__name__
        print(f"hdiaks: error: {message}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_LIVY
    except KeyboardInterrupt:
        print("hdiaks: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _quiet_stdout() -> None:
    """After the reader of stdout went away (``| head``): point stdout at /dev/null, so the
    interpreter's flush at exit has nowhere to fail (the recipe of Python's ``signal`` docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (a test's capture): nothing left to flush
        pass


def _one_line(text: str) -> str:
    """Line breaks and other control characters escaped (``a\\nb``), so a message is one line."""
    return _LINE_BREAKING.sub(lambda m: repr(m.group())[1:-1], text)


if __name__ == "__main__":  # pragma: no cover - `python -m hdiaks_widgets.cli`
    sys.exit(main())
