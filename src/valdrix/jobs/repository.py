"""SQL of the job platform: schedules, job runs (tenant tables), and read-only queries on
procrastinate's global tables for operators and metrics."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.jobs.models import JobRun, JobStatus, Schedule
from valdrix.kit.repository import Repository

ACTIVE_STATUSES = (JobStatus.queued, JobStatus.running, JobStatus.retrying)


@dataclass(frozen=True)
class DueSchedule:
    schedule_id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    target_id: uuid.UUID
    tier: str
    due_at: dt.datetime
    tenant_backlog: int


class ScheduleRepository(Repository[Schedule]):
    model = Schedule

    async def database_now(self) -> dt.datetime:
        """The database's clock (the start of the transaction): every worker ticks by it."""
        now: dt.datetime = await self.session.scalar(text("SELECT now()"))
        return now

    async def claim_due(
        self, now: dt.datetime, limit: int, cadence_seconds: dict[str, float]
    ) -> list[DueSchedule]:
        """Lock and advance up to ``limit`` due schedules of every tenant (resolver function)."""
        rows = await self.session.execute(
            text(
                "SELECT * FROM valdrix_claim_due_schedules(:now, :limit, CAST(:cadence AS jsonb))"
            ),
            {"now": now, "limit": limit, "cadence": json.dumps(cadence_seconds)},
        )
        return [DueSchedule(*row) for row in rows]

    async def upcoming(self) -> list[Schedule]:
        """The tenant's enabled schedules, soonest due first."""
        rows = await self.session.scalars(
            select(Schedule)
            .where(Schedule.enabled.is_(True))
            .order_by(Schedule.next_due_at, Schedule.id)
        )
        return list(rows)

    async def for_target(self, kind: str, target_id: uuid.UUID) -> Schedule | None:
        result: Schedule | None = await self.session.scalar(
            select(Schedule).where(Schedule.kind == kind, Schedule.target_id == target_id)
        )
        return result


class JobRunRepository(Repository[JobRun]):
    model = JobRun

    async def record(self, procrastinate_job_ids: Sequence[int]) -> None:
        """Mirror just-deferred jobs (data comes from procrastinate's rows, by id)."""
        if procrastinate_job_ids:
            await self.session.execute(
                text("SELECT valdrix_record_job_runs(CAST(:ids AS bigint[]))"),
                {"ids": list(procrastinate_job_ids)},
            )

    async def queued_locks(self, queueing_locks: Sequence[str]) -> set[str]:
        if not queueing_locks:
            return set()
        rows = await self.session.execute(
            text(
                "SELECT queueing_lock FROM procrastinate_jobs"
                " WHERE status = 'todo' AND queueing_lock = ANY(:locks)"
            ),
            {"locks": list(queueing_locks)},
        )
        return {row[0] for row in rows}

    async def by_job_id(self, procrastinate_job_id: int) -> JobRun | None:
        result: JobRun | None = await self.session.scalar(
            select(JobRun).where(JobRun.procrastinate_job_id == procrastinate_job_id)
        )
        return result

    async def backlog(self) -> int:
        """The current tenant's jobs that are queued or running."""
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(JobRun)
                .where(JobRun.status.in_([s.value for s in ACTIVE_STATUSES]))
            )
            or 0
        )

    async def page(
        self,
        *,
        before: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
        status: str | None,
        task_name: str | None,
    ) -> list[JobRun]:
        query = select(JobRun).order_by(JobRun.created_at.desc(), JobRun.id.desc()).limit(limit)
        if before is not None:
            query = query.where(
                (JobRun.created_at < before[0])
                | ((JobRun.created_at == before[0]) & (JobRun.id < before[1]))
            )
        if status:
            query = query.where(JobRun.status == status)
        if task_name:
            query = query.where(JobRun.task_name == task_name)
        return list(await self.session.scalars(query))

    async def prune(self, before: dt.datetime) -> int:
        rows = await self.session.execute(
            text("SELECT * FROM valdrix_prune_job_runs(:before)"), {"before": before}
        )
        return len(rows.all())


