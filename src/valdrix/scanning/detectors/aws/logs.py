"""CloudWatch Logs waste: log groups that keep everything forever."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste
from valdrix.scanning.detectors.aws._common import BYTES_PER_GB, stored_bytes_price
from valdrix.scanning.registry import detectors

BYTES_PER_MB = 2**20


class UnboundedLogGroupThresholds(Thresholds):
    min_stored_mb: int = Field(
        1024,
        ge=0,
        description="Report a log group without retention only once it stores more than this "
        "many MB (2^20 bytes).",
    )


@detectors.register("aws.log-group-no-retention")
class UnboundedLogGroup(Detector):
    """Flags CloudWatch log groups with no retention policy ("never expire") that store more
    than a threshold of log data.

    CloudWatch Logs bills every GB it archives each month, for as long as it is kept; without a
    retention policy nothing is ever deleted, so the bill only grows. The figure is what the group
    stores today, an upper bound of what a retention policy would save (data younger than the
    policy stays).
    """

    provider = "aws"
    resource_type = "log-group"
    permissions = ("logs:DescribeLogGroups", "logs:ListTagsForResource")
    thresholds = UnboundedLogGroupThresholds

    def detect(
        self, scope: RegionScope, thresholds: UnboundedLogGroupThresholds
    ) -> Iterator[Waste]:
        logs = scope.client("logs")
        for page in logs.get_paginator("describe_log_groups").paginate():
            for group in page.get("logGroups", []):
                if group.get("retentionInDays"):
                    continue
                stored_bytes = int(group.get("storedBytes") or 0)
                if stored_bytes <= thresholds.min_stored_mb * BYTES_PER_MB:
                    continue
                yield self._waste(scope, logs, group, stored_bytes, thresholds)

    def _waste(
        self,
        scope: RegionScope,
        logs: Any,
        group: dict[str, Any],
        stored_bytes: int,
        thresholds: UnboundedLogGroupThresholds,
    ) -> Waste:
        name = group["logGroupName"]
        stored_gb = Decimal(stored_bytes) / BYTES_PER_GB
        arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
        # Tags only for the groups found: tag exclusions need them, most groups are never read.
        tags: dict[str, str] = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        return Waste(
            resource_id=name,
            resource_type=self.resource_type,
            reason=f"log group keeps {stored_gb:.2f} GB of logs forever: no retention policy",
            price=stored_bytes_price(
                scope,
                {"archived": stored_bytes},
                lambda _: scope.prices.logs_storage_gb_month(scope.region),
                what="CloudWatch Logs storage",
                note="upper bound: a retention policy deletes only what is older than it",
            ),
            evidence={
                "stored_bytes": stored_bytes,
                "stored_gb": float(round(stored_gb, 3)),
                "retention_in_days": None,
                "min_stored_mb": thresholds.min_stored_mb,
            },
            resource_name=name,
            tags=tags,
        )
