"""ElastiCache clusters nobody reads from or writes to."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from valdrix.scanning.base import Price, RegionScope, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import CloudWatchIdleDetector, hourly_price
from valdrix.scanning.idle import IdleResource, LookbackThresholds
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
class IdleCacheCluster(CloudWatchIdleDetector[IdleCacheClusterThresholds]):
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
    created_field = "CacheClusterCreateTime"
    window_figure = "total"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        paginator = scope.client("elasticache").get_paginator("describe_cache_clusters")
        return [
            cluster
            for page in paginator.paginate()
            for cluster in page["CacheClusters"]
            if cluster["CacheClusterStatus"] == "available" and cluster["Engine"] in COMMAND_METRICS
        ]

    def serving_group(self, cluster: dict[str, Any]) -> str:
        return str(cluster.get("ReplicationGroupId") or cluster["CacheClusterId"])

    def metric_queries(self, position: int, cluster: dict[str, Any]) -> list[MetricQuery]:
        return [
            MetricQuery(
                id=f"c{position}m{index}",
                namespace="AWS/ElastiCache",
                metric=metric,
                dimensions=(("CacheClusterId", cluster["CacheClusterId"]),),
                stat="Sum",
            )
            for index, metric in enumerate(COMMAND_METRICS[cluster["Engine"]])
        ]

    def idle_limits(self, thresholds: IdleCacheClusterThresholds) -> tuple[float, ...]:
        return (thresholds.max_commands, thresholds.max_commands)

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleCacheClusterThresholds]
    ) -> Waste:
        cluster, thresholds = idle.resource, idle.thresholds
        # An idle cache's zero totals are recorded as 0, as its earlier findings have them.
        reads, writes = (total or 0 for total in idle.figures)
        cluster_id = cluster["CacheClusterId"]
        elasticache = scope.client("elasticache")
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
                **idle.window_evidence(),
                "engine": cluster["Engine"],
                "node_type": cluster["CacheNodeType"],
                "nodes": cluster.get("NumCacheNodes"),
                "replication_group_id": cluster.get("ReplicationGroupId"),
                **idle.age_evidence(),
                "max_commands": thresholds.max_commands,
            },
            resource_name=cluster_id,
            tags=tags_of(tags),
        )


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
