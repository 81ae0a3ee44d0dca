"""EC2 detectors: instances stopped for long, instances running idle, AMIs nothing launches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from valdrix.scanning.base import (
    Detector,
    RegionScope,
    Thresholds,
    Waste,
    tags_of,
)
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import (
    EC2_INSTANCE_COST,
    CloudWatchIdleDetector,
    age_days,
    is_at_least_days_old,
)
from valdrix.scanning.detectors.aws._ec2_common import (
    VOLUME_COST,
    instance_cost_parts,
    instance_waste,
    instances_stopped_for,
    on_demand_price,
    region_instances,
    region_instances_in,
    region_own_images,
    region_volumes,
    snapshot_price,
    volumes_cost_parts,
    volumes_price,
)
from valdrix.scanning.idle import IdleResource, MetricThresholds
from valdrix.scanning.registry import detectors

BYTES_PER_MB = 1_000_000


class StoppedThresholds(Thresholds):
    stopped_days: int = Field(
        default=30,
        ge=0,
        description="Report an instance once it has been stopped for at least this many days.",
    )


@detectors.register("aws.ec2-stopped")
class StoppedInstances(Detector):
    """Flags instances stopped for a long time. A stopped instance bills no compute, but every EBS
    volume attached to it is billed in full; the finding's figure is that storage (which the
    volumes' own findings price too: totals count it once)."""

    provider = "aws"
    resource_type = "ec2-instance"
    permissions = ("ec2:DescribeInstances", "ec2:DescribeVolumes")
    thresholds = StoppedThresholds
    # Its figure is its volumes' cost, which their own findings price too.
    shared_costs = (VOLUME_COST,)

    def detect(self, scope: RegionScope, thresholds: StoppedThresholds) -> Iterator[Waste]:
        stopped = instances_stopped_for(scope, thresholds.stopped_days)
        volumes_by_instance: dict[str, list[dict[str, Any]]] = {}
        for volume in region_volumes(scope) if stopped else ():
            for attachment in volume.get("Attachments", []):
                volumes_by_instance.setdefault(attachment["InstanceId"], []).append(volume)
        for instance_id, found in stopped.items():
            volumes = volumes_by_instance.get(instance_id, [])
            size_gb = sum(int(volume["Size"]) for volume in volumes)
            price = volumes_price(scope, volumes)
            yield instance_waste(
                found.instance,
                f"This instance has been stopped for {found.stopped_days:.0f} days and still pays "
                f"for {len(volumes)} EBS volume(s), {size_gb} GiB in all.",
                price,
                volumes_cost_parts(price),
                stopped_at=found.stopped_at.isoformat(),
                stopped_days=found.stopped_days,
                stopped_days_threshold=thresholds.stopped_days,
                volumes=[
                    {
                        "volume_id": volume["VolumeId"],
                        "size_gb": volume["Size"],
                        "volume_type": volume.get("VolumeType"),
                    }
                    for volume in volumes
                ],
                size_gb=size_gb,
            )


class IdleThresholds(MetricThresholds):
    lookback_days: int = Field(
        default=14, ge=1, description="How many days of CloudWatch data to look at."
    )
    cpu_percent: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="Idle if the highest daily average CPUUtilization is below this percentage.",
    )
    network_mb_per_day: float = Field(
        default=5.0,
        ge=0,
        description="Idle if NetworkIn plus NetworkOut stays below this many MB (10^6 bytes) "
        "every day.",
    )
    min_datapoint_days: int = Field(
        default=4,
        ge=1,
        description="Judge an instance only with at least this many days of CPU and network data.",
    )


@detectors.register("aws.ec2-idle")
class IdleInstances(CloudWatchIdleDetector[IdleThresholds]):
    """Flags running instances whose CPU and network stayed low every day of the lookback (from
    CloudWatch). A running instance bills its full on-demand hourly price whether or not it
    does any work (which includes what a current-generation type would save: totals count that
    once)."""

    provider = "aws"
    resource_type = "ec2-instance"
    permissions = ("ec2:DescribeInstances", "cloudwatch:GetMetricData")
    thresholds = IdleThresholds
    # Its previous-generation finding and AWS's own recommendations (imported) price part of
    # the same money.
    shared_costs = (EC2_INSTANCE_COST,)
    # Daily datapoints: each series' busiest day is held against the daily limits.
    window_figure = "peak"
    idle_when = "below"

    def list_resources(self, scope: RegionScope) -> Iterator[dict[str, Any]]:
        return region_instances_in(scope, "running")

    def metric_queries(self, position: int, instance: dict[str, Any]) -> list[MetricQuery]:
        dimensions = (("InstanceId", instance["InstanceId"]),)
        return [
            MetricQuery(f"cpu{position}", "AWS/EC2", "CPUUtilization", dimensions, "Average"),
            MetricQuery(f"netin{position}", "AWS/EC2", "NetworkIn", dimensions, "Sum"),
            MetricQuery(f"netout{position}", "AWS/EC2", "NetworkOut", dimensions, "Sum"),
        ]

    def min_datapoints(self, thresholds: IdleThresholds) -> int:
        return thresholds.min_datapoint_days

    def judged_figures(self, figures: tuple[float, ...]) -> tuple[float, ...]:
        cpu_max, in_bytes, out_bytes = figures
        # The busiest day in plus the busiest day out: never below any one day's total.
        return cpu_max, in_bytes / BYTES_PER_MB + out_bytes / BYTES_PER_MB

    def idle_limits(self, thresholds: IdleThresholds) -> tuple[float, ...]:
        return thresholds.cpu_percent, thresholds.network_mb_per_day

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleThresholds]
    ) -> Waste:
        thresholds = idle.thresholds
        cpu_max, network_mb = idle.judged_figures
        in_mb, out_mb = (peak / BYTES_PER_MB for peak in idle.figures[1:])
        price = on_demand_price(scope, idle.resource)
        return instance_waste(
            idle.resource,
            f"This instance's daily average CPU peaked at {cpu_max:.1f} % and its network "
            f"at {network_mb:.2f} MB a day over the last {thresholds.lookback_days} days.",
            price,
            instance_cost_parts(idle.resource["InstanceId"], price.monthly_usd),
            cpu_max_daily_average_percent=round(cpu_max, 3),
            network_in_max_mb_per_day=round(in_mb, 3),
            network_out_max_mb_per_day=round(out_mb, 3),
            network_max_mb_per_day=round(network_mb, 3),
            datapoint_days=min(idle.datapoints),
            lookback_days=thresholds.lookback_days,
            cpu_percent_threshold=thresholds.cpu_percent,
            network_mb_per_day_threshold=thresholds.network_mb_per_day,
        )


