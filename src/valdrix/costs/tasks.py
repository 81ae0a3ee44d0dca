"""``costs.ingest``: one connection's Cost Explorer import; ``costs.pull_focus``: one connection's
FOCUS exports pulled from S3; ``costs.schedule_daily`` queues them every day (an import per active
AWS connection, a pull per connection that names an export)."""

from __future__ import annotations

import uuid
from collections import Counter

from procrastinate import JobContext

from valdrix.costs.scheduling import PULL_TASK_NAME, QUEUE, TASK_NAME, queue_daily_ingests
from valdrix.costs.sources.cost_explorer_pull import ingest_cost_explorer
from valdrix.costs.sources.s3_pull import pull_focus_exports
from valdrix.jobs.app import PERIODIC_TASKS, job_app
from valdrix.jobs.retry import BackoffRetry
from valdrix.jobs.tasks import SYSTEM_QUEUE
from valdrix.jobs.tiers import SYSTEM_PRIORITY
from valdrix.jobs.tracking import job_runtime

DAY_SECONDS = 86400
# Throttling clears within minutes; every attempt re-reads (and re-pays for) every page.
INGEST_RETRY = BackoffRetry(max_attempts=4, base_seconds=30.0, cap_seconds=1800.0)
# A delivery being rewritten or S3 throttling settles within minutes; imported deliveries are
# skipped on the next attempt.
PULL_RETRY = BackoffRetry(max_attempts=5, base_seconds=30.0, cap_seconds=1800.0)


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


@job_app.task(name=PULL_TASK_NAME, queue=QUEUE, pass_context=True, retry=PULL_RETRY)
async def pull_focus(context: JobContext, tenant_id: str, target_id: str) -> str:
    final_attempt = context.job.attempts + 1 >= PULL_RETRY.max_attempts
    runs = await pull_focus_exports(
        job_runtime(context),
        uuid.UUID(tenant_id),
        uuid.UUID(target_id),
        final_attempt=final_attempt,
    )
    statuses = Counter(run.status for run in runs)
    return ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "nothing new"


@job_app.task(
    name="costs.schedule_daily", queue=SYSTEM_QUEUE, priority=SYSTEM_PRIORITY, pass_context=True
)
async def schedule_daily(context: JobContext, timestamp: int | None = None) -> int:
    return await queue_daily_ingests(job_runtime(context))


PERIODIC_TASKS.append((schedule_daily, lambda settings: DAY_SECONDS))
