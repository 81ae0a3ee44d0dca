"""ElastiCache clusters nobody reads from or writes to."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, Price, RegionScope, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery, fetch_metrics
from valdrix.scanning.detectors.aws._common import (
    LookbackThresholds,
    age_days,
    hourly_price,
    is_at_least_days_old,
)
from valdrix.scanning.registry import detectors

# Read and write command counts per engine. Connection counts cannot tell an idle cache: AWS
# holds 4 to 6 monitoring connections to every Redis OSS / Valkey node (more on Memcached).
COMMAND_METRICS = {
    "redis": ("GetTypeCmds", "SetTypeCmds"),
    "valkey": ("GetTypeCmds", "SetTypeCmds"),
    "memcached": ("CmdGet", "CmdSet"),
}
# The catalog's node prices are Redis OSS / Memcached list prices (Valkey is listed lower).
PRICED_ENGINES = ("redis", "memcached")


class IdleCacheClusterThresholds(LookbackThresholds):
    lookback_days: int = Field(
        7,
        ge=1,
        description="Days of CloudWatch read/write command counts to sum; clusters younger than "
        "this (or min_age_days) are not judged.",
    )
    max_commands: int = Field(
        0,
        ge=0,
        description="A cluster that served at most this many read and at most this many write "
        "commands over the lookback is idle.",
    )


@detectors.register("aws.elasticache-idle")
class IdleCacheCluster(Detector):
    """Flags available ElastiCache clusters that served no read or write commands over the
    lookback; in a replication group, only when every member is idle.

    Cache nodes are billed for every hour they run, used or not, so a cache nothing reads or
    writes costs its nodes' full hourly rate for nothing. Clusters younger than the lookback, and
    clusters CloudWatch has no command datapoints for, are not judged.
    """

    provider = "aws"
    resource_type = "elasticache-cluster"
    permissions = (
        "elasticache:DescribeCacheClusters",
        "elasticache:ListTagsForResource",
        "cloudwatch:GetMetricData",
    )
    thresholds = IdleCacheClusterThresholds

    def detect(self, scope: RegionScope, thresholds: IdleCacheClusterThresholds) -> Iterator[Waste]:
        elasticache = scope.client("elasticache")
        clusters = [
            cluster
            for page in elasticache.get_paginator("describe_cache_clusters").paginate()
            for cluster in page["CacheClusters"]
            if cluster["CacheClusterStatus"] == "available" and cluster["Engine"] in COMMAND_METRICS
        ]
        window_start = scope.now - dt.timedelta(days=thresholds.lookback_days)
        queries = {
            cluster["CacheClusterId"]: [
                MetricQuery(
                    id=f"c{index}m{position}",
                    namespace="AWS/ElastiCache",
                    metric=metric,
                    dimensions=(("CacheClusterId", cluster["CacheClusterId"]),),
                    stat="Sum",
                )
                for position, metric in enumerate(COMMAND_METRICS[cluster["Engine"]])
            ]
            for index, cluster in enumerate(clusters)
        }
        if not queries:
            return
        values = fetch_metrics(
            scope.client("cloudwatch"),
            [query for per_cluster in queries.values() for query in per_cluster],
            window_start,
            scope.now,
        )
        usage = {
            cluster_id: [sum(values[q.id]) if values[q.id] else None for q in per_cluster]
            for cluster_id, per_cluster in queries.items()
        }
        # Members of a replication group serve together: a replica nobody reads is not waste
        # while its primary is busy.
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for cluster in clusters:
            groups[cluster.get("ReplicationGroupId") or cluster["CacheClusterId"]].append(cluster)
        for members in groups.values():
            if not all(_idle(usage[m["CacheClusterId"]], thresholds) for m in members):
                continue
            for cluster in members:
                if is_at_least_days_old(
                    cluster["CacheClusterCreateTime"], scope.now, thresholds.judged_from_age_days
                ):
                    reads, writes = usage[cluster["CacheClusterId"]]
                    yield self._waste(
                        scope, elasticache, cluster, reads or 0, writes or 0, thresholds
                    )

    def _waste(
        self,
        scope: RegionScope,
        elasticache: Any,
        cluster: dict[str, Any],
        reads: float,
        writes: float,
        thresholds: IdleCacheClusterThresholds,
    ) -> Waste:
        cluster_id = cluster["CacheClusterId"]
        tags = elasticache.list_tags_for_resource(ResourceName=cluster["ARN"])["TagList"]
        return Waste(
            resource_id=cluster_id,
            resource_type=self.resource_type,
            reason=f"{cluster['Engine']} cluster served {reads:.0f} reads and {writes:.0f} writes "
            f"in the last {thresholds.lookback_days} days",
            price=_cluster_price(scope, cluster),
            evidence={
                "read_commands": reads,
                "write_commands": writes,
                "metrics": list(COMMAND_METRICS[cluster["Engine"]]),
                "window_start": (
                    scope.now - dt.timedelta(days=thresholds.lookback_days)
                ).isoformat(),
                "window_end": scope.now.isoformat(),
                "engine": cluster["Engine"],
                "node_type": cluster["CacheNodeType"],
                "nodes": cluster.get("NumCacheNodes"),
                "replication_group_id": cluster.get("ReplicationGroupId"),
                "age_days": age_days(cluster["CacheClusterCreateTime"], scope.now),
                "lookback_days": thresholds.lookback_days,
                "min_age_days": thresholds.judged_from_age_days,
                "max_commands": thresholds.max_commands,
            },
            resource_name=cluster_id,
            tags=tags_of(tags),
        )


def _idle(usage: list[float | None], thresholds: IdleCacheClusterThresholds) -> bool:
    return all(total is not None and total <= thresholds.max_commands for total in usage)


def _cluster_price(scope: RegionScope, cluster: dict[str, Any]) -> Price:
    engine, node_type = cluster["Engine"], cluster["CacheNodeType"]
    if engine not in PRICED_ENGINES:
        return Price.unknown(f"the price catalog has no {engine} node prices")
    if not cluster.get("NumCacheNodes"):
        return Price.unknown("ElastiCache did not report the cluster's node count")
    return hourly_price(
        scope,
        scope.prices.elasticache_hour(scope.region, node_type),
        what=f"ElastiCache {node_type} node hour",
        quantity=int(cluster["NumCacheNodes"]),
    )
