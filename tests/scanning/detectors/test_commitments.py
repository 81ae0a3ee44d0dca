"""aws.reservation-expiring, aws.savings-plan-expiring and aws.commitment-underused against the
simulated AWS over HTTP (moto has no Reserved Instances, Savings Plans nor utilization reports:
the simulator serves them, see ``simulator.commitments``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from tests.fixtures.aws import aws_client
from valdrix.kit.orm import utcnow
from valdrix.scanning.base import Detector, RegionScope, Waste
from valdrix.scanning.detectors.aws.commitments import (
    ExpiringReservations,
    ExpiringSavingsPlans,
    UnderusedCommitments,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog
from valdrix.simulator.commitments import SimulatedCommitment, seed_commitments

DAY = dt.timedelta(days=1)


def at(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def commitment(kind: str, cid: str, now: dt.datetime, ends_in: dt.timedelta, **kw: Any) -> Any:
    """A commitment bought a year before it ends."""
    end = now + ends_in
    defaults: dict[str, Any] = {"region": "us-east-1", "offering": "m5.large", "hourly_usd": 0.06}
    return SimulatedCommitment(
        kind,  # type: ignore[arg-type]
        cid,
        start=at(end - 365 * DAY),
        end=at(end),
        **(defaults | kw),
    )


def scope(endpoint: str, now: dt.datetime, region: str = "us-east-1") -> RegionScope:
    # Connection-wide detectors run as "global", calling us-east-1 as the AWS provider does.
    calling = "us-east-1" if region == "global" else region
    return RegionScope(
        account_id="123456789012",
        region=region,
        client=lambda service: aws_client(endpoint, service, calling),
        prices=aws_catalog(),
        now=now,
    )


def scan(detector: type[Detector], where: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    found = detector().detect(where, detector.thresholds(**thresholds))
    return {w.resource_id: w for w in found}


def now_to_the_second() -> dt.datetime:
    return utcnow().replace(microsecond=0)


# --- aws.reservation-expiring -----------------------------------------------------------------


def test_reserved_instances_ending_within_days_are_reported_at_their_on_demand_premium(
    aws_endpoint: str,
) -> None:
    now = now_to_the_second()
    seed_commitments(
        aws_endpoint,
        [
            commitment(
                "ec2-reserved-instance", "ri-web", now, 10 * DAY, count=2, tags={"team": "web"}
            ),
            commitment("ec2-reserved-instance", "ri-later", now, 60 * DAY),
            commitment("ec2-reserved-instance", "ri-oregon", now, 10 * DAY, region="us-west-2"),
            commitment("ec2-reserved-instance", "ri-ended", now, -2 * DAY),
            commitment(
                "rds-reserved-instance",
                "rds-orders",
                now,
                5 * DAY,
                offering="db.r5.large",
                hourly_usd=0.15,
                product="postgresql",
            ),
        ],
    )

    found = scan(ExpiringReservations, scope(aws_endpoint, now))

    assert set(found) == {"ri-web", "rds-orders"}
    web = found["ri-web"]
    # m5.large $0.096/h on demand against $0.06/h reserved, two instances, 730 h.
    assert web.price.monthly_usd == Decimal("52.56")
    assert web.price.basis == "list_price"
    assert web.evidence["days_left"] == 10
    assert web.evidence["instance_count"] == 2
    assert web.tags == {"team": "web"}
    # db.r5.large PostgreSQL $0.25/h on demand against $0.15/h reserved.
    assert found["rds-orders"].price.monthly_usd == Decimal("73.00")
    assert found["rds-orders"].evidence["service"] == "RDS"


def test_reservation_is_reported_only_once_it_ends_within_days(aws_endpoint: str) -> None:
    now = now_to_the_second()
    seed_commitments(aws_endpoint, [commitment("ec2-reserved-instance", "ri-1", now, 20 * DAY)])

    assert set(scan(ExpiringReservations, scope(aws_endpoint, now), days=20)) == {"ri-1"}
    assert scan(ExpiringReservations, scope(aws_endpoint, now), days=19) == {}


def test_upfront_is_spread_over_the_term_and_unpriced_platforms_are_unknown(
    aws_endpoint: str,
) -> None:
    now = now_to_the_second()
    seed_commitments(
        aws_endpoint,
        [
            # All upfront: $438 over 8,760 hours is $0.05/h.
            commitment(
                "ec2-reserved-instance", "ri-paid", now, 3 * DAY, hourly_usd=0.0, upfront_usd=438.0
            ),
            commitment("ec2-reserved-instance", "ri-win", now, 3 * DAY, product="Windows"),
        ],
    )

    found = scan(ExpiringReservations, scope(aws_endpoint, now))

    assert found["ri-paid"].price.monthly_usd == Decimal("33.58")  # (0.096 - 0.05) x 730
    assert found["ri-win"].price.basis == "unknown"
    assert "Windows" in found["ri-win"].price.detail["why"]


# --- aws.savings-plan-expiring ----------------------------------------------------------------


def test_savings_plan_ending_within_days_is_reported_at_its_monthly_net_savings(
    aws_endpoint: str,
) -> None:
    now = now_to_the_second()
    seed_commitments(
        aws_endpoint,
        [
            commitment(
                "savings-plan",
                "sp-compute",
                now,
                10 * DAY,
                region="global",
                offering="Compute",
                hourly_usd=1.0,
                on_demand_hourly_usd=1.4,
                tags={"owner": "platform"},
            ),
            commitment(
                "savings-plan", "sp-later", now, 200 * DAY, region="global", offering="Compute"
            ),
        ],
    )

    found = scan(ExpiringSavingsPlans, scope(aws_endpoint, now, "global"))

    assert set(found) == {"sp-compute"}
    plan = found["sp-compute"]
    # Fully used: $1.40 of on-demand usage for each $1.00 of commitment, $0.40 an hour saved.
    assert plan.price.monthly_usd == Decimal("292.00")
    assert plan.price.basis == "billed"
    assert plan.evidence["days_left"] == 10
    assert plan.tags == {"owner": "platform"}
    assert ExpiringSavingsPlans.connection_wide


def test_savings_plan_is_reported_only_once_it_ends_within_days(aws_endpoint: str) -> None:
    now = now_to_the_second()
    seed_commitments(
        aws_endpoint,
        [commitment("savings-plan", "sp-1", now, 30 * DAY, region="global", offering="Compute")],
    )

    assert set(scan(ExpiringSavingsPlans, scope(aws_endpoint, now, "global"))) == {"sp-1"}
    assert scan(ExpiringSavingsPlans, scope(aws_endpoint, now, "global"), days=29) == {}


# --- aws.commitment-underused -----------------------------------------------------------------


def test_under_used_reservations_and_plans_are_reported_at_their_unused_commitment(
    aws_endpoint: str,
) -> None:
    now = now_to_the_second()
    seed_commitments(
        aws_endpoint,
        [
            commitment(
                "ec2-reserved-instance", "ri-half", now, 200 * DAY, count=2, used_percent=50
            ),
            commitment("ec2-reserved-instance", "ri-full", now, 200 * DAY, used_percent=100),
            commitment(
                "rds-reserved-instance",
                "rds-quiet",
                now,
                200 * DAY,
                offering="db.r5.large",
                hourly_usd=0.15,
                used_percent=0,
            ),
            commitment(
                "savings-plan",
                "sp-70",
                now,
                200 * DAY,
                region="global",
                offering="Compute",
                hourly_usd=1.5,
                used_percent=70,
            ),
        ],
    )

    found = scan(UnderusedCommitments, scope(aws_endpoint, now, "global"))

    assert set(found) == {"ri-half", "rds-quiet", "sp-70"}
    # Half of two $0.06/h instances unused: $0.06 an hour, 730 hours.
    assert found["ri-half"].price.monthly_usd == Decimal("43.80")
    assert found["ri-half"].evidence["utilization_percent"] == "50.00"
    assert found["rds-quiet"].price.monthly_usd == Decimal("109.50")  # 0.15 x 730
    # 30 % of $1.50/h unused.
    assert found["sp-70"].price.monthly_usd == Decimal("328.50")
    assert found["sp-70"].resource_type == "savings-plan"
    assert {w.price.basis for w in found.values()} == {"billed"}


def test_commitment_is_reported_only_below_min_utilization_percent(aws_endpoint: str) -> None:
    now = now_to_the_second()
    seed_commitments(
        aws_endpoint,
        [commitment("ec2-reserved-instance", "ri-80", now, 200 * DAY, used_percent=80)],
    )
    where = scope(aws_endpoint, now, "global")

    assert scan(UnderusedCommitments, where, min_utilization_percent=80) == {}
    assert set(scan(UnderusedCommitments, where, min_utilization_percent=80.5)) == {"ri-80"}


def test_no_commitments_means_no_findings(aws_endpoint: str) -> None:
    now = now_to_the_second()
    where = scope(aws_endpoint, now, "global")

    assert scan(UnderusedCommitments, where) == {}
    assert scan(ExpiringSavingsPlans, where) == {}
    assert scan(ExpiringReservations, scope(aws_endpoint, now)) == {}
