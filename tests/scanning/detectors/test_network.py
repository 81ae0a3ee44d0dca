"""aws.eip-unassociated and aws.nat-gateway-idle under moto."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.network import (
    IdleNatGateway,
    IdleNatGatewayThresholds,
    UnassociatedElasticIp,
    UnassociatedElasticIpThresholds,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)


def ec2(region: str = "us-east-1") -> Any:
    return boto3.client("ec2", region_name=region)


def subnet(region: str = "us-east-1") -> str:
    vpc = ec2(region).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return str(ec2(region).create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"])


def allocate(region: str = "us-east-1", name: str | None = None) -> dict[str, Any]:
    tags = (
        [{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": name}]}] if name else []
    )
    return dict(ec2(region).allocate_address(Domain="vpc", TagSpecifications=tags))


def nat_gateway(region: str = "us-east-1") -> dict[str, Any]:
    gateway = ec2(region).create_nat_gateway(
        SubnetId=subnet(region),
        AllocationId=allocate(region)["AllocationId"],
        TagSpecifications=[
            {"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": "egress"}]}
        ],
    )["NatGateway"]
    return dict(gateway)


def bytes_out(gateway: dict[str, Any], values: list[float], end: dt.datetime) -> None:
    put_daily_values(
        namespace="AWS/NATGateway",
        metric="BytesOutToDestination",
        dimension=("NatGatewayId", gateway["NatGatewayId"]),
        values=values,
        end=end,
    )


def scan_eips(scope: RegionScope) -> list[Waste]:
    return list(UnassociatedElasticIp().detect(scope, UnassociatedElasticIpThresholds()))


def scan_nats(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    return list(IdleNatGateway().detect(scope, IdleNatGatewayThresholds(**thresholds)))


def monthly(hourly: Decimal) -> Decimal:
    return (hourly * aws_catalog().hours_per_month).quantize(Decimal("0.01"))


# --- aws.eip-unassociated -------------------------------------------------------------------


def test_unassociated_elastic_ip_is_reported_at_the_public_ipv4_hourly_price(
    make_scope: MakeScope,
) -> None:
    address = allocate(name="old-bastion")

    [waste] = scan_eips(make_scope())

    assert waste.resource_id == address["AllocationId"]
    assert waste.resource_name == "old-bastion"
    assert waste.tags == {"Name": "old-bastion"}
    assert waste.evidence["public_ip"] == address["PublicIp"]
    assert waste.price.basis == "list_price"
    hourly = aws_catalog().public_ipv4_hour("us-east-1")
    assert hourly is not None
    assert waste.price.monthly_usd == monthly(hourly.unit_price) == Decimal("3.65")
    assert waste.price.detail["estimated"] is False


def test_elastic_ip_associated_with_an_instance_is_not_reported(make_scope: MakeScope) -> None:
    address = allocate()
    instance = ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    ec2().associate_address(AllocationId=address["AllocationId"], InstanceId=instance["InstanceId"])

    assert scan_eips(make_scope()) == []


def test_elastic_ip_held_by_a_nat_gateway_counts_as_associated(make_scope: MakeScope) -> None:
    # The edge of "associated": no instance, but a network interface (the NAT gateway's) uses it.
    nat_gateway()

    assert scan_eips(make_scope()) == []


def test_elastic_ip_outside_the_priced_regions_is_marked_estimated(make_scope: MakeScope) -> None:
    allocate(region="ap-southeast-2")

    [waste] = scan_eips(make_scope(region="ap-southeast-2"))

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == Decimal("3.65")


# --- aws.nat-gateway-idle -------------------------------------------------------------------


def test_nat_gateway_with_no_bytes_out_over_the_lookback_is_reported(
    make_scope: MakeScope,
) -> None:
    gateway = nat_gateway()
    now = gateway["CreateTime"] + 30 * DAY
    bytes_out(gateway, [0.0] * 14, end=now)

    [waste] = scan_nats(make_scope(now=now))

    assert waste.resource_id == gateway["NatGatewayId"]
    assert waste.resource_name == "egress"
    assert waste.evidence["bytes_out_to_destination"] == 0
    assert waste.evidence["datapoints"] == 14
    assert waste.evidence["lookback_days"] == 14
    assert waste.evidence["max_bytes"] == 0
    hourly = aws_catalog().nat_gateway_hour("us-east-1")
    assert hourly is not None
    assert waste.price.monthly_usd == monthly(hourly.unit_price) == Decimal("32.85")
    assert waste.price.detail["estimated"] is False


def test_nat_gateway_carrying_traffic_is_not_reported(make_scope: MakeScope) -> None:
    gateway = nat_gateway()
    now = gateway["CreateTime"] + 30 * DAY
    bytes_out(gateway, [0.0] * 13 + [52_000_000.0], end=now)

    assert scan_nats(make_scope(now=now)) == []


def test_nat_gateway_without_any_datapoints_is_not_judged(make_scope: MakeScope) -> None:
    gateway = nat_gateway()

    assert scan_nats(make_scope(now=gateway["CreateTime"] + 30 * DAY)) == []


def test_traffic_before_the_lookback_does_not_count(make_scope: MakeScope) -> None:
    gateway = nat_gateway()
    now = gateway["CreateTime"] + 30 * DAY
    bytes_out(gateway, [9_000_000.0] * 5 + [0.0] * 14, end=now)  # busy 15-19 days ago

    [waste] = scan_nats(make_scope(now=now))
    assert waste.evidence["bytes_out_to_destination"] == 0


@pytest.mark.parametrize(("max_bytes", "reported"), [(1000, True), (999, False)])
def test_bytes_out_at_the_threshold_are_idle_and_one_more_byte_is_not(
    make_scope: MakeScope, max_bytes: int, reported: bool
) -> None:
    gateway = nat_gateway()
    now = gateway["CreateTime"] + 30 * DAY
    bytes_out(gateway, [0.0] * 13 + [1000.0], end=now)

    found = scan_nats(make_scope(now=now), max_bytes=max_bytes)

    assert bool(found) is reported


@pytest.mark.parametrize(
    ("age", "reported"), [(14 * DAY, True), (14 * DAY - dt.timedelta(seconds=1), False)]
)
def test_nat_gateway_is_judged_only_once_as_old_as_the_lookback(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    gateway = nat_gateway()
    now = gateway["CreateTime"] + age
    bytes_out(gateway, [0.0] * 13, end=now)

    assert bool(scan_nats(make_scope(now=now))) is reported


@pytest.mark.parametrize(
    ("age", "reported"), [(2 * DAY, True), (2 * DAY - dt.timedelta(seconds=1), False)]
)
def test_nat_gateway_younger_than_the_lookback_is_judged_from_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    gateway = nat_gateway()
    now = gateway["CreateTime"] + age
    bytes_out(gateway, [0.0] * 2, end=now)

    found = scan_nats(make_scope(now=now), min_age_days=2)

    assert bool(found) is reported
    assert all(waste.evidence["min_age_days"] == 2 for waste in found)


def test_idle_nat_gateway_outside_the_priced_regions_is_marked_estimated(
    make_scope: MakeScope,
) -> None:
    region = "eu-central-1"
    gateway = nat_gateway(region)
    now = gateway["CreateTime"] + 30 * DAY
    put_daily_values(
        namespace="AWS/NATGateway",
        metric="BytesOutToDestination",
        dimension=("NatGatewayId", gateway["NatGatewayId"]),
        values=[0.0] * 14,
        end=now,
        region=region,
    )

    [waste] = scan_nats(make_scope(region=region, now=now))

    assert waste.price.detail["estimated"] is True


def test_all_gateways_are_read_from_cloudwatch_in_one_batched_call(
    make_scope: MakeScope,
) -> None:
    gateways = [nat_gateway() for _ in range(3)]
    now = max(g["CreateTime"] for g in gateways) + 30 * DAY
    for gateway in gateways:
        bytes_out(gateway, [0.0] * 14, end=now)
    scope = make_scope(now=now)
    calls: Counter[str] = Counter()

    def counting_client(service: str) -> Any:
        client = scope.client(service)
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
        return client

    found = scan_nats(dataclasses.replace(scope, client=counting_client))

    assert len(found) == 3
    assert calls["GetMetricData"] == 1
