"""Scans run in-process and read back, for the scanning tests and for tests elsewhere that need a
tenant with scan data."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from unittest import mock

import boto3
import httpx
from moto import mock_aws

from tests.conftest import TenantFixture
from tests.fixtures.aws import HEALTHY_REGION, aws_runtime, register_connection
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.connections.service import create_connection, new_external_id
from valdrix.jobs.app import open_job_app
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning import service as scans
from valdrix.scanning.engine import run_scan
from valdrix.scanning.models import Finding, ScanEvent, ScanUnit
from valdrix.scanning.repository import FindingRepository, ScanEventRepository, ScanRepository
from valdrix.scanning.service import open_scheduled_scan
from valdrix.simulator.aws_server import SIMULATED_AWS_ENV
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import system_principal


@dataclass(frozen=True)
class ScannedTenant:
    connection_id: uuid.UUID
    scan_id: uuid.UUID
    finding_id: uuid.UUID


async def give_tenant_a_scanned_connection(runtime: Runtime, tenant_id: uuid.UUID) -> ScannedTenant:
    """A connection to a simulated account with one idle Elastic IP and a small unattached
    disk, scanned once (in-process moto): fills connections, scans, units, events, findings,
    their history and their cost parts (the disk's); the finding returned is the address's."""
    await open_job_app(runtime.urls.app)
    actor = system_principal(tenant_id)
    with mock.patch.dict(os.environ, SIMULATED_AWS_ENV), mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        ec2.allocate_address(Domain="vpc")
        # Priced below the address, so the address's finding stays first by cost.
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, VolumeType="gp3")
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            connection = await create_connection(
                session,
                actor,
                runtime.keyring,
                name=f"account {uuid.uuid4().hex[:6]}",
                role_arn="arn:aws:iam::123456789012:role/ValdrixScanRole",
                external_id=new_external_id(runtime.keyring, tenant_id),
                regions=["us-east-1"],
                thresholds={},
                tag_exclusions=[],
            )
            scan = await scans.start_scan(
                session, actor, runtime.settings, connection_id=connection.id
            )
        await run_scan(runtime, tenant_id, scan.id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        found = await FindingRepository(session).page(
            filters={"connection_id": connection.id},
            sort="monthly_cost_usd",
            descending=True,
            offset=0,
            limit=1,
        )
    return ScannedTenant(connection.id, scan.id, found[0].id)


async def create_tenant(runtime: Runtime) -> TenantFixture:
    """A tenant with an owner API key, for module-scoped fixtures (``make_tenant`` is per test)."""
    name, email = f"Tenant {uuid.uuid4().hex[:6]}", f"owner-{uuid.uuid4().hex[:8]}@example.com"
    created = await create_tenant_with_owner_key(
        runtime, name=name, tier=Tier.growth, admin_email=email
    )
    return TenantFixture(
        uuid.UUID(str(created["tenant_id"])), name, str(created["api_key"]), email, ""
    )


async def new_scan(runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID) -> uuid.UUID:
    """A queued scan of the connection (as the scheduled job opens it)."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await open_scheduled_scan(session, tenant_id, connection_id, job_id=None)


async def scan_once(
    runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> tuple[uuid.UUID, str]:
    """Open a scan and run it to its end in-process; returns (scan id, final status)."""
    scan_id = await new_scan(runtime, tenant_id, connection_id)
    return scan_id, await run_scan(runtime, tenant_id, scan_id)


async def warm_the_simulator(runtime: Runtime, aws_endpoint: str, regions: list[str]) -> None:
    """A bystander tenant's scan of ``regions`` straight against the simulator. The simulator
    runs in the test process and builds a region's backends (its default images and the like)
    on their first calls: seconds of CPU in this very process, which must not count against
    the budget a test is about."""
    bystander = await create_tenant(runtime)
    # Budgets long enough for the loading itself, whatever the machine's load.
    warm = aws_runtime(runtime, aws_endpoint, region_budget=60.0, scan_budget=120.0)
    connection = await register_connection(warm, bystander.tenant_id, regions=regions)
    assert (await scan_once(warm, bystander.tenant_id, connection.id))[1] == "completed"


async def scan_units(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> list[ScanUnit]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await ScanRepository(session).units(scan_id)


async def scan_events(
    runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID
) -> list[ScanEvent]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await ScanEventRepository(session).after(scan_id, 0, limit=10_000)


async def tenant_findings(runtime: Runtime, tenant_id: uuid.UUID) -> list[Finding]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await FindingRepository(session).list_all(Finding.detector, Finding.resource_id)


def by_resource(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    """Findings keyed by (detector, resource id)."""
    return {(f.detector, f.resource_id): f for f in findings}


async def queued_scan(server: httpx.AsyncClient, runtime: Runtime, tenant: TenantFixture) -> str:
    """A scan that stays queued (no worker runs here): its stream would never end by itself."""
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    started = await server.post(
        "/api/v1/scans", json={"connection_id": str(connection.id)}, headers=tenant.auth
    )
    assert started.status_code == 202, started.text
    scan_id: str = started.json()["id"]
    return scan_id
