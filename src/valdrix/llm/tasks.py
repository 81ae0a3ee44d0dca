"""``llm.expire_reservations``: release budget reservations whose worker died mid-call."""

from __future__ import annotations

from procrastinate import JobContext

from valdrix.jobs.app import PERIODIC_TASKS, job_app
from valdrix.jobs.tasks import SYSTEM_QUEUE
from valdrix.jobs.tiers import SYSTEM_PRIORITY
from valdrix.jobs.tracking import job_runtime
from valdrix.llm import budget


@job_app.task(
    name="llm.expire_reservations",
    queue=SYSTEM_QUEUE,
    priority=SYSTEM_PRIORITY,
    pass_context=True,
)
async def expire_reservations(context: JobContext, timestamp: int | None = None) -> int:
    return await budget.expire_reservations(job_runtime(context))


PERIODIC_TASKS.append((expire_reservations, lambda settings: 60))
