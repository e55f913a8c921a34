"""Mistakes and hostile inputs across every ``hdiaks`` subcommand, the job file and the profile
file, as one table. Each case runs the CLI in-process against a loopback server that records the
raw request lines, and asserts: the exit code, nothing on stdout, exactly one line on stderr and
no traceback, a substring naming the problem and one naming the fix; a refused input (exit 2)
sends no request at all."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Run
from servers import RecordingServer

URL = "{url}"  # replaced by the recording server's URL
TMP = "{tmp}"  # replaced by the test's tmp_path


def _job(spec: Mapping[str, object] | None = None, **profile: object) -> str:
    """A job file's text: a plain-Livy profile at the recording server, ``profile`` merged in."""
    return json.dumps({"profile": {"flavour": "livy", "url": URL, **profile}, "spec": dict(spec or {})})


GOOD_JOB = _job({"file": "/apps/pi.py"})
AKS = {"flavour": "hdinsight-aks", "fqdn": "c.p.1.eastus.hdinsightaks.net", "url": None}


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    problem: str
    fix: str
    files: Mapping[str, str | bytes] = field(default_factory=dict)  # written under tmp_path
    profiles: str | bytes | None = None  # the profile file's content ($HDIAKS_PROFILES)
    absent: str | None = None  # a path under tmp_path that must not exist afterwards


def _c(id: str, argv: str | tuple[str, ...], code: int, problem: str, fix: str, **kw: object) -> Case:
    return Case(id, tuple(argv.split()) if isinstance(argv, str) else argv, code, problem, fix, **kw)  # type: ignore[arg-type]


def _config(id: str, text: str | bytes, problem: str, fix: str, *, command: tuple[str, ...] = ("submit",)) -> Case:
    return Case(id, (*command, "--config", f"{TMP}/job.json"), 2, problem, fix, files={"job.json": text})


def _profile(id: str, text: str | bytes, problem: str, fix: str) -> Case:
    return Case(id, ("list", "--profile", "prod"), 2, problem, fix, profiles=text)


# -- usage: the parser -------------------------------------------------------------------------

