"""``JobConfig`` -> the source of an Apache Airflow DAG file, and back.

The DAG file is thin (STYLE.md rule 17): a docstring, imports, the job's values as constants and
one ``@dag`` with one :class:`~hdiaks_widgets.airflow.operator.SparkBatchOperator` task; the
logic lives in the package (``pip install "hdiaks-widgets[airflow]"`` on the Airflow hosts).
``embed=True`` writes a self-contained file instead that inlines the operator's modules (see
:mod:`hdiaks_widgets.dag_export.embed`); it cannot defer, because the triggerer cannot import a
class that only lives inside a DAG file.

Generated code is built, not pasted (STYLE.md rule 10): the fixed texts hold no user value;
every value enters the file only as ``repr()`` of a Python value in the constants block, and
:func:`render_dag` re-parses its own output and checks that every constant reads back equal.
"""

from __future__ import annotations

import ast
import calendar
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from hdiaks_widgets.config import JobConfig
from hdiaks_widgets.dag_export.embed import LOADER, embedded_package_name, module_sources
from hdiaks_widgets.errors import ConfigError, ConfigProblem, ExportError

__all__ = [
    "SCHEDULE_PRESETS",
    "DagStyle",
    "ExportOptionError",
    "dag_id_problem",
    "default_dag_id",
    "load_dag_config",
    "read_dag_config",
    "render_dag",
    "schedule_problem",
]

# One style: the package's SparkBatchOperator. "livy-operator" (the provider's LivyOperator) was
# removed: it submitted a second batch on every retry; asking for it is an ExportError that says so.
DagStyle = Literal["taskflow"]

# Airflow's validate_key (airflow/utils/helpers.py): KEY_REGEX ``^[\w.-]+$``, at most 250
# characters, and since Airflow 3 no ".." (path traversal). ASCII only here: the id also names
# the files, and ``\w``'s Unicode letters would be a surprise in a file name.
_DAG_ID = re.compile(r"[A-Za-z0-9_.-]+")
_DAG_ID_MAX = 250
_DAG_ID_RULE = "letters, digits, '_', '-' and '.' (Airflow's rule), at most 250, no '..', e.g. spark_pi"
_SHOWN_MAX = 40  # characters of a hostile value an error message repeats
THIN_OPERATOR_MODULE = "hdiaks_widgets.airflow.operator"

_DOC_THIN = '''\
"""Spark batch job on Apache Livy, exported by hdiaks-widgets.

Needs Apache Airflow 2.4+ or 3.x with hdiaks-widgets installed on the workers, the triggerer
and the DAG processor: pip install "hdiaks-widgets[airflow]" (requests and msal only). The task
defers while the batch runs, so it holds no worker slot.
'''

_DOC_EMBEDDED = '''\
"""Spark batch job on Apache Livy, exported by hdiaks-widgets (self-contained).

Needs only Apache Airflow 2.4+ or 3.x on Python 3.11+, requests and msal: the hdiaks-widgets
modules the task uses are embedded below, verbatim. The task does not defer (the triggerer cannot
import a class that only lives in a DAG file), so it holds a worker slot while the batch runs.
'''

_DOC_COMMON = '''
Credentials are Airflow Variables read at run time, never at parse time (api-client-id,
api-secret, tenant-id; see the setup sheet). Trigger with config to override spark_cluster_fqdn,
app_jar_path, job_name, class_name or args. A retry reattaches to its batch; clearing the task
runs the job again under a new batch name. JOB_CONFIG is the job this file was made from (fields
left out have their defaults): load it back with hdiaks_widgets.dag_export.load_dag_config(path).
"""

from __future__ import annotations
'''

_IMPORTS_THIN = '''
import datetime

from hdiaks_widgets.airflow.operator import SparkBatchOperator, trigger_params

try:  # Airflow 3
    from airflow.sdk import dag
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.decorators import dag
'''

_IMPORTS_EMBEDDED = '''
import ast
import datetime
import importlib
import importlib.abc
import importlib.util
import linecache
import sys

try:  # Airflow 3
    from airflow.sdk import dag
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.decorators import dag
'''

_CONSTANTS_TITLE = """
# --- Values from the job form (generated from repr() of each value) ---------------------------
"""

_EMBEDDED_TITLE = """
# --- hdiaks-widgets modules, verbatim (read from the installed package at export time) ---------
"""

