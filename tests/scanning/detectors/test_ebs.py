"""aws.ebs-unattached, aws.ebs-on-stopped-instance, aws.ebs-snapshot-orphaned and aws.ebs-gp2-to-gp3
under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import CostPart, RegionScope, Thresholds, Waste
from valdrix.scanning.detectors.aws._ec2_common import VOLUME_COST, stopped_since
from valdrix.scanning.detectors.aws.ebs import (
    Gp2Volumes,
    OrphanedSnapshots,
    UnattachedVolumes,
    VolumesOnStoppedInstances,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog

from .ec2_world import (
    DAY,
    HOUR,
    attached_volumes,
    create_volume,
    ec2,
    gb_month,
    launch,
    stop,
)

MakeScope = Callable[..., RegionScope]


def scan(detector: Any, scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    """What ``detector`` reports, by resource id."""
    settings: Thresholds = detector.thresholds(**thresholds)
    return {waste.resource_id: waste for waste in detector().detect(scope, settings)}


# --- aws.ebs-unattached ---------------------------------------------------------------------


def test_unattached_volume_is_reported_at_size_times_its_gb_month_price(
    make_scope: MakeScope,
) -> None:
    volume = create_volume(100, "gp2", name="old-data")

    waste = scan(UnattachedVolumes, make_scope())[volume["VolumeId"]]

    assert waste.resource_type == "ebs-volume"
    assert waste.resource_name == "old-data"
    assert waste.tags == {"Name": "old-data"}
    assert waste.evidence["state"] == "available"
    assert waste.evidence["size_gb"] == 100
    assert waste.evidence["volume_type"] == "gp2"
    assert waste.price.basis == "list_price"
    assert waste.price.monthly_usd == 100 * gb_month("gp2") == Decimal("10.00")
    assert waste.price.detail["size_gb"] == 100
    assert waste.price.detail["estimated"] is False
    assert waste.price.detail["catalog_as_of"] == aws_catalog().as_of.isoformat()


def test_attached_volume_is_not_reported(make_scope: MakeScope) -> None:
    instance = launch()
    volume = create_volume(50)
    ec2().attach_volume(
        VolumeId=volume["VolumeId"], InstanceId=instance["InstanceId"], Device="/dev/sdf"
    )

    assert scan(UnattachedVolumes, make_scope()) == {}


@pytest.mark.parametrize(("age", "reported"), [(7 * DAY + HOUR, True), (7 * DAY - HOUR, False)])
def test_unattached_volume_is_reported_only_once_older_than_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    volume = create_volume(20)
    scope = make_scope(now=volume["CreateTime"] + age)

    found = scan(UnattachedVolumes, scope, min_age_days=7)

    assert (volume["VolumeId"] in found) is reported
    if reported:
        assert found[volume["VolumeId"]].evidence["age_days"] == pytest.approx(7.04, abs=0.01)
        assert found[volume["VolumeId"]].evidence["min_age_days"] == 7


def test_provisioned_iops_volume_costs_its_storage_plus_its_iops(make_scope: MakeScope) -> None:
    volume = create_volume(100, "io1", Iops=1000)
    iops_price = aws_catalog().ebs_piops_month("us-east-1", "io1")
    assert iops_price is not None

    waste = scan(UnattachedVolumes, make_scope())[volume["VolumeId"]]

    expected = 100 * gb_month("io1") + 1000 * iops_price.unit_price
    assert waste.price.monthly_usd == expected == Decimal("77.50")
    assert waste.price.detail["provisioned_iops"] == 1000


def test_volume_in_a_region_with_its_own_prices_is_priced_at_that_region_s_list_price(
    make_scope: MakeScope,
) -> None:
    volume = create_volume(100, "gp2", region="eu-west-1")

    waste = scan(UnattachedVolumes, make_scope(region="eu-west-1"))[volume["VolumeId"]]

    ireland = aws_catalog().ebs_gb_month("eu-west-1", "gp2")
    virginia = aws_catalog().ebs_gb_month("us-east-1", "gp2")
    assert ireland is not None and virginia is not None
    assert ireland.unit_price != virginia.unit_price
    assert waste.price.basis == "list_price"
    assert waste.price.detail["estimated"] is False
    assert waste.price.monthly_usd == ireland.unit_price * 100
    assert "ebs_pricing.json" in waste.price.detail["price_source"]["file"]


def test_volume_in_a_region_without_price_input_is_priced_as_estimated(
    make_scope: MakeScope,
) -> None:
    volume = create_volume(100, "gp2", region="eu-south-2")

    waste = scan(UnattachedVolumes, make_scope(region="eu-south-2"))[volume["VolumeId"]]

    assert waste.price.basis == "list_price"
    assert waste.price.detail["estimated"] is True
    assert "no price input for eu-south-2" in waste.price.detail["estimated_because"]
    assert waste.price.monthly_usd == Decimal("10.00")


def test_every_page_of_describe_volumes_is_read(aws: None) -> None:
    client = boto3.client("ec2", region_name="us-east-1")
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def page_volume(volume_id: str) -> dict[str, Any]:
        return {
            "VolumeId": volume_id,
            "Size": 10,
            "VolumeType": "gp3",
            "State": "available",
            "CreateTime": created,
        }

    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_volumes",
            {"Volumes": [page_volume("vol-page1")], "NextToken": "page-2"},
            {},
        )
        stubber.add_response(
            "describe_volumes",
            {"Volumes": [page_volume("vol-page2")]},
            {"NextToken": "page-2"},
        )
        scope = RegionScope(
            account_id="123456789012",
            region="us-east-1",
            client=lambda service: client,
            prices=aws_catalog(),
            now=created + 30 * DAY,
        )

        found = scan(UnattachedVolumes, scope)

        stubber.assert_no_pending_responses()
    assert set(found) == {"vol-page1", "vol-page2"}


# --- aws.ebs-on-stopped-instance ------------------------------------------------------------


def test_volume_of_an_instance_stopped_longer_than_the_threshold_is_reported(
    make_scope: MakeScope,
) -> None:
    instance = launch()
    stopped_at = stop(instance)
    [root] = attached_volumes(instance)

    found = scan(VolumesOnStoppedInstances, make_scope(now=stopped_at + 45 * DAY))

    waste = found[root["VolumeId"]]
    assert waste.evidence["state"] == "in-use"
    assert waste.evidence["stopped_days"] == pytest.approx(45, abs=0.01)
    assert waste.evidence["stopped_days_threshold"] == 30
    [evidence] = waste.evidence["instances"]
    assert evidence["instance_id"] == instance["InstanceId"]
    assert waste.price.monthly_usd == root["Size"] * gb_month(root["VolumeType"])


def test_volume_of_a_running_instance_is_not_reported(make_scope: MakeScope) -> None:
    launch()

    assert scan(VolumesOnStoppedInstances, make_scope(now=utcnow() + 400 * DAY)) == {}


@pytest.mark.parametrize(
    ("stopped_for", "reported"), [(30 * DAY + HOUR, True), (30 * DAY - HOUR, False)]
)
def test_volume_is_reported_only_once_its_instance_is_stopped_stopped_days(
    make_scope: MakeScope, stopped_for: dt.timedelta, reported: bool
) -> None:
    instance = launch()
    stopped_at = stop(instance)
    [root] = attached_volumes(instance)

    found = scan(VolumesOnStoppedInstances, make_scope(now=stopped_at + stopped_for))

    assert (root["VolumeId"] in found) is reported


def test_stop_time_is_read_from_the_state_transition_reason() -> None:
    instance = {"StateTransitionReason": "User initiated (2024-01-02 10:00:00 GMT)"}

    assert stopped_since(instance) == dt.datetime(2024, 1, 2, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("reason", ["", "User initiated", "Server.ScheduledStop (tomorrow)"])
def test_an_unreadable_stop_time_is_not_guessed(reason: str) -> None:
    assert stopped_since({"StateTransitionReason": reason}) is None


# --- aws.ebs-snapshot-orphaned --------------------------------------------------------------


def orphaned_snapshot(size: int = 40, region: str = "us-east-1") -> dict[str, Any]:
    volume = create_volume(size, region=region)
    snapshot = ec2(region).create_snapshot(
        VolumeId=volume["VolumeId"],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "b"}]}],
    )
    ec2(region).delete_volume(VolumeId=volume["VolumeId"])
    return dict(snapshot)


def test_old_snapshot_of_a_deleted_volume_is_reported_at_an_upper_bound_price(
    make_scope: MakeScope,
) -> None:
    snapshot = orphaned_snapshot(size=40)
    snapshot_price = aws_catalog().ebs_snapshot_gb_month("us-east-1")
    assert snapshot_price is not None

    # moto also lists ~1,300 snapshots behind its own AMIs: only ours matter here.
    found = scan(OrphanedSnapshots, make_scope(now=snapshot["StartTime"] + 120 * DAY))

    waste = found[snapshot["SnapshotId"]]
    assert waste.resource_type == "ebs-snapshot"
    assert waste.resource_name == "b"
    assert waste.evidence["source_volume_id"] == snapshot["VolumeId"]
    assert waste.evidence["source_volume_exists"] is False
    assert waste.evidence["age_days"] == pytest.approx(120, abs=0.01)
    assert waste.price.monthly_usd == 40 * snapshot_price.unit_price == Decimal("2.00")
    assert "upper bound" in waste.price.detail["note"]


def test_snapshot_whose_volume_still_exists_is_not_reported(make_scope: MakeScope) -> None:
    volume = create_volume(40)
    snapshot = ec2().create_snapshot(VolumeId=volume["VolumeId"])

    found = scan(OrphanedSnapshots, make_scope(now=snapshot["StartTime"] + 400 * DAY))

    assert snapshot["SnapshotId"] not in found


def test_snapshot_backing_one_of_the_accounts_amis_is_not_reported(make_scope: MakeScope) -> None:
    instance = launch()
    image_id = ec2().create_image(InstanceId=instance["InstanceId"], Name="golden")["ImageId"]
    [image] = ec2().describe_images(ImageIds=[image_id])["Images"]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2().terminate_instances(InstanceIds=[instance["InstanceId"]])  # the source volume goes too

    found = scan(OrphanedSnapshots, make_scope(now=utcnow() + 400 * DAY))

    assert snapshot_id not in found


@pytest.mark.parametrize(("age", "reported"), [(90 * DAY + HOUR, True), (90 * DAY - HOUR, False)])
def test_orphaned_snapshot_is_reported_only_once_older_than_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    snapshot = orphaned_snapshot()

    found = scan(OrphanedSnapshots, make_scope(now=snapshot["StartTime"] + age))

    assert (snapshot["SnapshotId"] in found) is reported


def test_orphaned_snapshot_outside_the_priced_regions_is_priced_as_estimated(
    make_scope: MakeScope,
) -> None:
    snapshot = orphaned_snapshot(region="ap-southeast-2")

    scope = make_scope(region="ap-southeast-2", now=snapshot["StartTime"] + 120 * DAY)
    waste = scan(OrphanedSnapshots, scope)[snapshot["SnapshotId"]]

    assert waste.price.detail["estimated"] is True


# --- aws.ebs-gp2-to-gp3 ---------------------------------------------------------------------


def test_gp2_volume_is_reported_with_the_monthly_saving_of_gp3(make_scope: MakeScope) -> None:
    volume = create_volume(100, "gp2", name="logs")

    waste = scan(Gp2Volumes, make_scope())[volume["VolumeId"]]

    assert "cheaper as gp3" in waste.reason
    assert waste.resource_name == "logs"
    assert waste.price.basis == "list_price"
    saving = 100 * (gb_month("gp2") - gb_month("gp3"))
    assert waste.price.monthly_usd == saving == Decimal("2.00")
    assert waste.price.detail["gp3_unit_price_usd"] == str(gb_month("gp3"))
    # The saving is part of the volume's cost: totals count it once beside a finding that prices
    # the whole volume.
    assert waste.cost_parts == (CostPart(VOLUME_COST, volume["VolumeId"], saving),)


def test_gp2_volume_in_use_is_reported_too(make_scope: MakeScope) -> None:
    instance = launch()
    [root] = attached_volumes(instance)

    assert root["VolumeType"] == "gp2"
    assert root["VolumeId"] in scan(Gp2Volumes, make_scope())


def test_gp3_volume_is_not_reported(make_scope: MakeScope) -> None:
    volume = create_volume(100, "gp3")

    assert volume["VolumeId"] not in scan(Gp2Volumes, make_scope())


@pytest.mark.parametrize(("size", "reported"), [(100, True), (99, False)])
def test_gp2_volume_is_reported_only_when_the_saving_reaches_the_minimum(
    make_scope: MakeScope, size: int, reported: bool
) -> None:
    volume = create_volume(size, "gp2")  # saves 0.02 USD a GB: 2.00 vs 1.98

    found = scan(Gp2Volumes, make_scope(), min_monthly_saving_usd=Decimal("2.00"))

    assert (volume["VolumeId"] in found) is reported


def test_large_gp2_volume_warns_that_matching_its_iops_on_gp3_costs_extra(
    make_scope: MakeScope,
) -> None:
    volume = create_volume(2000, "gp2")

    waste = scan(Gp2Volumes, make_scope())[volume["VolumeId"]]

    assert waste.evidence["gp2_baseline_iops"] == 6000
    assert "6000 IOPS" in waste.price.detail["caveat"]
