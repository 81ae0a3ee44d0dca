"""``analysis.run``: the LLM analysis of one finished scan."""

from __future__ import annotations

import uuid

from procrastinate import JobContext

from valdrix.analysis import service
from valdrix.analysis.runs import run_analysis
from valdrix.jobs.app import job_app
from valdrix.jobs.retry import BackoffRetry
from valdrix.jobs.tracking import job_runtime


# Provider outages are handled inside (the analysis re-queues itself); what is retried here is
# a ledger that could not be reached, so no call was made.
@job_app.task(
    name=service.TASK_NAME,
    queue=service.QUEUE,
    pass_context=True,
    retry=BackoffRetry(max_attempts=6),
)
async def run(context: JobContext, tenant_id: str, target_id: str) -> str:
    return await run_analysis(job_runtime(context), uuid.UUID(tenant_id), uuid.UUID(target_id))
