"""Lookups in a shipped, generated price catalog: list prices, never guesses.

A catalog (one per provider, built offline from the provider's published price files) holds,
per region, the list prices its inputs gave for that region and where each came from. A quote
for a region the inputs covered is that region's list price. A quote for a price the region's
inputs lack is the catalog's reference region's list price, marked *estimated* with the reason.
A price the reference region lacks too gets no quote at all, and its finding says ``unknown``.

The catalog file (see ``load_catalog``)::

    {"as_of": "2025-06-01", "currency": "USD", "hours_per_month": 730,
     "reference_region": "r1", "regions": ["r1", "r2", ...],
     "sources": {"<id>": {"as_of": "2025-06-01", "file": "...", ...}},
     "prices": {"r1": {"<key>": {"usd": "0.10", "unit": "GB-month", "source": "<id>", ...}}}}

Keys are the provider's own (``disk_gb_month/ssd``); each price names its source, and may say
more about where in the source it was found (a SKU, an entry).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Quote:
    unit_price: Decimal
    unit: str
    estimated: bool
    # The date of the price's source, and where it was found (source file, SKU ...).
    as_of: dt.date
    source: dict[str, str] = field(default_factory=dict)
    # Why the price is not the region's own list price (set when ``estimated``).
    estimated_because: str | None = None

    def detail(self, catalog: PriceCatalog) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "unit_price_usd": str(self.unit_price),
            "unit": self.unit,
            "estimated": self.estimated,
            "catalog_as_of": self.as_of.isoformat(),
            "price_source": self.source,
        }
        if self.estimated_because:
            detail["estimated_because"] = self.estimated_because
        return detail


class PriceCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self._prices: dict[str, dict[str, dict[str, str]]] = data["prices"]
        self._sources: dict[str, dict[str, str]] = data["sources"]
        self.as_of = dt.date.fromisoformat(data["as_of"])
        self.hours_per_month = Decimal(str(data["hours_per_month"]))
        self.reference_region: str = data["reference_region"]
        # The regions the catalog answers for (with their own prices or estimated).
        self.regions: tuple[str, ...] = tuple(data["regions"])

    def listed_regions(self) -> frozenset[str]:
        """Regions with at least one price of their own."""
        return frozenset(region for region, prices in self._prices.items() if prices)

    def keys(self, region: str) -> frozenset[str]:
        """The keys priced from ``region``'s own input."""
        return frozenset(self._prices.get(region, {}))

    def quote(self, region: str, key: str, unit: str) -> Quote | None:
        """``region``'s list price for ``key``; else the reference region's, estimated; else
        None."""
        own = self._prices.get(region, {}).get(key)
        if own is not None:
            return self._as_quote(own, unit, None)
        reference = self._prices.get(self.reference_region, {}).get(key)
        if reference is None:
            return None
        if self._prices.get(region):
            why = f"the price inputs for {region} have no price for {key}"
        else:
            why = f"no price input for {region}"
        why += f"; quoted at the {self.reference_region} list price"
        return self._as_quote(reference, unit, why)

    def _as_quote(self, price: dict[str, str], unit: str, estimated_because: str | None) -> Quote:
        if price["unit"] != unit:
            # A catalog built from different rules than the lookups expect: refuse to mix units.
            raise ValueError(f"catalog price is per {price['unit']}, asked per {unit}")
        source = self._sources[price["source"]]
        where = {k: v for k, v in price.items() if k not in ("usd", "unit", "source")}
        return Quote(
            unit_price=Decimal(price["usd"]),
            unit=unit,
            estimated=estimated_because is not None,
            as_of=dt.date.fromisoformat(source["as_of"]),
            source={k: v for k, v in source.items() if k != "as_of"} | where,
            estimated_because=estimated_because,
        )

    def _quote(self, region: str, unit: str, *path: str) -> Quote | None:
        return self.quote(region, "/".join(path), unit)

    def monthly(self, hourly: Quote) -> Decimal:
        return (hourly.unit_price * self.hours_per_month).quantize(Decimal("0.01"), ROUND_HALF_UP)

    # The named lookups the detectors use; each is one key family of the catalog.

    def ebs_gb_month(self, region: str, volume_type: str) -> Quote | None:
        return self._quote(region, "GB-month", "ebs_gb_month", volume_type)

    def ebs_piops_month(self, region: str, volume_type: str) -> Quote | None:
        return self._quote(region, "IOPS-month", "ebs_piops_month", volume_type)

    def ebs_piops_month_tiers(
        self, region: str, volume_type: str
    ) -> list[tuple[int | None, Quote]] | None:
        """Provisioned IOPS priced by tier: each tier's upper bound in IOPS (None: no bound) and
        its IOPS-month price, lowest tier first; None if the type has no tiered price."""
        bounds = PIOPS_TIER_BOUNDS.get(volume_type)
        if bounds is None:
            return None
        tiers: list[tuple[int | None, Quote]] = []
        for number, bound in enumerate(bounds, start=1):
            quote = self._quote(
                region, "IOPS-month", "ebs_piops_month_tiers", volume_type, str(number)
            )
            if quote is None:
                return None
            tiers.append((bound, quote))
        return tiers

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


# Upper bounds (IOPS) of the provisioned-IOPS price tiers; None: no bound. The catalog holds one
# price per tier (``ebs_piops_month_tiers/<type>/<tier number>``).
PIOPS_TIER_BOUNDS: dict[str, tuple[int | None, ...]] = {"io2": (32000, 64000, None)}


def _rds_engine(engine: str) -> str:
    engine = engine.lower()
    if "postgres" in engine:
        return "postgres"
    if "mariadb" in engine:
        return "mariadb"
    if "mysql" in engine:
        return "mysql"
    return engine


def load_catalog(package: str, name: str) -> PriceCatalog:
    """The catalog file ``name`` shipped in ``package``."""
    raw = resources.files(package).joinpath(name).read_text()
    return PriceCatalog(json.loads(raw))
