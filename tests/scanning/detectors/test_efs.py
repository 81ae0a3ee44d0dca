"""aws.efs-idle under moto (and botocore's Stubber for sizes: moto's file systems store nothing)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.efs import IdleFileSystem, IdleFileSystemThresholds

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)
GB = 2**30


def file_system(name: str = "shared-home") -> dict[str, Any]:
    created: dict[str, Any] = boto3.client("efs", region_name="us-east-1").create_file_system(
        CreationToken=name, Tags=[{"Key": "Name", "Value": name}]
    )
    return created


def usage(file_system_id: str, *, connections: float, io_bytes: float, end: dt.datetime) -> None:
    """Fourteen days of use, all of it on the last day."""
    for metric, total in (("ClientConnections", connections), ("TotalIOBytes", io_bytes)):
        put_daily_values(
            namespace="AWS/EFS",
            metric=metric,
            dimension=("FileSystemId", file_system_id),
            values=[0.0] * 13 + [total],
            end=end,
        )


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IdleFileSystemThresholds(**thresholds)
    return {waste.resource_id: waste for waste in IdleFileSystem().detect(scope, settings)}


def test_file_system_nobody_connects_to_is_reported(make_scope: MakeScope) -> None:
    created = file_system()
    now = created["CreationTime"] + 20 * DAY
    usage(created["FileSystemId"], connections=0, io_bytes=0, end=now)

    waste = scan(make_scope(now=now))[created["FileSystemId"]]

    assert waste.resource_type == "efs-file-system"
    assert waste.resource_name == "shared-home"
    assert waste.evidence["client_connections"] == 0
    assert waste.evidence["io_bytes"] == 0
    assert waste.evidence["lookback_days"] == 14
    assert waste.price.basis == "list_price"
    assert waste.price.detail["storage_classes"]["standard"]["unit_price_usd"] == "0.3"


def test_file_system_with_client_connections_is_not_reported(make_scope: MakeScope) -> None:
    created = file_system()
    now = created["CreationTime"] + 20 * DAY
    usage(created["FileSystemId"], connections=3, io_bytes=0, end=now)

    assert scan(make_scope(now=now)) == {}


@pytest.mark.parametrize(("io_bytes", "reported"), [(4096.0, True), (4097.0, False)])
def test_io_at_the_threshold_counts_as_idle(
    make_scope: MakeScope, io_bytes: float, reported: bool
) -> None:
    created = file_system()
    now = created["CreationTime"] + 20 * DAY
    usage(created["FileSystemId"], connections=0, io_bytes=io_bytes, end=now)

    found = scan(make_scope(now=now), max_io_bytes=4096)

    assert (created["FileSystemId"] in found) is reported


def test_storage_is_priced_per_class_and_at_one_zone_prices_for_one_zone(
    make_scope: MakeScope,
) -> None:
    # Stubbed: moto's file systems always store 0 bytes.
    now = utcnow()
    created = now - 30 * DAY
    regional = {
        "FileSystemId": "fs-regional",
        "LifeCycleState": "available",
        "CreationTime": created,
        "SizeInBytes": {"Value": 600 * GB, "ValueInStandard": 100 * GB, "ValueInIA": 500 * GB},
    }
    one_zone = {
        "FileSystemId": "fs-onezone",
        "LifeCycleState": "available",
        "CreationTime": created,
        "AvailabilityZoneName": "us-east-1a",
        "SizeInBytes": {"Value": 100 * GB, "ValueInStandard": 100 * GB},
    }
    efs = boto3.client("efs", region_name="us-east-1")
    stubber = Stubber(efs)
    for fs in (regional, one_zone):
        fs |= {
            "OwnerId": "123456789012",
            "CreationToken": fs["FileSystemId"],
            "NumberOfMountTargets": 0,
            "PerformanceMode": "generalPurpose",
            "Tags": [],
        }
    stubber.add_response("describe_file_systems", {"FileSystems": [regional, one_zone]}, {})
    stubber.activate()
    for fs_id in ("fs-regional", "fs-onezone"):
        usage(fs_id, connections=0, io_bytes=0, end=now)
    scope = make_scope(now=now)
    stubbed = dataclasses.replace(
        scope, client=lambda service: efs if service == "efs" else scope.client(service)
    )

    found = scan(stubbed)

    # 100 GB x 0.30 + 500 GB x 0.016 $/GB-month; One Zone: 100 GB x 0.16 $/GB-month.
    assert found["fs-regional"].price.monthly_usd == Decimal("30.00") + Decimal("8.00")
    assert found["fs-onezone"].price.monthly_usd == Decimal("16.00")
    assert found["fs-onezone"].evidence["one_zone"] is True
    stubber.assert_no_pending_responses()
