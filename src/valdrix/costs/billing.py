"""Findings priced from the tenant's own bill: what a resource actually cost, not list price.

A finding whose resource id appears in the tenant's cost data (as the id itself or the last part
of an ARN / Azure resource path) gets, as its monthly cost, the billed cost of the 30 days ending
on the resource's latest day in that data, and the basis ``billed``. Only fresh data counts: a
resource last billed more than 45 days ago keeps its list price, as does one billed in another
currency than USD.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.models import cost_records
from valdrix.scanning.base import Price, Waste

BILLED_DAYS = 30
FRESH_DAYS = 45
CENT = Decimal("0.01")


async def billed_last_30_days(
    session: AsyncSession, resource_keys: Sequence[str], today: dt.date
) -> dict[str, tuple[Decimal, dt.date]]:
    """Billed USD per resource over its latest 30 days of data, and that last day."""
    if not resource_keys:
        return {}
    oldest = today - dt.timedelta(days=FRESH_DAYS + BILLED_DAYS)
    recent = (
        select(
            cost_records.c.resource_key,
            cost_records.c.day,
            cost_records.c.billed_cost,
            func.max(cost_records.c.day)
            .over(partition_by=cost_records.c.resource_key)
            .label("last_day"),
        )
        .where(
            cost_records.c.resource_key.in_(list(resource_keys)),
            cost_records.c.currency == "USD",
            cost_records.c.day >= oldest,
            cost_records.c.day <= today,
        )
        .subquery()
    )
    rows = await session.execute(
        select(recent.c.resource_key, func.sum(recent.c.billed_cost), recent.c.last_day)
        .where(
            recent.c.day > recent.c.last_day - BILLED_DAYS,
            recent.c.last_day >= today - dt.timedelta(days=FRESH_DAYS),
        )
        .group_by(recent.c.resource_key, recent.c.last_day)
    )
    return {key: (Decimal(total), last) for key, total, last in rows}


async def price_from_bill(
    session: AsyncSession, wastes: Sequence[Waste], today: dt.date
) -> list[Waste]:
    """``wastes`` with the billed price wherever the bill knows the resource."""
    billed = await billed_last_30_days(session, sorted({w.resource_id for w in wastes}), today)
    priced = []
    for waste in wastes:
        found = billed.get(waste.resource_id)
        if found is None:
            priced.append(waste)
            continue
        total, last_day = found
        detail = {
            "billed_usd_30_days": str(total),
            "billed_through": last_day.isoformat(),
            "list_price_monthly_usd": None
            if waste.price.monthly_usd is None
            else str(waste.price.monthly_usd),
        }
        priced.append(
            dataclasses.replace(waste, price=Price(total.quantize(CENT), "billed", detail))
        )
    return priced
