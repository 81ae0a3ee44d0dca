"""aws.rds-cluster-snapshot-orphaned under moto."""

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
    OrphanedRdsClusterSnapshot,
    OrphanedRdsSnapshotThresholds,
)

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)


def rds(region: str = "us-east-1") -> Any:
    return boto3.client("rds", region_name=region)


def cluster(
    name: str = "ledger",
    *,
    engine: str = "mysql",
    size_gb: int | None = 100,
    region: str = "us-east-1",
) -> None:
    """A DB cluster: Multi-AZ MySQL by default (Aurora when ``engine`` says so)."""
    storage = {} if size_gb is None else {"AllocatedStorage": size_gb}
    rds(region).create_db_cluster(
        DBClusterIdentifier=name,
        Engine=engine,
        MasterUsername="admin",
        MasterUserPassword="correct-horse-battery",
        **storage,
    )


def snapshot_of(name: str, snapshot: str, region: str = "us-east-1") -> dt.datetime:
    """A manual snapshot of cluster ``name``; returns its creation time."""
    created: dt.datetime = rds(region).create_db_cluster_snapshot(
        DBClusterSnapshotIdentifier=snapshot,
        DBClusterIdentifier=name,
        Tags=[{"Key": "purpose", "Value": "pre-migration"}],
    )["DBClusterSnapshot"]["SnapshotCreateTime"]
    return created


def delete(name: str, region: str = "us-east-1") -> None:
    rds(region).delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)


def scan(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    detector = OrphanedRdsClusterSnapshot()
    return list(detector.detect(scope, OrphanedRdsSnapshotThresholds(**thresholds)))


def test_old_manual_snapshot_of_a_deleted_cluster_is_reported_at_its_storage_price(
    make_scope: MakeScope,
) -> None:
    cluster()
    created = snapshot_of("ledger", "ledger-final")
    delete("ledger")

    [waste] = scan(make_scope(now=created + 100 * DAY))

    assert waste.resource_id == "ledger-final"
    assert waste.resource_type == "rds-cluster-snapshot"
    assert waste.tags == {"purpose": "pre-migration"}
    assert waste.evidence["source_db_cluster"] == "ledger"
    assert waste.evidence["engine"] == "mysql"
    assert waste.evidence["allocated_storage_gb"] == 100
    assert waste.evidence["min_age_days"] == 90
    # 100 GB x 0.095 $/GB-month of RDS snapshot storage, an upper bound.
    assert waste.price.basis == "list_price"
    assert waste.price.monthly_usd == Decimal("9.50")
    assert "upper bound" in waste.price.detail["note"]
    assert waste.price.detail["estimated"] is False


def test_snapshot_of_a_cluster_that_still_exists_is_not_reported(make_scope: MakeScope) -> None:
    cluster()
    created = snapshot_of("ledger", "ledger-weekly")

    assert scan(make_scope(now=created + 100 * DAY)) == []


def test_snapshots_on_every_page_are_judged_and_a_reused_identifier_is_not_the_source(
    make_scope: MakeScope,
) -> None:
    # Stubbed: moto never pages DescribeDBClusterSnapshots, and cannot recreate a cluster under
    # a deleted one's name within the minute (its automatic snapshot's name collides).
    client = rds()
    old = utcnow() - 200 * DAY
    stubber = Stubber(client)
    live = {"DBClusterIdentifier": "ledger", "DbClusterResourceId": "cluster-NEW"}
    stubber.add_response("describe_db_clusters", {"DBClusters": [live]}, {})
    pages = [
        [stubbed_snapshot("ledger-2023", "ledger", "cluster-OLD", old)],
        [stubbed_snapshot("ledger-weekly", "ledger", "cluster-NEW", old)],
    ]
    for number, page in enumerate(pages):
        request: dict[str, Any] = {"SnapshotType": "manual"}
        response: dict[str, Any] = {"DBClusterSnapshots": page}
        if number:
            request["Marker"] = "page-1"
        else:
            response["Marker"] = "page-1"
        stubber.add_response("describe_db_cluster_snapshots", response, request)
    stubber.activate()
    scope = dataclasses.replace(make_scope(), client=lambda service: client)

    assert [waste.resource_id for waste in scan(scope)] == ["ledger-2023"]
    stubber.assert_no_pending_responses()


def stubbed_snapshot(
    name: str, source: str, resource_id: str, created: dt.datetime
) -> dict[str, Any]:
    return {
        "DBClusterSnapshotIdentifier": name,
        "DBClusterIdentifier": source,
        "DbClusterResourceId": resource_id,
        "SnapshotCreateTime": created,
        "SnapshotType": "manual",
        "Status": "available",
        "Engine": "postgres",
        "AllocatedStorage": 20,
    }


@pytest.mark.parametrize(
    ("age", "reported"), [(90 * DAY, True), (90 * DAY - dt.timedelta(seconds=1), False)]
)
def test_cluster_snapshot_is_judged_only_from_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    cluster()
    created = snapshot_of("ledger", "ledger-final")
    delete("ledger")

    assert bool(scan(make_scope(now=created + age))) is reported


@pytest.mark.parametrize(
    ("size_gb", "monthly_usd"), [(None, None), (200, Decimal("4.20"))], ids=["no-size", "sized"]
)
def test_aurora_snapshot_is_priced_at_aurora_backup_storage_only_with_a_real_size(
    make_scope: MakeScope, size_gb: int | None, monthly_usd: Decimal | None
) -> None:
    cluster("events", engine="aurora-postgresql", size_gb=size_gb)
    created = snapshot_of("events", "events-final")
    delete("events")

    [waste] = scan(make_scope(now=created + 100 * DAY))

    # Aurora clusters report 1 GiB allocated: no size to price. 200 GB x 0.021 $/GB-month.
    assert waste.price.monthly_usd == monthly_usd
    assert waste.price.basis == ("unknown" if monthly_usd is None else "list_price")


def test_orphaned_cluster_snapshot_outside_the_priced_regions_is_marked_estimated(
    make_scope: MakeScope,
) -> None:
    cluster(region="eu-central-1")
    created = snapshot_of("ledger", "ledger-final", region="eu-central-1")
    delete("ledger", region="eu-central-1")

    [waste] = scan(make_scope(region="eu-central-1", now=created + 100 * DAY))

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == Decimal("9.50")
