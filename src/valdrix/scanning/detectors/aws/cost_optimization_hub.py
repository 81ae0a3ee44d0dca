"""AWS Cost Optimization Hub's recommendations, imported as findings where the account has
enrolled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, DetectorSkipped, RegionScope, Waste
from valdrix.scanning.detectors.aws._recommendations import (
    AUTO_SCALING_GROUP,
    EBS_VOLUME,
    EC2_INSTANCE,
    ECS_SERVICE,
    LAMBDA_FUNCTION,
    RDS_INSTANCE,
    RecommendationThresholds,
    below_threshold,
    imported_waste,
    pages,
    region_of,
    resource_id_of,
    saving_price,
    tags_of_recommendation,
)
from valdrix.scanning.registry import detectors

SOURCE = "AWS Cost Optimization Hub"
# The hub's resource types Valdrix knows, as findings name them (each also the cost component
# a Valdrix finding about such a resource prices). Others keep the hub's name and share nothing.
RESOURCE_TYPES = {
    "Ec2Instance": EC2_INSTANCE,
    "EbsVolume": EBS_VOLUME,
    "LambdaFunction": LAMBDA_FUNCTION,
    "Ec2AutoScalingGroup": AUTO_SCALING_GROUP,
    "EcsService": ECS_SERVICE,
    "RdsDbInstance": RDS_INSTANCE,
}
# Buying a commitment saves money but is no resource costing money for nothing.
PURCHASES = ("PurchaseSavingsPlans", "PurchaseReservedInstances")


class CostOptimizationHubThresholds(RecommendationThresholds):
    include_commitment_purchases: bool = Field(
        False,
        description="Also import the hub's Savings Plans and Reserved Instances purchase "
        "recommendations (savings on resources that are not waste).",
    )


@detectors.register("aws.cost-optimization-hub")
class CostOptimizationHubRecommendations(Detector):
    """Imports AWS Cost Optimization Hub's recommendations (rightsize, stop, delete, upgrade,
    migrate to Graviton, scale in) for the account's resources in every scanned region, each
    priced at the monthly saving the hub estimates, in the currency it reports.

    The hub gathers what Compute Optimizer and Cost Explorer recommend across the account,
    net of discounts when the account prefers, for resources that bill more than they need to.
    It is account-wide and answers from us-east-1 only, so it runs once per scan. Accounts that
    have not enrolled get no findings, and the unit says so (skipped); a recommendation for a
    resource one of Valdrix's own findings prices is shown with that finding, its money counted
    once.
    """

    provider = "aws"
    resource_type = "cost-optimization-hub-recommendation"
    permissions = (
        "cost-optimization-hub:ListEnrollmentStatuses",
        "cost-optimization-hub:GetPreferences",
        "cost-optimization-hub:ListRecommendations",
    )
    thresholds = CostOptimizationHubThresholds
    shared_costs = (
        AUTO_SCALING_GROUP,
        EBS_VOLUME,
        EC2_INSTANCE,
        ECS_SERVICE,
        LAMBDA_FUNCTION,
        RDS_INSTANCE,
    )
    connection_wide = True
    imports_from = SOURCE

    def detect(
        self, scope: RegionScope, thresholds: CostOptimizationHubThresholds
    ) -> Iterator[Waste]:
        hub = scope.client("cost-optimization-hub")
        statuses = {
            item.get("accountId"): item.get("status")
            for item in pages(hub.list_enrollment_statuses, "items", accountId=scope.account_id)
        }
        status = statuses.get(scope.account_id, "Inactive")
        if status != "Active":
            raise DetectorSkipped(
                f"{SOURCE} is not turned on for account {scope.account_id} (enrollment status "
                f"{status}); enroll to import its recommendations"
            )
        mode = hub.get_preferences().get("savingsEstimationMode")
        estimation = "after discounts" if mode == "AfterDiscounts" else "before discounts"
        for item in pages(hub.list_recommendations, "items"):
            # A management account's hub lists its members' too: they are other connections'.
            if item.get("accountId", scope.account_id) != scope.account_id:
                continue
            if item.get("actionType") in PURCHASES and not thresholds.include_commitment_purchases:
                continue
            waste = self._waste(scope, item, estimation, thresholds)
            if waste is not None:
                yield waste

    def _waste(
        self,
        scope: RegionScope,
        item: dict[str, Any],
        estimation: str,
        thresholds: CostOptimizationHubThresholds,
    ) -> Waste | None:
        price = saving_price(
            item.get("estimatedMonthlySavings"),
            item.get("currencyCode"),
            source=SOURCE,
            estimation=estimation,
        )
        if price is None or below_threshold(price, thresholds):
            return None
        arn = item.get("resourceArn") or ""
        current_type = item.get("currentResourceType") or "resource"
        resource_type = RESOURCE_TYPES.get(current_type)
        action = item.get("actionType") or "Rightsize"
        current = item.get("currentResourceSummary")
        recommended = item.get("recommendedResourceSummary")
        figure = (
            f"{price.monthly_usd} USD"
            if price.monthly_usd is not None
            else f"{price.detail['estimated_monthly_savings']} {price.detail['currency']}"
        )
        change = f"{current} -> {recommended}" if current and recommended else action
        return imported_waste(
            resource_id=resource_id_of(arn) if arn else str(item.get("resourceId")),
            resource_type=resource_type or current_type,
            component=resource_type,
            reason=f"{SOURCE} recommends {action} ({change}), saving {figure} a month",
            price=price,
            evidence={
                "source": SOURCE,
                "action": action,
                "recommendation_id": item.get("recommendationId"),
                "resource_arn": arn or None,
                "current": {"resource_type": current_type, "summary": current},
                "recommended": {
                    "resource_type": item.get("recommendedResourceType"),
                    "summary": recommended,
                },
                "estimated_monthly_cost": item.get("estimatedMonthlyCost"),
                "savings_percentage": item.get("estimatedSavingsPercentage"),
                "implementation_effort": item.get("implementationEffort"),
                "restart_needed": item.get("restartNeeded"),
                "rollback_possible": item.get("rollbackPossible"),
                "recommended_by": item.get("source"),
                "lookback_days": item.get("recommendationLookbackPeriodInDays"),
            },
            tags=tags_of_recommendation(item.get("tags")),
            region=item.get("region") or region_of(arn) or scope.region,
        )
