"""HTTP routes for scans (including their SSE event stream) and findings."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import StreamingResponse

from valdrix.errors import ProblemError
from valdrix.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from valdrix.runtime import Runtime
from valdrix.scanning import findings, listing, service, summary
from valdrix.scanning.live import scan_feeds
from valdrix.scanning.schemas import (
    FindingBulkPatch,
    FindingCountOut,
    FindingFilter,
    FindingHistoryOut,
    FindingOut,
    FindingPatch,
    FindingsChangedOut,
    OpenWasteDayOut,
    ScanCreate,
    ScanDetailOut,
    ScanOut,
    ScanUnitOut,
    WasteSummaryOut,
)
from valdrix.tenancy.auth import MemberScope, Principal, ViewerScope, authenticate

router = APIRouter(prefix="/api/v1")
SSE_KEEPALIVE_SECONDS = 15.0
# How often an open stream checks that its credential still holds (a revoked key, a logged-out
# browser or an ended membership ends the stream within about this long).
SSE_CREDENTIAL_CHECK_SECONDS = 2.0


@router.post("/scans", status_code=status.HTTP_202_ACCEPTED, tags=["scans"])
async def start_scan(body: ScanCreate, scope: MemberScope) -> ScanOut:
    """Queue a scan; it runs as a `scans.run` job. Answers at once with the scan id."""
    scan = await service.start_scan(
        scope.session, scope.principal, scope.runtime.settings, connection_id=body.connection_id
    )
    return ScanOut.model_validate(scan)


@router.get("/scans", tags=["scans"])
async def list_scans(
    scope: ViewerScope,
    connection_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[ScanOut]:
    scans = await service.list_scans(
        scope.session, scope.principal, limit=limit, connection_id=connection_id
    )
    return [ScanOut.model_validate(s) for s in scans]


@router.get("/scans/{scan_id}", tags=["scans"])
async def read_scan(scan_id: uuid.UUID, scope: ViewerScope) -> ScanDetailOut:
    scan, units = await service.get_scan(scope.session, scope.principal, scan_id)
    return ScanDetailOut(
        **ScanOut.model_validate(scan).model_dump(),
        units=[ScanUnitOut.model_validate(u) for u in units],
        unit_counts=dict(Counter(u.status for u in units)),
    )


@router.get(
    "/scans/{scan_id}/events",
    tags=["scans"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def scan_events(
    scan_id: uuid.UUID,
    scope: ViewerScope,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: everything that already happened, then live until the scan ends.
    The stream ends early, with an `error` event, once the credential that opened it no longer
    holds (API key revoked, browser logged out, membership ended)."""
    await service.get_scan(scope.session, scope.principal, scan_id)
    # An id this stream sent is at most 18 ASCII digits; anything else starts from the first.
    offered = last_event_id or ""
    start = int(offered) if re.fullmatch(r"[0-9]{1,18}", offered) else 0
    stream = _event_stream(request, scope.runtime, scope.principal, scan_id, start)
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def _event_stream(
    request: Request, runtime: Runtime, principal: Principal, scan_id: uuid.UUID, last_id: int
) -> AsyncIterator[str]:
    # One read per change for all of this process's watchers of the scan (scanning.live).
    with scan_feeds(runtime.notifications).watch(runtime, principal, scan_id) as feed:
        checked_at = sent_at = time.monotonic()  # authenticated just now
        while True:
            now = time.monotonic()
            if now - checked_at >= SSE_CREDENTIAL_CHECK_SECONDS:
                try:
                    await authenticate(request, runtime)
                except ProblemError as exc:
                    ended = {"status": exc.status, "title": exc.title, "detail": exc.detail}
                    yield f"event: error\ndata: {json.dumps(ended)}\n\n"
                    return
                checked_at = now
            version = feed.version
            events = feed.after(last_id)
            for event in events:
                last_id = event.id
                yield f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.payload)}\n\n"
            if events:
                sent_at = now
            elif feed.finished:
                return
            elif now - sent_at >= SSE_KEEPALIVE_SECONDS:
                sent_at = now
                yield ": keep-alive\n\n"
            # Until the feed moves or the credential is due for its next check.
            with suppress(TimeoutError):
                async with asyncio.timeout(checked_at + SSE_CREDENTIAL_CHECK_SECONDS - now):
                    await feed.changed_since(version)