class RunMirror:
    """A worker's writes to ``job_runs`` as its jobs progress, on a plain psycopg connection.

    Workers write twice per job, and an ORM session (or even a transaction of several
    statements) would cost more than procrastinate's own per-job work, so each step is one call
    of ``valdrix_mirror_job_run`` in autocommit: one round trip. The function sets the job's
    tenant for its own statement, the way the session hook does, and runs as the caller, so
    row-level security applies unchanged.
    """

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection

    async def record_step(
        self,
        tenant_id: uuid.UUID,
        procrastinate_job_id: int,
        status: JobStatus,
        *,
        attempts: int | None = None,
        error_summary: str | None = None,
        schedule_id: uuid.UUID | None = None,
    ) -> bool:
        """Mirror one step; False if the job has no run (not a tenant job).

        ``running`` sets the start time (and ``attempts``); ``running`` and ``retrying`` clear
        the finish time and an ending step sets it (the database's clock); every step but
        ``running`` replaces the error summary. A succeeded job marks its schedule completed.
        """
        cursor = await self.connection.execute(
            "SELECT valdrix_mirror_job_run(%s, %s, %s, %s, %s, %s)",
            (tenant_id, procrastinate_job_id, status.value, attempts, error_summary, schedule_id),
        )
        row = await cursor.fetchone()
        return bool(row and row[0])


@dataclass(frozen=True)
class StuckJob:
    job_id: int
    task_name: str
    queue: str
    tenant_id: str | None
    due_at: dt.datetime
    overdue_seconds: float


# A queued job's "time" is when it was scheduled to run (a retry reschedules it), or else when
# it was deferred. Only a job waiting well past that time is stuck.
STUCK_JOBS_SQL = """
SELECT j.id, j.task_name, j.queue_name, j.args ->> 'tenant_id',
       coalesce(j.scheduled_at, d.at) AS due,
       extract(epoch FROM now() - coalesce(j.scheduled_at, d.at))
FROM procrastinate_jobs j
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at FROM procrastinate_events e
    WHERE e.job_id = j.id AND e.type = 'deferred'
) d ON true
WHERE j.status = 'todo'
  AND coalesce(j.scheduled_at, d.at) < now() - make_interval(secs => :threshold)
ORDER BY due
LIMIT :limit
"""


class QueueRepository:
    """Views of the global job queue (no tenant data beyond ids), and its planner statistics."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refresh_statistics(self) -> bool:
        """ANALYZE the queue if it holds far more queued jobs than its statistics expect (True).

        Statistics of a near-empty queue make procrastinate's fetch check every queued job's
        lock, and sort them all, on every fetch until autovacuum looks again; a sweep that
        defers thousands of jobs into a fresh installation would run at a tenth of its speed.
        """
        return bool(
            await self.session.scalar(text("SELECT valdrix_refresh_job_queue_statistics()"))
        )

    async def queued_by_task(self) -> dict[str, int]:
        rows = await self.session.execute(
            text(
                "SELECT task_name, count(*) FROM procrastinate_jobs"
                " WHERE status = 'todo' GROUP BY task_name"
            )
        )
        return {row[0]: int(row[1]) for row in rows}

    async def stuck(self, threshold_seconds: float, limit: int = 1000) -> list[StuckJob]:
        rows = await self.session.execute(
            text(STUCK_JOBS_SQL), {"threshold": threshold_seconds, "limit": limit}
        )
        return [StuckJob(row[0], row[1], row[2], row[3], row[4], float(row[5])) for row in rows]

    async def schedule_lag(self) -> dict[str, float]:
        rows = await self.session.execute(
            text("SELECT tier, lag_seconds FROM valdrix_schedule_lag(now())")
        )
        return {row[0]: float(row[1]) for row in rows}

    async def recent_jobs(
        self, *, limit: int, status: str | None, tenant_id: uuid.UUID | None
    ) -> list[dict[str, object]]:
        rows = await self.session.execute(
            text(
                "SELECT j.id, j.task_name, j.queue_name, j.status::text, j.attempts, j.priority,"
                " j.scheduled_at, j.args ->> 'tenant_id' AS tenant_id, j.queueing_lock,"
                " (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id)"
                " AS updated_at"
                " FROM procrastinate_jobs j"
                " WHERE (CAST(:status AS text) IS NULL OR j.status::text = :status)"
                " AND (CAST(:tenant AS text) IS NULL OR j.args ->> 'tenant_id' = :tenant)"
                " ORDER BY j.id DESC LIMIT :limit"
            ),
            {"limit": limit, "status": status, "tenant": str(tenant_id) if tenant_id else None},
        )
        return [dict(row._mapping) for row in rows]
