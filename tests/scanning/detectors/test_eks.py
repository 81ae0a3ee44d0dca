"""aws.eks-cluster-idle under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.eks import IdleEksCluster, IdleEksClusterThresholds

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)
ROLE = "arn:aws:iam::123456789012:role/EksRole"


def subnets() -> list[str]:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])
    return [subnet["SubnetId"] for subnet in found["Subnets"]][:2]


def cluster(name: str = "platform") -> dict[str, Any]:
    created: dict[str, Any] = boto3.client("eks", region_name="us-east-1").create_cluster(
        name=name,
        roleArn=ROLE,
        resourcesVpcConfig={"subnetIds": subnets()},
        tags={"team": "platform"},
    )["cluster"]
    return created


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IdleEksClusterThresholds(**thresholds)
    return {waste.resource_id: waste for waste in IdleEksCluster().detect(scope, settings)}


def test_cluster_without_nodes_or_fargate_is_reported_at_its_control_plane_price(
    make_scope: MakeScope,
) -> None:
    created = cluster()
    now = created["createdAt"] + 10 * DAY

    waste = scan(make_scope(now=now))["platform"]

    assert waste.resource_type == "eks-cluster"
    assert waste.tags == {"team": "platform"}
    assert waste.evidence["node_groups"] == 0
    assert waste.evidence["fargate_profiles"] == 0
    # 0.10 $/h for 730 hours.
    assert waste.price.monthly_usd == Decimal("73.00")
    assert waste.price.basis == "list_price"
    assert "extended support" in waste.price.detail["note"]


def test_cluster_with_a_managed_node_group_is_not_reported(make_scope: MakeScope) -> None:
    created = cluster()
    boto3.client("eks", region_name="us-east-1").create_nodegroup(
        clusterName="platform", nodegroupName="general", nodeRole=ROLE, subnets=subnets()
    )
    now = created["createdAt"] + 10 * DAY

    assert scan(make_scope(now=now)) == {}


def test_cluster_with_a_fargate_profile_is_not_reported(make_scope: MakeScope) -> None:
    created = cluster()
    boto3.client("eks", region_name="us-east-1").create_fargate_profile(
        clusterName="platform",
        fargateProfileName="default",
        podExecutionRoleArn=ROLE,
        subnets=subnets(),
        selectors=[{"namespace": "default"}],
    )
    now = created["createdAt"] + 10 * DAY

    assert scan(make_scope(now=now)) == {}


def test_cluster_with_self_managed_node_instances_is_not_reported(make_scope: MakeScope) -> None:
    created = cluster()
    boto3.client("ec2", region_name="us-east-1").run_instances(
        ImageId="ami-760aaa0f",
        MinCount=1,
        MaxCount=1,
        InstanceType="m5.large",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "kubernetes.io/cluster/platform", "Value": "owned"}],
            }
        ],
    )
    now = created["createdAt"] + 10 * DAY

    assert scan(make_scope(now=now)) == {}


def test_a_stopped_node_instance_does_not_keep_a_cluster_busy(make_scope: MakeScope) -> None:
    created = cluster()
    ec2 = boto3.client("ec2", region_name="us-east-1")
    node = ec2.run_instances(
        ImageId="ami-760aaa0f",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "kubernetes.io/cluster/platform", "Value": "owned"}],
            }
        ],
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[node])
    now = created["createdAt"] + 10 * DAY

    assert "platform" in scan(make_scope(now=now))


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(hours=1), False)]
)
def test_cluster_reaching_the_minimum_age_is_reported(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    created = cluster()

    assert ("platform" in scan(make_scope(now=created["createdAt"] + age))) is reported
