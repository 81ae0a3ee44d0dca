"""AWS Compute Optimizer's rightsizing recommendations, imported as findings where the account
has opted in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from valdrix.scanning.base import Detector, DetectorSkipped, RegionScope, Waste
from valdrix.scanning.detectors.aws._recommendations import (
    AUTO_SCALING_GROUP,
    EBS_VOLUME,
    EC2_INSTANCE,
    ECS_SERVICE,
    LAMBDA_FUNCTION,
    RecommendationThresholds,
    below_threshold,
    imported_waste,
    pages,
    resource_id_of,
    saving_price,
    tags_of_recommendation,
)
from valdrix.scanning.registry import detectors

SOURCE = "AWS Compute Optimizer"
Describe = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Listing:
    """One kind of resource Compute Optimizer recommends for, and how its answer reads."""

    operation: str
    member: str
    arn: str
    options: str
    resource_type: str
    # The ``finding`` values that mean it costs more than it needs to.
    wasteful: tuple[str, ...]
    current: Describe
    recommended: Describe


LISTINGS = (
    Listing(
        "get_ec2_instance_recommendations",
        "instanceRecommendations",
        "instanceArn",
        "recommendationOptions",
        EC2_INSTANCE,
        ("Overprovisioned",),
        lambda r: {"instance_type": r.get("currentInstanceType")},
        lambda o: {"instance_type": o.get("instanceType")},
    ),
    Listing(
        "get_ebs_volume_recommendations",
        "volumeRecommendations",
        "volumeArn",
        "volumeRecommendationOptions",
        EBS_VOLUME,
        ("NotOptimized",),
        lambda r: dict(r.get("currentConfiguration") or {}),
        lambda o: dict(o.get("configuration") or {}),
    ),
    Listing(
        "get_lambda_function_recommendations",
        "lambdaFunctionRecommendations",
        "functionArn",
        "memorySizeRecommendationOptions",
        LAMBDA_FUNCTION,
        ("NotOptimized",),
        lambda r: {"memory_size_mb": r.get("currentMemorySize")},
        lambda o: {"memory_size_mb": o.get("memorySize")},
    ),
    Listing(
        "get_auto_scaling_group_recommendations",
        "autoScalingGroupRecommendations",
        "autoScalingGroupArn",
        "recommendationOptions",
        AUTO_SCALING_GROUP,
        ("NotOptimized",),
        lambda r: dict(r.get("currentConfiguration") or {}),
        lambda o: dict(o.get("configuration") or {}),
    ),
    Listing(
        "get_ecs_service_recommendations",
        "ecsServiceRecommendations",
        "serviceArn",
        "serviceRecommendationOptions",
        ECS_SERVICE,
        ("Overprovisioned",),
        lambda r: {
            key: (r.get("currentServiceConfiguration") or {}).get(key) for key in ("cpu", "memory")
        },
        lambda o: {"cpu": o.get("cpu"), "memory": o.get("memory")},
    ),
)


@detectors.register("aws.compute-optimizer")
class ComputeOptimizerRecommendations(Detector):
    """Imports AWS Compute Optimizer's recommendations to shrink over-provisioned EC2
    instances, EBS volumes, Lambda functions, Auto Scaling groups and ECS services on Fargate,
    each priced at the monthly saving Compute Optimizer estimates for its best option.

    Compute Optimizer sees utilisation Valdrix does not read (memory with its agent, a
    function's duration, a service's tasks), so it finds resources that are used but larger than
    they need to be. Accounts that have not opted in get no findings, and the unit says so
    (skipped); a recommendation for a resource one of Valdrix's own findings prices is shown
    with that finding, its money counted once.
    """

    provider = "aws"
    resource_type = "compute-optimizer-recommendation"
    permissions = (
        "compute-optimizer:GetEnrollmentStatus",
        "compute-optimizer:GetEC2InstanceRecommendations",
        "compute-optimizer:GetEBSVolumeRecommendations",
        "compute-optimizer:GetLambdaFunctionRecommendations",
        "compute-optimizer:GetAutoScalingGroupRecommendations",
        "compute-optimizer:GetECSServiceRecommendations",
    )
    thresholds = RecommendationThresholds
    shared_costs = (AUTO_SCALING_GROUP, EBS_VOLUME, EC2_INSTANCE, ECS_SERVICE, LAMBDA_FUNCTION)
    imports_from = SOURCE

    def detect(self, scope: RegionScope, thresholds: RecommendationThresholds) -> Iterator[Waste]:
        optimizer = scope.client("compute-optimizer")
        status = optimizer.get_enrollment_status().get("status")
        if status != "Active":
            raise DetectorSkipped(
                f"{SOURCE} is not turned on for account {scope.account_id} (enrollment status "
                f"{status}); opt in to import its recommendations"
            )
        for listing in LISTINGS:
            call = getattr(optimizer, listing.operation)
            for recommendation in pages(call, listing.member):
                waste = self._waste(listing, recommendation, thresholds)
                if waste is not None:
                    yield waste

    def _waste(
        self,
        listing: Listing,
        recommendation: dict[str, Any],
        thresholds: RecommendationThresholds,
    ) -> Waste | None:
        finding = recommendation.get("finding")
        options = sorted(recommendation.get(listing.options) or [], key=_rank)
        if finding not in listing.wasteful or not options:
            return None
        best = options[0]
        # After discounts (Savings Plans, Reserved Instances) when the account asked for it.
        discounted = best.get("savingsOpportunityAfterDiscounts")
        opportunity = discounted or best.get("savingsOpportunity") or {}
        savings = opportunity.get("estimatedMonthlySavings") or {}
        price = saving_price(
            savings.get("value"),
            savings.get("currency"),
            source=SOURCE,
            estimation="after discounts" if discounted else "before discounts",
        )
        if price is None or below_threshold(price, thresholds):
            return None
        arn = recommendation[listing.arn]
        current, recommended = listing.current(recommendation), listing.recommended(best)
        risk = best.get("performanceRisk")
        figure = (
            f"{price.monthly_usd} USD"
            if price.monthly_usd is not None
            else f"{price.detail['estimated_monthly_savings']} {price.detail['currency']}"
        )
        return imported_waste(
            resource_id=resource_id_of(arn),
            resource_type=listing.resource_type,
            component=listing.resource_type,
            reason=f"{SOURCE} finds this {listing.resource_type} {finding.lower()}: "
            f"{_configuration(recommended)} instead of {_configuration(current)} would save "
            f"{figure} a month",
            price=price,
            evidence={
                "source": SOURCE,
                "action": "Rightsize",
                "finding": finding,
                "finding_reasons": recommendation.get("findingReasonCodes")
                or recommendation.get("findingReasons")
                or [],
                "resource_arn": arn,
                "current": current,
                "recommended": recommended,
                "performance_risk": risk,
                "savings_percentage": opportunity.get("savingsOpportunityPercentage"),
                "lookback_days": recommendation.get("lookBackPeriodInDays"),
            },
            tags=tags_of_recommendation(recommendation.get("tags")),
            resource_name=recommendation.get("instanceName")
            or recommendation.get("autoScalingGroupName"),
        )


def _rank(option: dict[str, Any]) -> int:
    return int(option.get("rank") or 1)


def _configuration(described: dict[str, Any]) -> str:
    shown = [f"{key} {value}" for key, value in described.items() if value is not None]
    return ", ".join(shown) or "its configuration"
