"""Keeping the queue healthy: stalled-job recovery, stuck-job detection, retention."""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from procrastinate.jobs import Job

from valdrix.jobs.app import PatientJobManager, job_app
from valdrix.jobs.models import JobStatus
from valdrix.jobs.repository import JobRunRepository, QueueRepository
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.tenancy.repository import LoginAttemptRepository, RequestBucketRepository

log = structlog.get_logger(__name__)


async def recover_stalled_jobs(runtime: Runtime) -> int:
    """Re-queue jobs whose worker stopped sending heartbeats (crashed, killed, partitioned).

    A stalled job whose queueing lock a newer job of the same target already holds (the
    scheduler queued the next scan of a connection while the first one's worker was dead) is
    retired instead: the newer job runs, and holding the stalled one ``doing`` would block its
    tenant's slot for ever. Each job is recovered on its own: one that cannot be does not stop
    the others. Returns how many were recovered (re-queued or retired).
    """
    timeout = runtime.settings.jobs.stall_timeout_seconds
    manager = job_app.job_manager
    recovered = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=timeout):
        try:
            outcome = await _recover(runtime, job)
        except Exception as exc:
            log.error(
                "job.stalled_recovery_failed",
                job_id=job.id,
                job_type=job.task_name,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            continue
        recovered += 1
        metrics.JOBS_STALLED_RECOVERED.labels(job_type=job.task_name).inc()
        log.warning(
            "job.stalled_recovered",
            job_id=job.id,
            job_type=job.task_name,
            outcome=outcome,
            attempts=job.attempts + 1,
        )
    await manager.prune_stalled_workers(seconds_since_heartbeat=timeout)
    return recovered


async def _recover(runtime: Runtime, job: Job) -> str:
    assert job.id is not None
    manager = job_app.job_manager
    assert isinstance(manager, PatientJobManager)
    if await manager.retry_or_retire(job.id, utcnow()):
        status, outcome = JobStatus.queued, "retried"
        summary = "worker stopped responding; re-queued"
    else:
        status, outcome = JobStatus.failed, "retired"
        summary = (
            "worker stopped responding; a job of the same target was already queued and runs"
            " instead"
        )
    tenant = job.task_kwargs.get("tenant_id")
    if tenant:
        async with unit_of_work(runtime.sessions, uuid.UUID(str(tenant))) as session:
            run = await JobRunRepository(session).by_job_id(job.id)
            if run is not None:
                run.status = status.value
                run.error_summary = summary
                if status == JobStatus.failed:
                    run.finished_at = utcnow()
    return outcome


async def detect_stuck_jobs(runtime: Runtime) -> int:
    """Report (never fail) jobs waiting more than the threshold past their scheduled time."""
    async with unit_of_work(runtime.sessions, None) as session:
        stuck = await QueueRepository(session).stuck(runtime.settings.jobs.stuck_after_seconds)
    for job in stuck:
        log.error(
            "job.stuck",
            job_id=job.job_id,
            job_type=job.task_name,
            queue=job.queue,
            tenant_id=job.tenant_id,
            due_at=job.due_at.isoformat(),
            overdue_seconds=round(job.overdue_seconds),
        )
    metrics.JOBS_STUCK.set(len(stuck))
    return len(stuck)


async def prune_finished(runtime: Runtime) -> None:
    """Retention: finished jobs, old tenant job history, stale login-throttle rows."""
    settings = runtime.settings
    await job_app.job_manager.delete_old_jobs(
        nb_hours=settings.jobs.retention_hours,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
    now = utcnow()
    async with unit_of_work(runtime.sessions, None) as session:
        pruned = await JobRunRepository(session).prune(
            now - dt.timedelta(days=settings.jobs.run_retention_days)
        )
        await LoginAttemptRepository(session).prune(now - dt.timedelta(hours=1))
        # Only a full bucket is pruned: the next request's new (full) one changes nothing.
        idle = max(3600.0, settings.rate_limits.full_after_seconds)
        buckets = await RequestBucketRepository(session).prune(now - dt.timedelta(seconds=idle))
    log.info("jobs.pruned", job_runs=pruned, request_buckets=buckets)
