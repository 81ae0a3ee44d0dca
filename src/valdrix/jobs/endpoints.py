"""GET /api/v1/jobs and /api/v1/jobs/{id}: the caller's tenant's jobs only (RLS)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from valdrix.jobs import service
from valdrix.jobs.schemas import JobRunOut, ScheduleOut
from valdrix.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from valdrix.tenancy.auth import ViewerScope

router = APIRouter(prefix="/api/v1", tags=["jobs"])


@router.get("/jobs")
async def list_jobs(
    scope: ViewerScope,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    type: Annotated[str | None, Query(max_length=64, description="Task name")] = None,
) -> Page[JobRunOut]:
    runs, next_cursor = await service.list_job_runs(
        scope.session, scope.principal, cursor=cursor, limit=limit, status=status, task_name=type
    )
    return Page[JobRunOut](
        items=[JobRunOut.model_validate(run) for run in runs], next_cursor=next_cursor
    )


@router.get("/jobs/{job_id}")
async def read_job(job_id: uuid.UUID, scope: ViewerScope) -> JobRunOut:
    return JobRunOut.model_validate(
        await service.get_job_run(scope.session, scope.principal, job_id)
    )


@router.get("/schedules")
async def list_schedules(scope: ViewerScope) -> list[ScheduleOut]:
    """The tenant's enabled schedules, soonest due first: the first `scan` is the next
    scheduled scan."""
    schedules = await service.upcoming_schedules(scope.session, scope.principal)
    return [ScheduleOut.model_validate(schedule) for schedule in schedules]
