"""Findings priced from the tenant's own bill: what a resource actually cost, not list price.

A finding whose resource appears in the tenant's cost data (``costs.billing``) gets, as its
monthly cost, the billed cost of the 30 days ending on the resource's latest day in that data,
and the basis ``billed``; the list price it replaces stays in the price detail. Any other keeps
its list price. The figure's shared parts (``Waste.cost_parts``) keep their share of it.

A detector whose figure is only a part of the resource's cost (``prices_whole_resource`` false:
a saving, an unused share) keeps its figure; what the bill says the resource costs is shown in
its price detail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.billing import billed_last_30_days
from valdrix.scanning.base import CostPart, Price, Waste

CENT = Decimal("0.01")


async def price_from_bill(
    session: AsyncSession, units: Sequence[tuple[Sequence[Waste], bool]], today: dt.date
) -> list[list[Waste]]:
    """Each unit's ``wastes`` with the billed price wherever the bill knows the resource (one
    read of the bill for all of them); figures that are not the resource's whole cost (its
    detector's ``prices_whole_resource`` false, the pair's second item) keep their price, with
    the bill beside it."""
    keys = sorted({w.resource_id for wastes, _ in units for w in wastes})
    billed = await billed_last_30_days(session, keys, today)
    return [_priced(wastes, billed, whole_resource=whole) for wastes, whole in units]


def _priced(
    wastes: Sequence[Waste],
    billed: dict[str, tuple[Decimal, dt.date]],
    *,
    whole_resource: bool,
) -> list[Waste]:
    priced = []
    for waste in wastes:
        found = billed.get(waste.resource_id)
        if found is None:
            priced.append(waste)
            continue
        total, last_day = found
        billed_usd = total.quantize(CENT)
        bill = {"billed_usd_30_days": str(billed_usd), "billed_through": last_day.isoformat()}
        if not whole_resource:
            price = dataclasses.replace(waste.price, detail={**waste.price.detail, **bill})
            priced.append(dataclasses.replace(waste, price=price))
            continue
        detail = {
            **bill,
            "list_price_monthly_usd": None
            if waste.price.monthly_usd is None
            else str(waste.price.monthly_usd),
        }
        priced.append(
            dataclasses.replace(
                waste,
                price=Price(billed_usd, "billed", detail),
                cost_parts=_rescaled(waste.cost_parts, waste.price.monthly_usd, billed_usd),
            )
        )
    return priced


def _rescaled(
    parts: tuple[CostPart, ...], list_usd: Decimal | None, billed_usd: Decimal
) -> tuple[CostPart, ...]:
    """Parts of a list price as the same shares of the billed figure, rounded down so that they
    never add up to more than it."""
    if not list_usd:
        return ()
    return tuple(
        dataclasses.replace(
            part, monthly_usd=(part.monthly_usd * billed_usd / list_usd).quantize(CENT, ROUND_DOWN)
        )
        for part in parts
    )
