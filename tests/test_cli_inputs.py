"""The ``hdiaks`` command's own surface: --version, --help, option help, refused inputs and
the diagnoses of wrong servers. In-process (``cli.main``), talking only to 127.0.0.1."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import pytest

import hdiaks_widgets
from hdiaks_widgets import cli, profiles
from hdiaks_widgets.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


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
