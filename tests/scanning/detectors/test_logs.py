"""aws.log-group-no-retention under moto (and botocore's Stubber for sizes moto cannot hold)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.logs import UnboundedLogGroup, UnboundedLogGroupThresholds

MakeScope = Callable[..., RegionScope]
MB = 2**20
GB = 2**30


def logs() -> Any:
    return boto3.client("logs", region_name="us-east-1")


def log_group(name: str, *, stored_bytes: int, retention_days: int | None = None) -> None:
    """A log group holding ``stored_bytes`` of messages (moto counts a message's characters)."""
    client = logs()
    client.create_log_group(logGroupName=name, tags={"team": "payments"})
    client.create_log_stream(logGroupName=name, logStreamName="app")
    now_ms = int(utcnow().timestamp() * 1000)
    chunk = 256 * 1024
    sizes = [chunk] * (stored_bytes // chunk) + (
        [stored_bytes % chunk] if stored_bytes % chunk else []
    )
    client.put_log_events(
        logGroupName=name,
        logStreamName="app",
        logEvents=[{"timestamp": now_ms, "message": "x" * size} for size in sizes],
    )
    if retention_days:
        client.put_retention_policy(logGroupName=name, retentionInDays=retention_days)


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = UnboundedLogGroupThresholds(**thresholds)
    return {waste.resource_id: waste for waste in UnboundedLogGroup().detect(scope, settings)}


@pytest.mark.parametrize(("stored", "reported"), [(MB + 1, True), (MB, False)])
def test_group_without_retention_is_reported_once_it_stores_more_than_min_stored_mb(
    make_scope: MakeScope, stored: int, reported: bool
) -> None:
    log_group("/app/orders", stored_bytes=stored)

    found = scan(make_scope(), min_stored_mb=1)

    assert ("/app/orders" in found) is reported
    if reported:
        waste = found["/app/orders"]
        assert waste.resource_type == "log-group"
        assert waste.tags == {"team": "payments"}
        assert waste.evidence["stored_bytes"] == MB + 1
        assert waste.evidence["retention_in_days"] is None
        assert waste.evidence["min_stored_mb"] == 1
        assert waste.price.basis == "list_price"


def test_group_with_a_retention_policy_is_not_reported(make_scope: MakeScope) -> None:
    log_group("/app/orders", stored_bytes=2 * MB, retention_days=30)
    log_group("/app/tiny", stored_bytes=100)  # no retention, but holds next to nothing

    assert scan(make_scope(), min_stored_mb=1) == {}


# Stubbed: moto keeps every message in memory, so a group of real size is stubbed.


def test_group_is_priced_per_gb_month_of_stored_logs_on_every_page(make_scope: MakeScope) -> None:
    client = logs()
    stubber = Stubber(client)

    def group(name: str, stored: int, **extra: Any) -> dict[str, Any]:
        arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{name}"
        return {
            "logGroupName": name,
            "arn": f"{arn}:*",
            "logGroupArn": arn,
            "storedBytes": stored,
        } | extra

    stubber.add_response(
        "describe_log_groups",
        {"logGroups": [group("/aws/lambda/old", 50 * GB)], "nextToken": "page-2"},
        {},
    )
    # A group's tags are read as it is found, before the next page.
    stubber.add_response(
        "list_tags_for_resource",
        {"tags": {"team": "growth"}},
        {"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/old"},
    )
    stubber.add_response(
        "describe_log_groups",
        {"logGroups": [group("/aws/lambda/kept", 80 * GB, retentionInDays=14)]},
        {"nextToken": "page-2"},
    )
    stubber.activate()
    scope = dataclasses.replace(make_scope(), client=lambda service: client)

    found = scan(scope)

    waste = found["/aws/lambda/old"]
    assert set(found) == {"/aws/lambda/old"}
    # 50 GB x 0.03 $/GB-month of archived log storage.
    assert waste.price.monthly_usd == Decimal("1.50")
    assert waste.price.detail["estimated"] is False
    assert "upper bound" in waste.price.detail["note"]
    assert waste.evidence["stored_gb"] == 50.0
    assert waste.tags == {"team": "growth"}
    stubber.assert_no_pending_responses()
