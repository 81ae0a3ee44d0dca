"""Tenant-facing job operations: schedules for targets, immediate runs, job history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.errors import InvalidInput, NotFound
from valdrix.jobs.enqueue import JobRequest, build_job, defer_in_transaction
from valdrix.jobs.kinds import get_kind
from valdrix.jobs.models import JobRun, JobStatus, Schedule
from valdrix.jobs.repository import JobRunRepository, ScheduleRepository
from valdrix.jobs.tiers import cadence
from valdrix.kit.orm import utcnow
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import Tenant
from valdrix.tenancy.service import get_tenant


async def ensure_schedule(
    session: AsyncSession,
    actor: Principal,
    *,
    kind: str,
    target_id: uuid.UUID,
    first_due_at: dt.datetime | None = None,
) -> Schedule:
    """Schedule ``kind`` work for a target at its tier's cadence (idempotent)."""
    get_kind(kind)
    schedules = ScheduleRepository(session)
    existing = await schedules.for_target(kind, target_id)
    if existing is not None:
        return existing
    return await schedules.add(
        Schedule(
            tenant_id=actor.tenant_id,
            kind=kind,
            target_id=target_id,
            next_due_at=first_due_at or utcnow(),
        )
    )


async def push_back_schedule(
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    *,
    kind: str,
    target_id: uuid.UUID,
) -> None:
    """A run started by hand stands in for the scheduled one: the next is a full cadence away."""
    schedule = await ScheduleRepository(session).for_target(kind, target_id)
    if schedule is None:
        return
    tier = (await get_tenant(session, actor)).tier
    schedule.next_due_at = max(schedule.next_due_at, utcnow() + cadence(settings, tier))
    await session.flush()


async def run_now(
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    *,
    kind: str,
    target_id: uuid.UUID,
    extra_kwargs: dict[str, Any] | None = None,
) -> int | None:
    """Queue a target's job now, in the caller's transaction (None if one is already queued),
    and push its schedule back a full cadence: the run asked for stands in for the scheduled
    one, which would otherwise follow it as soon as it is due (twice the work, and the cost)."""
    scheduled = get_kind(kind)
    await get_tenant(session, actor)  # a clear 404 for a tenant the credential cannot see
    await push_back_schedule(session, actor, settings, kind=kind, target_id=target_id)
    return await defer_for_target(
        session,
        settings,
        tenant_id=actor.tenant_id,
        task_name=scheduled.task_name,
        queue=scheduled.queue,
        target_id=target_id,
        queueing_lock=f"{kind}:{target_id}",
        extra_kwargs=extra_kwargs,
    )


async def defer_for_target(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    task_name: str,
    queue: str,
    target_id: uuid.UUID,
    queueing_lock: str,
    scheduled_at: dt.datetime | None = None,
    extra_kwargs: dict[str, Any] | None = None,
) -> int | None:
    """Queue one job for a tenant's target in the caller's transaction, with the tenant's fair
    priority and slot lock. None if a job with the queueing lock is already queued."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise LookupError(f"tenant {tenant_id} is not visible in this transaction")
    request = JobRequest(
        task_name=task_name,
        queue=queue,
        tenant_id=tenant_id,
        tier=tenant.tier,
        tenant_backlog=await JobRunRepository(session).backlog(),
        target_id=target_id,
        queueing_lock=queueing_lock,
        extra_kwargs=extra_kwargs,
        scheduled_at=scheduled_at,
    )
    ids, _ = await defer_in_transaction(
        session, [build_job(request, slots=settings.jobs.tenant_job_slots)]
    )
    return ids[0] if ids else None


async def list_job_runs(
    session: AsyncSession,
    actor: Principal,
    *,
    cursor: str | None,
    limit: int,
    status: str | None,
    task_name: str | None,
) -> tuple[list[JobRun], str | None]:
    if status is not None and status not in set(JobStatus):
        raise InvalidInput(f"status must be one of {', '.join(JobStatus)}")
    before = _decode_cursor(cursor) if cursor else None
    runs = await JobRunRepository(session).page(
        before=before, limit=limit + 1, status=status, task_name=task_name
    )
    has_more = len(runs) > limit
    runs = runs[:limit]
    last = runs[-1] if runs and has_more else None
    return runs, f"{last.created_at.isoformat()}|{last.id}" if last else None


async def upcoming_schedules(session: AsyncSession, actor: Principal) -> list[Schedule]:
    """What will run next for the tenant (scans of each connection, imports), soonest first."""
    return await ScheduleRepository(session).upcoming()


async def get_job_run(session: AsyncSession, actor: Principal, job_run_id: uuid.UUID) -> JobRun:
    run = await JobRunRepository(session).get(job_run_id)
    if run is None:
        raise NotFound("job not found")
    return run


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        created, _, run_id = cursor.partition("|")
        return dt.datetime.fromisoformat(created), uuid.UUID(run_id)
    except ValueError as exc:
        raise InvalidInput("cursor is not one this API returned") from exc
