"""Costs: the explorer (by day or month, grouped), a preliminary/final flag on every figure,
the adjustments, the import runs, a FOCUS upload for members and the CSV of the view. Each
figure is read from the service behind the /api/v1 endpoint named beside it in the template."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, File, Query, Request, Response, UploadFile

from valdrix.costs import reading
from valdrix.costs.schemas import IsoDate
from valdrix.costs.sources import focus_files
from valdrix.errors import InvalidInput
from valdrix.kit.orm import utcnow
from valdrix.kit.pagination import DEFAULT_LIMIT
from valdrix.tenancy.auth import MemberScope, TenantScope, ViewerScope
from valdrix.web.chrome import page_context
from valdrix.web.routing import PageRoute
from valdrix.web.templating import PAGE_CACHE_CONTROL, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
UPLOAD_PATH = "/costs/imports"  # the API's upload limit applies (see app.py)
EXPLORER_DAYS = 45  # the demo's window: its preliminary days and its restated day in view
EXPLORER_ROWS = 500  # shown on the page; the CSV holds every row
RECENT_RUNS = 10
Granularity = Literal["day", "month"]
Group = Literal["provider", "service", "account", "region", "charge_category", "tag", "none"]
GROUP_LABELS = {
    "provider": "Provider",
    "service": "Service",
    "account": "Account",
    "region": "Region",
    "charge_category": "Charge category",
    "tag": "Tag",
    "none": "Nothing",
}
TagKey = Annotated[str | None, Query(max_length=128)]


def cost_flag(row: dict[str, Any]) -> str:
    """Whether a figure may still change: preliminary, final, or partly preliminary."""
    preliminary = Decimal(row["preliminary_billed_cost"])
    final = Decimal(row["final_billed_cost"])
    if preliminary and final:
        return "partly preliminary"
    return "preliminary" if preliminary else "final"


def _query(
    scope: TenantScope,
    start: dt.date,
    end: dt.date,
    granularity: Granularity,
    group: Group,
    tag_key: str | None,
    *,
    limit: int = reading.MAX_ROWS,
) -> reading.CostQuery:
    """``GET /api/v1/costs?group_by=<granularity>,<group>``'s own query (``tag:<key>`` for
    a tag; without a key, the costs are not grouped): the dimensions as a list, so a key
    goes as it is."""
    dimension = f"tag:{tag_key}" if group == "tag" and tag_key else group
    groups = [granularity] + ([] if dimension in ("none", "tag") else [dimension])
    return reading.parse_query(
        start,
        end,
        groups,
        final_before=reading.final_before(scope.runtime.settings.costs.focus_close_days),
        limit=limit,
    )


def _window(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    end = end or utcnow().date() + dt.timedelta(days=1)
    if start is None:
        try:
            start = end - dt.timedelta(days=EXPLORER_DAYS)
        except OverflowError:
            raise InvalidInput(f"end: {end} leaves no {EXPLORER_DAYS} days before it") from None
    return start, end


# Dates as the API reads them (``IsoDate``): written as YYYY-MM-DD, not as seconds.
Start = Annotated[IsoDate | None, Query()]
End = Annotated[IsoDate | None, Query(description="exclusive")]


@router.get("/costs")
async def costs_page(
    request: Request,
    scope: ViewerScope,
    start: Start = None,
    end: End = None,
    granularity: Granularity = "day",
    group: Group = "provider",
    tag_key: TagKey = None,
) -> Response:
    session, principal = scope.session, scope.principal
    start, end = _window(start, end)
    # The keys are read (every record's tags) only when the costs are grouped by a tag.
    tag_keys = (
        await reading.list_tag_keys(session, principal, start=start, end=end)
        if group == "tag"
        else []
    )
    if group == "tag" and not tag_key and tag_keys:
        tag_key = tag_keys[0]
    query = _query(scope, start, end, granularity, group, tag_key, limit=EXPLORER_ROWS)
    shown = await reading.read_costs(session, principal, query)
    context = await page_context(
        scope,
        start=start,
        end=end,
        granularity=granularity,
        group=group,
        group_labels=GROUP_LABELS,
        tag_keys=tag_keys,
        tag_key=tag_key,
        refused=None,
        dimensions=query.group_by,
        rows=sorted(shown.rows, key=lambda row: str(row[granularity])),
        totals=shown.totals,
        truncated=shown.truncated,
        flag=cost_flag,
        export_query=urlencode(
            {"start": start, "end": end, "granularity": granularity, "group": group}
            | ({"tag_key": tag_key} if group == "tag" and tag_key else {})
        ),
        adjustments=await reading.list_adjustments(
            session, principal, start=None, end=None, limit=DEFAULT_LIMIT
        ),
        runs=await reading.list_runs(session, principal, limit=RECENT_RUNS),
    )
    return render(request, "costs.html", context)


@router.get("/costs/tag-keys")
async def tag_key_choice(
    request: Request,
    scope: ViewerScope,
    start: Start = None,
    end: End = None,
    group: Group = "provider",
) -> Response:
    """The tag key chooser, as ``GET /api/v1/costs/tag-keys`` lists the window's keys, when
    "Tag" is chosen (the keys are read from every record's tags: only then)."""
    start, end = _window(start, end)
    context: dict[str, Any] = {"group": group, "tag_keys": [], "tag_key": None, "refused": None}
    if group == "tag":
        try:
            context["tag_keys"] = await reading.list_tag_keys(
                scope.session, scope.principal, start=start, end=end
            )
        except InvalidInput as refused:
            # A window half-typed (its first date changed, not yet its last) is no error to
            # shout: the chooser says why it lists nothing until the window is whole.
            context["refused"] = refused.detail
    return render(request, "costs_tag_keys.html", context)


@router.get("/costs/export.csv")
async def costs_csv(
    scope: ViewerScope,
    start: Start = None,
    end: End = None,
    granularity: Granularity = "day",
    group: Group = "provider",
    tag_key: TagKey = None,
) -> Response:
    """The view's rows as ``GET /api/v1/costs`` gives them with ``Accept: text/csv``, every
    page of them."""
    start, end = _window(start, end)
    query = _query(scope, start, end, granularity, group, tag_key)
    pages = [await reading.read_costs(scope.session, scope.principal, query)]
    while pages[-1].next_cursor is not None:
        following = query.after(pages[-1].next_cursor)
        pages.append(await reading.read_costs(scope.session, scope.principal, following))
    body = "".join(
        reading.rows_as_csv(page.rows, query.group_by, header=number == 0)
        for number, page in enumerate(pages)
    )
    return Response(
        body,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="costs-{start}-{end}.csv"',
            "Cache-Control": PAGE_CACHE_CONTROL,
        },
    )


@router.post(UPLOAD_PATH)
async def upload_focus(
    request: Request,
    scope: MemberScope,
    file: Annotated[list[UploadFile], File()],
) -> Response:
    """``POST /api/v1/costs/imports``'s service. A refused file is answered 200 with its
    reasons row by row: the person reads them beside the form."""
    errors: list[dict[str, Any]] = []
    try:
        run = await focus_files.import_uploaded_files(
            scope.runtime,
            scope.principal.tenant_id,
            [(upload.file, upload.filename or "upload") for upload in file],
            actor=scope.principal.actor_id,
        )
    except focus_files.ImportRejected as rejected:
        run, errors = rejected.run, rejected.run.errors
    runs = await reading.list_runs(scope.session, scope.principal, limit=RECENT_RUNS)
    return render(request, "costs_upload.html", {"run": run, "errors": errors, "runs": runs})
