"""Deferring jobs inside the caller's transaction, with fair priorities and tenant slots.

A job is inserted on the very connection (and transaction) of the caller's SQLAlchemy session,
so "create a record + enqueue its job" commits or rolls back as one. Its tenant-visible mirror
(``job_runs``) is written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate import exceptions as procrastinate_errors
from procrastinate import jobs as procrastinate_jobs
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.jobs.app import job_app
from valdrix.jobs.repository import JobRunRepository, QueueRepository
from valdrix.jobs.tiers import job_priority

# Deferrals of at least this many jobs (the scheduler's batches) check the queue's planner
# statistics; single jobs leave that to autovacuum.
STATISTICS_CHECK_JOBS = 100


@dataclass(frozen=True)
class JobRequest:
    """One job to defer for a tenant."""

    task_name: str
    queue: str
    tenant_id: uuid.UUID
    tier: str
    tenant_backlog: int
    target_id: uuid.UUID | None = None
    schedule_id: uuid.UUID | None = None
    due_at: dt.datetime | None = None
    queueing_lock: str | None = None
    extra_kwargs: dict[str, Any] | None = None
    scheduled_at: dt.datetime | None = None  # not before this time (a retry's backoff)


def tenant_slot_lock(tenant_id: uuid.UUID, key: str, slots: int) -> str:
    """procrastinate runs jobs sharing a lock one at a time. Hashing the target onto one of the
    tenant's ``slots`` locks caps the tenant's running jobs at ``slots`` and never runs two jobs
    of the same target at once."""
    return f"tenant:{tenant_id}:{zlib.crc32(key.encode()) % slots}"


def build_job(request: JobRequest, *, slots: int) -> procrastinate_jobs.Job:
    kwargs: dict[str, Any] = {"tenant_id": str(request.tenant_id)}
    if request.target_id:
        kwargs["target_id"] = str(request.target_id)
    if request.schedule_id:
        kwargs["schedule_id"] = str(request.schedule_id)
    if request.due_at:
        kwargs["due_at"] = request.due_at.isoformat()
    kwargs.update(request.extra_kwargs or {})
    slot_key = str(request.target_id or uuid.uuid4())
    return procrastinate_jobs.Job(
        id=None,
        queue=request.queue,
        task_name=request.task_name,
        task_kwargs=kwargs,
        priority=job_priority(request.tier, request.tenant_backlog),
        lock=tenant_slot_lock(request.tenant_id, slot_key, slots),
        queueing_lock=request.queueing_lock,
        scheduled_at=request.scheduled_at,
    )


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under the session's current transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    return driver


async def defer_in_transaction(
    session: AsyncSession, jobs: list[procrastinate_jobs.Job]
) -> tuple[list[int], int]:
    """Defer ``jobs`` in the session's transaction and mirror them into ``job_runs``.

    A job whose queueing lock is already queued is skipped, not an error. Returns the new job
    ids and how many were skipped.
    """
    if not jobs:
        return [], 0
    queued = await JobRunRepository(session).queued_locks(
        [job.queueing_lock for job in jobs if job.queueing_lock]
    )
    fresh = [job for job in jobs if job.queueing_lock is None or job.queueing_lock not in queued]
    connection = await driver_connection(session)
    try:
        async with session.begin_nested():
            deferred = await job_app.job_manager.batch_defer_jobs_async(
                fresh, connection=connection
            )
    except procrastinate_errors.AlreadyEnqueued:
        # Someone queued one of these targets since we looked: go one by one.
        deferred = []
        for job in fresh:
            try:
                async with session.begin_nested():
                    deferred += await job_app.job_manager.batch_defer_jobs_async(
                        [job], connection=connection
                    )
            except procrastinate_errors.AlreadyEnqueued:
                continue
    ids = [job.id for job in deferred if job.id is not None]
    await JobRunRepository(session).record(ids)
    if len(ids) >= STATISTICS_CHECK_JOBS:
        await QueueRepository(session).refresh_statistics()
    return ids, len(jobs) - len(ids)
