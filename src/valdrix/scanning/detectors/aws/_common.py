"""Small helpers shared by the AWS detectors: ages, list prices as monthly figures, batching."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TypeVar

from pydantic import Field

from valdrix.scanning.base import Price, RegionScope, Thresholds
from valdrix.scanning.pricing.catalog import Quote

T = TypeVar("T")
SECONDS_PER_DAY = 86400


def age_days(created: dt.datetime, now: dt.datetime) -> float:
    """Whole and fractional days between ``created`` and ``now`` (AWS timestamps are aware)."""
    return round((now - created).total_seconds() / SECONDS_PER_DAY, 2)


def is_at_least_days_old(created: dt.datetime, now: dt.datetime, days: int) -> bool:
    return created <= now - dt.timedelta(days=days)


def hourly_price(scope: RegionScope, quote: Quote | None, *, what: str, quantity: int = 1) -> Price:
    """An hourly list price run for a month (``hours_per_month``), times ``quantity``."""
    if quote is None:
        return Price.unknown(f"the price catalog has no hourly price for {what}")
    monthly = scope.prices.monthly(quote) * quantity
    detail = quote.detail(scope.prices) | {
        "hours_per_month": str(scope.prices.hours_per_month),
        "quantity": quantity,
        "priced": what,
    }
    return Price(monthly, "list_price", detail)


def gb_month_price(
    scope: RegionScope, quote: Quote | None, *, what: str, size_gb: int, note: str | None = None
) -> Price:
    """A GB-month list price times a size in GB; ``note`` says how the figure should be read."""
    if quote is None:
        return Price.unknown(f"the price catalog has no GB-month price for {what}")
    monthly = (quote.unit_price * size_gb).quantize(Decimal("0.01"))
    detail = quote.detail(scope.prices) | {"size_gb": size_gb, "priced": what}
    if note:
        detail["note"] = note
    return Price(monthly, "list_price", detail)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


class LookbackThresholds(Thresholds):
    """Tunables of a detector that judges a resource on a lookback of CloudWatch data."""

    lookback_days: int = Field(7, ge=1, description="Days of CloudWatch data to look at.")
    min_age_days: int | None = Field(
        None,
        ge=0,
        description="Resources younger than this many days are not judged (default: the "
        "lookback, so a resource is judged on a whole lookback of its life).",
    )

    @property
    def judged_from_age_days(self) -> int:
        return self.lookback_days if self.min_age_days is None else self.min_age_days
