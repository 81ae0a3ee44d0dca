"""aws.redshift-idle under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.redshift import (
    IdleRedshiftCluster,
    IdleRedshiftClusterThresholds,
)

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)


def cluster(name: str = "warehouse", *, node_type: str = "ra3.xlplus", nodes: int = 2) -> Any:
    created = boto3.client("redshift", region_name="us-east-1").create_cluster(
        ClusterIdentifier=name,
        ClusterType="multi-node" if nodes > 1 else "single-node",
        NodeType=node_type,
        NumberOfNodes=nodes,
        MasterUsername="admin",
        MasterUserPassword="Not-a-real-password1",
        Tags=[{"Key": "team", "Value": "analytics"}],
    )["Cluster"]
    return created


def connections(name: str, peak: float, *, end: dt.datetime) -> None:
    """A week of connections, ``peak`` on the last day."""
    put_daily_values(
        namespace="AWS/Redshift",
        metric="DatabaseConnections",
        dimension=("ClusterIdentifier", name),
        values=[0.0] * 6 + [peak],
        end=end,
    )


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IdleRedshiftClusterThresholds(**thresholds)
    return {waste.resource_id: waste for waste in IdleRedshiftCluster().detect(scope, settings)}


def test_cluster_nobody_connects_to_is_reported_at_its_node_hours(make_scope: MakeScope) -> None:
    created = cluster()
    now = created["ClusterCreateTime"] + 10 * DAY
    connections("warehouse", 0, end=now)

    waste = scan(make_scope(now=now))["warehouse"]

    assert waste.resource_type == "redshift-cluster"
    assert waste.tags == {"team": "analytics"}
    assert waste.evidence["peak_connections"] == 0
    assert waste.evidence["nodes"] == 2
    assert waste.evidence["lookback_days"] == 7
    # Two ra3.xlplus nodes at 1.086 $/h for 730 hours.
    assert waste.price.monthly_usd == Decimal("792.78") * 2
    assert waste.price.basis == "list_price"
    assert waste.price.detail["estimated"] is False


def test_cluster_with_connections_is_not_reported(make_scope: MakeScope) -> None:
    created = cluster()
    now = created["ClusterCreateTime"] + 10 * DAY
    connections("warehouse", 3, end=now)

    assert scan(make_scope(now=now)) == {}


def test_paused_cluster_is_not_judged(make_scope: MakeScope) -> None:
    created = cluster()
    boto3.client("redshift", region_name="us-east-1").pause_cluster(ClusterIdentifier="warehouse")
    now = created["ClusterCreateTime"] + 10 * DAY
    connections("warehouse", 0, end=now)

    assert scan(make_scope(now=now)) == {}


def test_cluster_younger_than_the_lookback_is_not_judged(make_scope: MakeScope) -> None:
    created = cluster()
    now = created["ClusterCreateTime"] + 5 * DAY
    connections("warehouse", 0, end=now)

    assert scan(make_scope(now=now)) == {}


def test_node_type_missing_from_the_catalog_is_priced_unknown(make_scope: MakeScope) -> None:
    created = cluster(node_type="ds2.xlarge", nodes=1)
    now = created["ClusterCreateTime"] + 10 * DAY
    connections("warehouse", 0, end=now)

    waste = scan(make_scope(now=now))["warehouse"]

    assert waste.price.basis == "unknown"
    assert "ds2.xlarge" in waste.price.detail["why"]


@pytest.mark.parametrize(("peak", "reported"), [(2.0, True), (3.0, False)])
def test_peak_connections_at_the_threshold_count_as_idle(
    make_scope: MakeScope, peak: float, reported: bool
) -> None:
    created = cluster()
    now = created["ClusterCreateTime"] + 10 * DAY
    connections("warehouse", peak, end=now)

    assert ("warehouse" in scan(make_scope(now=now), max_connections=2)) is reported
