"""RDS waste: databases nobody connects to and manual snapshots of databases (instances or
clusters) that are gone."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, Price, RegionScope, Thresholds, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import (
    RDS_INSTANCE_COST,
    CloudWatchIdleDetector,
    age_days,
    gb_month_price,
    is_at_least_days_old,
    own_cost,
)
from valdrix.scanning.idle import IdleResource, LookbackThresholds
from valdrix.scanning.registry import detectors

# Storage types whose provisioned IOPS are billed on top of the GB-month (not in the catalog).
PROVISIONED_IOPS_STORAGE = ("io1", "io2")


class IdleRdsInstanceThresholds(LookbackThresholds):
    lookback_days: int = Field(
        7,
        ge=1,
        description="Days of CloudWatch DatabaseConnections to look at; instances younger than "
        "this (or min_age_days) are not judged.",
    )
    max_connections: int = Field(
        0,
        ge=0,
        description="An instance whose peak DatabaseConnections over the lookback is at most "
        "this is idle.",
    )


@detectors.register("aws.rds-idle")
class IdleRdsInstance(CloudWatchIdleDetector[IdleRdsInstanceThresholds]):
    """Flags available RDS DB instances that had no database connections over the lookback.

    An RDS instance is billed for every hour it runs and for its allocated storage every month,
    whether or not anything connects to it. Instances younger than the lookback, and instances
    CloudWatch has no DatabaseConnections datapoints for, are not judged.
    """

    provider = "aws"
    resource_type = "rds-instance"
    permissions = ("rds:DescribeDBInstances", "cloudwatch:GetMetricData")
    thresholds = IdleRdsInstanceThresholds
    # AWS's own recommendations for the database (imported) price part of the same money.
    shared_costs = (RDS_INSTANCE_COST,)
    created_field = "InstanceCreateTime"
    # Connections are held, not counted: the busiest day's Maximum says how many there were.
    window_figure = "peak"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        return [db for db in _db_instances(scope) if db["DBInstanceStatus"] == "available"]

    def metric_queries(self, position: int, db: dict[str, Any]) -> list[MetricQuery]:
        return [
            MetricQuery(
                id=f"db{position}",
                namespace="AWS/RDS",
                metric="DatabaseConnections",
                dimensions=(("DBInstanceIdentifier", db["DBInstanceIdentifier"]),),
                stat="Maximum",
            )
        ]

    def idle_limits(self, thresholds: IdleRdsInstanceThresholds) -> tuple[float, ...]:
        return (thresholds.max_connections,)

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleRdsInstanceThresholds]
    ) -> Waste:
        db, thresholds = idle.resource, idle.thresholds
        [peak], [datapoints] = idle.figures, idle.datapoints
        identifier = db["DBInstanceIdentifier"]
        price = _instance_price(scope, db)
        return Waste(
            resource_id=identifier,
            resource_type=self.resource_type,
            reason=f"{db['Engine']} instance had at most {peak:.0f} connections in the last "
            f"{thresholds.lookback_days} days",
            price=price,
            cost_parts=own_cost(RDS_INSTANCE_COST, identifier, price),
            evidence={
                "peak_connections": peak,
                "datapoints": datapoints,
                **idle.window_evidence(),
                "engine": db["Engine"],
                "instance_class": db["DBInstanceClass"],
                "allocated_storage_gb": db.get("AllocatedStorage"),
                "multi_az": bool(db.get("MultiAZ")),
                **idle.age_evidence(),
                "max_connections": thresholds.max_connections,
            },
            resource_name=identifier,
            tags=tags_of(db.get("TagList")),
        )


def _instance_price(scope: RegionScope, db: dict[str, Any]) -> Price:
    """Instance hours plus allocated storage for a month, doubled for Multi-AZ."""
    engine, instance_class = db["Engine"], db["DBInstanceClass"]
    storage_type = db.get("StorageType", "gp2")
    hourly = scope.prices.rds_hour(scope.region, engine, instance_class)
    if hourly is None:
        return Price.unknown(f"the price catalog has no hourly price for {engine} {instance_class}")
    storage = scope.prices.rds_storage_gb_month(scope.region, storage_type)
    if storage is None or storage_type in PROVISIONED_IOPS_STORAGE:
        return Price.unknown(f"the price catalog cannot price {storage_type} RDS storage")
    # A Multi-AZ instance keeps a standby replica: AWS lists it at twice the single-AZ rates.
    copies = 2 if db.get("MultiAZ") else 1
    size_gb = int(db.get("AllocatedStorage") or 0)
    instance_monthly = scope.prices.monthly(hourly) * copies
    storage_monthly = (storage.unit_price * size_gb * copies).quantize(Decimal("0.01"))
    return Price(
        instance_monthly + storage_monthly,
        "list_price",
        {
            "estimated": hourly.estimated or storage.estimated,
            "catalog_as_of": scope.prices.as_of.isoformat(),
            "multi_az_copies": copies,
            "instance": hourly.detail(scope.prices)
            | {
                "hours_per_month": str(scope.prices.hours_per_month),
                "monthly_usd": str(instance_monthly),
            },
            "storage": storage.detail(scope.prices)
            | {
                "size_gb": size_gb,
                "storage_type": storage_type,
                "monthly_usd": str(storage_monthly),
            },
        },
    )


class OrphanedRdsSnapshotThresholds(Thresholds):
    min_age_days: int = Field(
        90, ge=0, description="Manual snapshots younger than this many days are not judged."
    )


@detectors.register("aws.rds-snapshot-orphaned")
class OrphanedRdsSnapshot(Detector):
    """Flags manual RDS DB snapshots older than the threshold whose source DB instance no longer
    exists in the region.

    Manual snapshots are never expired by AWS: they are billed per GB-month until someone deletes
    them, typically long after the database they protected was removed. Copies from another region
    are left alone (their source lives elsewhere), and so are Aurora cluster snapshots.
    """

    provider = "aws"
    resource_type = "rds-snapshot"
    permissions = ("rds:DescribeDBInstances", "rds:DescribeDBSnapshots")
    thresholds = OrphanedRdsSnapshotThresholds

    def detect(
        self, scope: RegionScope, thresholds: OrphanedRdsSnapshotThresholds
    ) -> Iterator[Waste]:
        rds = scope.client("rds")
        live = {db["DBInstanceIdentifier"]: db.get("DbiResourceId") for db in _db_instances(scope)}
        for page in rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual"):
            for snapshot in page["DBSnapshots"]:
                if snapshot["Status"] != "available":
                    continue
                if snapshot.get("SourceRegion", scope.region) != scope.region:
                    continue  # a copy from another region: its source lives there
                created = snapshot["SnapshotCreateTime"]
                if not is_at_least_days_old(created, scope.now, thresholds.min_age_days):
                    continue
                if _source_exists(snapshot, live):
                    continue
                yield self._waste(scope, snapshot, thresholds)

    def _waste(
        self,
        scope: RegionScope,
        snapshot: dict[str, Any],
        thresholds: OrphanedRdsSnapshotThresholds,
    ) -> Waste:
        identifier = snapshot["DBSnapshotIdentifier"]
        size_gb = int(snapshot.get("AllocatedStorage") or 0)
        return Waste(
            resource_id=identifier,
            resource_type=self.resource_type,
            reason=f"manual snapshot of {snapshot['DBInstanceIdentifier']}, which no longer exists",
            price=gb_month_price(
                scope,
                scope.prices.rds_snapshot_gb_month(scope.region),
                what="RDS snapshot storage",
                size_gb=size_gb,
                note="upper bound: billed on the data stored, at most the allocated storage",
            ),
            evidence={
                "source_db_instance": snapshot["DBInstanceIdentifier"],
                "source_exists": False,
                "allocated_storage_gb": size_gb,
                "created": snapshot["SnapshotCreateTime"].isoformat(),
                "age_days": age_days(snapshot["SnapshotCreateTime"], scope.now),
                "min_age_days": thresholds.min_age_days,
            },
            resource_name=identifier,
            tags=tags_of(snapshot.get("TagList")),
        )


def _source_exists(snapshot: dict[str, Any], live: dict[str, str | None]) -> bool:
    """Whether the snapshot's source instance is among ``live`` (identifier -> resource id)."""
    identifier = snapshot["DBInstanceIdentifier"]
    return identifier in live and _same_resource(snapshot.get("DbiResourceId"), live[identifier])


