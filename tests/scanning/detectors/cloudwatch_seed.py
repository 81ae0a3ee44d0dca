"""Seeding CloudWatch datapoints under moto, for detectors that judge resources by their metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import boto3


def put_daily_values(
    *,
    namespace: str,
    metric: str,
    dimension: tuple[str, str],
    values: Sequence[float],
    end: dt.datetime,
    region: str = "us-east-1",
) -> None:
    """One datapoint a day, the last one an hour before ``end``, oldest first."""
    name, value = dimension
    last = end - dt.timedelta(hours=1)
    boto3.client("cloudwatch", region_name=region).put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": name, "Value": value}],
                "Timestamp": last - dt.timedelta(days=len(values) - 1 - index),
                "Value": datapoint,
            }
            for index, datapoint in enumerate(values)
        ],
    )
