"""Findings of resources on the tenant's bill carry what the bill says they cost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.costs.focus_files import synthetic
from tests.fixtures.aws import (
    ACCOUNT_ID,
    aws_client,
    aws_runtime,
    elastic_ip,
    register_connection,
    unattached_volume,
)
from tests.scanning.helpers import by_resource, scan_once, tenant_findings
from valdrix.costs.sources.focus_files import import_focus_file
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")
REGION = "us-east-1"


async def test_a_billed_resource_costs_its_last_30_days_and_others_keep_list_price(
    make_tenant: Callable[..., Any],
    runtime: Runtime,
    aws_endpoint: str,
    tmp_path: Path,
) -> None:
    tenant = await make_tenant()
    scanning = aws_runtime(runtime, aws_endpoint)
    volume = unattached_volume(aws_endpoint, REGION, size_gb=100)
    address = elastic_ip(aws_endpoint, REGION)
    today = utcnow().date()
    # 40 days of bill for the volume at $0.50 a day, the last one yesterday.
    bill = {(today - dt.timedelta(days=n), "EBS"): Decimal("0.50") for n in range(1, 41)}
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:volume/{volume}"
    export = synthetic(tmp_path / "bill.csv", bill, account=ACCOUNT_ID, resources={"EBS": arn})
    await import_focus_file(runtime, tenant.tenant_id, export, actor="test")
    connection = await register_connection(scanning, tenant.tenant_id, regions=[REGION])

    _, status = await scan_once(scanning, tenant.tenant_id, connection.id)

    assert status == "completed"
    findings = by_resource(await tenant_findings(runtime, tenant.tenant_id))
    billed = findings[("aws.ebs-unattached", volume)]
    assert billed.cost_basis == "billed"
    assert billed.monthly_cost_usd == Decimal("15.00")  # 30 days x $0.50
    assert billed.price_detail["billed_through"] == str(today - dt.timedelta(days=1))
    assert Decimal(billed.price_detail["list_price_monthly_usd"]) == Decimal("8.00")  # gp3
    # The volume's cost, which other findings may price too, is what the bill says.
    assert [(p["resource_id"], Decimal(p["monthly_usd"])) for p in billed.cost_parts] == [
        (volume, Decimal("15.00"))
    ]
    listed = findings[("aws.eip-unassociated", address)]
    assert listed.cost_basis == "list_price"


async def test_a_saving_on_a_billed_resource_stays_a_saving(
    make_tenant: Callable[..., Any],
    runtime: Runtime,
    aws_endpoint: str,
    tmp_path: Path,
) -> None:
    """gp2 -> gp3 saves a fifth of a gp2 disk's price. The bill says what the disk costs in
    full; that does not become the saving."""
    tenant = await make_tenant()
    scanning = aws_runtime(runtime, aws_endpoint)
    volume = aws_client(aws_endpoint, "ec2", REGION).create_volume(
        AvailabilityZone=f"{REGION}a", Size=100, VolumeType="gp2"
    )["VolumeId"]
    today = utcnow().date()
    bill = {(today - dt.timedelta(days=n), "EBS"): Decimal("0.50") for n in range(1, 41)}
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:volume/{volume}"
    export = synthetic(tmp_path / "bill.csv", bill, account=ACCOUNT_ID, resources={"EBS": arn})
    await import_focus_file(runtime, tenant.tenant_id, export, actor="test")
    connection = await register_connection(scanning, tenant.tenant_id, regions=[REGION])

    _, status = await scan_once(scanning, tenant.tenant_id, connection.id)

    assert status == "completed"
    findings = by_resource(await tenant_findings(runtime, tenant.tenant_id))
    unattached = findings[("aws.ebs-unattached", volume)]
    assert (unattached.cost_basis, unattached.monthly_cost_usd) == ("billed", Decimal("15.00"))
    saving = findings[("aws.ebs-gp2-to-gp3", volume)]
    assert saving.cost_basis == "list_price"
    assert saving.monthly_cost_usd == Decimal("2.00")  # 100 GiB x ($0.10 gp2 - $0.08 gp3)
    # What the bill says the disk costs is shown beside the saving.
    assert saving.price_detail["billed_usd_30_days"] == "15.00"
