"""EFS waste: file systems no client mounts or reads."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from valdrix.scanning.base import Price, RegionScope, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import (
    BYTES_PER_GB,
    CloudWatchIdleDetector,
    stored_bytes_price,
)
from valdrix.scanning.idle import IdleResource, LookbackThresholds
from valdrix.scanning.registry import detectors

# SizeInBytes fields by the storage class they price (One Zone file systems have no Archive).
STORAGE_CLASSES = (
    ("standard", "ValueInStandard"),
    ("infrequent_access", "ValueInIA"),
    ("archive", "ValueInArchive"),
)


class IdleFileSystemThresholds(LookbackThresholds):
    lookback_days: int = Field(
        14,
        ge=1,
        description="Days of CloudWatch client connections and I/O to sum; file systems younger "
        "than this (or min_age_days) are not judged.",
    )
    max_client_connections: int = Field(
        0,
        ge=0,
        description="A file system with at most this many client connections over the lookback, "
        "summed, may be idle.",
    )
    max_io_bytes: int = Field(
        0,
        ge=0,
        description="A file system with at most this many bytes of I/O (data and metadata) over "
        "the lookback may be idle.",
    )


@detectors.register("aws.efs-idle")
class IdleFileSystem(CloudWatchIdleDetector[IdleFileSystemThresholds]):
    """Flags available EFS file systems that had no client connections and no I/O over the
    lookback.

    EFS bills every GB it stores each month whether or not anything mounts it, so a file system
    nobody connects to pays for its data (at its storage classes' prices) for nothing. File
    systems younger than the lookback, and file systems CloudWatch has no connection and I/O
    datapoints for, are not judged.
    """

    provider = "aws"
    resource_type = "efs-file-system"
    permissions = ("elasticfilesystem:DescribeFileSystems", "cloudwatch:GetMetricData")
    thresholds = IdleFileSystemThresholds
    created_field = "CreationTime"
    window_figure = "total"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        paginator = scope.client("efs").get_paginator("describe_file_systems")
        return [
            file_system
            for page in paginator.paginate()
            for file_system in page.get("FileSystems", [])
            if file_system["LifeCycleState"] == "available"
        ]

    def metric_queries(self, position: int, file_system: dict[str, Any]) -> list[MetricQuery]:
        dimensions = (("FileSystemId", file_system["FileSystemId"]),)
        return [
            MetricQuery(
                f"efs{position}_clients", "AWS/EFS", "ClientConnections", dimensions, "Sum"
            ),
            MetricQuery(f"efs{position}_io", "AWS/EFS", "TotalIOBytes", dimensions, "Sum"),
        ]

    def idle_limits(self, thresholds: IdleFileSystemThresholds) -> tuple[float, ...]:
        return thresholds.max_client_connections, thresholds.max_io_bytes

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleFileSystemThresholds]
    ) -> Waste:
        file_system, thresholds = idle.resource, idle.thresholds
        connections, io_bytes = idle.figures
        tags = tags_of(file_system.get("Tags"))
        size_bytes = int(file_system.get("SizeInBytes", {}).get("Value") or 0)
        return Waste(
            resource_id=file_system["FileSystemId"],
            resource_type=self.resource_type,
            reason=f"file system had {connections:.0f} client connections and {io_bytes:.0f} "
            f"bytes of I/O in the last {thresholds.lookback_days} days, and stores "
            f"{size_bytes / BYTES_PER_GB:.2f} GB",
            price=_storage_price(scope, file_system),
            evidence={
                "client_connections": connections,
                "io_bytes": io_bytes,
                "size_bytes": size_bytes,
                "mount_targets": file_system.get("NumberOfMountTargets"),
                "one_zone": bool(file_system.get("AvailabilityZoneName")),
                "datapoints": min(idle.datapoints),
                **idle.window_evidence(),
                **idle.age_evidence(),
                "max_client_connections": thresholds.max_client_connections,
                "max_io_bytes": thresholds.max_io_bytes,
            },
            resource_name=tags.get("Name") or file_system.get("Name") or None,
            tags=tags,
        )


def _storage_price(scope: RegionScope, file_system: dict[str, Any]) -> Price:
    """Each storage class's metered bytes at its GB-month price (One Zone prices for One Zone
    file systems)."""
    size = file_system.get("SizeInBytes", {})
    prefix = "one_zone_" if file_system.get("AvailabilityZoneName") else ""
    stored = {
        prefix + storage_class: int(size.get(field) or 0)
        for storage_class, field in STORAGE_CLASSES
    }
    if "ValueInStandard" not in size:  # older answers split nothing out
        stored[prefix + "standard"] = int(size.get("Value") or 0)
    return stored_bytes_price(
        scope,
        {
            storage_class: stored_bytes
            for storage_class, stored_bytes in stored.items()
            if stored_bytes or storage_class.endswith("standard")
        },
        lambda storage_class: scope.prices.efs_gb_month(scope.region, storage_class),
        what="EFS storage",
    )