USAGE = [
    _c("no-command", (), 2, "required: COMMAND", "see 'hdiaks --help'"),
    _c("unknown-command", "deploy", 2, "invalid choice: 'deploy'", "see 'hdiaks --help'"),
    _c("status-no-batch", f"status --url {URL}", 2, "required: batch", "see 'hdiaks status --help'"),
    _c("logs-no-batch", f"logs --url {URL}", 2, "required: batch", "see 'hdiaks logs --help'"),
    _c("kill-no-batch", f"kill --url {URL}", 2, "required: batch", "see 'hdiaks kill --help'"),
    _c("status-two-batches", f"status 1 2 --url {URL}", 2, "unrecognized arguments: 2", "--help"),
    _c("submit-no-target", "submit", 2, "--config", "--url http://host:8998"),
    _c("status-no-target", "status 1", 2, "--config", "--profile NAME"),
    _c("logs-no-target", "logs 1", 2, "--config", "--profile NAME"),
    _c("kill-no-target", "kill 1", 2, "--config", "--profile NAME"),
    _c("list-no-target", "list", 2, "--config", "--profile NAME"),
    _c("export-no-target", f"export-dag --dag-id x --out {TMP}/dags", 2, "--config", "--url http://host:8998",
       absent="dags"),
    _c("export-no-dag-id", f"export-dag --url {URL}", 2, "required: --dag-id", "see 'hdiaks export-dag --help'"),
    _c("list-size-zero", f"list --url {URL} --size 0", 2, "argument --size", "1 or more, got 0"),
    _c("list-size-negative", f"list --url {URL} --size -3", 2, "argument --size", "1 or more, got -3"),
    _c("list-from-negative", f"list --url {URL} --from -1", 2, "argument --from", "0 or more, got -1"),
    _c("list-from-word", f"list --url {URL} --from x", 2, "argument --from", "whole number, got 'x'"),
    _c("logs-size-negative", f"logs 1 --url {URL} --size -1", 2, "argument --size", "0 or more, got -1"),
    _c("logs-from-fraction", f"logs 1 --url {URL} --from 1.5", 2, "argument --from", "whole number, got '1.5'"),
    _c("logs-poll-zero", f"logs 1 --url {URL} --follow --poll 0", 2, "argument --poll", "more than 0 seconds"),
    _c("logs-poll-nan", f"logs 1 --url {URL} --follow --poll nan", 2, "argument --poll", "more than 0 seconds"),
    _c("submit-poll-inf", f"submit --url {URL} --wait --poll inf", 2, "argument --poll", "more than 0 seconds"),
    _c("submit-poll-word", f"submit --url {URL} --wait --poll soon", 2, "argument --poll", "seconds, got 'soon'"),
    _c("sandbox-port-zero", "sandbox --port 0", 2, "argument --port", "1 to 65535, got 0"),
    _c("sandbox-port-big", "sandbox --port 99999", 2, "argument --port", "1 to 65535, got 99999"),
    _c("sandbox-port-negative", "sandbox --port -1", 2, "argument --port", "1 to 65535, got -1"),
    _c("sandbox-port-float", "sandbox --port 1e3", 2, "argument --port", "whole number, got '1e3'"),
    _c("sandbox-port-empty", ("sandbox", "--port", ""), 2, "argument --port", "whole number, got ''"),
    _c("sandbox-max-running-zero", "sandbox --max-running 0", 2, "argument --max-running", "1 or more, got 0"),
    _c("sandbox-cluster-negative", "sandbox --cluster -1", 2, "argument --cluster", "1 or more, got -1"),
    _c("sandbox-cache-log-zero", "sandbox --cache-log-size 0", 2, "argument --cache-log-size", "1 or more, got 0"),
    _c("sandbox-log-shape", "sandbox --log-shape weird", 2, "invalid choice: 'weird'", "'process', 'yarn'"),
    _c("lab-port-big", "lab --port 70000", 2, "argument --port", "1 to 65535, got 70000"),
    _c("lab-port-zero", "lab --port 0", 2, "argument --port", "1 to 65535, got 0"),
    _c("lab-unknown-option", "lab --bogus", 2, "unrecognized arguments: --bogus", "--help"),
    _c("demo-unknown-option", "demo --bogus", 2, "unrecognized arguments: --bogus", "--help"),
]

# -- hostile batch ids: refused naming the field, before any request ------------------------------

HOSTILE_IDS = ["../sessions/0", "0?doAs=admin", "0/log", "%2e%2e", "..", "", "a\nb", "a\x00b", "0#frag", "0 1"]
IDS = [
    _c(f"{command}-id-{i}", (command, hostile, "--url", URL), 2, f"batch: batch id or name {hostile!r}",
       "e.g. 12 or my-job")
    for command in ("status", "logs", "kill")
    for i, hostile in enumerate(HOSTILE_IDS)
] + [
    _c("logs-follow-id-traversal", ("logs", "../sessions/0", "--follow", "--url", URL), 2,
       "batch id or name '../sessions/0'", "e.g. 12 or my-job"),
    _c("kill-json-id-doAs", ("kill", "0?doAs=admin", "--json", "--url", URL), 2,
       "batch id or name '0?doAs=admin'", "e.g. 12 or my-job"),
    _c("status-id-negative", ("status", "-1", "--url", URL), 2,
       "batch id or name '-1' must start with a letter or digit", "e.g. 12 or my-job"),
    _c("kill-id-leading-dot", ("kill", ".x", "--url", URL), 2,
       "batch id or name '.x' must start with a letter or digit", "e.g. 12 or my-job"),
    _c("status-id-300-characters", ("status", "7" * 300, "--url", URL), 2, "is 300 characters; at most 255",
       "e.g. 12 or my-job"),
    _c("logs-id-names-the-character", ("logs", "0?doAs=admin", "--url", URL), 2, "'0?doAs=admin' contains '?'",
       "e.g. 12 or my-job"),
    _c("status-config-id-subpath", ("status", "0/log", "--config", f"{TMP}/job.json"), 2,
       "batch id or name '0/log'", "e.g. 12 or my-job", files={"job.json": GOOD_JOB}),
]

# -- the job file -------------------------------------------------------------------------------------

