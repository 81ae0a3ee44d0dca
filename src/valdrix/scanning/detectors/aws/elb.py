"""Load balancers with nothing behind them: ALB/NLB/GWLB (elbv2) and classic ELBs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste, tags_of
from valdrix.scanning.detectors.aws._common import (
    age_days,
    chunks,
    hourly_price,
    is_at_least_days_old,
)
from valdrix.scanning.registry import detectors

DESCRIBE_TAGS_BATCH = 20  # the most resources DescribeTags accepts per call (both APIs)
SERVING_STATES = ("active", "active_impaired")


class IdleLoadBalancerThresholds(Thresholds):
    min_age_days: int = Field(
        7,
        ge=0,
        description="Load balancers younger than this many days are not judged (they may still "
        "be getting their targets).",
    )


@dataclass(frozen=True)
class _Backends:
    """What stands behind one load balancer."""

    target_groups: int
    registered: int
    healthy: int


@detectors.register("aws.elb-idle")
class IdleLoadBalancer(Detector):
    """Flags load balancers with no registered targets, or none healthy: ALB, NLB and gateway
    load balancers with no healthy target in any target group, classic ELBs with no instance
    InService.

    A load balancer is billed for every hour it exists, whether or not it forwards a single
    request, so one with nothing to send traffic to costs its full hourly rate for nothing.
    """

    provider = "aws"
    resource_type = "load-balancer"
    permissions = (
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeInstanceHealth",
        "elasticloadbalancing:DescribeTags",
    )
    thresholds = IdleLoadBalancerThresholds

    def detect(self, scope: RegionScope, thresholds: IdleLoadBalancerThresholds) -> Iterator[Waste]:
        yield from self._idle_v2(scope, thresholds)
        yield from self._idle_classic(scope, thresholds)

    def _idle_v2(
        self, scope: RegionScope, thresholds: IdleLoadBalancerThresholds
    ) -> Iterator[Waste]:
        elbv2 = scope.client("elbv2")
        balancers = [
            lb
            for page in elbv2.get_paginator("describe_load_balancers").paginate()
            for lb in page["LoadBalancers"]
            if lb["State"]["Code"] in SERVING_STATES
            and is_at_least_days_old(lb["CreatedTime"], scope.now, thresholds.min_age_days)
        ]
        if not balancers:
            return
        backends = _v2_backends(elbv2, {lb["LoadBalancerArn"] for lb in balancers})
        idle = [lb for lb in balancers if backends[lb["LoadBalancerArn"]].healthy == 0]
        tags = _v2_tags(elbv2, [lb["LoadBalancerArn"] for lb in idle])
        for lb in idle:
            arn = lb["LoadBalancerArn"]
            found = backends[arn]
            kind = lb["Type"]
            yield Waste(
                resource_id=arn,
                resource_type=self.resource_type,
                reason=_reason(f"{kind} load balancer", found.registered, "registered targets"),
                price=hourly_price(
                    scope,
                    scope.prices.load_balancer_hour(scope.region, kind),
                    what=f"{kind} load balancer hour",
                ),
                evidence={
                    "type": kind,
                    "target_groups": found.target_groups,
                    "registered_targets": found.registered,
                    "healthy_targets": found.healthy,
                    "age_days": age_days(lb["CreatedTime"], scope.now),
                    "min_age_days": thresholds.min_age_days,
                },
                resource_name=lb["LoadBalancerName"],
                tags=tags.get(arn, {}),
            )

    def _idle_classic(
        self, scope: RegionScope, thresholds: IdleLoadBalancerThresholds
    ) -> Iterator[Waste]:
        elb = scope.client("elb")
        idle: list[tuple[dict[str, Any], int]] = []
        for page in elb.get_paginator("describe_load_balancers").paginate():
            for lb in page["LoadBalancerDescriptions"]:
                if not is_at_least_days_old(lb["CreatedTime"], scope.now, thresholds.min_age_days):
                    continue
                registered = len(lb.get("Instances", []))
                if registered and _classic_in_service(elb, lb["LoadBalancerName"]):
                    continue
                idle.append((lb, registered))
        tags = _classic_tags(elb, [lb["LoadBalancerName"] for lb, _ in idle])
        for lb, registered in idle:
            name = lb["LoadBalancerName"]
            yield Waste(
                resource_id=name,
                resource_type=self.resource_type,
                reason=_reason("classic load balancer", registered, "registered instances"),
                price=hourly_price(
                    scope,
                    scope.prices.load_balancer_hour(scope.region, "classic"),
                    what="classic load balancer hour",
                ),
                evidence={
                    "type": "classic",
                    "registered_instances": registered,
                    "in_service_instances": 0,
                    "age_days": age_days(lb["CreatedTime"], scope.now),
                    "min_age_days": thresholds.min_age_days,
                },
                resource_name=name,
                tags=tags.get(name, {}),
            )


def _reason(what: str, registered: int, noun: str) -> str:
    if registered == 0:
        return f"{what} has no {noun}"
    return f"{what} has {registered} {noun} and none is healthy"


def _v2_backends(elbv2: Any, arns: set[str]) -> dict[str, _Backends]:
    """Target groups, registered and healthy targets per load balancer ARN in ``arns``."""
    groups: dict[str, int] = dict.fromkeys(arns, 0)
    registered: dict[str, int] = dict.fromkeys(arns, 0)
    healthy: dict[str, int] = dict.fromkeys(arns, 0)
    # One listing of every target group in the region, rather than one listing per load balancer.
    for page in elbv2.get_paginator("describe_target_groups").paginate():
        for group in page["TargetGroups"]:
            attached = [arn for arn in group.get("LoadBalancerArns", []) if arn in arns]
            if not attached:
                continue
            health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            states = [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]]
            # With health checks switched off (Lambda targets), AWS reports registered targets as
            # "unavailable" although they receive traffic.
            checks_off = not group.get("HealthCheckEnabled", True)
            serving = sum(
                1 for s in states if s == "healthy" or (checks_off and s == "unavailable")
            )
            for arn in attached:
                groups[arn] += 1
                registered[arn] += len(states)
                healthy[arn] += serving
    return {arn: _Backends(groups[arn], registered[arn], healthy[arn]) for arn in arns}


def _classic_in_service(elb: Any, name: str) -> bool:
    states = elb.describe_instance_health(LoadBalancerName=name)["InstanceStates"]
    return any(state["State"] == "InService" for state in states)


def _v2_tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for batch in chunks(arns, DESCRIBE_TAGS_BATCH):
        for item in elbv2.describe_tags(ResourceArns=list(batch))["TagDescriptions"]:
            found[item["ResourceArn"]] = tags_of(item.get("Tags"))
    return found


def _classic_tags(elb: Any, names: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for batch in chunks(names, DESCRIBE_TAGS_BATCH):
        for item in elb.describe_tags(LoadBalancerNames=list(batch))["TagDescriptions"]:
            found[item["LoadBalancerName"]] = tags_of(item.get("Tags"))
    return found
