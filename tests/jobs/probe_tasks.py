"""A schedulable no-op task for the job-platform tests and benchmarks ("probe" kind).

Workers load it with ``VALDRIX_WORKER_IMPORTS=tests.jobs.probe_tasks``. Its optional effect is
an idempotent row in ``probe_effects`` (a table the tests create), so a re-run after a crash can
be seen to change nothing.
"""

from __future__ import annotations

import asyncio

from procrastinate import JobContext
from sqlalchemy import text

from valdrix.jobs.app import job_app
from valdrix.jobs.kinds import register_kind
from valdrix.jobs.retry import BackoffRetry, RetryableError
from valdrix.jobs.tracking import job_runtime
from valdrix.kit.db import unit_of_work

PROBE = register_kind("probe", task_name="probe.run", queue="probe")


@job_app.task(
    name="probe.run",
    queue="probe",
    pass_context=True,
    retry=BackoffRetry(max_attempts=3, base_seconds=0.5, cap_seconds=1),
)
async def probe_run(
    context: JobContext,
    tenant_id: str,
    target_id: str | None = None,
    schedule_id: str | None = None,
    due_at: str | None = None,
    sleep: float = 0.0,
    fail_first: int = 0,
    effect: str | None = None,
) -> None:
    if context.job.attempts < fail_first:
        raise RetryableError("probe asked to fail")
    if sleep:
        await asyncio.sleep(sleep)
    if effect:
        async with unit_of_work(job_runtime(context).sessions, None) as session:
            await session.execute(
                text("INSERT INTO probe_effects (key) VALUES (:key) ON CONFLICT DO NOTHING"),
                {"key": effect},
            )


@job_app.task(name="probe.noop", queue="probe")
async def probe_noop(tenant_id: str | None = None) -> None:
    """The cheapest job there is (benchmarks). Deferred through valdrix's enqueue path it
    carries ``tenant_id`` like every tenant job."""


@job_app.task(
    name="probe.reject",
    queue="probe",
    retry=BackoffRetry(max_attempts=3, base_seconds=0.5, cap_seconds=1),
)
async def probe_reject(tenant_id: str, target_id: str | None = None) -> None:
    """Fails the way a bad input does: not retryable, however many attempts are allowed."""
    raise ValueError("probe rejected its input")
