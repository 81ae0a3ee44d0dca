"""Queueing every day's cost jobs: a Cost Explorer import (``costs.ingest``) per active AWS
connection, and a pull of its FOCUS exports from S3 (``costs.pull_focus``) when it names where
they land."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.connections.models import CloudConnection
from valdrix.costs.repositories.reading import CostReadRepository
from valdrix.jobs.service import defer_for_target
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)

TASK_NAME = "costs.ingest"
PULL_TASK_NAME = "costs.pull_focus"
QUEUE = "costs"


async def queue_ingest(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> bool:
    """Defer the connection's import in the session's transaction; False if one is queued."""
    return await _queue(session, settings, tenant_id, connection_id, TASK_NAME, "costs")


async def queue_focus_pull(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> bool:
    """Defer the pull of the connection's FOCUS exports; False if one is queued."""
    return await _queue(session, settings, tenant_id, connection_id, PULL_TASK_NAME, "focus")


async def _queue(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    task_name: str,
    lock_kind: str,
) -> bool:
    queued = await defer_for_target(
        session,
        settings,
        tenant_id=tenant_id,
        task_name=task_name,
        queue=QUEUE,
        target_id=connection_id,
        queueing_lock=f"{lock_kind}:{connection_id}",
    )
    return queued is not None


async def queue_daily_ingests(runtime: Runtime) -> int:
    """One import per active AWS connection, across tenants, and one pull per connection that
    names a FOCUS export; returns how many jobs were queued."""
    async with unit_of_work(runtime.sessions, None) as session:
        targets = await CostReadRepository(session).cost_explorer_targets()
    queued = pulls = 0
    for tenant_id, connection_id in targets:
        # Each tenant's jobs commit in their own transaction: one tenant's trouble skips only it.
        try:
            async with unit_of_work(runtime.sessions, tenant_id) as session:
                queued += await queue_ingest(session, runtime.settings, tenant_id, connection_id)
                connection = await session.get(CloudConnection, connection_id)
                if connection is not None and connection.focus_export_uri:
                    pulled = await queue_focus_pull(
                        session, runtime.settings, tenant_id, connection_id
                    )
                    queued, pulls = queued + pulled, pulls + pulled
        except Exception:
            log.exception(
                "costs.schedule.failed", tenant_id=str(tenant_id), connection_id=str(connection_id)
            )
    log.info("costs.schedule.queued", targets=len(targets), queued=queued, focus_pulls=pulls)
    return queued
