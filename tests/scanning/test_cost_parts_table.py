"""Findings' cost parts as rows (``finding_cost_parts``, migration 0024) follow every write of a
finding: what the list hides and what the summary counts once change with the findings.

An unattached disk (Valdrix's finding, $8) and Compute Optimizer's recommendation for it ($2)
price the same cost: the list shows the disk's finding only and the summary counts $8. Each test
then changes the disk's finding through the lifecycle's own functions (a scan's write, a status
change, a scan's resolution, a snooze's end, a delete), without a cloud, and checks the API's
answers and that the table holds exactly the parts the findings name.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from tests.conftest import TenantFixture
from tests.fixtures.aws import ACCOUNT_ID, HEALTHY_REGION, register_connection
from tests.scanning.helpers import new_scan
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning.base import CostPart, Price, Waste
from valdrix.scanning.findings import (
    UnitWastes,
    change_status,
    record_findings,
    resolve_missing,
)
from valdrix.scanning.models import Finding, FindingStatus, ScanStatus
from valdrix.scanning.repository import FindingRepository, ScanRepository
from valdrix.tenancy.service import system_principal

FINDINGS = "/api/v1/findings"
DISK, OPTIMIZER = "aws.ebs-unattached", "aws.compute-optimizer"
VOLUME, COMPONENT = "vol-0123456789abcdef0", "ebs-volume"


@dataclass(frozen=True)
class Account:
    tenant: TenantFixture
    connection_id: uuid.UUID
    disk_finding: uuid.UUID
    recommendation: uuid.UUID


def disk_waste(*, monthly: str = "8.00", shared: bool = True) -> Waste:
    usd = Decimal(monthly)
    return Waste(
        resource_id=VOLUME,
        resource_type="volume",
        reason="attached to nothing",
        price=Price(usd, "list_price"),
        evidence={},
        cost_parts=(CostPart(COMPONENT, VOLUME, usd),) if shared else (),
    )


def recommended_waste() -> Waste:
    return Waste(
        resource_id=VOLUME,
        resource_type="volume",
        reason="Compute Optimizer: gp3 is cheaper",
        price=Price(Decimal("2.00"), "recommendation"),
        evidence={},
        cost_parts=(CostPart(COMPONENT, VOLUME, Decimal("2.00")),),
    )


async def record(
    runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID, *units: UnitWastes
) -> tuple[uuid.UUID, list[list[uuid.UUID]]]:
    """What a scan of the connection writes for ``units``: (its scan id, the findings' ids)."""
    scan_id = await new_scan(runtime, tenant_id, connection_id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        recorded = await record_findings(
            session,
            tenant_id=tenant_id,
            scan_id=scan_id,
            connection_id=connection_id,
            provider="aws",
            account_id=ACCOUNT_ID,
            units=units,
            now=utcnow(),
        )
        # Ended, so that the next write opens a scan of its own.
        scan = await ScanRepository(session).get(scan_id)
        assert scan is not None
        scan.status = ScanStatus.completed.value
    return scan_id, [[found.id for found in unit] for unit in recorded]


@pytest.fixture
async def account(runtime: Runtime, make_tenant: Any) -> Account:
    tenant: TenantFixture = await make_tenant()
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    _, [[disk], [recommendation]] = await record(
        runtime,
        tenant.tenant_id,
        connection.id,
        UnitWastes(HEALTHY_REGION, DISK, [disk_waste()]),
        UnitWastes(HEALTHY_REGION, OPTIMIZER, [recommended_waste()]),
    )
    return Account(tenant, connection.id, disk, recommendation)


async def listed(client: httpx.AsyncClient, account: Account) -> set[str]:
    """The detectors of the open findings listed."""
    response = await client.get(
        FINDINGS, params={"status": "open", "limit": 500}, headers=account.tenant.auth
    )
    assert response.status_code == 200, response.text
    return {f["detector"] for f in response.json()}


async def total(client: httpx.AsyncClient, account: Account) -> Decimal:
    response = await client.get(f"{FINDINGS}/summary", headers=account.tenant.auth)
    assert response.status_code == 200, response.text
    return Decimal(response.json()["total_monthly_usd"])


async def assert_shown_once(client: httpx.AsyncClient, account: Account) -> None:
    """The disk's finding carries the shared cost: the recommendation is hidden, $8 counted."""
    assert await listed(client, account) == {DISK}
    assert await total(client, account) == Decimal("8.00")


async def assert_parts_follow_findings(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    """The table holds each part the tenant's findings name, with their status, and no other."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        stored = set(
            await session.execute(
                text(
                    "SELECT finding_id, status, component, resource_id, monthly_usd, own"
                    " FROM finding_cost_parts"
                )
            )
        )
        named = set(
            await session.execute(
                text(
                    "SELECT f.id, f.status, p->>'component', p->>'resource_id',"
                    " (p->>'monthly_usd')::numeric, p->>'resource_id' = f.resource_id"
                    " FROM findings f, jsonb_array_elements(f.cost_parts) p"
                )
            )
        )
    assert stored == named


async def set_status(
    runtime: Runtime, account: Account, status: FindingStatus, **change: Any
) -> None:
    tenant_id = account.tenant.tenant_id
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await change_status(
            session,
            system_principal(tenant_id),
            account.disk_finding,
            status=status,
            snoozed_until=change.get("snoozed_until"),
            note=change.get("note"),
        )


async def test_a_recommendation_is_listed_and_counted_while_the_finding_it_shows_with_is_dismissed(
    runtime: Runtime, client: httpx.AsyncClient, account: Account
) -> None:
    await assert_shown_once(client, account)
    await assert_parts_follow_findings(runtime, account.tenant.tenant_id)

    await set_status(runtime, account, FindingStatus.dismissed, note="kept on purpose")

    assert await listed(client, account) == {OPTIMIZER}
    assert await total(client, account) == Decimal("2.00")
    await assert_parts_follow_findings(runtime, account.tenant.tenant_id)

    await set_status(runtime, account, FindingStatus.open)

    await assert_shown_once(client, account)


async def test_a_snoozed_finding_hides_the_recommendation_again_when_its_snooze_ends(
    runtime: Runtime, client: httpx.AsyncClient, account: Account
) -> None:
    await set_status(
        runtime,
        account,
        FindingStatus.snoozed,
        snoozed_until=utcnow() + dt.timedelta(days=1),
        note="until the migration",
    )
    assert await listed(client, account) == {OPTIMIZER}
    async with unit_of_work(runtime.sessions, account.tenant.tenant_id) as session:
        # A day later: only the snooze's end moves (ending it is the read's work).
        await session.execute(
            update(Finding)
            .where(Finding.id == account.disk_finding)
            .values(snoozed_until=utcnow() - dt.timedelta(seconds=1))
        )

    await assert_shown_once(client, account)
    await assert_parts_follow_findings(runtime, account.tenant.tenant_id)


async def test_a_finding_priced_again_without_the_shared_part_no_longer_hides_the_recommendation(
    runtime: Runtime, client: httpx.AsyncClient, account: Account
) -> None:
    tenant_id = account.tenant.tenant_id
    units = (UnitWastes(HEALTHY_REGION, DISK, [disk_waste(monthly="9.00", shared=False)]),)
    await record(runtime, tenant_id, account.connection_id, *units)

    assert await listed(client, account) == {DISK, OPTIMIZER}
    assert await total(client, account) == Decimal("11.00")
    await assert_parts_follow_findings(runtime, tenant_id)

    # Priced with it again, at a new figure: one finding again, counted at the larger part.
    units = (UnitWastes(HEALTHY_REGION, DISK, [disk_waste(monthly="1.50")]),)
    await record(runtime, tenant_id, account.connection_id, *units)

    assert await listed(client, account) == {DISK}
    assert await total(client, account) == Decimal("2.00")
    await assert_parts_follow_findings(runtime, tenant_id)


async def test_a_finding_a_scan_resolves_no_longer_hides_the_recommendation_until_seen_again(
    runtime: Runtime, client: httpx.AsyncClient, account: Account
) -> None:
    tenant_id = account.tenant.tenant_id
    scan_id, _ = await record(runtime, tenant_id, account.connection_id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        resolved = await resolve_missing(
            session,
            scan_id=scan_id,
            connection_id=account.connection_id,
            units=[(HEALTHY_REGION, DISK)],
            now=utcnow(),
        )
    assert resolved == 1

    assert await listed(client, account) == {OPTIMIZER}
    assert await total(client, account) == Decimal("2.00")
    await assert_parts_follow_findings(runtime, tenant_id)

    await record(
        runtime, tenant_id, account.connection_id, UnitWastes(HEALTHY_REGION, DISK, [disk_waste()])
    )

    await assert_shown_once(client, account)
    await assert_parts_follow_findings(runtime, tenant_id)


async def test_a_deleted_finding_takes_its_parts_with_it(
    runtime: Runtime, client: httpx.AsyncClient, account: Account
) -> None:
    tenant_id = account.tenant.tenant_id
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        repository = FindingRepository(session)
        finding = await repository.get(account.disk_finding)
        assert finding is not None
        await repository.delete(finding)

    assert await listed(client, account) == {OPTIMIZER}
    assert await total(client, account) == Decimal("2.00")
    await assert_parts_follow_findings(runtime, tenant_id)
