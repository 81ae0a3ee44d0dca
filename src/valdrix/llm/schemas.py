"""Request and response bodies of the LLM budget API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from valdrix.kit.money import PlainDecimal

MAX_LIMIT_USD = Decimal("1000000")
# Money goes out as a plain decimal string, never in exponent form (an operator's "1E+1").
Usd = PlainDecimal


class BudgetPatch(BaseModel):
    """Set a limit, or send null to go back to the tier's default."""

    model_config = ConfigDict(extra="forbid")

    daily_cap_usd: Decimal | None = Field(default=None, ge=0, le=MAX_LIMIT_USD, decimal_places=4)
    monthly_limit_usd: Decimal | None = Field(
        default=None, ge=0, le=MAX_LIMIT_USD, decimal_places=4
    )


class LimitOut(BaseModel):
    usd: Usd
    # "tenant" (set by an admin), "tier default", or "tier ceiling" (an admin's limit above
    # the ceiling, which counts only up to it).
    source: str
    ceiling_usd: Usd = Field(description="The most an admin may set, for the tenant's tier")
    set_usd: Usd | None = Field(
        default=None,
        description="The limit an admin set (null: the tier's default); above the ceiling "
        "(the tier lowered since) it counts only up to the ceiling",
    )


class WindowOut(BaseModel):
    start: dt.date
    spent_usd: Usd
    reserved_usd: Usd
    remaining_usd: Usd


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    day: dt.date
    details: dict[str, Any]
    created_at: dt.datetime


class BudgetOut(BaseModel):
    tier: str
    daily_cap: LimitOut
    monthly_limit: LimitOut
    today: WindowOut
    this_month: WindowOut
    open_reservations: int
    open_reservations_usd: Usd
    alerts: list[AlertOut]
    updated_at: dt.datetime | None
    updated_by: str | None
