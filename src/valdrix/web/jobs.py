"""The jobs page: the tenant's jobs with their timings and errors, newest first, read by the
service behind GET /api/v1/jobs (same filter, same cursor)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from valdrix.jobs import service as jobs
from valdrix.jobs.models import JobStatus
from valdrix.tenancy.auth import ViewerScope
from valdrix.web.chrome import page_context
from valdrix.web.routing import PageRoute
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


def duration(started: dt.datetime | None, finished: dt.datetime | None) -> str:
    """How long a job ran: 1.2 s, 3 min 4 s, 2 h 5 min; a dash while it has not ended."""
    if started is None or finished is None:
        return "—"
    seconds = (finished - started).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@router.get("/jobs")
async def jobs_page(
    request: Request,
    scope: ViewerScope,
    status: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    chosen = status or None  # the form's "any status" is an empty field
    runs, next_cursor = await jobs.list_job_runs(
        scope.session,
        scope.principal,
        cursor=cursor,
        limit=PAGE_SIZE,
        status=chosen,
        task_name=None,
    )
    filters = {"status": chosen} if chosen else {}
    context = await page_context(
        scope,
        runs=runs,
        statuses=list(JobStatus),
        chosen=chosen,
        cursor=cursor,
        older_query=urlencode(filters | {"cursor": next_cursor}) if next_cursor else None,
        api_query=urlencode({"limit": PAGE_SIZE} | filters),
        duration=duration,
    )
    return render(request, "jobs.html", context)
