"""HTTP routes for a scan's LLM analysis."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from valdrix.analysis import service
from valdrix.analysis.schemas import AnalysisOut
from valdrix.tenancy.auth import MemberScope, ViewerScope

router = APIRouter(prefix="/api/v1", tags=["analysis"])


@router.get("/scans/{scan_id}/analysis")
async def read_analysis(scan_id: uuid.UUID, scope: ViewerScope) -> AnalysisOut:
    """The latest attempt's status (`pending | running | ready | skipped_budget |
    provider_unavailable | failed | disabled`) and reason, beside the last good result and
    when it was written (`result_at`): asking again never hides an earlier result."""
    scan, analysis = await service.get_analysis(scope.session, scope.principal, scan_id)
    return AnalysisOut.for_scan(scan, analysis)


@router.post("/scans/{scan_id}/analysis", status_code=status.HTTP_202_ACCEPTED)
async def request_analysis(scan_id: uuid.UUID, scope: MemberScope) -> AnalysisOut:
    """Queue the analysis again (after a budget skip, a provider outage or a failure)."""
    analysis = await service.request_analysis(
        scope.session, scope.principal, scope.runtime.settings, scan_id
    )
    return AnalysisOut.of(analysis)
