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

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.repositories.reading import CostReadRepository
from valdrix.scanning.base import Price, Waste

BILLED_DAYS = 30
FRESH_DAYS = 45
CENT = Decimal("0.01")


async def price_from_bill(
    session: AsyncSession, wastes: Sequence[Waste], today: dt.date
) -> list[Waste]:
    """``wastes`` with the billed price wherever the bill knows the resource."""
    billed = await CostReadRepository(session).billed_per_resource(
        sorted({w.resource_id for w in wastes}),
        today=today,
        days=BILLED_DAYS,
        fresh_days=FRESH_DAYS,
    )
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
