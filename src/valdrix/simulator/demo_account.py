"""The demo's AWS account: about 400 resources over three regions of a simulated AWS.

Waste for every AWS detector sits beside resources no detector may flag (attached volumes, busy
instances, associated addresses, load balancers with healthy targets, busy gateways, databases
and caches, gp3 volumes, log groups with a retention policy, and wasteful resources tagged
``valdrix:ignore=true``); each carries the tag ``valdrix-demo:expect`` saying what a scan should
report (see ``demo_region``).

moto stamps every resource as created (or stopped) now and cannot backdate it, so instead of
faking ages the demo connection judges resources of any age (``DEMO_THRESHOLDS``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from valdrix.simulator.demo_commitments import seed_reservations, seed_savings_plans
from valdrix.simulator.demo_recommendations import seed_demo_recommendations
from valdrix.simulator.demo_region import RegionSeeder
from valdrix.simulator.demo_seeding import SeededResource

DEMO_ACCOUNT_ID = "123456789012"  # moto's default account, where the assumed role's calls land
DEMO_ROLE_ARN = f"arn:aws:iam::{DEMO_ACCOUNT_ID}:role/ValdrixScanRole"
# Resources per region grow with the scale: us-east-1 is the busiest, as in most accounts.
DEMO_REGIONS = {"us-east-1": 4, "us-west-2": 3, "eu-west-1": 2}
# Every age threshold at 0 days: the simulator's resources are all minutes old.
DEMO_THRESHOLDS: dict[str, dict[str, Any]] = {
    "aws.ebs-unattached": {"min_age_days": 0},
    "aws.ebs-on-stopped-instance": {"stopped_days": 0},
    "aws.ebs-snapshot-orphaned": {"min_age_days": 0},
    "aws.ec2-stopped": {"stopped_days": 0},
    "aws.public-ipv4-on-stopped-instance": {"stopped_days": 0},
    "aws.ami-unused": {"min_age_days": 0},
    "aws.elb-idle": {"min_age_days": 0},
    "aws.nat-gateway-idle": {"min_age_days": 0},
    "aws.vpc-endpoint-idle": {"min_age_days": 0},
    "aws.rds-idle": {"min_age_days": 0},
    "aws.rds-snapshot-orphaned": {"min_age_days": 0},
    "aws.rds-cluster-snapshot-orphaned": {"min_age_days": 0},
    "aws.elasticache-idle": {"min_age_days": 0},
    "aws.dynamodb-idle": {"min_age_days": 0},
    "aws.efs-idle": {"min_age_days": 0},
    "aws.redshift-idle": {"min_age_days": 0},
    "aws.sagemaker-endpoint-idle": {"min_age_days": 0},
    "aws.eks-cluster-idle": {"min_age_days": 0},
}


@dataclass(frozen=True)
class DemoAccount:
    """What was seeded, for the demo's output and for tests."""

    endpoint_url: str
    regions: tuple[str, ...]
    # By (region, resource id): names such as a database's may repeat across regions.
    resources: dict[tuple[str, str], SeededResource]
    seconds: float

    def expected_findings(self) -> set[tuple[str, str, str]]:
        """(region, detector, resource id) of every finding a faithful scan reports."""
        return {
            (r.region, detector, r.resource_id)
            for r in self.resources.values()
            for detector in r.detectors
        }

    def waste_by_detector(self) -> Counter[str]:
        return Counter(detector for _, detector, _ in self.expected_findings())


def seed_demo_account(
    endpoint_url: str, regions: dict[str, int] | None = None, *, now: dt.datetime | None = None
) -> DemoAccount:
    """Seed the account on the simulator at ``endpoint_url``, one thread per region."""
    started = time.monotonic()
    plan = regions or DEMO_REGIONS
    now = now or dt.datetime.now(dt.UTC)
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        seeded = list(
            pool.map(
                lambda item: RegionSeeder(endpoint_url, item[0], item[1], now).seed(), plan.items()
            )
        )
    seeded += [seed_reservations(endpoint_url, region, now) for region in plan]
    seeded.append(seed_savings_plans(endpoint_url, now))
    resources = {(r.region, r.resource_id): r for batch in seeded for r in batch}
    seed_demo_recommendations(endpoint_url, DEMO_ACCOUNT_ID, list(plan), resources)
    return DemoAccount(endpoint_url, tuple(plan), resources, time.monotonic() - started)
