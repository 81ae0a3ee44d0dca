"""Clients built one after another for many regions of one service (a scan builds one per
service and region) each answer for their own region, with their own limits."""

from __future__ import annotations

import datetime as dt

import boto3

from valdrix.connections.providers.aws import AwsAccess, Credentials

REGIONS = ("us-east-1", "eu-west-3", "sa-east-1")


def test_clients_of_one_service_each_answer_for_their_own_region(aws_endpoint: str) -> None:
    access = AwsAccess(endpoint_url=aws_endpoint)
    credentials = Credentials("simulated", "simulated", "simulated", dt.datetime.now(dt.UTC))
    created = {
        region: boto3.client("ec2", endpoint_url=aws_endpoint, region_name=region).create_volume(
            Size=8, AvailabilityZone=f"{region}a"
        )["VolumeId"]
        for region in REGIONS
    }

    clients = {
        region: access.client("ec2", region, credentials, within=4.0 + n)
        for n, region in enumerate(REGIONS)
    }

    for n, (region, client) in enumerate(clients.items()):
        described = [v["VolumeId"] for v in client.describe_volumes()["Volumes"]]
        assert created[region] in described
        assert not set(described) & (set(created.values()) - {created[region]})
        assert client.meta.config.read_timeout == access.limits_within(4.0 + n).read_timeout
