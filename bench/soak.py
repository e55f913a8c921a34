"""The reliability campaign (issue 13, item 4): ``make soak`` runs it at full size.

Run with ``.venv/bin/python bench/soak.py`` (``--short`` for the size ``make test`` uses,
``--only NAME`` to run some scenarios, ``--json PATH`` / ``--plot PATH`` for the results and the
figure). Every scenario is a bounded loop against the real sandbox on loopback (see
``bench/soak_scenarios.py``); it prints one Markdown row per scenario (attempted, survived,
lost, what happened) and the machine it ran on. Measurements, not tests: nothing here is timed
against a goal, but the exit status is 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import cpu_model  # noqa: E402
from soak_scenarios import (  # noqa: E402 - the scenarios sit beside this file
    CANARY_PASSWORD,
    CANARY_SECRET,
    Outcome,
    Sandbox,
    hostile_inputs,
    restart_mid_watch,
    scan_for_canaries,
    submits_under_faults,
    tokens_mid_watch,
    watched_under_faults,
)

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig  # noqa: E402

SCENARIOS = ("submits", "watched", "tokens", "restart", "hostile", "canaries")
FULL = {"submits": 200, "watched": 100, "tokens": 50, "restart": 20}
SHORT = {"submits": 12, "watched": 3, "tokens": 6, "restart": 3}


def machine() -> str:
    cpus = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f"{mem:.0f} GiB"
    except (ValueError, OSError):
        memory = "? GiB"
    return (f"{platform.system()} {platform.machine()}, {cpus} cores ({cpu_model()}), {memory}, "
            f"Python {platform.python_version()}")  # fmt: skip


def row(o: Outcome) -> str:
    details = "; ".join(f"{k} {v}" for k, v in o.details.items() if not isinstance(v, dict) or v)
    return f"| {o.scenario} | {o.attempted} | {o.survived} | {o.lost} | {o.seconds:.0f} | {details} |"


def plot(outcomes: list[Outcome], path: Path, title: str) -> None:
    """Left: attempted / survived / lost per scenario. Right: the faults the sandbox injected in
    the two fault scenarios, by kind (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, faults) = plt.subplots(1, 2, figsize=(13, 4.6), dpi=110, gridspec_kw={"width_ratios": [3, 2]})
    short = {
        "submits": "submits\nunder faults",
        "watched": "watched\nunder faults",
        "hostile": "hostile\ninputs",
        "token": "token expiry,\nrevocation",
        "sandbox": "restart,\nids reused",
        "canary": "canary\nsecrets",
    }
    names = [short.get(o.scenario.split()[0], o.scenario) for o in outcomes]
    x = range(len(outcomes))
    width = 0.27
    bars = [
        ("attempted", [o.attempted for o in outcomes], "#9aa5b1", -width),
        ("survived", [o.survived for o in outcomes], "#2f855a", 0.0),
        ("lost", [o.lost for o in outcomes], "#c53030", width),
    ]
    for label, values, colour, shift in bars:
        drawn = ax.bar([i + shift for i in x], values, width, label=label, color=colour)
        ax.bar_label(drawn, fontsize=7, padding=1)
    ax.set_xticks(list(x), names, fontsize=7)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylabel("count (symlog scale)")
    ax.set_title("attempted / survived / lost", fontsize=10)
    ax.set_ylim(0, max([o.attempted for o in outcomes] + [10]) * 6)  # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    rows: list[tuple[str, int]] = []
    for o in outcomes:
        fired = o.details.get("faults_fired") or {}
        scenario = o.scenario.split(" under")[0]
        rows += [(f"{scenario}: {kind}", int(count)) for kind, count in sorted(fired.items())]
    if rows:
        labels, counts = zip(*rows, strict=True)
        drawn = faults.barh(range(len(rows)), counts, color="#dd6b20")
        faults.bar_label(drawn, fontsize=7, padding=2)
        faults.set_yticks(range(len(rows)), labels, fontsize=7)
        faults.invert_yaxis()
    faults.set_xlabel("faults injected by the sandbox")
    faults.set_title("what the client was hit with", fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def data_size(args: argparse.Namespace) -> str:
    return "short size" if args.short else "full size"


def _outcome(data: dict[str, Any]) -> Outcome:
    return Outcome(data["scenario"], data["attempted"], data["survived"], data["lost"], data["details"],
                   data["problems"], data["seconds"])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the small size make test uses")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)")
    parser.add_argument("--work", type=Path, default=None, help="folder for sandbox roots and files (a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the outcomes as JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="write the figure (PNG) here")
    parser.add_argument("--replot", type=Path, default=None, help="only draw --plot from this --json file")
    args = parser.parse_args(argv)
    if args.replot is not None:
        saved = json.loads(args.replot.read_text(encoding="utf-8"))
        again = [_outcome(o) for o in saved["outcomes"]]
        lost = sum(o.lost for o in again)
        plot(again, args.plot or args.replot.with_suffix(".png"),
             f"hdiaks-widgets reliability campaign ({saved['size']} size, {saved['when']}): "
             + ("nothing lost" if not lost else f"{lost} lost"))  # fmt: skip
        return 0
    size = SHORT if args.short else FULL
    chosen = args.only or list(SCENARIOS)
    work = args.work or Path(tempfile.mkdtemp(prefix="hdiaks-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / "campaign.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# reliability campaign, {'short' if args.short else 'full'} size, {when}")
    print(f"machine: {machine()}; work folder {work}")
    print("\n| scenario | attempted | survived | lost | seconds | what happened |\n|---|---|---|---|---|---|")
    outcomes: list[Outcome] = []
    texts: list[str] = []
    canaries = {"service principal secret": CANARY_SECRET, "password in a URL": CANARY_PASSWORD}

    def report(o: Outcome) -> None:
        outcomes.append(o)
        texts.extend(o.problems)
        print(row(o), flush=True)

    root = work / "sandbox"
    if {"submits", "watched", "hostile"} & set(chosen):
        # One sandbox keeps every log line (cache_log_size above any batch's output), so what it
        # served is its final view; two Spark jobs at once on the 2-core machine.
        sb = Sandbox.start(root, max_running=2, cache_log_size=20000)
        try:
            if "submits" in chosen:
                report(submits_under_faults(sb, n=size["submits"]))
            if "watched" in chosen:
                report(watched_under_faults(sb, n=size["watched"]))
            if "hostile" in chosen:
                outcome, messages = hostile_inputs(sb, work / "inputs")
                texts.extend(messages)
                report(outcome)
        finally:
            sb.stop()
    # The later sandboxes reuse the first one's root (its examples are built once).
    if "tokens" in chosen:
        report(
            tokens_mid_watch(
                root, n=size["tokens"], notebook=work / "notebooks" / "soak_tokens.ipynb", canaries=canaries
            )
        )
    if "restart" in chosen:
        report(restart_mid_watch(root, n=size["restart"]))
    if "canaries" in chosen:
        logging.shutdown()  # flush the campaign log before it is scanned
        cfg = JobConfig(
            profile=ClusterProfile(name="soak-canary", flavour="hdinsight-aks", fqdn="c.p.1.eastus.hdinsightaks.net",
                                   auth="service-principal", tenant_id="soak-tenant", client_id="soak-app"),
            spec=BatchSpec(file="abfss://jobs@acct1.dfs.core.windows.net/app.py", name="soak-canary"),
        )  # fmt: skip
        report(scan_for_canaries(canaries, folders=[work], texts=texts, dag_dir=work / "dags", cfg_for_dag=cfg,
                                 exclude=[work / "inputs"]))  # fmt: skip
    lost = sum(o.lost for o in outcomes)
    for o in outcomes:
        for problem in o.problems:
            print(f"- {o.scenario}: {problem}")
    if args.json is not None:
        data: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                "size": "short" if args.short else "full",
                                "outcomes": [o.to_json() for o in outcomes]}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if args.plot is not None:
        verdict = "nothing lost" if not lost else f"{lost} lost"
        plot(outcomes, args.plot, f"hdiaks-widgets reliability campaign ({data_size(args)}, {when}): {verdict}")
    print(f"\nlost in total: {lost}")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
