"""aws.rds-idle and aws.rds-snapshot-orphaned under moto."""

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
from valdrix.scanning.detectors.aws.rds import (
    IdleRdsInstance,
    IdleRdsInstanceThresholds,
    OrphanedRdsSnapshot,
    OrphanedRdsSnapshotThresholds,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)


def rds(region: str = "us-east-1") -> Any:
    return boto3.client("rds", region_name=region)


def database(
    name: str = "orders",
    *,
    region: str = "us-east-1",
    engine: str = "postgres",
    instance_class: str = "db.t3.micro",
    **options: Any,
) -> dict[str, Any]:
    created: dict[str, Any] = rds(region).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass=instance_class,
        Engine=engine,
        AllocatedStorage=options.pop("AllocatedStorage", 20),
        MasterUsername="admin",
        MasterUserPassword="correct-horse-battery",
        Tags=[{"Key": "team", "Value": "billing"}],
        **options,
    )["DBInstance"]
    return created


def connections(
    db: dict[str, Any], values: list[float], end: dt.datetime, region: str = "us-east-1"
) -> None:
    put_daily_values(
        namespace="AWS/RDS",
        metric="DatabaseConnections",
        dimension=("DBInstanceIdentifier", db["DBInstanceIdentifier"]),
        values=values,
        end=end,
        region=region,
    )


def scan_idle(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    return list(IdleRdsInstance().detect(scope, IdleRdsInstanceThresholds(**thresholds)))


def scan_snapshots(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    return list(OrphanedRdsSnapshot().detect(scope, OrphanedRdsSnapshotThresholds(**thresholds)))


def expected_instance_price(
    engine: str, instance_class: str, storage_gb: int, copies: int = 1
) -> Decimal:
    catalog = aws_catalog()
    hourly = catalog.rds_hour("us-east-1", engine, instance_class)
    storage = catalog.rds_storage_gb_month("us-east-1", "gp2")
    assert hourly is not None and storage is not None
    storage_monthly = (storage.unit_price * storage_gb * copies).quantize(Decimal("0.01"))
    return catalog.monthly(hourly) * copies + storage_monthly


# --- aws.rds-idle ---------------------------------------------------------------------------


def test_instance_without_connections_over_the_lookback_is_reported(
    make_scope: MakeScope,
) -> None:
    db = database()
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 7, end=now)

    [waste] = scan_idle(make_scope(now=now))

    assert waste.resource_id == "orders"
    assert waste.resource_type == "rds-instance"
    assert waste.tags == {"team": "billing"}
    assert waste.evidence["peak_connections"] == 0
    assert waste.evidence["datapoints"] == 7
    assert waste.evidence["lookback_days"] == 7
    assert waste.evidence["max_connections"] == 0
    assert waste.price.basis == "list_price"
    # db.t3.micro PostgreSQL: 0.018 $/h x 730 h + 20 GB gp2 x 0.115 $/GB-month
    assert waste.price.monthly_usd == expected_instance_price("postgres", "db.t3.micro", 20)
    assert waste.price.monthly_usd == Decimal("13.14") + Decimal("2.30")
    assert waste.price.detail["estimated"] is False


def test_instance_with_connections_is_not_reported(make_scope: MakeScope) -> None:
    db = database()
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 6 + [4.0], end=now)

    assert scan_idle(make_scope(now=now)) == []


def test_instance_without_datapoints_is_not_judged(make_scope: MakeScope) -> None:
    db = database()

    assert scan_idle(make_scope(now=db["InstanceCreateTime"] + 10 * DAY)) == []


def test_stopped_instance_is_not_judged_for_connections(make_scope: MakeScope) -> None:
    db = database()
    rds().stop_db_instance(DBInstanceIdentifier="orders")
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 7, end=now)

    assert scan_idle(make_scope(now=now)) == []


