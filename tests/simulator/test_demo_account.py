"""The demo's simulated AWS account: waste of every kind beside resources to keep, and a scan
that reports exactly the waste its ``valdrix-demo:expect`` tags announce, tags or no tags.

Seeded once for the module on a moto server on loopback; scans run in-process with
``run_scan`` (``tests/cli/test_demo_scan.py`` runs the real demo, worker and all).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.scanning.distinct_costs import distinct_monthly_usd, gross_monthly_usd
from tests.simulator.demo_truth import (
    Truth,
    demo_truth,
    expected_findings,
    simulator_client,
    strip_expect_tags,
)
from valdrix.connections.models import CloudConnection
from valdrix.connections.service import create_connection, new_external_id
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.engine import run_scan
from valdrix.scanning.findings import list_findings
from valdrix.scanning.models import Finding, ScanStatus
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.service import open_scheduled_scan
from valdrix.simulator.aws_server import (
    REAL_AWS_ENV,
    SIMULATED_AWS_ENV,
    SimulatedAws,
    start_simulated_aws,
)
from valdrix.simulator.demo_account import (
    DEMO_ROLE_ARN,
    DEMO_THRESHOLDS,
    DemoAccount,
    seed_demo_account,
)
from valdrix.simulator.demo_seeding import IGNORE
from valdrix.tenancy.service import system_principal

AWS_DETECTORS = sorted(d.key for d in load_all_detectors().for_provider("aws"))


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatedAws]:
    with pytest.MonkeyPatch.context() as patch:
        for name in REAL_AWS_ENV:
            patch.delenv(name, raising=False)
        for name, value in SIMULATED_AWS_ENV.items():
            patch.setenv(name, value)
        server = start_simulated_aws()
        try:
            httpx.post(f"{server.endpoint_url}/moto-api/reset").raise_for_status()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def seeded(simulator: SimulatedAws) -> tuple[DemoAccount, Truth]:
    """The demo account, and what its tags say, read back from the simulator."""
    account = seed_demo_account(simulator.endpoint_url)
    return account, demo_truth(simulator.endpoint_url, account.regions)


def test_demo_account_holds_about_400_resources_each_tagged_with_what_a_scan_should_say(
    seeded: tuple[DemoAccount, Truth],
) -> None:
    account, truth = seeded
    assert len(account.regions) >= 3
    assert 350 <= len(account.resources) <= 450
    assert truth == {key: r.detectors for key, r in account.resources.items()}, (
        "every seeded resource, and nothing else, carries the expect tag"
    )
    assert Counter(region for region, _ in truth) == Counter(
        r.region for r in account.resources.values()
    )


def test_demo_account_has_waste_for_every_aws_detector_in_several_regions(
    seeded: tuple[DemoAccount, Truth],
) -> None:
    account, _ = seeded
    regions_by_detector: dict[str, set[str]] = {}
    for region, detector, _ in account.expected_findings():
        regions_by_detector.setdefault(detector, set()).add(region)
    assert sorted(regions_by_detector) == AWS_DETECTORS
    # Connection-wide detectors' findings are all in one place, "global".
    assert all(
        len(regions) >= 2 or regions == {"global"} for regions in regions_by_detector.values()
    ), regions_by_detector
    assert all(count >= 3 for count in account.waste_by_detector().values())


def test_demo_account_keeps_resources_that_look_like_waste_but_are_not(
    simulator: SimulatedAws, seeded: tuple[DemoAccount, Truth]
) -> None:
    account, truth = seeded
    kept = Counter(r.kind for r in account.resources.values() if not r.detectors)
    for kind in ("ec2-instance", "ebs-volume", "ebs-snapshot", "ami", "elastic-ip", "nat-gateway"):
        assert kept[kind] >= 3, f"no {kind} to keep"
    # Every kind of resource some detector flags has one beside it that none may flag.
    wasted = {r.kind for r in account.resources.values() if r.detectors}
    assert not [kind for kind in sorted(wasted) if not kept[kind]], kept
    # Idle, unattached, unassociated: waste, but tagged valdrix:ignore=true, so kept.
    for region in account.regions:
        ec2 = simulator_client(simulator.endpoint_url, "ec2", region)
        ignore = [{"Name": "key", "Values": [IGNORE["Key"]]}]
        ignored = {tag["ResourceId"] for tag in ec2.describe_tags(Filters=ignore)["Tags"]}
        assert len(ignored) >= 3
        assert all(truth[(region, resource_id)] == () for resource_id in ignored)


def scanning(runtime: Runtime, simulator: SimulatedAws) -> Runtime:
    """The runtime with AWS at the simulator."""
    return dataclasses.replace(
        runtime,
        settings=runtime.settings.updated(aws={"endpoint_url": simulator.endpoint_url}),
    )


async def demo_connection(
    runtime: Runtime, tenant_id: uuid.UUID, account: DemoAccount
) -> CloudConnection:
    """The demo's connection to the simulated account, as ``valdrix demo`` registers it."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await create_connection(
            session,
            system_principal(tenant_id),
            runtime.keyring,
            name="demo account",
            role_arn=DEMO_ROLE_ARN,
            external_id=new_external_id(runtime.keyring, tenant_id),
            regions=list(account.regions),
            thresholds=DEMO_THRESHOLDS,
            tag_exclusions=[],
        )


