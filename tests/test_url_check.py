"""``profile.url``'s check (``validators._check_url``): one line, http(s) with a host, no query or
fragment, a port 1-65535, no credentials; the message never repeats the URL (it may hold a
password)."""

from __future__ import annotations

import pytest

from hdiaks_widgets.config.validators import _check_url, _url_problem
from hdiaks_widgets.errors import ConfigProblem

CANARY = "canary-pw-5c1e9a"  # noqa: S105 - a test value that must never be echoed


@pytest.mark.parametrize(
    ("url", "says"),
    [("http://127.0.0.1:9\n", "must be one line"), ("http://127.0.0.1:9\r", "must be one line"),
     ("\thttp://127.0.0.1:9", "must be one line"), ("http://127.0.0.1:9\u2028", "must be one line"),
     ("http://local host:1", "must not contain spaces"), ("http://127.0.0.1:9 ", "must not contain spaces"),
     ("http://localhost:9/p/livy?x=1", "must not have a query (?...) or a fragment (#...)"),
     ("http://localhost:9/p/livy#frag", "must not have a query (?...) or a fragment"),
     ("http://localhost:9?", "must not have a query"),
     ("http://127.0.0.1:0", "has the port 0; a port is a number 1-65535"),
     ("http://[::1]:0", "has the port 0"), ("http://127.0.0.1:65536", "has the port 65536"),
     ("http://h:" + "9" * 5000, "has the port of 5000 digits"), ("http://h:abc", "has a port that is not a number"),
     (f"http://u:{CANARY}@127.0.0.1:9", "credentials do not belong in the URL: set profile.username and keep the "
                                        "password in the secret store"),
     ("http://u@127.0.0.1:9", "credentials do not belong in the URL"),
     (f"http://u:{CANARY}@[::1", "credentials do not belong in the URL"),
     ("127.0.0.1:8998", "must be the Livy server's URL"), ("ftp://h", "must be the Livy server's URL"),
     ("http://[::1", "must be the Livy server's URL"), ("http://", "must be the Livy server's URL"),
     ("", "must be the Livy server's URL"), (None, "must be the Livy server's URL")],
    ids=["newline", "carriage-return", "tab", "line-separator", "space", "trailing-space", "query", "fragment",
         "empty-query", "port-0", "ipv6-port-0", "port-65536", "port-5000-digits", "port-word", "password",
         "username", "password-broken-host", "no-scheme", "ftp", "broken-ipv6", "no-host", "empty", "none"],
)
def test_check_url_names_the_problem_and_the_fix(url: str | None, says: str) -> None:
    problems: list[ConfigProblem] = []
    _check_url(url, "profile.url", problems)
    assert len(problems) == 1 and problems[0].field == "profile.url"
    assert says in problems[0].message and problems[0].message.endswith("e.g. http://127.0.0.1:8998")
    assert CANARY not in problems[0].message and "\n" not in problems[0].message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8998", "https://livy.example.com", "http://h:8998/livy/",
                                 "http://[::1]:8998", "https://h.example.com:443/p/livy", "http://localhost:1",
                                 "http://localhost:65535"])
def test_url_problem_accepts_a_server_url_with_or_without_a_path(url: str) -> None:
    assert _url_problem(url) is None