@router.get("/findings", tags=["findings"])
async def list_findings(
    scope: ViewerScope,
    chosen: Annotated[FindingFilter, Query()],
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[FindingOut]:
    """Findings, each resource's once: an imported recommendation for a resource one of
    Valdrix's own open findings prices is listed inside that finding (`also_reported_by`),
    unless `detector` asks for the importing detector's findings."""
    return await listing.list_described(
        scope.session, scope.principal, chosen, offset=offset, limit=limit
    )


@router.get(
    "/findings/export",
    tags=["findings"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Every finding, as CSV"}},
)
async def export_findings(
    scope: ViewerScope, chosen: Annotated[FindingFilter, Query()]
) -> StreamingResponse:
    """Every finding the filters select (the list's filters and order, no page), as CSV
    streamed a batch at a time: the list's rows, `also_reported_by` as detector names."""
    return StreamingResponse(
        listing.export_csv(scope.runtime, scope.principal, chosen),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="findings.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/findings/count", tags=["findings"])
async def count_findings(
    scope: ViewerScope, chosen: Annotated[FindingFilter, Query()]
) -> FindingCountOut:
    """How many findings GET /api/v1/findings lists under the same filters, every page."""
    return FindingCountOut(count=await listing.count_listed(scope.session, scope.principal, chosen))


@router.post("/findings/status", tags=["findings"])
async def update_findings(body: FindingBulkPatch, scope: MemberScope) -> FindingsChangedOut:
    """Snooze, dismiss or reopen every finding the filter lists (as GET /api/v1/findings
    lists them, every page), each as PATCH /api/v1/findings/{id} would, all or none. At most
    1,000 findings at once: a filter that lists more is refused (422) and nothing changes."""
    changed = await listing.change_status_of_listed(
        scope.session,
        scope.principal,
        body.filter,
        status=body.status,
        snoozed_until=body.snoozed_until,
        note=body.note,
    )
    return FindingsChangedOut(changed=changed)


@router.get("/findings/summary", tags=["findings"])
async def waste_summary(scope: ViewerScope) -> WasteSummaryOut:
    """Monthly waste of the open findings by detector and provider, each dollar counted once:
    money several findings price (an instance's disks and the disks' own findings) is counted
    under one of them, and `overlaps` says which."""
    return WasteSummaryOut.of(await summary.waste_summary(scope.session, scope.principal))


@router.get("/findings/waste-history", tags=["findings"])
async def open_waste_history(
    scope: ViewerScope, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[OpenWasteDayOut]:
    """Open waste over time: for each of the last `days` days (UTC, today last), the findings
    open at the day's end and their monthly figures summed."""
    history = await findings.open_waste_history(scope.session, scope.principal, days=days)
    return [OpenWasteDayOut.model_validate(day) for day in history]


@router.get("/findings/{finding_id}", tags=["findings"])
async def read_finding(finding_id: uuid.UUID, scope: ViewerScope) -> FindingOut:
    return await listing.read_described(scope.session, scope.principal, finding_id)


@router.patch("/findings/{finding_id}", tags=["findings"])
async def update_finding(
    finding_id: uuid.UUID, body: FindingPatch, scope: MemberScope
) -> FindingOut:
    """Snooze (until a date, with a note), dismiss, or reopen a finding."""
    finding = await findings.change_status(
        scope.session,
        scope.principal,
        finding_id,
        status=body.status,
        snoozed_until=body.snoozed_until,
        note=body.note,
    )
    return (await listing.describe(scope.session, scope.principal, [finding]))[0]


@router.get("/findings/{finding_id}/history", tags=["findings"])
async def read_finding_history(
    finding_id: uuid.UUID, scope: ViewerScope
) -> list[FindingHistoryOut]:
    rows = await findings.finding_history(scope.session, scope.principal, finding_id)
    return [FindingHistoryOut.model_validate(h) for h in rows]
