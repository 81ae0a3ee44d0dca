"""``scans.run``: one scan of one cloud connection, scheduled at the tier's cadence or on demand."""

from __future__ import annotations

import uuid

from procrastinate import JobContext

from valdrix.jobs.app import PERIODIC_TASKS, job_app
from valdrix.jobs.kinds import register_kind
from valdrix.jobs.retry import BackoffRetry
from valdrix.jobs.tasks import SYSTEM_QUEUE
from valdrix.jobs.tiers import SYSTEM_PRIORITY
from valdrix.jobs.tracking import job_runtime
from valdrix.kit.db import unit_of_work
from valdrix.scanning import interruptions, service
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
    job_id = context.job.id
    if scan_id:
        scan = uuid.UUID(scan_id)
    else:
        async with unit_of_work(runtime.sessions, tenant) as session:
            scan = await service.open_scheduled_scan(
                session, tenant, uuid.UUID(target_id), job_id=job_id
            )
    return await run_scan(runtime, tenant, scan, job_id=job_id)


@job_app.task(
    name="scans.sweep_interrupted",
    queue=SYSTEM_QUEUE,
    priority=SYSTEM_PRIORITY,
    pass_context=True,
)
async def sweep_interrupted(context: JobContext, timestamp: int | None = None) -> int:
    return await interruptions.end_orphaned_scans(job_runtime(context))


# Right after stalled-job recovery has decided whether a dead worker's job runs again.
PERIODIC_TASKS.append((sweep_interrupted, lambda settings: settings.jobs.recovery_interval_seconds))
