"""EBS detectors: volumes nobody uses, snapshots nothing needs, gp2 volumes paying gp2 prices."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, Price, RegionScope, Thresholds, Waste, tags_of
from valdrix.scanning.detectors.aws._common import age_days, is_at_least_days_old
from valdrix.scanning.detectors.aws._ec2_common import (
    VOLUME_COST,
    instances_stopped_for,
    region_own_images,
    region_volumes,
    snapshot_price,
    volume_price,
    volume_waste,
)
from valdrix.scanning.registry import detectors

# gp3 includes 3,000 IOPS; gp2 gives 3 IOPS per GiB (at least 100, at most 16,000).
GP3_BASELINE_IOPS = 3000


class UnattachedThresholds(Thresholds):
    min_age_days: int = Field(
        default=0,
        ge=0,
        description="Report a volume only once it is at least this many days old (0: any age).",
    )


@detectors.register("aws.ebs-unattached")
class UnattachedVolumes(Detector):
    """Flags EBS volumes attached to no instance (state ``available``). Nothing reads or writes
    them, yet AWS bills their provisioned size, and provisioned IOPS, every month until deleted."""

    provider = "aws"
    resource_type = "ebs-volume"
    permissions = ("ec2:DescribeVolumes",)
    thresholds = UnattachedThresholds
    shared_costs = (VOLUME_COST,)

    def detect(self, scope: RegionScope, thresholds: UnattachedThresholds) -> Iterator[Waste]:
        for volume in region_volumes(scope):
            if volume["State"] != "available":
                continue
            created = volume["CreateTime"]
            if not is_at_least_days_old(created, scope.now, thresholds.min_age_days):
                continue
            age = age_days(created, scope.now)
            yield volume_waste(
                volume,
                f"This {volume['Size']} GiB {volume.get('VolumeType')} volume is attached to no "
                f"instance and is {age:.0f} days old.",
                volume_price(scope, volume),
                iops=volume.get("Iops"),
                created_at=created.isoformat(),
                age_days=age,
                min_age_days=thresholds.min_age_days,
            )


class StoppedInstanceThresholds(Thresholds):
    stopped_days: int = Field(
        default=30,
        ge=0,
        description="Report a volume once every instance it is attached to has been stopped for "
        "at least this many days.",
    )


@detectors.register("aws.ebs-on-stopped-instance")
class VolumesOnStoppedInstances(Detector):
    """Flags EBS volumes attached only to instances stopped for a long time. A stopped instance
    bills no compute, but its volumes' storage is billed in full as long as they exist."""

    provider = "aws"
    resource_type = "ebs-volume"
    permissions = ("ec2:DescribeInstances", "ec2:DescribeVolumes")
    thresholds = StoppedInstanceThresholds
    shared_costs = (VOLUME_COST,)

    def detect(self, scope: RegionScope, thresholds: StoppedInstanceThresholds) -> Iterator[Waste]:
        stopped = instances_stopped_for(scope, thresholds.stopped_days)
        if not stopped:
            return
        for volume in region_volumes(scope):
            instance_ids = [a["InstanceId"] for a in volume.get("Attachments", [])]
            if (
                volume["State"] != "in-use"
                or not instance_ids
                or any(i not in stopped for i in instance_ids)
            ):
                continue
            instances = [stopped[i] for i in instance_ids]
            shortest = min(instance.stopped_days for instance in instances)
            yield volume_waste(
                volume,
                f"This {volume['Size']} GiB {volume.get('VolumeType')} volume is attached only to "
                f"{', '.join(instance_ids)}, stopped for {shortest:.0f} days.",
                volume_price(scope, volume),
                instances=[instance.evidence() for instance in instances],
                stopped_days=shortest,
                stopped_days_threshold=thresholds.stopped_days,
            )


class OrphanedSnapshotThresholds(Thresholds):
    min_age_days: int = Field(
        default=90,
        ge=0,
        description="Report a snapshot only once it is at least this many days old.",
    )


