"""Per-tenant job figures on /metrics: queued, running, recently failed and the oldest wait,
read from the database for the tenants with the most work waiting (a bounded number)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select

from tests.jobs.helpers import defer_probes
from tests.observability.helpers import scrape
from valdrix.jobs.models import JobRun, JobStatus
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")
TOP_TENANTS = 20  # the documented bound (docs/operations/metrics.md)


def tenant_samples(families: dict[str, Any], name: str) -> dict[tuple[str, ...], float]:
    family = families.get(name)
    return {
        tuple(s.labels[k] for k in sorted(s.labels)): s.value
        for s in (family.samples if family else [])
        if s.name == name
    }


async def give_tenant_jobs_in_every_state(
    runtime: Runtime, database: Any, tenant_id: uuid.UUID
) -> list[int]:
    """Four probe jobs on a queue nobody serves: two waiting (one due an hour ago), one taken
    by a worker, one failed, as procrastinate and the worker's mirror record them."""
    ids = await defer_probes(runtime, tenant_id, [{}, {}, {}, {}])
    with psycopg.connect(database.urls.app, autocommit=True) as conn:
        conn.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() - interval '1 hour' WHERE id = %s",
            (ids[0],),
        )
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (ids[2],))
        conn.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (ids[3],))
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        failed = await session.scalar(select(JobRun).where(JobRun.procrastinate_job_id == ids[3]))
        assert failed is not None
        failed.status, failed.finished_at = JobStatus.failed.value, utcnow()
    return ids


def delete_jobs(database: Any, ids: list[int]) -> None:
    with psycopg.connect(database.urls.app, autocommit=True) as conn:
        conn.execute("DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", (ids,))


async def test_each_busy_tenant_shows_its_queued_running_failed_jobs_and_oldest_wait(
    client: httpx.AsyncClient, runtime: Runtime, database: Any, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    ids = await give_tenant_jobs_in_every_state(runtime, database, tenant.tenant_id)
    try:
        families = await scrape(client)
    finally:
        delete_jobs(database, ids)
    me = str(tenant.tenant_id)
    jobs = tenant_samples(families, "valdrix_tenant_jobs")
    assert jobs[("queued", me)] == 2
    assert jobs[("running", me)] == 1
    assert tenant_samples(families, "valdrix_tenant_jobs_failed_recent")[(me,)] == 1
    assert tenant_samples(families, "valdrix_tenant_job_oldest_wait_seconds")[(me,)] >= 3600
    # Bounded: only the busiest tenants have series, each figure for the same tenants.
    tenants = {labels[-1] for labels in jobs}
    assert len(tenants) <= TOP_TENANTS
    waits = tenant_samples(families, "valdrix_tenant_job_oldest_wait_seconds")
    assert {labels[0] for labels in waits} == tenants


async def test_a_tenant_whose_work_is_done_drops_out_of_the_job_figures(
    client: httpx.AsyncClient, runtime: Runtime, database: Any, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    ids = await defer_probes(runtime, tenant.tenant_id, [{}])
    me = str(tenant.tenant_id)
    try:
        assert tenant_samples(await scrape(client), "valdrix_tenant_jobs")[("queued", me)] == 1
    finally:
        delete_jobs(database, ids)
    assert ("queued", me) not in tenant_samples(await scrape(client), "valdrix_tenant_jobs")
