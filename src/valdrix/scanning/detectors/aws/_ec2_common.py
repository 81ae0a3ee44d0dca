"""What the EBS and EC2 detectors share: paged EC2 describes, when an instance stopped, what
instances cost on demand and EBS volumes and snapshots at list price."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from valdrix.scanning.base import CostPart, Price, RegionScope, Waste, tags_of
from valdrix.scanning.detectors.aws._common import (
    EC2_INSTANCE_COST,
    age_days,
    gb_month_price,
    hourly_price,
    is_at_least_days_old,
)

# Everything an EBS volume bills (storage and provisioned performance): priced by the volume's own
# findings (in full, or the part a cheaper type saves) and by its stopped instance's.
VOLUME_COST = "ebs-volume"
# AWS writes "User initiated (2024-01-02 10:00:00 GMT)"; moto writes UTC.
_STOP_TIME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")


def region_volumes(scope: RegionScope) -> tuple[dict[str, Any], ...]:
    """Every volume of the scope's region, described once per scan for all the detectors that
    judge volumes (each filters them itself)."""
    return scope.shared.read(
        "ec2:DescribeVolumes", lambda: tuple(describe_volumes(scope.client("ec2")))
    )


def region_instances(scope: RegionScope) -> tuple[dict[str, Any], ...]:
    """Every instance of the scope's region (in any state), described once per scan."""
    return scope.shared.read(
        "ec2:DescribeInstances", lambda: tuple(describe_instances(scope.client("ec2")))
    )


def region_instances_in(scope: RegionScope, *states: str) -> Iterator[dict[str, Any]]:
    """The region's instances in one of ``states`` (``running``, ``stopped`` ...)."""
    return (i for i in region_instances(scope) if i["State"]["Name"] in states)


def region_own_images(scope: RegionScope) -> tuple[dict[str, Any], ...]:
    """Every AMI the account owns in the scope's region, described once per scan."""
    return scope.shared.read(
        "ec2:DescribeImages", lambda: tuple(describe_own_images(scope.client("ec2")))
    )


def region_addresses(scope: RegionScope) -> tuple[dict[str, Any], ...]:
    """Every Elastic IP of the scope's region, described once per scan (DescribeAddresses is
    not paginated: one call returns them all)."""
    return scope.shared.read(
        "ec2:DescribeAddresses",
        lambda: tuple(scope.client("ec2").describe_addresses()["Addresses"]),
    )


def describe_volumes(ec2: Any) -> Iterator[dict[str, Any]]:
    """Every volume of the client's region, page after page."""
    for page in ec2.get_paginator("describe_volumes").paginate():
        yield from page.get("Volumes", [])


def describe_instances(ec2: Any) -> Iterator[dict[str, Any]]:
    """Every instance of the client's region, page after page, reservations flattened."""
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page.get("Reservations", []):
            yield from reservation.get("Instances", [])


def describe_own_images(ec2: Any) -> Iterator[dict[str, Any]]:
    """Every AMI the scanned account owns, page after page."""
    for page in ec2.get_paginator("describe_images").paginate(Owners=["self"]):
        yield from page.get("Images", [])


@dataclass(frozen=True)
class StoppedInstance:
    instance: dict[str, Any]
    stopped_at: dt.datetime
    stopped_days: float

    def evidence(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance["InstanceId"],
            "stopped_at": self.stopped_at.isoformat(),
            "stopped_days": self.stopped_days,
        }


def stopped_since(instance: dict[str, Any]) -> dt.datetime | None:
    """When a stopped instance stopped, read from ``StateTransitionReason``; None when the reason
    carries no time (we never guess one)."""
    match = _STOP_TIME.search(instance.get("StateTransitionReason") or "")
    if match is None:
        return None
    return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


def instances_stopped_for(scope: RegionScope, days: int) -> dict[str, StoppedInstance]:
    """Instances stopped at least ``days`` days, by id; those whose stop time cannot be read are
    left out."""
    found: dict[str, StoppedInstance] = {}
    now = scope.now
    for instance in region_instances_in(scope, "stopped"):
        stopped_at = stopped_since(instance)
        if stopped_at is not None and is_at_least_days_old(stopped_at, now, days):
            found[instance["InstanceId"]] = StoppedInstance(
                instance, stopped_at, age_days(stopped_at, now)
            )
    return found


def volume_price(scope: RegionScope, volume: dict[str, Any]) -> Price:
    """A volume's monthly list price: size x GB-month price of its type, plus provisioned IOPS
    for io1/io2 when the catalog prices them."""
    volume_type = volume.get("VolumeType", "standard")
    storage = gb_month_price(
        scope,
        scope.prices.ebs_gb_month(scope.region, volume_type),
        what=f"EBS {volume_type} volumes",
        size_gb=int(volume["Size"]),
    )
    iops = int(volume.get("Iops") or 0)
    if storage.monthly_usd is None:
        return storage
    if volume_type == "gp3" and (iops > 3000 or int(volume.get("Throughput") or 0) > 125):
        # The catalog has no lookup for gp3 performance above its baseline.
        return _with_note(storage, "gp3 IOPS/throughput above baseline are not priced")
    if volume_type not in ("io1", "io2") or not iops:
        return storage
    iops_quote = scope.prices.ebs_piops_month(scope.region, volume_type)
    if iops_quote is None:
        return _with_note(storage, f"{iops} provisioned IOPS are not priced")
    detail = storage.detail | {
        "provisioned_iops": iops,
        "iops_unit_price_usd": str(iops_quote.unit_price),
        "iops_unit": iops_quote.unit,
    }
    monthly = storage.monthly_usd + (iops_quote.unit_price * iops).quantize(Decimal("0.01"))
    return Price(monthly, "list_price", detail)


