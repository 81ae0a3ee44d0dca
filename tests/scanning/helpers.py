"""Helpers for tests outside tests/scanning that need a tenant with scan data."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from unittest import mock

import boto3
from moto import mock_aws

from valdrix.connections.service import create_connection, new_external_id
from valdrix.jobs.app import open_job_app
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning import service as scans
from valdrix.scanning.engine import run_scan
from valdrix.scanning.repository import FindingRepository
from valdrix.simulator.aws_server import SIMULATED_AWS_ENV
from valdrix.tenancy.service import system_principal


@dataclass(frozen=True)
class ScannedTenant:
    connection_id: uuid.UUID
    scan_id: uuid.UUID
    finding_id: uuid.UUID


async def give_tenant_a_scanned_connection(runtime: Runtime, tenant_id: uuid.UUID) -> ScannedTenant:
    """A connection to a simulated account with one idle Elastic IP, scanned once (in-process
    moto): fills connections, scans, units, events, findings and their history."""
    await open_job_app(runtime.urls.app)
    actor = system_principal(tenant_id)
    with mock.patch.dict(os.environ, SIMULATED_AWS_ENV), mock_aws():
        boto3.client("ec2", region_name="us-east-1").allocate_address(Domain="vpc")
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
