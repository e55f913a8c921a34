"""A thin, typed client for the Apache Livy REST API (batches and interactive sessions).

One method per endpoint (``docs/rest-api.md`` of apache/incubator-livy, PROTOCOL.md §2); each
returns a model from :mod:`hdiaks_widgets.models` or raises an :class:`HdiaksError`. Polling,
back-off between polls and UI live above this module (``monitor``, ``widgets``).

Dialects (PROTOCOL.md §8): the client speaks the one it is given (``dialect=``, a
:class:`~hdiaks_widgets.dialects.Dialect` or a flavour name; default Apache Livy) and asks that
table, never a flavour name, what differs: the submit status, refused and required body fields,
how the list is asked for, answered and paged, whether there is a ``/state`` or ``/log``
endpoint, where the log is (:meth:`LivyClient.log_location`), the error body shape, and which
answers mean "throttled" (Fabric's 430 is :class:`~hdiaks_widgets.errors.CapacityFull`).
For Apache Livy, ``GET /version`` (asked once, when first needed) says whether names can be
looked up in ``/batches/{name}`` (0.7+).

Retries: idempotent requests (GET, DELETE) are retried by urllib3's ``Retry`` on dropped
connections, 429 and 502/503/504 with jittered exponential back-off, honouring ``Retry-After``,
within a per-call budget (``RetryPolicy.budget``, default the read timeout): no retry is started
that would begin after the budget, so a hung server is given up after one read timeout, not five.
What retrying cannot fix is not retried: connection refused, a name that does not resolve, a
connect timeout. Messages say how many attempts were made and how long the call took in all.
``POST /batches`` is never blindly retried: an explicit 429/503 refusal is retried (the server
said it did nothing), and after an ambiguous failure (the connection dropped after the request
was sent) the client looks the batch up by its name, so a job is never submitted twice.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError, ResponseError
from urllib3.util.retry import Retry

from hdiaks_widgets import dialects, wire
from hdiaks_widgets.config import BatchSpec, ClusterProfile
from hdiaks_widgets.dialects import Dialect, LogLocation
from hdiaks_widgets.errors import (
    BatchNotFound,
    CapacityFull,
    ConfigError,
    ConfigProblem,
    DuplicateBatchName,
    LivyError,
    LivyHTTPError,
    NotSupported,
    trim_body,
)
from hdiaks_widgets.models import (
    Batch,
    BatchList,
    BatchState,
    ListedBatches,
    LogPage,
    Session,
    SessionList,
    Statement,
)

__all__ = ["LivyClient", "LogLocation", "RetryPolicy"]

log = logging.getLogger(__name__)

# Set by hdiaks_widgets.connect (the level-2 composition root) at package import.
_profile_connector: Callable[..., LivyClient] | None = None


def register_profile_connector(connector: Callable[..., LivyClient]) -> None:
    """Install what ``LivyClient.from_profile`` calls (``hdiaks_widgets.connect.from_profile``)."""
    global _profile_connector
    _profile_connector = connector

USER_AGENT = "hdiaks-widgets/0.1"
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_POST_REFUSAL_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry. ``total=0`` turns retries off (useful for fault tests).

    ``budget``: seconds after a call started past which no retry begins (a retry whose back-off
    or ``Retry-After`` wait would end later is not made); ``None`` means the client's read
    timeout. A call therefore takes at most about the budget plus one attempt's timeouts, and a
    server that never answers is given up after one read timeout.
    """

    total: int = 4
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    respect_retry_after: bool = True
    post_refusal_retries: int = 3
    budget: float | None = None

    def urllib3_retry(self, extra_statuses: frozenset[int] = frozenset()) -> Retry:
        """``extra_statuses``: a dialect's other "throttled" answers (Fabric's 430)."""
        return _BoundedRetry(
            total=self.total,
            connect=self.total,
            read=self.total,
            status=self.total,
            other=0,
            # Only idempotent methods are retried after a read error or an error status.
            allowed_methods=frozenset({"GET", "HEAD", "DELETE", "OPTIONS"}),
            status_forcelist=_RETRY_STATUSES | extra_statuses,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_jitter,
            respect_retry_after_header=self.respect_retry_after,
            raise_on_status=False,
            raise_on_redirect=False,
        )


@dataclass
class _Call:
    """One client call as its retry policy sees it (per thread, through ``_CALL``)."""

    started: float
    budget: float
    read_timeout: float
    attempts: int = 0  # attempts that failed or were answered with a status worth a retry
    stopped: str | None = None  # why no further attempt was made ("budget", "refused", "dns", ...)