@detectors.register("aws.ebs-snapshot-orphaned")
class OrphanedSnapshots(Detector):
    """Flags the account's EBS snapshots older than a threshold whose source volume is gone and
    which no AMI of the account uses. Snapshot storage is billed monthly until deleted, and such
    a snapshot restores nothing anyone still runs."""

    provider = "aws"
    resource_type = "ebs-snapshot"
    permissions = ("ec2:DescribeSnapshots", "ec2:DescribeVolumes", "ec2:DescribeImages")
    thresholds = OrphanedSnapshotThresholds

    def detect(self, scope: RegionScope, thresholds: OrphanedSnapshotThresholds) -> Iterator[Waste]:
        ec2 = scope.client("ec2")
        old = [
            snapshot
            for snapshot in self._own_snapshots(ec2, scope.account_id)
            if is_at_least_days_old(snapshot["StartTime"], scope.now, thresholds.min_age_days)
        ]
        if not old:
            return  # spare the volume and image listings
        volume_ids = {volume["VolumeId"] for volume in region_volumes(scope)}
        used_by_images = {
            mapping["Ebs"]["SnapshotId"]
            for image in region_own_images(scope)
            for mapping in image.get("BlockDeviceMappings", [])
            if mapping.get("Ebs", {}).get("SnapshotId")
        }
        for snapshot in old:
            if snapshot.get("VolumeId") in volume_ids or snapshot["SnapshotId"] in used_by_images:
                continue
            age = age_days(snapshot["StartTime"], scope.now)
            tags = tags_of(snapshot.get("Tags"))
            yield Waste(
                resource_id=snapshot["SnapshotId"],
                resource_type=self.resource_type,
                reason=(
                    f"This snapshot is {age:.0f} days old, its source volume "
                    f"{snapshot.get('VolumeId')} no longer exists and no AMI uses it."
                ),
                price=self._price(scope, snapshot),
                evidence={
                    "source_volume_id": snapshot.get("VolumeId"),
                    "source_volume_exists": False,
                    "used_by_ami": False,
                    "size_gb": snapshot["VolumeSize"],
                    "storage_tier": snapshot.get("StorageTier", "standard"),
                    "started_at": snapshot["StartTime"].isoformat(),
                    "age_days": age,
                    "min_age_days": thresholds.min_age_days,
                },
                resource_name=tags.get("Name"),
                tags=tags,
            )

    @staticmethod
    def _own_snapshots(ec2: Any, account_id: str) -> Iterator[dict[str, Any]]:
        paginator = ec2.get_paginator("describe_snapshots")
        for page in paginator.paginate(OwnerIds=["self"]):
            for snapshot in page.get("Snapshots", []):
                # "self" should suffice; moto also returns other owners' snapshots behind its AMIs.
                if snapshot.get("OwnerId") == account_id:
                    yield snapshot

    @staticmethod
    def _price(scope: RegionScope, snapshot: dict[str, Any]) -> Price:
        if snapshot.get("StorageTier", "standard") != "standard":
            return Price.unknown("the price catalog has no price for archived EBS snapshots")
        return snapshot_price(scope, int(snapshot["VolumeSize"]))


class Gp2Thresholds(Thresholds):
    min_monthly_saving_usd: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description="Report a gp2 volume only if moving it to gp3 saves at least this many USD a "
        "month at list price.",
    )


@detectors.register("aws.ebs-gp2-to-gp3")
class Gp2Volumes(Detector):
    """Flags gp2 volumes, in any state. gp3 costs about 20 % less per GB and includes 3,000 IOPS
    and 125 MB/s; the finding's monthly figure is the saving from changing the type in place (part
    of what a finding about an unused volume prices in full: totals count it once)."""

    provider = "aws"
    resource_type = "ebs-volume"
    prices_whole_resource = False  # the saving of gp3, not the disk's cost
    permissions = ("ec2:DescribeVolumes",)
    thresholds = Gp2Thresholds
    shared_costs = (VOLUME_COST,)

    def detect(self, scope: RegionScope, thresholds: Gp2Thresholds) -> Iterator[Waste]:
        for volume in region_volumes(scope):
            if volume.get("VolumeType") != "gp2":
                continue
            price = self._saving(scope, volume)
            if (
                price.monthly_usd is not None
                and price.monthly_usd < thresholds.min_monthly_saving_usd
            ):
                continue
            yield volume_waste(
                volume,
                f"This {volume['Size']} GiB gp2 volume would be cheaper as gp3.",
                price,
                gp2_baseline_iops=_gp2_baseline_iops(volume["Size"]),
                min_monthly_saving_usd=str(thresholds.min_monthly_saving_usd),
            )

    @staticmethod
    def _saving(scope: RegionScope, volume: dict[str, Any]) -> Price:
        gp2 = scope.prices.ebs_gb_month(scope.region, "gp2")
        gp3 = scope.prices.ebs_gb_month(scope.region, "gp3")
        if gp2 is None or gp3 is None:
            return Price.unknown("the price catalog lacks the gp2 or gp3 GB-month price")
        size_gb = int(volume["Size"])
        detail = gp2.detail(scope.prices) | {
            "saving": "size_gb x (gp2 - gp3 unit price)",
            "size_gb": size_gb,
            "gp2_unit_price_usd": str(gp2.unit_price),
            "gp3_unit_price_usd": str(gp3.unit_price),
        }
        if _gp2_baseline_iops(size_gb) > GP3_BASELINE_IOPS:
            # The catalog has no lookup for extra gp3 IOPS, so the saving is not reduced by it.
            detail["caveat"] = (
                f"gp2 gives this volume {_gp2_baseline_iops(size_gb)} IOPS; gp3 includes "
                f"{GP3_BASELINE_IOPS}, more costs extra"
            )
        saving = ((gp2.unit_price - gp3.unit_price) * size_gb).quantize(Decimal("0.01"))
        return Price(saving, "list_price", detail)


def _gp2_baseline_iops(size_gb: int) -> int:
    return min(max(100, 3 * size_gb), 16000)
