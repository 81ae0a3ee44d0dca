"""DynamoDB waste: tables paying for provisioned capacity nobody consumes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Price, RegionScope, Waste
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import CloudWatchIdleDetector
from valdrix.scanning.idle import IdleResource, LookbackThresholds
from valdrix.scanning.registry import detectors

CONSUMED = (("read", "ConsumedReadCapacityUnits"), ("write", "ConsumedWriteCapacityUnits"))


class IdleDynamoTableThresholds(LookbackThresholds):
    lookback_days: int = Field(
        14,
        ge=1,
        description="Days of CloudWatch consumed read and write capacity to sum; tables younger "
        "than this (or min_age_days) are not judged.",
    )
    max_consumed_units: int = Field(
        0,
        ge=0,
        description="A table whose reads and writes (its own and its global secondary indexes') "
        "consumed at most this many capacity units in all over the lookback is idle.",
    )


@detectors.register("aws.dynamodb-idle")
class IdleDynamoTable(CloudWatchIdleDetector[IdleDynamoTableThresholds]):
    """Flags active DynamoDB tables in provisioned-capacity mode whose reads and writes, on the
    table and on its global secondary indexes, consumed no capacity over the lookback.

    Provisioned read and write capacity units are billed by the hour whether or not a request
    uses them, so a table nobody reads or writes pays its full provisioned capacity for nothing
    (on-demand tables bill per request and are not judged). Tables younger than the lookback, and
    tables CloudWatch has no consumed-capacity datapoints for, are not judged.
    """

    provider = "aws"
    resource_type = "dynamodb-table"
    permissions = (
        "dynamodb:ListTables",
        "dynamodb:DescribeTable",
        "dynamodb:ListTagsOfResource",
        "cloudwatch:GetMetricData",
    )
    thresholds = IdleDynamoTableThresholds
    created_field = "CreationDateTime"
    window_figure = "total"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        dynamodb = scope.client("dynamodb")
        names = [
            name
            for page in dynamodb.get_paginator("list_tables").paginate()
            for name in page.get("TableNames", [])
        ]
        # DescribeTable takes one table: it is the only way to read a table's capacity mode.
        tables = [dynamodb.describe_table(TableName=name)["Table"] for name in names]
        return [
            table for table in tables if table["TableStatus"] == "ACTIVE" and _provisioned(table)
        ]

    def metric_queries(self, position: int, table: dict[str, Any]) -> list[MetricQuery]:
        name = table["TableName"]
        queries = [
            MetricQuery(
                f"ddb{position}_{kind}", "AWS/DynamoDB", metric, (("TableName", name),), "Sum"
            )
            for kind, metric in CONSUMED
        ]
        for number, index in enumerate(table.get("GlobalSecondaryIndexes", [])):
            dimensions = (("TableName", name), ("GlobalSecondaryIndexName", index["IndexName"]))
            queries += [
                MetricQuery(
                    f"ddb{position}_gsi{number}_{kind}", "AWS/DynamoDB", metric, dimensions, "Sum"
                )
                for kind, metric in CONSUMED
            ]
        return queries

    def judged_figures(self, figures: tuple[float, ...]) -> tuple[float, ...]:
        # Reads and writes, of the table and of every index, as one total.
        return (sum(figures),)

    def idle_limits(self, thresholds: IdleDynamoTableThresholds) -> tuple[float, ...]:
        return (thresholds.max_consumed_units,)

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleDynamoTableThresholds]
    ) -> Waste:
        table, thresholds = idle.resource, idle.thresholds
        [consumed] = idle.judged_figures
        read_units, write_units = _provisioned_units(table)
        tags = scope.client("dynamodb").list_tags_of_resource(ResourceArn=table["TableArn"])
        return Waste(
            resource_id=table["TableName"],
            resource_type=self.resource_type,
            reason=f"table consumed {consumed:.0f} capacity units in the last "
            f"{thresholds.lookback_days} days while paying for {read_units} read and "
            f"{write_units} write units",
            price=_capacity_price(scope, table, read_units, write_units),
            evidence={
                "consumed_capacity_units": consumed,
                "provisioned_read_units": read_units,
                "provisioned_write_units": write_units,
                "global_secondary_indexes": len(table.get("GlobalSecondaryIndexes", [])),
                "datapoints": min(idle.datapoints),
                **idle.window_evidence(),
                **idle.age_evidence(),
                "max_consumed_units": thresholds.max_consumed_units,
            },
            resource_name=table["TableName"],
            tags={tag["Key"]: tag["Value"] for tag in tags.get("Tags", [])},
        )


def _provisioned(table: dict[str, Any]) -> bool:
    # Tables created provisioned may carry no BillingModeSummary at all.
    mode = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return mode == "PROVISIONED" and any(_provisioned_units(table))


def _provisioned_units(table: dict[str, Any]) -> tuple[int, int]:
    """Read and write capacity units of the table and its global secondary indexes."""
    throughputs = [table.get("ProvisionedThroughput", {})]
    throughputs += [
        index.get("ProvisionedThroughput", {}) for index in table.get("GlobalSecondaryIndexes", [])
    ]
    return (
        sum(int(t.get("ReadCapacityUnits") or 0) for t in throughputs),
        sum(int(t.get("WriteCapacityUnits") or 0) for t in throughputs),
    )


def _capacity_price(
    scope: RegionScope, table: dict[str, Any], read_units: int, write_units: int
) -> Price:
    table_class = table.get("TableClassSummary", {}).get("TableClass", "STANDARD")
    if table_class != "STANDARD":
        return Price.unknown(
            f"the price catalog has capacity prices of STANDARD tables only, not {table_class}"
        )
    read = scope.prices.dynamodb_capacity_unit_hour(scope.region, "read")
    write = scope.prices.dynamodb_capacity_unit_hour(scope.region, "write")
    if read is None or write is None:
        return Price.unknown("the price catalog has no DynamoDB provisioned capacity price")
    # Per unit the hourly price is a fraction of a cent: multiply before rounding.
    hours = scope.prices.hours_per_month
    read_monthly = (read.unit_price * hours * read_units).quantize(Decimal("0.01"))
    write_monthly = (write.unit_price * hours * write_units).quantize(Decimal("0.01"))
    return Price(
        read_monthly + write_monthly,
        "list_price",
        {
            "estimated": read.estimated,
            "catalog_as_of": scope.prices.as_of.isoformat(),
            "hours_per_month": str(scope.prices.hours_per_month),
            "read": read.detail(scope.prices)
            | {"units": read_units, "monthly_usd": str(read_monthly)},
            "write": write.detail(scope.prices)
            | {"units": write_units, "monthly_usd": str(write_monthly)},
            "note": "provisioned capacity only: storage, reserved capacity and the free tier are "
            "not counted",
        },
    )
