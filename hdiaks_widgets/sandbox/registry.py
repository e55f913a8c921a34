"""What the batch and session registries share, after Livy's ``SessionManager``.

Ids come from a counter; a name is unique while its record is live or retained; finished
records are purged ``retain_seconds`` after they finished; a record is found by id or by name
(LIVY-41); listings page with ``from``/``size``. Running the records is each registry's own.

A record may carry a ``scope`` (an opaque tag a non-Livy front end such as the Fabric or Synapse
dialect sets): ids, names and listings are then looked up within that scope only, so Apache
Livy's routes (scope ``None``) never see another service's batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from hdiaks_widgets.sandbox.bodies import BadRequest

__all__ = ["NotFound", "Registry", "lookup"]


class NotFound(Exception):
    """Unknown id or name: 404 ``Session '<id>' not found.``."""

    def __init__(self, ident: str) -> None:
        self.ident = ident
        super().__init__(f"Session '{ident}' not found.")


class _Record(Protocol):
    id: int
    finished_at: float | None

    @property
    def name(self) -> str | None: ...


R = TypeVar("R", bound=_Record)


def _scope_of(record: object) -> str | None:
    scope = getattr(record, "scope", None)  # session records have none: they are Livy's only
    return scope if isinstance(scope, str) else None


def lookup(records: Mapping[int, R], ident: str, scope: str | None = None) -> R:
    """Livy's ``doWithSession``: all digits = id, anything else = name (LIVY-41), within ``scope``."""
    if ident.isdigit():
        found = records.get(int(ident))
        return _found(found if found is not None and _scope_of(found) == scope else None, ident)
    return _found(next((r for r in records.values() if r.name == ident and _scope_of(r) == scope), None), ident)


def _found(found: R | None, ident: str) -> R:
    if found is None:
        raise NotFound(ident)
    return found


class Registry(Generic[R]):
    """Records by id under one re-entrant lock; subclasses create, run and delete them."""

    def __init__(self, *, retain_seconds: float, clock: Callable[[], float]) -> None:
        self.retain_seconds = retain_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._records: dict[int, R] = {}
        self._next_id = 0

    def _purge(self) -> None:
        now = self._clock()
        for rec in list(self._records.values()):
            if rec.finished_at is not None and now - rec.finished_at >= self.retain_seconds:
                del self._records[rec.id]

    def _allocate(self, name: Any, scope: str | None = None) -> int:
        """Purge, then take the next id; a name held by a live or retained record of the same
        scope is refused.

        Call it holding the lock. The id is used up even when the name is refused, as in Livy.
        """
        self._purge()
        ident = self._next_id
        self._next_id += 1
        if name is not None and any(r.name == name and _scope_of(r) == scope for r in self._records.values()):
            raise BadRequest(f"Rejected, Reason: Duplicate session name: Some({name}) for session {ident}")
        return ident

    def get(self, ident: str, scope: str | None = None) -> R:
        with self._lock:
            self._purge()
            return lookup(self._records, ident, scope)

    def listing(self, start: int, size: int, scope: str | None = None) -> tuple[int, list[R]]:
        """``(total, page)``: records of ``scope`` by id from ``start``, ``size`` of them (all when
        negative)."""
        with self._lock:
            self._purge()
            records = sorted((r for r in self._records.values() if _scope_of(r) == scope), key=lambda r: r.id)
            return len(records), records[start:] if size < 0 else records[start : start + size]
