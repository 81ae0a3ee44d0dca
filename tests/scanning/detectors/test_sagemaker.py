"""aws.sagemaker-endpoint-idle under moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.sagemaker import (
    IdleSageMakerEndpoint,
    IdleSageMakerEndpointThresholds,
)

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def endpoint(name: str = "churn-model", *variants: dict[str, Any]) -> dict[str, Any]:
    """An in-service endpoint of ``variants`` (default: two ml.m5.xlarge instances)."""
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
    )
    production = [
        {"VariantName": "primary", "ModelName": name} | variant
        for variant in variants or [{"InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 2}]
    ]
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=production)
    sagemaker.create_endpoint(
        EndpointName=name, EndpointConfigName=name, Tags=[{"Key": "team", "Value": "ml"}]
    )
    described: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=name)
    return described


def invocations(name: str, variant: str, total: float, *, end: dt.datetime) -> None:
    """One burst of ``total`` invocations a day before ``end`` (SageMaker publishes nothing for
    periods without requests)."""
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": name},
                    {"Name": "VariantName", "Value": variant},
                ],
                "Timestamp": end - DAY,
                "Value": total,
            }
        ],
    )


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IdleSageMakerEndpointThresholds(**thresholds)
    return {waste.resource_id: waste for waste in IdleSageMakerEndpoint().detect(scope, settings)}


def test_endpoint_nobody_invokes_is_reported_at_its_instance_hours(make_scope: MakeScope) -> None:
    created = endpoint()
    now = created["CreationTime"] + 20 * DAY

    waste = scan(make_scope(now=now))["churn-model"]

    assert waste.resource_type == "sagemaker-endpoint"
    assert waste.tags == {"team": "ml"}
    assert waste.evidence["invocations"] == 0
    assert waste.evidence["instances"] == 2
    assert waste.evidence["lookback_days"] == 14
    # Two ml.m5.xlarge at 0.23 $/h for 730 hours.
    assert waste.price.monthly_usd == Decimal("167.90") * 2
    assert waste.price.basis == "list_price"
    assert waste.price.detail["estimated"] is False


def test_endpoint_whose_second_variant_serves_requests_is_not_reported(
    make_scope: MakeScope,
) -> None:
    created = endpoint(
        "churn-model",
        {"VariantName": "primary", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1},
        {"VariantName": "challenger", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
    )
    now = created["CreationTime"] + 20 * DAY
    invocations("churn-model", "challenger", 1200, end=now)

    assert scan(make_scope(now=now)) == {}


def test_serverless_endpoint_is_not_judged(make_scope: MakeScope) -> None:
    serverless = {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    created = endpoint("churn-model", serverless)
    now = created["CreationTime"] + 20 * DAY

    assert scan(make_scope(now=now)) == {}


def test_endpoint_younger_than_the_lookback_is_not_judged(make_scope: MakeScope) -> None:
    created = endpoint()
    now = created["CreationTime"] + 10 * DAY

    assert scan(make_scope(now=now)) == {}


def test_instance_type_missing_from_the_catalog_is_priced_unknown_with_why(
    make_scope: MakeScope,
) -> None:
    created = endpoint("churn-model", {"InstanceType": "ml.inf1.xlarge", "InitialInstanceCount": 1})
    now = created["CreationTime"] + 20 * DAY

    waste = scan(make_scope(now=now))["churn-model"]

    assert waste.price.basis == "unknown"
    assert "ml.inf1.xlarge" in waste.price.detail["why"]


@pytest.mark.parametrize(("calls", "reported"), [(25.0, True), (26.0, False)])
def test_invocations_at_the_threshold_count_as_idle(
    make_scope: MakeScope, calls: float, reported: bool
) -> None:
    created = endpoint()
    now = created["CreationTime"] + 20 * DAY
    invocations("churn-model", "primary", calls, end=now)

    assert ("churn-model" in scan(make_scope(now=now), max_invocations=25)) is reported
