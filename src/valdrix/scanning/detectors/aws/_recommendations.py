"""What the detectors importing AWS's own recommendations (Compute Optimizer, Cost
Optimization Hub) share: the saving as a price, the resource a recommendation's ARN names, and
the cost component each kind of resource's money is known by, so that totals count a
recommendation for a resource Valdrix also prices once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import Field

from valdrix.scanning.base import CostPart, Price, Thresholds, Waste
from valdrix.scanning.detectors.aws._common import EC2_INSTANCE_COST, RDS_INSTANCE_COST
from valdrix.scanning.detectors.aws._ec2_common import VOLUME_COST

# The cost components (``Detector.shared_costs``) of the resources AWS recommends changes to:
# everything the resource bills, as Valdrix's own detectors of that resource name it.
EC2_INSTANCE = EC2_INSTANCE_COST
EBS_VOLUME = VOLUME_COST
LAMBDA_FUNCTION = "lambda-function"
AUTO_SCALING_GROUP = "auto-scaling-group"
ECS_SERVICE = "ecs-service"
RDS_INSTANCE = RDS_INSTANCE_COST
CURRENCY = "USD"


class RecommendationThresholds(Thresholds):
    min_monthly_saving_usd: float = Field(
        0,
        ge=0,
        description="Recommendations saving at most this much a month (in USD) are not "
        "imported; savings in another currency are imported whatever their amount.",
    )


def pages(call: Callable[..., dict[str, Any]], member: str, **params: Any) -> Iterator[Any]:
    """Every item of a listing paged with ``nextToken``."""
    token: str | None = None
    while True:
        page = call(**params, **({"nextToken": token} if token else {}))
        yield from page.get(member) or []
        token = page.get("nextToken")
        if not token:
            return


def resource_id_of(arn: str) -> str:
    """The id a resource's own findings give it, from its ARN: ``i-...``, ``vol-...``, a
    function's, Auto Scaling group's or database's name, an ECS service's ``cluster/name``."""
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else arn
    if resource.startswith("autoScalingGroup:"):
        return resource.rsplit("autoScalingGroupName/", 1)[-1]
    if resource.startswith(("function:", "db:")):
        return resource.split(":")[1]
    return resource.split("/", 1)[1] if "/" in resource else resource


def region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def saving_price(
    amount: Any, currency: str | None, *, source: str, estimation: str | None
) -> Price | None:
    """The recommendation's estimated monthly saving as the finding's figure (basis
    ``recommendation``); None when it saves nothing. Valdrix converts no currency: a saving in
    another currency is recorded with its currency and the figure left unknown."""
    try:
        saving = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    if not saving.is_finite() or saving <= 0:
        return None
    currency = currency or CURRENCY
    detail: dict[str, Any] = {
        "source": source,
        "estimated_monthly_savings": str(saving),
        "currency": currency,
        "savings_estimation": estimation,
    }
    if currency != CURRENCY:
        why = (
            f"{source} estimates a saving of {saving} {currency} a month; Valdrix converts no "
            "currency, so the finding has no USD figure and no total counts it"
        )
        return Price(None, "recommendation", detail | {"why": why})
    return Price(saving.quantize(Decimal("0.01")), "recommendation", detail)


def below_threshold(price: Price, thresholds: RecommendationThresholds) -> bool:
    usd = price.monthly_usd
    return usd is not None and usd <= Decimal(str(thresholds.min_monthly_saving_usd))


def imported_waste(
    *,
    resource_id: str,
    resource_type: str,
    component: str | None,
    reason: str,
    price: Price,
    evidence: dict[str, Any],
    tags: dict[str, str],
    region: str | None = None,
    resource_name: str | None = None,
) -> Waste:
    """A recommendation as a finding. Its saving is a part of its resource's cost (the
    ``component``), which a Valdrix finding about the resource may price too."""
    parts = (
        (CostPart(component, resource_id, price.monthly_usd),)
        if component and price.monthly_usd is not None
        else ()
    )
    return Waste(
        resource_id=resource_id,
        resource_type=resource_type,
        reason=reason,
        price=price,
        evidence=evidence,
        resource_name=resource_name,
        tags=tags,
        cost_parts=parts,
        region=region,
    )


def tags_of_recommendation(raw: Any) -> dict[str, str]:
    """Compute Optimizer's and the hub's ``[{"key": k, "value": v}]`` as a dict."""
    return {item["key"]: item.get("value", "") for item in raw or [] if "key" in item}
