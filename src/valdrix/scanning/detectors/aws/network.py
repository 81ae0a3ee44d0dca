"""Network waste: Elastic IPs nothing uses or that only a stopped instance holds, and NAT gateways
and interface VPC endpoints that carry no traffic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from valdrix.scanning.ages import age_days, is_at_least_days_old
from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste, tags_of
from valdrix.scanning.cloudwatch import MetricQuery
from valdrix.scanning.detectors.aws._common import CloudWatchIdleDetector, hourly_price
from valdrix.scanning.detectors.aws._ec2_common import (
    region_addresses,
    region_instances_in,
    stopped_since,
)
from valdrix.scanning.idle import IdleResource, LookbackThresholds
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
        for address in region_addresses(scope):
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


class StoppedInstanceAddressThresholds(Thresholds):
    stopped_days: int = Field(
        default=7,
        ge=0,
        description="Report an address once the instance holding it has been stopped for at "
        "least this many days.",
    )


@detectors.register("aws.public-ipv4-on-stopped-instance")
class StoppedInstanceAddress(Detector):
    """Flags Elastic IP addresses associated with an instance that has been stopped for longer
    than the threshold.

    AWS bills every public IPv4 address by the hour. A stopped instance gives back its
    auto-assigned public address, but an Elastic IP stays with it and is billed all the while the
    instance does nothing. Instances whose stop time AWS does not report are not judged.
    """

    provider = "aws"
    resource_type = "elastic-ip"
    permissions = ("ec2:DescribeAddresses", "ec2:DescribeInstances")
    thresholds = StoppedInstanceAddressThresholds

    def detect(
        self, scope: RegionScope, thresholds: StoppedInstanceAddressThresholds
    ) -> Iterator[Waste]:
        held = [
            address
            for address in region_addresses(scope)
            if address.get("InstanceId") and address.get("PublicIpv4Pool", "amazon") == "amazon"
        ]
        stopped: dict[str, Any] = (
            {i["InstanceId"]: i for i in region_instances_in(scope, "stopped")} if held else {}
        )
        for address in held:
            instance = stopped.get(address["InstanceId"])
            stopped_at = stopped_since(instance) if instance else None
            if stopped_at is None or not is_at_least_days_old(
                stopped_at, scope.now, thresholds.stopped_days
            ):
                continue
            public_ip = address["PublicIp"]
            tags = tags_of(address.get("Tags"))
            days = age_days(stopped_at, scope.now)
            yield Waste(
                resource_id=address.get("AllocationId") or public_ip,
                resource_type=self.resource_type,
                reason=f"Elastic IP {public_ip} is held by instance {address['InstanceId']}, "
                f"stopped for {days:.0f} days",
                price=hourly_price(
                    scope, scope.prices.public_ipv4_hour(scope.region), what="public IPv4 address"
                ),
                evidence={
                    "public_ip": public_ip,
                    "instance_id": address["InstanceId"],
                    "stopped_at": stopped_at.isoformat(),
                    "stopped_days": days,
                    "stopped_days_threshold": thresholds.stopped_days,
                },
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
class IdleNatGateway(CloudWatchIdleDetector[IdleNatGatewayThresholds]):
    """Flags available NAT gateways that sent no traffic to any destination over the lookback.

    A NAT gateway is billed for every hour it exists, on top of the data it processes, so one
    that carries no traffic costs its full hourly rate for nothing. Gateways younger than the
    lookback, and gateways with no CloudWatch datapoints at all, are not judged.
    """

    provider = "aws"
    resource_type = "nat-gateway"
    permissions = ("ec2:DescribeNatGateways", "cloudwatch:GetMetricData")
    thresholds = IdleNatGatewayThresholds
    created_field = "CreateTime"
    window_figure = "total"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        paginator = scope.client("ec2").get_paginator("describe_nat_gateways")
        return [
            gateway
            for page in paginator.paginate()
            for gateway in page["NatGateways"]
            if gateway["State"] == "available"
        ]

    def metric_queries(self, position: int, gateway: dict[str, Any]) -> list[MetricQuery]:
        return [
            MetricQuery(
                id=f"nat{position}",
                namespace="AWS/NATGateway",
                metric="BytesOutToDestination",
                dimensions=(("NatGatewayId", gateway["NatGatewayId"]),),
                stat="Sum",
            )
        ]

    def idle_limits(self, thresholds: IdleNatGatewayThresholds) -> tuple[float, ...]:
        return (thresholds.max_bytes,)

    def waste(
        self, scope: RegionScope, idle: IdleResource[dict[str, Any], IdleNatGatewayThresholds]
    ) -> Waste:
        gateway, thresholds = idle.resource, idle.thresholds
        [bytes_out], [datapoints] = idle.figures, idle.datapoints
        tags = tags_of(gateway.get("Tags"))
        return Waste(
            resource_id=gateway["NatGatewayId"],
            resource_type=self.resource_type,
            reason=f"NAT gateway sent {bytes_out:.0f} bytes to destinations in the last "
            f"{thresholds.lookback_days} days",
            price=hourly_price(
                scope, scope.prices.nat_gateway_hour(scope.region), what="NAT gateway hour"
            ),
            evidence={
                "bytes_out_to_destination": bytes_out,
                "datapoints": datapoints,
                **idle.window_evidence(),
                **idle.age_evidence(),
                "max_bytes": thresholds.max_bytes,
            },
            resource_name=tags.get("Name"),
            tags=tags,
        )


class IdleInterfaceEndpointThresholds(LookbackThresholds):
    lookback_days: int = Field(
        14,
        ge=1,
        description="Days of CloudWatch BytesProcessed to sum; endpoints younger than this (or "
        "min_age_days) are not judged.",
    )
    max_bytes: int = Field(
        0,
        ge=0,
        description="An endpoint that processed at most this many bytes over the lookback is idle.",
    )


@detectors.register("aws.vpc-endpoint-idle")
class IdleInterfaceEndpoint(CloudWatchIdleDetector[IdleInterfaceEndpointThresholds]):
    """Flags available interface VPC endpoints (PrivateLink) that processed no data over the
    lookback.

    An interface endpoint is billed for every hour it exists in every Availability Zone it has a
    network interface in, on top of the data it processes, so one nothing sends traffic through
    costs its hourly rate times its zones for nothing (gateway endpoints are free and are not
    judged). Endpoints younger than the lookback, and endpoints with no CloudWatch datapoints,
    are not judged.
    """

    provider = "aws"
    resource_type = "vpc-endpoint"
    permissions = ("ec2:DescribeVpcEndpoints", "cloudwatch:GetMetricData")
    thresholds = IdleInterfaceEndpointThresholds
    created_field = "CreationTimestamp"
    window_figure = "total"

    def list_resources(self, scope: RegionScope) -> list[dict[str, Any]]:
        paginator = scope.client("ec2").get_paginator("describe_vpc_endpoints")
        filters = [{"Name": "vpc-endpoint-type", "Values": ["Interface"]}]
        return [
            endpoint
            for page in paginator.paginate(Filters=filters)
            for endpoint in page["VpcEndpoints"]
            if endpoint["VpcEndpointType"] == "Interface"
            and endpoint["State"].lower() == "available"
        ]

    def metric_queries(self, position: int, endpoint: dict[str, Any]) -> list[MetricQuery]:
        # PrivateLink publishes each endpoint's metrics under all four dimensions together.
        dimensions = (
            ("Endpoint Type", "Interface"),
            ("Service Name", endpoint["ServiceName"]),
            ("VPC Endpoint Id", endpoint["VpcEndpointId"]),
            ("VPC Id", endpoint["VpcId"]),
        )
        return [
            MetricQuery(
                f"vpce{position}", "AWS/PrivateLinkEndpoints", "BytesProcessed", dimensions, "Sum"
            )
        ]

    def idle_limits(self, thresholds: IdleInterfaceEndpointThresholds) -> tuple[float, ...]:
        return (thresholds.max_bytes,)

    def waste(
        self,
        scope: RegionScope,
        idle: IdleResource[dict[str, Any], IdleInterfaceEndpointThresholds],
    ) -> Waste:
        endpoint, thresholds = idle.resource, idle.thresholds
        [processed], [datapoints] = idle.figures, idle.datapoints
        zones = len(endpoint.get("SubnetIds") or []) or len(
            endpoint.get("NetworkInterfaceIds") or []
        )
        tags = tags_of(endpoint.get("Tags"))
        return Waste(
            resource_id=endpoint["VpcEndpointId"],
            resource_type=self.resource_type,
            reason=f"interface endpoint for {endpoint['ServiceName']} processed {processed:.0f} "
            f"bytes in the last {thresholds.lookback_days} days, in {zones} zone(s)",
            price=hourly_price(
                scope,
                scope.prices.vpc_interface_endpoint_hour(scope.region),
                what="interface VPC endpoint hour per Availability Zone",
                quantity=zones,
            ),
            evidence={
                "service_name": endpoint["ServiceName"],
                "vpc_id": endpoint["VpcId"],
                "availability_zones": zones,
                "bytes_processed": processed,
                "datapoints": datapoints,
                **idle.window_evidence(),
                **idle.age_evidence(),
                "max_bytes": thresholds.max_bytes,
            },
            resource_name=tags.get("Name"),
            tags=tags,
        )
