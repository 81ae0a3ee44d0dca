"""Running instances of a previous generation whose current-generation equivalent of the same
size costs less on demand (the families and their successors: ``instance_generations``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, Price, RegionScope, Thresholds, Waste
from valdrix.scanning.detectors.aws._common import EC2_INSTANCE_COST
from valdrix.scanning.detectors.aws._ec2_common import (
    instance_cost_parts,
    instance_waste,
    on_demand_price,
    region_instances_in,
)
from valdrix.scanning.detectors.aws.instance_generations import (
    is_previous_generation,
    same_size_successor,
)
from valdrix.scanning.registry import detectors


class PreviousGenerationInstanceThresholds(Thresholds):
    min_monthly_saving_usd: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description="Report an instance only if its current-generation equivalent saves more "
        "than nothing and at least this many USD a month at list price.",
    )


@detectors.register("aws.ec2-previous-generation")
class PreviousGenerationInstances(Detector):
    """Flags running instances of a previous-generation family (M4, C4, R4, T2, I2, D2 ...) whose
    current-generation equivalent of the same size costs less on demand. Previous generations
    are billed at their old list prices, above newer hardware that does at least as much; the
    finding's figure is the monthly saving of the equivalent, named in its evidence (part of
    what an idle instance's finding prices in full: totals count it once).

    A size the successor family does not come in (m4.10xlarge) is not judged; an equivalent the
    catalog has no price for leaves the saving unknown, with why.
    """

    provider = "aws"
    resource_type = "ec2-instance"
    prices_whole_resource = False  # the saving of the successor type
    permissions = ("ec2:DescribeInstances",)
    thresholds = PreviousGenerationInstanceThresholds
    shared_costs = (EC2_INSTANCE_COST,)

    def detect(
        self, scope: RegionScope, thresholds: PreviousGenerationInstanceThresholds
    ) -> Iterator[Waste]:
        running = region_instances_in(scope, "running")
        for instance in running:
            instance_type = instance["InstanceType"]
            equivalent = same_size_successor(instance_type)
            if not is_previous_generation(instance_type) or equivalent is None:
                continue
            price = _saving(scope, instance, equivalent)
            saving = price.monthly_usd
            if saving is not None and (saving <= 0 or saving < thresholds.min_monthly_saving_usd):
                continue
            how_much = "" if saving is None else f" for ${saving} less a month"
            yield instance_waste(
                instance,
                f"This {instance_type} instance is of a previous generation; {equivalent} is "
                f"the same size on current hardware{how_much}.",
                price,
                instance_cost_parts(instance["InstanceId"], saving),
                current_generation_type=equivalent,
                min_monthly_saving_usd=str(thresholds.min_monthly_saving_usd),
            )


def _saving(scope: RegionScope, instance: dict[str, Any], equivalent: str) -> Price:
    """The instance's on-demand price less its equivalent's, per month."""
    current = on_demand_price(scope, instance)
    if current.monthly_usd is None:
        return current
    quote = scope.prices.ec2_hour(scope.region, equivalent)
    if quote is None:
        return Price.unknown(
            f"the price catalog has no on-demand price for {equivalent}, the current-generation "
            f"equivalent"
        )
    equivalent_monthly = scope.prices.monthly(quote)
    return Price(
        current.monthly_usd - equivalent_monthly,
        "list_price",
        current.detail
        | {
            "saving": "the instance's monthly on-demand price - its equivalent's",
            "instance_monthly_usd": str(current.monthly_usd),
            "equivalent_type": equivalent,
            "equivalent_unit_price_usd": str(quote.unit_price),
            "equivalent_monthly_usd": str(equivalent_monthly),
        },
    )
