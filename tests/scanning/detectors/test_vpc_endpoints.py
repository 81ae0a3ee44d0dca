"""aws.vpc-endpoint-idle under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.network import (
    IdleInterfaceEndpoint,
    IdleInterfaceEndpointThresholds,
)

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)
SERVICE = "com.amazonaws.us-east-1.secretsmanager"


def endpoint(kind: str = "Interface", zones: int = 2) -> dict[str, Any]:
    """An endpoint with a network interface in ``zones`` Availability Zones."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in enumerate("abc"[:zones])
    ]
    placement: dict[str, Any] = {"SubnetIds": subnets} if kind == "Interface" else {}
    created: dict[str, Any] = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=SERVICE,
        VpcEndpointType=kind,
        TagSpecifications=[
            {"ResourceType": "vpc-endpoint", "Tags": [{"Key": "Name", "Value": "secrets"}]}
        ],
        **placement,
    )["VpcEndpoint"]
    return created


def processed(
    created: dict[str, Any], total: float, end: dt.datetime, kind: str = "Interface"
) -> None:
    """Fourteen days of BytesProcessed, all of it on the last day."""
    dimensions = {
        "Endpoint Type": kind,
        "Service Name": SERVICE,
        "VPC Endpoint Id": created["VpcEndpointId"],
        "VPC Id": created["VpcId"],
    }
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/PrivateLinkEndpoints",
        MetricData=[
            {
                "MetricName": "BytesProcessed",
                "Dimensions": [{"Name": n, "Value": v} for n, v in dimensions.items()],
                "Timestamp": end - dt.timedelta(hours=1) - day * DAY,
                "Value": total if day == 0 else 0.0,
            }
            for day in range(14)
        ],
    )


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IdleInterfaceEndpointThresholds(**thresholds)
    return {waste.resource_id: waste for waste in IdleInterfaceEndpoint().detect(scope, settings)}


def test_interface_endpoint_nothing_uses_is_reported_per_zone_hour(make_scope: MakeScope) -> None:
    created = endpoint(zones=2)
    now = created["CreationTimestamp"] + 20 * DAY
    processed(created, 0.0, now)

    waste = scan(make_scope(now=now))[created["VpcEndpointId"]]

    assert waste.resource_type == "vpc-endpoint"
    assert waste.resource_name == "secrets"
    assert waste.evidence["service_name"] == SERVICE
    assert waste.evidence["availability_zones"] == 2
    assert waste.evidence["bytes_processed"] == 0
    # 0.01 $ per endpoint per zone-hour x 2 zones x 730 h
    assert waste.price.monthly_usd == Decimal("14.60")
    assert waste.price.detail["quantity"] == 2
    assert waste.price.detail["estimated"] is False


def test_endpoint_that_carries_traffic_and_a_gateway_endpoint_are_not_reported(
    make_scope: MakeScope,
) -> None:
    busy, gateway = endpoint(), endpoint("Gateway")
    now = busy["CreationTimestamp"] + 20 * DAY
    processed(busy, 5e6, now)
    processed(gateway, 0.0, now, kind="Gateway")

    assert scan(make_scope(now=now)) == {}


@pytest.mark.parametrize(("total", "reported"), [(1000.0, True), (1001.0, False)])
def test_bytes_at_the_threshold_count_as_idle(
    make_scope: MakeScope, total: float, reported: bool
) -> None:
    created = endpoint()
    now = created["CreationTimestamp"] + 20 * DAY
    processed(created, total, now)

    found = scan(make_scope(now=now), max_bytes=1000)

    assert (created["VpcEndpointId"] in found) is reported
