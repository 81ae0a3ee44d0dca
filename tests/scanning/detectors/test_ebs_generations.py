"""aws.ebs-previous-generation under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws._ec2_common import VOLUME_COST
from valdrix.scanning.detectors.aws.ebs_generations import (
    PreviousGenerationThresholds,
    PreviousGenerationVolumes,
)

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]


def volume(volume_type: str, size: int = 100, region: str = "us-east-1", **extra: Any) -> str:
    created = boto3.client("ec2", region_name=region).create_volume(
        AvailabilityZone=f"{region}a", Size=size, VolumeType=volume_type, **extra
    )
    return str(created["VolumeId"])


def io_operations(volume_id: str, *, reads: float, writes: float, end: dt.datetime) -> None:
    """Fourteen days of reads and writes, spread evenly."""
    for metric, total in (("VolumeReadOps", reads), ("VolumeWriteOps", writes)):
        put_daily_values(
            namespace="AWS/EBS",
            metric=metric,
            dimension=("VolumeId", volume_id),
            values=[total / 14] * 14,
            end=end,
        )


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = PreviousGenerationThresholds(**thresholds)
    return {w.resource_id: w for w in PreviousGenerationVolumes().detect(scope, settings)}


def test_busy_magnetic_volume_is_reported_at_its_gp3_saving(make_scope: MakeScope) -> None:
    now = utcnow()
    magnetic = volume("standard")
    # 336 million requests in 14 days: 730 million in a 730-hour month.
    io_operations(magnetic, reads=236e6, writes=100e6, end=now)

    waste = scan(make_scope(now=now))[magnetic]

    assert waste.evidence["current_generation_type"] == "gp3"
    assert waste.evidence["io_requests_per_month"] == pytest.approx(730e6)
    # 730 x $0.05 of requests, less 100 GB x (0.08 - 0.05) more for gp3 storage.
    assert waste.price.monthly_usd == Decimal("36.50") - Decimal("3.00")
    assert waste.price.basis == "list_price"
    assert [(p.component, p.resource_id) for p in waste.cost_parts] == [(VOLUME_COST, magnetic)]


def test_quiet_magnetic_volume_is_cheaper_than_gp3_and_not_reported(
    make_scope: MakeScope,
) -> None:
    now = utcnow()
    magnetic = volume("standard")
    io_operations(magnetic, reads=1e6, writes=1e6, end=now)

    assert scan(make_scope(now=now)) == {}


def test_magnetic_volume_without_metrics_is_not_reported(make_scope: MakeScope) -> None:
    volume("standard")

    assert scan(make_scope()) == {}


def test_io1_volume_above_32000_iops_is_reported_at_its_io2_saving(make_scope: MakeScope) -> None:
    io1 = volume("io1", size=500, Iops=40_000)

    waste = scan(make_scope())[io1]

    assert waste.evidence["current_generation_type"] == "io2"
    assert waste.evidence["provisioned_iops"] == 40_000
    # 8,000 IOPS above io2's first tier at 0.0455 instead of 0.065 $/IOPS-month.
    assert waste.price.monthly_usd == Decimal("156.00")


@pytest.mark.parametrize(("iops", "reported"), [(32_000, False), (32_001, True)])
def test_io1_volume_saves_only_above_io2s_first_tier(
    make_scope: MakeScope, iops: int, reported: bool
) -> None:
    io1 = volume("io1", size=500, Iops=iops)

    assert (io1 in scan(make_scope())) is reported


def test_current_generation_volumes_are_not_reported(make_scope: MakeScope) -> None:
    volume("gp3")
    volume("io2", Iops=40_000)

    assert scan(make_scope()) == {}


@pytest.mark.parametrize(("minimum", "reported"), [("39.00", True), ("39.01", False)])
def test_saving_at_the_minimum_is_reported(
    make_scope: MakeScope, minimum: str, reported: bool
) -> None:
    # 2,000 IOPS above io2's first tier: 2,000 x 0.0195 = $39.00 a month.
    io1 = volume("io1", size=500, Iops=34_000)

    assert (io1 in scan(make_scope(), min_monthly_saving_usd=minimum)) is reported


# sa-east-1's price inputs have io1's IOPS price ($0.091) but not io2's tiers, which are quoted
# at us-east-1's ($0.065 up to 32,000 IOPS): the two regions' difference, not the two types'.
def test_io1_volume_below_io2s_first_tier_is_not_reported_where_io2_is_priced_elsewhere(
    make_scope: MakeScope,
) -> None:
    volume("io1", size=200, Iops=4000, region="sa-east-1")

    assert scan(make_scope(region="sa-east-1")) == {}


def test_io1_saving_where_io2_is_priced_elsewhere_is_the_reference_regions_and_estimated(
    make_scope: MakeScope,
) -> None:
    io1 = volume("io1", size=500, Iops=40_000, region="sa-east-1")

    waste = scan(make_scope(region="sa-east-1"))[io1]

    # Both types at us-east-1's prices: 8,000 IOPS above the first tier, 0.0455 not 0.065.
    assert waste.price.monthly_usd == Decimal("156.00")
    assert waste.price.detail["estimated"] is True
    assert "sa-east-1" in waste.price.detail["estimated_because"]