# Set by LivyClient around each request, read by _BoundedRetry: urllib3 builds no per-call retry
# state we could hang a start time on, and the adapter (with its Retry) is shared by every call.
_CALL: ContextVar[_Call | None] = ContextVar("hdiaks_livy_call", default=None)


class _BoundedRetry(Retry):
    """urllib3's ``Retry`` within the call's time budget, and never for what waiting cannot fix."""

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        call = _CALL.get()
        if call is not None:
            call.attempts += 1
        final = _unretryable(error) if error is not None else None
        if final is not None:
            if call is not None:
                call.stopped = final
            raise MaxRetryError(_pool, url, error) from error
        new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if call is not None:
            spent = time.monotonic() - call.started
            if isinstance(error, ReadTimeoutError):
                spent = max(spent, call.read_timeout)  # the socket timer may fire a hair early
            wait = None
            if response is not None and self.respect_retry_after_header:
                wait = new_retry.get_retry_after(response)
            if wait is None:
                wait = new_retry.get_backoff_time()
            if spent + wait >= call.budget:
                call.stopped = "budget"
                reason = error or ResponseError(f"HTTP {getattr(response, 'status', '?')}")
                raise MaxRetryError(_pool, url, reason) from reason
        return new_retry


def _unretryable(error: BaseException) -> str | None:
    """Why an attempt's error is final: nothing was sent, and a second try gives the same answer."""
    chain = list(_chain(error))
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "dns"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused"
    if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
        return "connect timeout"  # TCP already resent its SYNs within the connect timeout
    return None


def _retry_after_seconds(response: requests.Response, fallback: float) -> float:
    value = response.headers.get("Retry-After")
    if value is None:
        return fallback
    try:
        return max(0.0, float(value))
    except ValueError:
        return fallback


