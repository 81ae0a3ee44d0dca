"""Timestamps in AWS answers are read as the instants AWS wrote, whatever their notation."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest

from valdrix.connections.providers.aws import AwsAccess, Credentials, parse_aws_timestamp

UTC = dt.UTC


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        ("2026-03-01T10:15:30.000Z", dt.datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("2026-03-01T10:15:30.123456Z", dt.datetime(2026, 3, 1, 10, 15, 30, 123456, tzinfo=UTC)),
        ("2026-03-01T12:15:30+02:00", dt.datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("Sun, 01 Mar 2026 10:15:30 GMT", dt.datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)),
        (1772360130, dt.datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("1772360130.5", dt.datetime(2026, 3, 1, 10, 15, 30, 500000, tzinfo=UTC)),
    ],
)
def test_each_notation_aws_uses_reads_as_the_same_aware_instant(
    written: object, instant: dt.datetime
) -> None:
    parsed = parse_aws_timestamp(written)

    assert parsed.tzinfo is not None
    assert parsed == instant


def test_clients_give_creation_times_as_aware_datetimes(aws_endpoint: str) -> None:
    access = AwsAccess(endpoint_url=aws_endpoint)
    credentials = Credentials("simulated", "simulated", "simulated", dt.datetime.now(UTC))
    created = boto3.client("ec2", endpoint_url=aws_endpoint, region_name="us-east-1")
    created.create_volume(Size=8, AvailabilityZone="us-east-1a")
    before = dt.datetime.now(UTC) - dt.timedelta(minutes=5)

    [volume] = access.client("ec2", "us-east-1", credentials).describe_volumes()["Volumes"]

    assert volume["CreateTime"].tzinfo is not None
    assert before < volume["CreateTime"] <= dt.datetime.now(UTC)
