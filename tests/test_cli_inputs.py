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
