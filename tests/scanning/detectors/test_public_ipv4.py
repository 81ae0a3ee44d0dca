"""aws.public-ipv4-on-stopped-instance under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.network import (
    StoppedInstanceAddress,
    StoppedInstanceAddressThresholds,
)

from .ec2_world import DAY, HOUR, ec2, launch, stop

MakeScope = Callable[..., RegionScope]


def held_address(instance: dict[str, Any], name: str = "build-agent-ip") -> str:
    """An Elastic IP associated with ``instance``; returns its allocation id."""
    address = ec2().allocate_address(
        Domain="vpc",
        TagSpecifications=[
            {"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": name}]}
        ],
    )
    ec2().associate_address(AllocationId=address["AllocationId"], InstanceId=instance["InstanceId"])
    return str(address["AllocationId"])


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = StoppedInstanceAddressThresholds(**thresholds)
    return {waste.resource_id: waste for waste in StoppedInstanceAddress().detect(scope, settings)}


def test_elastic_ip_of_an_instance_stopped_long_is_reported_at_the_ipv4_price(
    make_scope: MakeScope,
) -> None:
    instance = launch()
    allocation = held_address(instance)
    stopped_at = stop(instance)

    found = scan(make_scope(now=stopped_at + 10 * DAY))

    waste = found[allocation]
    assert waste.resource_type == "elastic-ip"
    assert waste.resource_name == "build-agent-ip"
    assert waste.evidence["instance_id"] == instance["InstanceId"]
    assert waste.evidence["stopped_days"] == pytest.approx(10, abs=0.01)
    assert waste.evidence["stopped_days_threshold"] == 7
    # 0.005 $/h x 730 h
    assert waste.price.monthly_usd == Decimal("3.65")
    assert waste.price.detail["estimated"] is False


def test_elastic_ip_of_a_running_instance_and_an_unassociated_one_are_not_reported(
    make_scope: MakeScope,
) -> None:
    held_address(launch())
    ec2().allocate_address(Domain="vpc")  # aws.eip-unassociated's, not this detector's

    assert scan(make_scope(now=utcnow() + 400 * DAY)) == {}


@pytest.mark.parametrize(
    ("stopped_for", "reported"), [(7 * DAY + HOUR, True), (7 * DAY - HOUR, False)]
)
def test_address_is_reported_only_once_its_instance_stopped_for_stopped_days(
    make_scope: MakeScope, stopped_for: dt.timedelta, reported: bool
) -> None:
    instance = launch()
    allocation = held_address(instance)
    stopped_at = stop(instance)

    found = scan(make_scope(now=stopped_at + stopped_for))

    assert (allocation in found) is reported