@detectors.register("aws.rds-cluster-snapshot-orphaned")
class OrphanedRdsClusterSnapshot(Detector):
    """Flags manual Aurora and Multi-AZ DB cluster snapshots older than the threshold whose source
    DB cluster no longer exists in the region.

    Like instance snapshots, manual cluster snapshots are kept until someone deletes them and are
    billed per GB-month of backup storage all that time. Copies from another region are left alone
    (their source lives elsewhere). Aurora reports no snapshot size through this API (its
    clusters show 1 GiB allocated), so such a snapshot's figure is unknown unless a real size is
    reported.
    """

    provider = "aws"
    resource_type = "rds-cluster-snapshot"
    permissions = ("rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots")
    thresholds = OrphanedRdsSnapshotThresholds

    def detect(
        self, scope: RegionScope, thresholds: OrphanedRdsSnapshotThresholds
    ) -> Iterator[Waste]:
        rds = scope.client("rds")
        live = {
            cluster["DBClusterIdentifier"]: cluster.get("DbClusterResourceId")
            for page in rds.get_paginator("describe_db_clusters").paginate()
            for cluster in page["DBClusters"]
        }
        paginator = rds.get_paginator("describe_db_cluster_snapshots")
        for page in paginator.paginate(SnapshotType="manual"):
            for snapshot in page["DBClusterSnapshots"]:
                if snapshot["Status"] != "available":
                    continue
                source_arn = snapshot.get("SourceDBClusterSnapshotArn") or ""
                if source_arn and source_arn.split(":")[3] != scope.region:
                    continue  # a copy from another region: its source lives there
                created = snapshot["SnapshotCreateTime"]
                if not is_at_least_days_old(created, scope.now, thresholds.min_age_days):
                    continue
                identifier = snapshot["DBClusterIdentifier"]
                if identifier in live and _same_resource(
                    snapshot.get("DbClusterResourceId"), live[identifier]
                ):
                    continue
                yield self._waste(scope, snapshot, thresholds)

    def _waste(
        self,
        scope: RegionScope,
        snapshot: dict[str, Any],
        thresholds: OrphanedRdsSnapshotThresholds,
    ) -> Waste:
        identifier = snapshot["DBClusterSnapshotIdentifier"]
        engine = snapshot.get("Engine", "")
        size_gb = int(snapshot.get("AllocatedStorage") or 0)
        return Waste(
            resource_id=identifier,
            resource_type=self.resource_type,
            reason=f"manual snapshot of {engine} cluster {snapshot['DBClusterIdentifier']}, "
            "which no longer exists",
            price=_cluster_snapshot_price(scope, engine, size_gb),
            evidence={
                "source_db_cluster": snapshot["DBClusterIdentifier"],
                "source_exists": False,
                "engine": engine,
                "allocated_storage_gb": size_gb,
                "created": snapshot["SnapshotCreateTime"].isoformat(),
                "age_days": age_days(snapshot["SnapshotCreateTime"], scope.now),
                "min_age_days": thresholds.min_age_days,
            },
            resource_name=identifier,
            tags=tags_of(snapshot.get("TagList")),
        )


