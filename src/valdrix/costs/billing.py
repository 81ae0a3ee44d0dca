"""What resources actually cost, from the tenant's own bill (the scan prices findings with it).

A resource is found in the cost data by its id itself or the last part of an ARN / Azure
resource path. Its cost is the billed cost of the 30 days ending on its latest day in that data.
Only fresh USD data counts: a resource last billed more than 45 days ago has no billed cost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.models import cost_records

BILLED_DAYS = 30
FRESH_DAYS = 45


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
