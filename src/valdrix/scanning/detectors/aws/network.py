"""Network waste: Elastic IPs nothing uses and NAT gateways that carry no traffic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from pydantic import Field

from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery, fetch_metrics
from valdrix.scanning.detectors.aws._common import (
    LookbackThresholds,
    age_days,
    hourly_price,
    is_at_least_days_old,
)
from valdrix.scanning.registry import detectors


class UnassociatedElasticIpThresholds(Thresholds):
    """Nothing to tune: an Elastic IP is billed from the hour it is allocated, so any idle one
    counts (AWS does not report when an address was allocated or last associated)."""


@detectors.register("aws.eip-unassociated")
class UnassociatedElasticIp(Detector):
    """Flags Elastic IP addresses that are not associated with an instance or network interface.

    AWS bills every public IPv4 address by the hour whether or not it is in use, so an address
    nothing points at is pure cost until it is released.
    """

    provider = "aws"
    resource_type = "elastic-ip"
    permissions = ("ec2:DescribeAddresses",)
    thresholds = UnassociatedElasticIpThresholds

    def detect(
        self, scope: RegionScope, thresholds: UnassociatedElasticIpThresholds
    ) -> Iterator[Waste]:
        # DescribeAddresses is not paginated: one call returns every address in the region.
        for address in scope.client("ec2").describe_addresses()["Addresses"]:
            if address.get("AssociationId"):
                continue
            # Addresses brought from the customer's own range (BYOIP) carry no IPv4 charge.
            if address.get("PublicIpv4Pool", "amazon") != "amazon":
                continue
            public_ip = address["PublicIp"]
            tags = tags_of(address.get("Tags"))
            yield Waste(
                resource_id=address.get("AllocationId") or public_ip,
                resource_type=self.resource_type,
                reason=f"Elastic IP {public_ip} is not associated with anything",
                price=hourly_price(
                    scope, scope.prices.public_ipv4_hour(scope.region), what="public IPv4 address"
                ),
                evidence={"public_ip": public_ip, "association_id": None},
                resource_name=tags.get("Name") or public_ip,
                tags=tags,
            )


class IdleNatGatewayThresholds(LookbackThresholds):
    lookback_days: int = Field(
        14,
        ge=1,
        description="Days of CloudWatch BytesOutToDestination to sum; gateways younger than "
        "this (or min_age_days) are not judged.",
    )
    max_bytes: int = Field(
        0,
        ge=0,
        description="A gateway that sent at most this many bytes to destinations over the "
        "lookback is idle.",
    )


@detectors.register("aws.nat-gateway-idle")
class IdleNatGateway(Detector):
    """Flags available NAT gateways that sent no traffic to any destination over the lookback.

    A NAT gateway is billed for every hour it exists, on top of the data it processes, so one
    that carries no traffic costs its full hourly rate for nothing. Gateways younger than the
    lookback, and gateways with no CloudWatch datapoints at all, are not judged.
    """

    provider = "aws"
    resource_type = "nat-gateway"
    permissions = ("ec2:DescribeNatGateways", "cloudwatch:GetMetricData")
    thresholds = IdleNatGatewayThresholds

    def detect(self, scope: RegionScope, thresholds: IdleNatGatewayThresholds) -> Iterator[Waste]:
        window_start = scope.now - dt.timedelta(days=thresholds.lookback_days)
        paginator = scope.client("ec2").get_paginator("describe_nat_gateways")
        gateways = [
            gateway
            for page in paginator.paginate()
            for gateway in page["NatGateways"]
            if gateway["State"] == "available"
            and is_at_least_days_old(
                gateway["CreateTime"], scope.now, thresholds.judged_from_age_days
            )
        ]
        if not gateways:
            return
        queries = [
            MetricQuery(
                id=f"nat{index}",
                namespace="AWS/NATGateway",
                metric="BytesOutToDestination",
                dimensions=(("NatGatewayId", gateway["NatGatewayId"]),),
                stat="Sum",
            )
            for index, gateway in enumerate(gateways)
        ]
        values = fetch_metrics(scope.client("cloudwatch"), queries, window_start, scope.now)
        hourly = scope.prices.nat_gateway_hour(scope.region)
        for query, gateway in zip(queries, gateways, strict=True):
            datapoints = values[query.id]
            bytes_out = sum(datapoints)
            if not datapoints or bytes_out > thresholds.max_bytes:
                continue
            gateway_id = gateway["NatGatewayId"]
            tags = tags_of(gateway.get("Tags"))
            yield Waste(
                resource_id=gateway_id,
                resource_type=self.resource_type,
                reason=f"NAT gateway sent {bytes_out:.0f} bytes to destinations in the last "
                f"{thresholds.lookback_days} days",
                price=hourly_price(scope, hourly, what="NAT gateway hour"),
                evidence={
                    "bytes_out_to_destination": bytes_out,
                    "datapoints": len(datapoints),
                    "window_start": window_start.isoformat(),
                    "window_end": scope.now.isoformat(),
                    "age_days": age_days(gateway["CreateTime"], scope.now),
                    "lookback_days": thresholds.lookback_days,
                    "min_age_days": thresholds.judged_from_age_days,
                    "max_bytes": thresholds.max_bytes,
                },
                resource_name=tags.get("Name"),
                tags=tags,
            )