def _cluster_snapshot_price(scope: RegionScope, engine: str, size_gb: int) -> Price:
    """Backup storage for the snapshot's size: Aurora's backup price for Aurora, the RDS
    snapshot price for Multi-AZ DB clusters (MySQL, PostgreSQL)."""
    note = "upper bound: billed on the data stored, at most the allocated storage"
    if engine.startswith("aurora"):
        if size_gb <= 1:
            return Price.unknown(
                f"Aurora reports no snapshot size here (allocated storage {size_gb} GiB)"
            )
        quote = scope.prices.aurora_backup_gb_month(scope.region)
        return gb_month_price(
            scope, quote, what="Aurora backup storage", size_gb=size_gb, note=note
        )
    if engine in ("mysql", "postgres"):
        quote = scope.prices.rds_snapshot_gb_month(scope.region)
        return gb_month_price(scope, quote, what="RDS snapshot storage", size_gb=size_gb, note=note)
    return Price.unknown(f"the price catalog has no snapshot price for {engine or 'this'} clusters")


def _same_resource(resource_id: str | None, live_resource_id: str | None) -> bool:
    # A new database may take a deleted one's identifier; resource ids are never reused.
    return not resource_id or not live_resource_id or resource_id == live_resource_id


def _db_instances(scope: RegionScope) -> tuple[dict[str, Any], ...]:
    """Every RDS instance of the region, described once per scan for both RDS detectors."""

    def describe() -> tuple[dict[str, Any], ...]:
        paginator = scope.client("rds").get_paginator("describe_db_instances")
        return tuple(db for page in paginator.paginate() for db in page["DBInstances"])

    return scope.shared.read("rds:DescribeDBInstances", describe)
