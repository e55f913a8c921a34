"""Fault injection for tests, driven through the non-Livy ``/_sandbox/faults`` endpoint.

A fault rule matches requests by method and path prefix and fires ``count`` times (``None`` =
until cleared). Kinds:

- ``status``: answer ``status`` (e.g. 503, 429, 502, Fabric's 430) with ``{"msg": ...}`` -- on a
  service dialect's path, with that service's error body and ``error_code`` (else the code the
  service sends with that status, e.g. Fabric's ``TooManyRequestsForCapacity`` for 430) -- and,
  if given, a ``Retry-After: <retry_after>`` header, without handling the request (a refused
  ``POST`` creates no batch);
- ``drop``: close the TCP connection before handling the request (no answer at all);
- ``drop_after``: handle the request (e.g. really create the batch), then close the connection
  without sending the answer — the "ambiguous POST" case;
- ``slow``: sleep ``seconds`` before handling the request.

``probability`` (default 1) makes a rule fire on that share of the requests it matches, drawn
from its own ``random.Random(seed)`` (so a soak run is repeatable); a request it passes over goes
on to the next rule, and only a firing uses up one of ``count``.

The book also counts every request it sees per ``"METHOD /path"``, so tests can assert how many
POSTs actually arrived, and every fault it injected per ``"METHOD kind"`` (``"POST status 503"``).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdiaks_widgets.sandbox.bodies import BadRequest

__all__ = ["FAULT_KINDS", "FaultBook", "FaultRule"]

FAULT_KINDS = ("status", "drop", "drop_after", "slow")


@dataclass
class FaultRule:
    kind: str
    status: int = 503
    retry_after: float | None = None
    count: int | None = 1
    methods: tuple[str, ...] | None = None
    path_prefix: str = "/"
    seconds: float = 1.0
    message: str | None = None
    error_code: str | None = None
    probability: float = 1.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise BadRequest(f"fault probability must be between 0 and 1, not {self.probability}")
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        if not isinstance(data, dict):
            raise BadRequest("a fault must be a JSON object")
        known = {"kind", "status", "retry_after", "count", "methods", "path_prefix", "seconds", "message",
                 "error_code", "probability", "seed"}  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadRequest(f"unknown fault fields: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise BadRequest(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        try:
            methods = data.get("methods")
            return cls(
                kind=str(kind),
                status=int(data.get("status", 503)),
                retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
                count=None if data.get("count", 1) is None else int(data.get("count", 1)),
                methods=None if methods is None else tuple(str(m).upper() for m in methods),
                path_prefix=str(data.get("path_prefix", "/")),
                seconds=float(data.get("seconds", 1.0)),
                message=None if data.get("message") is None else str(data["message"]),
                error_code=None if data.get("error_code") is None else str(data["error_code"]),
                probability=float(data.get("probability", 1.0)),
                seed=None if data.get("seed") is None else int(data["seed"]),
            )
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"invalid fault: {exc}") from exc

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return path.startswith(self.path_prefix)

    def fires(self) -> bool:
        """Whether a matching request meets the fault (its ``probability``); call it holding the book's lock."""
        return self.probability >= 1.0 or self._rng.random() < self.probability

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "status": self.status, "retry_after": self.retry_after, "count": self.count,
            "methods": None if self.methods is None else list(self.methods), "path_prefix": self.path_prefix,
            "seconds": self.seconds, "message": self.message, "error_code": self.error_code,
            "probability": self.probability, "seed": self.seed,
        }  # fmt: skip


class FaultBook:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._counts: Counter[str] = Counter()
        self._fired: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._counts.clear()
            self._fired.clear()

    def observe(self, method: str, path: str) -> FaultRule | None:
        """Count the request and return the first rule that fires for it (using one shot)."""
        with self._lock:
            self._counts[f"{method.upper()} {path}"] += 1
            for rule in self._rules:
                if rule.matches(method, path) and (rule.count is None or rule.count > 0) and rule.fires():
                    if rule.count is not None:
                        rule.count -= 1
                    kind = f"status {rule.status}" if rule.kind == "status" else rule.kind
                    self._fired[f"{method.upper()} {kind}"] += 1
                    return rule
            return None

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [r.to_json() for r in self._rules if r.count is None or r.count > 0],
                "requests": dict(self._counts),
                "fired": dict(self._fired),
            }
