"""EKS waste: clusters whose control plane runs with nothing to run workloads on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste
from valdrix.scanning.detectors.aws._common import age_days, hourly_price, is_at_least_days_old
from valdrix.scanning.detectors.aws._ec2_common import region_instances_in
from valdrix.scanning.registry import detectors

# EC2 instances that joined a cluster as nodes (self-managed or Karpenter) carry this tag key.
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"


class IdleEksClusterThresholds(Thresholds):
    min_age_days: int = Field(
        default=7,
        ge=0,
        description="Report a cluster only once it is at least this many days old (a new "
        "cluster often gets its nodes days after its control plane).",
    )


@detectors.register("aws.eks-cluster-idle")
class IdleEksCluster(Detector):
    """Flags active EKS clusters with no managed node group, no Fargate profile and no EC2
    instance running as a node (self-managed or Karpenter nodes carry the
    ``kubernetes.io/cluster/<name>`` tag).

    EKS bills each cluster's control plane by the hour whether or not anything can run on it, so
    a cluster without compute pays for nothing. Clusters in EKS Auto Mode, whose nodes come and
    go with the workloads, are not judged.
    """

    provider = "aws"
    resource_type = "eks-cluster"
    permissions = (
        "eks:ListClusters",
        "eks:DescribeCluster",
        "eks:ListNodegroups",
        "eks:ListFargateProfiles",
        "ec2:DescribeInstances",
    )
    thresholds = IdleEksClusterThresholds

    def detect(self, scope: RegionScope, thresholds: IdleEksClusterThresholds) -> Iterator[Waste]:
        eks = scope.client("eks")
        names = [
            name
            for page in eks.get_paginator("list_clusters").paginate()
            for name in page.get("clusters", [])
        ]
        candidates = []
        for name in names:
            cluster = eks.describe_cluster(name=name)["cluster"]
            if (
                cluster["status"] == "ACTIVE"
                and not cluster.get("computeConfig", {}).get("enabled")
                and is_at_least_days_old(cluster["createdAt"], scope.now, thresholds.min_age_days)
                and not _listed(eks, "list_nodegroups", "nodegroups", name)
                and not _listed(eks, "list_fargate_profiles", "fargateProfileNames", name)
            ):
                candidates.append(cluster)
        if not candidates:
            return  # spare the instance listing
        with_nodes = _clusters_with_nodes(scope, [cluster["name"] for cluster in candidates])
        for cluster in candidates:
            if cluster["name"] in with_nodes:
                continue
            yield self._waste(scope, cluster, thresholds)

    def _waste(
        self, scope: RegionScope, cluster: dict[str, Any], thresholds: IdleEksClusterThresholds
    ) -> Waste:
        age = age_days(cluster["createdAt"], scope.now)
        price = hourly_price(
            scope, scope.prices.eks_cluster_hour(scope.region), what="EKS cluster hour"
        )
        if price.basis == "list_price":
            price = dataclasses.replace(
                price,
                detail=price.detail
                | {
                    "note": "standard support; a Kubernetes version in extended support bills "
                    "six times as much"
                },
            )
        return Waste(
            resource_id=cluster["name"],
            resource_type=self.resource_type,
            reason=f"cluster has had no node group, Fargate profile or node instance for "
            f"{age:.0f} days",
            price=price,
            evidence={
                "node_groups": 0,
                "fargate_profiles": 0,
                "node_instances": 0,
                "kubernetes_version": cluster.get("version"),
                "created_at": cluster["createdAt"].isoformat(),
                "age_days": age,
                "min_age_days": thresholds.min_age_days,
            },
            resource_name=cluster["name"],
            tags=dict(cluster.get("tags") or {}),
        )


def _listed(eks: Any, operation: str, field: str, cluster: str) -> bool:
    """Whether the cluster has any node group (or Fargate profile): one item tells."""
    page = getattr(eks, operation)(clusterName=cluster, maxResults=1)
    return bool(page.get(field))


def _clusters_with_nodes(scope: RegionScope, names: list[str]) -> set[str]:
    """Which of the clusters have a pending or running EC2 instance tagged as their node."""
    tagged = {CLUSTER_TAG_PREFIX + name for name in names}
    return {
        tag["Key"].removeprefix(CLUSTER_TAG_PREFIX)
        for instance in region_instances_in(scope, "pending", "running")
        for tag in instance.get("Tags", [])
        if tag["Key"] in tagged
    }
