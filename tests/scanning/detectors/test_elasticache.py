"""aws.elasticache-idle under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.elasticache import (
    IdleCacheCluster,
    IdleCacheClusterThresholds,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog

from .cloudwatch_seed import put_daily_values

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)
REDIS_COMMANDS = ("GetTypeCmds", "SetTypeCmds")


def cache_cluster(
    name: str = "sessions",
    *,
    region: str = "us-east-1",
    engine: str = "redis",
    nodes: int = 1,
    **options: Any,
) -> dict[str, Any]:
    created: dict[str, Any] = boto3.client("elasticache", region_name=region).create_cache_cluster(
        CacheClusterId=name,
        CacheNodeType="cache.t3.micro",
        Engine=engine,
        NumCacheNodes=nodes,
        Tags=[{"Key": "team", "Value": "web"}],
        **options,
    )["CacheCluster"]
    return created


def commands(
    cluster: dict[str, Any],
    reads: list[float],
    writes: list[float],
    end: dt.datetime,
    metrics: tuple[str, str] = REDIS_COMMANDS,
    region: str = "us-east-1",
) -> None:
    for metric, values in zip(metrics, (reads, writes), strict=True):
        put_daily_values(
            namespace="AWS/ElastiCache",
            metric=metric,
            dimension=("CacheClusterId", cluster["CacheClusterId"]),
            values=values,
            end=end,
            region=region,
        )


def scan(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    return list(IdleCacheCluster().detect(scope, IdleCacheClusterThresholds(**thresholds)))


def node_month(region: str = "us-east-1") -> Decimal:
    catalog = aws_catalog()
    hourly = catalog.elasticache_hour(region, "cache.t3.micro")
    assert hourly is not None
    return catalog.monthly(hourly)


def test_redis_cluster_without_reads_or_writes_is_reported(make_scope: MakeScope) -> None:
    cluster = cache_cluster()
    now = cluster["CacheClusterCreateTime"] + 10 * DAY
    commands(cluster, [0.0] * 7, [0.0] * 7, end=now)

    [waste] = scan(make_scope(now=now))

    assert waste.resource_id == "sessions"
    assert waste.resource_type == "elasticache-cluster"
    assert waste.tags == {"team": "web"}
    assert waste.evidence["read_commands"] == 0
    assert waste.evidence["write_commands"] == 0
    assert waste.evidence["metrics"] == list(REDIS_COMMANDS)
    assert waste.evidence["lookback_days"] == 7
    assert waste.price.basis == "list_price"
    assert waste.price.monthly_usd == node_month() == Decimal("12.41")
    assert waste.price.detail["estimated"] is False


def test_cluster_that_serves_reads_is_not_reported(make_scope: MakeScope) -> None:
    cluster = cache_cluster()
    now = cluster["CacheClusterCreateTime"] + 10 * DAY
    commands(cluster, [0.0] * 6 + [12.0], [0.0] * 7, end=now)

    assert scan(make_scope(now=now)) == []


def test_cluster_without_datapoints_is_not_judged(make_scope: MakeScope) -> None:
    cluster = cache_cluster()

    assert scan(make_scope(now=cluster["CacheClusterCreateTime"] + 10 * DAY)) == []


@pytest.mark.parametrize(("writes", "reported"), [(100.0, True), (101.0, False)])
def test_commands_at_the_threshold_count_as_idle(
    make_scope: MakeScope, writes: float, reported: bool
) -> None:
    cluster = cache_cluster()
    now = cluster["CacheClusterCreateTime"] + 10 * DAY
    commands(cluster, [0.0] * 7, [0.0] * 6 + [writes], end=now)

    assert bool(scan(make_scope(now=now), max_commands=100)) is reported


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(seconds=1), False)]
)
def test_cluster_is_judged_only_once_as_old_as_the_lookback(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    cluster = cache_cluster()
    now = cluster["CacheClusterCreateTime"] + age
    commands(cluster, [0.0] * 6, [0.0] * 6, end=now)

    assert bool(scan(make_scope(now=now))) is reported


def test_cluster_younger_than_the_lookback_is_judged_with_min_age_days_zero(
    make_scope: MakeScope,
) -> None:
    cluster = cache_cluster()
    now = cluster["CacheClusterCreateTime"] + dt.timedelta(hours=2)
    commands(cluster, [0.0], [0.0], end=now)

    assert scan(make_scope(now=now)) == [], "by default a cluster is judged once a lookback old"
    [waste] = scan(make_scope(now=now), min_age_days=0)
    assert waste.evidence["min_age_days"] == 0


def test_idle_replica_of_a_busy_primary_is_not_reported(make_scope: MakeScope) -> None:
    primary = cache_cluster("cart-001", ReplicationGroupId="cart")
    replica = cache_cluster("cart-002", ReplicationGroupId="cart")
    now = replica["CacheClusterCreateTime"] + 10 * DAY
    commands(primary, [500.0] * 7, [80.0] * 7, end=now)
    commands(replica, [0.0] * 7, [0.0] * 7, end=now)

    assert scan(make_scope(now=now)) == []


def test_every_member_of_an_idle_replication_group_is_reported(make_scope: MakeScope) -> None:
    members = [cache_cluster(f"cart-00{n}", ReplicationGroupId="cart") for n in (1, 2)]
    now = members[-1]["CacheClusterCreateTime"] + 10 * DAY
    for member in members:
        commands(member, [0.0] * 7, [0.0] * 7, end=now)

    found = scan(make_scope(now=now))

    assert sorted(w.resource_id for w in found) == ["cart-001", "cart-002"]
    assert {w.evidence["replication_group_id"] for w in found} == {"cart"}


def test_memcached_cluster_is_judged_by_its_own_metrics_and_priced_per_node(
    make_scope: MakeScope,
) -> None:
    cluster = cache_cluster("fragments", engine="memcached", nodes=3)
    now = cluster["CacheClusterCreateTime"] + 10 * DAY
    commands(cluster, [0.0] * 7, [0.0] * 7, end=now, metrics=("CmdGet", "CmdSet"))

    [waste] = scan(make_scope(now=now))

    assert waste.evidence["nodes"] == 3
    assert waste.price.monthly_usd == node_month() * 3
    assert waste.price.detail["quantity"] == 3


def test_valkey_cluster_has_an_unknown_price(make_scope: MakeScope) -> None:
    # The catalog lists Redis OSS / Memcached node prices; Valkey nodes are listed lower.
    cluster = cache_cluster("queues", engine="valkey")
    now = cluster["CacheClusterCreateTime"] + 10 * DAY
    commands(cluster, [0.0] * 7, [0.0] * 7, end=now)

    [waste] = scan(make_scope(now=now))

    assert waste.price.basis == "unknown"
    assert waste.price.monthly_usd is None


def test_idle_cluster_outside_the_priced_regions_is_marked_estimated(
    make_scope: MakeScope,
) -> None:
    cluster = cache_cluster(region="ca-central-1")
    now = cluster["CacheClusterCreateTime"] + 10 * DAY
    commands(cluster, [0.0] * 7, [0.0] * 7, end=now, region="ca-central-1")

    [waste] = scan(make_scope(region="ca-central-1", now=now))

    assert waste.price.detail["estimated"] is True
    assert waste.price.monthly_usd == node_month()