_DAG = '''

@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params=trigger_params(JOB_CONFIG),
    tags=["hdiaks-widgets", "spark", "livy"],
    doc_md=__doc__,
)
def spark_batch():
    SparkBatchOperator(
        task_id="run_spark_batch",
        job_config=JOB_CONFIG,
        timeout=TIMEOUT_SECONDS,
        poll_interval=POLL_SECONDS,
        max_poll_errors=MAX_POLL_ERRORS,
        deferrable=DEFERRABLE,
        retries=RETRIES,
        retry_delay=datetime.timedelta(seconds=RETRY_DELAY_SECONDS),
        # A margin over the operator's own deadline, so the batch is killed by the operator.
        execution_timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS + 300),
    )


spark_batch_dag = spark_batch()
'''


def _literal(value: Any, indent: int = 0) -> str:
    """Python source for a JSON-like value, built from repr() of its scalars."""
    pad = " " * (indent + 4)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"cannot export the number {value!r}; use a finite number")
        return repr(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = "".join(f"{pad}{_literal(v, indent + 4)},\n" for v in value)
        return "[\n" + items + " " * indent + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        for key in value:
            if not isinstance(key, str):
                raise ExportError(f"cannot export a mapping key of type {type(key).__name__}")
        items = "".join(f"{pad}{k!r}: {_literal(v, indent + 4)},\n" for k, v in value.items())
        return "{\n" + items + " " * indent + "}"
    raise ExportError(f"cannot export a value of type {type(value).__name__}")


def _sources_literal(sources: Mapping[str, str]) -> str:
    """``{name: source}`` with each source as one repr() per line, implicitly concatenated, so the
    embedded modules stay readable (and diffable) in the DAG file."""
    items = []
    for name, text in sources.items():
        lines = text.splitlines(keepends=True) or [""]
        body = "".join(f"        {line!r}\n" for line in lines)
        items.append(f"    {name!r}: (\n{body}    ),\n")
    return "{\n" + "".join(items) + "}"


def _compact(cfg: JobConfig) -> dict[str, Any]:
    """``cfg.to_dict()`` without the fields that equal their defaults (``from_dict`` restores them)."""
    full, defaults = cfg.to_dict(), JobConfig().to_dict()
    out: dict[str, Any] = {}
    for key, value in full.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            out[key] = {k: v for k, v in value.items() if k not in defaults[key] or defaults[key][k] != v
                        or type(defaults[key][k]) is not type(v)}
        else:
            out[key] = value
    return out


# What Airflow's ``schedule=`` takes as text: its presets, or a five-field cron expression.
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
_CRON_FIELDS = (  # name, low, high, names (numbered from low)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_CRON_ITEM = re.compile(
    r"^(?:\*|(?P<a>[0-9]+|[A-Za-z]{3})(?:-(?P<b>[0-9]+|[A-Za-z]{3}))?)(?:/(?P<step>[0-9]+))?$"
)
SCHEDULE_EXAMPLE = "e.g. @daily or '30 2 * * *' (02:30 every day)"


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        value = int(text)
    elif text.upper() in names:
        value = names.index(text.upper()) + low
    else:
        return None
    return value if low <= value <= high else None


def schedule_problem(schedule: Any) -> str | None:
    """Why Airflow would refuse ``schedule`` (``None`` when it is fine; ``None`` means no schedule):
    one of :data:`SCHEDULE_PRESETS` or a cron expression of five fields in their ranges."""
    if schedule is None:
        return None
    if not isinstance(schedule, str):
        return f"must be text, got {type(schedule).__name__}; {SCHEDULE_EXAMPLE}"
    if schedule.startswith("@"):
        if schedule in SCHEDULE_PRESETS:
            return None
        return f"{schedule!r} is not a preset; use one of {', '.join(SCHEDULE_PRESETS)}"
    parts = schedule.split(" ")
    if len([p for p in parts if p]) != 5 or re.search(r"[^ A-Za-z0-9*/,-]", schedule):
        return f"{schedule!r} is neither a preset nor a cron expression of five fields; {SCHEDULE_EXAMPLE}"
    for text, (name, low, high, names) in zip((p for p in parts if p), _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM.match(item)
            ok = match is not None
            if match is not None and match["a"] is not None:
                a = _cron_value(match["a"], low, high, names)
                b = a if match["b"] is None else _cron_value(match["b"], low, high, names)
                ok = a is not None and b is not None and a <= b
            if match is not None and match["step"] is not None:
                ok = ok and int(match["step"]) >= 1
            if not ok:
                return (f"{schedule!r}: the {name} field {text!r} is not valid cron "
                        f"(numbers {low}-{high}, *, ranges a-b, steps /n, lists a,b); {SCHEDULE_EXAMPLE}")
    return _never_fires(schedule, [p for p in parts if p])


# The longest each month gets (February in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _cron_set(text: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    """The values a field already checked by :func:`schedule_problem` stands for."""
    values: set[int] = set()
    for item in text.split(","):
        match = _CRON_ITEM.match(item)
        if match is None:
            continue
        a = low if match["a"] is None else _cron_value(match["a"], low, high, names)
        b = high if match["a"] is None or match["step"] is not None else a  # "a/n" runs a to the top
        if match["b"] is not None:
            b = _cron_value(match["b"], low, high, names)
        if a is not None and b is not None:
            values.update(range(a, b + 1, int(match["step"] or 1)))
    return values


def _never_fires(schedule: str, fields: list[str]) -> str | None:
    """A day of the month that no month it names has (``0 0 31 2 *``, ``0 0 31 4,6 *``).

    Only when the day of week is ``*``: when both day fields are restricted, cron (and croniter,
    which Airflow uses, and which fails such a DAG with "failed to find next date") fires on
    either, so ``0 0 31 2 1`` fires on February's Mondays.
    """
    if "*" not in fields[4].split(","):
        return None
    _, _, (_, dlow, dhigh, _), (_, mlow, mhigh, mnames), _ = _CRON_FIELDS
    first_day = min(_cron_set(fields[2], dlow, dhigh, ()))
    months = sorted(_cron_set(fields[3], mlow, mhigh, mnames))
    if any(first_day <= _MONTH_DAYS[m - 1] for m in months):
        return None
    said = "; ".join(f"{calendar.month_name[m]} has at most {_MONTH_DAYS[m - 1]} days" for m in months)
    return f"{schedule!r} never fires ({said}); {SCHEDULE_EXAMPLE}"


def _check_options(
    *, dag_id: str, schedule: str | None, style: str, retries: int, max_poll_errors: int, **seconds: float
) -> None:
    problems: list[ConfigProblem] = []
    problem = dag_id_problem(dag_id)
    if problem is not None:
        problems.append(ConfigProblem("dag_id", problem))
    if schedule is not None and (
        not isinstance(schedule, str) or not schedule.strip() or re.search(r"[\x00-\x1f]", schedule)
    ):
        problems.append(ConfigProblem(
            "schedule", f"{_shown(schedule)} must be None, a cron expression or a preset like @daily"))
    if style == "livy-operator":
        problems.append(ConfigProblem("style", "'livy-operator' was removed: the provider's LivyOperator submitted "
                                      "a second batch on every retry; use the default style (embed=True for a "
                                      "self-contained file)"))
    elif style not in get_args(DagStyle):
        problems.append(ConfigProblem("style", f"{_shown(style)} must be one of {', '.join(get_args(DagStyle))}"))
    for name, count, low in (("retries", retries, 0), ("max_poll_errors", max_poll_errors, 1)):
        if isinstance(count, bool) or not isinstance(count, int) or count < low:
            problems.append(ConfigProblem(name, f"must be a whole number of {low} or more, got {_shown(count)}"))
    for name, value in seconds.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            problems.append(ConfigProblem(name, f"must be a number of seconds above 0, got {_shown(value)}"))
    if problems:
        raise ExportOptionError(problems)


class ExportOptionError(ConfigError, ExportError):
    """An export option (``dag_id``, ``schedule``, ``out_dir``, ``retries``, ...) is invalid.

    A ``ConfigError`` with one problem per option, so callers that treat an invalid input as
    the user's to fix (the CLI: exit 2, the form: a sentence per field) do; still an
    ``ExportError`` for callers that catch those.
    """


def _shown(value: Any) -> str:
    """``repr(value)``, cut to about 40 characters: a message never repeats a hostile value whole."""
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "\u2026"


def dag_id_problem(dag_id: Any) -> str | None:
    """Why Airflow would refuse ``dag_id`` (``None`` when it is fine)."""
    if not isinstance(dag_id, str):
        return f"must be text, got {type(dag_id).__name__}; use {_DAG_ID_RULE}"
    if not dag_id:
        return f"is empty; use {_DAG_ID_RULE}"
    if len(dag_id) > _DAG_ID_MAX:
        return f"is {len(dag_id)} characters; at most {_DAG_ID_MAX} ({_DAG_ID_RULE})"
    if not _DAG_ID.fullmatch(dag_id):
        return f"{_shown(dag_id)} may hold only {_DAG_ID_RULE}"
    if ".." in dag_id:
        return f"{_shown(dag_id)} must not contain '..' (Airflow 3 refuses it as path traversal); use {_DAG_ID_RULE}"
    return None


def default_dag_id(cfg: JobConfig) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", cfg.spec.name or "").strip("_")
    return base[:200] or "spark_batch_job"


def render_dag(
    cfg: JobConfig,
    *,
    dag_id: str | None = None,
    schedule: str | None = None,
    style: DagStyle = "taskflow",
    retries: int = 1,
    retry_delay: float = 300,
    timeout: float = 6 * 3600,
    poll_interval: float = 10,
    max_poll_errors: int = 8,
    deferrable: bool = True,
    embed: bool = False,
    validate: bool = False,
) -> str:
    """The source of a DAG file that runs ``cfg``'s batch; validated before it is returned.

    ``validate=True`` first refuses an invalid job (``cfg.validate()``: a ``ConfigError`` naming
    every field) and a schedule Airflow would refuse (an ``ExportError`` naming it);
    ``export_dag_files`` always does.

    ``timeout`` bounds the batch's run (seconds; the task kills it then), ``poll_interval`` the
    time between polls, ``max_poll_errors`` the consecutive failed polls after which a try gives
    up (leaving the batch for the retry). ``embed=True`` inlines the package's operator modules
    and is never deferrable. Values are not checked for Livy (``JobConfig.validate`` does that);
    any text is carried exactly.
    """
    if validate:
        cfg.validate()
        problem = schedule_problem(schedule)
        if problem is not None:
            raise ExportOptionError([ConfigProblem("schedule", problem)])
    dag_id = default_dag_id(cfg) if dag_id is None else dag_id
    _check_options(
        dag_id=dag_id, schedule=schedule, style=style, retries=retries, max_poll_errors=max_poll_errors,
        retry_delay=retry_delay, timeout=timeout, poll_interval=poll_interval,
    )  # fmt: skip
    constants: dict[str, Any] = {
        "DAG_ID": dag_id,
        "SCHEDULE": schedule,
        "RETRIES": retries,
        "RETRY_DELAY_SECONDS": retry_delay,
        "TIMEOUT_SECONDS": timeout,
        "POLL_SECONDS": poll_interval,
        "MAX_POLL_ERRORS": max_poll_errors,
        "DEFERRABLE": bool(deferrable) and not embed,
        "JOB_CONFIG": _compact(cfg),
    }
    block = "".join(f"{name} = {_literal(value)}\n" for name, value in constants.items())
    parts = [_DOC_EMBEDDED if embed else _DOC_THIN, _DOC_COMMON, _IMPORTS_EMBEDDED if embed else _IMPORTS_THIN]
    parts += [_CONSTANTS_TITLE, block]
    embedded: dict[str, Any] = {}
    if embed:
        sources = module_sources()
        embedded = {"EMBED_PACKAGE": embedded_package_name(sources), "EMBEDDED_SOURCES": sources}
        parts += [_EMBEDDED_TITLE]
        parts += [f"EMBED_PACKAGE = {embedded['EMBED_PACKAGE']!r}\n"]
        parts += [f"EMBEDDED_SOURCES = {_sources_literal(sources)}\n"]
        parts += [LOADER]
    parts += [_DAG]
    source = "".join(parts)
    _validate_source(source, {**constants, **embedded}, embedded=embed)
    return source


def _validate_source(source: str, constants: Mapping[str, Any], *, embedded: bool = False) -> None:
    """Compile the file and read every constant back: the output must carry the values exactly.

    A thin file may import only the operator module of the package; an embedded one nothing of it.
    """
    try:
        compile(source, "<exported dag>", "exec", dont_inherit=True)
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ExportError(f"the generated DAG does not compile: {exc}") from exc
    allowed = set() if embedded else {THIN_OPERATOR_MODULE}
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        for module in modules:
            if (module == "hdiaks_widgets" or module.startswith("hdiaks_widgets.")) and module not in allowed:
                raise ExportError(f"the generated DAG must not import {module}")
    found = _module_constants(tree)
    for name, value in constants.items():
        if name not in found or found[name] != value or type(found[name]) is not type(value):
            raise ExportError(f"the generated DAG does not carry {name} exactly")


def _module_constants(tree: ast.Module) -> dict[str, Any]:
    """Top-level ``NAME = <literal>`` assignments, read with ast.literal_eval (nothing executed)."""
    out: dict[str, Any] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()
        ):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def read_dag_config(source: str) -> JobConfig:
    """The ``JobConfig`` embedded in DAG source text (parsed, never executed)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ExportError(f"not a Python file: {exc}") from exc
    data = _module_constants(tree).get("JOB_CONFIG")
    if not isinstance(data, dict):
        raise ExportError("no JOB_CONFIG found; was this DAG exported by hdiaks-widgets?")
    try:
        return JobConfig.from_dict(data)
    except ConfigError as exc:
        raise ExportError(f"the JOB_CONFIG in this DAG is not a valid job configuration: {exc}") from exc


def load_dag_config(path: str | os.PathLike[str]) -> JobConfig:
    """The ``JobConfig`` a DAG file was exported from, so it can be loaded back into the form."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from exc
    return read_dag_config(source)
