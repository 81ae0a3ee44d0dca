"""Fixtures and helpers for the scan engine, connections, findings and scans API tests.

AWS is a real moto server on loopback (reset before each test), reached the way production
reaches AWS: through ``settings.aws.endpoint_url``, optionally with a ``FaultProxy`` in front to
inject latency, regions that hang and denied operations. Scans run in-process with
``run_scan`` (workers are tested elsewhere) on a ``Runtime`` whose settings point at that
endpoint. Test modules import what they use from here explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import boto3
import httpx
import psycopg
import pytest
import uvicorn

from tests.conftest import TenantFixture, TestDatabase
from valdrix.app import create_app
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.connections.models import CloudConnection
from valdrix.connections.service import aws_setup, create_connection
from valdrix.jobs.app import open_job_app
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.engine import run_scan
from valdrix.scanning.models import Finding, ScanEvent, ScanUnit
from valdrix.scanning.repository import FindingRepository, ScanEventRepository, ScanRepository
from valdrix.scanning.service import open_scheduled_scan
from valdrix.simulator.aws_server import (
    REAL_AWS_ENV,
    SIMULATED_AWS_ENV,
    SimulatedAws,
    free_port,
    start_simulated_aws,
)
from valdrix.simulator.proxy import FaultProxy, Faults
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import system_principal

ACCOUNT_ID = "123456789012"  # moto's default account
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/ValdrixScanRole"
HEALTHY_REGION = "us-west-2"
OTHER_REGION = "eu-west-1"


# --- simulated AWS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_aws() -> Iterator[SimulatedAws]:
    """A moto server for the module (its backends are reset before each test). Valdrix's own
    identity, the default credential chain, is the simulator's dummy key."""
    with pytest.MonkeyPatch.context() as patch:
        for name in REAL_AWS_ENV:
            patch.delenv(name, raising=False)
        for name, value in SIMULATED_AWS_ENV.items():
            patch.setenv(name, value)
        server = start_simulated_aws()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def aws_endpoint(simulated_aws: SimulatedAws) -> str:
    """The moto server's URL, emptied first: each test sees only the resources it seeds."""
    return empty_aws(simulated_aws)


def empty_aws(simulated_aws: SimulatedAws) -> str:
    """Delete every simulated resource; returns the endpoint URL."""
    httpx.post(f"{simulated_aws.endpoint_url}/moto-api/reset").raise_for_status()
    return simulated_aws.endpoint_url


@pytest.fixture
def fault_proxy(aws_endpoint: str) -> Iterator[Callable[..., FaultProxy]]:
    """``fault_proxy(latency_seconds=..., hang_regions=..., deny_operations=...)``: a started
    proxy in front of the moto server, stopped (hung requests released) after the test."""
    started: list[FaultProxy] = []

    def start(**faults: Any) -> FaultProxy:
        proxy = FaultProxy(aws_endpoint, Faults(**faults)).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def aws_runtime(
    runtime: Runtime,
    endpoint_url: str,
    *,
    region_budget: float = 10.0,
    scan_budget: float = 60.0,
    **settings: Any,
) -> Runtime:
    """The session runtime (same database engine) with AWS at ``endpoint_url``, budgets, and
    other ``settings`` changed as ``Settings.updated`` changes them."""
    changed = runtime.settings.updated(
        aws={"endpoint_url": endpoint_url},
        scans={"region_budget_seconds": region_budget, "budget_seconds": scan_budget},
    ).updated(**settings)
    return dataclasses.replace(runtime, settings=changed)


