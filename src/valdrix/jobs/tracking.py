"""Worker middleware: mirror each job's progress into ``job_runs`` and count outcomes.

Runs around every job on the worker's event loop. Tenant jobs carry ``tenant_id`` in their
arguments, and the mirror is written under that tenant's context (row-level security applies)
like any other tenant data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import psycopg
import structlog
from procrastinate import JobContext
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker

from valdrix.jobs.app import job_pool
from valdrix.jobs.models import JobStatus
from valdrix.jobs.repository import RunMirror
from valdrix.kit import metrics
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
        await _mirror_step(tenant_id, job.id, JobStatus.running, attempts=job.attempts + 1)
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
            await _mirror_step(
                tenant_id,
                job.id,
                status,
                error_summary=f"{type(exc).__name__}: {exc}"[:ERROR_SUMMARY_LIMIT],
            )
        raise
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "job_type", "tenant_id")
    metrics.BACKGROUND_JOBS_TOTAL.labels(job_type=task_name, outcome="succeeded").inc()
    metrics.JOB_DURATION.labels(job_type=task_name).observe(time.perf_counter() - started)
    if tenant_id:
        schedule_id = job.task_kwargs.get("schedule_id")
        await _mirror_step(
            tenant_id,
            job.id,
            JobStatus.succeeded,
            schedule_id=uuid.UUID(str(schedule_id)) if schedule_id else None,
        )
    return result


def _will_retry(context: JobContext, exc: BaseException) -> bool:
    strategy = context.task.retry_strategy if context.task else None
    return bool(strategy and strategy.get_retry_decision(exception=exc, job=context.job))


async def _mirror_step(
    tenant_id: uuid.UUID,
    job_id: int | None,
    status: JobStatus,
    *,
    attempts: int | None = None,
    error_summary: str | None = None,
    schedule_id: uuid.UUID | None = None,
) -> None:
    """Mirror one step of a job into its run, as the job's tenant, in one statement.

    This runs twice for every job, so it is one function call in autocommit on a connection of
    the job app's psycopg pool, not an ORM session, whose overhead is several times
    procrastinate's own per-job work (see benchmarks/README.md).
    """
    if job_id is None:
        return
    async with job_pool().connection() as connection:
        await connection.set_autocommit(True)
        try:
            await RunMirror(connection).record_step(
                tenant_id,
                job_id,
                status,
                attempts=attempts,
                error_summary=error_summary,
                schedule_id=schedule_id,
            )
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection leaves the pool
                await connection.set_autocommit(False)
