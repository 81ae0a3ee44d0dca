"""aws.compute-optimizer and aws.cost-optimization-hub: AWS's own recommendations imported as
findings, over HTTP from the simulator (moto serves neither service)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.aws import aws_client
from tests.scanning.detectors.recommendation_seed import (
    ACCOUNT_ID,
    hub_recommendation,
    instance_recommendation,
    saving,
    volume_recommendation,
)
from valdrix.kit.orm import utcnow
from valdrix.scanning.base import DetectorSkipped, RegionScope, Waste
from valdrix.scanning.detectors.aws.compute_optimizer import ComputeOptimizerRecommendations
from valdrix.scanning.detectors.aws.cost_optimization_hub import (
    CostOptimizationHubRecommendations,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog
from valdrix.simulator.proxy import FaultProxy
from valdrix.simulator.recommendations import AccountRecommendations, seed_recommendations

REGION = "us-east-1"


def scope_on(endpoint_url: str, region: str = REGION) -> RegionScope:
    return RegionScope(
        account_id=ACCOUNT_ID,
        region=region,
        client=lambda service: aws_client(endpoint_url, service, region),
        prices=aws_catalog(),
        now=utcnow(),
    )


def optimizer(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    detector = ComputeOptimizerRecommendations()
    return list(detector.detect(scope, detector.thresholds(**thresholds)))


def hub(scope: RegionScope, **thresholds: Any) -> list[Waste]:
    detector = CostOptimizationHubRecommendations()
    return list(detector.detect(scope, detector.thresholds(**thresholds)))


def seed_optimizer(endpoint: str, region: str = REGION, **listings: list[dict[str, Any]]) -> None:
    seeded = AccountRecommendations(compute_optimizer_status="Active")
    seeded.compute_optimizer = {region: dict(listings)}
    seed_recommendations(endpoint, ACCOUNT_ID, seeded)


def seed_hub(endpoint: str, items: list[dict[str, Any]], mode: str = "BeforeDiscounts") -> None:
    seeded = AccountRecommendations(hub_status="Active", savings_estimation_mode=mode, hub=items)
    seed_recommendations(endpoint, ACCOUNT_ID, seeded)


# --- Compute Optimizer -------------------------------------------------------------------------


def test_an_over_provisioned_instance_is_imported_with_its_saving_action_configuration_and_arn(
    aws_endpoint: str,
) -> None:
    seed_optimizer(aws_endpoint, instanceRecommendations=[instance_recommendation("i-0abc")])

    [found] = optimizer(scope_on(aws_endpoint))

    assert (found.resource_id, found.resource_type) == ("i-0abc", "ec2-instance")
    # The best-ranked option's saving, not the larger saving of a riskier option.
    assert found.price.monthly_usd == Decimal("70.08")
    assert found.price.basis == "recommendation"
    assert found.price.detail["source"] == "AWS Compute Optimizer"
    assert found.price.detail["currency"] == "USD"
    assert found.evidence["action"] == "Rightsize"
    assert found.evidence["current"] == {"instance_type": "m5.xlarge"}
    assert found.evidence["recommended"] == {"instance_type": "m5.large"}
    assert found.evidence["resource_arn"].endswith(":instance/i-0abc")
    assert found.tags == {"team": "web"}
    # Its saving is part of the instance's cost, which Valdrix's own findings may price too.
    assert [(p.component, p.resource_id, p.monthly_usd) for p in found.cost_parts] == [
        ("ec2-instance", "i-0abc", Decimal("70.08"))
    ]


def test_right_sized_and_under_provisioned_resources_are_not_imported(aws_endpoint: str) -> None:
    seed_optimizer(
        aws_endpoint,
        instanceRecommendations=[
            instance_recommendation("i-ok", finding="Optimized"),
            instance_recommendation("i-small", finding="Underprovisioned"),
            instance_recommendation("i-big"),
        ],
        volumeRecommendations=[
            volume_recommendation("vol-ok", finding="Optimized"),
            volume_recommendation("vol-gp2"),
        ],
    )

    found = {(w.resource_type, w.resource_id) for w in optimizer(scope_on(aws_endpoint))}

    assert found == {("ec2-instance", "i-big"), ("ebs-volume", "vol-gp2")}


def test_every_page_of_recommendations_is_read(aws_endpoint: str) -> None:
    # The simulator answers five to a page, as AWS pages with nextToken.
    recommendations = [instance_recommendation(f"i-{n:04d}") for n in range(12)]
    seed_optimizer(aws_endpoint, instanceRecommendations=recommendations)

    found = optimizer(scope_on(aws_endpoint))

    assert sorted(w.resource_id for w in found) == [f"i-{n:04d}" for n in range(12)]


def test_the_saving_after_discounts_is_used_when_aws_gives_one(aws_endpoint: str) -> None:
    discounted = {"savingsOpportunityAfterDiscounts": saving(41.5)}
    seed_optimizer(
        aws_endpoint, instanceRecommendations=[instance_recommendation("i-1", **discounted)]
    )

    [found] = optimizer(scope_on(aws_endpoint))

    assert found.price.monthly_usd == Decimal("41.50")
    assert found.price.detail["savings_estimation"] == "after discounts"


def test_a_saving_at_the_threshold_is_left_out_and_a_cent_more_is_imported(
    aws_endpoint: str,
) -> None:
    seed_optimizer(
        aws_endpoint,
        instanceRecommendations=[
            instance_recommendation("i-at", monthly=10.0),
            instance_recommendation("i-above", monthly=10.01),
        ],
    )

    found = optimizer(scope_on(aws_endpoint), min_monthly_saving_usd=10)

    assert [w.resource_id for w in found] == ["i-above"]


def test_an_account_not_opted_in_to_compute_optimizer_gets_no_findings_and_is_told_why(
    aws_endpoint: str,
) -> None:
    with pytest.raises(DetectorSkipped) as skipped:
        optimizer(scope_on(aws_endpoint))

    assert "not turned on" in skipped.value.reason and ACCOUNT_ID in skipped.value.reason


def test_a_role_denied_the_recommendations_raises_access_denied(
    aws_endpoint: str, fault_proxy: Callable[..., FaultProxy]
) -> None:
    seed_optimizer(aws_endpoint, instanceRecommendations=[instance_recommendation("i-1")])
    proxy = fault_proxy(deny_operations={"GetEBSVolumeRecommendations"})

    with pytest.raises(ClientError) as denied:
        optimizer(scope_on(proxy.url))

    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


# --- Cost Optimization Hub ---------------------------------------------------------------------


def test_hub_recommendations_of_every_region_are_imported_with_their_own_region(
    aws_endpoint: str,
) -> None:
    seed_hub(
        aws_endpoint,
        [
            hub_recommendation("i-west", region="us-west-2"),
            hub_recommendation("vol-eu", region="eu-west-1", kind="EbsVolume", action="Delete"),
        ],
        mode="AfterDiscounts",
    )

    found = {w.resource_id: w for w in hub(scope_on(aws_endpoint))}

    assert {(w.region, w.resource_type) for w in found.values()} == {
        ("us-west-2", "ec2-instance"),
        ("eu-west-1", "ebs-volume"),
    }
    west = found["i-west"]
    assert west.price.monthly_usd == Decimal("35.04") and west.price.basis == "recommendation"
    assert west.price.detail["savings_estimation"] == "after discounts"
    assert west.evidence["action"] == "Rightsize"
    assert west.evidence["recommended"] == {"resource_type": "Ec2Instance", "summary": "m5.large"}
    assert found["vol-eu"].evidence["action"] == "Delete"


def test_a_saving_in_another_currency_is_recorded_with_its_currency_and_never_converted(
    aws_endpoint: str,
) -> None:
    seed_hub(aws_endpoint, [hub_recommendation("i-eur", region="eu-west-1", currency="EUR")])

    [found] = hub(scope_on(aws_endpoint))

    assert found.price.monthly_usd is None and found.price.basis == "recommendation"
    assert found.price.detail["currency"] == "EUR"
    assert found.price.detail["estimated_monthly_savings"] == "35.04"
    assert "converts no currency" in found.price.detail["why"]
    assert found.cost_parts == ()  # no USD figure: no total counts it


def test_purchases_and_other_accounts_recommendations_are_left_out_unless_asked(
    aws_endpoint: str,
) -> None:
    seed_hub(
        aws_endpoint,
        [
            hub_recommendation("sp-1", region="us-east-1", action="PurchaseSavingsPlans"),
            hub_recommendation("i-member", region="us-east-1", account_id="210987654321"),
            hub_recommendation("i-own", region="us-east-1"),
        ],
    )

    assert [w.resource_id for w in hub(scope_on(aws_endpoint))] == ["i-own"]
    with_purchases = hub(scope_on(aws_endpoint), include_commitment_purchases=True)
    assert sorted(w.resource_id for w in with_purchases) == ["i-own", "sp-1"]


def test_every_page_of_the_hub_is_read(aws_endpoint: str) -> None:
    seed_hub(aws_endpoint, [hub_recommendation(f"i-{n:03d}", region=REGION) for n in range(11)])

    assert len(hub(scope_on(aws_endpoint))) == 11


def test_an_account_not_enrolled_in_the_hub_gets_no_findings_and_is_told_why(
    aws_endpoint: str,
) -> None:
    with pytest.raises(DetectorSkipped) as skipped:
        hub(scope_on(aws_endpoint))

    assert "Cost Optimization Hub is not turned on" in skipped.value.reason