async def scan_demo_account(
    runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> str:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan_id = await open_scheduled_scan(session, tenant_id, connection_id, job_id=None)
    return await run_scan(runtime, tenant_id, scan_id)


async def open_findings(runtime: Runtime, tenant_id: uuid.UUID) -> list[Finding]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await list_findings(
            session,
            system_principal(tenant_id),
            filters={"status": "open"},
            sort="monthly_cost_usd",
            descending=True,
            offset=0,
            limit=500,
        )


def reported(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.region, f.detector, f.resource_id) for f in findings}


async def test_a_scan_of_the_demo_account_reports_exactly_the_tagged_waste_tags_or_not(
    runtime: Runtime,
    make_tenant: Any,
    simulator: SimulatedAws,
    seeded: tuple[DemoAccount, Truth],
) -> None:
    account, truth = seeded
    aws_runtime = scanning(runtime, simulator)
    tenant_id = (await make_tenant()).tenant_id
    connection = await demo_connection(runtime, tenant_id, account)

    assert await scan_demo_account(aws_runtime, tenant_id, connection.id) == ScanStatus.completed
    found = await open_findings(runtime, tenant_id)
    assert reported(found) == expected_findings(truth)
    # From the catalog, for commitments from Cost Explorer (the tenant's own bill), or for
    # imported recommendations AWS's estimated saving.
    imported = {d.key for d in load_all_detectors() if d.imports_from}
    assert all(
        f.cost_basis
        in (("recommendation",) if f.detector in imported else ("list_price", "billed"))
        and f.monthly_cost_usd
        for f in found
    ), "every demo finding has a dollar figure"

    # Detectors never read the expect tag: without it, the same findings stay open.
    strip_expect_tags(simulator.endpoint_url, account.regions)
    assert demo_truth(simulator.endpoint_url, account.regions) == {}
    assert await scan_demo_account(aws_runtime, tenant_id, connection.id) == ScanStatus.completed
    assert reported(await open_findings(runtime, tenant_id)) == expected_findings(truth)


async def test_the_demo_totals_count_each_dollar_once(
    runtime: Runtime,
    client: httpx.AsyncClient,
    make_tenant: Any,
    simulator: SimulatedAws,
    seeded: tuple[DemoAccount, Truth],
) -> None:
    """The demo prices some money from two sides (stopped instances' volumes, gp3 savings on
    volumes priced in full): the scan's total and the summary's are the sum of distinct costs,
    worked out from the findings the API lists, and say what they left out."""
    account, _ = seeded
    tenant = await make_tenant()
    connection = await demo_connection(runtime, tenant.tenant_id, account)

    status = await scan_demo_account(scanning(runtime, simulator), tenant.tenant_id, connection.id)

    assert status == ScanStatus.completed

    async def get(path: str, **params: Any) -> Any:
        response = await client.get(path, params=params, headers=tenant.auth)
        assert response.status_code == 200, response.text
        return response.json()

    listed = await get("/api/v1/findings", status="open", limit=500)
    assert 0 < len(listed) < 500, "one page holds them all"
    # Imported recommendations shown inside Valdrix's findings are not listed on their own,
    # but the summary's gross counts their figures: read them by their detectors.
    shown_with_others = [
        finding
        for detector in sorted({a["detector"] for f in listed for a in f["also_reported_by"]})
        for finding in await get("/api/v1/findings", status="open", detector=detector)
        if finding["shown_with"]
    ]
    assert shown_with_others, "the demo has recommendations for resources Valdrix flags"
    findings = listed + shown_with_others
    # Listed or not, the total is the same: each resource's money counted once.
    assert distinct_monthly_usd(listed) == distinct_monthly_usd(findings)
    gross, once = gross_monthly_usd(findings), distinct_monthly_usd(findings)
    assert once < gross, "the demo has findings that price the same money"
    summary = await get("/api/v1/findings/summary")
    assert Decimal(summary["total_monthly_usd"]) == once
    assert Decimal(summary["gross_monthly_usd"]) == gross
    assert Decimal(summary["overlap_monthly_usd"]) == gross - once
    assert sum(Decimal(row["counted_usd"]) for row in summary["by_detector"]) == once
    [scan] = await get("/api/v1/scans", connection_id=str(connection.id))
    assert Decimal(scan["monthly_waste_usd"]) == once
    assert Decimal(scan["monthly_waste_gross_usd"]) == gross
