"""Small helpers shared by the AWS detectors: ages, list prices as monthly figures, batching,
and the base of the detectors that judge idleness on CloudWatch metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

# Re-exported: the AWS detectors take their age helpers from here, with their other helpers.
from valdrix.scanning.ages import age_days as age_days
from valdrix.scanning.ages import is_at_least_days_old as is_at_least_days_old
from valdrix.scanning.base import CostPart, Price, RegionScope
from valdrix.scanning.cloudwatch import CloudWatchMetrics, MetricQuery
from valdrix.scanning.idle import MetricIdleDetector, ThresholdsT
from valdrix.scanning.pricing.catalog import Quote

T = TypeVar("T")
BYTES_PER_GB = 2**30  # AWS bills storage per binary gigabyte
# Cost components (``Detector.shared_costs``): everything the resource bills, which a Valdrix
# finding and an imported AWS recommendation for the same resource both price. An instance's
# on-demand compute hours are priced in full by its idle finding, in part (what a
# current-generation type saves) by its previous-generation finding.
EC2_INSTANCE_COST = "ec2-instance"
RDS_INSTANCE_COST = "rds-instance"


def own_cost(component: str, resource_id: str, price: Price) -> tuple[CostPart, ...]:
    """A finding's whole figure as the ``component`` of its own resource (none if unpriced)."""
    if price.monthly_usd is None:
        return ()
    return (CostPart(component, resource_id, price.monthly_usd),)


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


def stored_bytes_price(
    scope: RegionScope,
    stored: Mapping[str, int],
    quote_for: Callable[[str], Quote | None],
    *,
    what: str,
    note: str | None = None,
) -> Price:
    """Bytes stored per storage class (``{"STANDARD": 2**30}``) at each class's GB-month price
    from ``quote_for(storage_class)``; unknown if any class is not priced."""
    total = Decimal("0")
    classes: dict[str, Any] = {}
    estimated = False
    for storage_class, size in sorted(stored.items()):
        quote = quote_for(storage_class)
        if quote is None:
            return Price.unknown(f"the price catalog has no {what} price for {storage_class}")
        estimated = estimated or quote.estimated
        size_gb = Decimal(size) / BYTES_PER_GB
        total += quote.unit_price * size_gb
        classes[storage_class] = {
            "size_gb": float(round(size_gb, 3)),
            "unit_price_usd": str(quote.unit_price),
        }
    detail: dict[str, Any] = {
        "unit": "GB-month",
        "estimated": estimated,
        "catalog_as_of": scope.prices.as_of.isoformat(),
        "priced": what,
        "storage_classes": classes,
    }
    if note:
        detail["note"] = note
    return Price(total.quantize(Decimal("0.01")), "list_price", detail)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


class CloudWatchIdleDetector(MetricIdleDetector[dict[str, Any], MetricQuery, ThresholdsT]):
    """An idle detector over AWS resources (boto3's describe dicts), read from CloudWatch in
    batches of up to 500 series per GetMetricData call."""

    # The describe field that says when the resource was created (read only when the
    # thresholds set a minimum age).
    created_field: ClassVar[str]

    def created_at(self, resource: dict[str, Any]) -> dt.datetime:
        created: dt.datetime = resource[self.created_field]
        return created

    def metric_fetcher(self, scope: RegionScope) -> CloudWatchMetrics:
        return CloudWatchMetrics(scope.client("cloudwatch"))