def volume_waste(volume: dict[str, Any], reason: str, price: Price, **evidence: Any) -> Waste:
    """A finding about one volume, whose figure (in full or a saving) is part of what it bills."""
    tags = tags_of(volume.get("Tags"))
    return Waste(
        resource_id=volume["VolumeId"],
        resource_type="ebs-volume",
        reason=reason,
        price=price,
        evidence={
            "state": volume["State"],
            "size_gb": volume["Size"],
            "volume_type": volume.get("VolumeType"),
            **evidence,
        },
        resource_name=tags.get("Name"),
        tags=tags,
        cost_parts=volume_cost_parts(volume["VolumeId"], price.monthly_usd),
    )


def volumes_price(scope: RegionScope, volumes: Iterable[dict[str, Any]]) -> Price:
    """Several volumes' summed monthly list price, one line per volume; unknown if any volume
    cannot be priced."""
    lines: list[dict[str, Any]] = []
    total = Decimal("0.00")
    estimated = False
    for volume in volumes:
        price = volume_price(scope, volume)
        if price.monthly_usd is None:
            return Price.unknown(f"volume {volume['VolumeId']}: {price.detail['why']}")
        total += price.monthly_usd
        estimated = estimated or bool(price.detail.get("estimated"))
        lines.append({"volume_id": volume["VolumeId"], "monthly_usd": str(price.monthly_usd)})
        lines[-1] |= price.detail
    detail = {
        "estimated": estimated,
        "catalog_as_of": scope.prices.as_of.isoformat(),
        "volumes": lines,
    }
    return Price(total, "list_price", detail)


def volume_cost_parts(volume_id: str, monthly_usd: Decimal | None) -> tuple[CostPart, ...]:
    """``monthly_usd`` of one volume's cost, as the shared part of a finding's figure it is."""
    return () if monthly_usd is None else (CostPart(VOLUME_COST, volume_id, monthly_usd),)


def volumes_cost_parts(price: Price) -> tuple[CostPart, ...]:
    """A ``volumes_price`` figure's parts: each volume's cost."""
    return tuple(
        part
        for line in price.detail.get("volumes", [])
        for part in volume_cost_parts(line["volume_id"], Decimal(line["monthly_usd"]))
    )


def snapshot_price(scope: RegionScope, size_gb: int) -> Price:
    """Snapshot storage at list price for ``size_gb`` of source volume."""
    return gb_month_price(
        scope,
        scope.prices.ebs_snapshot_gb_month(scope.region),
        what="EBS snapshots",
        size_gb=size_gb,
        note="upper bound: snapshots are incremental and bill only the blocks they hold, at most "
        "the source volume's size",
    )


def _with_note(price: Price, note: str) -> Price:
    return Price(price.monthly_usd, price.basis, price.detail | {"note": note})


def instance_waste(
    instance: dict[str, Any],
    reason: str,
    price: Price,
    cost_parts: tuple[CostPart, ...] = (),
    **evidence: Any,
) -> Waste:
    """A finding about one instance."""
    tags = tags_of(instance.get("Tags"))
    return Waste(
        resource_id=instance["InstanceId"],
        resource_type="ec2-instance",
        reason=reason,
        price=price,
        evidence={
            "state": instance["State"]["Name"],
            "instance_type": instance["InstanceType"],
            **evidence,
        },
        resource_name=tags.get("Name"),
        tags=tags,
        cost_parts=cost_parts,
    )


def on_demand_price(scope: RegionScope, instance: dict[str, Any]) -> Price:
    """A running instance's monthly on-demand list price (Linux only: unknown otherwise)."""
    instance_type = instance["InstanceType"]
    # The catalog holds Linux on-demand prices: a Windows or licensed OS, or a spot instance,
    # costs something else.
    if instance.get("Platform") == "windows":
        return Price.unknown("the price catalog has Linux prices only; this instance runs Windows")
    platform = instance.get("PlatformDetails")
    if platform and platform != "Linux/UNIX":
        return Price.unknown(f"the price catalog has Linux prices only; this runs {platform}")
    if instance.get("InstanceLifecycle") == "spot":
        return Price.unknown("spot instances are not billed at the on-demand list price")
    quote = scope.prices.ec2_hour(scope.region, instance_type)
    return hourly_price(scope, quote, what=f"EC2 {instance_type} on demand")


def instance_cost_parts(instance_id: str, monthly_usd: Decimal | None) -> tuple[CostPart, ...]:
    """``monthly_usd`` of one instance's compute, as the shared part of a finding's figure."""
    return () if monthly_usd is None else (CostPart(EC2_INSTANCE_COST, instance_id, monthly_usd),)
