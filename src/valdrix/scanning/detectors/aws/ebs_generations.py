"""EBS volumes of a previous generation whose current-generation successor costs less: Magnetic
(``standard``) volumes that would be cheaper as gp3, io1 volumes that would be cheaper as io2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, Price, RegionScope, Thresholds, Waste
from valdrix.scanning.cloudwatch import CloudWatchMetrics, MetricQuery
from valdrix.scanning.detectors.aws._ec2_common import VOLUME_COST, region_volumes, volume_waste
from valdrix.scanning.idle import MetricWindow
from valdrix.scanning.pricing.catalog import PIOPS_TIER_BOUNDS, Quote
from valdrix.scanning.registry import detectors

CENT = Decimal("0.01")
MILLION = Decimal(1_000_000)
# Magnetic volumes bill every read and write; CloudWatch counts them as these two metrics.
IO_METRICS = ("VolumeReadOps", "VolumeWriteOps")
SUCCESSOR = {"standard": "gp3", "io1": "io2"}


class PreviousGenerationThresholds(Thresholds):
    lookback_days: int = Field(
        default=14,
        ge=1,
        description="Days of CloudWatch VolumeReadOps and VolumeWriteOps from which a Magnetic "
        "volume's monthly I/O requests are estimated.",
    )
    min_monthly_saving_usd: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description="Report a volume only if its current-generation type saves more than "
        "nothing and at least this many USD a month at list price.",
    )


@detectors.register("aws.ebs-previous-generation")
class PreviousGenerationVolumes(Detector):
    """Flags Magnetic (``standard``) and io1 volumes, in any state, whose current-generation
    type costs less at list price: the finding's figure is the monthly saving of changing the
    type in place (part of what a finding about an unused volume prices in full: totals count
    it once).

    Magnetic bills every I/O request on top of its storage; gp3 stores for more per GB but
    bills no requests and its baseline (3,000 IOPS, 125 MB/s) exceeds anything Magnetic gives,
    so it saves on volumes busy enough (the requests are estimated from CloudWatch over the
    lookback). io1 and io2 bill storage alike, but io2 prices provisioned IOPS above 32,000
    lower, so it saves on io1 volumes provisioned above that.
    """

    provider = "aws"
    resource_type = "ebs-volume"
    prices_whole_resource = False  # the saving of the current type, not the disk's cost
    permissions = ("ec2:DescribeVolumes", "cloudwatch:GetMetricData")
    thresholds = PreviousGenerationThresholds
    shared_costs = (VOLUME_COST,)

    def detect(
        self, scope: RegionScope, thresholds: PreviousGenerationThresholds
    ) -> Iterator[Waste]:
        volumes = [v for v in region_volumes(scope) if v.get("VolumeType") in SUCCESSOR]
        magnetic = [volume for volume in volumes if volume["VolumeType"] == "standard"]
        monthly_requests = _monthly_io_requests(scope, magnetic, thresholds.lookback_days)
        for volume in volumes:
            if volume["VolumeType"] == "standard":
                requests = monthly_requests[volume["VolumeId"]]
                price = _magnetic_saving(scope, volume, requests, thresholds.lookback_days)
                evidence: dict[str, Any] = {
                    "io_requests_per_month": float(requests),
                    "lookback_days": thresholds.lookback_days,
                }
            else:
                price = _io1_saving(scope, volume)
                evidence = {"provisioned_iops": volume.get("Iops")}
            saving = price.monthly_usd
            if saving is not None and (saving <= 0 or saving < thresholds.min_monthly_saving_usd):
                continue
            successor = SUCCESSOR[volume["VolumeType"]]
            yield volume_waste(
                volume,
                f"This {volume['Size']} GiB {volume['VolumeType']} volume would be cheaper as "
                f"{successor}.",
                price,
                current_generation_type=successor,
                **evidence,
                min_monthly_saving_usd=str(thresholds.min_monthly_saving_usd),
            )


def _monthly_io_requests(
    scope: RegionScope, volumes: list[dict[str, Any]], lookback_days: int
) -> dict[str, Decimal]:
    """Each Magnetic volume's reads and writes over the lookback, run for a month (none without
    datapoints: CloudWatch publishes nothing for a volume no instance uses)."""
    if not volumes:
        return {}
    queries = [
        MetricQuery(
            f"vol{position}_{metric.lower()}",
            "AWS/EBS",
            metric,
            (("VolumeId", volume["VolumeId"]),),
            "Sum",
        )
        for position, volume in enumerate(volumes)
        for metric in IO_METRICS
    ]
    window = MetricWindow.lookback(scope.now, lookback_days)
    values = CloudWatchMetrics(scope.client("cloudwatch")).fetch(queries, window)
    per_month = scope.prices.hours_per_month / (24 * lookback_days)
    return {
        volume["VolumeId"]: Decimal(str(sum(values[2 * position]) + sum(values[2 * position + 1])))
        * per_month
        for position, volume in enumerate(volumes)
    }


def _magnetic_saving(
    scope: RegionScope, volume: dict[str, Any], monthly_requests: Decimal, lookback_days: int
) -> Price:
    """Magnetic storage and I/O requests, less the same size of gp3 at its baseline."""

    def quotes(region: str) -> tuple[Quote | None, ...]:
        return (
            scope.prices.ebs_gb_month(region, "standard"),
            scope.prices.ebs_io_requests_million(region, "standard"),
            scope.prices.ebs_gb_month(region, "gp3"),
        )

    (magnetic, requests, gp3), estimated_because = _of_one_region(scope, quotes)
    if magnetic is None or requests is None or gp3 is None:
        return Price.unknown(
            "the price catalog lacks the Magnetic storage or I/O request price, or gp3's"
        )
    size_gb = int(volume["Size"])
    request_cost = (monthly_requests / MILLION * requests.unit_price).quantize(CENT)
    storage_difference = ((gp3.unit_price - magnetic.unit_price) * size_gb).quantize(CENT)
    return Price(
        request_cost - storage_difference,
        "list_price",
        _estimated(magnetic.detail(scope.prices), estimated_because)
        | {
            "saving": "Magnetic I/O requests - size_gb x (gp3 - Magnetic unit price)",
            "size_gb": size_gb,
            "magnetic_unit_price_usd": str(magnetic.unit_price),
            "gp3_unit_price_usd": str(gp3.unit_price),
            "io_requests_per_month": str(monthly_requests.quantize(Decimal(1))),
            "io_request_unit_price_usd": str(requests.unit_price),
            "io_request_unit": requests.unit,
            "note": f"I/O requests estimated from VolumeReadOps + VolumeWriteOps over the last "
            f"{lookback_days} days, run for a month",
        },
    )


def _io1_saving(scope: RegionScope, volume: dict[str, Any]) -> Price:
    """io1's flat IOPS price less io2's tiered one, on the volume's provisioned IOPS (storage
    bills the same on both)."""

    bounds = PIOPS_TIER_BOUNDS["io2"]

    def quotes(region: str) -> tuple[Quote | None, ...]:
        tiers = scope.prices.ebs_piops_month_tiers(region, "io2") or []
        return scope.prices.ebs_piops_month(region, "io1"), *(quote for _, quote in tiers)

    (io1, *tier_quotes), estimated_because = _of_one_region(scope, quotes)
    # Shorter than the bounds when the catalog lacks a tier.
    tiers = [(b, quote) for b, quote in zip(bounds, tier_quotes, strict=False) if quote]
    if io1 is None or len(tiers) < len(bounds):
        return Price.unknown("the price catalog lacks io1's IOPS price or io2's IOPS tiers")
    iops = int(volume.get("Iops") or 0)
    io2_cost, floor = Decimal(0), 0
    for bound, quote in tiers:
        in_tier = max(0, (iops if bound is None else min(iops, bound)) - floor)
        io2_cost += quote.unit_price * in_tier
        floor = bound if bound is not None else floor
    saving = (io1.unit_price * iops - io2_cost).quantize(CENT)
    return Price(
        saving,
        "list_price",
        _estimated(io1.detail(scope.prices), estimated_because)
        | {
            "saving": "provisioned IOPS x io1 unit price - the same IOPS at io2's tiered prices",
            "provisioned_iops": iops,
            "io1_unit_price_usd": str(io1.unit_price),
            "io2_tiers": [
                {"up_to_iops": bound, "unit_price_usd": str(quote.unit_price)}
                for bound, quote in tiers
            ],
        },
    )


def _of_one_region(
    scope: RegionScope, quotes: Callable[[str], tuple[Quote | None, ...]]
) -> tuple[tuple[Quote | None, ...], str | None]:
    """The prices a saving compares, all of one region, and why they are estimated (None when
    they are the scanned region's own).

    Where the region's price inputs have some of them and not the others (sa-east-1 prices io1's
    IOPS at $0.091 but not io2's tiers, quoted at us-east-1's $0.065), their difference would be
    the two regions', not the two types': every one is then the reference region's, and so is
    the saving, estimated.
    """
    own = quotes(scope.region)
    if len({quote.estimated for quote in own if quote is not None}) < 2:
        return own, None
    reference = scope.prices.reference_region
    why = (
        f"the price inputs for {scope.region} price only some of the types compared; the "
        f"saving is at the {reference} list prices"
    )
    return quotes(reference), why


def _estimated(detail: dict[str, Any], because: str | None) -> dict[str, Any]:
    return detail if because is None else detail | {"estimated": True, "estimated_because": because}
