"""Helpers for tests that need jobs to exist."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from valdrix.jobs import service
from valdrix.jobs.app import job_app, open_job_app
from valdrix.jobs.enqueue import JobRequest, build_job, defer_in_transaction
from valdrix.jobs.models import JobRun, JobStatus, Schedule
from valdrix.jobs.repository import JobRunRepository
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.tenancy.service import get_tenant, system_principal


async def give_tenant_a_queued_job(runtime: Runtime, tenant_id: uuid.UUID) -> uuid.UUID:
    """A probe schedule for a new target plus one queued job for it; returns the target id."""
    await open_job_app(runtime.urls.app)
    target = uuid.uuid4()
    actor = system_principal(tenant_id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await service.ensure_schedule(session, actor, kind="probe", target_id=target)
        await service.run_now(session, actor, runtime.settings, kind="probe", target_id=target)
    return target


async def defer_probes(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    jobs: list[dict[str, Any]],
    *,
    task_name: str = "probe.run",
    queue: str = "probe",
) -> list[int]:
    """Queue jobs for a tenant in one transaction, the way services do (fair priority, tenant
    slot lock, ``job_runs`` mirror). Each dict holds the task's kwargs, plus optionally
    ``target_id`` (a new target by default) and ``queueing_lock``; returns the job ids."""
    await open_job_app(runtime.urls.app)
    ids: list[int] = []
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        tier = (await get_tenant(session, system_principal(tenant_id))).tier
        for kwargs in jobs:
            kwargs = dict(kwargs)
            request = JobRequest(
                task_name=task_name,
                queue=queue,
                tenant_id=tenant_id,
                tier=tier,
                tenant_backlog=await JobRunRepository(session).backlog(),
                target_id=kwargs.pop("target_id", None) or uuid.uuid4(),
                queueing_lock=kwargs.pop("queueing_lock", None),
                extra_kwargs=kwargs,
            )
            deferred, _ = await defer_in_transaction(
                session, [build_job(request, slots=runtime.settings.jobs.tenant_job_slots)]
            )
            ids += deferred
    return ids


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    *,
    within: float,
    message: str,
    interval: float = 0.02,
) -> None:
    """Poll ``condition`` until it holds, quickly at first, then backing off to a quarter
    second (so long waits do not load the machine); fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {message}")
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, 0.25)


async def retire_tenant_jobs(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    """Disable a tenant's schedules and drop its still-queued jobs, so that worker tests later
    in the session neither run nor schedule a test's leftovers."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await session.execute(update(Schedule).values(enabled=False))
        queued = list(
            await session.scalars(
                select(JobRun.procrastinate_job_id).where(JobRun.status == JobStatus.queued.value)
            )
        )
    for job_id in queued:
        await job_app.job_manager.cancel_job_by_id_async(job_id, delete_job=True)
