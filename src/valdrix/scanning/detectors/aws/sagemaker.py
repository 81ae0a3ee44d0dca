"""SageMaker waste: real-time inference endpoints nobody invokes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

from valdrix.scanning.base import Price, RegionScope, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import CloudWatchIdleDetector
from valdrix.scanning.idle import IdleResource, LookbackThresholds
from valdrix.scanning.registry import detectors

# Key under which ``list_resources`` adds each variant's instance type and count (from the
# endpoint's configuration) to DescribeEndpoint's answer.
VARIANTS = "ValdrixVariants"


class IdleSageMakerEndpointThresholds(LookbackThresholds):
    lookback_days: int = Field(
        14,
        ge=1,
        description="Days of CloudWatch Invocations to sum; endpoints younger than this (or "
        "min_age_days) are not judged.",
    )
    max_invocations: int = Field(
        0,
        ge=0,
        description="An endpoint whose variants were invoked at most this many times in all over "
        "the lookback is idle.",
    )


@detectors.register("aws.sagemaker-endpoint-idle")
class IdleSageMakerEndpoint(CloudWatchIdleDetector[IdleSageMakerEndpointThresholds]):
    """Flags in-service SageMaker real-time inference endpoints whose production variants were
    not invoked over the lookback.

    A real-time endpoint bills every instance of every instance-backed variant for every hour it
    is in service, whether or not a request arrives; it never scales to zero on its own.
    SageMaker publishes ``Invocations`` only for periods with requests, so a variant with no
    datapoints over the lookback counts as never invoked. Endpoints younger than the lookback,
    and endpoints with serverless variants only (billed per request), are not judged.
    """

    provider = "aws"
    resource_type = "sagemaker-endpoint"
    permissions = (
        "sagemaker:ListEndpoints",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:ListTags",
        "cloudwatch:GetMetricData",
    )
    thresholds = IdleSageMakerEndpointThresholds
    created_field = "CreationTime"
    window_figure = "total"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        sagemaker = scope.client("sagemaker")
        names = [
            summary["EndpointName"]
            for page in sagemaker.get_paginator("list_endpoints").paginate(StatusEquals="InService")
            for summary in page.get("Endpoints", [])
        ]
        endpoints = []
        # Only DescribeEndpoint and its configuration say which instances an endpoint runs.
        for name in names:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
            config = sagemaker.describe_endpoint_config(
                EndpointConfigName=endpoint["EndpointConfigName"]
            )
            variants = _variants(endpoint, config)
            if any(variant["instances"] for variant in variants):
                endpoints.append({**endpoint, VARIANTS: variants})
        return endpoints

    def metric_queries(self, position: int, endpoint: dict[str, Any]) -> list[MetricQuery]:
        return [
            MetricQuery(
                f"sm{position}_{number}",
                "AWS/SageMaker",
                "Invocations",
                (("EndpointName", endpoint["EndpointName"]), ("VariantName", variant["name"])),
                "Sum",
            )
            for number, variant in enumerate(endpoint[VARIANTS])
        ]

    def min_datapoints(self, thresholds: IdleSageMakerEndpointThresholds) -> int:
        # Invocations has datapoints only where there were requests: none is zero, not unknown.
        return 0

    def judged_figures(self, figures: tuple[float, ...]) -> tuple[float, ...]:
        # Every variant's invocations as one total.
        return (sum(figures),)

    def idle_limits(self, thresholds: IdleSageMakerEndpointThresholds) -> tuple[float, ...]:
        return (thresholds.max_invocations,)

    def waste(
        self,
        scope: RegionScope,
        idle: IdleResource[dict[str, Any], IdleSageMakerEndpointThresholds],
    ) -> Waste:
        endpoint, thresholds = idle.resource, idle.thresholds
        [invocations] = idle.judged_figures
        variants = endpoint[VARIANTS]
        instances = sum(variant["instances"] for variant in variants)
        tags = scope.client("sagemaker").list_tags(ResourceArn=endpoint["EndpointArn"])
        return Waste(
            resource_id=endpoint["EndpointName"],
            resource_type=self.resource_type,
            reason=f"endpoint was invoked {invocations:.0f} times in the last "
            f"{thresholds.lookback_days} days while running {instances} instances",
            price=_instances_price(scope, variants),
            evidence={
                "invocations": invocations,
                "variants": [
                    variant | {"invocations": figure}
                    for variant, figure in zip(variants, idle.figures, strict=True)
                ],
                "instances": instances,
                "datapoints": sum(idle.datapoints),
                **idle.window_evidence(),
                **idle.age_evidence(),
                "max_invocations": thresholds.max_invocations,
            },
            resource_name=endpoint["EndpointName"],
            tags=tags_of(tags.get("Tags")),
        )


def _variants(endpoint: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Each production variant's name, instance type and running instances (0 if serverless)."""
    configured = {v["VariantName"]: v for v in config.get("ProductionVariants", [])}
    variants = []
    for variant in endpoint.get("ProductionVariants", []):
        name = variant["VariantName"]
        settings = configured.get(name, {})
        serverless = "ServerlessConfig" in settings or "CurrentServerlessConfig" in variant
        instances = int(
            variant.get("CurrentInstanceCount") or settings.get("InitialInstanceCount") or 0
        )
        variants.append(
            {
                "name": name,
                "instance_type": settings.get("InstanceType"),
                "instances": 0 if serverless else instances,
                "serverless": serverless,
            }
        )
    return variants


def _instances_price(scope: RegionScope, variants: list[dict[str, Any]]) -> Price:
    """Every instance-backed variant's instances at their hourly price, for a month."""
    total = Decimal("0")
    lines = []
    estimated = False
    for variant in variants:
        if not variant["instances"]:
            continue
        instance_type = variant["instance_type"]
        quote = scope.prices.sagemaker_hosting_hour(scope.region, instance_type)
        if quote is None:
            return Price.unknown(
                f"the price catalog has no real-time inference price for {instance_type}"
            )
        monthly = scope.prices.monthly(quote) * variant["instances"]
        estimated = estimated or quote.estimated
        total += monthly
        lines.append(
            {
                "variant": variant["name"],
                "instance_type": instance_type,
                "instances": variant["instances"],
                "unit_price_usd": str(quote.unit_price),
                "monthly_usd": str(monthly),
            }
        )
    return Price(
        total,
        "list_price",
        {
            "unit": "hour",
            "estimated": estimated,
            "catalog_as_of": scope.prices.as_of.isoformat(),
            "hours_per_month": str(scope.prices.hours_per_month),
            "variants": lines,
            "note": "instance hours only: storage volumes and data processed are not counted",
        },
    )
