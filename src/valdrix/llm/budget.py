"""Per-tenant LLM budgets: reserve before a call, settle or release after, sweep the crashed.

Each step is its own short transaction (a reservation must be visible to every other worker
before the provider is called, and no row lock may be held across a call). Anything that stops
the ledger answering raises ``BudgetUnavailable``: the caller makes no call.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import structlog
from sqlalchemy.exc import SQLAlchemyError

from valdrix.config import Settings
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.money import usd_text
from valdrix.kit.orm import utcnow
from valdrix.llm.models import LlmBudget, ReservationState
from valdrix.llm.repository import ClosedReservation, LedgerRepository, Reservation, month_of
from valdrix.runtime import Runtime
from valdrix.tenancy.models import Tenant

log = structlog.get_logger(__name__)

# Errors that mean "the ledger did not answer": the database is down, restarting or unreachable.
LEDGER_ERRORS = (SQLAlchemyError, psycopg.Error, OSError)
SPIKE_FACTOR = 3
TRAILING_DAYS = 7


class BudgetUnavailable(Exception):
    """The ledger could not be reached, so no call may be made."""


class BudgetExceeded(Exception):
    def __init__(self, window: str, limit: Decimal, used: Decimal, estimate: Decimal) -> None:
        label = "daily cap" if window == "daily" else "monthly limit"
        super().__init__(
            f"the tenant's LLM {label} of ${usd_text(limit)} would be exceeded:"
            f" ${usd_text(used)} already spent or reserved, this call could cost up to"
            f" ${usd_text(estimate)}"
        )
        self.window = window


@dataclass(frozen=True)
class Limits:
    daily: Decimal
    monthly: Decimal


def tier_limits(settings: Settings, tier: str) -> Limits:
    return Limits(settings.llm.daily_cap_usd[tier], settings.llm.monthly_limit_usd[tier])


def tier_ceilings(settings: Settings, tier: str) -> Limits:
    """The most a tenant admin may set (the operator's; never below the tier's defaults)."""
    return Limits(
        settings.llm.daily_cap_ceiling_usd[tier], settings.llm.monthly_limit_ceiling_usd[tier]
    )


def resolve_limits(
    settings: Settings, tier: str, daily: Decimal | None, monthly: Decimal | None
) -> Limits:
    """The tenant's own limits (the tier's defaults where unset), never above the tier's
    ceilings: a limit set before the operator lowered a ceiling, or before the tenant moved to
    a cheaper tier, counts only up to the ceiling."""
    default, ceiling = tier_limits(settings, tier), tier_ceilings(settings, tier)
    return Limits(
        default.daily if daily is None else min(daily, ceiling.daily),
        default.monthly if monthly is None else min(monthly, ceiling.monthly),
    )


def effective_limits(settings: Settings, tier: str, budget: LlmBudget | None) -> Limits:
    if budget is None:
        return tier_limits(settings, tier)
    return resolve_limits(settings, tier, budget.daily_cap_usd, budget.monthly_limit_usd)


async def reserve(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    *,
    estimate: Decimal,
    purpose: str,
    subject_id: uuid.UUID | None,
    provider: str,
    model: str,
) -> Reservation:
    """Reserve ``estimate`` against both limits in one statement, or raise BudgetExceeded."""
    now = utcnow()
    expires_at = now + dt.timedelta(seconds=runtime.settings.llm.reservation_ttl)
    try:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None:
                raise BudgetUnavailable(f"tenant {tenant_id} is not visible")
            defaults = tier_limits(runtime.settings, tenant.tier)
            ceilings = tier_ceilings(runtime.settings, tenant.tier)
            ledger = LedgerRepository(session)

            async def attempt() -> uuid.UUID | None:
                return await ledger.reserve(
                    tenant_id=tenant_id,
                    estimate=estimate,
                    default_daily=defaults.daily,
                    default_monthly=defaults.monthly,
                    ceiling_daily=ceilings.daily,
                    ceiling_monthly=ceilings.monthly,
                    purpose=purpose,
                    subject_id=subject_id,
                    provider=provider,
                    model=model,
                    now=now,
                    expires_at=expires_at,
                )

            reservation_id = await attempt()
            if reservation_id is None:
                # No row yet (the tenant's first call), or one that another worker's first
                # call committed after this attempt looked: try once more once it exists.
                if await ledger.budget(tenant_id) is None:
                    await ledger.ensure_budget(tenant_id, now.date())
                reservation_id = await attempt()
            if reservation_id is None:
                budget = await ledger.budget(tenant_id)
                raise _explain_rejection(runtime.settings, tenant.tier, budget, now, estimate)
    except BudgetExceeded as exc:
        metrics.LLM_BUDGET_REJECTIONS.labels(window=exc.window).inc()
        log.warning(
            "llm.budget.rejected",
            tenant_id=str(tenant_id),
            window=exc.window,
            estimate_usd=str(estimate),
            purpose=purpose,
            reason=str(exc),
        )
        raise
    except LEDGER_ERRORS as exc:
        log.warning("llm.budget.unavailable", tenant_id=str(tenant_id), error=type(exc).__name__)
        raise BudgetUnavailable(
            f"the LLM budget ledger is unreachable ({type(exc).__name__})"
        ) from exc
    return Reservation(reservation_id, tenant_id, estimate, provider, model)


def _explain_rejection(
    settings: Settings, tier: str, budget: LlmBudget | None, now: dt.datetime, estimate: Decimal
) -> BudgetExceeded:
    limits = effective_limits(settings, tier, budget)
    today, month = now.date(), month_of(now.date())
    day_used = month_used = Decimal(0)
    if budget is not None and budget.day == today:
        day_used = budget.day_settled_usd + budget.day_reserved_usd
    if budget is not None and budget.month == month:
        month_used = budget.month_settled_usd + budget.month_reserved_usd
    if day_used + estimate > limits.daily:
        return BudgetExceeded("daily", limits.daily, day_used, estimate)
    return BudgetExceeded("monthly", limits.monthly, month_used, estimate)


async def settle(
    runtime: Runtime,
    reservation: Reservation,
    *,
    cost: Decimal,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> None:
    """Record what the call cost (the estimate when the provider reported no usage)."""
    usage_reported = prompt_tokens is not None
    if cost > reservation.estimate_usd:
        log.warning(
            "llm.usage.above_estimate",
            tenant_id=str(reservation.tenant_id),
            estimate_usd=str(reservation.estimate_usd),
            cost_usd=str(cost),
            model=reservation.model,
        )
    async with unit_of_work(runtime.sessions, reservation.tenant_id) as session:
        ledger = LedgerRepository(session)
        closed = await ledger.close(
            reservation.id,
            ReservationState.settled,
            now=utcnow(),
            cost=cost,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_reported=usage_reported,
        )
        if closed is not None:
            metrics.LLM_COST.labels(provider=reservation.provider).inc(float(cost))
            await _check_spike(runtime.settings, ledger, reservation.tenant_id, closed)


async def release(runtime: Runtime, reservation: Reservation) -> None:
    """Give the reservation back (the call failed before the provider did any work we pay)."""
    async with unit_of_work(runtime.sessions, reservation.tenant_id) as session:
        await LedgerRepository(session).close(
            reservation.id, ReservationState.released, now=utcnow()
        )


async def _check_spike(
    settings: Settings, ledger: LedgerRepository, tenant_id: uuid.UUID, closed: ClosedReservation
) -> None:
    today = utcnow().date()
    spent = closed.day_settled_usd
    if closed.day != today or closed.spike_alerted_on == today:
        return
    if spent <= settings.llm.spike_floor_usd:
        return
    trailing = await ledger.settled_between(today - dt.timedelta(days=TRAILING_DAYS), today)
    average = trailing / TRAILING_DAYS
    if spent <= SPIKE_FACTOR * average:
        return
    details = {
        "today_usd": str(spent),
        "trailing_7_day_average_usd": str(average.quantize(Decimal("0.0001"))),
        "floor_usd": str(settings.llm.spike_floor_usd),
    }
    if await ledger.add_alert_once(tenant_id, "spend_spike", today, details):
        await ledger.mark_spike_alerted(tenant_id, today)
        metrics.LLM_SPEND_SPIKES.inc()
        log.warning("llm.spend.spike", tenant_id=str(tenant_id), **details)


async def expire_reservations(runtime: Runtime) -> int:
    """Release reservations whose calls never settled (their worker died). Returns how many."""
    now = utcnow()
    async with unit_of_work(runtime.sessions, None) as session:
        tenants = await LedgerRepository(session).tenants_with_expired(now)
    expired = 0
    for tenant_id in tenants:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            ledger = LedgerRepository(session)
            for reservation_id in await ledger.expired_ids(now):
                if await ledger.close(reservation_id, ReservationState.expired, now=now):
                    expired += 1
                    log.warning(
                        "llm.reservation.expired",
                        tenant_id=str(tenant_id),
                        reservation_id=str(reservation_id),
                    )
    metrics.LLM_RESERVATIONS_EXPIRED.inc(expired)
    return expired