@pytest.mark.parametrize(("peak", "reported"), [(2.0, True), (3.0, False)])
def test_peak_connections_at_the_threshold_count_as_idle(
    make_scope: MakeScope, peak: float, reported: bool
) -> None:
    db = database()
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [1.0] * 6 + [peak], end=now)

    found = scan_idle(make_scope(now=now), max_connections=2)

    assert bool(found) is reported


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(seconds=1), False)]
)
def test_instance_is_judged_only_once_as_old_as_the_lookback(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    db = database()
    now = db["InstanceCreateTime"] + age
    connections(db, [0.0] * 6, end=now)

    assert bool(scan_idle(make_scope(now=now))) is reported


@pytest.mark.parametrize(("age", "reported"), [(DAY, True), (DAY - dt.timedelta(seconds=1), False)])
def test_instance_younger_than_the_lookback_is_judged_from_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    db = database()
    now = db["InstanceCreateTime"] + age
    connections(db, [0.0], end=now)

    found = scan_idle(make_scope(now=now), min_age_days=1)

    assert bool(found) is reported
    assert all(waste.evidence["min_age_days"] == 1 for waste in found)


def test_multi_az_instance_is_priced_with_its_standby(make_scope: MakeScope) -> None:
    db = database(engine="mysql", instance_class="db.m5.large", MultiAZ=True, AllocatedStorage=100)
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 7, end=now)

    [waste] = scan_idle(make_scope(now=now))

    assert waste.price.monthly_usd == expected_instance_price("mysql", "db.m5.large", 100, 2)
    assert waste.price.detail["multi_az_copies"] == 2


def test_instance_class_missing_from_the_catalog_has_an_unknown_price(
    make_scope: MakeScope,
) -> None:
    db = database(instance_class="db.x2g.large")
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 7, end=now)

    [waste] = scan_idle(make_scope(now=now))

    assert waste.price.basis == "unknown"
    assert waste.price.monthly_usd is None
    assert "db.x2g.large" in waste.price.detail["why"]


def test_provisioned_iops_storage_has_an_unknown_price(make_scope: MakeScope) -> None:
    db = database(StorageType="io1", Iops=3000, AllocatedStorage=100)
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 7, end=now)

    [waste] = scan_idle(make_scope(now=now))

    assert waste.price.basis == "unknown"


def test_idle_instance_outside_the_priced_regions_is_marked_estimated(
    make_scope: MakeScope,
) -> None:
    db = database(region="eu-west-3")
    now = db["InstanceCreateTime"] + 10 * DAY
    connections(db, [0.0] * 7, end=now, region="eu-west-3")

    [waste] = scan_idle(make_scope(region="eu-west-3", now=now))

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == expected_instance_price("postgres", "db.t3.micro", 20)


# --- aws.rds-snapshot-orphaned --------------------------------------------------------------


def snapshot_of(db: dict[str, Any], name: str, region: str = "us-east-1") -> dict[str, Any]:
    snapshot: dict[str, Any] = rds(region).create_db_snapshot(
        DBSnapshotIdentifier=name,
        DBInstanceIdentifier=db["DBInstanceIdentifier"],
        Tags=[{"Key": "purpose", "Value": "pre-migration"}],
    )["DBSnapshot"]
    return snapshot


def delete(db: dict[str, Any], region: str = "us-east-1") -> None:
    rds(region).delete_db_instance(
        DBInstanceIdentifier=db["DBInstanceIdentifier"], SkipFinalSnapshot=True
    )


def test_old_manual_snapshot_of_a_deleted_instance_is_reported(make_scope: MakeScope) -> None:
    db = database(AllocatedStorage=50)
    snapshot = snapshot_of(db, "orders-final")
    delete(db)

    [waste] = scan_snapshots(make_scope(now=snapshot["SnapshotCreateTime"] + 100 * DAY))

    assert waste.resource_id == "orders-final"
    assert waste.resource_type == "rds-snapshot"
    assert waste.tags == {"purpose": "pre-migration"}
    assert waste.evidence["source_db_instance"] == "orders"
    assert waste.evidence["allocated_storage_gb"] == 50
    assert waste.evidence["min_age_days"] == 90
    snapshot_gb = aws_catalog().rds_snapshot_gb_month("us-east-1")
    assert snapshot_gb is not None
    assert waste.price.monthly_usd == snapshot_gb.unit_price * 50 == Decimal("4.75")
    assert "upper bound" in waste.price.detail["note"]
    assert waste.price.detail["estimated"] is False