CONFIG = [
    _config("bad-json", "{not json", "config: is not valid JSON", "(line 1, column 2"),
    _config("empty-file", "", "config: is not valid JSON", "(line 1, column 1"),
    _config("bom-only", "\ufeff", "config: is not valid JSON", "(line 1, column 1"),
    _config("trailing-comma", '{"spec": {"file": "/a.py",}}', "config: is not valid JSON", "(line 1, column 27"),
    _config("json-array", "[]", "config: a job configuration", "must be a JSON object"),
    _config("json-null", "null", "config: a job configuration", "must be a JSON object"),
    _config("json-string", '"job"', "config: a job configuration", "must be a JSON object"),
    _config("unknown-section", '{"profile": {}, "spec": {}, "extra": 1}', "extra: is not a known section",
            "use 'profile' and 'spec'"),
    _config("unknown-profile-key", _job(flavor="livy"), "profile.flavor: is not a known setting", "flavour"),
    _config("unknown-spec-key", _job({"className": "x"}), "spec.className: is not a known setting", "class_name"),
    _config("missing-file", _job(), "spec.file: is required", "e.g. "),
    _config("bom-then-missing-file", "\ufeff" + _job(), "spec.file: is required", "e.g. "),
    _config("profile-is-text", '{"profile": "prod"}', "profile: must be a JSON object", "got str"),
    _config("spec-is-list", '{"profile": {"flavour": "livy", "url": "{url}"}, "spec": [1]}',
            "spec: must be a JSON object", "got list"),
    _config("version-2", '{"version": 2}', "version: is 2", "upgrade hdiaks-widgets or remove the key"),
    _config("version-text", '{"version": "1"}', "version: is '1'", "upgrade hdiaks-widgets or remove the key"),
    _config("flavour-unknown", _job({"file": "/a.py"}, flavour="emr"), "profile.flavour", "must be one of"),
    _config("auth-unknown", _job({"file": "/a.py"}, auth="kerberos"), "profile.auth", "must be one of"),
    _config("timeout-text", _job({"file": "/a.py"}, read_timeout="60"), "profile.read_timeout",
            "number of seconds above 0, got '60'"),
    _config("timeout-negative", _job({"file": "/a.py"}, read_timeout=-1), "profile.read_timeout",
            "number of seconds above 0, got -1"),
    _config("timeout-zero", _job({"file": "/a.py"}, connect_timeout=0), "profile.connect_timeout", "above 0"),
    _config("url-no-scheme", _job({"file": "/a.py"}, url="127.0.0.1:8998"), "profile.url",
            "e.g. http://127.0.0.1:8998"),
    _config("url-ftp", _job({"file": "/a.py"}, url="ftp://127.0.0.1"), "profile.url", "e.g. http://127.0.0.1:8998"),
    _config("url-broken-ipv6", _job({"file": "/a.py"}, url="http://[::1"), "profile.url",
            "e.g. http://127.0.0.1:8998"),
    _config("fqdn-with-scheme", _job({"file": "abfs://c1c@acct1.dfs.core.windows.net/a.py"},
                                     **{**AKS, "fqdn": "https://c.p.1.eastus.hdinsightaks.net"}),
            "profile.fqdn: must not include a scheme", "paste only the host name"),
    _config("aks-local-path", _job({"file": "/tmp/app.jar"}, **AKS), "spec.file", "upload the file"),
    _config("ca-bundle-missing", _job({"file": "/a.py"}, verify="/no/such/ca.pem"), "profile.verify",
            "give the path of a PEM file"),
    _config("driver-memory-negative", _job({"file": "/a.py", "driver_memory": "-1g"}), "spec.driver_memory",
            "e.g. 512m, 4g"),
    _config("executor-memory-no-unit", _job({"file": "/a.py", "executor_memory": "4"}), "spec.executor_memory",
            "e.g. 512m, 4g"),
    _config("num-executors-negative", _job({"file": "/a.py", "num_executors": -2}), "spec.num_executors",
            "1 or more, got -2"),
    _config("driver-cores-zero", _job({"file": "/a.py", "driver_cores": 0}), "spec.driver_cores", "1 or more, got 0"),
    _config("executor-cores-fraction", _job({"file": "/a.py", "executor_cores": 1.5}), "spec.executor_cores",
            "whole number, got 1.5"),
    _config("jars-object", _job({"file": "/a.py", "jars": {"a": 1}}), "spec.jars[0]", "must be a path as text"),
    _config("jars-relative", _job({"file": "/a.py", "jars": ["/ok.jar", "lib/dep.jar"]}), "spec.jars[1]",
            "absolute path or a URL"),
    _config("py-files-host-in-local", _job({"file": "/a.py", "py_files": ["local://opt/dep.zip"]}),
            "spec.py_files[0]: names a host", "local:///"),
    _config("archives-space", _job({"file": "/a.py", "archives": ["hdfs:///envs/my env.zip"]}),
            "spec.archives[0]: contains a space", "%20"),
    _config("files-s3n", _job({"file": "/a.py", "files": ["s3n://b/data.csv"]}), "spec.files[0]", "s3a://"),
    _config("conf-not-object", _job({"file": "/a.py", "conf": ["spark.x=1"]}), "spec.conf",
            "object of Spark settings"),
    _config("conf-value-object", _job({"file": "/a.py", "conf": {"spark.x": {"a": 1}}}), "spec.conf[spark.x]",
            "value must be text or a number"),
    _config("conf-key-newline", _job({"file": "/a.py", "conf": {"spark.x\ny": "1"}}), "spec.conf[spark.x\\ny]",
            "must not contain spaces or line breaks"),
    _config("unknown-key-newline", _job({"file": "/a.py", "a\nb": 1}), "spec.a\\nb: is not a known setting",
            "known: archives"),
    _config("args-nested-list", _job({"file": "/a.py", "args": ["10", ["a", "b"]]}), "spec.args[1]",
            "give each argument as its own item"),
    _config("args-one-string", _job({"file": "/a.py", "args": "10 20"}), "spec.args: must be a list of arguments",
            'e.g. ["10", "20"]'),
    _config("args-null", _job({"file": "/a.py", "args": [None]}), "spec.args[0]", "must be text or a number"),
    _config("name-newline", _job({"file": "/a.py", "name": "job\n"}), "spec.name", "line breaks"),
    _config("name-digits", _job({"file": "/a.py", "name": "42"}), "spec.name: must not be only digits",
            "e.g. 'job-42'"),
    _config("name-traversal", _job({"file": "/a.py", "name": "../sessions/0"}), "spec.name: must not contain /",
            "(it is used in Livy URLs)"),
    _config("name-too-long", _job({"file": "/a.py", "name": "x" * 201}), "spec.name: is 201 characters long",
            "200 or fewer"),
    _config("class-name-on-python", _job({"file": "/a.py", "class_name": "a.B"}), "spec.class_name",
            "leave it empty for a Python file"),
    _config("class-name-keyword", _job({"file": "/a.jar", "class_name": "org.class.Main"}), "spec.class_name",
            "e.g. org.apache.spark.examples.SparkPi"),
    _config("not-utf8", '{"a": 1}'.encode("utf-16"), "is not UTF-8 text", "(byte 0)"),
    _config("deeply-nested", '{"spec": {"conf": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}}",
            "config: is nested too deeply", "two levels deep"),
    _config("huge-args-no-file", json.dumps({"profile": {"flavour": "livy", "url": URL},
                                             "spec": {"args": ["x"] * 200_000}}),
            "spec.file: is required", "e.g. "),
    _config("two-problems-one-line", _job({"file": "/a.py", "driver_cores": 0, "num_executors": -1}),
            "spec.driver_cores: must be 1 or more", "spec.num_executors: must be 1 or more"),
    _config("status-bad-json", "{", "config: is not valid JSON", "line 1, column 2", command=("status", "1")),
    _config("list-unknown-key", _job(colour="blue"), "profile.colour: is not a known setting", "known: ",
            command=("list",)),
    _config("kill-bad-url", _job(url="localhost"), "profile.url", "e.g. http://127.0.0.1:8998",
            command=("kill", "1")),
    _config("logs-ca-missing", _job(verify="/no/ca.pem"), "profile.verify", "PEM file", command=("logs", "1")),
    _c("config-missing", f"list --config {TMP}/nope.json", 2, "cannot read", "No such file or directory"),
    _c("config-directory", f"list --config {TMP}", 2, "cannot read", "Is a directory"),
    _c("config-and-profile", f"list --config {TMP}/job.json --profile prod", 2,
       "--profile: cannot be used with --config", "give one of them", files={"job.json": GOOD_JOB}),
    _c("url-overrides-aks", f"list --config {TMP}/job.json --url http://127.0.0.1:1", 2,
       "--url: cannot override the hdinsight-aks profile", "profile.fqdn",
       files={"job.json": _job(**AKS)}),
]

