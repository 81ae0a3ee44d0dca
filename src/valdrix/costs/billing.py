"""What resources actually cost, from the tenant's own bill (the scan prices findings with it).

A resource is found in the cost data by its id itself or the last part of an ARN / Azure
resource path. Its cost is the billed cost of the 30 days ending on its latest day in that data.
Only fresh USD data counts: a resource last billed more than 45 days ago has no billed cost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.repositories.reading import CostReadRepository

BILLED_DAYS = 30
FRESH_DAYS = 45


async def billed_last_30_days(
    session: AsyncSession, resource_keys: Sequence[str], today: dt.date
) -> dict[str, tuple[Decimal, dt.date]]:
    """Billed USD per resource over its latest 30 days of data, and that last day."""
    return await CostReadRepository(session).billed_per_resource(
        resource_keys, today=today, days=BILLED_DAYS, fresh_days=FRESH_DAYS
    )
