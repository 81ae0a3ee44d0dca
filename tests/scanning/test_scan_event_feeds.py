"""Many people watching one scan cost the database what one does: the API process reads the
scan's new events once per change, when the database notifies it, and hands them to every
stream; an event whose notification never came still arrives, a few seconds later. Read over
real HTTP, as browsers and scripts do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from benchmarks.sse_watchers import Watchers

from tests.conftest import TenantFixture
from tests.fixtures.http import served_app
from tests.fixtures.jobs import SuperuserDb
from tests.observability.helpers import sample, scrape, value
from tests.scanning.helpers import queued_scan
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.live import FALLBACK_POLL_SECONDS
from valdrix.scanning.repository import ScanEventRepository

WATCHERS = 20
READS = {"statement": "ScanEventRepository.after"}


async def write_event(runtime: Runtime, tenant: TenantFixture, scan_id: str, name: str) -> None:
    """One unit's event, written as the scan engine writes them."""
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await ScanEventRepository(session).add_many(
            tenant.tenant_id, uuid.UUID(scan_id), [(name, {})], datetime.now(UTC)
        )


async def test_twenty_watchers_of_a_scan_are_fed_by_fewer_reads_than_watchers(
    runtime: Runtime, make_tenant: Any, client: httpx.AsyncClient
) -> None:
    tenant: TenantFixture = await make_tenant()
    async with served_app(runtime) as server:
        scan_id = await queued_scan(server, runtime, tenant)
        path = f"/api/v1/scans/{scan_id}/events"
        before = await scrape(client)
        async with Watchers(server, path, tenant.auth, WATCHERS) as watching:
            await watching.wait_until(lambda: all(w.events for w in watching.watchers), 30)
            assert sample(await scrape(client), "valdrix_sse_watchers") == WATCHERS

            for n in range(3):
                await write_event(runtime, tenant, scan_id, f"unit.{n}")
                # Delivered on the notification, well before the fallback read would come.
                await watching.wait_until(
                    lambda n=n: all(f"unit.{n}" in w.events for w in watching.watchers),
                    FALLBACK_POLL_SECONDS - 1,
                )
            during = await scrape(client)
        after = await scrape(client)

    for watcher in watching.watchers:
        assert watcher.events == ["scan.queued", "unit.0", "unit.1", "unit.2"]
    reads = value(during, "valdrix_db_statement_seconds_count", **READS) - value(
        before, "valdrix_db_statement_seconds_count", **READS
    )
    # One read to start and about one per event: each watcher polling would have made hundreds.
    assert 1 <= reads < WATCHERS
    assert sample(after, "valdrix_sse_watchers") == 0


async def test_an_event_whose_notification_never_came_arrives_at_the_next_fallback_read(
    runtime: Runtime, make_tenant: Any, superuser_db: SuperuserDb
) -> None:
    tenant: TenantFixture = await make_tenant()
    async with served_app(runtime) as server:
        scan_id = await queued_scan(server, runtime, tenant)
        path = f"/api/v1/scans/{scan_id}/events"
        async with Watchers(server, path, tenant.auth, 2) as watching:
            await watching.wait_until(lambda: all(w.events for w in watching.watchers), 30)
            # Written with triggers off for this session: no notification is sent.
            await superuser_db.rows("SET session_replication_role = replica")
            await superuser_db.rows(
                "INSERT INTO scan_events (tenant_id, scan_id, type, payload, created_at)"
                " VALUES (%s, %s, 'unit.unannounced', '{}', now())",
                tenant.tenant_id,
                scan_id,
            )
            await superuser_db.rows("SET session_replication_role = DEFAULT")
            await watching.wait_until(
                lambda: all("unit.unannounced" in w.events for w in watching.watchers),
                FALLBACK_POLL_SECONDS + 2,
            )
    for watcher in watching.watchers:
        assert watcher.events == ["scan.queued", "unit.unannounced"]
