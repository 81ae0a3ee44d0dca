"""aws.dynamodb-idle under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.dynamodb import IdleDynamoTable, IdleDynamoTableThresholds

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)


def table(
    name: str = "sessions", *, on_demand: bool = False, index: bool = False
) -> dict[str, Any]:
    """A table of 100 read and 50 write units (``index``: plus a GSI of 10 and 10)."""
    capacity = {"ReadCapacityUnits": 100, "WriteCapacityUnits": 50}
    options: dict[str, Any] = (
        {"BillingMode": "PAY_PER_REQUEST"} if on_demand else {"ProvisionedThroughput": capacity}
    )
    if index:
        options["GlobalSecondaryIndexes"] = [
            {
                "IndexName": "by-user",
                "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
            }
        ]
    created: dict[str, Any] = boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"}
            for attribute in ["id", "user"][: 1 + index]
        ],
        Tags=[{"Key": "team", "Value": "identity"}],
        **options,
    )["TableDescription"]
    return created


def consumed(
    name: str, *, reads: float, writes: float, end: dt.datetime, index: str | None = None
) -> None:
    """Fourteen days of consumed capacity, all of it on the last day."""
    for metric, total in (
        ("ConsumedReadCapacityUnits", reads),
        ("ConsumedWriteCapacityUnits", writes),
    ):
        dimension = ("TableName", name)
        values = [0.0] * 13 + [total]
        if index is None:
            put_daily_values(
                namespace="AWS/DynamoDB", metric=metric, dimension=dimension, values=values, end=end
            )
            continue
        boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
            Namespace="AWS/DynamoDB",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "TableName", "Value": name},
                        {"Name": "GlobalSecondaryIndexName", "Value": index},
                    ],
                    "Timestamp": end - dt.timedelta(hours=1) - day * DAY,
                    "Value": total if day == 0 else 0.0,
                }
                for day in range(14)
            ],
        )


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IdleDynamoTableThresholds(**thresholds)
    return {waste.resource_id: waste for waste in IdleDynamoTable().detect(scope, settings)}


def test_provisioned_table_nobody_reads_or_writes_is_reported_at_its_capacity_price(
    make_scope: MakeScope,
) -> None:
    created = table(index=True)
    now = created["CreationDateTime"] + 20 * DAY
    consumed("sessions", reads=0, writes=0, end=now)
    consumed("sessions", reads=0, writes=0, end=now, index="by-user")

    waste = scan(make_scope(now=now))["sessions"]

    assert waste.resource_type == "dynamodb-table"
    assert waste.tags == {"team": "identity"}
    assert waste.evidence["provisioned_read_units"] == 110
    assert waste.evidence["provisioned_write_units"] == 60
    assert waste.evidence["consumed_capacity_units"] == 0
    assert waste.evidence["lookback_days"] == 14
    # 110 RCU x 0.00013 $/h and 60 WCU x 0.00065 $/h, for 730 hours.
    assert waste.price.monthly_usd == Decimal("10.44") + Decimal("28.47")
    assert waste.price.basis == "list_price"
    assert waste.price.detail["estimated"] is False


def test_table_whose_index_serves_reads_is_not_reported(make_scope: MakeScope) -> None:
    created = table(index=True)
    now = created["CreationDateTime"] + 20 * DAY
    consumed("sessions", reads=0, writes=0, end=now)
    consumed("sessions", reads=500, writes=0, end=now, index="by-user")

    assert scan(make_scope(now=now)) == {}


def test_on_demand_table_is_not_judged(make_scope: MakeScope) -> None:
    created = table(on_demand=True)
    now = created["CreationDateTime"] + 20 * DAY
    consumed("sessions", reads=0, writes=0, end=now)

    assert scan(make_scope(now=now)) == {}


@pytest.mark.parametrize(("writes", "reported"), [(30.0, True), (31.0, False)])
def test_consumed_units_at_the_threshold_count_as_idle(
    make_scope: MakeScope, writes: float, reported: bool
) -> None:
    created = table()
    now = created["CreationDateTime"] + 20 * DAY
    consumed("sessions", reads=20, writes=writes, end=now)

    assert ("sessions" in scan(make_scope(now=now), max_consumed_units=50)) is reported
