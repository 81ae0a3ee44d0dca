"""aws.ec2-stopped, aws.ec2-idle and aws.ami-unused under moto."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import CostPart, RegionScope, Thresholds, Waste
from valdrix.scanning.detectors.aws._common import EC2_INSTANCE_COST
from valdrix.scanning.detectors.aws._ec2_common import VOLUME_COST
from valdrix.scanning.detectors.aws.ec2 import IdleInstances, StoppedInstances, UnusedImages
from valdrix.scanning.providers.aws_pricing import aws_catalog

from .cloudwatch_seed import put_daily_values
from .ec2_world import (
    DAY,
    HOUR,
    WINDOWS_AMI,
    attached_volumes,
    create_volume,
    ec2,
    gb_month,
    launch,
    stop,
)

MakeScope = Callable[..., RegionScope]
MB = 1_000_000


def scan(detector: Any, scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    """What ``detector`` reports, by resource id."""
    settings: Thresholds = detector.thresholds(**thresholds)
    return {waste.resource_id: waste for waste in detector().detect(scope, settings)}


# --- aws.ec2-stopped ------------------------------------------------------------------------


def test_instance_stopped_longer_than_the_threshold_is_reported_at_its_storage_price(
    make_scope: MakeScope,
) -> None:
    instance = launch(name="old-build-box")
    data = create_volume(50, "io1", Iops=500)
    ec2().attach_volume(
        VolumeId=data["VolumeId"], InstanceId=instance["InstanceId"], Device="/dev/sdf"
    )
    stopped_at = stop(instance)
    [root] = [v for v in attached_volumes(instance) if v["VolumeId"] != data["VolumeId"]]
    iops_price = aws_catalog().ebs_piops_month("us-east-1", "io1")
    assert iops_price is not None

    found = scan(StoppedInstances, make_scope(now=stopped_at + 45 * DAY))

    waste = found[instance["InstanceId"]]
    assert waste.resource_type == "ec2-instance"
    assert waste.resource_name == "old-build-box"
    assert waste.evidence["state"] == "stopped"
    assert waste.evidence["stopped_days"] == pytest.approx(45, abs=0.01)
    assert waste.evidence["stopped_days_threshold"] == 30
    assert sorted(waste.evidence["volumes"], key=lambda v: v["size_gb"]) == [
        {"volume_id": root["VolumeId"], "size_gb": 8, "volume_type": "gp2"},
        {"volume_id": data["VolumeId"], "size_gb": 50, "volume_type": "io1"},
    ]
    expected = 8 * gb_month("gp2") + 50 * gb_month("io1") + 500 * iops_price.unit_price
    assert waste.price.basis == "list_price"
    assert waste.price.monthly_usd == expected == Decimal("39.55")
    assert waste.price.detail["estimated"] is False
    # Each volume's cost is named: totals count it once beside the volume's own finding.
    assert set(waste.cost_parts) == {
        CostPart(VOLUME_COST, root["VolumeId"], 8 * gb_month("gp2")),
        CostPart(VOLUME_COST, data["VolumeId"], 50 * gb_month("io1") + 500 * iops_price.unit_price),
    }


def test_running_instance_is_not_reported_as_stopped(make_scope: MakeScope) -> None:
    launch()

    assert scan(StoppedInstances, make_scope(now=utcnow() + 400 * DAY)) == {}


@pytest.mark.parametrize(
    ("stopped_for", "reported"), [(30 * DAY + HOUR, True), (30 * DAY - HOUR, False)]
)
def test_instance_is_reported_only_once_stopped_for_stopped_days(
    make_scope: MakeScope, stopped_for: dt.timedelta, reported: bool
) -> None:
    instance = launch()
    stopped_at = stop(instance)

    found = scan(StoppedInstances, make_scope(now=stopped_at + stopped_for))

    assert (instance["InstanceId"] in found) is reported


def test_stopped_instance_outside_the_priced_regions_is_priced_as_estimated(
    make_scope: MakeScope,
) -> None:
    instance = launch(region="eu-south-2")
    stopped_at = stop(instance, region="eu-south-2")

    scope = make_scope(region="eu-south-2", now=stopped_at + 45 * DAY)
    waste = scan(StoppedInstances, scope)[instance["InstanceId"]]

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == 8 * gb_month("gp2")


def test_every_page_of_describe_instances_is_read(aws: None) -> None:
    client = boto3.client("ec2", region_name="us-east-1")

    def page(instance_id: str) -> dict[str, Any]:
        instance = {
            "InstanceId": instance_id,
            "InstanceType": "t3.micro",
            "State": {"Code": 80, "Name": "stopped"},
            "StateTransitionReason": "User initiated (2025-01-01 00:00:00 GMT)",
        }
        return {"Reservations": [{"Instances": [instance]}]}

    with Stubber(client) as stubber:
        stubber.add_response("describe_instances", page("i-page1") | {"NextToken": "page-2"}, {})
        stubber.add_response("describe_instances", page("i-page2"), {"NextToken": "page-2"})
        stubber.add_response("describe_volumes", {"Volumes": []}, {})
        scope = RegionScope(
            account_id="123456789012",
            region="us-east-1",
            client=lambda service: client,
            prices=aws_catalog(),
            now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        )

        found = scan(StoppedInstances, scope)

        stubber.assert_no_pending_responses()
    assert set(found) == {"i-page1", "i-page2"}


# --- aws.ec2-idle ---------------------------------------------------------------------------


def seed_usage(
    instance: dict[str, Any],
    *,
    cpu: Sequence[float],
    network_in: Sequence[float],
    network_out: Sequence[float],
    end: dt.datetime,
    region: str = "us-east-1",
) -> None:
    """Daily CPU averages (percent) and network totals (bytes), the last day ending at ``end``."""
    for metric, values in (
        ("CPUUtilization", cpu),
        ("NetworkIn", network_in),
        ("NetworkOut", network_out),
    ):
        put_daily_values(
            namespace="AWS/EC2",
            metric=metric,
            dimension=("InstanceId", instance["InstanceId"]),
            values=values,
            end=end,
            region=region,
        )


def idle_instance(
    instance_type: str = "m5.large", *, region: str = "us-east-1", image_id: str | None = None
) -> tuple[dict[str, Any], dt.datetime]:
    """A running instance idle for 14 days (2 % CPU, 1 MB in and 1 MB out a day); and now."""
    extra = {"image_id": image_id} if image_id else {}
    instance = launch(instance_type, region=region, **extra)
    now = instance["LaunchTime"] + 30 * DAY
    days = 14
    seed_usage(
        instance,
        cpu=[2.0] * days,
        network_in=[1 * MB] * days,
        network_out=[1 * MB] * days,
        end=now,
        region=region,
    )
    return instance, now


def test_idle_instance_is_reported_at_its_on_demand_price(make_scope: MakeScope) -> None:
    instance, now = idle_instance("m5.large")
    hourly = aws_catalog().ec2_hour("us-east-1", "m5.large")
    assert hourly is not None

    waste = scan(IdleInstances, make_scope(now=now))[instance["InstanceId"]]

    assert waste.resource_type == "ec2-instance"
    assert waste.evidence["state"] == "running"
    assert waste.evidence["instance_type"] == "m5.large"
    assert waste.evidence["cpu_max_daily_average_percent"] == 2.0
    assert waste.evidence["network_max_mb_per_day"] == 2.0
    assert waste.evidence["datapoint_days"] == 14
    assert waste.evidence["cpu_percent_threshold"] == 10.0
    assert waste.evidence["network_mb_per_day_threshold"] == 5.0
    expected = (hourly.unit_price * aws_catalog().hours_per_month).quantize(Decimal("0.01"))
    assert waste.price.basis == "list_price"
    assert waste.price.monthly_usd == expected == Decimal("70.08")
    assert waste.price.detail["hours_per_month"] == "730"
    assert waste.price.detail["estimated"] is False
    # Its compute, which a previous-generation finding may price a saving on.
    assert waste.cost_parts == (CostPart(EC2_INSTANCE_COST, instance["InstanceId"], expected),)


def test_instance_with_one_busy_cpu_day_is_not_idle(make_scope: MakeScope) -> None:
    instance = launch()
    now = instance["LaunchTime"] + 30 * DAY
    seed_usage(
        instance, cpu=[2.0] * 13 + [55.0], network_in=[0.0] * 14, network_out=[0.0] * 14, end=now
    )

    assert scan(IdleInstances, make_scope(now=now)) == {}


def test_instance_serving_traffic_with_little_cpu_is_not_idle(make_scope: MakeScope) -> None:
    instance = launch()
    now = instance["LaunchTime"] + 30 * DAY
    seed_usage(
        instance, cpu=[1.0] * 14, network_in=[1 * MB] * 14, network_out=[800 * MB] * 14, end=now
    )

    assert scan(IdleInstances, make_scope(now=now)) == {}


def test_instance_without_cloudwatch_data_is_not_judged(make_scope: MakeScope) -> None:
    instance = launch()

    assert scan(IdleInstances, make_scope(now=instance["LaunchTime"] + 30 * DAY)) == {}


def test_stopped_instance_is_not_judged_idle(make_scope: MakeScope) -> None:
    instance, now = idle_instance()
    stop(instance)

    assert scan(IdleInstances, make_scope(now=now)) == {}


@pytest.mark.parametrize(("cpu", "reported"), [(9.9, True), (10.0, False)])
def test_instance_is_idle_only_while_its_busiest_cpu_day_stays_below_cpu_percent(
    make_scope: MakeScope, cpu: float, reported: bool
) -> None:
    instance = launch()
    now = instance["LaunchTime"] + 30 * DAY
    seed_usage(
        instance, cpu=[1.0] * 13 + [cpu], network_in=[0.0] * 14, network_out=[0.0] * 14, end=now
    )

    assert (instance["InstanceId"] in scan(IdleInstances, make_scope(now=now))) is reported


@pytest.mark.parametrize(("mb_out", "reported"), [(3.9, True), (4.0, False)])
def test_instance_is_idle_only_while_daily_network_stays_below_network_mb_per_day(
    make_scope: MakeScope, mb_out: float, reported: bool
) -> None:
    instance = launch()
    now = instance["LaunchTime"] + 30 * DAY
    seed_usage(
        instance,
        cpu=[1.0] * 14,
        network_in=[1 * MB] * 14,
        network_out=[0.0] * 13 + [mb_out * MB],  # plus 1 MB in: 4.9 or 5.0 MB that day
        end=now,
    )

    assert (instance["InstanceId"] in scan(IdleInstances, make_scope(now=now))) is reported


@pytest.mark.parametrize(("days", "reported"), [(4, True), (3, False)])
def test_instance_is_judged_only_with_min_datapoint_days_of_data(
    make_scope: MakeScope, days: int, reported: bool
) -> None:
    instance = launch()
    now = instance["LaunchTime"] + 30 * DAY
    seed_usage(
        instance, cpu=[1.0] * days, network_in=[0.0] * days, network_out=[0.0] * days, end=now
    )

    assert (instance["InstanceId"] in scan(IdleInstances, make_scope(now=now))) is reported


def test_usage_before_the_lookback_does_not_count(make_scope: MakeScope) -> None:
    instance = launch()
    now = instance["LaunchTime"] + 30 * DAY
    busy_then_idle = [90.0] * 5 + [1.0] * 14  # busy 15-19 days ago
    seed_usage(instance, cpu=busy_then_idle, network_in=[0.0] * 19, network_out=[0.0] * 19, end=now)

    waste = scan(IdleInstances, make_scope(now=now))[instance["InstanceId"]]

    assert waste.evidence["cpu_max_daily_average_percent"] == 1.0


def test_idle_instance_of_a_type_missing_from_the_catalog_has_an_unknown_price(
    make_scope: MakeScope,
) -> None:
    assert aws_catalog().ec2_hour("us-east-1", "p4d.24xlarge") is None
    instance, now = idle_instance("p4d.24xlarge")

    waste = scan(IdleInstances, make_scope(now=now))[instance["InstanceId"]]

    assert waste.price.basis == "unknown"
    assert waste.price.monthly_usd is None
    assert "p4d.24xlarge" in waste.price.detail["why"]


def test_idle_windows_instance_is_not_priced_at_the_linux_list_price(
    make_scope: MakeScope,
) -> None:
    instance, now = idle_instance("m5.large", image_id=WINDOWS_AMI)

    waste = scan(IdleInstances, make_scope(now=now))[instance["InstanceId"]]

    assert waste.price.basis == "unknown"
    assert "Windows" in waste.price.detail["why"]


def test_idle_instance_outside_the_priced_regions_is_priced_as_estimated(
    make_scope: MakeScope,
) -> None:
    instance, now = idle_instance("m5.large", region="ap-southeast-2")

    scope = make_scope(region="ap-southeast-2", now=now)
    waste = scan(IdleInstances, scope)[instance["InstanceId"]]

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == Decimal("70.08")


def test_all_instances_are_read_from_cloudwatch_in_one_batched_call(
    make_scope: MakeScope,
) -> None:
    idle = [idle_instance() for _ in range(4)]
    scope = make_scope(now=max(now for _, now in idle))
    calls: Counter[str] = Counter()

    def counting_client(service: str) -> Any:
        client = scope.client(service)
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
        return client

    found = scan(IdleInstances, dataclasses.replace(scope, client=counting_client))

    assert set(found) == {instance["InstanceId"] for instance, _ in idle}
    assert calls["GetMetricData"] == 1


# --- aws.ami-unused -------------------------------------------------------------------------


def own_image(name: str = "golden-2024") -> dict[str, Any]:
    """An AMI of the account, made from an instance that is then terminated."""
    instance = launch()
    image_id = ec2().create_image(InstanceId=instance["InstanceId"], Name=name)["ImageId"]
    ec2().terminate_instances(InstanceIds=[instance["InstanceId"]])
    return dict(ec2().describe_images(ImageIds=[image_id])["Images"][0])


def created(image: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(image["CreationDate"])


def test_old_ami_no_instance_uses_is_reported_at_its_snapshot_storage_price(
    make_scope: MakeScope,
) -> None:
    image = own_image("golden-2024")
    [mapping] = image["BlockDeviceMappings"]
    size = mapping["Ebs"]["VolumeSize"]
    snapshot_price = aws_catalog().ebs_snapshot_gb_month("us-east-1")
    assert snapshot_price is not None

    found = scan(UnusedImages, make_scope(now=created(image) + 120 * DAY))

    waste = found[image["ImageId"]]
    assert waste.resource_type == "ami"
    assert waste.resource_name == "golden-2024"
    assert waste.evidence["snapshot_ids"] == [mapping["Ebs"]["SnapshotId"]]
    assert waste.evidence["size_gb"] == size
    assert waste.evidence["age_days"] == pytest.approx(120, abs=0.01)
    assert waste.price.monthly_usd == size * snapshot_price.unit_price
    assert "upper bound" in waste.price.detail["note"]


def test_ami_an_instance_was_launched_from_is_not_reported(make_scope: MakeScope) -> None:
    image = own_image()
    instance = launch(image_id=image["ImageId"])
    stop(instance)  # a stopped instance still needs its AMI

    assert scan(UnusedImages, make_scope(now=created(image) + 400 * DAY)) == {}


@pytest.mark.parametrize(("age", "reported"), [(90 * DAY + HOUR, True), (90 * DAY - HOUR, False)])
def test_unused_ami_is_reported_only_once_older_than_min_age_days(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    image = own_image()

    found = scan(UnusedImages, make_scope(now=created(image) + age))

    assert (image["ImageId"] in found) is reported


def launch_template(image_id: str, *, then: str | None = None, default: int = 1) -> None:
    """A launch template of ``image_id``; with ``then``, a second version launching that image,
    and ``default`` the version the template launches by default."""
    client = ec2()
    template = client.create_launch_template(
        LaunchTemplateName=f"asg-{image_id}",
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "m5.large"},
    )["LaunchTemplate"]
    if then is not None:
        client.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"],
            LaunchTemplateData={"ImageId": then, "InstanceType": "m5.large"},
        )
    if default != 1:
        client.modify_launch_template(
            LaunchTemplateId=template["LaunchTemplateId"], DefaultVersion=str(default)
        )


@pytest.mark.parametrize("version", ["latest", "default"])
def test_ami_the_latest_or_default_launch_template_version_names_is_not_reported(
    make_scope: MakeScope, version: str
) -> None:
    image, other = own_image("asg-base"), own_image("golden-2023")
    # Version 2 is the latest; version 1 stays the default unless the template says otherwise.
    if version == "latest":
        launch_template(other["ImageId"], then=image["ImageId"])
    else:
        launch_template(image["ImageId"], then=other["ImageId"])

    found = scan(UnusedImages, make_scope(now=created(image) + 400 * DAY))

    assert image["ImageId"] not in found


def test_ami_only_an_old_launch_template_version_names_is_reported(
    make_scope: MakeScope,
) -> None:
    image, current = own_image("asg-2022"), own_image("asg-2024")
    launch_template(image["ImageId"], then=current["ImageId"], default=2)
    launch_template(current["ImageId"])  # more templates than the one that names the AMI

    found = scan(UnusedImages, make_scope(now=created(image) + 400 * DAY))

    assert set(found) == {image["ImageId"]}
    assert found[image["ImageId"]].evidence["used_by_launch_templates"] == 0


def test_ami_a_launch_configuration_names_is_not_reported(make_scope: MakeScope) -> None:
    image, unused = own_image("asg-legacy"), own_image("golden-2023")
    boto3.client("autoscaling", region_name="us-east-1").create_launch_configuration(
        LaunchConfigurationName="legacy-workers",
        ImageId=image["ImageId"],
        InstanceType="m5.large",
    )

    found = scan(UnusedImages, make_scope(now=created(image) + 400 * DAY))

    assert set(found) == {unused["ImageId"]}
