"""AWS's own recommendations in a scan: imported where the account turned the service on,
shown once with the Valdrix finding that prices the same resource (both sources named), and
counted once in every total.

Scans run in-process against the simulator's server, which fakes Compute Optimizer and Cost
Optimization Hub over HTTP; the expected totals are worked out from the findings as the API
shows them (``distinct_costs``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from tests.fixtures.aws import (
    ACCOUNT_ID,
    HEALTHY_REGION,
    OTHER_REGION,
    aws_client,
    aws_runtime,
    register_connection,
)
from tests.scanning.detectors.recommendation_seed import (
    hub_recommendation,
    instance_recommendation,
    volume_recommendation,
)
from tests.scanning.distinct_costs import distinct_monthly_usd
from tests.scanning.helpers import create_tenant, scan_once, scan_units
from valdrix.runtime import Runtime
from valdrix.simulator.proxy import FaultProxy
from valdrix.simulator.recommendations import AccountRecommendations, seed_recommendations

FINDINGS = "/api/v1/findings"
OPTIMIZER, HUB = "aws.compute-optimizer", "aws.cost-optimization-hub"


async def get(client: httpx.AsyncClient, auth: dict[str, str], path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def spare_gp2_volume(endpoint: str) -> str:
    ec2 = aws_client(endpoint, "ec2", HEALTHY_REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{HEALTHY_REGION}a", Size=100, VolumeType="gp2")
    return str(volume["VolumeId"])


async def test_a_recommendation_for_a_resource_valdrix_flags_is_one_finding_naming_both_sources(
    runtime: Runtime, aws_endpoint: str, client: httpx.AsyncClient
) -> None:
    # An unattached gp2 disk Valdrix flags twice (unused; cheaper as gp3), for which Compute
    # Optimizer and the hub recommend too; an instance only Compute Optimizer finds too big.
    volume = spare_gp2_volume(aws_endpoint)
    seeded = AccountRecommendations(
        compute_optimizer_status="Active",
        hub_status="Active",
        compute_optimizer={
            HEALTHY_REGION: {
                "volumeRecommendations": [
                    volume_recommendation(volume, region=HEALTHY_REGION, monthly=2.0)
                ],
                "instanceRecommendations": [
                    instance_recommendation("i-busy", region=HEALTHY_REGION, monthly=70.08)
                ],
            }
        },
        hub=[
            hub_recommendation(
                volume, region=HEALTHY_REGION, kind="EbsVolume", action="Delete", monthly=9.0
            ),
            # Outside the connection's regions: not this scan's business.
            hub_recommendation("i-elsewhere", region=OTHER_REGION),
        ],
    )
    seed_recommendations(aws_endpoint, ACCOUNT_ID, seeded)
    tenant = await create_tenant(runtime)
    scanner = aws_runtime(runtime, aws_endpoint)
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])

    scan_id, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "completed"
    listed = await get(client, tenant.auth, FINDINGS, status="open", limit=500)
    assert sorted((f["detector"], f["resource_id"]) for f in listed) == sorted(
        [("aws.ebs-unattached", volume), ("aws.ebs-gp2-to-gp3", volume), (OPTIMIZER, "i-busy")]
    )
    unattached = next(f for f in listed if f["detector"] == "aws.ebs-unattached")
    sources = {one["source"]: one for one in unattached["also_reported_by"]}
    assert set(sources) == {"AWS Compute Optimizer", "AWS Cost Optimization Hub"}
    assert sources["AWS Cost Optimization Hub"]["monthly_cost_usd"] == "9.00"
    assert sources["AWS Cost Optimization Hub"]["action"] == "Delete"
    assert sources["AWS Compute Optimizer"]["recommended"]["volumeType"] == "gp3"
    # The imported findings are still there, each saying which finding shows it.
    imported = [
        *await get(client, tenant.auth, FINDINGS, detector=OPTIMIZER),
        *await get(client, tenant.auth, FINDINGS, detector=HUB),
    ]
    assert {(f["detector"], f["resource_id"], f["region"]) for f in imported} == {
        (OPTIMIZER, volume, HEALTHY_REGION),
        (OPTIMIZER, "i-busy", HEALTHY_REGION),
        (HUB, volume, HEALTHY_REGION),
    }
    for finding in imported:
        if finding["resource_id"] == volume:
            assert finding["shown_with"] == unattached["id"]
            assert finding["cost_basis"] == "recommendation"

    # Every total counts the disk's money once, at the largest figure any finding gives it.
    everything = listed + [f for f in imported if f["resource_id"] == volume]
    once = distinct_monthly_usd(everything)
    summary = await get(client, tenant.auth, f"{FINDINGS}/summary")
    assert Decimal(summary["total_monthly_usd"]) == once
    scan = await get(client, tenant.auth, f"/api/v1/scans/{scan_id}")
    assert Decimal(scan["monthly_waste_usd"]) == once
    assert Decimal(unattached["monthly_cost_usd"]) > Decimal("9.00")  # Valdrix's carries it
    hub_row = next(r for r in summary["by_detector"] if r["detector"] == HUB)
    assert Decimal(hub_row["counted_usd"]) == 0


async def test_an_account_that_turned_neither_service_on_scans_complete_with_skipped_units(
    runtime: Runtime, aws_endpoint: str
) -> None:
    spare_gp2_volume(aws_endpoint)
    tenant = await create_tenant(runtime)
    scanner = aws_runtime(runtime, aws_endpoint)
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])

    scan_id, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "completed"
    units = {u.detector: u for u in await scan_units(runtime, tenant.tenant_id, scan_id)}
    for key in (OPTIMIZER, HUB):
        assert units[key].status == "skipped" and units[key].findings_count == 0
        assert "not turned on" in (units[key].reason or "")
    # The hub is account-wide: one unit for the whole connection, whatever regions are scanned.
    assert units[HUB].region == "global"


async def test_a_role_denied_the_recommendations_has_a_denied_unit(
    runtime: Runtime, aws_endpoint: str, fault_proxy: Callable[..., FaultProxy]
) -> None:
    seed_recommendations(
        aws_endpoint, ACCOUNT_ID, AccountRecommendations(compute_optimizer_status="Active")
    )
    proxy = fault_proxy(deny_operations={"GetEnrollmentStatus", "ListEnrollmentStatuses"})
    tenant = await create_tenant(runtime)
    scanner = aws_runtime(runtime, proxy.url)
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])

    scan_id, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "partial"
    units = {u.detector: u for u in await scan_units(runtime, tenant.tenant_id, scan_id)}
    assert (units[OPTIMIZER].status, units[OPTIMIZER].reason) == (
        "denied",
        "GetEnrollmentStatus: AccessDeniedException",
    )
    assert units[HUB].status == "denied"
