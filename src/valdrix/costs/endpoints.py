"""HTTP routes for cost data: reading, runs, adjustments and FOCUS uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status

from valdrix.costs import reading
from valdrix.costs.schemas import (
    CostAdjustmentOut,
    CostReadingOut,
    CostRunOut,
    CostsOut,
    IsoDate,
)
from valdrix.costs.sources import focus_files
from valdrix.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from valdrix.tenancy.auth import MemberScope, ViewerScope

router = APIRouter(prefix="/api/v1", tags=["costs"])
IMPORTS_PATH = "/api/v1/costs/imports"  # its own body limit (see app.py)
FilterValue = Annotated[str | None, Query(max_length=200, description="Only rows with this value")]


@router.get(
    "/costs",
    response_model=CostsOut,
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": "The rows (as CSV with Accept: text/csv)",
        },
        304: {"description": "Not modified"},
    },
)
async def read_costs(
    scope: ViewerScope,
    request: Request,
    response: Response,
    start: IsoDate,
    end: IsoDate,
    group_by: Annotated[
        list[str] | None,
        Query(
            # (max_length on a list would bound its length; parse_query checks each value.)
            description="Up to 3 of day, month, billing_period, provider, service, region,"
            " account (sub-account, else billing account), billing_account, sub_account,"
            " charge_category, service_category, charge_class, resource, tag:<key>"
            " (comma-separated, or the parameter repeated: `group_by=a,b` is"
            " `group_by=a&group_by=b`)",
        ),
    ] = None,
    provider: FilterValue = None,
    service_name: Annotated[
        str | None, Query(alias="service", max_length=200, description="Only this service")
    ] = None,
    region: FilterValue = None,
    account: FilterValue = None,
    tag: Annotated[
        str | None, Query(max_length=300, description="Only rows tagged key=value")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=reading.MAX_ROWS, description="Rows per page (largest first)")
    ] = reading.MAX_ROWS,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`next_cursor` of the previous page"),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> CostsOut | Response:
    """Billed, effective and list cost for [start, end), grouped, with totals split into
    preliminary and final. The ETag is the tenant's data version: it changes with every
    committed import and with the day (preliminary data turns final when its billing period has
    closed), and `If-None-Match` answers 304 while neither has.

    Rows come a page at a time, largest first: `next_cursor` (and a `Link: rel="next"` header,
    for CSV too) names the next page, and is null on the last. A page asked for after an import
    changed the data is refused with 409, so the pages of one listing always add up."""
    query = reading.parse_query(
        start,
        end,
        ",".join(group_by or []),
        final_before=reading.final_before(scope.runtime.settings.costs.focus_close_days),
        filters={
            "provider": provider,
            "service": service_name,
            "region": region,
            "account": account,
            "tag": tag,
        },
        limit=limit,
        cursor=cursor,
    )
    answer = await reading.read_costs(scope.session, scope.principal, query)
    # Preliminary flags turn final with time, so the ETag names the day they were read as of.
    etag = f'W/"costs-{answer.data_version}-{query.final_before.isoformat()}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if answer.next_cursor is not None:
        following = request.url.include_query_params(cursor=answer.next_cursor)
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    if if_none_match and etag in [given.strip() for given in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if accept and "text/csv" in accept:
        return Response(
            reading.rows_as_csv(answer.rows, query.group_by),
            media_type="text/csv",
            headers={**headers, "Content-Disposition": 'attachment; filename="costs.csv"'},
        )
    response.headers.update(headers)
    return CostsOut(
        start=start,
        end=end,
        group_by=query.group_by,
        data_version=answer.data_version,
        rows=answer.rows,
        totals=answer.totals,
        next_cursor=answer.next_cursor,
        truncated=answer.truncated,
    )


@router.get("/costs/tag-keys")
async def list_tag_keys(scope: ViewerScope, start: IsoDate, end: IsoDate) -> list[str]:
    """The tag keys of the cost records over [start, end), in order (at most 200): each is a
    grouping of GET /api/v1/costs, `group_by=tag:<key>`. A key `group_by` cannot carry as it
    is (one with a comma, with spaces around it, or over 128 characters) is not listed."""
    return await reading.list_tag_keys(scope.session, scope.principal, start=start, end=end)


@router.get("/costs/runs")
async def list_runs(
    scope: ViewerScope, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
) -> list[CostRunOut]:
    runs = await reading.list_runs(scope.session, scope.principal, limit=limit)
    return [CostRunOut.model_validate(run) for run in runs]


@router.get("/costs/adjustments")
async def list_adjustments(
    scope: ViewerScope,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[CostAdjustmentOut]:
    adjustments = await reading.list_adjustments(
        scope.session, scope.principal, start=start, end=end, limit=limit
    )
    return [CostAdjustmentOut.model_validate(a) for a in adjustments]


@router.get("/costs/readings")
async def list_readings(
    scope: ViewerScope,
    day: IsoDate,
    service_name: Annotated[str | None, Query(alias="service", max_length=200)] = None,
    account: Annotated[str | None, Query(max_length=100)] = None,
    currency: Annotated[str | None, Query(max_length=3)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[CostReadingOut]:
    """Every reading of the day's totals per service, account and currency, by source and
    billing period, oldest first, each with the previous reading and the change in percent:
    the small restatements too, which `/costs/adjustments` (over 2 %) leaves out."""
    readings = await reading.readings_of_day(
        scope.session,
        scope.principal,
        day,
        filters={"service": service_name, "account": account, "currency": currency},
        limit=limit,
    )
    return [
        CostReadingOut(
            source_key=found.source_key,
            run_id=found.reading.run_id,
            billing_period_start=found.reading.billing_period_start,
            day=found.reading.day,
            service=found.reading.service,
            account=found.reading.account,
            currency=found.reading.currency,
            billed_cost=found.reading.billed_cost,
            effective_cost=found.reading.effective_cost,
            preliminary=found.reading.preliminary,
            recorded_at=found.reading.recorded_at,
            previous_billed_cost=found.previous_billed_cost,
            change_percent=found.change_percent,
        )
        for found in readings
    ]


@router.post("/costs/imports", status_code=status.HTTP_201_CREATED)
async def import_focus(
    file: Annotated[
        list[UploadFile],
        File(description="The export, or each part of one delivery (repeat the field)"),
    ],
    scope: MemberScope,
    source: Annotated[str | None, Query(max_length=focus_files.MAX_SOURCE_CHARS)] = None,
) -> CostRunOut:
    """Upload a FOCUS export (CSV, gzip CSV or Parquet), or the parts of one delivery as a
    repeated `file` field; up to VALDRIX_COSTS_MAX_UPLOAD_BYTES in all. The parts are imported
    as one run: committed whole, or rejected whole with the first errors (file, row, column,
    reason) and nothing stored."""
    run = await focus_files.import_uploaded_files(
        scope.runtime,
        scope.principal.tenant_id,
        [(upload.file, upload.filename or "upload") for upload in file],
        actor=scope.principal.actor_id,
        source=source,
    )
    return CostRunOut.model_validate(run)
