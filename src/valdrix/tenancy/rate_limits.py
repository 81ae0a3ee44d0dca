"""API rate limits per credential and per tenant, shared by every API process.

Two token buckets stand behind each request: its credential's (one API key, or one person's
sessions and tokens together) and its tenant's. Both live in PostgreSQL
(``request_buckets``), so every API process on the database draws from the same ones.

A process does not ask the database on every request. It takes tokens in batches sized to
what the credential used in this process lately (about a second's worth, from a fifth of
``max_batch`` to ``max_batch``) and spends them locally; a refused credential is refused
locally until its bucket can hold a token again. The database is asked once per batch (one
round trip) and once per refusal: about once a second per credential and process, once in
``max_batch`` requests for a faster credential, once in ``max_batch // 5`` for an occasional
one.

What that costs in exactness (docs/operations/rate-limits.md): tokens a process holds are
already taken from the buckets, so no request is ever admitted without a token, but they may
be spent later than they were taken. A credential can therefore get up to ``max_batch`` more
requests per process through in a burst than one bucket alone would allow, and while one
process holds tokens another may refuse the credential earlier: ``max_batch`` is 1/20 of the
smaller burst, 5 % per process.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import structlog

from valdrix.config.groups import RateLimitSettings
from valdrix.errors import TooManyRequests
from valdrix.kit import metrics
from valdrix.runtime import Runtime
from valdrix.tenancy.repository import RequestBucketRepository

if TYPE_CHECKING:
    from valdrix.tenancy.auth import Principal  # which calls this module

log = structlog.get_logger(__name__)

# A batch is what the credential used in this process in about this long.
BATCH_SECONDS = 1.0
# Credentials whose tokens a process remembers; the least recently seen are forgotten first
# (their tokens are lost, which only ever refuses sooner).
MAX_CREDENTIALS = 10_000
LIMIT_NAMES = {"credential": "this credential's", "tenant": "this tenant's"}


@dataclass
class _Held:
    """One credential's tokens in this process."""

    tokens: int = 0
    granted: int = 0  # the last batch, and when it came
    granted_at: float = 0.0
    refused_until: float = 0.0
    refused_by: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RequestRateLimiter:
    """One per API process: admits a request or raises ``TooManyRequests`` with Retry-After."""

    def __init__(self, settings: RateLimitSettings) -> None:
        self.settings = settings
        self.max_batch = max(1, min(settings.credential_burst, settings.tenant_burst) // 20)
        self._held: OrderedDict[tuple[uuid.UUID, str], _Held] = OrderedDict()

    async def admit(self, runtime: Runtime, principal: Principal) -> None:
        held = self._held_for(principal.tenant_id, credential_subject(principal))
        if held.tokens > 0:
            held.tokens -= 1
            return
        async with held.lock:
            # Another request of this credential may have fetched a batch meanwhile.
            if held.tokens > 0:
                held.tokens -= 1
                return
            now = time.monotonic()
            if now < held.refused_until:
                self._refuse(held, now)
            await self._take_batch(runtime, principal, held, now)
            held.tokens -= 1

    def _held_for(self, tenant_id: uuid.UUID, subject: str) -> _Held:
        key = (tenant_id, subject)
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
            if len(self._held) > MAX_CREDENTIALS:
                self._held.popitem(last=False)
        else:
            self._held.move_to_end(key)
        return held

    def _next_batch(self, held: _Held, now: float) -> int:
        """About BATCH_SECONDS of the credential's recent pace in this process, and at least a
        fifth of ``max_batch``, so an occasional caller does not cost a statement per request."""
        least = max(1, self.max_batch // 5)
        if not held.granted:
            return least
        pace = held.granted / max(now - held.granted_at, 1e-3)
        return max(least, min(self.max_batch, math.ceil(pace * BATCH_SECONDS)))

    async def _take_batch(
        self, runtime: Runtime, principal: Principal, held: _Held, now: float
    ) -> None:
        limits = self.settings
        async with runtime.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            taken = await RequestBucketRepository(connection).take(
                principal.tenant_id,
                credential_subject(principal),
                want=self._next_batch(held, now),
                credential=(limits.credential_per_second, limits.credential_burst),
                tenant=(limits.tenant_per_second, limits.tenant_burst),
            )
        if taken.granted == 0:
            # No token can appear before then: buckets only refill with time, and other
            # processes only take from them.
            held.refused_until = time.monotonic() + taken.wait_seconds
            held.refused_by = taken.limited_by or "tenant"
            log.warning(
                "api.rate_limited",
                tenant_id=str(principal.tenant_id),
                credential=principal.kind,
                limit=held.refused_by,
                retry_after_seconds=round(taken.wait_seconds, 3),
            )
            self._refuse(held, time.monotonic())
        held.tokens, held.granted, held.granted_at = taken.granted, taken.granted, now

    def _refuse(self, held: _Held, now: float) -> NoReturn:
        metrics.API_RATE_LIMITED.labels(limit=held.refused_by).inc()
        wait = max(1, math.ceil(held.refused_until - now))
        raise TooManyRequests(
            f"{LIMIT_NAMES[held.refused_by]} request rate limit is used up; try again in {wait} s",
            retry_after_seconds=wait,
            limit=held.refused_by,
        )


def credential_subject(principal: Principal) -> str:
    """The credential's bucket: an API key's own, or its person's (all their sessions and
    tokens share one, so signing in again does not refill it)."""
    if principal.kind == "api_key":
        return f"api_key:{principal.actor_id}"
    return f"user:{principal.user_id or principal.actor_id}"
