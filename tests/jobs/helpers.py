"""Helpers for tests that need jobs to exist."""

from __future__ import annotations

import uuid

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from valdrix.jobs import service
from valdrix.jobs.app import open_job_app
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.tenancy.service import system_principal


async def give_tenant_a_queued_job(runtime: Runtime, tenant_id: uuid.UUID) -> uuid.UUID:
    """A probe schedule for a new target plus one queued job for it; returns the target id."""
    await open_job_app(runtime.urls.app)
    target = uuid.uuid4()
    actor = system_principal(tenant_id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await service.ensure_schedule(session, actor, kind="probe", target_id=target)
        await service.run_now(session, actor, runtime, kind="probe", target_id=target)
    return target
