"""aws.ec2-previous-generation under moto, and the family-to-successor data it reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws._common import EC2_INSTANCE_COST
from valdrix.scanning.detectors.aws.ec2 import IdleInstances, IdleThresholds
from valdrix.scanning.detectors.aws.ec2_generations import (
    PreviousGenerationInstances,
    PreviousGenerationInstanceThresholds,
)
from valdrix.scanning.detectors.aws.instance_generations import same_size_successor
from valdrix.scanning.overlaps import Claim, counted_under_others

from .cloudwatch_seed import put_daily_values
from .ec2_world import DAY, WINDOWS_AMI, ec2, launch

MakeScope = Callable[..., RegionScope]


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = PreviousGenerationInstanceThresholds(**thresholds)
    return {w.resource_id: w for w in PreviousGenerationInstances().detect(scope, settings)}


@pytest.mark.parametrize(
    ("instance_type", "equivalent"),
    [
        ("m4.large", "m5.large"),
        ("t2.micro", "t3.micro"),
        ("c4.8xlarge", None),  # C5 has 9xlarge, not 8xlarge
        ("m4.10xlarge", None),
        ("i2.xlarge", "i3.xlarge"),
        ("d2.2xlarge", "d3.2xlarge"),
        ("db.m4.large", "db.m5.large"),  # RDS classes name the same families
        ("m5.large", None),  # current generation
        ("m7g.large", None),
    ],
)
def test_previous_generation_types_map_to_a_same_size_current_generation_type(
    instance_type: str, equivalent: str | None
) -> None:
    assert same_size_successor(instance_type) == equivalent


def test_running_m4_is_reported_at_what_m5_saves(make_scope: MakeScope) -> None:
    instance = launch("m4.large", name="legacy-app")

    waste = scan(make_scope())[instance["InstanceId"]]

    # m4.large $0.10/h, m5.large $0.096/h: 730 h x $0.004.
    assert waste.price.monthly_usd == Decimal("73.00") - Decimal("70.08") == Decimal("2.92")
    assert waste.price.basis == "list_price"
    assert waste.price.detail["equivalent_type"] == "m5.large"
    assert waste.evidence["instance_type"] == "m4.large"
    assert waste.evidence["current_generation_type"] == "m5.large"
    assert waste.resource_name == "legacy-app"
    assert "m5.large" in waste.reason
    assert [(p.component, p.monthly_usd) for p in waste.cost_parts] == [
        (EC2_INSTANCE_COST, Decimal("2.92"))
    ]


def test_current_generation_and_stopped_instances_are_not_reported(make_scope: MakeScope) -> None:
    launch("m5.large")
    stopped = launch("m4.large")
    ec2().stop_instances(InstanceIds=[stopped["InstanceId"]])

    assert scan(make_scope()) == {}


def test_equivalent_that_costs_more_is_not_reported(make_scope: MakeScope) -> None:
    # g3.4xlarge $1.14/h; g4dn.4xlarge $1.204/h.
    launch("g3.4xlarge")

    assert scan(make_scope()) == {}


def test_size_the_successor_does_not_come_in_is_not_reported(make_scope: MakeScope) -> None:
    launch("m4.10xlarge")

    assert scan(make_scope()) == {}


def test_instance_is_reported_only_while_the_saving_reaches_min_monthly_saving_usd(
    make_scope: MakeScope,
) -> None:
    instance_id = launch("c4.large")["InstanceId"]
    # c4.large $0.10/h, c5.large $0.085/h: 730 h x $0.015 = $10.95.
    scope = make_scope()

    assert scan(scope, min_monthly_saving_usd="10.95")[instance_id].price.monthly_usd == Decimal(
        "10.95"
    )
    assert scan(scope, min_monthly_saving_usd="10.96") == {}


def test_equivalent_missing_from_the_catalog_leaves_the_saving_unknown(
    make_scope: MakeScope,
) -> None:
    instance_id = launch("x1.16xlarge")["InstanceId"]

    waste = scan(make_scope())[instance_id]

    assert waste.price.basis == "unknown"
    assert waste.price.monthly_usd is None
    assert "x2idn.16xlarge" in waste.price.detail["why"]
    assert waste.cost_parts == ()


def test_windows_instance_saving_is_unknown_not_quoted_at_linux_prices(
    make_scope: MakeScope,
) -> None:
    instance_id = launch("m4.large", image_id=WINDOWS_AMI)["InstanceId"]

    waste = scan(make_scope())[instance_id]

    assert waste.price.basis == "unknown"
    assert "Windows" in waste.price.detail["why"]


def test_idle_previous_generation_instance_saving_is_counted_under_its_idle_finding(
    make_scope: MakeScope,
) -> None:
    instance = launch("r4.large")
    now = instance["LaunchTime"] + 30 * DAY
    for metric, value in (("CPUUtilization", 1.0), ("NetworkIn", 1e5), ("NetworkOut", 1e5)):
        put_daily_values(
            namespace="AWS/EC2",
            metric=metric,
            dimension=("InstanceId", instance["InstanceId"]),
            values=[value] * 14,
            end=now,
        )
    scope = make_scope(now=now)
    [idle] = IdleInstances().detect(scope, IdleThresholds())
    [older] = PreviousGenerationInstances().detect(scope, PreviousGenerationInstanceThresholds())

    claims = [
        Claim(
            uuid.uuid4(),
            key,
            ("aws", "123456789012", "us-east-1"),
            part.component,
            part.resource_id,
            part.monthly_usd,
            own=True,
        )
        for key, waste in (("aws.ec2-idle", idle), ("aws.ec2-previous-generation", older))
        for part in waste.cost_parts
    ]
    [left_out] = counted_under_others(claims)

    # r4.large $0.133/h in full when idle; r5.large saves $0.007/h of it.
    assert idle.price.monthly_usd == Decimal("97.09")
    assert older.price.monthly_usd == Decimal("5.11")
    assert (left_out.claim.detector, left_out.carrier.detector) == (
        "aws.ec2-previous-generation",
        "aws.ec2-idle",
    )
