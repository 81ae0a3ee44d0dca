"""Reserved Instances and Savings Plans: commitments about to expire (what their usage will
cost more on demand) and commitments paid for but under-used (the unused part).

Reservations are regional (EC2, RDS); Savings Plans and Cost Explorer's utilization reports
belong to the whole account, so those detectors are connection-wide: one unit per scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Detector, Price, RegionScope, Thresholds, Waste, tags_of
from valdrix.scanning.detectors.aws._common import age_days
from valdrix.scanning.pricing.catalog import Quote
from valdrix.scanning.registry import detectors

CENT = Decimal("0.01")
LINUX = "Linux/UNIX"
EC2_SERVICE = "Amazon Elastic Compute Cloud - Compute"
RDS_SERVICE = "Amazon Relational Database Service"


class ExpiringThresholds(Thresholds):
    days: int = Field(
        default=30,
        ge=0,
        description="Report an active commitment that ends within this many days.",
    )


def _days_left(end: dt.datetime, now: dt.datetime) -> float:
    return round(-age_days(end, now), 1)


@detectors.register("aws.reservation-expiring")
class ExpiringReservations(Detector):
    """Flags active EC2 Reserved Instances and RDS reserved DB instances that end within the
    threshold. Once a reservation ends, the instances it covered bill at the on-demand rate;
    the figure is that difference per month (on-demand list price less the reservation's
    effective hourly rate, upfront spread over its term, for every reserved instance running
    all month), so renewing or replacing it in time keeps that money."""

    provider = "aws"
    resource_type = "reserved-instance"
    prices_whole_resource = False  # what lapsing adds on demand, not the fee
    permissions = ("ec2:DescribeReservedInstances", "rds:DescribeReservedDBInstances")
    thresholds = ExpiringThresholds

    def detect(self, scope: RegionScope, thresholds: ExpiringThresholds) -> Iterator[Waste]:
        horizon = scope.now + dt.timedelta(days=thresholds.days)
        active = [{"Name": "state", "Values": ["active"]}]
        reserved = scope.client("ec2").describe_reserved_instances(Filters=active)
        for ri in reserved.get("ReservedInstances", []):
            if ri["End"] > horizon:
                continue
            quote = None
            if ri.get("ProductDescription") == LINUX:
                quote = scope.prices.ec2_hour(scope.region, ri["InstanceType"])
            yield self._waste(
                scope,
                thresholds,
                resource_id=ri["ReservedInstancesId"],
                what=f"{ri['InstanceCount']} x {ri['InstanceType']} "
                f"({ri.get('ProductDescription')})",
                service="EC2",
                end=ri["End"],
                count=int(ri["InstanceCount"]),
                hourly=_hourly(ri.get("RecurringCharges", []), "Amount", "Frequency"),
                upfront=Decimal(str(ri.get("FixedPrice") or 0)),
                term_seconds=int(ri["Duration"]),
                on_demand=quote,
                tags=tags_of(ri.get("Tags")),
            )
        pages = scope.client("rds").get_paginator("describe_reserved_db_instances").paginate()
        for page in pages:
            for ri in page.get("ReservedDBInstances", []):
                end = ri["StartTime"] + dt.timedelta(seconds=int(ri["Duration"]))
                if ri.get("State") != "active" or end > horizon:
                    continue
                # The catalog prices single-AZ instances by engine (the product description).
                quote = None
                if not ri.get("MultiAZ"):
                    quote = scope.prices.rds_hour(
                        scope.region, ri.get("ProductDescription", ""), ri["DBInstanceClass"]
                    )
                yield self._waste(
                    scope,
                    thresholds,
                    resource_id=ri["ReservedDBInstanceId"],
                    what=f"{ri['DBInstanceCount']} x {ri['DBInstanceClass']} "
                    f"({ri.get('ProductDescription')})",
                    service="RDS",
                    end=end,
                    count=int(ri["DBInstanceCount"]),
                    hourly=_hourly(
                        ri.get("RecurringCharges", []),
                        "RecurringChargeAmount",
                        "RecurringChargeFrequency",
                    ),
                    upfront=Decimal(str(ri.get("FixedPrice") or 0)),
                    term_seconds=int(ri["Duration"]),
                    on_demand=quote,
                    tags={},
                )

    def _waste(
        self,
        scope: RegionScope,
        thresholds: ExpiringThresholds,
        *,
        resource_id: str,
        what: str,
        service: str,
        end: dt.datetime,
        count: int,
        hourly: Decimal,
        upfront: Decimal,
        term_seconds: int,
        on_demand: Quote | None,
        tags: dict[str, str],
    ) -> Waste:
        effective = hourly + upfront / (Decimal(term_seconds) / 3600)
        days_left = _days_left(end, scope.now)
        if on_demand is None:
            price = Price.unknown(f"the price catalog has no on-demand price for {what}")
        else:
            hours = scope.prices.hours_per_month
            detail: dict[str, Any] = {
                "priced": "what the reserved instances cost more on demand once it ends",
                "on_demand_unit_price_usd": str(on_demand.unit_price),
                "effective_hourly_usd": str(effective.quantize(Decimal("0.000001"))),
                "quantity": count,
                "hours_per_month": str(hours),
                "estimated": on_demand.estimated,
                "catalog_as_of": on_demand.as_of.isoformat(),
                "price_source": on_demand.source,
                "assumes": "every reserved instance runs all month",
            }
            if on_demand.estimated_because:
                detail["estimated_because"] = on_demand.estimated_because
            price = Price(
                ((on_demand.unit_price - effective) * count * hours).quantize(CENT),
                "list_price",
                detail,
            )
        return Waste(
            resource_id=resource_id,
            resource_type=self.resource_type,
            reason=f"This {service} reservation of {what} ends in {days_left:g} days; its "
            f"instances then bill on demand.",
            price=price,
            evidence={
                "service": service,
                "reserved": what,
                "instance_count": count,
                "ends_at": end.isoformat(),
                "days_left": days_left,
                "days_threshold": thresholds.days,
                "effective_hourly_usd": str(effective.quantize(Decimal("0.000001"))),
            },
            tags=tags,
        )


def _hourly(charges: list[dict[str, Any]], amount: str, frequency: str) -> Decimal:
    return sum(
        (Decimal(str(c[amount])) for c in charges if c.get(frequency) == "Hourly"), Decimal(0)
    )


class ExpiringPlanThresholds(ExpiringThresholds):
    lookback_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Days of Cost Explorer savings from which a plan's monthly savings are "
        "worked out.",
    )


@detectors.register("aws.savings-plan-expiring")
class ExpiringSavingsPlans(Detector):
    """Flags active Savings Plans that end within the threshold. Once a plan ends, the usage
    it covered bills on demand; the figure is the plan's net savings per month over the
    lookback, from Cost Explorer (what its usage cost on demand less its commitment), so
    renewing it in time keeps that money."""

    provider = "aws"
    resource_type = "savings-plan"
    prices_whole_resource = False  # what lapsing adds on demand, not the fee
    permissions = ("savingsplans:DescribeSavingsPlans", "ce:GetSavingsPlansUtilizationDetails")
    thresholds = ExpiringPlanThresholds
    connection_wide = True

    def detect(self, scope: RegionScope, thresholds: ExpiringPlanThresholds) -> Iterator[Waste]:
        horizon = scope.now + dt.timedelta(days=thresholds.days)
        expiring = [
            plan
            for plan in _active_savings_plans(scope.client("savingsplans"))
            if _parse_time(plan["end"]) <= horizon
        ]
        if not expiring:
            return  # spare the Cost Explorer request ($0.01 each)
        period = _period(scope.now, thresholds.lookback_days)
        arns = [plan["savingsPlanArn"] for plan in expiring]
        details = {
            detail["SavingsPlanArn"]: detail
            for detail in _plan_utilization(scope.client("ce"), period, arns)
        }
        for plan in expiring:
            end = _parse_time(plan["end"])
            detail = details.get(plan["savingsPlanArn"])
            if detail is None:
                price = Price.unknown(
                    f"Cost Explorer reported no savings for this plan over the last "
                    f"{thresholds.lookback_days} days"
                )
            else:
                hours = _hours_in(period, detail.get("Attributes", {}))
                net = Decimal(detail["Savings"]["NetSavings"])
                price = _per_month(
                    scope, net, hours, "the plan's net savings (on-demand equivalent - commitment)"
                )
            days_left = _days_left(end, scope.now)
            yield Waste(
                resource_id=plan["savingsPlanId"],
                resource_type=self.resource_type,
                reason=f"This {plan['savingsPlanType']} Savings Plan of ${plan['commitment']}/h "
                f"ends in {days_left:g} days; the usage it covers then bills on demand.",
                price=price,
                evidence={
                    "savings_plan_arn": plan["savingsPlanArn"],
                    "savings_plan_type": plan["savingsPlanType"],
                    "hourly_commitment_usd": plan["commitment"],
                    "ends_at": end.isoformat(),
                    "days_left": days_left,
                    "days_threshold": thresholds.days,
                },
                tags=dict(plan.get("tags") or {}),
            )


class UnderusedThresholds(Thresholds):
    min_utilization_percent: float = Field(
        default=80.0,
        ge=0,
        le=100,
        description="Report a commitment whose utilization over the lookback is below this "
        "percentage.",
    )
    lookback_days: int = Field(
        default=30, ge=1, le=365, description="Days of Cost Explorer utilization to judge."
    )


@detectors.register("aws.commitment-underused")
class UnderusedCommitments(Detector):
    """Flags Reserved Instances (EC2, RDS) and Savings Plans whose utilization over the lookback,
    from Cost Explorer, is below the threshold. A commitment is paid for every hour whether
    or not usage fills it; the figure is the unused part per month (a reservation's amortized
    fee times its unused hours, a plan's unused commitment)."""

    provider = "aws"
    resource_type = "commitment"
    prices_whole_resource = False  # the commitment's unused share
    permissions = ("ce:GetReservationUtilization", "ce:GetSavingsPlansUtilizationDetails")
    thresholds = UnderusedThresholds
    connection_wide = True

    def detect(self, scope: RegionScope, thresholds: UnderusedThresholds) -> Iterator[Waste]:
        ce = scope.client("ce")
        period = _period(scope.now, thresholds.lookback_days)
        limit = Decimal(str(thresholds.min_utilization_percent))
        for service in (EC2_SERVICE, RDS_SERVICE):
            for group in _reservation_groups(ce, period, service):
                used = group["Utilization"]
                utilization = Decimal(used["UtilizationPercentage"])
                purchased = Decimal(used["PurchasedHours"])
                if utilization >= limit or not purchased:
                    continue
                attributes = group.get("Attributes", {})
                unused = (
                    Decimal(used["TotalAmortizedFee"]) * Decimal(used["UnusedHours"]) / purchased
                )
                count = Decimal(attributes.get("numberOfInstances") or 1)
                price = _per_month(
                    scope,
                    unused,
                    float(purchased / count),
                    "amortized fee x unused hours / purchased hours",
                )
                yield Waste(
                    resource_id=attributes.get("leaseId") or group["Value"],
                    resource_type="reserved-instance",
                    reason=f"This reservation of {attributes.get('numberOfInstances', '?')} x "
                    f"{attributes.get('instanceType', '?')} was {utilization}% used over the "
                    f"last {thresholds.lookback_days} days.",
                    price=price,
                    evidence={
                        "service": service,
                        "region": attributes.get("region"),
                        "instance_type": attributes.get("instanceType"),
                        "utilization_percent": str(utilization),
                        "unused_hours": used["UnusedHours"],
                        "purchased_hours": used["PurchasedHours"],
                        "lookback_days": thresholds.lookback_days,
                        "min_utilization_percent": thresholds.min_utilization_percent,
                    },
                )
        for detail in _plan_utilization(ce, period, []):
            used = detail["Utilization"]
            utilization = Decimal(used["UtilizationPercentage"])
            if utilization >= limit:
                continue
            arn = detail["SavingsPlanArn"]
            hours = _hours_in(period, detail.get("Attributes", {}))
            price = _per_month(
                scope, Decimal(used["UnusedCommitment"]), hours, "the plan's unused commitment"
            )
            yield Waste(
                resource_id=arn.rsplit("/", 1)[-1],
                resource_type="savings-plan",
                reason=f"This Savings Plan was {utilization}% used over the last "
                f"{thresholds.lookback_days} days; the rest of its commitment was paid for "
                f"nothing.",
                price=price,
                evidence={
                    "savings_plan_arn": arn,
                    "utilization_percent": str(utilization),
                    "unused_commitment_usd": used["UnusedCommitment"],
                    "total_commitment_usd": used["TotalCommitment"],
                    "lookback_days": thresholds.lookback_days,
                    "min_utilization_percent": thresholds.min_utilization_percent,
                },
            )


# --- calls ----------------------------------------------------------------------------------


def _active_savings_plans(savingsplans: Any) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = savingsplans.describe_savings_plans(
            states=["active"], **({"nextToken": token} if token else {})
        )
        yield from page.get("savingsPlans", [])
        token = page.get("nextToken")
        if not token:
            return


def _plan_utilization(ce: Any, period: dict[str, str], arns: list[str]) -> Iterator[dict[str, Any]]:
    """Each plan's utilization and savings over ``period`` (only ``arns`` when given)."""
    selection = (
        {"Filter": {"Dimensions": {"Key": "SAVINGS_PLAN_ARN", "Values": arns}}} if arns else {}
    )
    token: str | None = None
    while True:
        page = ce.get_savings_plans_utilization_details(
            TimePeriod=period, **selection, **({"NextToken": token} if token else {})
        )
        yield from page.get("SavingsPlansUtilizationDetails", [])
        token = page.get("NextToken")
        if not token:
            return


def _reservation_groups(ce: Any, period: dict[str, str], service: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = ce.get_reservation_utilization(
            TimePeriod=period,
            GroupBy=[{"Type": "DIMENSION", "Key": "SUBSCRIPTION_ID"}],
            Filter={"Dimensions": {"Key": "SERVICE", "Values": [service]}},
            **({"NextPageToken": token} if token else {}),
        )
        for by_time in page.get("UtilizationsByTime", []):
            yield from by_time.get("Groups", [])
        token = page.get("NextPageToken")
        if not token:
            return


# --- figures --------------------------------------------------------------------------------


def _period(now: dt.datetime, days: int) -> dict[str, str]:
    """Cost Explorer's last ``days`` full days (its end date is exclusive: today's data is
    incomplete)."""
    end = now.date()
    return {"Start": (end - dt.timedelta(days=days)).isoformat(), "End": end.isoformat()}


def _hours_in(period: dict[str, str], attributes: dict[str, str]) -> float:
    """The hours of ``period`` a commitment was active (its start and end when reported)."""
    first = _parse_time(period["Start"])
    last = _parse_time(period["End"])
    if attributes.get("StartDateTime"):
        first = max(first, _parse_time(attributes["StartDateTime"]))
    if attributes.get("EndDateTime"):
        last = min(last, _parse_time(attributes["EndDateTime"]))
    return max(0.0, (last - first).total_seconds() / 3600)


def _per_month(scope: RegionScope, amount: Decimal, hours: float, what: str) -> Price:
    """``amount`` (USD over ``hours``) run for a month."""
    if hours <= 0:
        return Price.unknown("the commitment had no hours in Cost Explorer's period")
    per_month = scope.prices.hours_per_month
    return Price(
        (amount * per_month / Decimal(str(hours))).quantize(CENT),
        "billed",
        {
            "priced": what,
            "source": "AWS Cost Explorer",
            "period_usd": str(amount),
            "period_hours": round(hours, 1),
            "hours_per_month": str(per_month),
        },
    )


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
