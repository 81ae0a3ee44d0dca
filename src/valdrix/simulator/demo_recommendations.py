"""What AWS Compute Optimizer and Cost Optimization Hub recommend to the demo account, which
has turned both on: for some resources a Valdrix detector flags too (an idle instance, a gp2
disk, an unattached disk: a scan shows each once, both sources named) and for some only the
import finds (busy instances larger than they need to be), beside a right-sized instance and a
Savings Plans purchase, which are no findings.

Seeded after the regions (the recommendations name their resources), each recommended resource's
``valdrix-demo:expect`` tag gains the importing detector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import boto3

from valdrix.simulator.aws_server import SIMULATED_AWS_ENV
from valdrix.simulator.demo_seeding import EXPECT_TAG, SeededResource, expect_value
from valdrix.simulator.recommendations import AccountRecommendations, seed_recommendations

OPTIMIZER = "aws.compute-optimizer"
HUB = "aws.cost-optimization-hub"
EC2_IDLE = "aws.ec2-idle"
GP2 = "aws.ebs-gp2-to-gp3"
UNATTACHED = "aws.ebs-unattached"
# Monthly savings below what Valdrix prices the same resource at (its idle t3.large, its gp2
# disk's gp3 saving, its unattached 500 GiB gp3 disk), as AWS would estimate them.
SAVINGS = {"idle": 30.37, "gp2": 0.5, "unattached": 38.0, "busy": 35.04, "hub-busy": 33.58}

Resources = dict[tuple[str, str], SeededResource]


def seed_demo_recommendations(
    endpoint_url: str, account_id: str, regions: Sequence[str], resources: Resources
) -> None:
    """Seed both services for the account's ``regions`` and tag what they recommend; updates
    ``resources``."""
    compute: dict[str, dict[str, list[dict[str, Any]]]] = {}
    hub: list[dict[str, Any]] = []
    added: dict[tuple[str, str], str] = {}
    for region in sorted(regions):
        pick = _picker(resources, region)
        idle, busy, right_sized, hub_busy = (
            pick("ec2-instance", (EC2_IDLE,)),
            *(pick("ec2-instance", ()) for _ in range(3)),
        )
        gp2_disk, spare_disk = pick("ebs-volume", (GP2,)), pick("ebs-volume", (UNATTACHED,))
        arn = f"arn:aws:ec2:{region}:{account_id}:{{}}"
        compute[region] = {
            "instanceRecommendations": [
                _instance(arn.format(f"instance/{idle}"), "t3.large", "t3.medium", SAVINGS["idle"]),
                _instance(arn.format(f"instance/{busy}"), "m5.large", "t3.large", SAVINGS["busy"]),
                _instance(arn.format(f"instance/{right_sized}"), "m5.large", "m5.large", 0.0),
            ],
            "volumeRecommendations": [_volume(arn.format(f"volume/{gp2_disk}"))],
        }
        hub += [
            _hub(account_id, region, arn.format(f"instance/{hub_busy}"), "Ec2Instance"),
            _hub(account_id, region, arn.format(f"volume/{spare_disk}"), "EbsVolume", "Delete"),
        ]
        for resource_id, detector in (
            (idle, OPTIMIZER),
            (busy, OPTIMIZER),
            (gp2_disk, OPTIMIZER),
            (hub_busy, HUB),
            (spare_disk, HUB),
        ):
            added[(region, resource_id)] = detector
    hub.append(_hub(account_id, "us-east-1", "", "Ec2InstanceSavingsPlans", "PurchaseSavingsPlans"))
    seeded = AccountRecommendations(
        compute_optimizer_status="Active",
        hub_status="Active",
        savings_estimation_mode="AfterDiscounts",
        compute_optimizer=compute,
        hub=hub,
    )
    seed_recommendations(endpoint_url, account_id, seeded)
    for key, detector in added.items():
        resource = resources[key]
        resources[key] = replace(resource, detectors=(*resource.detectors, detector))
        _retag(endpoint_url, resources[key])


def _picker(resources: Resources, region: str) -> Callable[..., str]:
    """Takes resources of one region in seeding order, each once: the first of a kind that
    exactly these detectors flag."""
    taken: set[str] = set()

    def pick(kind: str, detectors: Sequence[str]) -> str:
        matching = [
            r.resource_id
            for (where, _), r in resources.items()
            if where == region
            and r.kind == kind
            and r.detectors == tuple(detectors)
            and r.resource_id not in taken
        ]
        chosen = matching[0]
        taken.add(chosen)
        return chosen

    return pick


def _saving(value: float) -> dict[str, Any]:
    return {"estimatedMonthlySavings": {"currency": "USD", "value": value}}


def _instance(arn: str, current: str, recommended: str, monthly: float) -> dict[str, Any]:
    return {
        "instanceArn": arn,
        "currentInstanceType": current,
        "finding": "Overprovisioned" if monthly else "Optimized",
        "findingReasonCodes": ["CPUOverprovisioned", "MemoryOverprovisioned"] if monthly else [],
        "lookBackPeriodInDays": 14.0,
        "recommendationOptions": [
            {
                "instanceType": recommended,
                "rank": 1,
                "performanceRisk": 1.0,
                "savingsOpportunityAfterDiscounts": _saving(monthly),
            }
        ],
    }


def _volume(arn: str) -> dict[str, Any]:
    return {
        "volumeArn": arn,
        "currentConfiguration": {"volumeType": "gp2", "volumeSize": 30},
        "finding": "NotOptimized",
        "lookBackPeriodInDays": 14.0,
        "volumeRecommendationOptions": [
            {
                "configuration": {"volumeType": "gp3", "volumeSize": 30},
                "rank": 1,
                "performanceRisk": 0.0,
                "savingsOpportunityAfterDiscounts": _saving(SAVINGS["gp2"]),
            }
        ],
    }


def _hub(
    account_id: str, region: str, arn: str, kind: str, action: str = "Rightsize"
) -> dict[str, Any]:
    monthly = SAVINGS["unattached"] if action == "Delete" else SAVINGS["hub-busy"]
    return {
        "recommendationId": f"demo-{region}-{kind}-{action}".lower(),
        "accountId": account_id,
        "region": region,
        "resourceId": arn.rsplit("/", 1)[-1] if arn else "savings-plan",
        "resourceArn": arn,
        "currentResourceType": kind,
        "recommendedResourceType": kind,
        "estimatedMonthlySavings": monthly,
        "currencyCode": "USD",
        "actionType": action,
        "currentResourceSummary": "m5.large" if kind == "Ec2Instance" else None,
        "recommendedResourceSummary": "m6g.large" if kind == "Ec2Instance" else None,
        "recommendationLookbackPeriodInDays": 14,
        "source": "ComputeOptimizer",
    }


def _retag(endpoint_url: str, resource: SeededResource) -> None:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=endpoint_url,
        region_name=resource.region,
        aws_access_key_id=SIMULATED_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SIMULATED_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    value = expect_value(resource.detectors)
    ec2.create_tags(Resources=[resource.resource_id], Tags=[{"Key": EXPECT_TAG, "Value": value}])