# -- options that become spec fields -----------------------------------------------------------------

SPEC_OPTIONS = [
    _c("submit-file-relative", f"submit --url {URL} --file app.py", 2, "spec.file: is a relative path",
       "absolute path or a URL"),
    _c("submit-file-local-host", f"submit --url {URL} --file local://opt/app.py", 2, "spec.file: names a host",
       "local:///"),
    _c("submit-file-windows", ("submit", "--url", URL, "--file", "C:\\jobs\\app.py"), 2,
       "spec.file: is a Windows path", "upload the file"),
    _c("submit-name-newline", ("submit", "--url", URL, "--file", "/a.py", "--name", "a\nb"), 2, "spec.name",
       "line breaks"),
    _c("submit-name-nul", ("submit", "--url", URL, "--file", "/a.py", "--name", "a\x00b"), 2, "spec.name",
       "line breaks"),
    _c("submit-name-traversal", f"submit --url {URL} --file /a.py --name ../sessions/0", 2,
       "spec.name: must not contain /", "(it is used in Livy URLs)"),
    _c("submit-name-digits", f"submit --url {URL} --file /a.py --name 42", 2, "spec.name", "e.g. 'job-42'"),
    _c("submit-class-name-space", ("submit", "--url", URL, "--file", "/a.jar", "--class-name", "a b"), 2,
       "spec.class_name: is not a Java class name", "e.g. org.apache.spark.examples.SparkPi"),
    _c("submit-arg-nul", ("submit", "--url", URL, "--file", "/a.py", "--arg", "a\x00"), 2, "spec.args[0]",
       "must not contain NUL"),
    _c("submit-url-no-scheme", "submit --url 127.0.0.1:8998 --file /a.py", 2, "profile.url",
       "e.g. http://127.0.0.1:8998"),
    _c("submit-url-space", ("submit", "--url", "http://local host:1", "--file", "/a.py"), 2, "profile.url",
       "e.g. http://127.0.0.1:8998"),
]

