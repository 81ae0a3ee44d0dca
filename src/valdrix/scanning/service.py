"""Starting scans, reading them and their events."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.connections.service import SCAN_KIND, get_connection
from valdrix.errors import NotFound
from valdrix.jobs.service import run_now
from valdrix.kit.orm import utcnow
from valdrix.scanning.models import Scan, ScanEvent, ScanStatus, ScanUnit
from valdrix.scanning.repository import ScanEventRepository, ScanRepository
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal


async def start_scan(
    session: AsyncSession, actor: Principal, settings: Settings, *, connection_id: uuid.UUID
) -> Scan:
    """Queue a scan of a connection (one transaction: the scan row and its job), or return the
    scan already waiting for it."""
    connection = await get_connection(session, actor, connection_id)
    scans = ScanRepository(session)
    waiting = await scans.queued_for(connection.id)
    if waiting is not None:
        return waiting
    scan = await scans.add(
        Scan(tenant_id=actor.tenant_id, connection_id=connection.id, trigger="manual")
    )
    ScanEventRepository(session).add_event(
        actor.tenant_id, scan.id, "scan.queued", {"trigger": "manual"}, utcnow()
    )
    # If a scheduled scan of this connection is already queued, it adopts this row when it starts.
    await run_now(
        session,
        actor,
        settings,
        kind=SCAN_KIND,
        target_id=connection.id,
        extra_kwargs={"scan_id": str(scan.id)},
    )
    await record_audit(
        session,
        actor,
        "scan.start",
        target_type="scan",
        target_id=scan.id,
        details={"connection_id": str(connection.id)},
    )
    return scan


async def open_scheduled_scan(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, *, job_id: int | None
) -> uuid.UUID:
    """The scan a scheduled job runs: the one an earlier attempt of the job began, a manual
    scan already waiting, or a new one."""
    scans = ScanRepository(session)
    begun = None if job_id is None else await scans.started_by_job(job_id)
    if begun is not None:
        return begun.id
    waiting = await scans.queued_for(connection_id)
    if waiting is not None:
        return waiting.id
    scan = await ScanRepository(session).add(
        Scan(tenant_id=tenant_id, connection_id=connection_id, trigger="scheduled")
    )
    return scan.id


async def get_scan(
    session: AsyncSession, actor: Principal, scan_id: uuid.UUID
) -> tuple[Scan, list[ScanUnit]]:
    scans = ScanRepository(session)
    scan = await scans.get(scan_id)
    if scan is None:
        raise NotFound("scan not found")
    return scan, await scans.units(scan.id)


async def list_scans(
    session: AsyncSession, actor: Principal, *, limit: int, connection_id: uuid.UUID | None
) -> list[Scan]:
    return await ScanRepository(session).page(limit=limit, connection_id=connection_id)


# Events read at most per statement; a reader that gets this many reads again.
EVENTS_PER_READ = 500


async def events_after(
    session: AsyncSession, actor: Principal, scan_id: uuid.UUID, last_id: int
) -> tuple[list[ScanEvent], bool]:
    """Events after ``last_id`` and whether the scan has finished."""
    scan = await ScanRepository(session).get(scan_id)
    if scan is None:
        raise NotFound("scan not found")
    events = await ScanEventRepository(session).after(scan_id, last_id, limit=EVENTS_PER_READ)
    return events, scan.status not in (ScanStatus.queued, ScanStatus.running)
