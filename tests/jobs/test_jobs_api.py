"""GET /api/v1/jobs and /api/v1/jobs/{id}: a tenant sees its own jobs, and only those; and
enqueueing is part of the caller's transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update

from tests.conftest import TenantFixture
from tests.fixtures.http import assert_problem
from tests.jobs.helpers import give_tenant_a_queued_job, retire_tenant_jobs
from valdrix.jobs import service
from valdrix.jobs.app import job_app, open_job_app
from valdrix.jobs.models import JobRun, JobStatus
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.tenancy.service import system_principal

JOBS = "/api/v1/jobs"
TenantFactory = Callable[[], Awaitable[TenantFixture]]


@pytest.fixture
async def job_tenant(runtime: Runtime, make_tenant: Any) -> AsyncIterator[TenantFactory]:
    """New tenants whose probe schedules and still-queued jobs are removed afterwards, so worker
    tests later in the session do not run (or schedule) this module's leftovers."""
    made: list[TenantFixture] = []

    async def make() -> TenantFixture:
        made.append(await make_tenant())
        return made[-1]

    yield make
    for tenant in made:
        await retire_tenant_jobs(runtime, tenant.tenant_id)


async def list_jobs(client: httpx.AsyncClient, tenant: TenantFixture, **params: Any) -> Any:
    response = await client.get(JOBS, params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def job_of(client: httpx.AsyncClient, tenant: TenantFixture, target: uuid.UUID) -> Any:
    items = [i for i in (await list_jobs(client, tenant))["items"] if i["target_id"] == str(target)]
    assert len(items) == 1, items
    return items[0]


async def test_a_queued_job_shows_its_type_status_attempts_and_times(client, runtime, job_tenant):
    tenant = await job_tenant()
    before = utcnow() - dt.timedelta(seconds=1)
    target = await give_tenant_a_queued_job(runtime, tenant.tenant_id)

    job = await job_of(client, tenant, target)

    assert job["type"] == "probe.run"
    assert job["status"] == "queued"
    assert job["attempts"] == 0
    assert before <= dt.datetime.fromisoformat(job["queued_at"]) <= utcnow()
    assert job["started_at"] is None and job["finished_at"] is None
    assert job["error_summary"] is None
    response = await client.get(f"{JOBS}/{job['id']}", headers=tenant.auth)
    assert response.status_code == 200, response.text
    assert response.json() == job


async def test_a_tenant_never_sees_another_tenants_jobs(client, runtime, job_tenant):
    owner, other = await job_tenant(), await job_tenant()
    await give_tenant_a_queued_job(runtime, owner.tenant_id)
    owners_job = (await list_jobs(client, owner))["items"][0]

    assert (await list_jobs(client, other))["items"] == []
    body = assert_problem(await client.get(f"{JOBS}/{owners_job['id']}", headers=other.auth), 404)
    assert body["detail"] == "job not found"
    assert_problem(await client.get(f"{JOBS}/{uuid.uuid4()}", headers=owner.auth), 404)


async def test_jobs_need_a_credential(client):
    assert_problem(await client.get(JOBS), 401)


async def test_jobs_filter_by_status_and_type(client, runtime, job_tenant):
    tenant = await job_tenant()
    done, waiting = [await give_tenant_a_queued_job(runtime, tenant.tenant_id) for _ in range(2)]
    # What the worker's tracking middleware records when a job succeeds.
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.target_id == done)
            .values(status=JobStatus.succeeded.value, attempts=1, finished_at=utcnow())
        )

    def targets(page: Any) -> set[str]:
        return {item["target_id"] for item in page["items"]}

    assert targets(await list_jobs(client, tenant, status="queued")) == {str(waiting)}
    assert targets(await list_jobs(client, tenant, status="succeeded")) == {str(done)}
    assert targets(await list_jobs(client, tenant, status="failed")) == set()
    assert targets(await list_jobs(client, tenant, type="probe.run")) == {str(done), str(waiting)}
    assert targets(await list_jobs(client, tenant, type="scans.run")) == set()
    both = await list_jobs(client, tenant, status="succeeded", type="probe.run")
    assert targets(both) == {str(done)}


async def test_pages_follow_the_cursor_newest_first_without_gaps_or_repeats(
    client, runtime, job_tenant
):
    tenant = await job_tenant()
    queued = [await give_tenant_a_queued_job(runtime, tenant.tenant_id) for _ in range(5)]

    pages, cursor = [], None
    while True:
        page = await list_jobs(client, tenant, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append([item["target_id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [target for page in pages for target in page] == [str(t) for t in reversed(queued)]


async def test_an_unknown_status_or_a_forged_cursor_is_a_422_problem(client, job_tenant):
    tenant = await job_tenant()

    body = assert_problem(
        await client.get(JOBS, params={"status": "bogus"}, headers=tenant.auth), 422
    )
    assert "queued" in body["detail"] and "succeeded" in body["detail"]
    assert_problem(
        await client.get(JOBS, params={"cursor": "not-a-cursor"}, headers=tenant.auth), 422
    )
    assert_problem(await client.get(JOBS, params={"limit": 0}, headers=tenant.auth), 422)


# --- transactional enqueue ------------------------------------------------------------------------


async def queued_state(
    runtime: Runtime, tenant_id: uuid.UUID, target: uuid.UUID
) -> tuple[int, int]:
    """(procrastinate jobs queued for the target, the tenant's job runs for it)."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        jobs = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :lock"),
            {"lock": f"probe:{target}"},
        )
        runs = await session.scalar(
            select(func.count()).select_from(JobRun).where(JobRun.target_id == target)
        )
    return int(jobs or 0), int(runs or 0)


class ServiceFailed(Exception):
    pass


async def test_a_failing_transaction_leaves_neither_the_job_nor_its_run(runtime, job_tenant):
    tenant = await job_tenant()
    await open_job_app(runtime.urls.app)
    actor, target = system_principal(tenant.tenant_id), uuid.uuid4()

    with pytest.raises(ServiceFailed):
        async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
            await service.ensure_schedule(session, actor, kind="probe", target_id=target)
            job_id = await service.run_now(
                session, actor, runtime.settings, kind="probe", target_id=target
            )
            assert job_id is not None
            assert await queued_state(runtime, tenant.tenant_id, target) == (
                0,
                0,
            )  # not yet visible
            raise ServiceFailed("the service failed after enqueueing")

    assert await queued_state(runtime, tenant.tenant_id, target) == (0, 0)
    assert list(await job_app.job_manager.list_jobs_async(id=job_id)) == []

    # The same work committed: both appear together, and the target can be queued once.
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await service.ensure_schedule(session, actor, kind="probe", target_id=target)
        assert await service.run_now(
            session, actor, runtime.settings, kind="probe", target_id=target
        )
    assert await queued_state(runtime, tenant.tenant_id, target) == (1, 1)