# -- export-dag: schedules and ids, nothing written ----------------------------------------------------

SCHEDULES = [
    ("four-fields", "0 0 * *", "neither a preset nor a cron expression of five fields"),
    ("six-fields", "* * * * * *", "neither a preset nor a cron expression of five fields"),
    ("empty", "", "neither a preset nor a cron expression"),
    ("code", "'; import os #", "neither a preset nor a cron expression"),
    ("nightly", "@nightly", "is not a preset"),
    ("upper-preset", "@DAILY", "is not a preset"),
    ("preset-newline", "@daily\n", "is not a preset"),
    ("minute-61", "61 * * * *", "the minute field '61'"),
    ("hour-25", "0 25 * * *", "the hour field '25'"),
    ("step-zero", "*/0 * * * *", "the minute field '*/0'"),
    ("weekday-8", "0 0 * * 8", "the day of week field '8'"),
    ("duration", "1h", "neither a preset nor a cron expression"),
]
EXPORT = [
    Case(f"export-schedule-{id}", ("export-dag", "--config", f"{TMP}/job.json", "--dag-id", "x", "--out",
                                   f"{TMP}/dags", "--schedule", schedule),
         2, f"--schedule: {schedule!r}", "@daily", files={"job.json": GOOD_JOB}, absent="dags")
    for id, schedule, _ in SCHEDULES
] + [
    Case(f"export-schedule-{id}", ("export-dag", "--config", f"{TMP}/job.json", "--dag-id", "x", "--out",
                                   f"{TMP}/dags", "--schedule", schedule),
         2, f"--schedule: {schedule!r} never fires (February has at most 29 days)", "@daily",
         files={"job.json": GOOD_JOB}, absent="dags")
    for id, schedule in (("feb-31", "0 0 31 2 *"), ("feb-30", "0 0 30 2 *"))
] + [
    Case(f"export-dag-id-{id}", ("export-dag", "--config", f"{TMP}/job.json", "--dag-id", dag_id, "--out",
                                 f"{TMP}/dags"),
         2, f"--dag-id: {shown}", "letters, digits, '_', '-' and '.'", files={"job.json": GOOD_JOB}, absent="dags")
    for id, dag_id, shown in (("traversal", "../evil", "'../evil' may hold only"), ("space", "a b", "'a b' may hold"),
                              ("empty", "", "is empty"), ("newline", "x\ny", "'x\\ny' may hold"),
                              ("long", "d" * 300, "is 300 characters; at most 250"))
] + [
    Case("export-out-is-a-file", ("export-dag", "--config", f"{TMP}/job.json", "--dag-id", "x", "--out",
                                  f"{TMP}/job.json"),
         2, f"--out: '{TMP}/job.json' is a file", "give a folder", files={"job.json": GOOD_JOB}),
    Case("export-invalid-job", ("export-dag", "--config", f"{TMP}/job.json", "--dag-id", "x", "--out", f"{TMP}/dags"),
         2, "spec.file: is required", "e.g. ", files={"job.json": _job()}, absent="dags"),
]

