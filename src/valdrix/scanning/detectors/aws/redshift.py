"""Redshift waste: provisioned clusters nobody connects to."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from valdrix.scanning.base import RegionScope, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import CloudWatchIdleDetector, hourly_price
from valdrix.scanning.idle import IdleResource, LookbackThresholds
from valdrix.scanning.registry import detectors


class IdleRedshiftClusterThresholds(LookbackThresholds):
    lookback_days: int = Field(
        7,
        ge=1,
        description="Days of CloudWatch DatabaseConnections to look at; clusters younger than "
        "this (or min_age_days) are not judged.",
    )
    max_connections: int = Field(
        0,
        ge=0,
        description="A cluster whose peak DatabaseConnections over the lookback is at most this "
        "is idle.",
    )


@detectors.register("aws.redshift-idle")
class IdleRedshiftCluster(CloudWatchIdleDetector[IdleRedshiftClusterThresholds]):
    """Flags available provisioned Redshift clusters that had no database connections over the
    lookback.

    A provisioned cluster bills every node for every hour it is available, queried or not (a
    paused cluster bills only its storage and is not judged). Clusters younger than the lookback,
    and clusters CloudWatch has no DatabaseConnections datapoints for, are not judged.
    """

    provider = "aws"
    resource_type = "redshift-cluster"
    permissions = ("redshift:DescribeClusters", "cloudwatch:GetMetricData")
    thresholds = IdleRedshiftClusterThresholds
    created_field = "ClusterCreateTime"
    # Connections are held, not counted: the busiest period's Maximum says how many there were.
    window_figure = "peak"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        paginator = scope.client("redshift").get_paginator("describe_clusters")
        return [
            cluster
            for page in paginator.paginate()
            for cluster in page.get("Clusters", [])
            if cluster["ClusterStatus"] == "available"
        ]

    def metric_queries(self, position: int, cluster: dict[str, Any]) -> list[MetricQuery]:
        return [
            MetricQuery(
                id=f"redshift{position}",
                namespace="AWS/Redshift",
                metric="DatabaseConnections",
                dimensions=(("ClusterIdentifier", cluster["ClusterIdentifier"]),),
                stat="Maximum",
            )
        ]

    def idle_limits(self, thresholds: IdleRedshiftClusterThresholds) -> tuple[float, ...]:
        return (thresholds.max_connections,)

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleRedshiftClusterThresholds]
    ) -> Waste:
        cluster, thresholds = idle.resource, idle.thresholds
        [peak], [datapoints] = idle.figures, idle.datapoints
        identifier, node_type = cluster["ClusterIdentifier"], cluster["NodeType"]
        nodes = int(cluster.get("NumberOfNodes") or 1)
        return Waste(
            resource_id=identifier,
            resource_type=self.resource_type,
            reason=f"{nodes}-node {node_type} cluster had at most {peak:.0f} database "
            f"connections in the last {thresholds.lookback_days} days",
            price=hourly_price(
                scope,
                scope.prices.redshift_node_hour(scope.region, node_type),
                what=f"Redshift {node_type} node",
                quantity=nodes,
            ),
            evidence={
                "peak_connections": peak,
                "datapoints": datapoints,
                **idle.window_evidence(),
                "node_type": node_type,
                "nodes": nodes,
                **idle.age_evidence(),
                "max_connections": thresholds.max_connections,
            },
            resource_name=identifier,
            tags=tags_of(cluster.get("Tags")),
        )
