"""One exception family for the whole toolkit.

Everything the package raises derives from :class:`HdiaksError`. Exceptions carry fields
(batch id, HTTP status, trimmed body) so callers never parse messages. Messages never contain
tokens or secrets: callers build them from ids, states and server text only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from hdiaks_widgets.models import Batch

__all__ = [
    "AuthError",
    "BatchFailed",
    "BatchNotFound",
    "CapacityFull",
    "ConfigError",
    "ConfigProblem",
    "DuplicateBatchName",
    "ExportError",
    "HdiaksError",
    "LivyError",
    "LivyHTTPError",
    "NotSupported",
    "SecretError",
    "trim_body",
]

_BODY_LIMIT = 500


def trim_body(text: str | bytes | None, limit: int = _BODY_LIMIT) -> str:
    """Shorten a server answer for an error message (bodies can be megabytes of HTML)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > limit:
        return text[: limit - 1] + "…"
    return text


class HdiaksError(Exception):
    """Root of every error raised by hdiaks_widgets."""


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid field: its dotted name and a sentence saying what to do."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ConfigError(HdiaksError, ValueError):
    """A configuration is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[ConfigProblem] | str, *, field: str | None = None):
        if isinstance(problems, str):
            problems = [ConfigProblem(field or "config", problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__(self._summary())

    def _summary(self) -> str:
        if not self.problems:
            return "invalid job configuration"
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems in the job configuration:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.problems)

    def for_field(self, field: str) -> list[str]:
        """Messages for one field (used by the form to show each message under its field)."""
        return [p.message for p in self.problems if p.field == field]


class AuthError(HdiaksError):
    """A token could not be obtained or was refused. Carries the identity provider's text."""

    def __init__(self, message: str, *, error: str | None = None, description: str | None = None):
        self.error = error
        self.description = description
        super().__init__(message)


class SecretError(HdiaksError):
    """A secret could not be read; names the secret looked up, never its value.

    ``missing``: the keys that are simply absent from the store (empty when the store failed
    otherwise, e.g. a vault that refused the token), so a caller can name them all at once.
    """

    def __init__(self, message: str, *, secret_name: str | None = None, missing: Iterable[str] = ()):
        self.secret_name = secret_name
        self.missing = tuple(missing)
        super().__init__(message)


class LivyError(HdiaksError):
    """Talking to Livy failed (network, protocol or server)."""


class LivyHTTPError(LivyError):
    """Livy answered with an HTTP error status.

    ``body``: the answer, trimmed; ``detail``: the server's own message read from it in any
    dialect's error shape (``dialects.error_message``), shown instead of the raw body.
    """

    def __init__(self, status: int, body: str | bytes | None, *, method: str = "", url: str = "",
                 detail: str | None = None):
        self.status = status
        self.body = trim_body(body)
        self.detail = trim_body(detail) if detail else None
        self.method = method
        self.url = url
        # Set for a refused request (401/403): what to do, and the scope a token must be for.
        self.hint: str | None = None
        self.expected_scope: str | None = None
        # Seconds the server asked to wait (its ``Retry-After``), when it said; a poller waits that long.
        self.retry_after: float | None = None
        where = f" for {method} {url}" if method else ""
        super().__init__(f"Livy returned HTTP {status}{where}: {self.said or '(empty body)'}")

    @property
    def said(self) -> str:
        """What the server said: its message when one was found, else the trimmed body."""
        return self.detail or self.body


class CapacityFull(LivyHTTPError):
    """Fabric refused the job because the workspace's capacity is full (HTTP 430,
    ``TooManyRequestsForCapacity``): nothing was created; retrying at once does not help."""

    def __init__(self, body: str | bytes | None = None, *, status: int = 430, method: str = "", url: str = "",
                 detail: str | None = None):
        super().__init__(status, body, method=method, url=url, detail=detail)
        what = ("so this job was not accepted and nothing was submitted" if method == "POST"
                else f"so {method or 'the request'} {url} was refused")  # fmt: skip
        self.args = (
            "the Fabric capacity is full: it runs as many Spark jobs or API calls as it can (HTTP "
            f"{status} TooManyRequestsForCapacity), {what}; retry later, cancel an active Spark job "
            "in the Monitoring hub, or use a bigger capacity.",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class NotSupported(LivyError):
    """The server's dialect has no such endpoint (Fabric and Synapse have no ``/log``): the
    request was not sent. ``dialect`` and ``feature`` name what is missing."""

    def __init__(self, message: str, *, dialect: str, feature: str):
        self.dialect = dialect
        self.feature = feature
        super().__init__(message)


class BatchNotFound(LivyHTTPError):
    """The batch id (or name) is unknown to Livy.

    ``seen``: whoever raises it saw this batch before (a :class:`~hdiaks_widgets.run.BatchRun`
    that polled it), so the record was purged after Livy's retention time (last seen in
    ``last_state``). Unseen, the id may simply be wrong: the message says to check it, not that
    the batch was purged.
    """

    def __init__(
        self,
        batch_id: int | str,
        body: str | bytes | None = None,
        *,
        seen: bool = False,
        last_state: str | None = None,
        **kw: str,
    ):
        self.batch_id = batch_id
        self.seen = seen
        self.last_state = last_state
        super().__init__(404, body, **kw)
        if seen:
            last = f" (last seen {last_state})" if last_state else ""
            why = f"it was purged after Livy's retention time{last}"
        else:
            why = (
                f"there is no batch {batch_id} on this server: check the id (hdiaks list; Livy keeps "
                "finished batches only for its retention time)"
            )
        said = f" Server said: {self.body}" if self.body else ""
        self.args = (f"Batch {batch_id} not found: {why}.{said}",)

    def __str__(self) -> str:
        return str(self.args[0])


class DuplicateBatchName(LivyHTTPError):
    """Livy refused a batch because a live or retained session already has that name."""

    def __init__(self, name: str, body: str | bytes | None = None, **kw: str):
        self.name = name
        super().__init__(400, body, **kw)
        self.args = (
            f"A batch named {name!r} already exists on the Livy server; choose another job name "
            f"or wait until the old one is purged. Server said: {self.body}",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class BatchFailed(HdiaksError):
    """A batch ended in a state other than success; carries the batch and its last log lines."""

    def __init__(self, batch: Batch, log_lines: Sequence[str] = ()):
        self.batch = batch
        self.log_lines = tuple(log_lines)
        tail = "\n".join(self.log_lines[-20:])
        msg = f"Batch {batch.id} ended in state {batch.state.value}"
        if tail:
            msg += f"; last log lines:\n{tail}"
        super().__init__(msg)


class ExportError(HdiaksError):
    """A DAG could not be rendered, validated or loaded back."""
