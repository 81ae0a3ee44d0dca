"""``costs.ingest``: one connection's Cost Explorer import; ``costs.schedule_daily`` queues one
per active AWS connection every day."""

from __future__ import annotations

import uuid

from procrastinate import JobContext

from valdrix.costs.ingest_service import QUEUE, TASK_NAME, ingest_cost_explorer, queue_daily_ingests
from valdrix.jobs.app import PERIODIC_TASKS, job_app
from valdrix.jobs.retry import BackoffRetry
from valdrix.jobs.tasks import SYSTEM_QUEUE
from valdrix.jobs.tiers import SYSTEM_PRIORITY
from valdrix.jobs.tracking import job_runtime

DAY_SECONDS = 86400
# Throttling clears within minutes; every attempt re-reads (and re-pays for) every page.
INGEST_RETRY = BackoffRetry(max_attempts=4, base_seconds=30.0, cap_seconds=1800.0)


@job_app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=INGEST_RETRY)
async def ingest(context: JobContext, tenant_id: str, target_id: str) -> str:
    final_attempt = context.job.attempts + 1 >= INGEST_RETRY.max_attempts
    run = await ingest_cost_explorer(
        job_runtime(context),
        uuid.UUID(tenant_id),
        uuid.UUID(target_id),
        final_attempt=final_attempt,
    )
    return run.status


@job_app.task(
    name="costs.schedule_daily", queue=SYSTEM_QUEUE, priority=SYSTEM_PRIORITY, pass_context=True
)
async def schedule_daily(context: JobContext, timestamp: int | None = None) -> int:
    return await queue_daily_ingests(job_runtime(context))


PERIODIC_TASKS.append((schedule_daily, lambda settings: DAY_SECONDS))