class LivyClient:
    """Client for one Livy server root, e.g. ``https://{fqdn}/p/livy`` or ``http://127.0.0.1:8998``.

    ``dialect``: what the server speaks (a :class:`~hdiaks_widgets.dialects.Dialect` or a
    flavour name such as ``"fabric"``; default Apache Livy). ``base_url`` is then the dialect's
    Livy root, e.g. Fabric's ``.../v1/workspaces/{ws}/lakehouses/{lh}/livyApi/versions/{v}``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        dialect: Dialect | str | None = None,
        session: requests.Session | None = None,
        auth: requests.auth.AuthBase | None = None,
        verify: bool | str = True,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        requested_by: str = "hdiaks-widgets",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if dialect is None:
            dialect = dialects.DIALECTS["livy"]
        elif isinstance(dialect, str):
            try:
                dialect = dialects.dialect_of(dialect)
            except KeyError:
                known = ", ".join(sorted(dialects.DIALECTS))
                raise ConfigError(f"unknown Livy dialect {dialect!r}; use one of {known}", field="dialect") from None
        self.dialect: Dialect = dialect
        self._own_session = session is None
        self._retry = retry or RetryPolicy()
        if session is None:
            session = requests.Session()
            extra = dialect.throttle_statuses - _RETRY_STATUSES
            adapter = HTTPAdapter(max_retries=self._retry.urllib3_retry(frozenset(extra)))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        # The caller's session is the caller's (STYLE.md 18): no adapters mounted on it and its
        # headers untouched; ours go with each request. A session the caller passes is also the
        # transport seam: tests mount a small in-memory adapter on it.
        self._session = session
        self._headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if dialect.csrf_header:
            # Livy's CSRF filter rejects non-GET requests without it when enabled (§2.6).
            self._headers["X-Requested-By"] = requested_by
        # Our own session carries our headers itself: merging them into every request was a
        # measurable share of a state read's client CPU (docs/benchmarks.md, S1). The same
        # headers go on the wire either way.
        self._request_headers: dict[str, str] | None = self._headers
        if self._own_session:
            session.headers.update(self._headers)
            self._request_headers = None
        self._auth = auth
        # Passed per request: requests lets REQUESTS_CA_BUNDLE override Session.verify, but not
        # an explicit per-request CA path (PROTOCOL.md §4 gotcha).
        self._verify = verify
        self._timeout = timeout
        self._budget = self._retry.budget if self._retry.budget is not None else float(timeout[1])
        self._read_timeout = float(timeout[1])
        self._sleep = sleep
        self._version: tuple[int, int, int] | None = None
        self._version_known = False

    @classmethod
    def from_profile(cls, profile: ClusterProfile, **options: Any) -> LivyClient:
        """A client for a profile with its auth and secrets resolved.

        The wiring lives in the composition root, :func:`hdiaks_widgets.connect.from_profile`
        (options: ``secret_store``, ``session``, ``retry``, ``environ``, ``on_device_code``);
        it is registered when the package is imported, so this module never imports auth.
        """
        if _profile_connector is None:  # pragma: no cover - the package __init__ registers it
            raise LivyError("hdiaks_widgets.connect is not loaded; import hdiaks_widgets first")
        return _profile_connector(profile, client_class=cls, **options)

    def __repr__(self) -> str:
        if self.dialect.name == "livy":
            return f"LivyClient({self.base_url!r})"
        return f"LivyClient({self.base_url!r}, dialect={self.dialect.name!r})"

    @property
    def auth(self) -> requests.auth.AuthBase | None:
        """The auth plug-in in use (e.g. a device code sign-in the UI has to drive)."""
        return self._auth

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> LivyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------

    @contextmanager
    def _call(self) -> Iterator[_Call]:
        call = _Call(started=time.monotonic(), budget=self._budget, read_timeout=self._read_timeout)
        token = _CALL.set(call)
        try:
            yield call
        finally:
            _CALL.reset(token)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> requests.Response:
        # The hot path of every call (S1 in docs/benchmarks.md): no context manager, and the
        # debug line's arguments are only computed when it is logged.
        call = _Call(started=time.monotonic(), budget=self._budget, read_timeout=self._read_timeout)
        token = _CALL.set(call)
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers=self._request_headers,
                auth=self._auth,
                verify=self._verify,
                timeout=self._timeout,
            )
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(exc, method, path, call) from exc
        finally:
            _CALL.reset(token)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("livy %s %s -> %s in %.0f ms", method, path, response.status_code,
                      (time.monotonic() - call.started) * 1000)  # fmt: skip
        return response

    def _unreachable(self, exc: requests.exceptions.RequestException, method: str, path: str,
                     call: _Call) -> LivyError:
        """A failed request as one sentence: what happened, what to check, what was tried."""
        where = f"{self.base_url} ({method} {path})"
        tried = _tried(call)
        if isinstance(exc, requests.exceptions.SSLError):
            if _is_plain_http_answer(exc):
                return LivyError(
                    f"TLS handshake with {self.base_url} failed: the server does not speak TLS: "
                    f"use {_as_http(self.base_url)} ({method} {path}: {_reason(exc)})"
                )
            return LivyError(
                f"TLS verification failed for {self.base_url}: check the profile's 'verify' "
                f"setting (true, or the path of the CA bundle) ({_reason(exc)})"
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout) or call.stopped == "connect timeout":
            return LivyError(
                f"Livy at {self.base_url} did not accept a connection for {method} {path} within the "
                f"connect timeout of {self._timeout[0]:g} s{tried}; a connect timeout is not retried: "
                "check the address, the port and any firewall or VPN in between"
            )
        if isinstance(exc, requests.exceptions.Timeout) or _is_read_timeout(exc):
            why = f" (no retry begins after the call's {call.budget:g} s budget)" if call.stopped == "budget" else ""
            return LivyError(
                f"Livy at {self.base_url} did not answer {method} {path} within the read timeout "
                f"of {self._timeout[1]:g} s{tried}{why}"
            )
        if call.stopped == "dns" or _is_dns_failure(exc):
            host = urlsplit(self.base_url).hostname or self.base_url
            return LivyError(
                f"Cannot reach Livy at {where}: the host name {host!r} does not resolve (DNS lookup "
                "failed, not retried): check the profile's url or fqdn for a typo, and your network or VPN"
            )
        if _is_refused(exc):
            return LivyError(
                f"Cannot reach Livy at {where}: connection refused (not retried); {REFUSED_HINT}"
            )
        return LivyError(f"Cannot reach Livy at {where}: {_reason(exc)}{tried}")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        not_found: int | str | None = None,
    ) -> Any:
        response = self._send(method, path, params=params, json=json)
        return self._decode(response, method, path, not_found=not_found)

    def _decode(
        self, response: requests.Response, method: str, path: str, *, not_found: int | str | None = None
    ) -> Any:
        status = response.status_code
        if status == 404 and not _is_json(response):
            # Livy's own 404s are JSON ({"msg": "Session '7' not found."}); an HTML or empty one
            # comes from something else (a wrong path, a gateway, another server).
            raise self._not_livy(response, method, path)
        if status >= 400:
            raise self._http_error(response, method, path, not_found=not_found)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise self._not_livy(response, method, path) from exc

    def _http_error(
        self, response: requests.Response, method: str, path: str, *, not_found: int | str | None = None
    ) -> LivyHTTPError:
        """An error answer as an exception, with the server's message in any dialect's shape."""
        status = response.status_code
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        detail = dialects.error_message(data)
        if status == 404 and not_found is not None:
            return BatchNotFound(not_found, detail or response.text, method=method, url=path)
        if status in (401, 403):
            return _refused(status, response.text, method, path, detail=detail, scope=self.expected_scope)
        if dialects.throttle_kind(status, data) == "capacity":
            error: LivyHTTPError = CapacityFull(response.text, status=status, method=method, url=path, detail=detail)
        else:
            error = LivyHTTPError(status, response.text, method=method, url=path, detail=detail)
        if "Retry-After" in response.headers:
            error.retry_after = _retry_after_seconds(response, 0.0)
        return error

    @property
    def expected_scope(self) -> str | None:
        """The Entra scope this service takes tokens for, when known (``dialects.token_scope``)."""
        return dialects.token_scope(self.dialect, self.base_url)

    def _not_livy(self, response: requests.Response, method: str, path: str) -> LivyError:
        """The server answered, but not as Livy does: say so, and what it did send."""
        kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
        return LivyError(
            f"the server at {self.base_url} is not answering like Livy ({method} {path} got "
            f"HTTP {response.status_code}, {kind}{_gist(response.text)}): check the URL and its "
            "path (the profile's url, or fqdn and livy_path)"
        )

    # -- batches ---------------------------------------------------------------------------

    def _check_body(self, spec: BatchSpec) -> None:
        """Refuse, before any request, what the dialect requires or refuses (naming the field)."""
        dialect = self.dialect
        problems: list[ConfigProblem] = []
        for attr in sorted(dialect.required_fields):
            if getattr(spec, attr, None) in (None, ""):
                problems.append(ConfigProblem(
                    f"spec.{attr}", f"{dialect.label} requires a batch {attr}; set spec.{attr}"))
        for attr in sorted(dialect.refused_fields):
            value = getattr(spec, attr, None)
            if value is not None and value != "" and value != () and value != []:
                problems.append(ConfigProblem(
                    f"spec.{attr}", f"{dialect.label} does not take {attr} (its batch API has no "
                    f"{wire.LIVY_FIELDS.get(attr, attr)!r}); remove it"))  # fmt: skip
        if problems:
            raise ConfigError(problems)

    def _body(self, spec: BatchSpec) -> dict[str, Any]:
        body = spec.to_livy_body()
        if self.dialect.lakehouse_conf:
            lakehouse = dialects.fabric_lakehouse(self.base_url)
            conf = dict(body.get("conf") or {})
            if lakehouse is not None and "spark.targetLakehouse" not in conf:
                # Fabric runs the job against this lakehouse (PROTOCOL.md §8.2): the one in the URL.
                conf["spark.targetLakehouse"] = lakehouse
                body["conf"] = conf
        return body

    def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch:
        """``POST /batches``. Never submits twice, and never adopts a batch it did not create.

        A spec without a name gets a unique one (``hdiaks-<hex>``), except where the dialect
        requires the caller's (Synapse: :class:`ConfigError` naming ``spec.name``, nothing sent).
        A name the caller chose is looked up before the first POST: if a batch by that name exists
        (a retained older run, or another user's), :class:`DuplicateBatchName` is raised and
        nothing is posted. So when the connection drops after the POST was sent, a batch found by
        that name afterwards can only be the one this call created, and it is returned instead of
        posting again. ``name_checked=True``: the caller has just looked the name up itself
        (``BatchRun.submit`` with ``reattach=True``), so the lookup is not repeated.

        An explicit refusal (429/503, the server did nothing) is sent again after its
        ``Retry-After`` while that stays within the call's budget; Fabric's full capacity (430)
        raises :class:`CapacityFull` at once: nothing was created, and seconds do not free it.
        """
        spec.validate()
        self._check_body(spec)
        if spec.name is None:
            spec = replace(spec, name=wire.unique_batch_name())
        elif not name_checked:
            existing = self.find_batch(spec.name)
            if existing is not None:
                raise DuplicateBatchName(
                    spec.name,
                    f"batch {existing.id} ({existing.state.value}) already has this name",
                    method="POST", url="/batches",
                )
        name = spec.name
        assert name is not None
        body = self._body(spec)
        refusals = 0
        resent_after_ambiguity = False
        started = time.monotonic()
        while True:
            try:
                response = self._send("POST", "/batches", json=body)
            except LivyError as exc:
                if not _maybe_sent(exc):
                    raise
                # Ambiguous: the server may have created the batch before the connection broke.
                # No batch had this name before the first POST, so one found now is ours.
                log.warning("POST /batches for %r failed ambiguously; looking it up by name", name)
                found = self.find_batch(name)
                if found is not None:
                    return found
                if resent_after_ambiguity:
                    raise
                resent_after_ambiguity = True
                continue
            status = response.status_code
            if status in _POST_REFUSAL_STATUSES and refusals < self._retry.post_refusal_retries:
                # An explicit refusal: the server did nothing, so sending again is safe, once the
                # wait it asks for (or our back-off) still ends within the call's budget.
                delay = _retry_after_seconds(response, self._retry.backoff_factor * 2 ** (refusals + 1))
                if time.monotonic() - started + delay < self._budget:
                    refusals += 1
                    self._sleep(min(delay, self._retry.backoff_max))
                    continue
                log.info("POST /batches refused (HTTP %s); a retry after %.1f s would pass the %.0f s budget",
                         status, delay, self._budget)
            if status == 400 and "Duplicate session name" in response.text:
                if resent_after_ambiguity:
                    # Our first, ambiguous attempt did land after all.
                    found = self.find_batch(name)
                    if found is not None:
                        return found
                raise DuplicateBatchName(name, response.text, method="POST", url="/batches")
            if status in _POST_REFUSAL_STATUSES and not resent_after_ambiguity:
                try:
                    self._decode(response, "POST", "/batches")
                except LivyHTTPError as exc:
                    tries = refusals + 1
                    exc.args = (f"{exc.args[0]} — refused {tries} time{'s' * (tries > 1)}, so no batch was "
                                "created; submitting again later is safe",)  # fmt: skip
                    raise
            data = self._decode(response, "POST", "/batches")
            if status not in self.dialect.submit_status:
                log.debug("POST /batches answered %s; %s answers %s", status, self.dialect.name,
                          "/".join(map(str, sorted(self.dialect.submit_status))))
            batch = Batch.from_json(data)
            log.info("submitted batch %s (%s)", batch.id, batch.name)
            return batch

    def _is_own_id(self, value: int | str) -> bool:
        """Whether ``value`` has the form of this dialect's ids (else it can only be a name)."""
        if self.dialect.id_kind == "uuid":
            return dialects.is_guid(str(value))
        return isinstance(value, int) or str(value).isdigit()

    def get_batch(self, batch_id: int | str) -> Batch:
        """``GET /batches/{id}``; a non-numeric ``batch_id`` is looked up as a name (Apache Livy
        0.7+ does it itself, LIVY-41; in Fabric and Synapse the list is searched)."""
        if self.dialect.name_lookup == "list" and not self._is_own_id(batch_id):
            _batch(batch_id)  # refuse an unsafe value as a path would
            found = self._scan_for(str(batch_id))
            if found is None:
                raise BatchNotFound(batch_id, f"no batch named {str(batch_id)!r} in the list", method="GET",
                                    url="/batches")  # fmt: skip
            return self._full(found)
        params = dict(self.dialect.get_params) or None
        return Batch.from_json(self._request("GET", _batch(batch_id), params=params, not_found=batch_id))

    def get_batch_state(self, batch_id: int | str) -> BatchState:
        """The state: ``GET /batches/{id}/state``, or the batch object where there is no ``/state``."""
        if not self.dialect.has_state_endpoint:
            return self.get_batch(batch_id).state
        data = self._request("GET", _batch(batch_id, "state"), not_found=batch_id)
        return BatchState.parse(dialects.livy_state(data.get("state", "")))

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        """One page of the driver log. ``start=None`` asks for the tail, as Livy does.

        Raises :class:`NotSupported` without sending anything where the dialect has no ``/log``
        (Fabric, Synapse): their logs are read at :meth:`log_location`.
        """
        if not self.dialect.has_log_endpoint:
            raise NotSupported(
                f"{self.dialect.label} has no /batches/{{id}}/log endpoint: its logs are read from "
                f"{self.dialect.log_source} (LivyClient.log_location(batch))",
                dialect=self.dialect.name, feature="log",
            )  # fmt: skip
        params: dict[str, int] = {"size": size}
        if start is not None:
            params["from"] = start
        data = self._request("GET", _batch(batch_id, "log"), params=params, not_found=batch_id)
        return LogPage.from_json(data)

    def log_location(self, batch: Batch) -> LogLocation:
        """Where ``batch``'s log is read, derived from this client's base URL: the dialect's log
        source, the service's origin, workspace and lakehouse (Fabric) or pool (Synapse), and the
        URL of its log endpoint once the batch has an application id (PROTOCOL.md §8.2, §8.3)."""
        return dialects.log_location(self.dialect, self.base_url, batch.id, batch.app_id)

    def iter_log(self, batch_id: int | str, *, start: int = 0, page_size: int = 10_000) -> Iterator[LogPage]:
        """Pages from ``start`` to the current end of the log, each line fetched once.

        Large pages keep the request count low (a 10,000-line driver log is one or two
        requests, see docs/benchmarks.md) while bounding each answer's size."""
        offset = start
        while True:
            page = self.get_log(batch_id, start=offset, size=page_size)
            if page.lines:
                yield page
            offset = page.end
            if not page.lines or offset >= page.total:
                return

    def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList:
        """``size`` batches from ``start``, in the dialect's request and answer (Fabric's
        ``$top``/``$skip`` into ``items``); pages of at most the dialect's limit (Synapse 20,
        Fabric 100) are asked for one after another until ``size`` are read or the list ends."""
        dialect = self.dialect
        items: list[Any] = []
        offset = start
        total = 0
        while True:
            want = size - len(items)
            data = self._request("GET", "/batches", params=dialect.list_params(offset, want))
            if not isinstance(data, Mapping):
                raise LivyError(f"Livy sent a {type(data).__name__} where a batch list object was expected")
            try:
                total, page_items = dialect.parse_list(data)
            except (TypeError, ValueError) as exc:
                raise LivyError(f"Livy's batch list is malformed: {exc}") from exc
            page = list(page_items)
            items.extend(page)
            offset += len(page)
            # A page shorter than asked for, before the end: the server's own page limit.
            if not page or len(items) >= size or offset >= total:
                break
        # Items are built into Batch models as they are read (ListedBatches): a table of 1,000
        # needs none of them (S2 in docs/benchmarks.md); a malformed item still raises here.
        return BatchList(start=start, total=total,
                         batches=ListedBatches(items[:size], state_key=dialect.list_state_key))  # fmt: skip

    def iter_batches(self, *, page_size: int = 1000) -> Iterator[Batch]:
        """Every batch, ``page_size`` per request (Apache Livy takes any size: 1,000 batches are
        one request, not ten, S2 in docs/benchmarks.md; a dialect's page limit still applies)."""
        start = 0
        while True:
            page = self.list_batches(start=start, size=page_size)
            yield from page.batches
            start += len(page.batches)
            if not page.batches or start >= page.total:
                return

    # -- what the server is ----------------------------------------------------------------

    def server_version(self) -> tuple[int, int, int] | None:
        """Apache Livy's version from ``GET /version`` (asked once, then remembered), or ``None``
        where the dialect has no such endpoint or the server does not answer it (404: not Apache
        Livy, or older than its ``VersionServlet``)."""
        if self._version_known or not self.dialect.is_apache_livy:
            return self._version
        response = self._send("GET", "/version")
        if response.status_code == 404:
            log.debug("GET /version: 404 from %s: not Apache Livy, or an older one; names are looked up the "
                      "old way (by id, then the list)", self.base_url)  # fmt: skip
            self._version, self._version_known = None, True
            return None
        if response.status_code in (401, 403):
            raise self._http_error(response, "GET", "/version")
        try:
            data = response.json() if response.status_code < 400 else None
        except ValueError:
            data = None
        version = dialects.livy_version(data.get("version")) if isinstance(data, Mapping) else None
        if version is None:
            log.debug("GET /version: HTTP %s without a version from %s; treating it as unknown",
                      response.status_code, self.base_url)
        else:
            log.debug("GET /version: Apache Livy %s at %s", ".".join(map(str, version)), self.base_url)
        self._version, self._version_known = version, True
        return version

    def _name_lookup(self) -> str:
        """``"path"`` (``/batches/{name}``, final 404), ``"try"`` (path, list on 400/500) or ``"list"``."""
        mode = self.dialect.name_lookup
        if mode == "version":
            version = self.server_version()
            if version is None:
                return "try"
            return "path" if version[:2] >= dialects.NAME_LOOKUP_SINCE else "list"
        return mode

    def find_batch(self, name: str) -> Batch | None:
        """The batch with this name, or ``None``.

        Apache Livy 0.7+ (its ``GET /version``) looks a non-numeric id up as a name (LIVY-41) and
        answers 404 when there is none, which is final; an older one, and Fabric and Synapse,
        are searched through the list. Where the version is unknown, the name is tried as an id
        and the list scanned when the server cannot parse it (400/500).
        """
        mode = self._name_lookup()
        if mode in ("path", "try") and not name.isdigit():
            try:
                batch = self.get_batch(name)
            except BatchNotFound:
                return None
            except LivyHTTPError:
                if mode == "path":
                    raise
                batch = None  # older Livy: non-numeric ids are a 400/500, fall back to the list
            if batch is not None and batch.name == name:
                return batch
        found = self._scan_for(name)
        return self._full(found) if found is not None else None

    def _scan_for(self, name: str) -> Batch | None:
        for candidate in self.iter_batches(page_size=self.dialect.page_size(100)):
            if candidate.name == name:
                return candidate
        return None

    def _full(self, batch: Batch) -> Batch:
        """The batch object for a list item that is only a summary (Fabric's activities)."""
        if self.dialect.list_state_key == "state":
            return batch
        return self.get_batch(batch.id)

    def kill_batch(self, batch_id: int | str) -> None:
        """``DELETE /batches/{id}``: kills a running job, or forgets a finished one (Fabric and
        Synapse keep it as ``killed`` with ``result: Cancelled``)."""
        self._request("DELETE", _batch(batch_id), not_found=batch_id)
        log.info("killed batch %s", batch_id)

    # -- interactive sessions ----------------------------------------------------------------

    def create_session(
        self,
        kind: str | None = "pyspark",
        *,
        name: str | None = None,
        conf: Mapping[str, str] | None = None,
        driver_memory: str | None = None,
        executor_memory: str | None = None,
        proxy_user: str | None = None,
        heartbeat_timeout: int | None = None,
    ) -> Session:
        fields = {
            "kind": kind,
            "name": name,
            "conf": dict(conf) if conf else None,
            "driverMemory": driver_memory,
            "executorMemory": executor_memory,
            "proxyUser": proxy_user,
            "heartbeatTimeoutInSecond": heartbeat_timeout,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return Session.from_json(self._request("POST", "/sessions", json=body))

    def get_session(self, session_id: int | str) -> Session:
        return Session.from_json(self._request("GET", _session(session_id), not_found=session_id))

    def list_sessions(self, *, start: int = 0, size: int = 100) -> SessionList:
        return SessionList.from_json(self._request("GET", "/sessions", params={"from": start, "size": size}))

    def get_session_log(self, session_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage:
        params: dict[str, int] = {"size": size}
        if start is not None:
            params["from"] = start
        data = self._request("GET", _session(session_id, "log"), params=params, not_found=session_id)
        return LogPage.from_json(data)

    def delete_session(self, session_id: int | str) -> None:
        self._request("DELETE", _session(session_id), not_found=session_id)

    def run_statement(self, session_id: int | str, code: str, *, kind: str | None = None) -> Statement:
        body: dict[str, str] = {"code": code}
        if kind is not None:
            body["kind"] = kind
        data = self._request("POST", _session(session_id, "statements"), json=body, not_found=session_id)
        return Statement.from_json(data)

    def get_statement(self, session_id: int | str, statement_id: int) -> Statement:
        data = self._request(
            "GET", _session(session_id, "statements", str(int(statement_id))), not_found=session_id
        )
        return Statement.from_json(data)

    def list_statements(self, session_id: int | str) -> tuple[Statement, ...]:
        data = self._request("GET", _session(session_id, "statements"), not_found=session_id)
        return tuple(Statement.from_json(s) for s in data.get("statements") or ())

    def cancel_statement(self, session_id: int | str, statement_id: int) -> None:
        self._request(
            "POST", _session(session_id, "statements", str(int(statement_id)), "cancel"), not_found=session_id
        )

    # -- the driver log behind appInfo.driverLogUrl ------------------------------------------

    #: Set by the profile connector for classic HDInsight: maps the internal NodeManager URL
    #: Livy reports to the cluster gateway's form (``wire.gateway_log_url``).
    log_url_rewrite: Callable[[str], str] | None = None

    def resolve_log_url(self, url: str) -> str:
        """Where to read a ``driverLogUrl`` from (the gateway form for classic HDInsight)."""
        return self.log_url_rewrite(url) if self.log_url_rewrite is not None else url

    def get_text(self, url: str, *, params: Mapping[str, Any] | None = None) -> str:
        """GET an absolute URL the server pointed to (a driver log page) and return its text.

        The profile's credentials and headers go only to Livy's own origin (scheme, host,
        port): a token is never sent to a host the cluster merely named.
        """
        own = _origin(url) == _origin(self.base_url)
        headers: dict[str, str | None] = {**self._headers, "Accept": "text/html, text/plain"} if own else {
            "User-Agent": USER_AGENT, "Accept": "text/html, text/plain"}
        if not own and self._request_headers is None:
            # Our own session carries our Livy headers: a host the cluster merely named gets none.
            headers.update((key, None) for key in self._headers if key not in headers)
        with self._call() as call:
            try:
                response = self._session.get(
                    url,
                    params=params,
                    headers=headers,
                    auth=self._auth if own else None,
                    verify=self._verify,
                    timeout=self._timeout,
                )
            except requests.exceptions.RequestException as exc:
                raise LivyError(f"cannot read {_gist_url(url)}: {_reason(exc)}{_tried(call)}") from exc
        if response.status_code >= 400:
            raise LivyHTTPError(response.status_code, response.text[:300], method="GET", url=_gist_url(url))
        # requests reads a text/* answer without a charset as ISO-8859-1 (RFC 2616's default);
        # Spark writes its logs in UTF-8, and byte offsets are counted on that text.
        if "charset=" not in response.headers.get("Content-Type", "").lower():
            response.encoding = "utf-8"
        return response.text

    # -- raw access for exploration notebooks ------------------------------------------------

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON of any GET under the Livy root (for the explore notebook)."""
        return self._request("GET", path if path.startswith("/") else f"/{path}", params=params)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _gist_url(url: str) -> str:
    """The URL without its query (which may carry a signature) for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


_PLAIN_ID_LIMIT = 10**18  # 18 digits: far inside wire's id length limit


def _batch(batch_id: int | str, *rest: str) -> str:
    # Apache Livy's numeric ids need neither the check nor the quoting (S1: every state read).
    if (type(batch_id) is int and 0 <= batch_id < _PLAIN_ID_LIMIT) or (
            type(batch_id) is str and 0 < len(batch_id) <= 18 and batch_id.isascii() and batch_id.isdigit()):
        return "/".join(("/batches", str(batch_id), *rest))
    try:
        return wire.batch_path(batch_id, *rest)
    except ValueError as exc:
        raise ConfigError(str(exc), field="batch") from None


def _session(session_id: int | str, *rest: str) -> str:
    try:
        return wire.session_path(session_id, *rest)
    except ValueError as exc:
        raise ConfigError(str(exc), field="session") from None


REFUSED_HINT = "is the Livy server running? For the local sandbox run `hdiaks sandbox`"
# The sentence run.describe_error shows in the notebook for a 401/403.
AUTH_HINT = "check your credentials and that your identity has access to the cluster"


def _refused(status: int, body: str, method: str, path: str, *, detail: str | None = None,
             scope: str | None = None) -> LivyHTTPError:
    """A 401/403 as a LivyHTTPError (status and body kept) whose message carries the hint; a
    token of another audience is named as such, with the scope this service expects."""
    error = LivyHTTPError(status, body, method=method, url=path, detail=detail)
    said = error.said or "(empty body)"
    if "audience" in said.lower():
        want = f": this service takes tokens for scope {scope}; set the profile's scope to it" if scope else ""
        error.expected_scope = scope
        error.hint = f"the token is for another audience{want}"
    else:
        error.hint = AUTH_HINT
    error.args = (f"The Livy server refused {method} {path} (HTTP {status}): {error.hint}. Server said: {said}",)
    return error


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


def _gist(text: str) -> str:
    """``: "title"`` of an HTML page, or the start of any other text, for a one-line message."""
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    gist = trim_body(match.group(1) if match else text, 80)
    return f': "{gist}"' if gist else ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and urllib3's ``reason``s (each once)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [e for e in linked if isinstance(e, BaseException)]


_PLAIN_HTTP_MARKERS = ("wrong_version_number", "wrong version number", "record layer failure",
                       "packet length too long", "unknown protocol", "http_request")


def _is_plain_http_answer(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the server answered in plain HTTP."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return any(marker in text for marker in _PLAIN_HTTP_MARKERS)


def _is_refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) for e in _chain(exc))


def _is_dns_failure(exc: BaseException) -> bool:
    return any(isinstance(e, socket.gaierror) for e in _chain(exc))


def _tried(call: _Call) -> str:
    """``; gave up after 3 attempts, 2.4 s in all`` (empty when no retry policy of ours counted)."""
    if call.attempts == 0:
        return ""
    took = time.monotonic() - call.started
    return f"; gave up after {call.attempts} attempt{'s' if call.attempts != 1 else ''}, {took:.1f} s in all"


def _as_http(url: str) -> str:
    return "http://" + url.split("://", 1)[1] if url.lower().startswith("https://") else url


def _reason(exc: BaseException) -> str:
    """A short cause without URLs' query strings or headers."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = type(inner).__name__
    detail = str(inner).split("\n", 1)[0]
    if detail:
        text += f": {detail[:200]}"
    return text


def _is_read_timeout(exc: BaseException) -> bool:
    """urllib3 wraps a read timeout that exhausted the retries in a ConnectionError."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ReadTimeoutError)


def _maybe_sent(exc: LivyError) -> bool:
    """Whether a failed POST may have reached the server (the request was written out)."""
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(cause, requests.exceptions.ConnectionError):
        # urllib3 wraps "could not connect" in NewConnectionError: nothing was sent.
        text = repr(cause)
        return "NewConnectionError" not in text and "NameResolutionError" not in text
    return isinstance(cause, requests.exceptions.Timeout | requests.exceptions.ChunkedEncodingError)
