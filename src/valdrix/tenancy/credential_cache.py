"""Credentials this process resolved in the last few seconds, so a client's next requests skip
the database (two transactions per API-key request before).

Why it cannot keep a withdrawn credential working:
- every change that can end or narrow a credential (key revoked, session signed out, member
  removed or re-roled, user disabled, tenant deleted) NOTIFYs ``valdrix_credentials`` from a
  trigger (migration 0019), and hearing it drops that tenant's entries at once;
- an entry is served for at most ``CACHE_SECONDS`` after the read that made it, whatever
  happens to notifications;
- nothing is served while the LISTEN connection is down (it may have missed a notification),
  and everything is dropped when it is lost and when it is back;
- a read that a notification overtook is not stored (the generation moved meanwhile), and no
  request arriving after the notification waits for it (it reads again), so an answer read
  before a revocation committed cannot outlive it;
- a change committed by this very process empties its cache at the commit, so its own next
  request sees the change without waiting for the notification to come back.

Refusals are never cached: a new key works at once, and a bad one costs what it always did.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from valdrix.kit import metrics
from valdrix.kit.listener import Listener, Subscriber

CACHE_SECONDS = 5.0
MAX_ENTRIES = 10_000
CHANNEL = "valdrix_credentials"
R = TypeVar("R")


@dataclass(frozen=True)
class CachedCredential:
    tenant_id: uuid.UUID
    value: object  # what the resolver built (auth.py's principal and what it checks per request)
    served_until: float  # time.monotonic()


@dataclass(frozen=True)
class _Flight:
    """A read under way, which requests for the same credential may wait for instead."""

    generation: int  # the cache's generation when the read began
    answer: asyncio.Future[Any]


class CredentialCache:
    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._entries: dict[tuple[str, bytes], CachedCredential] = {}
        self._generation = 0
        self._in_flight: dict[tuple[str, bytes], _Flight] = {}
        listener.subscribe(Subscriber(CHANNEL, self._on_change, self._on_connection))

    async def resolve(
        self,
        kind: str,
        key: bytes,
        resolve: Callable[[], Awaitable[R]],
        *,
        tenant_of: Callable[[R], uuid.UUID],
    ) -> R:
        """``resolve()``'s answer for the credential ``key`` of ``kind``: cached if fresh, else
        read, once for all who ask at the same time (the streams of one browser re-check their
        credential together, and would all miss together)."""
        k = (kind, key)
        while True:
            cached = self.get(kind, key)
            if cached is not None:
                return cached  # type: ignore[return-value]  # stored by this method, as an R
            joined = self._in_flight.get(k)
            # A read begun before a change was heard may answer what the change withdrew.
            if joined is None or joined.generation != self._generation:
                break
            try:
                return await asyncio.shield(joined.answer)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not joined.answer.cancelled() or (task is not None and task.cancelling()):
                    raise  # this request was cancelled
                # The request reading it was cancelled (its client left): look again.
        flight = _Flight(self._generation, asyncio.get_running_loop().create_future())
        read_at = time.monotonic()
        self._in_flight[k] = flight
        try:
            value = await resolve()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                flight.answer.cancel()
            else:
                flight.answer.set_exception(exc)
                flight.answer.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            flight.answer.set_result(value)
        finally:
            if not flight.answer.done():  # never leave those who joined waiting
                flight.answer.cancel()
            if self._in_flight.get(k) is flight:  # a later read may have replaced it
                del self._in_flight[k]
        self.put(
            kind,
            key,
            value,
            tenant_id=tenant_of(value),
            generation=flight.generation,
            read_at=read_at,
        )
        return value

    def get(self, kind: str, key: bytes) -> object | None:
        entry = self._entries.get((kind, key)) if self._listener.connected else None
        if entry is None or entry.served_until <= time.monotonic():
            metrics.CREDENTIAL_CACHE.labels(credential=kind, result="miss").inc()
            return None
        metrics.CREDENTIAL_CACHE.labels(credential=kind, result="hit").inc()
        return entry.value

    def put(
        self,
        kind: str,
        key: bytes,
        value: object,
        *,
        tenant_id: uuid.UUID,
        generation: int,
        read_at: float,
    ) -> None:
        """Keep ``value`` (read at ``read_at``, monotonic) for at most ``CACHE_SECONDS``: a
        credential expiring meanwhile works until the entry ends, at most that long."""
        if generation != self._generation or not self._listener.connected:
            return
        if len(self._entries) >= MAX_ENTRIES:
            now = time.monotonic()
            self._entries = {k: e for k, e in self._entries.items() if e.served_until > now}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[(kind, key)] = CachedCredential(tenant_id, value, read_at + CACHE_SECONDS)

    def _on_change(self, payload: str) -> None:
        self._generation += 1
        try:
            tenant_id = uuid.UUID(payload)
        except ValueError:  # no tenant named: a person's change reaches all their tenants
            self._entries.clear()
            return
        self._entries = {k: e for k, e in self._entries.items() if e.tenant_id != tenant_id}

    def _on_connection(self, connected: bool) -> None:
        self.forget_all()

    def forget_all(self) -> None:
        self._generation += 1
        self._entries.clear()


_caches: weakref.WeakKeyDictionary[Listener, CredentialCache] = weakref.WeakKeyDictionary()


def credential_cache(listener: Listener) -> CredentialCache:
    """The process's cache over ``listener`` (made, and the listener started, on first use)."""
    cache = _caches.get(listener)
    if cache is None:
        cache = _caches[listener] = CredentialCache(listener)
    listener.start()
    return cache


# Statements that may end or narrow a credential; an API key's use being recorded does not.
_MAY_REVOKE = re.compile(
    r"\s*(?:UPDATE|DELETE\s+FROM)\s+(?:api_keys|browser_sessions|memberships|users|tenants)\b"
    r"(?!\s+SET\s+last_used_at=[^,]*?\sWHERE)",
    re.IGNORECASE,
)
_CHANGED = "valdrix_credentials_changed"


@event.listens_for(Engine, "before_cursor_execute")
def _note_credential_change(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    if _MAY_REVOKE.match(statement):
        conn.info[_CHANGED] = True


@event.listens_for(Engine, "commit")
def _forget_on_commit(conn: Connection) -> None:
    if conn.info.pop(_CHANGED, False):
        for cache in list(_caches.values()):
            cache.forget_all()


@event.listens_for(Engine, "rollback")
def _nothing_changed(conn: Connection) -> None:
    # A connection lost mid-transaction is rolled back invalidated: its ``info`` goes with its
    # DBAPI connection, and touching it would replace the lost-connection error with another.
    if not conn.invalidated:
        conn.info.pop(_CHANGED, None)
