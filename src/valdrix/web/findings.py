"""The findings pages: a filtered, paged table with bulk snooze / dismiss / reopen, and one
finding in full. Rows come from ``scanning.listing``, as GET /api/v1/findings reads them;
status changes go through ``findings.change_status``, as PATCH /api/v1/findings/{id}."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from pydantic import ValidationError

from valdrix.analysis import service as analysis
from valdrix.analysis.models import AnalysisStatus
from valdrix.analysis.schemas import AnalysisOut
from valdrix.errors import InvalidInput, ProblemError
from valdrix.scanning import findings, listing
from valdrix.scanning.models import FindingHistory, FindingStatus
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.schemas import FindingFilter, FindingOut
from valdrix.tenancy import service as tenancy
from valdrix.tenancy.auth import MemberScope, TenantScope, ViewerScope
from valdrix.web.chrome import page_context
from valdrix.web.cost_basis import cost_basis_in_words
from valdrix.web.routing import PageRoute
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50
FILTER_FIELDS = tuple(FindingFilter.model_fields)
# A snooze asked for from the page lasts this long unless the person picks another date.
DEFAULT_SNOOZE_DAYS = 30
ACTIONS: dict[str, FindingStatus] = {
    "snooze": FindingStatus.snoozed,
    "dismiss": FindingStatus.dismissed,
    "reopen": FindingStatus.open,
}
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _wants_fragment(request: Request) -> bool:
    """htmx swapping the table in wants the table only (a history restore wants the page)."""
    headers = request.headers
    return bool(headers.get("hx-request")) and not headers.get("hx-history-restore-request")


def _query(chosen: FindingFilter, **changes: Any) -> str:
    """The filter as a query string, as the API and this page read it. Any status is written
    ``status=`` (an empty filter is no filter): without it, this page shows open findings."""
    values = {"status": ""} | chosen.model_dump(mode="json", exclude_none=True) | changes
    return urlencode({name: value for name, value in values.items() if value is not None})


async def _results(
    scope: TenantScope, chosen: FindingFilter, offset: int, **extra: Any
) -> dict[str, Any]:
    """The table's rows (one more is read to know whether a next page exists)."""
    rows = await listing.list_described(
        scope.session, scope.principal, chosen, offset=offset, limit=PAGE_SIZE + 1
    )
    has_more = len(rows) > PAGE_SIZE
    shown = rows[:PAGE_SIZE]
    # "of N" as GET /api/v1/findings/count says; a page that holds the list's end knows N.
    total = (
        await listing.count_listed(scope.session, scope.principal, chosen)
        if has_more
        else offset + len(shown)
    )
    detectors = load_all_detectors()
    return await page_context(
        scope,
        rows=shown,
        total=total,
        chosen=chosen,
        offset=offset,
        page_size=PAGE_SIZE,
        has_more=has_more,
        query=_query(chosen),
        applied=chosen.model_dump(mode="json", exclude_none=True),
        query_with=lambda **changes: _query(chosen, **changes),
        providers=sorted({d.provider for d in detectors}),
        detectors=sorted(d.key for d in detectors),
        statuses=list(FindingStatus),
        default_snooze_until=(dt.datetime.now(dt.UTC) + dt.timedelta(DEFAULT_SNOOZE_DAYS)).date(),
        **{"message": None, "error": None} | extra,
    )


@router.get("/findings")
async def findings_page(
    request: Request,
    scope: ViewerScope,
    chosen: Annotated[FindingFilter, Query()],
    offset: Offset = 0,
) -> Response:
    if "status" not in request.query_params:
        # A first look is at what is open; "any status" is a choice in the form.
        chosen = chosen.model_copy(update={"status": FindingStatus.open})
    context = await _results(scope, chosen, offset)
    template = "findings_results.html" if _wants_fragment(request) else "findings.html"
    return render(request, template, context)


@router.get("/findings/count")
async def matching_count(
    request: Request, scope: ViewerScope, chosen: Annotated[FindingFilter, Query()]
) -> Response:
    """The "every finding of the filter" choice, with how many that is (GET
    /api/v1/findings/count), asked for once someone selects a whole page."""
    count = await listing.count_listed(scope.session, scope.principal, chosen)
    context = {"count": count, "limit": listing.BULK_LIMIT, "query": _query(chosen)}
    return render(request, "findings_matching.html", context)


