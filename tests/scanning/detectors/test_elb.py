"""aws.elb-idle under moto: ALB/NLB through elbv2, classic ELBs through elb."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.elb import IdleLoadBalancer, IdleLoadBalancerThresholds
from valdrix.scanning.providers.aws_pricing import aws_catalog

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)


class Network:
    """A VPC with two subnets in two zones (what an ALB needs), in one region."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.ec2 = boto3.client("ec2", region_name=region)
        self.elbv2 = boto3.client("elbv2", region_name=region)
        self.elb = boto3.client("elb", region_name=region)
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            self.ec2.create_subnet(
                VpcId=self.vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=f"{region}{zone}"
            )["Subnet"]["SubnetId"]
            for index, zone in enumerate("ab")
        ]

    def instance(self) -> str:
        instance_id: str = self.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=self.subnets[0]
        )["Instances"][0]["InstanceId"]
        return instance_id

    def stop(self, instance_id: str) -> None:
        self.ec2.stop_instances(InstanceIds=[instance_id])

    def load_balancer(self, kind: str = "application", name: str = "web") -> dict[str, Any]:
        balancer: dict[str, Any] = self.elbv2.create_load_balancer(
            Name=name, Subnets=self.subnets, Type=kind, Tags=[{"Key": "team", "Value": "web"}]
        )["LoadBalancers"][0]
        return balancer

    def target_group(self, balancer: dict[str, Any], *targets: str) -> None:
        group = self.elbv2.create_target_group(
            Name=f"{balancer['LoadBalancerName']}-tg", Protocol="HTTP", Port=80, VpcId=self.vpc
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
        )
        if targets:
            self.elbv2.register_targets(
                TargetGroupArn=group, Targets=[{"Id": target} for target in targets]
            )

    def classic(self, name: str = "legacy", *instances: str) -> dict[str, Any]:
        self.elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
            AvailabilityZones=[f"{self.region}a"],
            Tags=[{"Key": "team", "Value": "legacy"}],
        )
        if instances:
            self.elb.register_instances_with_load_balancer(
                LoadBalancerName=name, Instances=[{"InstanceId": i} for i in instances]
            )
        description: dict[str, Any] = self.elb.describe_load_balancers(LoadBalancerNames=[name])[
            "LoadBalancerDescriptions"
        ][0]
        return description


def scan(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    return list(IdleLoadBalancer().detect(scope, IdleLoadBalancerThresholds(**thresholds)))


def monthly_list_price(kind: str, region: str = "us-east-1") -> Decimal:
    catalog = aws_catalog()
    hourly = catalog.load_balancer_hour(region, kind)
    assert hourly is not None
    return catalog.monthly(hourly)


# --- ALB / NLB ------------------------------------------------------------------------------


def test_application_load_balancer_without_targets_is_reported(make_scope: MakeScope) -> None:
    net = Network()
    balancer = net.load_balancer()
    net.target_group(balancer)

    [waste] = scan(make_scope(now=balancer["CreatedTime"] + 8 * DAY))

    assert waste.resource_id == balancer["LoadBalancerArn"]
    assert waste.resource_name == "web"
    assert waste.resource_type == "load-balancer"
    assert waste.reason == "application load balancer has no registered targets"
    assert waste.tags == {"team": "web"}
    assert waste.evidence | {"age_days": None} == {
        "type": "application",
        "target_groups": 1,
        "registered_targets": 0,
        "healthy_targets": 0,
        "age_days": None,
        "min_age_days": 7,
    }
    assert waste.price.basis == "list_price"
    assert waste.price.monthly_usd == monthly_list_price("application")
    assert waste.price.detail["unit_price_usd"] == "0.0225"
    assert waste.price.detail["estimated"] is False


def test_load_balancer_whose_only_target_is_unhealthy_is_reported(make_scope: MakeScope) -> None:
    net = Network()
    balancer = net.load_balancer()
    target = net.instance()
    net.target_group(balancer, target)
    net.stop(target)  # its target health becomes "unused"

    [waste] = scan(make_scope(now=balancer["CreatedTime"] + 8 * DAY))

    assert waste.reason == "application load balancer has 1 registered targets and none is healthy"
    assert waste.evidence["registered_targets"] == 1
    assert waste.evidence["healthy_targets"] == 0


def test_load_balancer_with_a_healthy_target_is_not_reported(make_scope: MakeScope) -> None:
    net = Network()
    balancer = net.load_balancer()
    stopped = net.instance()
    net.target_group(balancer, net.instance(), stopped)
    net.stop(stopped)

    assert scan(make_scope(now=balancer["CreatedTime"] + 8 * DAY)) == []


def test_network_load_balancer_is_priced_as_one(make_scope: MakeScope) -> None:
    net = Network()
    balancer = net.load_balancer(kind="network", name="tcp")

    [waste] = scan(make_scope(now=balancer["CreatedTime"] + 8 * DAY))

    assert waste.evidence["type"] == "network"
    assert waste.evidence["target_groups"] == 0
    assert waste.price.monthly_usd == monthly_list_price("network")


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(seconds=1), False)]
)
def test_load_balancer_is_judged_only_from_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    balancer = Network().load_balancer()

    assert bool(scan(make_scope(now=balancer["CreatedTime"] + age))) is reported