# -- the profile file ($HDIAKS_PROFILES) -----------------------------------------------------------------

PROFILES = [
    _profile("profiles-bad-json", "{bad", "is not valid JSON", "(line 1, column 2"),
    _profile("profiles-empty", "", "is not valid JSON", "(line 1, column 1"),
    _profile("profiles-array", "[]", "profiles:", 'must hold {"profiles": {name: profile}}'),
    _profile("profiles-flat", '{"prod": {"flavour": "livy", "url": "{url}"}}', "profiles:",
             'must hold {"profiles": {name: profile}}'),
    _profile("profiles-entry-text", '{"profiles": {"prod": "x"}}', "profiles.prod",
             "must be a JSON object"),
    _profile("profiles-unknown-key", '{"profiles": {"prod": {"flavour": "livy", "url": "{url}", "colour": 1}}}',
             "profile.colour: is not a known setting", "auth, authority_host"),
    _profile("profiles-bad-url", '{"profiles": {"prod": {"flavour": "livy", "url": "127.0.0.1"}}}',
             "profile.url", "e.g. http://127.0.0.1:8998"),
    _profile("profiles-aks-no-fqdn", '{"profiles": {"prod": {"flavour": "hdinsight-aks"}}}',
             "profile.fqdn: is required", "paste only the host name"),
    _profile("profiles-timeout", '{"profiles": {"prod": {"flavour": "livy", "url": "{url}", "read_timeout": -1}}}',
             "profile.read_timeout", "above 0, got -1"),
    _profile("profiles-bom-then-bad-url", '\ufeff{"profiles": {"prod": {"flavour": "livy", "url": "127.0.0.1"}}}',
             "profile.url", "e.g. http://127.0.0.1:8998"),  # read past the BOM, as job.json is
    _profile("profiles-utf16", '{"profiles": {}}'.encode("utf-16"), "profiles: '{tmp}/profiles.json' is not UTF-8 text",
             "save it as UTF-8"),
]

# -- profile.url: one line, no query or fragment, a port 1-65535, no credentials --------------------------
#
# Refused once config/profile.py checks profile.url with validators._check_url (the one-line change
# is in the report of the helper who wrote validators._url_problem); until then these are strict
# xfails, so the marker has to go when the check is wired in.

