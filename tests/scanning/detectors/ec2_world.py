"""Building EC2 and EBS resources under moto for the EBS and EC2 detector tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import boto3

from valdrix.kit.orm import utcnow
from valdrix.scanning.providers.aws_pricing import aws_catalog

# moto's Amazon Linux AMI (moto marks its most used example AMI, ami-12c6146b, as Windows).
LINUX_AMI = "ami-760aaa0f"
WINDOWS_AMI = "ami-12c6146b"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def ec2(region: str = "us-east-1") -> Any:
    return boto3.client("ec2", region_name=region)


def name_tags(resource_type: str, name: str | None) -> list[dict[str, Any]]:
    if name is None:
        return []
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def create_volume(
    size: int = 100,
    volume_type: str = "gp2",
    *,
    region: str = "us-east-1",
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return dict(
        ec2(region).create_volume(
            AvailabilityZone=f"{region}a",
            Size=size,
            VolumeType=volume_type,
            TagSpecifications=name_tags("volume", name),
            **extra,
        )
    )


def launch(
    instance_type: str = "m5.large",
    *,
    region: str = "us-east-1",
    image_id: str = LINUX_AMI,
    name: str | None = None,
) -> dict[str, Any]:
    """A running instance with moto's 8 GiB gp2 root volume."""
    reservation = ec2(region).run_instances(
        ImageId=image_id,
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        Placement={"AvailabilityZone": f"{region}a"},
        TagSpecifications=name_tags("instance", name),
    )
    return dict(reservation["Instances"][0])


def stop(instance: dict[str, Any], region: str = "us-east-1") -> dt.datetime:
    """Stop the instance; returns (to the second) the stop time AWS records."""
    ec2(region).stop_instances(InstanceIds=[instance["InstanceId"]])
    return utcnow().replace(microsecond=0)


def attached_volumes(instance: dict[str, Any], region: str = "us-east-1") -> list[dict[str, Any]]:
    filters = [{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    return list(ec2(region).describe_volumes(Filters=filters)["Volumes"])


def gb_month(volume_type: str) -> Decimal:
    quote = aws_catalog().ebs_gb_month("us-east-1", volume_type)
    assert quote is not None
    return quote.unit_price