def test_min_age_days_can_be_raised_per_connection(make_scope: MakeScope) -> None:
    balancer = Network().load_balancer()

    assert scan(make_scope(now=balancer["CreatedTime"] + 8 * DAY), min_age_days=30) == []


def test_idle_load_balancer_outside_the_priced_regions_is_marked_estimated(
    make_scope: MakeScope,
) -> None:
    balancer = Network(region="eu-south-2").load_balancer()

    [waste] = scan(make_scope(region="eu-south-2", now=balancer["CreatedTime"] + 8 * DAY))

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == monthly_list_price("application")


def test_idle_load_balancer_in_a_region_with_its_own_prices_is_priced_there(
    make_scope: MakeScope,
) -> None:
    balancer = Network(region="sa-east-1").load_balancer()

    [waste] = scan(make_scope(region="sa-east-1", now=balancer["CreatedTime"] + 8 * DAY))

    hourly = aws_catalog().load_balancer_hour("sa-east-1", "application")
    assert hourly is not None and not hourly.estimated
    assert waste.price.detail["estimated"] is False
    assert waste.price.monthly_usd == aws_catalog().monthly(hourly)
    assert waste.price.monthly_usd != monthly_list_price("application")


# --- classic --------------------------------------------------------------------------------


def test_classic_load_balancer_without_instances_is_reported(make_scope: MakeScope) -> None:
    classic = Network().classic("legacy")

    [waste] = scan(make_scope(now=classic["CreatedTime"] + 8 * DAY))

    assert waste.resource_id == "legacy"
    assert waste.resource_type == "load-balancer"
    assert waste.reason == "classic load balancer has no registered instances"
    assert waste.tags == {"team": "legacy"}
    assert waste.evidence["registered_instances"] == 0
    assert waste.price.monthly_usd == monthly_list_price("classic") == Decimal("18.25")


def test_classic_load_balancer_with_no_instance_in_service_is_reported(
    make_scope: MakeScope,
) -> None:
    net = Network()
    instance = net.instance()
    classic = net.classic("legacy", instance)
    net.stop(instance)  # OutOfService

    [waste] = scan(make_scope(now=classic["CreatedTime"] + 8 * DAY))

    assert waste.evidence["registered_instances"] == 1
    assert waste.evidence["in_service_instances"] == 0


def test_classic_load_balancer_with_an_instance_in_service_is_not_reported(
    make_scope: MakeScope,
) -> None:
    net = Network()
    classic = net.classic("legacy", net.instance())

    assert scan(make_scope(now=classic["CreatedTime"] + 8 * DAY)) == []


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(seconds=1), False)]
)
def test_classic_load_balancer_is_judged_only_from_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    classic = Network().classic("legacy")

    assert bool(scan(make_scope(now=classic["CreatedTime"] + age))) is reported