CANARY = "canary-pw-5c1e9a"  # noqa: S105 - a test value that must never be echoed
URL_FIX = "e.g. http://127.0.0.1:8998"
URLS = [
    _c("submit-url-trailing-newline", ("submit", "--url", URL + "\n", "--file", "/a.py"), 2,
       "profile.url: must be one line", URL_FIX),
    _c("list-url-query", ("list", "--url", URL + "/p/livy?x=1"), 2, "profile.url: must not have a query", URL_FIX),
    _c("list-url-fragment", ("list", "--url", URL + "#frag"), 2, "or a fragment (#...)", URL_FIX),
    _c("list-url-port-zero", ("list", "--url", "http://127.0.0.1:0"), 2, "profile.url: has the port 0",
       "a port is a number 1-65535"),
    _c("list-url-credentials", ("list", "--url", f"http://u:{CANARY}@127.0.0.1:9"), 2,
       "profile.url: credentials do not belong in the URL", "set profile.username and keep the password in the "
       "secret store"),
    _config("url-trailing-newline", _job({"file": "/a.py"}, url=URL + "\n"), "profile.url: must be one line",
            URL_FIX),
    _profile("profiles-url-credentials",
             json.dumps({"profiles": {"prod": {"flavour": "livy", "url": f"http://u:{CANARY}@127.0.0.1:9"}}}),
             "profile.url: credentials do not belong in the URL", "secret store"),
]

CASES = USAGE + IDS + CONFIG + SPEC_OPTIONS + EXPORT + PROFILES + URLS


def test_the_table_has_one_case_per_id_and_covers_every_subcommand() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 80
    commands = {case.argv[0] for case in CASES if case.argv}
    assert {"submit", "status", "logs", "kill", "list", "export-dag", "sandbox", "demo", "lab"} <= commands


def _fill(text: str, url: str, tmp: Path) -> str:
    return text.replace(URL, url).replace(TMP, str(tmp))


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_cli_refuses_in_one_line_naming_the_problem_and_the_fix(
    run: Run, case: Case, tmp_path: Path, recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, content in case.files.items():
        target = tmp_path / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(_fill(content, recorder.url, tmp_path), encoding="utf-8")
    profiles = tmp_path / "profiles.json"  # never the user's own file
    if isinstance(case.profiles, bytes):
        profiles.write_bytes(case.profiles)
    elif case.profiles is not None:
        profiles.write_text(_fill(case.profiles, recorder.url, tmp_path), encoding="utf-8")
    monkeypatch.setenv("HDIAKS_PROFILES", str(profiles))

    code, out, err = run(*(_fill(arg, recorder.url, tmp_path) for arg in case.argv))

    assert "Traceback" not in err
    assert (code, out) == (case.code, ""), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    problem, fix = _fill(case.problem, recorder.url, tmp_path), _fill(case.fix, recorder.url, tmp_path)
    assert problem in err, err
    assert fix in err, err
    if case.code == 2:
        assert recorder.lines == []  # a refused input never reaches the server
    if case.absent is not None:
        assert not (tmp_path / case.absent).exists()


@pytest.mark.parametrize("hostile", ["/" + "A" * 300, "." + "B" * 100, "C" * 256, "%" * 80],
                         ids=["long-slash", "long-dot", "256", "long-percent"])
def test_cli_hostile_batch_id_is_never_repeated_whole(run: Run, recorder: RecordingServer, hostile: str) -> None:
    code, out, err = run("status", hostile, "--url", recorder.url)
    assert (code, out, recorder.lines) == (2, "", [])
    assert hostile[:40] not in err and hostile[:30] in err and "\u2026" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("command", [("list",), ("status", "1"), ("submit", "--file", "/a.py")])
def test_cli_never_echoes_a_password_given_in_the_url(run: Run, command: tuple[str, ...]) -> None:
    code, out, err = run(*command, "--url", f"http://u:{CANARY}@127.0.0.1:9")
    assert CANARY not in out + err and code == 2, err


# -- the recording server sees what a valid id sends (so "no request" above means something) --------------


@pytest.mark.parametrize(("batch", "line"), [("0", "GET /batches/0 HTTP/1.1"),
                                             ("nightly+etl@team", "GET /batches/nightly%2Betl%40team HTTP/1.1"),
                                             ("job:v1.2", "GET /batches/job%3Av1.2 HTTP/1.1")])  # fmt: skip
def test_cli_valid_ids_reach_the_recording_server_encoded(run: Run, recorder: RecordingServer, batch: str,
                                                          line: str) -> None:
    code, out, err = run("status", batch, "--url", recorder.url)
    assert recorder.lines == [line]
    assert code == 1 and out == "" and err.count("\n") == 1 and "not found" in err.lower()
