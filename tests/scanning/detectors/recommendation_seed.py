"""Recommendations as AWS Compute Optimizer and Cost Optimization Hub answer them, for seeding
the simulator in the tests of ``aws.compute-optimizer`` and ``aws.cost-optimization-hub``."""

from __future__ import annotations

from typing import Any

ACCOUNT_ID = "123456789012"


def saving(value: float, currency: str = "USD") -> dict[str, Any]:
    return {
        "savingsOpportunityPercentage": 40.0,
        "estimatedMonthlySavings": {"currency": currency, "value": value},
    }


def instance_recommendation(
    instance_id: str,
    *,
    region: str = "us-east-1",
    finding: str = "Overprovisioned",
    current: str = "m5.xlarge",
    recommended: str = "m5.large",
    monthly: float = 70.08,
    **option: Any,
) -> dict[str, Any]:
    return {
        "instanceArn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{instance_id}",
        "accountId": ACCOUNT_ID,
        "instanceName": "web",
        "currentInstanceType": current,
        "finding": finding,
        "findingReasonCodes": ["CPUOverprovisioned"],
        "lookBackPeriodInDays": 14.0,
        "recommendationOptions": [
            {
                "instanceType": "m5.medium",
                "rank": 2,
                "performanceRisk": 3.0,
                "savingsOpportunity": saving(monthly * 1.5),
            },
            {
                "instanceType": recommended,
                "rank": 1,
                "performanceRisk": 1.0,
                "savingsOpportunity": saving(monthly),
                **option,
            },
        ],
        "tags": [{"key": "team", "value": "web"}],
    }


def volume_recommendation(
    volume_id: str,
    *,
    region: str = "us-east-1",
    monthly: float = 2.0,
    finding: str = "NotOptimized",
) -> dict[str, Any]:
    return {
        "volumeArn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:volume/{volume_id}",
        "accountId": ACCOUNT_ID,
        "currentConfiguration": {"volumeType": "gp2", "volumeSize": 100},
        "finding": finding,
        "volumeRecommendationOptions": [
            {
                "configuration": {"volumeType": "gp3", "volumeSize": 100},
                "rank": 1,
                "performanceRisk": 0.0,
                "savingsOpportunity": saving(monthly),
            }
        ],
    }


def hub_recommendation(
    resource_id: str,
    *,
    region: str,
    kind: str = "Ec2Instance",
    action: str = "Rightsize",
    monthly: float = 35.04,
    currency: str = "USD",
    account_id: str = ACCOUNT_ID,
) -> dict[str, Any]:
    path = {"Ec2Instance": "instance", "EbsVolume": "volume"}.get(kind, kind.lower())
    return {
        "recommendationId": f"rec-{resource_id}",
        "accountId": account_id,
        "region": region,
        "resourceId": resource_id,
        "resourceArn": f"arn:aws:ec2:{region}:{account_id}:{path}/{resource_id}",
        "currentResourceType": kind,
        "recommendedResourceType": kind,
        "estimatedMonthlySavings": monthly,
        "estimatedSavingsPercentage": 50.0,
        "estimatedMonthlyCost": monthly,
        "currencyCode": currency,
        "implementationEffort": "Medium",
        "restartNeeded": True,
        "actionType": action,
        "rollbackPossible": True,
        "currentResourceSummary": "m5.xlarge",
        "recommendedResourceSummary": "m5.large",
        "recommendationLookbackPeriodInDays": 14,
        "source": "ComputeOptimizer",
        "tags": [],
    }
