"""Scans: the tenant's list, a "Scan now" form for members, and one scan watched live. Each
figure is read from the service behind the /api/v1 endpoint named beside it in the template;
the live view follows the API's own event stream, ``/api/v1/scans/{id}/events``."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from valdrix.analysis import service as analyses
from valdrix.analysis.models import AnalysisStatus
from valdrix.analysis.schemas import AnalysisOut
from valdrix.connections import service as connections
from valdrix.connections.models import CloudConnection
from valdrix.kit.pagination import DEFAULT_LIMIT
from valdrix.scanning import service as scanning
from valdrix.scanning.models import FINISHED_SCAN_STATUSES, Scan, ScanUnit
from valdrix.tenancy.auth import MemberScope, TenantScope, ViewerScope
from valdrix.tenancy.models import Role
from valdrix.web.chrome import page_context
from valdrix.web.routing import PageRoute
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# What each end status means to the person reading it (the scan's own reason follows).
STATUS_MEANINGS = {
    "queued": "waiting for a worker",
    "running": "units are being judged; they appear below as they finish",
    "completed": "every unit was judged",
    "partial": "some units could not be judged; the findings of the others stand",
    "timed_out": "the scan's time budget ran out; the units that finished stand, the others "
    "are marked timed out",
    "failed": "no unit could be judged",
    "interrupted": "its worker stopped and no job will run it again",
    # The page's own: its live updates ended before the scan did (static/scan-live.js).
    "stopped": "live updates stopped",
}
# The analysis is polled until its status is one of these.
FINAL_ANALYSES = frozenset(AnalysisStatus) - {AnalysisStatus.pending, AnalysisStatus.running}


def unit_grid(units: list[ScanUnit]) -> dict[str, Any]:
    """Units by detector (rows) and region (columns), as ``GET /api/v1/scans/{id}`` lists them."""
    regions = sorted({u.region for u in units})
    detectors = sorted({u.detector for u in units})
    cells = {(u.detector, u.region): u for u in units}
    return {"regions": regions, "detectors": detectors, "cells": cells}


async def _scan_state(scope: TenantScope, scan_id: uuid.UUID) -> dict[str, Any]:
    scan, units = await scanning.get_scan(scope.session, scope.principal, scan_id)
    return {
        "scan": scan,
        "finished": scan.status in FINISHED_SCAN_STATUSES,
        "meanings": STATUS_MEANINGS,
        "grid": unit_grid(units),
        "unit_counts": Counter(u.status for u in units),
    }


async def _analysis_context(scope: TenantScope, scan_id: uuid.UUID) -> dict[str, Any]:
    scan, analysis = await analyses.get_analysis(scope.session, scope.principal, scan_id)
    answer = AnalysisOut.of_scan(scan, analysis)
    final = answer.status in FINAL_ANALYSES
    return {
        "scan": scan,
        "analysis": answer,
        "polling": not final,
        # Asking again is POST /api/v1/scans/{id}/analysis: members, an ended scan, an
        # analysis no longer under way, and a provider configured (else the API refuses).
        "can_request": final
        and scan.status in FINISHED_SCAN_STATUSES
        and scope.principal.role.at_least(Role.member)
        and scope.runtime.settings.llm.enabled,
    }


def _duration(scan: Scan) -> str:
    if scan.started_at is None or scan.finished_at is None:
        return "—"
    seconds = round((scan.finished_at - scan.started_at).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


async def connection_names(
    scope: TenantScope, active: list[CloudConnection] | None = None
) -> dict[uuid.UUID, str]:
    """Each connection's name, a disabled one's said to be disabled (its scans are still
    listed; a connection is never deleted). ``active``: the active ones, if already read."""
    session, principal = scope.session, scope.principal
    disabled = await connections.list_connections(session, principal, disabled=True)
    if active is None:
        active = await connections.list_connections(session, principal)
    return {c.id: f"{c.name} (disabled)" for c in disabled} | {c.id: c.name for c in active}


@router.get("/scans")
async def scans_page(request: Request, scope: ViewerScope) -> Response:
    session, principal = scope.session, scope.principal
    scans = await scanning.list_scans(session, principal, limit=DEFAULT_LIMIT, connection_id=None)
    active = await connections.list_connections(session, principal)
    context = await page_context(
        scope,
        scans=scans,
        durations={scan.id: _duration(scan) for scan in scans},
        connections=active,
        connection_names=await connection_names(scope, active),
        meanings=STATUS_MEANINGS,
    )
    return render(request, "scans.html", context)


@router.post("/scans")
async def scan_now(scope: MemberScope, connection_id: Annotated[uuid.UUID, Form()]) -> Response:
    """``POST /api/v1/scans``'s service; the browser goes on to watch the scan."""
    scan = await scanning.start_scan(
        scope.session, scope.principal, scope.runtime.settings, connection_id=connection_id
    )
    return Response(status_code=204, headers={"HX-Redirect": f"/scans/{scan.id}"})


@router.get("/scans/{scan_id}")
async def scan_page(request: Request, scan_id: uuid.UUID, scope: ViewerScope) -> Response:
    state = await _scan_state(scope, scan_id)
    names = await connection_names(scope)
    context = await page_context(
        scope,
        **(state | await _analysis_context(scope, scan_id)),
        duration=_duration(state["scan"]),
        connection_name=names.get(state["scan"].connection_id, "removed connection"),
    )
    return render(request, "scan.html", context)


@router.get("/scans/{scan_id}/state")
async def scan_state(request: Request, scan_id: uuid.UUID, scope: ViewerScope) -> Response:
    """The scan's figures and units as its page shows them, fetched again when it ends."""
    state = await _scan_state(scope, scan_id)
    return render(request, "scan_state.html", {**state, "duration": _duration(state["scan"])})


@router.post("/scans/{scan_id}/analysis")
async def request_scan_analysis(
    request: Request, scan_id: uuid.UUID, scope: MemberScope
) -> Response:
    """``POST /api/v1/scans/{id}/analysis``'s service; the panel comes back pending, polled."""
    await analyses.request_analysis(scope.session, scope.principal, scope.runtime.settings, scan_id)
    return render(request, "scan_analysis.html", await _analysis_context(scope, scan_id))


@router.get("/scans/{scan_id}/analysis")
async def scan_analysis(request: Request, scan_id: uuid.UUID, scope: ViewerScope) -> Response:
    """The analysis panel, polled while the analysis is pending or running."""
    return render(request, "scan_analysis.html", await _analysis_context(scope, scan_id))
