"""The scheduler's claim/defer/mirror path, driven in-process (workers are tested separately)."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from valdrix.jobs import service
from valdrix.jobs.app import open_job_app
from valdrix.jobs.scheduler import run_tick
from valdrix.kit.db import unit_of_work
from valdrix.tenancy.service import system_principal


async def test_a_due_schedule_becomes_exactly_one_queued_job(runtime, database, make_tenant):
    await open_job_app(runtime.urls.app)
    tenant = await make_tenant()
    target = uuid.uuid4()
    start = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await service.ensure_schedule(
            session,
            system_principal(tenant.tenant_id),
            kind="probe",
            target_id=target,
            first_due_at=start,
        )
    first = await run_tick(runtime, now=start)
    again = await run_tick(runtime, now=start + dt.timedelta(minutes=1))
    assert first.deferred >= 1
    assert again.deferred == 0
    with psycopg.connect(database.superuser) as conn:
        jobs = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s",
            (f"probe:{target}",),
        ).fetchone()[0]
        runs = conn.execute(
            "SELECT status, due_at FROM job_runs WHERE target_id = %s", (target,)
        ).fetchall()
        next_due = conn.execute(
            "SELECT next_due_at FROM schedules WHERE target_id = %s", (target,)
        ).fetchone()[0]
    assert jobs == 1
    assert runs == [("queued", start)]
    assert next_due == start + dt.timedelta(hours=12)  # growth tier
