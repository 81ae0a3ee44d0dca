"""The overview: waste, spend, the LLM budget and scans at a glance. Each figure is read from
the service behind the /api/v1 endpoint named beside it in the template."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastapi import APIRouter, Request, Response

from valdrix.connections.service import SCAN_KIND
from valdrix.jobs import service as jobs
from valdrix.llm import service as llm
from valdrix.scanning import listing, summary
from valdrix.scanning import service as scanning
from valdrix.scanning.models import FindingStatus
from valdrix.scanning.schemas import FindingFilter
from valdrix.tenancy.auth import ViewerScope
from valdrix.web.chrome import page_context
from valdrix.web.routing import PageRoute
from valdrix.web.scans import connection_names
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RECENT_SCANS = 5
# The charts' windows: open waste over the last month, spend over the last 45 days.
WASTE_HISTORY_DAYS = 30
SPEND_DAYS = 45


@dataclass(frozen=True)
class ProviderWaste:
    provider: str
    open_findings: int
    monthly_usd: Decimal


def _by_provider(waste: summary.WasteSummary) -> list[ProviderWaste]:
    """The summary's per-provider totals (each dollar once) and open findings."""
    counts = waste.open_findings_by_provider
    return [
        ProviderWaste(provider, counts.get(provider, 0), usd)
        for provider, usd in sorted(waste.by_provider.items(), key=lambda item: -item[1])
    ]


@router.get("/")
async def overview(request: Request, scope: ViewerScope) -> Response:
    session, principal = scope.session, scope.principal
    waste = await summary.waste_summary(session, principal)
    scans = await scanning.list_scans(session, principal, limit=RECENT_SCANS, connection_id=None)
    # The findings list shows an imported recommendation inside the finding that prices the
    # same cost, so it may list fewer rows than there are open findings: both are said.
    listed = await listing.count_listed(
        session, principal, FindingFilter(status=FindingStatus.open)
    )
    schedules = await jobs.upcoming_schedules(session, principal)
    next_scan = next((s for s in schedules if s.kind == SCAN_KIND), None)
    budget = await llm.read_budget(session, principal, scope.runtime.settings)
    context = await page_context(
        scope,
        waste=waste,
        by_detector=sorted(waste.by_detector, key=lambda row: -row.counted_usd),
        by_provider=_by_provider(waste),
        scans=scans,
        connection_names=await connection_names(scope),
        listed_open=listed,
        next_scan=next_scan,
        budget=budget,
        waste_history_days=WASTE_HISTORY_DAYS,
        spend_days=SPEND_DAYS,
    )
    return render(request, "overview.html", context)
