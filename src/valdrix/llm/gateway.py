"""Every LLM call goes through here: circuit check, budget reservation, call, settlement.

Providers are tried in order (primary, then the fallback). For each: skip it while its circuit
is open; reserve the call's upper-bound cost (no reservation, no call); call; settle with the
provider's usage, or release the reservation if the call failed. Whatever stops the call midway
(a cancelled job included) releases the reservation; a worker killed outright leaves it to the
sweeper.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal

import structlog

from valdrix.kit import metrics
from valdrix.llm import budget
from valdrix.llm.budget import LEDGER_ERRORS
from valdrix.llm.circuit import breaker_for
from valdrix.llm.client import (
    ChatClient,
    Completion,
    ProviderUnavailable,
    providers_from_settings,
)
from valdrix.llm.prices import price_for
from valdrix.llm.repository import Reservation
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PaidCompletion:
    completion: Completion
    cost_usd: Decimal
    usage_reported: bool


def configured_clients(runtime: Runtime) -> list[ChatClient]:
    settings = runtime.settings
    return [
        ChatClient(
            config,
            breaker=breaker_for(
                config.name,
                failure_threshold=settings.llm.circuit_failure_threshold,
                cooldown_seconds=settings.llm.circuit_cooldown_seconds,
            ),
        )
        for config in providers_from_settings(settings)
    ]


async def complete(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    messages: list[dict[str, str]],
    *,
    purpose: str,
    subject_id: uuid.UUID | None,
    clients: list[ChatClient] | None = None,
) -> PaidCompletion:
    """One paid completion. Raises BudgetExceeded / BudgetUnavailable (no call made),
    ProviderUnavailable (every provider down or open), ProviderRejected, UnpricedModel."""
    settings = runtime.settings
    max_tokens = settings.llm.max_output_tokens
    failures: list[str] = []
    for client in configured_clients(runtime) if clients is None else clients:
        name = client.config.name
        if not client.available():
            metrics.LLM_REQUESTS.labels(provider=name, outcome="circuit_open").inc()
            failures.append(f"{name}: circuit open")
            continue
        price = price_for(settings, client.config.model)
        reservation = await budget.reserve(
            runtime,
            tenant_id,
            estimate=price.upper_bound(messages, max_tokens),
            purpose=purpose,
            subject_id=subject_id,
            provider=name,
            model=client.config.model,
        )
        try:
            completion = await client.complete(
                messages, max_tokens=max_tokens, json_mode=settings.llm.json_mode
            )
        except BaseException as exc:
            await _release_quietly(runtime, reservation)
            if isinstance(exc, ProviderUnavailable):
                failures.append(exc.reason)
                continue
            raise
        usage = completion.usage
        cost = (
            price.cost(usage.prompt_tokens, usage.completion_tokens)
            if usage is not None
            else reservation.estimate_usd  # unknown usage: the reservation counts as spent
        )
        await _settle_with_retries(runtime, reservation, cost, completion)
        return PaidCompletion(completion, cost, usage is not None)
    raise ProviderUnavailable("; ".join(failures) or "no LLM provider is configured")


async def _release_quietly(runtime: Runtime, reservation: Reservation) -> None:
    """Release even when the caller is being cancelled; if the ledger is away, the sweeper
    releases the reservation once it expires."""
    try:
        await asyncio.shield(budget.release(runtime, reservation))
    except (asyncio.CancelledError, *LEDGER_ERRORS) as exc:
        log.warning(
            "llm.reservation.release_failed",
            reservation_id=str(reservation.id),
            error=type(exc).__name__,
        )


async def _settle_with_retries(
    runtime: Runtime, reservation: Reservation, cost: Decimal, completion: Completion
) -> None:
    usage = completion.usage
    for attempt in range(3):
        try:
            await budget.settle(
                runtime,
                reservation,
                cost=cost,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
            )
            return
        except LEDGER_ERRORS as exc:
            log.warning(
                "llm.reservation.settle_failed",
                reservation_id=str(reservation.id),
                attempt=attempt + 1,
                error=type(exc).__name__,
            )
            await asyncio.sleep(0.5 * 2**attempt)