class UnusedImageThresholds(Thresholds):
    min_age_days: int = Field(
        default=90, ge=0, description="Report an AMI only once it is at least this many days old."
    )


@detectors.register("aws.ami-unused")
class UnusedImages(Detector):
    """Flags the account's AMIs older than a threshold that nothing launches from: no instance
    (running or stopped) was launched from them, and neither the latest nor the default version
    of any launch template, nor any launch configuration, names them (an Auto Scaling group may
    launch from those at any time). Each AMI keeps its EBS snapshots, billed monthly, until it is
    deregistered and they are deleted."""

    provider = "aws"
    resource_type = "ami"
    permissions = (
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeLaunchTemplateVersions",
        "autoscaling:DescribeLaunchConfigurations",
    )
    thresholds = UnusedImageThresholds

    def detect(self, scope: RegionScope, thresholds: UnusedImageThresholds) -> Iterator[Waste]:
        old = [
            image
            for image in region_own_images(scope)
            if is_at_least_days_old(_created(image), scope.now, thresholds.min_age_days)
        ]
        if not old:
            return  # spare the instance listing
        in_use = {
            instance["ImageId"]
            for instance in region_instances(scope)
            if instance["State"]["Name"] != "terminated"
        }
        old = [image for image in old if image["ImageId"] not in in_use]
        if not old:
            return  # spare the launch template and configuration listings
        templates = _images_in_launch_templates(scope.client("ec2"))
        in_use = templates | _images_in_launch_configurations(scope.client("autoscaling"))
        for image in old:
            if image["ImageId"] in in_use:
                continue
            snapshots = [
                mapping["Ebs"]
                for mapping in image.get("BlockDeviceMappings", [])
                if mapping.get("Ebs", {}).get("SnapshotId")
            ]
            size_gb = sum(int(snapshot.get("VolumeSize") or 0) for snapshot in snapshots)
            age = age_days(_created(image), scope.now)
            tags = tags_of(image.get("Tags"))
            yield Waste(
                resource_id=image["ImageId"],
                resource_type=self.resource_type,
                reason=(
                    f"No instance uses this {age:.0f}-day-old AMI, and its "
                    f"{len(snapshots)} snapshot(s) of {size_gb} GiB are still billed."
                ),
                price=snapshot_price(scope, size_gb),
                evidence={
                    "state": image.get("State"),
                    "created_at": image["CreationDate"],
                    "age_days": age,
                    "min_age_days": thresholds.min_age_days,
                    "snapshot_ids": [snapshot["SnapshotId"] for snapshot in snapshots],
                    "size_gb": size_gb,
                    "used_by_instances": 0,
                    "used_by_launch_templates": 0,
                    "used_by_launch_configurations": 0,
                },
                resource_name=tags.get("Name") or image.get("Name"),
                tags=tags,
            )


def _created(image: dict[str, Any]) -> dt.datetime:
    # AMIs carry CreationDate as an ISO string ("2024-01-02T10:00:00.000Z"), not a datetime.
    return dt.datetime.fromisoformat(image["CreationDate"])


def _images_in_launch_templates(ec2: Any) -> set[str]:
    """The AMIs named by the latest or the default version of any launch template."""
    # With no template named, $Latest and $Default describe those versions of every template.
    # MaxResults at its largest (200): a simulator that ignores NextToken still sees them all.
    paginator = ec2.get_paginator("describe_launch_template_versions")
    pages = paginator.paginate(Versions=["$Latest", "$Default"], PaginationConfig={"PageSize": 200})
    return {
        image_id
        for page in pages
        for version in page.get("LaunchTemplateVersions", [])
        if (image_id := version.get("LaunchTemplateData", {}).get("ImageId"))
    }


def _images_in_launch_configurations(autoscaling: Any) -> set[str]:
    paginator = autoscaling.get_paginator("describe_launch_configurations")
    return {
        configuration["ImageId"]
        for page in paginator.paginate()
        for configuration in page.get("LaunchConfigurations", [])
        if configuration.get("ImageId")
    }
