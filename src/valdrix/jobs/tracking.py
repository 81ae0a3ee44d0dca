"""Worker middleware: mirror each job's progress into ``job_runs`` and count outcomes.

Runs around every job on the worker's event loop. Tenant jobs carry ``tenant_id`` in their
arguments, and the mirror is written under that tenant's context (row-level security applies)
like any other tenant data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog
from procrastinate import JobContext
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker

from valdrix.jobs.app import job_pool
from valdrix.jobs.models import JobStatus
from valdrix.jobs.repository import RunMirror
from valdrix.kit import metrics
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)
ERROR_SUMMARY_LIMIT = 500


def job_runtime(context: JobContext) -> Runtime:
    runtime: Runtime = context.additional_context["runtime"]
    return runtime


def tenant_of(context: JobContext) -> uuid.UUID | None:
    raw = context.job.task_kwargs.get("tenant_id")
    return uuid.UUID(str(raw)) if raw else None


async def track_job(call_next: AsyncCallNext, context: JobContext, worker: Worker) -> Any:
    job, task_name = context.job, context.job.task_name
    tenant_id = tenant_of(context)
    structlog.contextvars.bind_contextvars(job_id=job.id, job_type=task_name)
    if tenant_id:
        structlog.contextvars.bind_contextvars(tenant_id=str(tenant_id))
        await _update_run(
            tenant_id,
            job.id,
            status=JobStatus.running,
            started_at=utcnow(),
            attempts=job.attempts + 1,
            finished_at=None,
        )
    started = time.perf_counter()
    try:
        result = await call_next()
    except BaseException as exc:
        retrying = _will_retry(context, exc)
        outcome = (
            "retried"
            if retrying
            else ("cancelled" if isinstance(exc, asyncio.CancelledError) else "failed")
        )
        metrics.BACKGROUND_JOBS_TOTAL.labels(job_type=task_name, outcome=outcome).inc()
        metrics.JOB_DURATION.labels(job_type=task_name).observe(time.perf_counter() - started)
        log.warning("job." + outcome, error=type(exc).__name__, attempts=job.attempts + 1)
        if tenant_id:
            status = {"cancelled": JobStatus.cancelled, "retried": JobStatus.retrying}.get(
                outcome, JobStatus.failed
            )
            await _update_run(
                tenant_id,
                job.id,
                status=status,
                finished_at=None if retrying else utcnow(),
                error_summary=f"{type(exc).__name__}: {exc}"[:ERROR_SUMMARY_LIMIT],
            )
        raise
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "job_type", "tenant_id")
    metrics.BACKGROUND_JOBS_TOTAL.labels(job_type=task_name, outcome="succeeded").inc()
    metrics.JOB_DURATION.labels(job_type=task_name).observe(time.perf_counter() - started)
    if tenant_id:
        await _update_run(
            tenant_id,
            job.id,
            status=JobStatus.succeeded,
            finished_at=utcnow(),
            error_summary=None,
            schedule_id=job.task_kwargs.get("schedule_id"),
        )
    return result


def _will_retry(context: JobContext, exc: BaseException) -> bool:
    strategy = context.task.retry_strategy if context.task else None
    return bool(strategy and strategy.get_retry_decision(exception=exc, job=context.job))


async def _update_run(
    tenant_id: uuid.UUID,
    job_id: int | None,
    *,
    status: JobStatus,
    schedule_id: object = None,
    **values: Any,
) -> None:
    """Mirror one step of a job into its run, as the job's tenant, in one short transaction.

    This runs twice for every job, so it uses a connection of the job app's psycopg pool
    rather than an ORM session, whose overhead is several times procrastinate's own per-job
    work (see benchmarks/README.md).
    """
    if job_id is None:
        return
    async with job_pool().connection() as connection, connection.transaction():
        mirror = RunMirror(connection)
        await mirror.as_tenant(tenant_id)
        if await mirror.update(job_id, status=status.value, **values) and schedule_id:
            await mirror.mark_schedule_completed(uuid.UUID(str(schedule_id)), utcnow())
