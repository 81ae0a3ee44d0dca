"""The simulated AWS answers describes by id as AWS does, where moto 5.2 does not: tools that
ask for the same instance twice, or for a volume that is gone (Cloud Custodian's ``instance``
and ``volume`` filters do both), get AWS's answer rather than a server error."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from valdrix.simulator.demo_region import LINUX_AMI

GONE_VOLUME = "vol-0123456789abcdef0"


def ec2_client(endpoint: str) -> Any:
    return boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")


def test_an_instance_asked_for_twice_is_described_once(aws_endpoint: str) -> None:
    ec2 = ec2_client(aws_endpoint)
    launched = ec2.run_instances(ImageId=LINUX_AMI, MinCount=2, MaxCount=2)["Instances"]
    first, second = (instance["InstanceId"] for instance in launched)

    answer = ec2.describe_instances(InstanceIds=[first, second, first])

    described = [i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]]
    assert sorted(described) == sorted([first, second])


def test_an_unknown_instance_among_known_ones_is_still_refused(aws_endpoint: str) -> None:
    ec2 = ec2_client(aws_endpoint)
    [launched] = ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1)["Instances"]

    with pytest.raises(ClientError) as refused:
        ec2.describe_instances(InstanceIds=[launched["InstanceId"], "i-0123456789abcdef0"])

    assert refused.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    assert "i-0123456789abcdef0" in refused.value.response["Error"]["Message"]


def test_an_unknown_volume_is_named_alone_so_a_caller_can_drop_it_and_ask_again(
    aws_endpoint: str,
) -> None:
    ec2 = ec2_client(aws_endpoint)
    kept = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    asked = [kept, GONE_VOLUME, kept]

    with pytest.raises(ClientError) as refused:
        ec2.describe_volumes(VolumeIds=asked)

    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidVolume.NotFound"
    assert error["Message"] == f"The volume '{GONE_VOLUME}' does not exist."
    # What Cloud Custodian does with it: the id between the quotes is dropped, the rest asked.
    named = error["Message"].split("'")[1]
    remaining = [volume_id for volume_id in asked if volume_id != named]
    described = ec2.describe_volumes(VolumeIds=remaining)["Volumes"]
    assert [volume["VolumeId"] for volume in described] == [kept]


def test_volumes_asked_by_id_still_honour_filters(aws_endpoint: str) -> None:
    ec2 = ec2_client(aws_endpoint)
    gp2 = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a", VolumeType="gp2")["VolumeId"]
    gp3 = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a", VolumeType="gp3")["VolumeId"]

    described = ec2.describe_volumes(
        VolumeIds=[gp2, gp3], Filters=[{"Name": "volume-type", "Values": ["gp3"]}]
    )["Volumes"]

    assert [volume["VolumeId"] for volume in described] == [gp3]


def test_each_resource_is_described_with_its_own_tags_alone(aws_endpoint: str) -> None:
    ec2 = ec2_client(aws_endpoint)
    volumes = [
        ec2.create_volume(
            Size=8,
            AvailabilityZone="us-east-1a",
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [{"Key": "Name", "Value": f"disk-{n}"}, {"Key": "n", "Value": str(n)}],
                }
            ],
        )["VolumeId"]
        for n in range(3)
    ]
    ec2.create_tags(Resources=[volumes[1]], Tags=[{"Key": "team", "Value": "data"}])
    ec2.delete_tags(Resources=[volumes[2]], Tags=[{"Key": "n"}])

    described = ec2.describe_volumes(VolumeIds=volumes)["Volumes"]

    tags = {v["VolumeId"]: {t["Key"]: t["Value"] for t in v["Tags"]} for v in described}
    assert tags == {
        volumes[0]: {"Name": "disk-0", "n": "0"},
        volumes[1]: {"Name": "disk-1", "n": "1", "team": "data"},
        volumes[2]: {"Name": "disk-2"},
    }
    tagged_data = ec2.describe_volumes(Filters=[{"Name": "tag:team", "Values": ["data"]}])
    assert [v["VolumeId"] for v in tagged_data["Volumes"]] == [volumes[1]]
