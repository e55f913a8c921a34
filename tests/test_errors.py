"""Unit tests of hdiaks_widgets.errors: messages carry ids, status and trimmed server text."""

from __future__ import annotations

import pytest

from hdiaks_widgets.errors import (
    AuthError,
    BatchFailed,
    BatchNotFound,
    ConfigError,
    ConfigProblem,
    DuplicateBatchName,
    ExportError,
    HdiaksError,
    LivyError,
    LivyHTTPError,
    SecretError,
    trim_body,
)
from hdiaks_widgets.models import Batch, BatchState


@pytest.mark.parametrize(
    "exc_type",
    [ConfigError, AuthError, SecretError, LivyError, LivyHTTPError, BatchNotFound, DuplicateBatchName,
     BatchFailed, ExportError],
)
def test_errors_derive_from_hdiaks_error(exc_type: type[Exception]) -> None:
    assert issubclass(exc_type, HdiaksError)


def test_trim_body_collapses_whitespace() -> None:
    assert trim_body("<html>\n  <body>  oops </body>\n</html>") == "<html> <body> oops </body> </html>"


def test_trim_body_cuts_long_text() -> None:
    text = trim_body("x" * 10_000)
    assert len(text) == 500 and text.endswith("…")


def test_trim_body_decodes_bytes_and_none() -> None:
    assert (trim_body(b"caf\xc3\xa9 \xff"), trim_body(None)) == ("café \ufffd", "")


def test_livy_http_error_message_has_status_request_and_trimmed_body() -> None:
    exc = LivyHTTPError(500, "java.lang.NullPointerException\n" + "at x\n" * 500, method="POST", url="/batches")
    assert (exc.status, exc.method, exc.url) == (500, "POST", "/batches")
    assert str(exc).startswith("Livy returned HTTP 500 for POST /batches: java.lang.NullPointerException at x")
    assert len(exc.body) == 500


def test_livy_http_error_empty_body_says_so() -> None:
    assert str(LivyHTTPError(502, "")) == "Livy returned HTTP 502: (empty body)"


def test_batch_not_found_message_names_batch_and_retention() -> None:
    exc = BatchNotFound(42, '{"msg":"Session \'42\' not found."}', method="GET", url="/batches/42")
    assert (exc.batch_id, exc.status) == (42, 404)
    assert "Batch 42 not found" in str(exc)
    assert "retention" in str(exc)
    assert "Session '42' not found." in str(exc)


def test_duplicate_batch_name_message_names_batch_and_fix() -> None:
    body = '{"msg":"Rejected, Reason: Duplicate session name: Some(spark-pi) for session 3"}'
    exc = DuplicateBatchName("spark-pi", body, method="POST", url="/batches")
    assert (exc.name, exc.status) == ("spark-pi", 400)
    assert "'spark-pi' already exists" in str(exc)
    assert "choose another job name" in str(exc)
    assert "Duplicate session name" in str(exc)


def test_duplicate_batch_name_trims_body() -> None:
    exc = DuplicateBatchName("job", "y" * 5000)
    assert len(exc.body) == 500
    assert len(str(exc)) < 700


def test_config_error_single_problem_message() -> None:
    exc = ConfigError([ConfigProblem("spec.driver_memory", "use 512m or 4g")])
    assert str(exc) == "spec.driver_memory: use 512m or 4g"


def test_config_error_summary_lists_every_problem() -> None:
    exc = ConfigError(
        [
            ConfigProblem("profile.fqdn", "paste only the host name"),
            ConfigProblem("spec.driver_cores", "must be 1 or more, got 0"),
            ConfigProblem("spec.conf", "has an empty key"),
        ]
    )
    assert str(exc).splitlines() == [
        "3 problems in the job configuration:",
        "  - profile.fqdn: paste only the host name",
        "  - spec.driver_cores: must be 1 or more, got 0",
        "  - spec.conf: has an empty key",
    ]
    assert exc.fields == ("profile.fqdn", "spec.driver_cores", "spec.conf")


def test_config_error_for_field_returns_its_messages() -> None:
    exc = ConfigError([ConfigProblem("a", "one"), ConfigProblem("b", "two"), ConfigProblem("a", "three")])
    assert (exc.for_field("a"), exc.for_field("c")) == (["one", "three"], [])


def test_config_error_from_text_uses_field() -> None:
    exc = ConfigError("is not valid JSON", field="config")
    assert exc.problems == (ConfigProblem("config", "is not valid JSON"),)


def test_config_error_is_value_error() -> None:
    assert isinstance(ConfigError("x"), ValueError)


def test_config_error_without_problems_has_message() -> None:
    assert str(ConfigError([])) == "invalid job configuration"


def test_batch_failed_carries_batch_and_last_lines() -> None:
    batch = Batch(id=9, state=BatchState.DEAD)
    exc = BatchFailed(batch, [f"line {i}" for i in range(30)])
    assert exc.batch is batch and len(exc.log_lines) == 30
    message = str(exc)
    assert message.startswith("Batch 9 ended in state dead; last log lines:")
    assert "line 29" in message and "line 9\n" not in message


def test_auth_error_carries_provider_fields() -> None:
    exc = AuthError("token refused", error="invalid_client", description="AADSTS7000215")
    assert (exc.error, exc.description, str(exc)) == ("invalid_client", "AADSTS7000215", "token refused")


def test_secret_error_names_secret() -> None:
    assert SecretError("missing", secret_name="hdinsight-aks-variables-api-secret").secret_name.endswith("api-secret")
