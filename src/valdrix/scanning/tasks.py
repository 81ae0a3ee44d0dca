"""``scans.run``: one scan of one cloud connection, scheduled at the tier's cadence or on demand."""

from __future__ import annotations

import uuid

from procrastinate import JobContext

from valdrix.jobs.app import job_app
from valdrix.jobs.kinds import register_kind
from valdrix.jobs.retry import BackoffRetry
from valdrix.jobs.tracking import job_runtime
from valdrix.kit.db import unit_of_work
from valdrix.scanning import service
from valdrix.scanning.engine import run_scan

SCAN = register_kind("scan", task_name="scans.run", queue="scans")


# A scan records its own partial failures; only a crash before it starts is worth a retry.
@job_app.task(
    name="scans.run", queue="scans", pass_context=True, retry=BackoffRetry(max_attempts=3)
)
async def run(
    context: JobContext,
    tenant_id: str,
    target_id: str,
    scan_id: str | None = None,
    schedule_id: str | None = None,
    due_at: str | None = None,
) -> str:
    runtime = job_runtime(context)
    tenant = uuid.UUID(tenant_id)
    if scan_id:
        scan = uuid.UUID(scan_id)
    else:
        async with unit_of_work(runtime.sessions, tenant) as session:
            scan = await service.open_scheduled_scan(session, tenant, uuid.UUID(target_id))
    return await run_scan(runtime, tenant, scan)