@router.post("/findings/status")
async def change_findings_status(
    request: Request,
    scope: MemberScope,
    action: Annotated[Literal["snooze", "dismiss", "reopen"], Form()],
    finding_id: Annotated[list[uuid.UUID] | None, Form()] = None,
    which: Annotated[Literal["selected", "matching"], Form()] = "selected",
    note: Annotated[str | None, Form(max_length=1000)] = None,
    snoozed_until: Annotated[dt.date | None, Form()] = None,
    offset: Annotated[int, Form(ge=0, le=1_000_000)] = 0,
    expected: Annotated[int | None, Form(ge=0, le=listing.BULK_LIMIT)] = None,
) -> Response:
    """Each chosen finding changed as PATCH /api/v1/findings/{id} would, all or none (or, for
    ``which=matching``, every finding of the filter, as POST /api/v1/findings/status, and
    only while the filter still matches the ``expected`` count the person was shown); the
    table comes back under the filter it was sent with."""
    form = await request.form()
    try:
        chosen = FindingFilter.model_validate({k: form.get(k) for k in FILTER_FIELDS if k in form})
    except ValidationError as invalid:
        raise InvalidInput("the filter is not one this page sent") from invalid
    ids = finding_id or []
    message, error = None, None
    try:
        if not ids and which == "selected":
            raise InvalidInput("choose at least one finding")
        if which == "matching" and expected is None:
            raise InvalidInput("the count of the findings to change is missing: select them again")
        until = (
            dt.datetime.combine(snoozed_until, dt.time(), dt.UTC)
            if snoozed_until and action == "snooze"
            else None
        )
        status, reason = ACTIONS[action], note or None
        async with scope.session.begin_nested():
            if which == "matching":
                changed = await listing.change_status_of_listed(
                    scope.session,
                    scope.principal,
                    chosen,
                    status=status,
                    snoozed_until=until,
                    note=reason,
                )
                if changed != expected:
                    # Rolled back with the savepoint: nothing changed.
                    raise InvalidInput(
                        f"the filter now matches {changed} findings, not {expected}: nothing was"
                        " changed; select them again to see what they are"
                    )
            else:
                for one in ids:
                    await findings.change_status(
                        scope.session,
                        scope.principal,
                        one,
                        status=status,
                        snoozed_until=until,
                        note=reason,
                    )
                changed = len(ids)
        count = f"{changed} finding" + ("s" if changed != 1 else "")
        message = f"{count} {ACTIONS[action].value if action != 'reopen' else 'reopened'}."
    except ProblemError as problem:
        # Shown on the page above the table (200): nothing was changed.
        error = problem.detail
    context = await _results(scope, chosen, offset, message=message, error=error)
    return render(request, "findings_results.html", context)


async def _actors(scope: TenantScope, history: list[FindingHistory]) -> dict[str, str]:
    """Who each history actor is: a member's email for a person (as GET /api/v1/members)."""
    if not any(h.actor.startswith("session:") for h in history):
        return {}
    members = await tenancy.list_members(scope.session, scope.principal)
    return {f"session:{m.user.id}": m.email for m in members if m.user is not None}


def _advice(finding: FindingOut, answer: AnalysisOut | None) -> dict[str, Any] | None:
    """What the scan's analysis says about this finding, once it is ready."""
    if answer is None or not answer.result:
        return None
    items = answer.result.get("findings", [])
    return next((item for item in items if item.get("finding_id") == str(finding.id)), None)


@router.get("/findings/{finding_id}")
async def finding_page(request: Request, scope: ViewerScope, finding_id: uuid.UUID) -> Response:
    session, principal = scope.session, scope.principal
    finding = await listing.read_described(session, principal, finding_id)
    history = await findings.finding_history(session, principal, finding_id)
    answer = None
    if finding.last_scan_id is not None:
        scan, found = await analysis.get_analysis(session, principal, finding.last_scan_id)
        answer = AnalysisOut.of_scan(scan, found)
    context = await page_context(
        scope,
        finding=finding,
        cost_basis=cost_basis_in_words(finding),
        history=history,
        actors=await _actors(scope, history),
        analysis=answer,
        advice=_advice(finding, answer),
        analysis_ready=answer is not None and answer.status == AnalysisStatus.ready,
    )
    return render(request, "finding.html", context)