def test_snapshot_whose_instance_still_exists_is_not_reported(make_scope: MakeScope) -> None:
    snapshot = snapshot_of(database(), "orders-weekly")

    assert scan_snapshots(make_scope(now=snapshot["SnapshotCreateTime"] + 100 * DAY)) == []


@pytest.mark.parametrize(
    ("age", "reported"), [(90 * DAY, True), (90 * DAY - dt.timedelta(seconds=1), False)]
)
def test_snapshot_is_judged_only_from_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    db = database()
    snapshot = snapshot_of(db, "orders-final")
    delete(db)

    found = scan_snapshots(make_scope(now=snapshot["SnapshotCreateTime"] + age))

    assert bool(found) is reported


def test_orphaned_snapshot_outside_the_priced_regions_is_marked_estimated(
    make_scope: MakeScope,
) -> None:
    db = database(region="ap-northeast-1")
    snapshot = snapshot_of(db, "orders-final", region="ap-northeast-1")
    delete(db, region="ap-northeast-1")

    [waste] = scan_snapshots(
        make_scope(region="ap-northeast-1", now=snapshot["SnapshotCreateTime"] + 100 * DAY)
    )

    assert waste.price.detail["estimated"] is True


# AWS answers stubbed with botocore's Stubber: moto gives every instance the same DbiResourceId
# and never pages DescribeDBSnapshots.


def stubbed_snapshot(
    name: str, source: str, resource_id: str, created: dt.datetime
) -> dict[str, Any]:
    return {
        "DBSnapshotIdentifier": name,
        "DBInstanceIdentifier": source,
        "DbiResourceId": resource_id,
        "SnapshotCreateTime": created,
        "SnapshotType": "manual",
        "Status": "available",
        "AllocatedStorage": 20,
    }


def stubbed_scope(
    make_scope: MakeScope, instances: list[dict[str, Any]], snapshot_pages: list[list[Any]]
) -> tuple[RegionScope, Stubber]:
    client = rds()
    stubber = Stubber(client)
    stubber.add_response("describe_db_instances", {"DBInstances": instances}, {})
    for number, page in enumerate(snapshot_pages):
        request: dict[str, Any] = {"SnapshotType": "manual"}
        if number:
            request["Marker"] = f"page-{number}"
        response: dict[str, Any] = {"DBSnapshots": page}
        if number < len(snapshot_pages) - 1:
            response["Marker"] = f"page-{number + 1}"
        stubber.add_response("describe_db_snapshots", response, request)
    stubber.activate()
    scope = dataclasses.replace(make_scope(now=utcnow()), client=lambda service: client)
    return scope, stubber


def test_snapshot_whose_identifier_a_new_instance_took_is_reported(make_scope: MakeScope) -> None:
    old = utcnow() - 200 * DAY
    scope, stubber = stubbed_scope(
        make_scope,
        instances=[{"DBInstanceIdentifier": "orders", "DbiResourceId": "db-NEW"}],
        snapshot_pages=[[stubbed_snapshot("orders-2023", "orders", "db-OLD", old)]],
    )

    [waste] = scan_snapshots(scope)

    assert waste.resource_id == "orders-2023"
    stubber.assert_no_pending_responses()


def test_snapshots_on_every_page_are_judged(make_scope: MakeScope) -> None:
    old = utcnow() - 200 * DAY
    scope, stubber = stubbed_scope(
        make_scope,
        instances=[{"DBInstanceIdentifier": "live", "DbiResourceId": "db-LIVE"}],
        snapshot_pages=[
            [stubbed_snapshot("gone-1", "gone-1", "db-G1", old)],
            [stubbed_snapshot("live-weekly", "live", "db-LIVE", old)],
            [stubbed_snapshot("gone-2", "gone-2", "db-G2", old)],
        ],
    )

    found = scan_snapshots(scope)

    assert [waste.resource_id for waste in found] == ["gone-1", "gone-2"]
    stubber.assert_no_pending_responses()
