"""Batched CloudWatch reads: GetMetricData with up to 500 queries per call, never one call per
resource (GetMetricStatistics would be one metric per call). ``CloudWatchMetrics`` is the AWS
metric fetcher of the idle detectors in ``scanning.idle``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from valdrix.scanning.idle import MetricWindow

MAX_QUERIES_PER_CALL = 500


@dataclass(frozen=True)
class MetricQuery:
    """One metric series: ``id`` must be unique in a fetch, start lowercase, be [a-zA-Z0-9_]."""

    id: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period_seconds: int = 86400

    def as_api(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": self.period_seconds,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def fetch_metrics(
    cloudwatch: Any, queries: Sequence[MetricQuery], start: dt.datetime, end: dt.datetime
) -> dict[str, list[float]]:
    """Datapoint values per query id (empty list when CloudWatch has no data)."""
    values: dict[str, list[float]] = {query.id: [] for query in queries}
    for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
        batch = [query.as_api() for query in queries[offset : offset + MAX_QUERIES_PER_CALL]]
        token: str | None = None
        while True:
            request: dict[str, Any] = {
                "MetricDataQueries": batch,
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                request["NextToken"] = token
            response = cloudwatch.get_metric_data(**request)
            for result in response.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(float(v) for v in result["Values"])
            token = response.get("NextToken")
            if not token:
                break
    return values


@dataclass(frozen=True)
class CloudWatchMetrics:
    """``fetch_metrics`` as a ``scanning.idle.MetricFetcher``: values in the order asked."""

    cloudwatch: Any

    def fetch(self, queries: Sequence[MetricQuery], window: MetricWindow) -> list[list[float]]:
        values = fetch_metrics(self.cloudwatch, queries, window.start, window.end)
        return [values[query.id] for query in queries]
