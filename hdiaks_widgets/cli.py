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
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from hdiaks_widgets import __version__
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import ConfigError, HdiaksError
from hdiaks_widgets.livy import LivyClient
from hdiaks_widgets.models import Batch, BatchList, BatchState, LogPage
from hdiaks_widgets.run import BatchRun, LivyLogReader, OffsetLogReader, Snapshot
from hdiaks_widgets.sandbox.logbuf import DEFAULT_CACHE_LOG_SIZE, LOG_SHAPES  # stdlib only, no server

__all__ = ["main"]

# Exit codes: what `main` and the subcommands return (kept in one place for --help and tests).
EXIT_OK = 0
EXIT_LIVY = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3
EXIT_INTERRUPTED = 130


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


class _Notes:
    """Prints each note of a run once, to stderr: ``note: <sentence>``. The note names URLs the
    server gave, so control characters (a newline faking another line, a terminal escape) are
    replaced."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    def show(self, snap: Snapshot) -> None:
        note = snap.log_note
        if note and note not in self.shown:
            self.shown.append(note)
            print(f"note: {_CONTROL.sub(' ', note)}", file=sys.stderr, flush=True)


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
        if cfg.profile.flavour not in ("livy", "sandbox"):
            source = "--config" if args.config else "--profile"
            raise ConfigError(
                f"cannot override the {cfg.profile.flavour} profile of {source}, which is addressed by "
                "profile.fqdn; --url works with a livy or sandbox profile, or alone",
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


def _follow(run: BatchRun, *, emit: Callable[[str], None], poll: float) -> Batch:
    """Print new log lines until the batch reaches a terminal state; return the final batch.

    The run's note is printed once, before the lines of the poll that brought it (or at the end,
    when that poll brought none).
    """
    from hdiaks_widgets.monitor import follow_batch

    notes = _Notes()

    def on_lines(lines: Sequence[str]) -> None:
        notes.show(run.snapshot)  # follow_batch calls this from the wait, right after the poll
        for line in lines:
            emit(line)

    try:
        return follow_batch(run.client, run.batch_id, run=run, on_lines=on_lines, poll_interval=poll)
    finally:
        notes.show(run.snapshot)


def _emit_line(args: argparse.Namespace) -> Callable[[str], None]:
    """Followed lines: as text, or with ``--json`` one JSON object per line (text and source)."""
    if args.json:
        return lambda line: print(json.dumps(_line_dict(line)), flush=True)
    return lambda line: print(line, flush=True)


# -- subcommands --------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    spec = _spec_with_overrides(cfg.spec, args)
    cfg = cfg.replace(spec=spec).validate()
    with _connect(args)(cfg.profile) as client:
        run = BatchRun.submit(client, cfg.spec)
        batch = run.first_batch
        assert batch is not None  # submit always has the POST's answer
        if not args.wait:
            if args.json:
                _print_json(_batch_dict(batch))
            else:
                print(f"submitted batch {batch.id} ({batch.name}): {batch.state.value}")
            return 0
        emit = (lambda line: None) if args.json else print
        final = _follow(run, emit=emit, poll=args.poll)
        if args.json:
            _print_json(_batch_dict(final))
        else:
            print(f"batch {final.id} ({final.name}): {final.state.value}")
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
            final = _follow(run, emit=_emit_line(args), poll=args.poll)
            return EXIT_OK if final.state is BatchState.SUCCESS else EXIT_JOB_FAILED
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
    with _client(args) as client:
        client.kill_batch(args.batch)
    if args.json:
        _print_json({"id": args.batch, "killed": True})
    else:
        print(f"killed batch {args.batch}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page: BatchList = client.list_batches(start=args.start, size=args.size)
    if args.json:
        _print_json({"from": page.start, "total": page.total,
                     "batches": [_batch_dict(b) for b in page.batches]})
        return 0
    print(f"{page.total} batches on the server; showing {len(page.batches)} from {page.start}")
    for b in page.batches:
        print(f"{b.id:>6}  {b.state.value:<13} {b.name or '':<30} {b.app_id or ''}")
    return 0


def cmd_export_dag(args: argparse.Namespace) -> int:
    from hdiaks_widgets.dag_export import export_dag_files
    from hdiaks_widgets.dag_export.render import schedule_problem

    problem = schedule_problem(args.schedule)
    if problem is not None:
        raise ConfigError(problem, field="--schedule")
    cfg = _load_config(args)
    paths = export_dag_files(cfg, Path(args.out), dag_id=args.dag_id, schedule=args.schedule,
                             embed=args.embed)
    if args.json:
        _print_json({"files": [str(p) for p in paths]})
    else:
        for p in paths:
            print(f"wrote {p}")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
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
    return sandbox_main(argv)


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
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)

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
                                 "the url of a livy or sandbox profile (refused for an HDInsight one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hdiaks", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (each has its own --help)")

    p = sub.add_parser("submit", help="submit the configured batch job")
    _add_target(p)
    p.add_argument("--name", help="job name (overrides the config)")
    p.add_argument("--file", help="application file (overrides the config)")
    p.add_argument("--class-name", help="main class (overrides the config)")
    p.add_argument("--arg", action="append", help="an application argument (repeatable)")
    p.add_argument("--wait", action="store_true", help="follow the log until the job ends")
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
    p.add_argument("--from", dest="start", type=_non_negative,
                   help="a raw page of Livy's view from this offset (default: the whole log, read by content)")
    p.add_argument("--size", type=_non_negative, help="with no --from: the last N lines of Livy's raw view")
    p.add_argument("--poll", type=_seconds, default=1.0, help="seconds between polls (with --follow)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("kill", help="kill a running batch (or forget a finished one)")
    _add_target(p)
    p.add_argument("batch", help="batch id or name")
    p.set_defaults(func=cmd_kill)

    p = sub.add_parser("list", help="batches on the server")
    _add_target(p)
    p.add_argument("--from", dest="start", type=_non_negative, default=0, help="index of the first batch (default 0)")
    p.add_argument("--size", type=_positive, default=100, help="how many batches to show (default 100)")
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
        return int(args.func(args))
    except HdiaksError as exc:
        first = str(exc).strip().splitlines()
        message = first[0] if first else type(exc).__name__
        if isinstance(exc, ConfigError) and len(exc.problems) > 1:
            message = "; ".join(str(p) for p in exc.problems)
        print(f"hdiaks: error: {message}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_LIVY
    except KeyboardInterrupt:
        print("hdiaks: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover - `python -m hdiaks_widgets.cli`
    sys.exit(main())
