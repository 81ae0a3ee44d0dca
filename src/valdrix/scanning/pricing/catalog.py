"""Lookups in the shipped price catalog (``aws_prices.json``): list prices, never guesses.

Every quote says whether it is exact for the region or *estimated* (a region the catalog does not
price, quoted at the reference region's price). A resource the catalog cannot price gets no quote
at all, and its finding says ``unknown``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Quote:
    unit_price: Decimal
    unit: str
    estimated: bool

    def detail(self, catalog: PriceCatalog) -> dict[str, Any]:
        return {
            "unit_price_usd": str(self.unit_price),
            "unit": self.unit,
            "estimated": self.estimated,
            "catalog_as_of": catalog.as_of.isoformat(),
        }


class PriceCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.source: str = data["source"]
        self.as_of = dt.date.fromisoformat(data["as_of"])
        self.hours_per_month = Decimal(str(data["hours_per_month"]))
        self.priced_regions = frozenset(data["priced_regions"])

    def _quote(self, region: str, unit: str, *path: str) -> Quote | None:
        node: Any = self._data
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return Quote(Decimal(str(node)), unit, estimated=region not in self.priced_regions)

    def monthly(self, hourly: Quote) -> Decimal:
        return (hourly.unit_price * self.hours_per_month).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def ebs_gb_month(self, region: str, volume_type: str) -> Quote | None:
        return self._quote(region, "GB-month", "ebs_gb_month", volume_type)

    def ebs_piops_month(self, region: str, volume_type: str) -> Quote | None:
        return self._quote(region, "IOPS-month", "ebs_piops_month", volume_type)

    def ebs_piops_month_tiers(
        self, region: str, volume_type: str
    ) -> list[tuple[int | None, Quote]] | None:
        """Provisioned IOPS priced by tier: each tier's upper bound in IOPS (None: no bound) and
        its IOPS-month price, lowest tier first; None if the type has no tiered price."""
        tiers = self._data.get("ebs_piops_month_tiers", {}).get(volume_type)
        if tiers is None:
            return None
        estimated = region not in self.priced_regions
        return [
            (bound, Quote(Decimal(str(price)), "IOPS-month", estimated)) for bound, price in tiers
        ]

    def ebs_io_requests_million(self, region: str, volume_type: str) -> Quote | None:
        """A million I/O requests on a volume type that bills them (Magnetic, ``standard``)."""
        return self._quote(region, "million I/O requests", "ebs_io_requests_million", volume_type)

    def ebs_snapshot_gb_month(self, region: str) -> Quote | None:
        return self._quote(region, "GB-month", "ebs_snapshot_gb_month")

    def public_ipv4_hour(self, region: str) -> Quote | None:
        return self._quote(region, "hour", "public_ipv4_hour")

    def nat_gateway_hour(self, region: str) -> Quote | None:
        return self._quote(region, "hour", "nat_gateway_hour")

    def vpc_interface_endpoint_hour(self, region: str) -> Quote | None:
        """An interface VPC endpoint in one Availability Zone for an hour (data not included)."""
        return self._quote(region, "hour", "vpc_interface_endpoint_hour")

    def load_balancer_hour(self, region: str, kind: str) -> Quote | None:
        return self._quote(region, "hour", "load_balancer_hour", kind)

    def ec2_hour(self, region: str, instance_type: str) -> Quote | None:
        return self._quote(region, "hour", "ec2_hour", instance_type)

    def rds_hour(self, region: str, engine: str, instance_class: str) -> Quote | None:
        return self._quote(region, "hour", "rds_hour", _rds_engine(engine), instance_class)

    def rds_storage_gb_month(self, region: str, storage_type: str) -> Quote | None:
        return self._quote(region, "GB-month", "rds_storage_gb_month", storage_type)

    def rds_snapshot_gb_month(self, region: str) -> Quote | None:
        return self._quote(region, "GB-month", "rds_snapshot_gb_month")

    def aurora_backup_gb_month(self, region: str) -> Quote | None:
        """Aurora backup storage beyond the free retention: what manual cluster snapshots bill."""
        return self._quote(region, "GB-month", "aurora_backup_gb_month")

    def logs_storage_gb_month(self, region: str) -> Quote | None:
        """CloudWatch Logs archived (stored) log data."""
        return self._quote(region, "GB-month", "logs_storage_gb_month")

    def s3_storage_gb_month(self, region: str, storage_class: str) -> Quote | None:
        """S3 storage by storage class (``STANDARD``, ``STANDARD_IA`` ...), first tier."""
        return self._quote(region, "GB-month", "s3_storage_gb_month", storage_class)

    def dynamodb_capacity_unit_hour(self, region: str, kind: str) -> Quote | None:
        """One provisioned ``read`` or ``write`` capacity unit for an hour (Standard tables)."""
        return self._quote(region, "capacity-unit-hour", "dynamodb_capacity_unit_hour", kind)

    def efs_gb_month(self, region: str, storage_class: str) -> Quote | None:
        """EFS storage by class: ``standard``, ``infrequent_access``, ``archive``, and their
        ``one_zone_`` variants."""
        return self._quote(region, "GB-month", "efs_gb_month", storage_class)

    def elasticache_hour(self, region: str, node_type: str) -> Quote | None:
        return self._quote(region, "hour", "elasticache_hour", node_type)

    def redshift_node_hour(self, region: str, node_type: str) -> Quote | None:
        """One node of a provisioned Redshift cluster for an hour (on demand)."""
        return self._quote(region, "hour", "redshift_node_hour", node_type)

    def sagemaker_hosting_hour(self, region: str, instance_type: str) -> Quote | None:
        """One real-time inference (hosting) instance for an hour (on demand)."""
        return self._quote(region, "hour", "sagemaker_hosting_hour", instance_type)

    def eks_cluster_hour(self, region: str) -> Quote | None:
        """An EKS cluster's control plane for an hour, Kubernetes version in standard support."""
        return self._quote(region, "hour", "eks_cluster_hour")


def _rds_engine(engine: str) -> str:
    engine = engine.lower()
    if "postgres" in engine:
        return "postgres"
    if "mariadb" in engine:
        return "mariadb"
    if "mysql" in engine:
        return "mysql"
    return engine


@lru_cache(maxsize=1)
def aws_catalog() -> PriceCatalog:
    raw = resources.files("valdrix.scanning.pricing").joinpath("aws_prices.json").read_text()
    return PriceCatalog(json.loads(raw))
