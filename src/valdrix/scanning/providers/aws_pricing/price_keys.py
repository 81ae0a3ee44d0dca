"""Which AWS price-list products give which catalog price: the one place to extend when a
detector needs a new price.

An ``OfferRule`` picks products of one offer (AmazonEC2, AmazonRDS ...) by their attributes and
usage type, and names the catalog key each picked product prices. Keys may take parts of the
product (``ec2_hour/{instance}`` from ``instanceType``); a part that a ``values`` map does not
list leaves the product out. ``TABLE_RULES`` read the per-region price tables of the aws-clutter
package (``region_tables``) into the same keys.

Usage types carry a region prefix outside us-east-1 (``USE2-BoxUsage:t3.micro``); rules match
them without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class OfferRule:
    key: str  # catalog key, with ``{part}`` placeholders
    offer_code: str
    unit: str  # the catalog's unit
    offer_unit: str  # the offer file's unit for the product (checked)
    # A regular expression the whole usage type (without region prefix) must match; its named
    # groups fill placeholders.
    usage_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)  # must equal
    parts: Mapping[str, str] = field(default_factory=dict)  # placeholder -> attribute
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # placeholder -> map
    scale: Decimal = Decimal(1)  # catalog price = offer price x scale
    # Tiered products: the first tier that costs something, not the first (a free tier).
    skip_free_tier: bool = False


LINUX_ON_DEMAND = {
    "productFamily": "Compute Instance",
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}

OFFER_RULES: tuple[OfferRule, ...] = (
    # --- AmazonEC2: instances, EBS, NAT gateways --------------------------------------------
    OfferRule("ec2_hour/{instance}", "AmazonEC2", "hour", "Hrs",
              attributes=LINUX_ON_DEMAND, parts={"instance": "instanceType"}),
    OfferRule("ebs_gb_month/{volume}", "AmazonEC2", "GB-month", "GB-Mo",
              usage_type=r"EBS:VolumeUsage(\.\w+)?", attributes={"productFamily": "Storage"},
              parts={"volume": "volumeApiName"}),
    OfferRule("ebs_piops_month/{volume}", "AmazonEC2", "IOPS-month", "IOPS-Mo",
              usage_type=r"EBS:VolumeP-IOPS\.(?P<volume>piops|io2)",
              values={"volume": {"piops": "io1", "io2": "io2"}}),
    OfferRule("ebs_piops_month_tiers/io2/{tier}", "AmazonEC2", "IOPS-month", "IOPS-Mo",
              usage_type=r"EBS:VolumeP-IOPS\.io2(?P<tier>|\.tier2|\.tier3)",
              values={"tier": {"": "1", ".tier2": "2", ".tier3": "3"}}),
    OfferRule("ebs_io_requests_million/standard", "AmazonEC2", "million I/O requests", "IOs",
              usage_type=r"EBS:VolumeIOUsage", scale=Decimal(1_000_000)),
    OfferRule("ebs_snapshot_gb_month", "AmazonEC2", "GB-month", "GB-Mo",
              usage_type=r"EBS:SnapshotUsage"),
    OfferRule("nat_gateway_hour", "AmazonEC2", "hour", "Hrs", usage_type=r"NatGateway-Hours"),
    OfferRule("nat_gateway_gb", "AmazonEC2", "GB", "GB", usage_type=r"NatGateway-Bytes"),
    # --- AmazonVPC: public IPv4 addresses, interface endpoints -------------------------------
    OfferRule("public_ipv4_hour", "AmazonVPC", "hour", "Hrs",
              usage_type=r"PublicIPv4:IdleAddress"),
    OfferRule("vpc_interface_endpoint_hour", "AmazonVPC", "hour", "Hrs",
              usage_type=r"VpcEndpoint-Hours"),
    # --- AWSELB -------------------------------------------------------------------------------
    OfferRule("load_balancer_hour/{kind}", "AWSELB", "hour", "Hrs",
              usage_type=r"LoadBalancerUsage", parts={"kind": "productFamily"},
              values={"kind": {"Load Balancer-Application": "application",
                               "Load Balancer-Network": "network",
                               "Load Balancer-Gateway": "gateway",
                               "Load Balancer": "classic"}}),
    # --- AmazonRDS ------------------------------------------------------------------------------
    OfferRule("rds_hour/{engine}/{instance}", "AmazonRDS", "hour", "Hrs",
              attributes={"productFamily": "Database Instance", "deploymentOption": "Single-AZ"},
              parts={"engine": "databaseEngine", "instance": "instanceType"},
              values={"engine": {"MySQL": "mysql", "PostgreSQL": "postgres",
                                 "MariaDB": "mariadb"}}),
    OfferRule("rds_storage_gb_month/{storage}", "AmazonRDS", "GB-month", "GB-Mo",
              usage_type=r"RDS:(?P<storage>GP2-Storage|GP3-Storage|PIOPS-Storage|StorageUsage)",
              attributes={"productFamily": "Database Storage", "deploymentOption": "Single-AZ"},
              values={"storage": {"GP2-Storage": "gp2", "GP3-Storage": "gp3",
                                  "PIOPS-Storage": "io1", "StorageUsage": "standard"}}),
    OfferRule("rds_snapshot_gb_month", "AmazonRDS", "GB-month", "GB-Mo",
              usage_type=r"RDS:ChargedBackupUsage"),
    OfferRule("aurora_backup_gb_month", "AmazonRDS", "GB-month", "GB-Mo",
              usage_type=r"Aurora:BackupUsage"),
    # --- other services ---------------------------------------------------------------------
    OfferRule("logs_storage_gb_month", "AmazonCloudWatch", "GB-month", "GB-Mo",
              usage_type=r"TimedStorage-ByteHrs"),
    *(
        OfferRule(f"dynamodb_capacity_unit_hour/{kind.lower()}", "AmazonDynamoDB",
                  "capacity-unit-hour", f"{kind}CapacityUnit-Hrs",
                  usage_type=rf"{kind}CapacityUnit-Hrs", skip_free_tier=True)
        for kind in ("Read", "Write")
    ),
    OfferRule("efs_gb_month/{storage}", "AmazonEFS", "GB-month", "GB-Mo",
              usage_type=r"(?P<storage>TimedStorage|IATimedStorage|ArchiveTimedStorage"
                         r"|TimedStorage-Z|IATimedStorage-Z)-ByteHrs",
              values={"storage": {"TimedStorage": "standard",
                                  "IATimedStorage": "infrequent_access",
                                  "ArchiveTimedStorage": "archive",
                                  "TimedStorage-Z": "one_zone_standard",
                                  "IATimedStorage-Z": "one_zone_infrequent_access"}}),
    OfferRule("s3_storage_gb_month/{storage}", "AmazonS3", "GB-month", "GB-Mo",
              usage_type=r"TimedStorage(?P<storage>|-SIA|-ZIA|-GIR)-ByteHrs",
              values={"storage": {"": "STANDARD", "-SIA": "STANDARD_IA", "-ZIA": "ONEZONE_IA",
                                  "-GIR": "GLACIER_IR"}}),
    OfferRule("elasticache_hour/{node}", "AmazonElastiCache", "hour", "Hrs",
              attributes={"productFamily": "Cache Instance", "cacheEngine": "Redis"},
              parts={"node": "instanceType"}),
    OfferRule("redshift_node_hour/{node}", "AmazonRedshift", "hour", "Hrs",
              usage_type=r"Node:(?P<node>[\w.]+)",
              attributes={"productFamily": "Compute Instance"}),
    OfferRule("sagemaker_hosting_hour/{instance}", "AmazonSageMaker", "hour", "Hrs",
              usage_type=r"Hosting:(?P<instance>ml\.[\w.]+)"),
    OfferRule("eks_cluster_hour", "AmazonEKS", "hour", "Hrs",
              usage_type=r"AmazonEKS-Hours:perCluster"),
)  # fmt: skip


@dataclass(frozen=True)
class TableRule:
    """One price of an aws-clutter region table: ``path`` inside the region's entry."""

    key: str
    table: str  # ebs or elb
    path: tuple[str, ...]
    unit: str
    scale: Decimal = Decimal(1)


def _ebs(key: str, volume: str, price: str, unit: str, scale: int = 1) -> TableRule:
    return TableRule(key, "ebs", (volume, price, "USD"), unit, Decimal(scale))


TABLE_RULES: tuple[TableRule, ...] = (
    *(
        _ebs(f"ebs_gb_month/{volume}", volume, "pricePerGBMonth", "GB-month")
        for volume in ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
    ),
    _ebs("ebs_piops_month/io1", "io1", "pricePerIOPSMonth", "IOPS-month"),
    _ebs("ebs_piops_month/io2", "io2", "pricePerTier1IOPSMonth", "IOPS-month"),
    *(
        _ebs(f"ebs_piops_month_tiers/io2/{tier}", "io2", f"pricePerTier{tier}IOPSMonth",
             "IOPS-month")
        for tier in (1, 2, 3)
    ),
    _ebs("ebs_io_requests_million/standard", "standard", "pricePerIOs", "million I/O requests",
         1_000_000),
    *(
        TableRule(f"load_balancer_hour/{kind}", "elb",
                  (kind, "region", "LoadBalancerUsage", "pricePerUnit", "USD"), "hour")
        for kind in ("application", "network", "gateway")
    ),
)  # fmt: skip
