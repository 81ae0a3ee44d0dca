"""Disabling a connection and enabling it again over the API: the disabled list, the schedule
paused and resumed, and a name taken in the meantime refused."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantFixture
from tests.fixtures.aws import ROLE_ARN
from tests.fixtures.http import assert_problem
from valdrix.connections.service import SCAN_KIND
from valdrix.jobs.repository import ScheduleRepository
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime

SETUP = "/api/v1/connections/aws/setup"
CONNECTIONS = "/api/v1/connections"


async def register(client: httpx.AsyncClient, tenant: TenantFixture, name: str) -> str:
    external_id = (await client.get(SETUP, headers=tenant.auth)).json()["external_id"]
    body = {"name": name, "role_arn": ROLE_ARN, "external_id": external_id}
    response = await client.post(CONNECTIONS, json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    connection_id: str = response.json()["id"]
    return connection_id


async def schedule_enabled(runtime: Runtime, tenant: TenantFixture, connection_id: str) -> bool:
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        schedule = await ScheduleRepository(session).for_target(SCAN_KIND, connection_id)
    assert schedule is not None
    return schedule.enabled


async def test_a_disabled_connection_is_listed_apart_and_enabled_scans_again(
    client: httpx.AsyncClient, make_tenant: Any, runtime: Runtime
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection_id = await register(client, tenant, "production")
    deleted = await client.delete(f"{CONNECTIONS}/{connection_id}", headers=tenant.auth)
    assert deleted.status_code == 204

    active = (await client.get(CONNECTIONS, headers=tenant.auth)).json()
    listed = await client.get(CONNECTIONS, params={"disabled": "true"}, headers=tenant.auth)
    disabled = listed.json()
    assert active == []
    assert [c["id"] for c in disabled] == [connection_id] and disabled[0]["disabled_at"]
    assert not await schedule_enabled(runtime, tenant, connection_id)

    enabled = await client.post(f"{CONNECTIONS}/{connection_id}/enable", headers=tenant.auth)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled_at"] is None
    assert [c["id"] for c in (await client.get(CONNECTIONS, headers=tenant.auth)).json()] == [
        connection_id
    ]
    assert await schedule_enabled(runtime, tenant, connection_id)


async def test_enabling_is_refused_when_an_active_connection_took_the_name(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    first = await register(client, tenant, "production")
    await client.delete(f"{CONNECTIONS}/{first}", headers=tenant.auth)
    await register(client, tenant, "production")

    refused = await client.post(f"{CONNECTIONS}/{first}/enable", headers=tenant.auth)
    assert "an active connection is named 'production'" in assert_problem(refused, 409)["detail"]