def aws_client(endpoint_url: str, service: str, region: str) -> Any:
    """A boto3 client on the simulator, for seeding and changing resources."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=SIMULATED_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SIMULATED_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def aws_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def unattached_volume(
    endpoint_url: str, region: str, *, size_gb: int = 100, tags: dict[str, str] | None = None
) -> str:
    """A gp3 volume attached to nothing (``aws.ebs-unattached``); returns its id."""
    spec = [{"ResourceType": "volume", "Tags": aws_tags(tags)}] if tags else []
    volume = aws_client(endpoint_url, "ec2", region).create_volume(
        AvailabilityZone=f"{region}a", Size=size_gb, VolumeType="gp3", TagSpecifications=spec
    )
    return str(volume["VolumeId"])


def elastic_ip(endpoint_url: str, region: str, *, tags: dict[str, str] | None = None) -> str:
    """An Elastic IP associated with nothing (``aws.eip-unassociated``); returns its id."""
    spec = [{"ResourceType": "elastic-ip", "Tags": aws_tags(tags)}] if tags else []
    address = aws_client(endpoint_url, "ec2", region).allocate_address(
        Domain="vpc", TagSpecifications=spec
    )
    return str(address["AllocationId"])


def delete_volume(endpoint_url: str, region: str, volume_id: str) -> None:
    aws_client(endpoint_url, "ec2", region).delete_volume(VolumeId=volume_id)


# --- tenants, connections and scans ---------------------------------------------------------


async def create_tenant(runtime: Runtime) -> TenantFixture:
    """A tenant with an owner API key, for module-scoped fixtures (``make_tenant`` is per test)."""
    name, email = f"Tenant {uuid.uuid4().hex[:6]}", f"owner-{uuid.uuid4().hex[:8]}@example.com"
    created = await create_tenant_with_owner_key(
        runtime, name=name, tier=Tier.growth, admin_email=email
    )
    return TenantFixture(
        uuid.UUID(str(created["tenant_id"])), name, str(created["api_key"]), email, ""
    )


async def register_connection(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    *,
    regions: list[str],
    tag_exclusions: list[dict[str, str | None]] | None = None,
    thresholds: dict[str, dict[str, Any]] | None = None,
    name: str | None = None,
) -> CloudConnection:
    """Register the simulator's role for a tenant, the way the API does (issued external id)."""
    actor = system_principal(tenant_id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await create_connection(
            session,
            actor,
            runtime.keyring,
            name=name or f"sim-{uuid.uuid4().hex[:6]}",
            role_arn=ROLE_ARN,
            external_id=aws_setup(actor, runtime.keyring, runtime.settings)["external_id"],
            regions=regions,
            thresholds=thresholds or {},
            tag_exclusions=tag_exclusions or [],
        )


async def new_scan(runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID) -> uuid.UUID:
    """A queued scan of the connection (as the scheduled job opens it)."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await open_scheduled_scan(session, tenant_id, connection_id)


async def scan_once(
    runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> tuple[uuid.UUID, str]:
    """Open a scan and run it to its end in-process; returns (scan id, final status)."""
    scan_id = await new_scan(runtime, tenant_id, connection_id)
    return scan_id, await run_scan(runtime, tenant_id, scan_id)


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


# --- HTTP -------------------------------------------------------------------------------------


@asynccontextmanager
async def api_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ``runtime`` (e.g. one pointed at the simulator), in-process."""
    await open_job_app(runtime.urls.app)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@asynccontextmanager
async def served_app(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind a real HTTP server on loopback, for reading a stream as it is written
    (httpx's ASGI transport hands over a response body only once it is complete)."""
    await open_job_app(runtime.urls.app)
    port = free_port()
    # Lifespan off: shutting the app down would close the session's shared pools.
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await serving


async def api_key(
    client: httpx.AsyncClient, owner_auth: dict[str, str], role: str
) -> dict[str, str]:
    """Authorization headers of a new API key with ``role``."""
    response = await client.post(
        "/api/v1/api-keys", json={"name": f"{role} key", "role": role}, headers=owner_auth
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is a problem+json error with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Server-sent events as dicts with ``id``, ``event`` and ``data`` (comments skipped)."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            events.append(fields)
    return events


# --- database, as the superuser ---------------------------------------------------------------


async def superuser_rows(database: TestDatabase, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Cross-tenant reads (procrastinate's global tables), outside any tenant context."""
    async with await psycopg.AsyncConnection.connect(database.superuser, autocommit=True) as conn:
        cursor = await conn.execute(sql, params or None)
        return await cursor.fetchall()
