"""Tenant-facing budget operations: what the limits are, what has been spent, changing them."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.errors import InvalidInput
from valdrix.kit.money import plain_text, usd_text
from valdrix.kit.orm import utcnow
from valdrix.llm.budget import effective_limits, tier_ceilings, tier_limits
from valdrix.llm.repository import LedgerRepository, month_of
from valdrix.llm.schemas import AlertOut, BudgetOut, BudgetPatch, LimitOut, WindowOut
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.service import get_tenant


async def read_budget(session: AsyncSession, actor: Principal, settings: Settings) -> BudgetOut:
    tenant = await get_tenant(session, actor)
    ledger = LedgerRepository(session)
    budget = await ledger.budget(actor.tenant_id)
    limits = effective_limits(settings, tenant.tier, budget)
    ceilings = tier_ceilings(settings, tenant.tier)
    own_daily = budget.daily_cap_usd if budget else None
    own_monthly = budget.monthly_limit_usd if budget else None
    today = utcnow().date()
    month = month_of(today)
    zero = Decimal(0)
    day_spent = day_reserved = month_spent = month_reserved = zero
    if budget is not None and budget.day == today:
        day_spent, day_reserved = budget.day_settled_usd, budget.day_reserved_usd
    if budget is not None and budget.month == month:
        month_spent, month_reserved = budget.month_settled_usd, budget.month_reserved_usd
    count, amount = await ledger.open_reservations()
    return BudgetOut(
        tier=tenant.tier,
        daily_cap=_limit_out(own_daily, limits.daily, ceilings.daily),
        monthly_limit=_limit_out(own_monthly, limits.monthly, ceilings.monthly),
        today=WindowOut(
            start=today,
            spent_usd=day_spent,
            reserved_usd=day_reserved,
            remaining_usd=max(zero, limits.daily - day_spent - day_reserved),
        ),
        this_month=WindowOut(
            start=month,
            spent_usd=month_spent,
            reserved_usd=month_reserved,
            remaining_usd=max(zero, limits.monthly - month_spent - month_reserved),
        ),
        open_reservations=count,
        open_reservations_usd=amount,
        alerts=[AlertOut.model_validate(alert) for alert in await ledger.recent_alerts()],
        updated_at=budget.updated_at if budget else None,
        updated_by=budget.updated_by if budget else None,
    )


def _limit_out(set_by_tenant: Decimal | None, effective: Decimal, ceiling: Decimal) -> LimitOut:
    if set_by_tenant is None:
        source = "tier default"
    else:
        source = "tenant" if set_by_tenant <= ceiling else "tier ceiling"
    return LimitOut(usd=effective, source=source, ceiling_usd=ceiling, set_usd=set_by_tenant)


async def update_budget(
    session: AsyncSession, actor: Principal, settings: Settings, patch: BudgetPatch
) -> BudgetOut:
    """Change the limits named in the request (null: back to the tier default)."""
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("send daily_cap_usd and/or monthly_limit_usd")
    tenant = await get_tenant(session, actor)
    ledger = LedgerRepository(session)
    await ledger.ensure_budget(actor.tenant_id, utcnow().date())
    budget = await ledger.budget(actor.tenant_id)
    assert budget is not None
    before = {"daily_cap_usd": budget.daily_cap_usd, "monthly_limit_usd": budget.monthly_limit_usd}
    ceilings = tier_ceilings(settings, tenant.tier)
    for name, ceiling in (
        ("daily_cap_usd", ceilings.daily),
        ("monthly_limit_usd", ceilings.monthly),
    ):
        value = changes.get(name)
        # A limit sent as it is stored is not changed, even above a ceiling lowered since (it
        # counts only up to it): the settings form sends both limits back.
        if value is not None and value > ceiling and value != before[name]:
            raise InvalidInput(
                f"{name} {plain_text(value)} is above the {tenant.tier} tier's ceiling of"
                f" ${usd_text(ceiling)} set by the operator",
                ceiling_usd=usd_text(ceiling),
            )
    for name, value in changes.items():
        setattr(budget, name, value)
    limits = effective_limits(settings, tenant.tier, budget)
    if limits.daily > limits.monthly:
        raise InvalidInput(
            f"daily_cap_usd ({plain_text(limits.daily)}) cannot be above monthly_limit_usd"
            f" ({plain_text(limits.monthly)})"
        )
    budget.updated_at, budget.updated_by = utcnow(), actor.actor_id[:64]
    await session.flush()
    defaults = tier_limits(settings, tenant.tier)
    await record_audit(
        session,
        actor,
        "llm.budget.update",
        target_type="llm_budget",
        target_id=actor.tenant_id,
        details={
            "before": {k: None if v is None else plain_text(v) for k, v in before.items()},
            "after": {k: None if v is None else plain_text(v) for k, v in changes.items()},
            "tier_defaults": {"daily": str(defaults.daily), "monthly": str(defaults.monthly)},
        },
    )
    return await read_budget(session, actor, settings)
