"""The ``hdiaks`` command's own surface: --version, --help, option help, refused inputs and
the diagnoses of wrong servers. In-process (``cli.main``), talking only to 127.0.0.1."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import Run, one_line_usage_error
from servers import PlainServer

import hdiaks_widgets
from hdiaks_widgets import cli, profiles
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig

# -- 1. --version, --help, help on every option ------------------------------------------------


def test_version_prints_the_package_version(run: Run) -> None:
    code, out, err = run("--version")
    assert (code, out, err) == (0, f"hdiaks {hdiaks_widgets.__version__}\n", "")


def test_help_says_what_the_tool_does_and_lists_exit_codes_and_the_profile_file(run: Run) -> None:
    code, out, _ = run("--help")
    assert code == 0
    flat = " ".join(out.split())
    assert "Submit Spark batch jobs to an Apache Livy server" in flat
    for code_value, meaning in [(0, "ok"), (1, "Livy, network or sign-in failure"), (2, "bad input"),
                                (3, "state other than success"), (130, "interrupted")]:  # fmt: skip
        assert any(line.split()[:1] == [str(code_value)] and meaning in line for line in out.splitlines()), (
            code_value, out)
    assert f"${profiles.PROFILES_ENV}" in flat
    assert "~/.config/hdiaks/profiles.json" in flat
    assert str(profiles.profiles_path({})).endswith(".config/hdiaks/profiles.json")


@pytest.mark.parametrize(
    ("constant", "value"),
    [("EXIT_OK", 0), ("EXIT_LIVY", 1), ("EXIT_USAGE", 2), ("EXIT_JOB_FAILED", 3), ("EXIT_INTERRUPTED", 130)],
)
def test_documented_exit_codes_are_the_ones_main_returns(constant: str, value: int) -> None:
    assert getattr(cli, constant) == value


def _walk(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        yield prog, action
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, f"{prog} {name}")


def test_every_option_of_every_subcommand_has_help() -> None:
    actions = list(_walk(cli.build_parser(), "hdiaks"))
    missing = [f"{prog} {'/'.join(a.option_strings) or a.dest}" for prog, a in actions
               if not a.help or a.help == argparse.SUPPRESS]  # fmt: skip
    assert missing == []
    subcommands = {prog for prog, _ in actions}
    assert {"hdiaks submit", "hdiaks sandbox", "hdiaks export-dag", "hdiaks lab"} <= subcommands


def test_a_usage_error_is_one_line_and_exit_2(run: Run) -> None:
    code, out, err = run("status")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "the following arguments are required: batch" in err
    assert "hdiaks status --help" in err


# -- 2. bad numbers are refused by the parser, naming the option --------------------------------


@pytest.mark.parametrize(
    ("argv", "option", "says"),
    [
        (["sandbox", "--port", "99999"], "--port", "1 to 65535, got 99999"),
        (["sandbox", "--port", "-1"], "--port", "1 to 65535, got -1"),
        (["sandbox", "--port", "0"], "--port", "1 to 65535, got 0"),
        (["sandbox", "--port", "http"], "--port", "whole number, got 'http'"),
        (["sandbox", "--max-running", "0"], "--max-running", "1 or more, got 0"),
        (["lab", "--port", "70000"], "--port", "1 to 65535"),
        (["logs", "1", "--url", "http://127.0.0.1:9", "--size", "-5"], "--size", "0 or more, got -5"),
        (["logs", "1", "--url", "http://127.0.0.1:9", "--from", "-1"], "--from", "0 or more, got -1"),
        (["logs", "1", "--url", "http://127.0.0.1:9", "--from", "1.5"], "--from", "whole number"),
        (["logs", "1", "--url", "http://127.0.0.1:9", "--follow", "--poll", "0"], "--poll", "more than 0"),
        (["logs", "1", "--url", "http://127.0.0.1:9", "--follow", "--poll", "-2"], "--poll", "more than 0"),
        (["submit", "--url", "http://127.0.0.1:9", "--wait", "--poll", "0"], "--poll", "more than 0"),
        (["submit", "--url", "http://127.0.0.1:9", "--wait", "--poll", "-0.5"], "--poll", "more than 0"),
        (["submit", "--url", "http://127.0.0.1:9", "--wait", "--poll", "nan"], "--poll", "more than 0"),
        (["submit", "--url", "http://127.0.0.1:9", "--wait", "--poll", "soon"], "--poll", "seconds, got 'soon'"),
        (["list", "--url", "http://127.0.0.1:9", "--size", "0"], "--size", "1 or more, got 0"),
        (["list", "--url", "http://127.0.0.1:9", "--size", "-3"], "--size", "1 or more, got -3"),
        (["list", "--url", "http://127.0.0.1:9", "--from", "-1"], "--from", "0 or more, got -1"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_numbers_are_one_line_errors_naming_the_option(run: Run, argv: list[str], option: str, says: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert f"argument {option}" in err and says in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["sandbox", "--port", "65535"], "port", 65535),
        (["sandbox", "--port", "1"], "port", 1),
        (["logs", "1", "--size", "0"], "size", 0),
        (["logs", "1", "--from", "0"], "start", 0),
        (["logs", "1", "--poll", "0.25"], "poll", 0.25),
        (["list", "--size", "1"], "size", 1),
        (["submit", "--poll", "2"], "poll", 2.0),
    ],
)
def test_good_numbers_are_accepted(argv: list[str], dest: str, value: float) -> None:
    assert getattr(cli.build_parser().parse_args(argv), dest) == value


# -- 3. diagnoses of the wrong server, the wrong scheme, no server, a refusal --------------------


@pytest.fixture
def plain_server() -> Iterator[Callable[..., PlainServer]]:
    """``plain_server(status=200, content_type="text/html", body="")`` starts a :class:`PlainServer`;
    all are closed after the test."""
    with ExitStack() as started:

        def _start(status: int = 200, content_type: str = "text/html", body: str = "") -> PlainServer:
            return started.enter_context(PlainServer(status, content_type, body))

        yield _start


def test_https_to_a_plain_http_port_says_the_server_does_not_speak_tls(
    run: Run, plain_server: Callable[..., PlainServer]
) -> None:
    server = plain_server(200, "application/json", '{"from": 0, "total": 0, "sessions": []}')
    code, out, err = run("list", "--url", f"https://127.0.0.1:{server.port}")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert f"the server does not speak TLS: use http://127.0.0.1:{server.port}" in err
    assert "verify" not in err  # not the CA-bundle advice: the certificate was never the problem


_HTML = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body><h1>hi</h1></body></html>"


@pytest.mark.parametrize(
    ("argv", "status", "content_type", "body", "gist"),
    [
        (["list"], 200, "text/html", _HTML, 'HTTP 200, text/html: "Welcome to nginx!"'),
        (["status", "7"], 200, "text/html", _HTML, "GET /batches/7 got HTTP 200"),
        (["status", "7"], 404, "text/html", _HTML, "GET /batches/7 got HTTP 404"),  # not "batch not found"
        (["kill", "7"], 404, "", "", "GET /batches/7 got HTTP 404, no content type"),  # kill asks first
        (["logs", "7"], 200, "text/plain", "hello from another server", '"hello from another server"'),
        (["list"], 404, "text/html", _HTML, "GET /batches got HTTP 404"),
    ],
    ids=["list-html", "status-html", "status-html-404", "kill-empty-404", "logs-text", "list-html-404"],
)
def test_a_server_that_is_not_livy_is_named_as_such(
    run: Run, plain_server: Callable[..., PlainServer], argv: list[str], status: int, content_type: str,
    body: str, gist: str,
) -> None:
    server = plain_server(status, content_type, body)
    code, out, err = run(*argv, "--url", f"{server.url}/wrong/path")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert f"the server at {server.url}/wrong/path is not answering like Livy" in err
    assert gist in err and "check the URL" in err
    assert "not found" not in err.lower()


def test_livy_json_404_is_still_batch_not_found(run: Run, plain_server: Callable[..., PlainServer]) -> None:
    server = plain_server(404, "application/json", '{"msg": "Session \'7\' not found."}')
    code, _, err = run("status", "7", "--url", server.url)
    assert code == 1 and err.startswith("hdiaks: error: Batch 7 not found")


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_carries_the_notebooks_hint(run: Run, plain_server: Callable[..., PlainServer],
                                              status: int) -> None:
    from hdiaks_widgets.errors import LivyHTTPError
    from hdiaks_widgets.run import describe_error

    server = plain_server(status, "text/plain", "Unauthorized")
    code, out, err = run("list", "--url", server.url)
    kind, sentence = describe_error(LivyHTTPError(status, ""))
    hint = sentence.split(": ", 1)[1].rstrip(".")
    assert kind == "auth"
    assert code == 1 and out == "" and err.count("\n") == 1
    assert f"HTTP {status}" in err and hint in err and "Unauthorized" in err


def test_a_refusal_is_still_a_livy_http_error_with_its_status(plain_server: Callable[..., PlainServer]) -> None:
    from hdiaks_widgets.errors import LivyHTTPError
    from hdiaks_widgets.livy import LivyClient

    server = plain_server(403, "application/json", '{"msg": "Forbidden"}')
    with LivyClient(server.url) as client, pytest.raises(LivyHTTPError) as info:
        client.list_batches()
    assert info.value.status == 403 and "Forbidden" in info.value.body


def test_connection_refused_asks_whether_livy_is_running() -> None:
    from auth_fixtures import closed_port

    from hdiaks_widgets.errors import LivyError
    from hdiaks_widgets.livy import LivyClient, RetryPolicy

    url = f"http://127.0.0.1:{closed_port()}"
    with LivyClient(url, retry=RetryPolicy(total=0)) as client, pytest.raises(LivyError) as info:
        client.list_batches()
    message = str(info.value)
    assert message.startswith(f"Cannot reach Livy at {url}")
    assert message.endswith("is the Livy server running? For the local sandbox run `hdiaks sandbox`")


# -- 4. a config file saved by Notepad (UTF-8 with a byte order mark) ---------------------------


@pytest.mark.parametrize(
    ("prefix", "newline"),
    [("\ufeff", "\n"), ("\ufeff", "\r\n"), ("", "\n"), ("", "\r\n")],
    ids=["bom", "bom-crlf", "plain", "crlf"],
)
def test_job_config_load_accepts_a_byte_order_mark(tmp_path: Path, prefix: str, newline: str) -> None:
    cfg = JobConfig(profile=ClusterProfile(name="local", flavour="livy", url="http://127.0.0.1:8998"),
                    spec=BatchSpec(file="local:///opt/app.py", name="bom-check"))  # fmt: skip
    text = cfg.to_json()
    path = tmp_path / "job.json"
    path.write_bytes((prefix + text.replace("\n", newline)).encode("utf-8"))
    assert JobConfig.load(path) == cfg


def test_cli_reads_a_notepad_config(run: Run, tmp_path: Path, plain_server: Callable[..., PlainServer]) -> None:
    server = plain_server(200, "application/json", '{"from": 0, "total": 0, "sessions": []}')
    text = JobConfig(profile=ClusterProfile(name="np", flavour="livy", url=server.url)).save(
        tmp_path / "saved.json").read_text(encoding="utf-8")
    path = tmp_path / "job.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    code, out, err = run("list", "--config", str(path))
    assert (code, err) == (0, "")
    assert out.startswith("0 batches on the server")


def test_a_config_that_is_not_utf8_is_still_a_one_line_error(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_bytes(b"\xff\xfe{\x00}\x00")  # UTF-16, as Notepad's "Unicode" writes it
    code, out, err = run("list", "--config", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1 and "not UTF-8" in err


# -- 7. target options that conflict, schedules, CA bundles, deep JSON, args of the wrong kind ---

import json  # noqa: E402 - appended section


def _job_file(tmp_path: Path, cfg: JobConfig, name: str = "job.json") -> str:
    return str(cfg.save(tmp_path / name))


def test_profile_with_config_is_refused_naming_both(run: Run, tmp_path: Path) -> None:
    job = _job_file(tmp_path, JobConfig(profile=ClusterProfile(flavour="livy", url="http://127.0.0.1:1")))
    err = one_line_usage_error(*run("list", "--config", job, "--profile", "prod"))
    assert "--profile" in err and "--config" in err


def test_url_cannot_override_an_hdinsight_profile(run: Run, tmp_path: Path) -> None:
    aks = ClusterProfile(name="aks", flavour="hdinsight-aks", fqdn="c.p.1.eastus.hdinsightaks.net")
    err = one_line_usage_error(*run("list", "--config", _job_file(tmp_path, JobConfig(profile=aks)),
                                     "--url", "http://127.0.0.1:8998"))
    assert "--url" in err and "hdinsight-aks" in err and "fqdn" in err


def test_url_replaces_the_url_of_a_livy_config(run: Run, tmp_path: Path,
                                               plain_server: Callable[..., PlainServer]) -> None:
    server = plain_server(200, "application/json", '{"from": 0, "total": 0, "sessions": []}')
    job = _job_file(tmp_path, JobConfig(profile=ClusterProfile(flavour="livy", url="http://127.0.0.1:1")))
    code, out, err = run("list", "--config", job, "--url", server.url)
    assert (code, err) == (0, "") and out.startswith("0 batches on the server")


def test_target_options_document_the_rules() -> None:
    parser = build_parser_for_help()
    helps = {a.dest: a.help or "" for a in parser._actions}
    assert "not with --config" in helps["profile"] and "not with --profile" in helps["config"]
    assert "replaces" in helps["url"] and "HDInsight" in helps["url"]


def build_parser_for_help() -> argparse.ArgumentParser:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["list"]


@pytest.mark.parametrize("schedule", ["0 0 * *", "@nightly", "61 * * * *", "1h"])
def test_export_dag_bad_schedule_is_refused_before_writing(run: Run, tmp_path: Path, schedule: str) -> None:
    job = _job_file(tmp_path, JobConfig(profile=ClusterProfile(flavour="livy", url="http://127.0.0.1:1"),
                                        spec=BatchSpec(file="/x.py")))
    out_dir = tmp_path / "dags"
    err = one_line_usage_error(*run("export-dag", "--config", job, "--dag-id", "x", "--out", str(out_dir),
                                     "--schedule", schedule))
    assert "--schedule" in err and "@daily" in err
    assert not out_dir.exists()


def test_export_dag_good_schedule_is_written(run: Run, tmp_path: Path) -> None:
    job = _job_file(tmp_path, JobConfig(profile=ClusterProfile(flavour="livy", url="http://127.0.0.1:1"),
                                        spec=BatchSpec(file="/x.py")))
    code, out, err = run("export-dag", "--config", job, "--dag-id", "x", "--out", str(tmp_path / "d"),
                         "--schedule", "30 2 * * 1-5")
    assert (code, err) == (0, "") and "SCHEDULE = '30 2 * * 1-5'" in (tmp_path / "d" / "x.py").read_text()


@pytest.mark.parametrize("command", [["list"], ["status", "1"], ["submit"]])
def test_a_missing_ca_bundle_is_one_line_naming_profile_verify(run: Run, tmp_path: Path, command: list[str]) -> None:
    job = _job_file(tmp_path, JobConfig(
        profile=ClusterProfile(flavour="livy", url="https://127.0.0.1:1", verify="/no/such/ca.pem"),
        spec=BatchSpec(file="/x.py")))
    err = one_line_usage_error(*run(*command, "--config", job))
    assert "profile.verify" in err and "/no/such/ca.pem" in err


def test_deeply_nested_config_is_one_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"spec": {"args": ' + "[" * 200_000 + "]" * 200_000 + "}}")
    err = one_line_usage_error(*run("list", "--config", str(path)))
    assert "nested too deeply" in err


def test_args_that_are_lists_are_refused_not_sent(run: Run, tmp_path: Path,
                                                 plain_server: Callable[..., PlainServer]) -> None:
    server = plain_server(201, "application/json", '{"id": 0, "state": "starting"}')
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"profile": {"flavour": "livy", "url": server.url},
                                "spec": {"file": "/x.py", "args": ["10", ["a", "b"], {"k": 1}]}}))
    err = one_line_usage_error(*run("submit", "--config", str(path)))
    assert "spec.args[1]" in err and "spec.args[2]" in err and "not a list" in err
