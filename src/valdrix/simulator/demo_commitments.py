"""The demo account's commitments: Reserved Instances in each region and Savings Plans for the
whole account, some about to end, some under-used, some to keep (declared to the simulator,
which serves them and Cost Explorer's utilization of them; see ``simulator.commitments``).

Findings about under-used commitments and Savings Plans come from connection-wide detectors,
recorded under the region ``global``: their resources are noted there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from valdrix.simulator.commitments import SimulatedCommitment, seed_commitments
from valdrix.simulator.demo_seeding import EXPECT_TAG, SeededResource, expect_value

RESERVATION_EXPIRING = "aws.reservation-expiring"
SAVINGS_PLAN_EXPIRING = "aws.savings-plan-expiring"
COMMITMENT_UNDERUSED = "aws.commitment-underused"
GLOBAL = "global"
DAY = dt.timedelta(days=1)


def _commitment(
    kind: str,
    commitment_id: str,
    region: str,
    now: dt.datetime,
    *,
    ends_in_days: int,
    detectors: Sequence[str],
    offering: str,
    hourly_usd: float,
    on_demand_hourly_usd: float,
    used_percent: float = 100.0,
    count: int = 1,
) -> SimulatedCommitment:
    end = (now + ends_in_days * DAY).replace(microsecond=0)
    return SimulatedCommitment(
        kind,  # type: ignore[arg-type]
        commitment_id,
        region,
        start=(end - 365 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        offering=offering,
        hourly_usd=hourly_usd,
        count=count,
        used_percent=used_percent,
        on_demand_hourly_usd=on_demand_hourly_usd,
        tags={EXPECT_TAG: expect_value(detectors), "Name": commitment_id},
    )


def seed_reservations(endpoint_url: str, region: str, now: dt.datetime) -> list[SeededResource]:
    """A reservation ending in 12 days, one under-used, one to keep (fully used, a year left)."""
    plan = [
        ("ri-web-renewal", 12, 100.0, [RESERVATION_EXPIRING], region),
        ("ri-batch-2024", 200, 35.0, [COMMITMENT_UNDERUSED], GLOBAL),
        ("ri-web-base", 300, 100.0, [], region),
    ]
    commitments = [
        _commitment(
            "ec2-reserved-instance",
            f"{name}-{region}",
            region,
            now,
            ends_in_days=days,
            detectors=detectors,
            offering="m5.large",
            hourly_usd=0.06,
            on_demand_hourly_usd=0.096,
            used_percent=used,
            count=2,
        )
        for name, days, used, detectors, _ in plan
    ]
    seed_commitments(endpoint_url, commitments)
    return [
        SeededResource(c.commitment_id, noted_in, "reserved-instance", tuple(detectors))
        for c, (_, _, _, detectors, noted_in) in zip(commitments, plan, strict=True)
    ]


def seed_savings_plans(endpoint_url: str, now: dt.datetime) -> list[SeededResource]:
    """Three plans ending within the month, one used at 55 %, one to keep."""
    plan: list[tuple[str, str, float, int, float, list[str]]] = [
        ("sp-compute-2023", "Compute", 2.0, 20, 100.0, [SAVINGS_PLAN_EXPIRING]),
        ("sp-ec2-m5", "EC2Instance", 0.5, 9, 100.0, [SAVINGS_PLAN_EXPIRING]),
        ("sp-sagemaker", "SageMaker", 0.3, 25, 100.0, [SAVINGS_PLAN_EXPIRING]),
        ("sp-compute-growth", "Compute", 1.2, 300, 55.0, [COMMITMENT_UNDERUSED]),
        ("sp-compute-base", "Compute", 3.0, 300, 98.0, []),
    ]
    commitments = [
        _commitment(
            "savings-plan",
            name,
            GLOBAL,
            now,
            ends_in_days=days,
            detectors=detectors,
            offering=offering,
            hourly_usd=hourly,
            # Savings Plans take about 30 % off on-demand rates.
            on_demand_hourly_usd=round(hourly / 0.7, 4),
            used_percent=used,
        )
        for name, offering, hourly, days, used, detectors in plan
    ]
    seed_commitments(endpoint_url, commitments)
    return [
        SeededResource(c.commitment_id, GLOBAL, "savings-plan", tuple(item[5]))
        for c, item in zip(commitments, plan, strict=True)
    ]
