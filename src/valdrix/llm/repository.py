"""The budget ledger's SQL. Every check-and-change of a tenant's counters is one statement.

Reserving updates the tenant's ``llm_budgets`` row only if the new estimate still fits under both
limits (each the tenant's own or the tier's default, never above the operator's ceiling), and
inserts the reservation from that update's result: one statement, so PostgreSQL's row lock
serialises concurrent reservations and re-checks the condition against the latest counters
(READ COMMITTED re-evaluates an UPDATE's WHERE on the row version it waited for). Closing a
reservation (settle, release, expire) flips its state only if it is still ``reserved`` and moves
its amounts in the same statement, so a reservation is closed at most once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.llm.models import LlmAlert, LlmBudget, LlmReservation, ReservationState

RESERVE = text(
    """
    WITH counted AS (
        UPDATE llm_budgets b SET
            day_reserved_usd =
                CASE WHEN b.day = :day THEN b.day_reserved_usd ELSE 0 END + :estimate,
            day_settled_usd = CASE WHEN b.day = :day THEN b.day_settled_usd ELSE 0 END,
            day = :day,
            month_reserved_usd =
                CASE WHEN b.month = :month THEN b.month_reserved_usd ELSE 0 END + :estimate,
            month_settled_usd = CASE WHEN b.month = :month THEN b.month_settled_usd ELSE 0 END,
            month = :month
        WHERE b.tenant_id = :tenant_id
          AND CASE WHEN b.day = :day THEN b.day_settled_usd + b.day_reserved_usd ELSE 0 END
              + :estimate
              <= least(coalesce(b.daily_cap_usd, :default_daily), :ceiling_daily)
          AND CASE WHEN b.month = :month THEN b.month_settled_usd + b.month_reserved_usd ELSE 0 END
              + :estimate
              <= least(coalesce(b.monthly_limit_usd, :default_monthly), :ceiling_monthly)
        RETURNING b.tenant_id
    )
    INSERT INTO llm_reservations (id, tenant_id, purpose, subject_id, provider, model,
                                  estimate_usd, state, day, month, reserved_at, expires_at)
    SELECT :id, tenant_id, :purpose, :subject_id, :provider, :model,
           :estimate, 'reserved', :day, :month, :now, :expires_at
    FROM counted
    RETURNING id
    """
)

CLOSE = text(
    """
    WITH closed AS (
        UPDATE llm_reservations SET
            state = :state, cost_usd = :cost, prompt_tokens = :prompt_tokens,
            completion_tokens = :completion_tokens, usage_reported = :usage_reported,
            closed_at = :now
        WHERE id = :id AND state = 'reserved'
        RETURNING tenant_id, day, month, estimate_usd, cost_usd
    )
    UPDATE llm_budgets b SET
        day_reserved_usd = CASE WHEN b.day = c.day
            THEN greatest(b.day_reserved_usd - c.estimate_usd, 0) ELSE b.day_reserved_usd END,
        day_settled_usd = CASE WHEN b.day = c.day
            THEN b.day_settled_usd + c.cost_usd ELSE b.day_settled_usd END,
        month_reserved_usd = CASE WHEN b.month = c.month
            THEN greatest(b.month_reserved_usd - c.estimate_usd, 0) ELSE b.month_reserved_usd END,
        month_settled_usd = CASE WHEN b.month = c.month
            THEN b.month_settled_usd + c.cost_usd ELSE b.month_settled_usd END
    FROM closed c
    WHERE b.tenant_id = c.tenant_id
    RETURNING b.day, b.day_settled_usd, b.spike_alerted_on
    """
)


@dataclass(frozen=True)
class Reservation:
    id: uuid.UUID
    tenant_id: uuid.UUID
    estimate_usd: Decimal
    provider: str
    model: str


@dataclass(frozen=True)
class ClosedReservation:
    """The tenant's day after a reservation closed (None if it was already closed)."""

    day: dt.date
    day_settled_usd: Decimal
    spike_alerted_on: dt.date | None


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure_budget(self, tenant_id: uuid.UUID, today: dt.date) -> None:
        await self.session.execute(
            insert(LlmBudget)
            .values(tenant_id=tenant_id, day=today, month=month_of(today))
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )

    async def budget(self, tenant_id: uuid.UUID) -> LlmBudget | None:
        return await self.session.get(LlmBudget, tenant_id, populate_existing=True)

    async def reserve(
        self,
        *,
        tenant_id: uuid.UUID,
        estimate: Decimal,
        default_daily: Decimal,
        default_monthly: Decimal,
        ceiling_daily: Decimal,
        ceiling_monthly: Decimal,
        purpose: str,
        subject_id: uuid.UUID | None,
        provider: str,
        model: str,
        now: dt.datetime,
        expires_at: dt.datetime,
    ) -> uuid.UUID | None:
        """The reservation's id, or None when the estimate does not fit (or no budget row)."""
        today = now.date()
        row = (
            await self.session.execute(
                RESERVE,
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "estimate": estimate,
                    "default_daily": default_daily,
                    "default_monthly": default_monthly,
                    "ceiling_daily": ceiling_daily,
                    "ceiling_monthly": ceiling_monthly,
                    "purpose": purpose,
                    "subject_id": subject_id,
                    "provider": provider,
                    "model": model,
                    "day": today,
                    "month": month_of(today),
                    "now": now,
                    "expires_at": expires_at,
                },
            )
        ).first()
        return None if row is None else uuid.UUID(str(row[0]))

    async def close(
        self,
        reservation_id: uuid.UUID,
        state: ReservationState,
        *,
        now: dt.datetime,
        cost: Decimal = Decimal(0),
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        usage_reported: bool | None = None,
    ) -> ClosedReservation | None:
        row = (
            await self.session.execute(
                CLOSE,
                {
                    "id": reservation_id,
                    "state": state.value,
                    "cost": cost,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "usage_reported": usage_reported,
                    "now": now,
                },
            )
        ).first()
        return None if row is None else ClosedReservation(row[0], row[1], row[2])

    async def expired_ids(self, now: dt.datetime) -> list[uuid.UUID]:
        return list(
            await self.session.scalars(
                select(LlmReservation.id).where(
                    LlmReservation.state == ReservationState.reserved.value,
                    LlmReservation.expires_at < now,
                )
            )
        )

    async def open_reservations(self) -> tuple[int, Decimal]:
        count, amount = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(LlmReservation.estimate_usd), 0)).where(
                    LlmReservation.state == ReservationState.reserved.value
                )
            )
        ).one()
        return int(count), Decimal(amount)

    async def settled_between(self, start: dt.date, end: dt.date) -> Decimal:
        """Settled spend of reservations made on days in [start, end)."""
        total = await self.session.scalar(
            select(func.coalesce(func.sum(LlmReservation.cost_usd), 0)).where(
                LlmReservation.state == ReservationState.settled.value,
                LlmReservation.day >= start,
                LlmReservation.day < end,
            )
        )
        return Decimal(total or 0)

    async def add_alert_once(
        self, tenant_id: uuid.UUID, kind: str, day: dt.date, details: dict[str, Any]
    ) -> bool:
        """Record the day's alert of this kind; False if it was already recorded."""
        inserted = await self.session.scalar(
            insert(LlmAlert)
            .values(id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, day=day, details=details)
            .on_conflict_do_nothing(constraint="uq_llm_alerts_day")
            .returning(LlmAlert.id)
        )
        return inserted is not None

    async def mark_spike_alerted(self, tenant_id: uuid.UUID, day: dt.date) -> None:
        budget = await self.budget(tenant_id)
        if budget is not None:
            budget.spike_alerted_on = day

    async def recent_alerts(self, limit: int = 20) -> list[LlmAlert]:
        return list(
            await self.session.scalars(
                select(LlmAlert).order_by(LlmAlert.created_at.desc()).limit(limit)
            )
        )

    async def tenants_with_expired(self, now: dt.datetime) -> list[uuid.UUID]:
        """Across tenants, through the resolver function (ids only)."""
        rows = await self.session.scalars(
            text("SELECT valdrix_llm_expired_reservation_tenants(:now)"), {"now": now}
        )
        return [uuid.UUID(str(tenant)) for tenant in rows]

    async def spend_by_tenant(self, today: dt.date) -> list[tuple[uuid.UUID, Decimal, Decimal]]:
        """Across tenants, through the resolver function: (tenant, day, month) settled spend."""
        rows = await self.session.execute(
            text("SELECT tenant_id, day_usd, month_usd FROM valdrix_llm_spend(:day, :month)"),
            {"day": today, "month": month_of(today)},
        )
        return [(uuid.UUID(str(t)), Decimal(d), Decimal(m)) for t, d, m in rows]
