"""``spec.args`` given as one string where a list belongs ("args": "10 20"): refused, not sent as
one argument; the CLI's repeatable ``--arg`` (a list) is unaffected."""

from __future__ import annotations

import json

import pytest
import requests
from conftest import memory_cli
from livy_memory import MemoryLivy

from hdiaks_widgets.config import BatchSpec, JobConfig
from hdiaks_widgets.errors import ConfigError


@pytest.mark.parametrize(
    ("args", "example"),
    [("10 20", '["10", "20"]'), ('--in "a b" 3', '["--in", "a b", "3"]'), ("10", '["10"]'),
     ("", "[] for none"), ('"unclosed', '["\\"unclosed"]'), ("x " * 50, '["10", "20"]')],
    ids=["two-words", "quoted", "one-word", "empty", "unclosed-quote", "long"],
)
def test_spec_args_as_one_string_is_refused_with_the_list_it_meant(args: str, example: str) -> None:
    problems = BatchSpec(file="/a.py", args=args).problems()  # type: ignore[arg-type]
    assert [str(p) for p in problems] == [f"spec.args: must be a list of arguments, e.g. {example}"]


def test_job_file_with_args_as_a_string_is_refused_naming_spec_args() -> None:
    text = json.dumps({"profile": {"flavour": "livy", "url": "http://127.0.0.1:8998"},
                       "spec": {"file": "/a.py", "args": "10 20"}})
    with pytest.raises(ConfigError) as info:
        JobConfig.from_json(text).validate()
    assert info.value.fields == ("spec.args",)


@pytest.mark.parametrize("args", [["10", "20"], ("10 20",), [10, True], 10, None])
def test_spec_args_as_a_list_or_a_lone_number_stay_valid(args: object) -> None:
    assert BatchSpec(file="/a.py", args=args).problems() == []  # type: ignore[arg-type]


def test_cli_arg_with_a_space_is_one_argument(capsys: pytest.CaptureFixture[str]) -> None:
    livy = MemoryLivy()
    bodies: list[dict[str, object]] = []

    def keep_body(request: requests.PreparedRequest) -> None:
        if request.method == "POST":
            bodies.append(json.loads(request.body or b"{}"))

    livy.before.append(keep_body)  # type: ignore[arg-type]
    code, _, err = memory_cli(livy, capsys, "submit", "--file", "/a.py", "--arg", "10 20", "--arg", "x")
    assert code == 0, err
    assert [b["args"] for b in bodies] == [["10 20", "x"]]
